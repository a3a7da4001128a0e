//! SCRAM-SHA-512 (RFC 5802, with SHA-512 as RFC 7677 does SHA-256) as the server side of an
//! MQTT 5 enhanced authentication method.
//!
//! Why it needs no new secrets: a mosquitto `$7$` hash is PBKDF2-HMAC-SHA512(password, salt,
//! iterations) with a 64-byte output, which is exactly SCRAM's `SaltedPassword = Hi(password,
//! salt, i)`. From it the server derives `StoredKey` and `ServerKey` and never sees the
//! password. A `$6$` hash (one SHA-512 of password and salt) cannot be turned into a
//! SaltedPassword, so such users cannot use SCRAM.
//!
//! The exchange: client-first `n,,n=USER,r=CNONCE` → server-first `r=CNONCE+SNONCE,s=SALT,i=N`
//! → client-final `c=biws,r=NONCE,p=PROOF` → server-final `v=SIGNATURE`. Channel binding is not
//! supported (`n,,` or `y,,` only), nor `a=` authzid, nor SASLprep: a password is taken as the
//! bytes the client hashed, as mosquitto takes it. Every message is bounded in size.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// The MQTT Authentication Method this module answers to.
pub const METHOD: &str = "SCRAM-SHA-512";
/// Longest SCRAM message accepted from a client.
const MAX_MESSAGE: usize = 1024;
/// Longest username accepted (after unescaping).
const MAX_USERNAME: usize = 256;
/// Client nonce length bounds, in printable characters.
const NONCE_MIN: usize = 8;
const NONCE_MAX: usize = 128;
/// Random bytes in the server's nonce (base64 makes 32 characters of them).
const SERVER_NONCE_BYTES: usize = 24;
/// What the base64 of the GS2 header `n,,` is: the only `c=` we accept.
const CHANNEL_BINDING_NONE: [&str; 2] = ["biws", "eSws"];

const LEN: usize = 64;
type HmacSha512 = Hmac<Sha512>;

/// Why an exchange failed. Each is answered with a refused login; the text is for the log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// A message is not what RFC 5802 says it should be.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding or an authorization identity.
    #[error("unsupported SCRAM feature: {0}")]
    Unsupported(&'static str),
    /// The final message's nonce is not the one the server sent.
    #[error("SCRAM nonce mismatch")]
    NonceMismatch,
    /// The proof does not match: wrong password (or an unknown user).
    #[error("SCRAM proof does not match")]
    BadProof,
    /// The operating system gave no randomness for the server nonce.
    #[error("no randomness for a SCRAM nonce")]
    Random,
}

/// What the server keeps of a user to check a SCRAM proof (RFC 5802 section 3).
#[derive(Clone)]
pub struct Credentials {
    /// The PBKDF2 salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    stored_key: [u8; LEN],
    server_key: [u8; LEN],
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} iterations)", self.iterations)
    }
}

impl Credentials {
    /// From a SaltedPassword (a mosquitto `$7$` hash), its salt and iteration count.
    pub fn from_salted(salted: &[u8; LEN], salt: &[u8], iterations: u32) -> Self {
        let client_key = hmac(salted, &[b"Client Key"]);
        Self {
            salt: salt.to_vec(),
            iterations,
            stored_key: Sha512::digest(client_key).into(),
            server_key: hmac(salted, &[b"Server Key"]),
        }
    }

    /// Credentials no proof matches, for an unknown user: the exchange goes on as for a known
    /// one, so the answer does not say which usernames exist. The salt is the same for every
    /// attempt as `user` (an HMAC of the name under a key random per process), as a real
    /// user's is, so asking twice tells nothing either.
    pub fn decoy(user: &str, iterations: u32) -> Result<Self, ScramError> {
        static KEY: OnceLock<[u8; 32]> = OnceLock::new();
        let key = match KEY.get() {
            Some(key) => key,
            None => {
                let mut fresh = [0u8; 32];
                getrandom::fill(&mut fresh).map_err(|_| ScramError::Random)?;
                KEY.get_or_init(|| fresh)
            }
        };
        let mut keys = [0u8; 2 * LEN];
        getrandom::fill(&mut keys).map_err(|_| ScramError::Random)?;
        let mut this = Self {
            salt: hmac(key, &[user.as_bytes()])[..12].to_vec(),
            iterations,
            stored_key: [0; LEN],
            server_key: [0; LEN],
        };
        this.stored_key.copy_from_slice(&keys[..LEN]);
        this.server_key.copy_from_slice(&keys[LEN..]);
        Ok(this)
    }
}

/// What the password file says of a user who asks for SCRAM.
#[derive(Debug)]
pub enum ScramUser {
    /// A `$7$` user: these credentials check the proof.
    Known(Credentials),
    /// A `$6$` user: their hash cannot do SCRAM.
    NoScram,
    /// No such user (or no password file).
    Unknown,
}

/// The client-first message, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientFirst {
    /// The username, unescaped (`=2C` → `,`, `=3D` → `=`).
    pub username: String,
    nonce: String,
    /// `client-first-message-bare`, part of the AuthMessage.
    bare: String,
}

