//! `aviary --demo` with authentication on: the demo's users and what they may do.
//!
//! At every start the demo writes a password file and an ACL into the data directory
//! (`demo-passwd`, `demo-acl`) and points `[auth]` at them, so the demo shows what a real
//! deployment does: two owners who each see only their own pets, and trackers that may each
//! publish only as their own pet.
//!
//! - `alice` / `alice-demo` owns pets 1–12, `bob` / `bob-demo` pets 13–25: each reads
//!   `pets/N/#` of their pets, and writes `pets/N/commands/#` and `pets/N/geofence` (the map's
//!   safe-zone editor publishes there).
//! - `tracker-pet-N` writes `pets/N/#` and reads `pets/N/commands/#`. The trackers' password is
//!   drawn from the OS at each start and handed to the in-process simulator only: nobody else
//!   needs it, and a fixed one in the source would let anyone publish as a pet.
//!
//! An operator's own `password_file` or `acl_file` wins: then nothing is written, the demo's
//! trackers connect without credentials, and the log says so.

use std::fmt::Write as _;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::auth::password::PasswordFileError;
use crate::config::Config;

use super::SimCredentials;

/// How many pets the demo simulates.
pub const PETS: u32 = 25;
/// Trackers sign in as this prefix followed by their pet's id.
pub const TRACKER_PREFIX: &str = "tracker-pet-";
/// The password file the demo writes into the data directory.
pub const PASSWORD_FILE: &str = "demo-passwd";
/// The ACL file the demo writes into the data directory.
pub const ACL_FILE: &str = "demo-acl";

/// A pet owner of the demo.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Username.
    pub name: &'static str,
    /// Password (public: it is printed at start).
    pub password: &'static str,
    /// The pets this owner sees.
    pub pets: RangeInclusive<u32>,
}

/// The demo's owners.
pub const OWNERS: [Owner; 2] = [
    Owner {
        name: "alice",
        password: "alice-demo",
        pets: 1..=12,
    },
    Owner {
        name: "bob",
        password: "bob-demo",
        pets: 13..=25,
    },
];

/// Why the demo's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoAuthError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {error}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The password file could not be written (or no random password could be drawn).
    #[error(transparent)]
    Passwords(#[from] PasswordFileError),
    /// The ACL file could not be written.
    #[error("cannot write the demo ACL {}: {error}", path.display())]
    Acl {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
}

/// What [`setup`] did: the trackers' credentials, when the demo's files are in force.
#[derive(Debug, Clone)]
pub struct DemoAuth {
    trackers: Option<SimCredentials>,
}

impl DemoAuth {
    /// The credentials the simulated trackers connect with, if any.
    pub fn tracker_credentials(&self) -> Option<SimCredentials> {
        self.trackers.clone()
    }

    /// What to tell someone opening the map at `url`.
    pub fn open_hint(&self, url: &str) -> String {
        if self.trackers.is_some() {
            format!("open {url} and {}", sign_in_hint())
        } else {
            format!("open {url} to see the map")
        }
    }
}

/// `sign in as alice / alice-demo (pets 1–12) or bob / bob-demo (pets 13–25)`.
pub fn sign_in_hint() -> String {
    let owners: Vec<String> = OWNERS
        .iter()
        .map(|o| {
            format!(
                "{} / {} (pets {}–{})",
                o.name,
                o.password,
                o.pets.start(),
                o.pets.end()
            )
        })
        .collect();
    format!("sign in as {}", owners.join(" or "))
}

/// Writes the demo's password file and ACL into `config.data_dir` and points `config.auth` at
/// them, unless the configuration names its own files.
pub fn setup(config: &mut Config) -> Result<DemoAuth, DemoAuthError> {
    let auth = &mut config.auth;
    if auth.password_file.is_some() || auth.acl_file.is_some() {
        tracing::warn!(
            password_file = ?auth.password_file,
            acl_file = ?auth.acl_file,
            "demo: keeping the configured [auth] files; the demo users (alice, bob) and the \
             trackers' credentials are not added to them, so the simulated trackers connect \
             without a password"
        );
        return Ok(DemoAuth { trackers: None });
    }
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|error| DemoAuthError::DataDir {
        path: dir.clone(),
        error,
    })?;
    let trackers = SimCredentials {
        username_prefix: TRACKER_PREFIX.to_owned(),
        password: random_password()?,
    };
    let passwords = dir.join(PASSWORD_FILE);
    write_passwords(&passwords, &trackers.password)?;
    let acl = dir.join(ACL_FILE);
    std::fs::write(&acl, acl_text()).map_err(|error| DemoAuthError::Acl {
        path: acl.clone(),
        error,
    })?;
    tracing::info!(
        password_file = %passwords.display(),
        acl_file = %acl.display(),
        "demo: authentication on; {}",
        sign_in_hint()
    );
    auth.password_file = Some(passwords);
    auth.acl_file = Some(acl);
    Ok(DemoAuth {
        trackers: Some(trackers),
    })
}

