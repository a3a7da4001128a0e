//! Cluster mode: several gateways share one broker state over NATS JetStream (see DESIGN.md,
//! "Cluster: the backplane"). Each node routes locally and hands each publish to NATS; NATS
//! routes by interest to the nodes whose clients subscribed.
//!
//! This first step brings the mapping of MQTT topics and filters to NATS subjects
//! ([`subject`]); the backplane that uses it comes next.

#[cfg_attr(
    not(test),
    expect(dead_code, reason = "used by the backplane, the next step of issue 12")
)]
mod subject;
