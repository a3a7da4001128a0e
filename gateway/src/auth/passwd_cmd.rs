//! `aviary passwd [-D] FILE USER`: add, update or delete a user in a mosquitto password file,
//! the way `mosquitto_passwd` does, so either tool reads the other's output.
//!
//! New and updated users get a `$7$` hash (PBKDF2-SHA512, 101 iterations, random 12-byte salt,
//! like `mosquitto_passwd` 2.0). Every other line, comments included, is kept as it was and in
//! its place. The file is replaced atomically (a temporary file in the same directory, synced,
//! then renamed over it), so the broker reloading it never sees half a file. A new file is
//! created with mode 0600 because it holds password hashes; an existing file keeps its mode.
//!
//! The password is prompted for twice without echo when stdin is a terminal (rpassword reads
//! the terminal itself), and read as one line from stdin otherwise, for scripts.

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::password::{split_line, Hash, PasswordFileError};

/// Arguments of `aviary passwd`.
#[derive(Debug, clap::Args)]
pub struct PasswdArgs {
    /// Delete USER instead of adding or updating it.
    #[arg(short = 'D')]
    pub delete: bool,
    /// The password file; created (mode 0600) if missing.
    pub file: PathBuf,
    /// The user to add, update or delete.
    pub user: String,
}

/// Why `aviary passwd` failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    /// Reading, checking or writing the file failed.
    #[error(transparent)]
    File(#[from] PasswordFileError),
    /// The password could not be read.
    #[error("cannot read the password: {0}")]
    Input(io::Error),
    /// The two prompted passwords differ.
    #[error("passwords do not match")]
    Mismatch,
    /// An empty password was given.
    #[error("empty password")]
    Empty,
}

/// Runs `aviary passwd`.
pub fn run(args: &PasswdArgs) -> Result<(), PasswdError> {
    check_username(&args.user)?;
    if args.delete {
        return Ok(edit(&args.file, &args.user, None)?);
    }
    let password = read_password()?;
    let hash = Hash::new_pbkdf2(password.as_bytes())?;
    Ok(edit(&args.file, &args.user, Some(&hash))?)
}

/// Rejects usernames mosquitto could not read back from the file.
fn check_username(user: &str) -> Result<(), PasswordFileError> {
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
        return Err(PasswordFileError::BadUsername(user.to_owned()));
    }
    Ok(())
}

fn read_password() -> Result<String, PasswdError> {
    let stdin = io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(PasswdError::Input)?;
        let again = rpassword::prompt_password("Reenter password: ").map_err(PasswdError::Input)?;
        if first != again {
            return Err(PasswdError::Mismatch);
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(PasswdError::Input)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        return Err(PasswdError::Empty);
    }
    Ok(password)
}