/// 24 random characters (144 bits) from the OS, base64url.
fn random_password() -> Result<String, PasswordFileError> {
    use base64::Engine as _;
    let mut bytes = [0_u8; 18];
    getrandom::fill(&mut bytes).map_err(PasswordFileError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn write_passwords(path: &Path, tracker_password: &str) -> Result<(), PasswordFileError> {
    let trackers: Vec<String> = (1..=PETS).map(tracker_name).collect();
    let users: Vec<(&str, &str)> = OWNERS
        .iter()
        .map(|o| (o.name, o.password))
        .chain(trackers.iter().map(|t| (t.as_str(), tracker_password)))
        .collect();
    crate::auth::passwd_cmd::write_file(path, &users)
}

fn tracker_name(pet: u32) -> String {
    format!("{TRACKER_PREFIX}{pet}")
}

/// The ACL, in Mosquitto's format.
fn acl_text() -> String {
    let mut text = String::from(
        "# Written by `aviary --demo` at every start: edits are overwritten.\n\
         # No rules before the first `user` line: anonymous clients may do nothing.\n",
    );
    for owner in &OWNERS {
        let _ = writeln!(text, "\nuser {}", owner.name);
        for pet in owner.pets.clone() {
            let _ = writeln!(text, "topic read pets/{pet}/#");
            let _ = writeln!(text, "topic write pets/{pet}/commands/#");
            let _ = writeln!(text, "topic write pets/{pet}/geofence");
        }
    }
    for pet in 1..=PETS {
        let _ = writeln!(text, "\nuser {}", tracker_name(pet));
        let _ = writeln!(text, "topic write pets/{pet}/#");
        let _ = writeln!(text, "topic read pets/{pet}/commands/#");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::PasswordFile;

    #[test]
    fn writes_both_files_and_points_auth_at_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let demo = setup(&mut config).unwrap();
        let creds = demo.tracker_credentials().expect("tracker credentials");
        assert_eq!(creds.username_prefix, "tracker-pet-");
        assert!(creds.password.len() >= 24);

        let passwords = config.auth.password_file.clone().unwrap();
        assert_eq!(passwords, dir.path().join("data/demo-passwd"));
        let file = PasswordFile::load(&passwords).unwrap();
        assert_eq!(file.len(), 2 + PETS as usize);
        assert!(file.verify("alice", b"alice-demo") && file.verify("bob", b"bob-demo"));
        assert!(file.verify("tracker-pet-25", creds.password.as_bytes()));
        assert!(!file.verify("alice", b"bob-demo"));

        let acl = std::fs::read_to_string(config.auth.acl_file.clone().unwrap()).unwrap();
        assert!(acl.contains("user alice\ntopic read pets/1/#\n"));
        assert!(acl
            .contains("user tracker-pet-7\ntopic write pets/7/#\ntopic read pets/7/commands/#\n"));
        assert!(!config.auth.anonymous_allowed(&config.listen));

        let again = setup(&mut Config {
            data_dir: config.data_dir.clone(),
            ..Config::default()
        })
        .unwrap();
        assert_ne!(
            again.tracker_credentials().unwrap().password,
            creds.password,
            "a fresh tracker password at every start"
        );
    }

    #[test]
    fn owners_cover_every_pet_once() {
        let mut seen: Vec<u32> = OWNERS.iter().flat_map(|o| o.pets.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=PETS).collect::<Vec<_>>());
    }

    #[test]
    fn the_configured_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.auth.acl_file = Some(dir.path().join("mine"));
        let demo = setup(&mut config).unwrap();
        assert!(demo.tracker_credentials().is_none());
        assert_eq!(config.auth.password_file, None);
        assert!(!dir.path().join(PASSWORD_FILE).exists());
        assert_eq!(demo.open_hint("http://x/"), "open http://x/ to see the map");
    }

    #[test]
    fn the_hint_names_both_owners() {
        assert_eq!(
            sign_in_hint(),
            "sign in as alice / alice-demo (pets 1–12) or bob / bob-demo (pets 13–25)"
        );
    }
}
