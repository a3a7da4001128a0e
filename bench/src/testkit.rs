//! For the smoke tests: an Aviary gateway inside the test process on free ports, stopped
//! when dropped, so each scenario can be run for a second against a real broker.

use std::net::SocketAddr;

use aviary::{Config, Gateway};
use tokio::sync::oneshot;

use crate::client::Endpoint;

/// A running in-process gateway.
pub(crate) struct TestBroker {
    /// Where it listens.
    pub(crate) endpoint: Endpoint,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl TestBroker {
    /// A gateway with the defaults, `$SYS` quiet, packets up to 2 MiB.
    pub(crate) async fn start() -> Self {
        let data_dir = tempfile::tempdir().expect("temporary data dir");
        let mut config = Config::default();
        config.listen.mqtt = SocketAddr::from(([127, 0, 0, 1], 0));
        config.listen.http = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = data_dir.path().to_owned();
        config.mqtt.sys_interval_secs = 3600;
        config.mqtt.max_packet_size = 2 * 1024 * 1024;
        config.validate().expect("test config is valid");
        let gateway = Gateway::bind(config).await.expect("gateway binds port 0");
        let endpoint = Endpoint {
            tcp: gateway.mqtt_addr(),
            ws_url: format!("ws://{}/mqtt", gateway.http_addr()),
        };
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(gateway.run(async {
            let _ = rx.await;
        }));
        Self {
            endpoint,
            shutdown: Some(tx),
            _data_dir: data_dir,
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Settings for a smoke run: MQTT 3.1.1, `payload` bytes, generous timeouts (a smoke test
/// asserts what arrived, never how fast).
pub(crate) fn smoke_params(payload: usize) -> crate::scenarios::Params {
    crate::scenarios::Params {
        version: aviary_protocol::ProtocolVersion::V3_1_1,
        payload,
        window: 100,
        receive_maximum: 100,
        timeout: std::time::Duration::from_secs(60),
        idle: std::time::Duration::from_secs(5),
        connect_concurrency: 10,
        keep_alive: 0,
    }
}
