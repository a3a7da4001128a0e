//! Mosquitto password files, read and verified exactly as mosquitto 2.0 does.
//!
//! Each line is `USER:HASH`, where HASH is one of the two forms `mosquitto_passwd` writes:
//!
//! - `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512 with a 64-byte output (mosquitto 2.0's
//!   default, 101 iterations, 12-byte salt);
//! - `$6$SALT$HASH`: one SHA-512 of the password followed by the salt (`mosquitto_passwd -H
//!   sha512`, and every file written before 2.0).
//!
//! SALT and HASH are padded standard base64. Blank lines and lines starting with `#` are ignored;
//! any other line that does not parse is an error naming the file and the line, because a typo in
//! a password file should stop the gateway at start, not lock a device out later. When a user
//! appears twice the last line wins: mosquitto keeps its users in a uthash table whose lookup
//! finds the most recently added entry of a key, so that is what an operator's file already
//! means under mosquitto.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::scram::{Credentials, ScramUser};

/// PBKDF2 iterations `mosquitto_passwd` 2.0 writes (`$7$101$...`); we write the same so files
/// look alike and check at the same cost.
pub const DEFAULT_ITERATIONS: u32 = 101;
/// Salt length `mosquitto_passwd` 2.0 uses.
pub const SALT_LEN: usize = 12;
/// Length of a SHA-512 digest, and of the PBKDF2 output mosquitto stores.
const HASH_LEN: usize = 64;

/// A password file that cannot be read, written or parsed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// The file cannot be read.
    // The I/O error is in the message rather than a `source`, so the one line an operator sees
    // says it all and a report does not repeat it as its cause.
    #[error("cannot read password file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The file cannot be written.
    #[error("cannot write password file {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A line does not parse.
    #[error("password file {}, line {line}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// `aviary passwd -D` for a user the file does not have.
    #[error("user {user:?} is not in password file {}", path.display())]
    NoSuchUser {
        /// The file.
        path: PathBuf,
        /// The user.
        user: String,
    },
    /// A username mosquitto could not read back (empty, or with `:` or a control character).
    #[error("invalid username {0:?}: it must be non-empty, without ':' or control characters")]
    BadUsername(String),
    /// The operating system gave no randomness for a salt.
    #[error("cannot get random bytes for a salt: {0}")]
    Random(getrandom::Error),
}

/// One user's stored hash.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Hash {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
    /// `$6$`: SHA-512(password || salt).
    Sha512 { salt: Vec<u8>, hash: [u8; HASH_LEN] },
}

// Hashes are not secrets the way passwords are, but there is no reason to print them in logs.
impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pbkdf2 { iterations, .. } => write!(f, "Pbkdf2({iterations} iterations)"),
            Self::Sha512 { .. } => f.write_str("Sha512"),
        }
    }
}

impl Hash {
    /// Parses the part of a line after `USER:`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.split('$');
        if parts.next() != Some("") {
            return Err("the hash must start with $6$ or $7$".to_owned());
        }
        let hash = match parts.next() {
            Some("7") => {
                let iterations = parts.next().ok_or("missing iteration count")?;
                let iterations: u32 = iterations
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("bad iteration count {iterations:?}"))?;
                let salt = decode_salt(parts.next())?;
                let hash = decode_hash(parts.next())?;
                Self::Pbkdf2 {
                    iterations,
                    salt,
                    hash,
                }
            }
            Some("6") => {
                let salt = decode_salt(parts.next())?;
                let hash = decode_hash(parts.next())?;
                Self::Sha512 { salt, hash }
            }
            _ => return Err("unknown hash type: expected $6$ or $7$".to_owned()),
        };
        if parts.next().is_some() {
            return Err("extra `$` fields after the hash".to_owned());
        }
        Ok(hash)
    }

    /// A new `$7$` hash of `password` with a fresh random salt, as `mosquitto_passwd` makes.
    pub(crate) fn new_pbkdf2(password: &[u8]) -> Result<Self, PasswordFileError> {
        let mut salt = vec![0; SALT_LEN];
        getrandom::fill(&mut salt).map_err(PasswordFileError::Random)?;
        let hash = pbkdf2_sha512(password, &salt, DEFAULT_ITERATIONS);
        Ok(Self::Pbkdf2 {
            iterations: DEFAULT_ITERATIONS,
            salt,
            hash,
        })
    }

    /// What SCRAM-SHA-512 needs to check this user: a `$7$` hash is SCRAM's SaltedPassword
    /// (see `auth::scram`); a `$6$` one cannot serve, so `None`.
    pub(crate) fn scram(&self) -> Option<Credentials> {
        match self {
            Self::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => Some(Credentials::from_salted(hash, salt, *iterations)),
            Self::Sha512 { .. } => None,
        }
    }

    /// Whether `password` matches. The digests are compared in constant time, so the time taken
    /// says nothing about how many leading bytes matched.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        let (computed, stored) = match self {
            Self::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => (pbkdf2_sha512(password, salt, *iterations), hash),
            Self::Sha512 { salt, hash } => {
                let mut d = Sha512::new();
                d.update(password);
                d.update(salt);
                (d.finalize().into(), hash)
            }
        };
        computed.ct_eq(stored).into()
    }
}

