//! Each bad file is refused with a message naming it; a failed reload
//! keeps the certificates in use.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, KeyPair};

use super::*;

/// A self-signed certificate and its key, as PEM.
fn self_signed(name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn config(cert: &Path, key: &Path, ca: Option<&Path>) -> TlsConfig {
    TlsConfig {
        certfile: Some(cert.to_owned()),
        keyfile: Some(key.to_owned()),
        cafile: ca.map(Path::to_owned),
        ..TlsConfig::default()
    }
}

fn error(config: &TlsConfig) -> String {
    TlsAcceptor::load(config).unwrap_err().to_string()
}

#[test]
fn good_files_load_with_and_without_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("localhost");
    let cert = write(dir.path(), "cert.pem", &cert);
    let key = write(dir.path(), "key.pem", &key);
    TlsAcceptor::load(&config(&cert, &key, None)).unwrap();
    TlsAcceptor::load(&config(&cert, &key, Some(&cert))).unwrap();
}

#[test]
fn a_key_of_another_certificate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed("localhost");
    let (_, other_key) = self_signed("localhost");
    let cert = write(dir.path(), "cert.pem", &cert);
    let key = write(dir.path(), "other.key", &other_key);
    let msg = error(&config(&cert, &key, None));
    assert!(msg.contains("does not match"), "{msg}");
    assert!(
        msg.contains("other.key") && msg.contains("cert.pem"),
        "{msg}"
    );
}

#[test]
fn missing_garbage_and_empty_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = self_signed("localhost");
    let cert = write(dir.path(), "cert.pem", &cert_pem);
    let key = write(dir.path(), "key.pem", &key_pem);
    let missing = dir.path().join("missing.pem");
    let garbage = write(dir.path(), "garbage.pem", "this is not PEM at all\n");
    let broken = write(
        dir.path(),
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );

    let msg = error(&config(&missing, &key, None));
    assert!(
        msg.contains("tls.certfile") && msg.contains("missing.pem"),
        "{msg}"
    );
    let msg = error(&config(&garbage, &key, None));
    assert!(
        msg.contains("garbage.pem") && msg.contains("no PEM certificate"),
        "{msg}"
    );
    let msg = error(&config(&broken, &key, None));
    assert!(
        msg.contains("broken.pem") && msg.contains("not valid PEM"),
        "{msg}"
    );
    let msg = error(&config(&cert, &cert, None));
    assert!(
        msg.contains("tls.keyfile") && msg.contains("no PEM private key"),
        "{msg}"
    );
    let msg = error(&config(&cert, &key, Some(&missing)));
    assert!(
        msg.contains("tls.cafile") && msg.contains("missing.pem"),
        "{msg}"
    );
    let msg = error(&config(&cert, &key, Some(&garbage)));
    assert!(
        msg.contains("tls.cafile") && msg.contains("garbage.pem"),
        "{msg}"
    );
}

#[test]
fn a_failed_reload_keeps_the_certificates_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = self_signed("localhost");
    let cert = write(dir.path(), "cert.pem", &cert_pem);
    let key = write(dir.path(), "key.pem", &key_pem);
    let acceptor = TlsAcceptor::load(&config(&cert, &key, None)).unwrap();
    let before = acceptor.current.load_full();
    write(dir.path(), "key.pem", "garbage");
    let msg = acceptor.reload().unwrap_err().to_string();
    assert!(msg.contains("key.pem"), "{msg}");
    assert!(Arc::ptr_eq(&before, &acceptor.current.load_full()));
    write(dir.path(), "key.pem", &key_pem);
    acceptor.reload().unwrap();
    assert!(!Arc::ptr_eq(&before, &acceptor.current.load_full()));
}
