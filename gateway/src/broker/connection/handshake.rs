//! The CONNECT / CONNACK exchange: read the CONNECT within the timeout,
//! validate it, ask the Authorizer who the client is, settle the
//! connection's parameters, open or resume the session and answer with a
//! CONNACK in the client's protocol version.
//!
//! A CONNECT with an Authentication Method goes through the AUTH exchange of
//! [`enhanced`] first.
//!
//! A failed login is answered after a delay that grows with each failure
//! from the same address (see `auth::failures`), so a password file cannot
//! be guessed at line rate; it is counted in `/metrics` and logged without
//! flooding.

use std::hash::{BuildHasher, Hasher};
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::Arc;

use aviary_protocol::{
    ByteString, Codec, ConnAck, Connect, DecodeError, Packet, ProtocolVersion, ReasonCode,
};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tracing::{debug, info, warn};

mod admission;
mod enhanced;

use admission::{admit, Refused};

use super::{write_packet, ConnInfo, Params};
use crate::broker::{
    Broker, ClientFacts, Connecting, Direct, Ending, Message, Metrics, Opened, Will,
};
use tokio_util::sync::CancellationToken;

/// What a connection's handshake starts from, beside the stream.
pub(super) struct Start {
    pub(super) info: ConnInfo,
    /// Interrupts the wait for CONNECT.
    pub(super) shutdown: CancellationToken,
}

/// A connection that completed its handshake.
pub(super) struct Accepted<R, W> {
    pub(super) rd: R,
    pub(super) wr: W,
    /// The read buffer, with whatever the client sent after its CONNECT.
    pub(super) buf: BytesMut,
    pub(super) opened: Opened,
    pub(super) params: Params,
    /// The gateway was shutting down when the CONNACK went out: the session attached after
    /// the kicks of shutdown went out, and the connection closes at once.
    pub(super) shutting_down: bool,
}

/// Runs the handshake. `None` means the connection was refused or lost,
/// and has been logged.
///
/// The halves and the read buffer come back in [`Accepted`], rather than being borrowed: a
/// local that was ever borrowed keeps its room in the connection's future for the
/// connection's whole life, even once moved from.
pub(super) async fn run<R, W>(
    broker: &Broker,
    mut rd: R,
    mut writer: W,
    start: Start,
) -> Option<Accepted<R, W>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Start { info, shutdown } = start;
    let shutdown = &shutdown;
    // Small: a CONNECT rarely needs more, and the reader grows it on demand.
    let mut read_buf = BytesMut::with_capacity(256);
    let (buf, wr) = (&mut read_buf, &mut writer);
    let config = broker.config();
    let mut codec = Codec::new(ProtocolVersion::V3_1_1, config.max_packet_size);
    // The whole sign-in, AUTH exchange included, must be over by then.
    let deadline = tokio::time::Instant::now() + config.connect_timeout();
    // Shutdown may interrupt the wait for CONNECT, never what follows it:
    // once a session is attached, the connection must be closed properly.
    let read = read_connect(broker, &mut rd, wr, &mut codec, buf, deadline);
    let connect = tokio::select! {
        c = read => c?,
        _ = shutdown.cancelled() => return None,
    };
    let version = connect.protocol;
    let link = enhanced::Link {
        rd: &mut rd,
        wr,
        codec: &mut codec,
        buf,
        deadline,
        shutdown,
    };
    let signed_in = match enhanced::exchange(broker, &connect, link).await {
        Ok(signed_in) => Ok(signed_in),
        Err(enhanced::Failed::Refused(r)) => Err(r),
        Err(enhanced::Failed::Lost) => return None,
    };
    // The SCRAM server-final message, for the CONNACK.
    let server_final = signed_in
        .as_ref()
        .ok()
        .and_then(|s| s.as_ref().map(|s| s.server_final.clone()));
    // Signed in first: only then may the connection take its client id (and session) from
    // another node.
    let admitted = signed_in.and_then(|s| admit(broker, &connect, &info, s));
    let mut claimed = false;
    if admitted.is_ok() {
        match claim(broker, &connect).await {
            Ok(c) => claimed = c,
            Err(e) => {
                warn!(error = %e, "connection refused: the cluster did not confirm the client id");
                let nack = ConnAck::new(ReasonCode::SERVER_UNAVAILABLE, false);
                let _ = write_packet(wr, &Packet::ConnAck(Box::new(nack)), version).await;
                return None;
            }
        }
    }
    let client_id = connect.client_id.clone();
    let method = connect.properties.authentication_method.clone();
    match admitted.and_then(|username| accept(broker, connect, username, &info)) {
        Ok((mut ack, opened, params, will_recorded)) => {
            if let Some(data) = server_final {
                ack.properties.authentication_method = method;
                ack.properties.authentication_data = Some(data);
            }
            if !recorded(broker, wr, will_recorded, &opened, &params).await {
                return None;
            }
            // Registered before the CONNACK goes out, so a client that has
            // its CONNACK always finds itself in the client list.
            broker.client_connected(&opened.wake.client);
            // A newer claim made elsewhere while this session was not registered yet found
            // nothing here to close: it is closed now, as taken over, after its CONNACK.
            if claimed && broker.backplane().is_some_and(|b| !b.holds(&client_id)) {
                broker.kick_client(&client_id, ReasonCode::SESSION_TAKEN_OVER);
            }
            if let Err(e) = write_packet(wr, &Packet::ConnAck(Box::new(ack)), version).await {
                debug!(error = %e, "connection lost sending CONNACK");
                broker.client_disconnected(&opened.wake.client);
                let ending = Ending {
                    publish_will: true,
                    expiry_secs: params.session_expiry,
                };
                broker.connection_closed(&opened.session, params.link_id, ending);
                return None;
            }
            Some(Accepted {
                rd,
                wr: writer,
                buf: read_buf,
                opened,
                params,
                shutting_down: shutdown.is_cancelled(),
            })
        }
        Err(refused) => {
            refuse(broker, wr, refused, version, &info, shutdown).await;
            None
        }
    }
}

