//! Who may connect, before a connection holds a client id: a client id within limits and a
//! valid sign-in (by password, or by the enhanced authentication already done), and why a
//! CONNECT is refused when it may not.

use std::sync::Arc;

use aviary_protocol::{Connect, ReasonCode};

use super::enhanced;
use crate::auth::Refusal;
use crate::broker::connection::ConnInfo;
use crate::broker::metrics::Limit;
use crate::broker::Broker;

/// Why a CONNECT is refused: the reason to send in the CONNACK, and
/// whether it is a failed login (counted, slowed down), and what to tell an MQTT 5 client.
pub(super) struct Refused {
    pub(super) code: ReasonCode,
    pub(super) login: bool,
    pub(super) reason: Option<&'static str>,
}

impl From<ReasonCode> for Refused {
    fn from(code: ReasonCode) -> Self {
        Self {
            code,
            login: false,
            reason: None,
        }
    }
}

/// Asks the Authorizer who the client is. MQTT 3.x has one code for both
/// refusals, 5 Not Authorized, as Mosquitto sends; MQTT 5 tells a wrong
/// password (0x86) from a client that may not connect at all (0x87).
fn authenticate(
    broker: &Broker,
    connect: &Connect,
    info: &ConnInfo,
) -> Result<Option<Arc<str>>, Refused> {
    let password = connect.password.as_deref();
    broker
        .authorizer()
        .authenticate(
            connect.username.as_deref(),
            password,
            info.peer_identity.as_deref(),
        )
        .map_err(|refusal| Refused {
            code: match (refusal, connect.protocol.is_v5()) {
                (Refusal::BadCredentials, true) => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                _ => ReasonCode::NOT_AUTHORIZED,
            },
            login: true,
            reason: None,
        })
}

/// The checks before a connection may hold a client id: a client id within limits, and a
/// valid sign-in, by password or by the enhanced authentication already done (`signed_in`).
/// The username it signed in as.
pub(super) fn admit(
    broker: &Broker,
    connect: &Connect,
    info: &ConnInfo,
    signed_in: Option<enhanced::SignedIn>,
) -> Result<Option<Arc<str>>, Refused> {
    if connect.client_id.len() > broker.config().max_client_id_length {
        broker.refused(
            Limit::ClientIdLength,
            format_args!(
                "a client id of {} bytes from {}",
                connect.client_id.len(),
                info.remote
            ),
        );
        return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID.into());
    }
    match signed_in {
        Some(s) => Ok(Some(s.username)),
        None => authenticate(broker, connect, info),
    }
}
