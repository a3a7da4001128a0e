//! Tests of the Authorizer: logins, the ACL through one policy, and reloads.

use std::io::Write;
use std::path::Path;

use super::*;
use crate::auth::password::Hash;

/// The ACL of the pet-tracking documents (issue 11).
const SEED_ACL: &str = "\
user device-123
topic write pets/123/#
topic read pets/123/commands/#
user server
topic read pets/#
topic write pets/+/commands/#
user app-user-456
topic read pets/123/#
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write test file");
    path
}

fn passwd_line(user: &str, password: &str) -> String {
    format!(
        "{user}:{}\n",
        Hash::new_pbkdf2(password.as_bytes()).unwrap()
    )
}

fn authorizer(dir: &Path, auth: AuthConfig) -> Authorizer {
    Authorizer::load(&auth, &TlsConfig::default(), &ListenConfig::default())
        .unwrap_or_else(|e| panic!("load auth files in {}: {e}", dir.display()))
}

fn with_files(dir: &Path, passwd: &str, acl: Option<&str>) -> AuthConfig {
    AuthConfig {
        password_file: Some(write(dir, "passwd", passwd)),
        acl_file: acl.map(|a| write(dir, "acl", a)),
        ..AuthConfig::default()
    }
}

#[test]
fn logins_follow_the_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = authorizer(
        dir.path(),
        with_files(dir.path(), &passwd_line("alice", "pw"), None),
    );
    assert_eq!(
        a.authenticate(Some("alice"), Some(b"pw"), None)
            .unwrap()
            .as_deref(),
        Some("alice")
    );
    assert_eq!(
        a.authenticate(Some("alice"), Some(b"nope"), None),
        Err(Refusal::BadCredentials)
    );
    assert_eq!(
        a.authenticate(Some("mallory"), Some(b"pw"), None),
        Err(Refusal::BadCredentials)
    );
    assert_eq!(
        a.authenticate(Some("alice"), None, None),
        Err(Refusal::BadCredentials)
    );
    // A password file turns anonymous access off unless it is asked for.
    assert_eq!(
        a.authenticate(None, None, None),
        Err(Refusal::NotAuthorized)
    );
    let open = AuthConfig {
        allow_anonymous: Some(true),
        ..with_files(dir.path(), &passwd_line("alice", "pw"), None)
    };
    let a = authorizer(dir.path(), open);
    assert_eq!(a.authenticate(None, None, None), Ok(None));
}

#[test]
fn without_a_password_file_a_username_proves_nothing() {
    let a = Authorizer::default();
    assert_eq!(
        a.authenticate(Some("anyone"), None, None)
            .unwrap()
            .as_deref(),
        Some("anyone")
    );
    let closed = AuthConfig {
        allow_anonymous: Some(false),
        ..AuthConfig::default()
    };
    let a = Authorizer::load(&closed, &TlsConfig::default(), &ListenConfig::default()).unwrap();
    assert_eq!(
        a.authenticate(Some("anyone"), Some(b"x"), None),
        Err(Refusal::NotAuthorized)
    );
}

#[test]
fn a_certificate_identity_can_be_the_username() {
    let tls = TlsConfig {
        cafile: Some("ca.pem".into()),
        use_identity_as_username: true,
        ..TlsConfig::default()
    };
    let a = Authorizer::load(&AuthConfig::default(), &tls, &ListenConfig::default()).unwrap();
    assert_eq!(
        a.authenticate(Some("ignored"), Some(b"ignored"), Some("device-7"))
            .unwrap()
            .as_deref(),
        Some("device-7")
    );
    assert_eq!(
        a.authenticate(Some("alice"), Some(b"pw"), None),
        Err(Refusal::NotAuthorized)
    );
    assert!(!a.anonymous_allowed());
}

#[test]
fn the_seed_acl_applies_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let a = authorizer(
        dir.path(),
        with_files(dir.path(), &passwd_line("server", "s"), Some(SEED_ACL)),
    );
    assert!(a.has_acl());
    let dev = Some("device-123");
    assert!(a.can_publish(dev, "c", "pets/123/location"));
    assert!(!a.can_publish(dev, "c", "pets/124/location"));
    assert!(a.can_read(dev, "c", "pets/123/commands/feed"));
    assert!(!a.can_read(dev, "c", "pets/123/location"));
    let app = Some("app-user-456");
    assert!(a.can_subscribe(app, "c", "pets/+/location"));
    assert!(a.can_read(app, "c", "pets/123/location"));
    assert!(!a.can_read(app, "c", "pets/7/location"));
    assert!(!a.can_subscribe(app, "c", "pets/7/#"));
    // No rule for anonymous clients: everything is denied.
    assert!(!a.can_read(None, "c", "pets/123/location"));
}

#[test]
fn reload_swaps_both_files_or_neither() {
    let dir = tempfile::tempdir().unwrap();
    let auth = with_files(dir.path(), &passwd_line("alice", "old"), Some(SEED_ACL));
    let a = authorizer(dir.path(), auth);
    write(dir.path(), "passwd", &passwd_line("alice", "new"));
    write(dir.path(), "acl", "user alice\ntopic read pets/1/#\n");
    a.reload().unwrap();
    assert!(a.authenticate(Some("alice"), Some(b"new"), None).is_ok());
    assert!(a.can_read(Some("alice"), "c", "pets/1/location"));
    // A broken ACL keeps the rules in force, the password file included.
    write(dir.path(), "passwd", &passwd_line("alice", "newer"));
    write(dir.path(), "acl", "user alice\nfrobnicate\n");
    let e = a.reload().unwrap_err().to_string();
    assert!(e.contains("line 2"), "{e}");
    assert!(a.authenticate(Some("alice"), Some(b"new"), None).is_ok());
    assert!(a.authenticate(Some("alice"), Some(b"newer"), None).is_err());
}

#[test]
fn bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = AuthConfig {
        password_file: Some(dir.path().join("nope")),
        ..AuthConfig::default()
    };
    let e = Authorizer::load(&missing, &TlsConfig::default(), &ListenConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    let bad_acl = AuthConfig {
        acl_file: Some(write(dir.path(), "acl", "topic read a\ntopic what a/b\n")),
        ..AuthConfig::default()
    };
    let e = Authorizer::load(&bad_acl, &TlsConfig::default(), &ListenConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("acl") && e.contains("line 2"), "{e}");
}

#[test]
fn the_api_token_is_compared_whole() {
    let auth = AuthConfig {
        api_token: Some("0123456789abcdef".into()),
        ..AuthConfig::default()
    };
    let a = Authorizer::load(&auth, &TlsConfig::default(), &ListenConfig::default()).unwrap();
    assert!(a.api_token_matches("0123456789abcdef"));
    assert!(!a.api_token_matches("0123456789abcde"));
    assert!(!a.api_token_matches(""));
    assert!(!Authorizer::default().api_token_matches(""));
}