/// Answers a refused CONNECT. A failed login is counted and answered after the delay its
/// address has earned (logged by the Authorizer, at most once in a while per address).
async fn refuse<W: AsyncWrite + Unpin>(
    broker: &Broker,
    wr: &mut W,
    refused: Refused,
    version: ProtocolVersion,
    info: &ConnInfo,
    shutdown: &CancellationToken,
) {
    let Refused {
        code,
        login,
        reason,
    } = refused;
    if login {
        Metrics::add(&broker.metrics().login_failures, 1);
        let delay = broker.authorizer().login_failed(info.remote.ip());
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
    } else {
        warn!(reason = %code, version = %version, "connection refused");
    }
    let mut nack = ConnAck::new(code, false);
    if version.is_v5() {
        nack.properties.reason_string = reason.map(ByteString::from_static);
    }
    let _ = write_packet(wr, &Packet::ConnAck(Box::new(nack)), version).await;
}

/// Reads the CONNECT before `deadline` and answers what is not one. `None`: the connection
/// is refused or lost, and that has been logged.
async fn read_connect<R, W>(
    broker: &Broker,
    rd: &mut R,
    wr: &mut W,
    codec: &mut Codec,
    buf: &mut BytesMut,
    deadline: tokio::time::Instant,
) -> Option<Connect>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let first = tokio::time::timeout_at(deadline, read_first(rd, codec, buf)).await;
    Some(match first {
        Err(_) => {
            info!(
                timeout_secs = broker.config().connect_timeout_secs,
                "no CONNECT in time, closing"
            );
            return None;
        }
        Ok(Err(Some(DecodeError::UnsupportedProtocolLevel(level)))) => {
            // A level above 5 is a client newer than us: answer as MQTT 5 does, reason 0x84
            // Unsupported Protocol Version, which such a client reads. An older level gets the
            // 3.1.1 form (return code 1), which every 3.x client reads [MQTT-3.1.2-2].
            warn!(level, "unsupported protocol level, refusing");
            let form = if level > 5 {
                ProtocolVersion::V5
            } else {
                ProtocolVersion::V3_1_1
            };
            let nack = Packet::ConnAck(Box::new(ConnAck::new(
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                false,
            )));
            let _ = write_packet(wr, &nack, form).await;
            return None;
        }
        Ok(Err(Some(e))) => {
            warn!(error = %e, "invalid CONNECT, closing");
            return None;
        }
        Ok(Err(None)) => {
            debug!("connection closed before CONNECT");
            return None;
        }
        Ok(Ok(Packet::Connect(c))) => *c,
        Ok(Ok(other)) => {
            warn!(packet = %other.packet_type(), "first packet is not CONNECT, closing [MQTT-3.1.0-1]");
            return None;
        }
    })
}

