//! The security seam (see DESIGN.md, "Security: `Authorizer`").
//!
//! An `Authorizer` will be asked at CONNECT, PUBLISH, SUBSCRIBE, delivery, will and by the REST
//! API, so MQTT and HTTP share one policy; SIGHUP will swap it atomically. Mosquitto's password
//! and ACL files are its first implementation, so an operator can bring them over unchanged.
//!
//! This step brings the password file only: [`password`] reads and verifies the files
//! `mosquitto_passwd` writes, and edits them for `aviary passwd` ([`passwd_cmd`]). Wiring it into
//! CONNECT comes next.

pub mod passwd_cmd;
pub mod password;
