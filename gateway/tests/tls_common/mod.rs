//! Helpers for the TLS tests: a CA with server and client certificates
//! made by rcgen in the test and written as PEM files, a rustls client
//! (ring, as the gateway), and a small MQTT client over mqtts or wss built
//! on it and the project's codec.
//!
//! Every wait is bounded by [`crate::common::within`].

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aviary_protocol::{
    decode, Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe,
    SubscriptionOptions, TopicFilter, MAX_PACKET_SIZE,
};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::common::within;

/// A certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Issued {
    /// Writes `{name}.pem` and `{name}.key` into `dir`; returns their paths.
    pub(crate) fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = write(dir, &format!("{name}.pem"), &self.cert);
        let key = write(dir, &format!("{name}.key"), &self.key);
        (cert, key)
    }
}

/// Writes `text` to `dir/name`; returns the path.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    path
}

/// A certificate authority made for one test.
pub(crate) struct Ca {
    /// Its certificate, PEM: what clients trust and `cafile` holds.
    pub(crate) pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new CA named `name`.
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub(crate) fn server(&self) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().expect("DNS name")),
        ];
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate whose subject CN is `cn`.
    pub(crate) fn client(&self, cn: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, mut params: CertificateParams) -> Issued {
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A rustls client config trusting `ca_pem`, presenting `client` if given.
pub(crate) fn client_config(ca_pem: &str, client: Option<&Issued>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => {
            let chain = CertificateDer::pem_slice_iter(c.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client PEM");
            let key = PrivateKeyDer::from_pem_slice(c.key.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// A TLS connection to `addr` for the name `127.0.0.1`; `Err` is the
/// handshake's error, as text.
pub(crate) async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<TcpStream>, String> {
    let tcp = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("TCP connect");
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let connector = tokio_rustls::TlsConnector::from(config);
    within("TLS handshake", connector.connect(name, tcp))
        .await
        .map_err(|e| e.to_string())
}

/// What carries the MQTT bytes.
enum Io {
    Tls(Box<TlsStream<TcpStream>>),
    Wss(Box<WebSocketStream<TlsStream<TcpStream>>>),
}

/// A small MQTT 5 client over mqtts or wss.
pub(crate) struct Mqtt {
    io: Io,
    buf: BytesMut,
    next_id: u16,
}

impl Mqtt {
    /// MQTT over an open TLS stream.
    pub(crate) fn over_tls(stream: TlsStream<TcpStream>) -> Self {
        Self::new(Io::Tls(Box::new(stream)))
    }

    /// MQTT over WebSocket (`wss://127.0.0.1:PORT/mqtt`) on an open TLS stream.
    pub(crate) async fn over_wss(stream: TlsStream<TcpStream>, https: SocketAddr) -> Self {
        let mut request = format!("wss://127.0.0.1:{}/mqtt", https.port())
            .into_client_request()
            .expect("wss URL");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
        let (ws, _) = within(
            "WebSocket handshake over TLS",
            tokio_tungstenite::client_async(request, stream),
        )
        .await
        .expect("wss handshake");
        Self::new(Io::Wss(Box::new(ws)))
    }

    fn new(io: Io) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            next_id: 0,
        }
    }

    /// Sends one packet.
    pub(crate) async fn send(&mut self, packet: Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        packet
            .encode(ProtocolVersion::V5, &mut out)
            .expect("test packet encodes");
        match &mut self.io {
            Io::Tls(s) => {
                s.write_all(&out).await?;
                s.flush().await
            }
            Io::Wss(ws) => ws
                .send(Message::Binary(out.freeze()))
                .await
                .map_err(std::io::Error::other),
        }
    }

    /// The next packet; `Err` if the connection closed or failed first.
    pub(crate) async fn recv(&mut self) -> Result<Packet, String> {
        within("a packet from the gateway", async {
            loop {
                match decode(&mut self.buf, ProtocolVersion::V5, MAX_PACKET_SIZE) {
                    Ok(Some(p)) => return Ok(p),
                    Ok(None) => {}
                    Err(e) => return Err(format!("malformed packet: {e}")),
                }
                match &mut self.io {
                    Io::Tls(s) => match s.read_buf(&mut self.buf).await {
                        Ok(0) => return Err("connection closed".to_owned()),
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    },
                    Io::Wss(ws) => match ws.next().await {
                        Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("connection closed".to_owned()),
                    },
                }
            }
        })
        .await
    }

    /// Sends CONNECT for `client_id`; the CONNACK's reason code, or why
    /// there was none.
    pub(crate) async fn connect(&mut self, client_id: &str) -> Result<ReasonCode, String> {
        let connect = Connect::new(ProtocolVersion::V5, client_id.to_owned());
        self.send(Packet::Connect(Box::new(connect)))
            .await
            .map_err(|e| e.to_string())?;
        match self.recv().await? {
            Packet::ConnAck(ack) => Ok(ack.reason_code),
            other => Err(format!("expected CONNACK, got {other:?}")),
        }
    }

    /// Connects and asserts success.
    pub(crate) async fn connect_ok(&mut self, client_id: &str) {
        let code = self.connect(client_id).await.expect("a CONNACK");
        assert_eq!(code, ReasonCode::SUCCESS, "CONNACK for {client_id}");
    }

    /// Subscribes to `filter` at QoS 0 and waits for the SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str) {
        self.next_id += 1;
        let id = std::num::NonZeroU16::new(self.next_id).expect("non-zero");
        let filter = TopicFilter::new(filter.to_owned()).expect("filter");
        let subscribe = Subscribe {
            packet_id: id,
            properties: Default::default(),
            filters: vec![(filter, SubscriptionOptions::default())],
        };
        self.send(Packet::Subscribe(subscribe))
            .await
            .expect("send SUBSCRIBE");
        match self.recv().await.expect("SUBACK") {
            Packet::SubAck(_) => {}
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes `payload` on `topic` at QoS 0.
    pub(crate) async fn publish(&mut self, topic: &str, payload: &[u8]) {
        let mut p = Publish::new(topic.to_owned(), payload.to_vec());
        p.qos = QoS::AtMostOnce;
        self.send(Packet::Publish(p)).await.expect("send PUBLISH");
    }

    /// The next PUBLISH as `(topic, payload)`.
    pub(crate) async fn recv_publish(&mut self) -> (String, Vec<u8>) {
        loop {
            match self.recv().await.expect("a PUBLISH") {
                Packet::Publish(p) => return (p.topic.to_string(), p.payload.to_vec()),
                Packet::PingResp => {}
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
    }
}