/// In cluster mode, makes this node the one holding the client id, so that a connection
/// with the same id on another node is closed (0x8E): whether it claimed. An id the broker
/// will assign or refuse needs no claim. A node cut off from its cluster takes no client.
async fn claim(broker: &Broker, connect: &Connect) -> Result<bool, crate::broker::ForwardError> {
    let Some(backplane) = broker.backplane() else {
        return Ok(false);
    };
    if !backplane.accepting() {
        let why = "this node is cut off from its cluster";
        return Err(crate::broker::ForwardError(why.into()));
    }
    let id = &connect.client_id;
    if id.is_empty() || id.len() > broker.config().max_client_id_length {
        return Ok(false);
    }
    backplane
        .claim(id, connect.clean_start)
        .await
        .map(|()| true)
}

/// In cluster mode, waits until the cluster holds the connection's will (see
/// `Backplane::will_set`), so that no CONNACK goes out for a will another node could not
/// publish. If it cannot, refuses the connection (0x88 Server unavailable), whose session is
/// left as by a connection lost before its CONNACK, will discarded; false then.
async fn recorded<W: AsyncWrite + Unpin>(
    broker: &Broker,
    wr: &mut W,
    wait: Option<crate::broker::AckWait>,
    opened: &Opened,
    params: &Params,
) -> bool {
    let Some(wait) = wait else { return true };
    let Err(e) = wait.await else { return true };
    warn!(error = %e, "connection refused: the cluster did not record its will");
    let nack = ConnAck::new(ReasonCode::SERVER_UNAVAILABLE, false);
    let _ = write_packet(wr, &Packet::ConnAck(Box::new(nack)), params.version).await;
    let ending = Ending {
        publish_will: false,
        expiry_secs: params.session_expiry,
    };
    broker.connection_closed(&opened.session, params.link_id, ending);
    false
}