impl ClientFirst {
    /// Parses `gs2-header client-first-message-bare`.
    pub fn parse(data: &[u8]) -> Result<Self, ScramError> {
        let text = text(data)?;
        let rest = match text.split_once(',') {
            Some(("n" | "y", rest)) => rest,
            Some((cb, _)) if cb.starts_with("p=") => {
                return Err(ScramError::Unsupported("channel binding"))
            }
            _ => return Err(ScramError::Malformed("gs2 header")),
        };
        let bare = match rest.split_once(',') {
            Some(("", bare)) => bare,
            Some(_) => return Err(ScramError::Unsupported("authorization identity")),
            None => return Err(ScramError::Malformed("gs2 header")),
        };
        // `m=` is a mandatory extension, which we do not know; extensions after r= are ignored.
        if bare.starts_with("m=") {
            return Err(ScramError::Unsupported("mandatory extension"));
        }
        let mut fields = bare.split(',');
        let user = attr(fields.next(), 'n')?;
        let nonce = attr(fields.next(), 'r')?;
        let username = unescape(user)?;
        if username.is_empty() || username.len() > MAX_USERNAME {
            return Err(ScramError::Malformed("username length"));
        }
        check_nonce(nonce)?;
        Ok(Self {
            username,
            nonce: nonce.to_owned(),
            bare: bare.to_owned(),
        })
    }
}

/// A server between its first message and the client's final one.
#[derive(Debug)]
pub struct ServerFirst {
    credentials: Credentials,
    client_first_bare: String,
    /// `server-first-message`, sent and part of the AuthMessage.
    message: String,
    nonce: String,
}

impl ServerFirst {
    /// Answers `first` for a user with `credentials`, adding a fresh random server nonce.
    pub fn new(first: &ClientFirst, credentials: Credentials) -> Result<Self, ScramError> {
        let mut random = [0u8; SERVER_NONCE_BYTES];
        getrandom::fill(&mut random).map_err(|_| ScramError::Random)?;
        Ok(Self::with_nonce(
            first,
            credentials,
            &STANDARD.encode(random),
        ))
    }

    /// As [`new`](Self::new) with a given server nonce (tests, RFC vectors).
    fn with_nonce(first: &ClientFirst, credentials: Credentials, server_nonce: &str) -> Self {
        let nonce = format!("{}{server_nonce}", first.nonce);
        let message = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&credentials.salt),
            credentials.iterations
        );
        Self {
            credentials,
            client_first_bare: first.bare.clone(),
            message,
            nonce,
        }
    }

    /// The server-first message to send.
    pub fn message(&self) -> &[u8] {
        self.message.as_bytes()
    }

    /// Checks the client-final message. Its proof right, the server-final message to send.
    pub fn finish(&self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = text(client_final)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut fields = without_proof.split(',');
        let binding = attr(fields.next(), 'c')?;
        if !CHANNEL_BINDING_NONE.contains(&binding) {
            return Err(ScramError::Unsupported("channel binding"));
        }
        let nonce = attr(fields.next(), 'r')?;
        if !bool::from(nonce.as_bytes().ct_eq(self.nonce.as_bytes())) {
            return Err(ScramError::NonceMismatch);
        }
        let proof: [u8; LEN] = STANDARD
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("proof"))?;
        let auth_message = [
            self.client_first_bare.as_bytes(),
            b",",
            self.message.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let c = &self.credentials;
        let signature = hmac(&c.stored_key, &auth_message);
        // ClientKey = ClientProof XOR ClientSignature; it must hash to StoredKey.
        let client_key: [u8; LEN] = std::array::from_fn(|i| proof[i] ^ signature[i]);
        let stored: [u8; LEN] = Sha512::digest(client_key).into();
        if !bool::from(stored.ct_eq(&c.stored_key)) {
            return Err(ScramError::BadProof);
        }
        let server_signature = hmac(&c.server_key, &auth_message);
        Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
    }
}

/// HMAC-SHA512 of the concatenation of `parts`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; LEN] {
    let mut mac = HmacSha512::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn text(data: &[u8]) -> Result<&str, ScramError> {
    if data.len() > MAX_MESSAGE {
        return Err(ScramError::Malformed("message too long"));
    }
    std::str::from_utf8(data).map_err(|_| ScramError::Malformed("not UTF-8"))
}

/// The value of `field`, which must be `NAME=value`.
fn attr(field: Option<&str>, name: char) -> Result<&str, ScramError> {
    field
        .and_then(|f| f.strip_prefix(name))
        .and_then(|f| f.strip_prefix('='))
        .ok_or(ScramError::Malformed("attribute missing or out of order"))
}

/// RFC 5802 `saslname`: `=2C` is `,`, `=3D` is `=`, any other `=` is an error.
fn unescape(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escaped = rest.get(i..i + 3);
        out.push(match escaped {
            Some("=2C") => ',',
            Some("=3D") => '=',
            _ => return Err(ScramError::Malformed("username escape")),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A nonce is printable ASCII without `,`, of bounded length.
fn check_nonce(nonce: &str) -> Result<(), ScramError> {
    let printable = nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b',');
    if !printable || !(NONCE_MIN..=NONCE_MAX).contains(&nonce.len()) {
        return Err(ScramError::Malformed("nonce"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