/// The file form, `$7$ITER$SALT$HASH` or `$6$SALT$HASH`.
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                STANDARD.encode(salt),
                STANDARD.encode(hash)
            ),
            Self::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
            }
        }
    }
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

fn decode_salt(field: Option<&str>) -> Result<Vec<u8>, String> {
    let field = field.filter(|f| !f.is_empty()).ok_or("missing salt")?;
    STANDARD
        .decode(field)
        .map_err(|e| format!("salt is not base64: {e}"))
}

fn decode_hash(field: Option<&str>) -> Result<[u8; HASH_LEN], String> {
    let field = field.filter(|f| !f.is_empty()).ok_or("missing hash")?;
    let bytes = STANDARD
        .decode(field)
        .map_err(|e| format!("hash is not base64: {e}"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("hash is {len} bytes, expected {HASH_LEN}"))
}

/// Splits a line into `(user, hash)`, or `None` for a blank or `#` comment line. Surrounding
/// whitespace (a `\r` from an editor, say) is trimmed, as mosquitto does.
pub(crate) fn split_line(line: &str) -> Option<Result<(&str, &str), String>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(match line.split_once(':') {
        Some(("", _)) => Err("empty username".to_owned()),
        Some((user, hash)) => Ok((user, hash)),
        None => Err("expected USER:HASH".to_owned()),
    })
}

/// The users of a password file and their hashes.
#[derive(Debug, Default)]
pub struct PasswordFile {
    users: HashMap<String, Hash>,
}