/// Reads bytes until the first packet is complete. `Err(None)`: end of stream.
async fn read_first<R: AsyncRead + Unpin>(
    rd: &mut R,
    codec: &mut Codec,
    buf: &mut BytesMut,
) -> Result<Packet, Option<DecodeError>> {
    loop {
        if let Some(p) = codec.decode(buf).map_err(Some)? {
            return Ok(p);
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
    }
}

/// Validates an admitted CONNECT (see [`admit`]) signed in as `username`, and opens the
/// session. On refusal, the reason to send in the CONNACK. In cluster mode, also the wait for
/// the will's record in the cluster.
fn accept(
    broker: &Broker,
    connect: Connect,
    username: Option<Arc<str>>,
    info: &ConnInfo,
) -> Result<(ConnAck, Opened, Params, Option<crate::broker::AckWait>), Refused> {
    let config = broker.config();
    let version = connect.protocol;
    let v5 = version.is_v5();
    let mut assigned = None;
    let client_id = if connect.client_id.is_empty() {
        // 3.1.1 allows an empty id only with a clean session [MQTT-3.1.3-8];
        // 3.1 not at all; MQTT 5 gets an Assigned Client Identifier.
        if version == ProtocolVersion::V3_1 || (!v5 && !connect.clean_start) {
            return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID.into());
        }
        let id = ByteString::from(generate_client_id(broker));
        if v5 {
            assigned = Some(id.clone());
        }
        id
    } else {
        // A copy, not a view into the read buffer: the id lives as long as
        // the session, and a view would keep alive the whole buffer the
        // CONNECT arrived in (256 bytes and up, per idle connection).
        ByteString::from(&*connect.client_id)
    };

    // Keep alive: MQTT 5 clients are told the server's maximum (Server
    // Keep Alive); MQTT 3.x has no way to say it, so a longer keep alive is
    // refused rather than enforced behind the client's back (as Mosquitto).
    let max_ka = config.max_keep_alive;
    let too_long = max_ka > 0 && (connect.keep_alive == 0 || connect.keep_alive > max_ka);
    if too_long && !v5 {
        return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID.into());
    }
    let keep_alive = if too_long { max_ka } else { connect.keep_alive };
    let session_expiry = if v5 {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::MAX
    }
    .min(config.max_session_expiry_secs);

    let client_receive_max = connect
        .properties
        .receive_maximum
        .map_or(u16::MAX, NonZeroU16::get);
    let window = usize::from(client_receive_max.min(config.max_inflight));
    let will = connect.will.map(|w| {
        let delay_secs = w.properties.will_delay_interval.unwrap_or(0);
        let msg = Message {
            // Set when the will is published: its expiry counts from then.
            expires_at: None,
            stored: Default::default(),
            stream_seq: None,
            // Copies, for the reason the client id is one: a will may wait
            // for as long as the session lives.
            topic: ByteString::from(&*w.topic),
            payload: Bytes::copy_from_slice(&w.payload),
            qos: w.qos,
            retain: w.retain,
            properties: w.properties.message.into(),
        };
        Will {
            message: Arc::new(msg),
            delay_secs,
            owner: username.clone(),
        }
    });
    let will_recorded = broker
        .backplane()
        .and_then(|b| b.will_set(&client_id, will.as_ref(), session_expiry));
    let link_id = broker.next_id();
    let client_max_packet_size = connect
        .properties
        .maximum_packet_size
        .map_or(u32::MAX, NonZeroU32::get);
    let client_topic_alias_max = connect.properties.topic_alias_maximum.unwrap_or(0);
    let connecting = Connecting {
        link_id,
        window,
        will,
        expiry_secs: session_expiry,
        username,
        client: ClientFacts::new(info, version),
        // The writer assigns topic aliases to an MQTT 5 client that takes them.
        direct: Direct::new(
            version,
            client_max_packet_size,
            v5 && client_topic_alias_max > 0,
        ),
    };
    let opened = broker.open_session(client_id, connect.clean_start, connecting);

    let mut ack = ConnAck::new(ReasonCode::SUCCESS, opened.present);
    if v5 {
        let p = &mut ack.properties;
        p.receive_maximum = NonZeroU16::new(config.receive_maximum);
        p.maximum_packet_size = NonZeroU32::new(config.max_packet_size);
        p.topic_alias_maximum = Some(config.topic_alias_maximum);
        p.assigned_client_identifier = assigned;
        p.retain_available = Some(true);
        p.wildcard_subscription_available = Some(true);
        p.subscription_identifiers_available = Some(true);
        p.shared_subscription_available = Some(true);
        if keep_alive != connect.keep_alive {
            p.server_keep_alive = Some(keep_alive);
        }
        if connect.properties.session_expiry_interval.unwrap_or(0) != session_expiry {
            p.session_expiry_interval = Some(session_expiry);
        }
        if connect.properties.request_response_information == Some(true) {
            p.response_information = Some(ByteString::from(format!(
                "response/{}",
                opened.session.client_id
            )));
        }
    }
    let params = Params {
        version,
        link_id,
        keep_alive,
        session_expiry,
        client_max_packet_size,
        client_topic_alias_max,
        problem_information: connect
            .properties
            .request_problem_information
            .unwrap_or(true),
    };
    Ok((ack, opened, params, will_recorded))
}

/// A client identifier no client chose: random, so that it does not collide
/// with those of earlier runs either.
fn generate_client_id(broker: &Broker) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(broker.next_id());
    format!("aviary-{:016x}", h.finish())
}
