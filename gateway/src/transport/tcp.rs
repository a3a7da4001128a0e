//! MQTT over TCP: the accept loop. Each connection gets its own task; the
//! loop itself never waits on a client.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

use crate::broker::connection::{self, ConnInfo, Transport};
use crate::broker::Broker;

/// Accepts connections until `shutdown` fires. Connection tasks are
/// registered in `tasks` so shutdown can wait for them.
pub async fn accept_loop(
    listener: TcpListener,
    broker: Broker,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, remote)) => {
                // Small packets should leave at once, not wait for Nagle.
                if let Err(e) = stream.set_nodelay(true) {
                    warn!(%remote, error = %e, "cannot set TCP_NODELAY");
                }
                let info = ConnInfo::new(Transport::Tcp, remote);
                tasks.spawn(connection::serve(
                    broker.clone(),
                    stream,
                    info,
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin, and keep serving existing clients.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
