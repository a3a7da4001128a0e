//! Codec benchmarks: decode and encode of the packets that dominate a
//! broker's traffic, a QoS 1 PUBLISH with a 64-byte payload (MQTT 3.1.1 and
//! 5.0), and of a full MQTT 5 CONNECT (will, user name, password,
//! properties).
//!
//! Decoding is measured the way a connection does it: one receive buffer
//! holding many packets, taken off one by one, so the figure per packet is
//! the steady state (the one-off cost of a fresh buffer is amortised).
//! Encoding appends to a reused output buffer.
//!
//! `cargo bench -p aviary-protocol --bench codec`

use std::hint::black_box;
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use aviary_protocol::{
    decode, Connect, LastWill, Packet, ProtocolVersion, Publish, QoS, TopicName, MAX_PACKET_SIZE,
};
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Packets per decode iteration: one big read.
const BATCH: usize = 1000;

fn publish() -> Packet {
    let mut p = Publish::new(
        "pets/1/location",
        Bytes::from_static(br#"{"lat":52.520008,"lng":13.404954,"accuracy":5,"ts":170000000000}"#),
    );
    assert_eq!(p.payload.len(), 64);
    p.qos = QoS::AtLeastOnce;
    p.packet_id = NonZeroU16::new(42);
    Packet::Publish(p)
}

fn connect() -> Packet {
    let mut c = Connect::new(ProtocolVersion::V5, "tracker-0042");
    c.clean_start = false;
    c.keep_alive = 30;
    let mut will = LastWill {
        topic: TopicName::from_static("pets/42/status"),
        payload: Bytes::from_static(br#"{"online":false}"#),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Default::default(),
    };
    will.properties.will_delay_interval = Some(5);
    will.properties.message.content_type = Some("application/json".into());
    c.will = Some(will);
    c.username = Some("tracker".into());
    c.password = Some(Bytes::from_static(b"correct horse battery staple"));
    c.properties.session_expiry_interval = Some(3600);
    c.properties.receive_maximum = NonZeroU16::new(32);
    c.properties.maximum_packet_size = NonZeroU32::new(1 << 20);
    c.properties.topic_alias_maximum = Some(10);
    c.properties.user_properties = vec![("fw".into(), "1.4.2".into())];
    Packet::from(c)
}

fn encoded(packet: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.encode(v, &mut buf).unwrap();
    buf.to_vec()
}

fn bench_packet(c: &mut Criterion, name: &str, packet: &Packet, v: ProtocolVersion) {
    let bytes = encoded(packet, v);
    let mut group = c.benchmark_group(format!("{name}/{v}"));

    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(format!("decode x{BATCH} ({} B each)", bytes.len()), |b| {
        b.iter_batched(
            || {
                let mut buf = BytesMut::with_capacity(bytes.len() * BATCH);
                for _ in 0..BATCH {
                    buf.extend_from_slice(&bytes);
                }
                buf
            },
            |mut buf| {
                while let Some(p) = decode(&mut buf, v, MAX_PACKET_SIZE).unwrap() {
                    black_box(p);
                }
                buf
            },
            BatchSize::LargeInput,
        );
    });

    group.throughput(Throughput::Elements(1));
    let mut out = BytesMut::with_capacity(4096);
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(packet).encode(v, &mut out).unwrap();
            black_box(&out);
        });
    });
    group.bench_function("encoded_len", |b| {
        b.iter(|| black_box(packet).encoded_len(v).unwrap());
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let publish = publish();
    bench_packet(c, "publish_qos1_64B", &publish, ProtocolVersion::V3_1_1);
    bench_packet(c, "publish_qos1_64B", &publish, ProtocolVersion::V5);
    bench_packet(
        c,
        "connect_will_auth_props",
        &connect(),
        ProtocolVersion::V5,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = codec
}
criterion_main!(benches);