impl PasswordFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, PasswordFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| PasswordFileError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of a password file; `path` is only named in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, PasswordFileError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let parsed = match split_line(line) {
                None => continue,
                Some(parsed) => parsed,
            };
            let (user, hash) = parsed
                .and_then(|(user, hash)| Ok((user, Hash::parse(hash)?)))
                .map_err(|reason| PasswordFileError::Parse {
                    path: path.to_owned(),
                    line: i + 1,
                    reason,
                })?;
            // Last line wins, as in mosquitto (see the module header).
            users.insert(user.to_owned(), hash);
        }
        Ok(Self { users })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// What SCRAM-SHA-512 needs to check `user`.
    pub fn scram(&self, user: &str) -> ScramUser {
        match self.users.get(user).map(Hash::scram) {
            Some(Some(credentials)) => ScramUser::Known(credentials),
            Some(None) => ScramUser::NoScram,
            None => ScramUser::Unknown,
        }
    }

    /// Whether `user` is in the file and `password` is theirs.
    ///
    /// An unknown user costs a PBKDF2 run like a known one, so timing does not tell an attacker
    /// which usernames exist.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                let decoy = Hash::Pbkdf2 {
                    iterations: DEFAULT_ITERATIONS,
                    salt: vec![0; SALT_LEN],
                    hash: [0; HASH_LEN],
                };
                // Computed and thrown away; black_box keeps the optimiser from skipping it.
                std::hint::black_box(decoy.verify(password));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by mosquitto_passwd 2.0.11: `mosquitto_passwd -b -c pw alice secret`.
    const ALICE_7: &str = "alice:$7$101$FbqQ7BqOQaMSvgRt$sztDGvOQdwLfY77ARSfA/hqvUiedDnSC7JjykMImFPywRq36E6GJ3IUPfWj6kZqk25eqUflzy0vnRqp7PfyEzA==";
    /// Made by mosquitto_passwd 2.0.11: `mosquitto_passwd -b -H sha512 pw bob s2`.
    const BOB_6: &str = "bob:$6$dENM4Uy+lyiiXUPT$W96dAH9HugqAtoPbbgqM1/ALdZ76af7BotPoZhOysG4Cupw4M58X21ds4KvwbBgVmCZwth6CZ+yd9K4h4e/cLw==";

    fn parse(text: &str) -> Result<PasswordFile, PasswordFileError> {
        PasswordFile::parse(Path::new("pw"), text)
    }

    #[test]
    fn both_formats_from_mosquitto_passwd() {
        let file = parse(&format!("{ALICE_7}\n{BOB_6}\n")).unwrap();
        assert_eq!(file.len(), 2);
        assert!(file.verify("alice", b"secret"));
        assert!(!file.verify("alice", b"secreT"));
        assert!(!file.verify("alice", b""));
        assert!(file.verify("bob", b"s2"));
        assert!(!file.verify("bob", b"secret"));
        assert!(!file.verify("carol", b"secret"));
    }

    #[test]
    fn comments_blank_lines_and_crlf_are_ignored() {
        let text = format!("# users\n\n   \n{ALICE_7}\r\n#bob:nope\n");
        let file = parse(&text).unwrap();
        assert_eq!(file.len(), 1);
        assert!(file.verify("alice", b"secret"));
    }

    #[test]
    fn last_duplicate_wins() {
        let bob_as_alice = BOB_6.replacen("bob", "alice", 1);
        let file = parse(&format!("{ALICE_7}\n{bob_as_alice}\n")).unwrap();
        assert_eq!(file.len(), 1);
        assert!(file.verify("alice", b"s2"));
        assert!(!file.verify("alice", b"secret"));
    }

    #[test]
    fn bad_lines_are_errors_with_their_line_number() {
        let salt = STANDARD.encode([1; 12]);
        let hash = STANDARD.encode([2; 64]);
        let cases = [
            "alice".to_owned(),
            ":$6$AAAA$AAAA".to_owned(),
            "alice:plaintext".to_owned(),
            "alice:$5$abc$def".to_owned(),
            format!("alice:$7$0${salt}${hash}"),
            format!("alice:$7$x${salt}${hash}"),
            format!("alice:$7$101$${hash}"),
            format!("alice:$7$101${salt}$"),
            format!("alice:$6${salt}$!!!!"),
            format!("alice:$6${salt}${}", STANDARD.encode([2; 32])),
            format!("alice:$6${salt}${hash}$extra"),
        ];
        for bad in cases {
            let text = format!("# header\n{ALICE_7}\n\n{bad}\n{BOB_6}\n");
            match parse(&text) {
                Err(PasswordFileError::Parse { line, ref path, .. }) => {
                    assert_eq!(line, 4, "{bad}");
                    assert_eq!(path, Path::new("pw"));
                }
                other => panic!("{bad}: {other:?}"),
            }
            let message = parse(&text).unwrap_err().to_string();
            assert!(message.contains("pw, line 4"), "{message}");
        }
    }

    #[test]
    fn our_hashes_round_trip() {
        let hash = Hash::new_pbkdf2(b"hunter2").unwrap();
        let line = hash.to_string();
        assert!(line.starts_with("$7$101$"), "{line}");
        let Hash::Pbkdf2 { ref salt, .. } = hash else {
            panic!("not pbkdf2")
        };
        assert_eq!(salt.len(), SALT_LEN);
        let parsed = Hash::parse(&line).unwrap();
        assert_eq!(parsed, hash);
        assert!(parsed.verify(b"hunter2"));
        assert!(!parsed.verify(b"hunter3"));
        // A fresh salt each time.
        assert_ne!(Hash::new_pbkdf2(b"hunter2").unwrap(), hash);
    }

    #[test]
    fn compare_is_constant_time_over_the_whole_digest() {
        // The verdict comes from subtle's ct_eq over all 64 bytes; check that digests differing
        // only in the first or only in the last byte are both rejected, i.e. no prefix shortcut.
        let Hash::Sha512 { salt, hash } = Hash::parse(BOB_6.split_once(':').unwrap().1).unwrap()
        else {
            panic!("not sha512")
        };
        for i in [0, HASH_LEN - 1] {
            let mut near = hash;
            near[i] ^= 1;
            let h = Hash::Sha512 {
                salt: salt.clone(),
                hash: near,
            };
            assert!(!h.verify(b"s2"));
        }
        assert!(Hash::Sha512 { salt, hash }.verify(b"s2"));
    }

    #[test]
    fn debug_does_not_print_hashes() {
        let file = parse(ALICE_7).unwrap();
        let shown = format!("{file:?}");
        assert!(!shown.contains("sztDG"), "{shown}");
    }
}
