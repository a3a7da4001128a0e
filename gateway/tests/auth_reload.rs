//! SIGHUP and the real `aviary` binary: the password and ACL files are read again and put in
//! force for each open connection's next operation, without dropping it. (That a file that
//! does not load leaves the rules in force is `auth::tests::reload_swaps_both_files_or_neither`.)

mod common;

use std::path::Path;

use aviary::auth::passwd_cmd::write_file;
use aviary_protocol::{Connect, ProtocolVersion, QoS, ReasonCode};
use bytes::Bytes;
use common::process::GatewayProcess;
use common::raw::{self, Raw};
use common::within;

fn device(password: &str) -> Connect {
    let mut c = Connect::new(ProtocolVersion::V5, "tracker-1".to_owned());
    c.username = Some("device-1".into());
    c.password = Some(Bytes::copy_from_slice(password.as_bytes()));
    c
}

fn acl(dir: &Path, pets: &[u32]) {
    let mut text = String::from("user device-1\n");
    for pet in pets {
        text += &format!("topic write pets/{pet}/#\n");
    }
    std::fs::write(dir.join("acl"), text).expect("write the ACL");
}

/// Publishes on `topic` until the PUBACK says the ACL allows it, which it must within the
/// wait: the reload follows the signal, not the other way round.
async fn until_allowed(raw: &mut Raw, topic: &str) {
    within("the reloaded ACL to apply", async {
        while raw
            .publish(raw::message(topic, b"x", QoS::AtLeastOnce))
            .await
            == ReasonCode::NOT_AUTHORIZED
        {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn sighup_reloads_passwords_and_acl_for_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    write_file(&dir.path().join("passwd"), &[("device-1", "old-pw")]).unwrap();
    acl(dir.path(), &[1]);
    let config = dir.path().join("aviary.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\npassword_file = {:?}\nacl_file = {:?}\nlogin_failure_delay_ms = 0\n",
            dir.path().join("passwd"),
            dir.path().join("acl"),
        ),
    )
    .unwrap();
    let config = config.to_str().expect("UTF-8 path");
    let gw = GatewayProcess::start(&dir.path().join("data"), &["--config", config]).await;
    let (mut raw, _) = Raw::connect_ok(gw.mqtt, device("old-pw")).await;
    let denied = raw.publish(raw::message("pets/2/location", b"x", QoS::AtLeastOnce));
    assert_eq!(denied.await, ReasonCode::NOT_AUTHORIZED);

    write_file(&dir.path().join("passwd"), &[("device-1", "new-pw")]).unwrap();
    acl(dir.path(), &[1, 2]);
    gw.signal("HUP");
    // The same connection, the new rules.
    until_allowed(&mut raw, "pets/2/location").await;
    let (_, ack) = Raw::connect(gw.mqtt, device("old-pw")).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    let (_, ack) = Raw::connect(gw.mqtt, device("new-pw")).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);

    gw.stop().await;
}