/// Sets `user`'s hash (or deletes the user when `hash` is `None`) in the file at `path`.
pub(crate) fn edit(path: &Path, user: &str, hash: Option<&Hash>) -> Result<(), PasswordFileError> {
    let (text, mode) = match fs::read_to_string(path) {
        Ok(text) => (text, existing_mode(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && hash.is_some() => (String::new(), None),
        Err(error) => {
            return Err(PasswordFileError::Read {
                path: path.to_owned(),
                error,
            })
        }
    };
    let new_text = match hash {
        Some(hash) => Some(set_user(&text, user, hash)),
        None => delete_user(&text, user),
    }
    .ok_or_else(|| PasswordFileError::NoSuchUser {
        path: path.to_owned(),
        user: user.to_owned(),
    })?;
    write_atomically(path, new_text.as_bytes(), mode).map_err(|error| PasswordFileError::Write {
        path: path.to_owned(),
        error,
    })
}

/// Writes a whole password file (replacing any file at `path`, atomically, mode 0600) with one
/// `$7$` entry per `(user, password)`: for generated files such as the demo's.
pub fn write_file(path: &Path, users: &[(&str, &str)]) -> Result<(), PasswordFileError> {
    let mut text = String::new();
    for (user, password) in users {
        check_username(user)?;
        let hash = Hash::new_pbkdf2(password.as_bytes())?;
        text.push_str(&format!("{user}:{hash}\n"));
    }
    write_atomically(path, text.as_bytes(), None).map_err(|error| PasswordFileError::Write {
        path: path.to_owned(),
        error,
    })
}

/// Whether `line` is the entry of `user`.
fn is_user_line(line: &str, user: &str) -> bool {
    matches!(split_line(line), Some(Ok((u, _))) if u == user)
}

/// The text with `user`'s line replaced in place (later duplicates dropped) or appended.
fn set_user(text: &str, user: &str, hash: &Hash) -> String {
    let entry = format!("{user}:{hash}");
    let mut out = String::with_capacity(text.len() + entry.len() + 1);
    let mut done = false;
    for line in text.lines() {
        if !is_user_line(line, user) {
            out.push_str(line);
        } else if done {
            continue;
        } else {
            out.push_str(&entry);
            done = true;
        }
        out.push('\n');
    }
    if !done {
        out.push_str(&entry);
        out.push('\n');
    }
    out
}

/// The text without `user`'s lines, or `None` if it has none (mosquitto_passwd -D fails then).
fn delete_user(text: &str, user: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    for line in text.lines() {
        if is_user_line(line, user) {
            found = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    found.then_some(out)
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> Option<u32> {
    None
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or(io::ErrorKind::InvalidInput)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".aviary-tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // The rename itself is durable only once the directory is synced; best effort, as some
    // platforms cannot open a directory for syncing.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::PasswordFile;

    fn hash(password: &str) -> Hash {
        Hash::new_pbkdf2(password.as_bytes()).unwrap()
    }

    #[test]
    fn add_update_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        edit(&path, "alice", Some(&hash("one"))).unwrap();
        edit(&path, "bob", Some(&hash("two"))).unwrap();
        let file = PasswordFile::load(&path).unwrap();
        assert!(file.verify("alice", b"one") && file.verify("bob", b"two"));

        edit(&path, "alice", Some(&hash("three"))).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let users: Vec<_> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(users, ["alice", "bob"], "updated in place");
        let file = PasswordFile::load(&path).unwrap();
        assert!(file.verify("alice", b"three") && !file.verify("alice", b"one"));

        edit(&path, "alice", None).unwrap();
        let file = PasswordFile::load(&path).unwrap();
        assert_eq!(file.len(), 1);
        assert!(!file.verify("alice", b"three") && file.verify("bob", b"two"));
        assert!(matches!(
            edit(&path, "alice", None),
            Err(PasswordFileError::NoSuchUser { .. })
        ));
    }

    #[test]
    fn other_lines_and_order_are_kept() {
        let text = "# top\nzed:$6$x$y\n\ncarol:$7$1$a$b\n# end\n";
        let h = hash("pw");
        let out = set_user(text, "carol", &h);
        assert_eq!(out, format!("# top\nzed:$6$x$y\n\ncarol:{h}\n# end\n"));
        let out = set_user(text, "dave", &h);
        assert_eq!(out, format!("{text}dave:{h}\n"));
        let out = set_user("a:1\nb:2\na:3\n", "a", &h);
        assert_eq!(out, format!("a:{h}\nb:2\n"), "later duplicates dropped");
        assert_eq!(
            delete_user(text, "zed").unwrap(),
            "# top\n\ncarol:$7$1$a$b\n# end\n"
        );
        assert_eq!(delete_user(text, "top"), None, "comments are not users");
    }

    #[cfg(unix)]
    #[test]
    fn new_file_is_private_and_existing_mode_is_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        edit(&path, "alice", Some(&hash("one"))).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        edit(&path, "bob", Some(&hash("two"))).unwrap();
        assert_eq!(mode(&path), 0o640);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }

    #[test]
    fn write_file_replaces_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        edit(&path, "old", Some(&hash("gone"))).unwrap();
        write_file(&path, &[("alice", "one"), ("bob", "two")]).unwrap();
        let file = PasswordFile::load(&path).unwrap();
        assert_eq!(file.len(), 2);
        assert!(file.verify("alice", b"one") && file.verify("bob", b"two"));
        assert!(!file.verify("old", b"gone"));
        assert!(write_file(&path, &[("a:b", "x")]).is_err());
    }

    #[test]
    fn deleting_from_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        assert!(matches!(
            edit(&path, "alice", None),
            Err(PasswordFileError::Read { .. })
        ));
    }

    #[test]
    fn usernames_mosquitto_cannot_read_are_refused() {
        for bad in ["", "a:b", "a\nb", "a\tb"] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        check_username("device-123").unwrap();
    }
}
