//! MQTT 5 enhanced authentication in the handshake (MQTT 5.0 section 4.12): the AUTH packets
//! between a CONNECT with an Authentication Method and its CONNACK.
//!
//! The one method is SCRAM-SHA-512 (`auth::scram`), offered whenever a password file is
//! configured (see `Authorizer::scram_available`); any other method is refused with 0x8C as
//! before. The client's answer must come before the connect timeout, counted from the
//! connection's start, so a client cannot hold a connection open by stalling mid-exchange.
//! Every failure of the exchange is a failed login: counted, logged without flooding and
//! answered after the same growing delay as a wrong password (the caller does that).

use std::sync::Arc;

use aviary_protocol::{Auth, ByteString, Codec, Connect, Packet, ReasonCode};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{read_first, write_packet, Refused};
use crate::auth::password::DEFAULT_ITERATIONS;
use crate::auth::scram::{ClientFirst, Credentials, ScramUser, ServerFirst, METHOD};
use crate::broker::Broker;

/// A client that proved who it is: the username and the server-final message for its CONNACK.
pub(super) struct SignedIn {
    pub(super) username: Arc<str>,
    pub(super) server_final: Bytes,
}

/// Why there is no [`SignedIn`].
pub(super) enum Failed {
    /// Refused: answer with this CONNACK.
    Refused(Refused),
    /// The connection is gone, timed out or shutting down (logged): just close it.
    Lost,
}

impl From<Refused> for Failed {
    fn from(r: Refused) -> Self {
        Self::Refused(r)
    }
}

/// A failed login, with a reason string for the CONNACK.
fn not_authorized(why: &'static str) -> Failed {
    Failed::Refused(Refused {
        code: ReasonCode::NOT_AUTHORIZED,
        login: true,
        reason: Some(why),
    })
}

/// Where the exchange reads and writes, and until when it waits.
pub(super) struct Link<'a, R, W> {
    pub(super) rd: &'a mut R,
    pub(super) wr: &'a mut W,
    pub(super) codec: &'a mut Codec,
    pub(super) buf: &'a mut BytesMut,
    pub(super) deadline: Instant,
    pub(super) shutdown: &'a CancellationToken,
}

/// Runs the exchange a CONNECT asks for. `Ok(None)`: it names no Authentication Method.
pub(super) async fn exchange<R, W>(
    broker: &Broker,
    connect: &Connect,
    link: Link<'_, R, W>,
) -> Result<Option<SignedIn>, Failed>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Some(method) = &connect.properties.authentication_method else {
        return Ok(None);
    };
    let authorizer = broker.authorizer();
    if &**method != METHOD || !authorizer.scram_available() {
        info!(method = %method, "unknown authentication method, refusing");
        return Err(Refused::from(ReasonCode::BAD_AUTHENTICATION_METHOD).into());
    }
    let data = connect.properties.authentication_data.as_deref();
    let first = ClientFirst::parse(data.unwrap_or_default()).map_err(|e| {
        debug!(error = %e, "SCRAM client-first refused");
        not_authorized("malformed SCRAM client-first message")
    })?;
    // A CONNECT may also carry a username; it must then be the one SCRAM proves.
    if connect
        .username
        .as_deref()
        .is_some_and(|u| u != first.username)
    {
        return Err(not_authorized("User Name and SCRAM username differ"));
    }
    let credentials = match authorizer.scram_user(&first.username) {
        ScramUser::Known(c) => c,
        // Goes on to fail at the proof, as a wrong password does: no user list by probing.
        ScramUser::Unknown => {
            Credentials::decoy(&first.username, DEFAULT_ITERATIONS).map_err(unavailable)?
        }
        ScramUser::NoScram => {
            info!(user = %first.username, "SCRAM refused: the user's hash is $6$ (SHA-512), not PBKDF2");
            return Err(not_authorized(
                "this user's password hash cannot do SCRAM-SHA-512",
            ));
        }
    };
    let server = ServerFirst::new(&first, credentials).map_err(unavailable)?;
    let challenge = auth_packet(server.message());
    let answer = round_trip(link, challenge).await?;
    let server_final = server.finish(&answer).map_err(|e| {
        debug!(user = %first.username, error = %e, "SCRAM proof refused");
        not_authorized("SCRAM authentication failed")
    })?;
    Ok(Some(SignedIn {
        username: first.username.into(),
        server_final: server_final.into(),
    }))
}

fn unavailable(e: crate::auth::scram::ScramError) -> Failed {
    warn!(error = %e, "SCRAM exchange cannot start");
    Refused::from(ReasonCode::SERVER_UNAVAILABLE).into()
}

/// AUTH 0x18 Continue authentication with our method and `data`.
fn auth_packet(data: &[u8]) -> Packet {
    let mut auth = Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        ..Auth::default()
    };
    auth.properties.authentication_method = Some(ByteString::from_static(METHOD));
    auth.properties.authentication_data = Some(Bytes::copy_from_slice(data));
    Packet::Auth(auth)
}

/// Sends `challenge` and returns the data of the client's AUTH 0x18 answer.
async fn round_trip<R, W>(link: Link<'_, R, W>, challenge: Packet) -> Result<Bytes, Failed>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if let Err(e) = write_packet(link.wr, &challenge, link.codec.version).await {
        debug!(error = %e, "connection lost sending AUTH");
        return Err(Failed::Lost);
    }
    let read = tokio::time::timeout_at(link.deadline, read_first(link.rd, link.codec, link.buf));
    let next = tokio::select! {
        r = read => r,
        () = link.shutdown.cancelled() => return Err(Failed::Lost),
    };
    let auth = match next {
        Err(_) => {
            info!("no AUTH answer before the connect timeout, closing");
            return Err(Failed::Lost);
        }
        Ok(Err(Some(e))) => {
            warn!(error = %e, "invalid packet during authentication, closing");
            return Err(Failed::Lost);
        }
        Ok(Err(None) | Ok(Packet::Disconnect(_))) => {
            debug!("connection closed during authentication");
            return Err(Failed::Lost);
        }
        Ok(Ok(Packet::Auth(a))) => a,
        Ok(Ok(other)) => {
            warn!(packet = %other.packet_type(), "not AUTH during authentication [MQTT-4.12.0-1]");
            return Err(Refused::from(ReasonCode::PROTOCOL_ERROR).into());
        }
    };
    let same_method = auth.properties.authentication_method.as_deref() == Some(METHOD);
    if auth.reason_code != ReasonCode::CONTINUE_AUTHENTICATION || !same_method {
        warn!(reason = %auth.reason_code, "AUTH answer with another reason or method [MQTT-4.12.0-5]");
        return Err(Refused::from(ReasonCode::PROTOCOL_ERROR).into());
    }
    Ok(auth.properties.authentication_data.unwrap_or_default())
}
