//! Who the map connects as: nobody (the gateway lets anyone in), or a user who signed in.
//!
//! A [`Session`] changes only through [`SessionAction`]s, like [`PetsState`](super::PetsState).
//! The credentials live here, in memory, for as long as the user is signed in: the MQTT client
//! needs them for every reconnect. They never go into a URL or the browser's storage, so
//! closing or reloading the tab signs out.

use std::fmt;
use std::rc::Rc;

/// A username and password, as typed into the sign-in form.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// The username.
    pub(crate) username: String,
    /// The password.
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password: Debug output ends up in consoles and panics.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `Basic …`, the `Authorization` header of the gateway's REST API (RFC 7617, UTF-8).
    pub(crate) fn basic_auth(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64(pair.as_bytes()))
    }
}

/// Why the gateway refused a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// CONNACK 0x86/0x87 (0x04/0x05 in MQTT 3.1.1): wrong or missing username or password.
    BadCredentials,
    /// Any other refusal, as the client describes it.
    Other(String),
}

/// Where the user stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Session {
    /// `/config.json` is not in yet.
    Loading,
    /// The gateway lets anyone in: connect without credentials.
    Open,
    /// Nobody signed in: show the form, with why the last attempt failed, if it did.
    SignedOut {
        /// A message for the form.
        error: Option<String>,
    },
    /// Connect as this user.
    SignedIn(Rc<Credentials>),
}

/// What can happen to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionAction {
    /// The gateway's config arrived.
    Configured {
        /// Whether anonymous clients are refused.
        auth_required: bool,
    },
    /// The form was submitted.
    SignIn(Credentials),
    /// The gateway refused the connection.
    Refused(Refusal),
    /// The user signed out.
    SignOut,
}

impl Session {
    /// The session after `action`.
    pub(crate) fn next(&self, action: SessionAction) -> Self {
        match (self, action) {
            (Self::Loading, SessionAction::Configured { auth_required }) => {
                if auth_required {
                    Self::SignedOut { error: None }
                } else {
                    Self::Open
                }
            }
            // Only the first config counts: the page does not fetch it twice.
            (_, SessionAction::Configured { .. }) => self.clone(),
            (_, SessionAction::SignIn(credentials)) => Self::SignedIn(Rc::new(credentials)),
            (Self::SignedIn(_), SessionAction::Refused(Refusal::BadCredentials)) => {
                Self::SignedOut {
                    error: Some("Wrong username or password.".to_owned()),
                }
            }
            // The config said anyone may connect, but the gateway wants a user after all.
            (Self::Open, SessionAction::Refused(Refusal::BadCredentials)) => Self::SignedOut {
                error: Some("This gateway asks you to sign in.".to_owned()),
            },
            (Self::Open | Self::SignedIn(_), SessionAction::Refused(Refusal::Other(why))) => {
                Self::SignedOut {
                    error: Some(format!("The gateway refused the connection: {why}")),
                }
            }
            // A refusal from a connection already given up on.
            (Self::Loading | Self::SignedOut { .. }, SessionAction::Refused(_)) => self.clone(),
            (_, SessionAction::SignOut) => Self::SignedOut { error: None },
        }
    }

    /// Whether to connect at all.
    pub(crate) fn connects(&self) -> bool {
        matches!(self, Self::Open | Self::SignedIn(_))
    }

    /// Who to connect as; `None` is anonymous.
    pub(crate) fn credentials(&self) -> Option<Rc<Credentials>> {
        match self {
            Self::SignedIn(credentials) => Some(Rc::clone(credentials)),
            Self::Loading | Self::Open | Self::SignedOut { .. } => None,
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl yew::Reducible for Session {
    type Action = SessionAction;

    fn reduce(self: Rc<Self>, action: SessionAction) -> Rc<Self> {
        Rc::new(self.next(action))
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Credentials {
        Credentials {
            username: "alice".to_owned(),
            password: "alice-demo".to_owned(),
        }
    }

    #[test]
    fn the_config_decides_whether_to_ask() {
        let open = Session::Loading.next(SessionAction::Configured {
            auth_required: false,
        });
        assert_eq!(open, Session::Open);
        assert!(open.connects() && open.credentials().is_none());
        let ask = Session::Loading.next(SessionAction::Configured {
            auth_required: true,
        });
        assert_eq!(ask, Session::SignedOut { error: None });
        assert!(!ask.connects() && !Session::Loading.connects());
    }

    #[test]
    fn sign_in_refusal_and_sign_out() {
        let out = Session::SignedOut { error: None };
        let signed_in = out.next(SessionAction::SignIn(alice()));
        assert!(signed_in.connects());
        assert_eq!(signed_in.credentials(), Some(Rc::new(alice())));

        let refused = signed_in.next(SessionAction::Refused(Refusal::BadCredentials));
        let Session::SignedOut { error: Some(error) } = &refused else {
            panic!("{refused:?}")
        };
        assert!(error.contains("Wrong username or password"), "{error}");
        assert!(!refused.connects());
        // A late refusal from the connection given up on changes nothing.
        assert_eq!(
            refused.next(SessionAction::Refused(Refusal::BadCredentials)),
            refused
        );

        let other = signed_in.next(SessionAction::Refused(Refusal::Other(
            "CONNECTION_REFUSED: Server unavailable".to_owned(),
        )));
        assert!(
            matches!(other, Session::SignedOut { error: Some(e) } if e.contains("Server unavailable"))
        );

        let back_out = signed_in.next(SessionAction::SignOut);
        assert_eq!(back_out, Session::SignedOut { error: None });
    }

    #[test]
    fn an_open_gateway_that_refuses_asks_for_a_user() {
        let asked = Session::Open.next(SessionAction::Refused(Refusal::BadCredentials));
        assert!(matches!(asked, Session::SignedOut { error: Some(e) } if e.contains("sign in")));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", Session::SignedIn(Rc::new(alice())));
        assert!(
            shown.contains("alice") && !shown.contains("alice-demo"),
            "{shown}"
        );
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        assert_eq!(alice().basic_auth(), "Basic YWxpY2U6YWxpY2UtZGVtbw==");
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64("é".as_bytes()), "w6k=", "UTF-8, not Latin-1");
    }
}
