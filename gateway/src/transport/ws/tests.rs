//! [`WsStream`] over an in-memory duplex: what goes out as frames, what
//! comes in as bytes, the answers to control frames, and that an idle
//! stream keeps no buffer.

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

const MASK: [u8; 4] = [1, 2, 3, 4];

/// A masked client frame.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ws_frame::push_header(&mut out, opcode, payload.len());
    out[1] |= 0x80;
    out.extend_from_slice(&MASK);
    let start = out.len();
    out.extend_from_slice(payload);
    ws_frame::unmask(&mut out[start..], MASK, 0);
    out
}

/// Reads one unmasked server frame: (first byte, payload).
async fn server_frame(peer: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    peer.read_exact(&mut h).await.unwrap();
    let len = match h[1] {
        126 => usize::from(peer.read_u16().await.unwrap()),
        127 => peer.read_u64().await.unwrap() as usize,
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    peer.read_exact(&mut payload).await.unwrap();
    (h[0], payload)
}

fn stream(coalesce: bool, capacity: usize) -> (WsStream<DuplexStream>, DuplexStream) {
    let (ours, peer) = duplex(capacity);
    (WsStream::new(ours, coalesce, 1024, 1 << 20), peer)
}

/// Three PINGRESPs and a 5-byte PUBLISH, as the writer would send them.
const PACKETS: [u8; 11] = [0xD0, 0x00, 0xD0, 0x00, 0x30, 0x03, 1, 2, 3, 0xD0, 0x00];

#[test]
fn frames_hold_whole_packets_up_to_the_limit() {
    let buf = PACKETS;
    assert_eq!(frame_len(&buf, 0), 2, "one packet per frame");
    assert_eq!(frame_len(&buf, 4), 4, "two pings fit in 4 bytes");
    assert_eq!(frame_len(&buf, 8), 4, "the publish would cross the limit");
    assert_eq!(frame_len(&buf, 9), 9);
    assert_eq!(frame_len(&buf, 64 * 1024), buf.len());
    assert_eq!(
        frame_len(&buf[4..], 2),
        5,
        "a packet larger than the limit goes alone"
    );
}

#[test]
fn packet_len_reads_the_remaining_length() {
    assert_eq!(packet_len(&[0x30, 0x80, 0x01]), Some(3 + 128));
    assert_eq!(packet_len(&[0x30]), None);
}

#[tokio::test]
async fn written_packets_go_out_coalesced_or_one_per_frame() {
    let (mut ws, mut peer) = stream(true, 4096);
    ws.write_all(&PACKETS).await.unwrap();
    ws.flush().await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x82, PACKETS.to_vec()));

    let (mut ws, mut peer) = stream(false, 4096);
    ws.write_all(&PACKETS).await.unwrap();
    ws.flush().await.unwrap();
    for packet in [&PACKETS[..2], &PACKETS[2..4], &PACKETS[4..9], &PACKETS[9..]] {
        assert_eq!(server_frame(&mut peer).await, (0x82, packet.to_vec()));
    }
}

/// The connection's writer hands a large PUBLISH over as its head and its
/// payload: in one-packet-per-frame mode they still make one frame.
#[tokio::test]
async fn a_packet_written_in_slices_is_one_frame() {
    let (mut ws, mut peer) = stream(false, 4096);
    let slices = [IoSlice::new(&PACKETS[4..6]), IoSlice::new(&PACKETS[6..])];
    assert!(ws.is_write_vectored());
    let n = std::future::poll_fn(|cx| Pin::new(&mut ws).poll_write_vectored(cx, &slices)).await;
    assert_eq!(n.unwrap(), PACKETS.len() - 4, "every slice taken");
    ws.flush().await.unwrap();
    assert_eq!(
        server_frame(&mut peer).await,
        (0x82, PACKETS[4..9].to_vec())
    );
    assert_eq!(server_frame(&mut peer).await, (0x82, PACKETS[9..].to_vec()));
}

