//! What an idle connection's task holds: its future is allocated once per
//! connection and lives as long as it, so its size is most of what an idle
//! client costs the broker (see `cargo xtask bench`, memory scenarios).

use tokio::net::TcpStream;

use super::*;

/// The bound is the size measured in a test build (release builds lay futures out tighter)
/// once the handshake handed back the halves and the read buffer instead of borrowing them,
/// the reader's idle wait became one poll of its three sources and the kick and the writer's
/// wake-up became flags beside one waker (832 bytes before), and since the keep alive's timer
/// moved to the broker's table and the log span to the handshake and the close (576 before),
/// and since nothing settled before a wait stays in it while it waits (512 before; 400 in a
/// release build, which puts the task, with tokio's header and trailer, in 512 bytes instead
/// of 640): a change that puts something large back in shows up here rather than only in the
/// benchmark.
#[tokio::test]
async fn an_idle_connection_future_stays_small() {
    let broker = Broker::new(crate::broker::BrokerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let info = ConnInfo::new(Transport::Tcp, addr);
    let fut = serve(broker, client, info, CancellationToken::new());
    let size = std::mem::size_of_val(&fut);
    assert!(size <= 408, "the connection future grew to {size} bytes");
}
