//! Sessions crossing nodes: takeover (a client connected to A connects again, same client id,
//! to B) and resume (a persistent session with queued QoS 1 messages, left on A, picked up on
//! B). Both speak MQTT 5, whatever `--mqtt-version` says, because the takeover is seen in
//! DISCONNECT's reason code 0x8E and a session expiry is a 5.0 property.
//!
//! The clock starts when CONNECT is written, after the TCP handshake, which is why these
//! clients are a bare socket and the codec rather than [`crate::client`], whose connect times
//! the two together.

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use aviary_protocol::{
    Ack, Connect, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode, Subscribe,
    SubscriptionOptions, TopicFilter, MAX_PACKET_SIZE,
};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const V5: ProtocolVersion = ProtocolVersion::V5;

/// How long one handshake step (CONNACK, SUBACK, the old connection's DISCONNECT) may take.
const STEP: Duration = Duration::from_secs(15);

/// An MQTT 5 connection over a bare socket.
#[derive(Debug)]
pub(crate) struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    out: BytesMut,
}

impl Raw {
    /// Opens the TCP connection (nothing sent yet).
    pub(crate) async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = tokio::time::timeout(STEP, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("TCP connect to {addr} took over {STEP:?}"))??;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            out: BytesMut::new(),
        })
    }

    /// Queues a packet; [`Raw::flush`] sends what is queued.
    pub(crate) fn queue(&mut self, packet: &Packet) -> Result<()> {
        packet
            .encode(V5, &mut self.out)
            .map_err(|e| anyhow!("cannot encode {:?}: {e}", packet.packet_type()))
    }

    /// Sends everything queued in one write.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }

    /// A packet already received, without reading from the network.
    pub(crate) fn try_next(&mut self) -> Result<Option<Packet>> {
        aviary_protocol::decode(&mut self.buf, V5, MAX_PACKET_SIZE)
            .map_err(|e| anyhow!("undecodable packet from the broker: {e}"))
    }

    /// The next packet, or an error at `deadline` or when the connection closes.
    pub(crate) async fn next(&mut self, deadline: Instant) -> Result<Packet> {
        loop {
            if let Some(packet) = self.try_next()? {
                return Ok(packet);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let read = tokio::time::timeout(left, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => bail!("no packet before the deadline"),
                Ok(Ok(0)) => bail!("the broker closed the connection"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Sends CONNECT and waits for CONNACK. Returns (when CONNECT was written, when CONNACK
    /// arrived, session present).
    pub(crate) async fn connect(
        &mut self,
        client_id: &str,
        persistent: bool,
        receive_maximum: u16,
    ) -> Result<(Instant, Instant, bool)> {
        self.connect_within(client_id, persistent, receive_maximum, STEP)
            .await
    }

    /// [`Raw::connect`], waiting up to `limit` for the CONNACK.
    pub(crate) async fn connect_within(
        &mut self,
        client_id: &str,
        persistent: bool,
        receive_maximum: u16,
        limit: Duration,
    ) -> Result<(Instant, Instant, bool)> {
        let mut connect = Connect::new(V5, client_id);
        connect.clean_start = !persistent;
        connect.properties.receive_maximum = NonZeroU16::new(receive_maximum);
        if persistent {
            connect.properties.session_expiry_interval = Some(3600);
        }
        self.queue(&Packet::Connect(Box::new(connect)))?;
        let sent = Instant::now();
        self.flush().await?;
        match self.next(sent + limit).await? {
            Packet::ConnAck(ack) if !ack.reason_code.is_error() => {
                Ok((sent, Instant::now(), ack.session_present))
            }
            Packet::ConnAck(ack) => bail!("CONNECT refused: {:?}", ack.reason_code),
            other => bail!("expected CONNACK, got {:?}", other.packet_type()),
        }
    }

    /// Subscribes to `filter` at QoS 1 and waits for a granting SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str) -> Result<()> {
        let filter = TopicFilter::new(filter).map_err(|e| anyhow!("bad filter: {e}"))?;
        self.queue(&Packet::Subscribe(Subscribe {
            packet_id: NonZeroU16::MIN,
            properties: Default::default(),
            filters: vec![(filter, SubscriptionOptions::qos(QoS::AtLeastOnce))],
        }))?;
        self.flush().await?;
        match self.next(Instant::now() + STEP).await? {
            Packet::SubAck(ack) if ack.reason_codes.iter().all(|c| !c.is_error()) => Ok(()),
            other => bail!("expected a granting SUBACK, got {other:?}"),
        }
    }

    /// Sends DISCONNECT 0x00 (the session, if persistent, stays) and closes the socket.
    pub(crate) async fn disconnect(mut self) {
        let _ = self.queue(&Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }

    /// Queues a PUBACK for a QoS 1 PUBLISH.
    pub(crate) fn ack(&mut self, packet_id: NonZeroU16) -> Result<()> {
        self.queue(&Packet::PubAck(Ack::new(packet_id)))
    }
}

/// One takeover: how long B took to accept, and how long until A's connection was told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Takeover {
    /// CONNECT written to B until B's CONNACK.
    pub(crate) connack: Duration,
    /// CONNECT written to B until A's DISCONNECT arrived (`None`: none came, or not 0x8E).
    pub(crate) disconnect: Option<Duration>,
}

/// Connects `client_id` to `a`, then again to `b`, and times the takeover.
pub(crate) async fn takeover(
    a: SocketAddr,
    b: SocketAddr,
    client_id: &str,
    receive_maximum: u16,
) -> Result<Takeover> {
    let mut old = Raw::open(a).await?;
    old.connect(client_id, false, receive_maximum)
        .await
        .context("the first connection (node A)")?;
    // The old connection waits for its DISCONNECT in a task of its own, so its arrival is
    // timed while the new one is still connecting.
    let watcher = tokio::spawn(async move {
        let deadline = Instant::now() + STEP;
        loop {
            match old.next(deadline).await {
                Ok(Packet::Disconnect(d)) => return Ok((Instant::now(), d.reason_code)),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    });
    let mut new = Raw::open(b).await?;
    let (sent, connack, _) = new
        .connect(client_id, false, receive_maximum)
        .await
        .context("the second connection (node B)")?;
    let told = watcher
        .await
        .map_err(|e| anyhow!("watcher panicked: {e}"))?;
    new.disconnect().await;
    let disconnect = match told {
        Ok((at, code)) if code == ReasonCode::SESSION_TAKEN_OVER => Some(at - sent),
        Ok(_) | Err(_) => None,
    };
    Ok(Takeover {
        connack: connack - sent,
        disconnect,
    })
}