#[tokio::test]
async fn large_frames_survive_partial_writes() {
    // A 3-byte pipe: every header and payload goes out in pieces.
    let (mut ws, mut peer) = stream(true, 3);
    let mut publish = vec![0x30, 0xC8, 0x01];
    publish.extend((0..200u8).collect::<Vec<_>>());
    let sender = tokio::spawn(async move {
        ws.write_all(&publish).await.unwrap();
        ws.flush().await.unwrap();
        ws
    });
    let (first, payload) = server_frame(&mut peer).await;
    assert_eq!(
        (first, payload.len(), payload[3], payload[202]),
        (0x82, 203, 0, 199)
    );
    sender.await.unwrap();
}

#[tokio::test]
async fn incoming_frames_become_one_byte_stream() {
    let (mut ws, mut peer) = stream(true, 4096);
    let mut raw = client_frame(0x2, &PACKETS[..3]);
    raw.extend(client_frame(0x2, &PACKETS[3..]));
    peer.write_all(&raw).await.unwrap();
    let mut got = [0u8; PACKETS.len()];
    ws.read_exact(&mut got).await.unwrap();
    assert_eq!(got, PACKETS);
}

#[tokio::test]
async fn ping_is_answered_while_reading() {
    let (mut ws, mut peer) = stream(true, 4096);
    let mut raw = client_frame(0x9, b"hello?");
    raw.extend(client_frame(0x2, b"ab"));
    peer.write_all(&raw).await.unwrap();
    let mut got = [0u8; 2];
    ws.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ab");
    assert_eq!(server_frame(&mut peer).await, (0x8A, b"hello?".to_vec()));
}

#[tokio::test]
async fn client_close_is_answered_and_reading_ends() {
    let (mut ws, mut peer) = stream(true, 4096);
    peer.write_all(&client_frame(0x8, &[0x03, 0xE8, b'b', b'y', b'e']))
        .await
        .unwrap();
    let mut got = Vec::new();
    assert_eq!(ws.read_to_end(&mut got).await.unwrap(), 0);
    assert_eq!(server_frame(&mut peer).await, (0x88, vec![0x03, 0xE8]));
    assert!(
        ws.write_all(b"late").await.is_err(),
        "nothing after a close"
    );
}

#[tokio::test]
async fn text_frame_closes_with_1003_and_fails_the_read() {
    let (mut ws, mut peer) = stream(true, 4096);
    peer.write_all(&client_frame(0x1, b"{}")).await.unwrap();
    let mut got = [0u8; 16];
    let err = ws.read(&mut got).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("text frame"), "{err}");
    let (first, payload) = server_frame(&mut peer).await;
    assert_eq!((first, &payload[..2]), (0x88, &[0x03, 0xEB][..]));
}

#[tokio::test]
async fn shutdown_sends_what_is_left_then_a_normal_close() {
    let (mut ws, mut peer) = stream(true, 4096);
    ws.write_all(&PACKETS[..2]).await.unwrap();
    ws.shutdown().await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x82, PACKETS[..2].to_vec()));
    assert_eq!(server_frame(&mut peer).await, (0x88, vec![0x03, 0xE8]));
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).await.unwrap(), 0, "then EOF");
}

#[tokio::test]
async fn an_idle_stream_holds_no_buffer() {
    let (mut ws, mut peer) = stream(true, 4096);
    ws.write_all(&PACKETS).await.unwrap();
    ws.flush().await.unwrap();
    peer.write_all(&client_frame(0x9, b"x")).await.unwrap();
    peer.write_all(&client_frame(0x2, b"y")).await.unwrap();
    let mut got = [0u8; 1];
    ws.read_exact(&mut got).await.unwrap();
    assert!(ws.out.is_none(), "sent and answered: nothing kept");
}

#[test]
fn the_stream_itself_stays_small() {
    // It lives as long as the connection, idle or not, boxed on its own
    // (see `http::ws`): a few words for the socket, the frame header being
    // read, and a pointer to what is being sent.
    type Upgraded = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;
    let size = std::mem::size_of::<WsStream<Upgraded>>();
    assert!(size <= 144, "WsStream is {size} bytes");
}
