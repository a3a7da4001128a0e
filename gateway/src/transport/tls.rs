//! TLS for the `mqtts` and `https` listeners: rustls with the `ring`
//! provider, certificates from the PEM files of `[tls]`.
//!
//! [`TlsAcceptor`] holds the current `ServerConfig` in an `ArcSwap`: every
//! new handshake takes the one current at that moment, and
//! [`TlsAcceptor::reload`] (SIGHUP) swaps in a config built from the files
//! as they are now. Open connections keep the config they started with,
//! so a reload drops none of them; a reload that fails keeps the old one.
//!
//! Every file is checked when it is read, and an error names the file and
//! what is wrong with it: unreadable, no certificate, no key, a key that
//! does not match its certificate, a CA that cannot be used.

mod identity;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;

/// Why the TLS files could not be used. Each names the config key and
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {key} {}: {source}", path.display())]
    Read {
        /// `tls.certfile`, `tls.keyfile` or `tls.cafile`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not valid PEM.
    #[error("{key} {} is not valid PEM: {reason}", path.display())]
    Pem {
        /// The config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM reader found wrong.
        reason: String,
    },
    /// No `CERTIFICATE` block in the file.
    #[error("{key} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate {
        /// The config key.
        key: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// No private key block in the file.
    #[error(
        "tls.keyfile {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key does not belong to the certificate.
    #[error(
        "tls.keyfile {} does not match the certificate in tls.certfile {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate or key was refused for another reason.
    #[error("tls.certfile {} with tls.keyfile {}: {reason}", cert.display(), key.display())]
    Certificate {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// A CA certificate cannot be used to verify clients.
    #[error("tls.cafile {}: {reason}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

/// Accepts TLS connections with the current certificates; reloadable.
#[derive(Debug)]
pub struct TlsAcceptor {
    files: TlsConfig,
    current: ArcSwap<ServerConfig>,
}

/// A finished handshake.
#[derive(Debug)]
pub struct Accepted<S> {
    /// The decrypted stream.
    pub stream: TlsStream<S>,
    /// The subject common name of the client's certificate, when it sent
    /// one and it was verified against `cafile`.
    pub identity: Option<Arc<str>>,
}

impl TlsAcceptor {
    /// Reads and checks the files of `config`.
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let server = server_config(config)?;
        Ok(Self {
            files: config.clone(),
            current: ArcSwap::from_pointee(server),
        })
    }

    /// Re-reads the files; new handshakes use them from now on. On an error
    /// the certificates in use stay as they were.
    pub fn reload(&self) -> Result<(), TlsError> {
        let server = server_config(&self.files)?;
        self.current.store(Arc::new(server));
        Ok(())
    }

    /// Runs the server side of a handshake on `stream`, for at most `limit`.
    pub async fn accept<S>(&self, stream: S, limit: Duration) -> io::Result<Accepted<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.current.load_full());
        let stream = tokio::time::timeout(limit, acceptor.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let identity = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| identity::common_name(leaf))
            .map(Arc::from);
        Ok(Accepted { stream, identity })
    }
}

/// The crypto provider: ring (see the workspace Cargo.toml for why).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config from the files of `config`, every file checked.
fn server_config(config: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let (Some(cert_path), Some(key_path)) = (&config.certfile, &config.keyfile) else {
        // Config validation makes both or neither; a listener needs both.
        return Err(TlsError::NoCertificate {
            key: "tls.certfile",
            path: PathBuf::new(),
        });
    };
    let chain = certificates("tls.certfile", cert_path)?;
    let key = private_key(key_path)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Certificate {
            cert: cert_path.clone(),
            key: key_path.clone(),
            reason: e.to_string(),
        })?;
    let builder = match &config.cafile {
        Some(ca) => builder.with_client_cert_verifier(client_verifier(
            ca,
            config.require_certificate,
            provider,
        )?),
        None => builder.with_no_client_auth(),
    };
    builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch {
                cert: cert_path.clone(),
                key: key_path.clone(),
            }
        }
        other => TlsError::Certificate {
            cert: cert_path.clone(),
            key: key_path.clone(),
            reason: other.to_string(),
        },
    })
}

/// Verifies client certificates against the CA certificates in `path`;
/// clients without one are let in unless `required`.
fn client_verifier(
    path: &Path,
    required: bool,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let ca_error = |reason: String| TlsError::Ca {
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for (i, cert) in certificates("tls.cafile", path)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| ca_error(format!("certificate {} cannot be a CA: {e}", i + 1)))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().map_err(|e| ca_error(e.to_string()))
}

/// Reads a file for `key`, naming both on failure.
fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

fn pem_error(key: &'static str, path: &Path, e: pem::Error) -> TlsError {
    TlsError::Pem {
        key,
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Every certificate in a PEM file: at least one.
fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(key, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            key,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("tls.keyfile", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        other => pem_error("tls.keyfile", path, other),
    })
}

#[cfg(test)]
mod tests;
