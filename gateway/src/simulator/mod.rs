//! `aviary simulate`: pet trackers as standard TCP MQTT devices.
//!
//! Each pet is its own connection (client id `tracker-pet-{id}`, a
//! persistent session, a retained last will `{"online":false}` on
//! `pets/{id}/status`), says `{"online":true}` (retained) on connect, and
//! publishes its location at QoS 1 every interval and its activity every
//! minute. Some pets wander out of their safe zone; some trackers drop off
//! abruptly (so their will fires) and come back. The trackers use rumqttc,
//! an independent client library, so the demo also shows that the gateway
//! works with standard devices. With [`SimCredentials`] each tracker signs in as its own user
//! (`aviary --demo` makes them: see [`demo_auth`]).

pub mod demo_auth;
mod walk;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use tokio::time::{sleep, timeout, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use walk::{LatLng, Rng, Walk};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Broker host.
    pub host: String,
    /// Broker MQTT port.
    pub port: u16,
    /// Number of pets.
    pub pets: u32,
    /// Time between location fixes.
    pub interval: Duration,
    /// Time between activity reports.
    pub activity_interval: Duration,
    /// Seed of the walks and drop-outs.
    pub seed: u64,
    /// Centre of the neighbourhood the pets live in.
    pub center: (f64, f64),
    /// How the trackers sign in; `None`: without a username.
    pub credentials: Option<SimCredentials>,
}

/// The trackers' sign-in: pet N connects as `{username_prefix}N` with `password`.
#[derive(Clone, PartialEq, Eq)]
pub struct SimCredentials {
    /// Prefix of each tracker's username.
    pub username_prefix: String,
    /// The password every tracker uses.
    pub password: String,
}

impl std::fmt::Debug for SimCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password: configs end up in logs.
        f.debug_struct("SimCredentials")
            .field("username_prefix", &self.username_prefix)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// Pets near Amsterdam's centre, one fix a second.
    pub fn new(host: impl Into<String>, port: u16, pets: u32) -> Self {
        Self {
            host: host.into(),
            port,
            pets,
            interval: Duration::from_secs(1),
            activity_interval: Duration::from_secs(60),
            seed: 42,
            center: (52.3676, 4.9041),
            credentials: None,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The `--url` is not `mqtt://HOST:PORT`.
    #[error("invalid broker URL {0:?}: expected mqtt://HOST:PORT")]
    Url(String),
}

/// Parses `mqtt://HOST:PORT` (or `HOST:PORT`).
pub fn parse_url(url: &str) -> Result<(String, u16), SimError> {
    let rest = url.strip_prefix("mqtt://").unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| SimError::Url(url.to_owned()))?;
    let port = port.parse().map_err(|_| SimError::Url(url.to_owned()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(SimError::Url(url.to_owned()));
    }
    Ok((host.to_owned(), port))
}

/// Runs the trackers until `shutdown` fires.
pub async fn run(config: SimConfig, shutdown: CancellationToken) {
    info!(
        pets = config.pets,
        host = %config.host,
        port = config.port,
        user = config.credentials.as_ref().map(|c| format!("{}N", c.username_prefix)),
        "simulating pet trackers"
    );
    let mut rng = Rng::new(config.seed);
    let center = LatLng {
        lat: config.center.0,
        lng: config.center.1,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for id in 1..=config.pets {
        let home = center.offset(rng.range(-1500.0, 1500.0), rng.range(-2000.0, 2000.0));
        let seed = rng.next_u64();
        let adventurous = id % 5 == 0;
        let tracker = Tracker::new(id, &config, home, adventurous, seed);
        tasks.spawn(tracker.run(shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// One pet's tracker.
struct Tracker {
    id: u32,
    options: MqttOptions,
    walk: Walk,
    rng: Rng,
    interval: Duration,
    activity_interval: Duration,
    steps: u64,
    /// A refusal was logged as a warning already; later ones go to debug, so a wrong password
    /// does not flood the log.
    refusal_logged: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Tracker {
    fn new(id: u32, config: &SimConfig, home: LatLng, adventurous: bool, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut options = MqttOptions::new(
            format!("tracker-pet-{id}"),
            config.host.clone(),
            config.port,
        );
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(false)
            .set_last_will(LastWill::new(
                format!("pets/{id}/status"),
                r#"{"online":false}"#,
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(credentials) = &config.credentials {
            options.set_credentials(
                format!("{}{id}", credentials.username_prefix),
                credentials.password.clone(),
            );
        }
        Self {
            id,
            options,
            walk: Walk::new(home, rng.range(150.0, 300.0), adventurous, &mut rng),
            rng,
            interval: config.interval,
            activity_interval: config.activity_interval,
            steps: 0,
            refusal_logged: false,
        }
    }

    fn topic(&self, what: &str) -> String {
        format!("pets/{}/{what}", self.id)
    }

    /// Connects, reports, drops off now and then, reconnects.
    async fn run(mut self, shutdown: CancellationToken) {
        // Spread the first connections over one interval.
        let jitter = self.interval.mul_f64(self.rng.unit());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sleep(jitter) => {}
        }
        let mut first = true;
        loop {
            let (client, eventloop) = AsyncClient::new(self.options.clone(), 64);
            let online = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.session(&client, eventloop, first) => r,
            };
            first = false;
            // Offline for a while: dropped abruptly, or never got through.
            let pause = if online {
                self.rng.range(10.0, 30.0)
            } else {
                2.0
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = sleep(Duration::from_secs_f64(pause)) => {}
            }
        }
    }

    /// One connection. Returns true after a deliberate drop-out, false if
    /// the broker could not be reached.
    async fn session(
        &mut self,
        client: &AsyncClient,
        mut eventloop: EventLoop,
        first: bool,
    ) -> bool {
        match timeout(Duration::from_secs(10), wait_connack(&mut eventloop)).await {
            Ok(Ok(())) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => {
                // A wrong password or a missing ACL is worth telling; it is retried like an
                // unreachable broker, so the operator can fix the files and reload.
                if std::mem::replace(&mut self.refusal_logged, true) {
                    debug!(
                        pet = self.id,
                        ?code,
                        "the broker refused the tracker, retrying"
                    );
                } else {
                    warn!(
                        pet = self.id,
                        ?code,
                        "the broker refused the tracker, retrying"
                    );
                }
                return false;
            }
            _ => {
                debug!(pet = self.id, "broker unreachable, retrying");
                return false;
            }
        }
        let _ = client.try_publish(
            self.topic("status"),
            QoS::AtLeastOnce,
            true,
            r#"{"online":true}"#,
        );
        if first {
            let h = self.walk.home;
            let fence = format!(
                r#"{{"lat":{:.6},"lng":{:.6},"radius":{:.0}}}"#,
                h.lat, h.lng, self.walk.zone
            );
            let _ = client.try_publish(self.topic("geofence"), QoS::AtLeastOnce, true, fence);
        }
        let mut fix = tokio::time::interval(self.interval);
        let mut activity = tokio::time::interval_at(
            Instant::now() + self.activity_interval,
            self.activity_interval,
        );
        loop {
            tokio::select! {
                event = eventloop.poll() => {
                    if event.is_err() {
                        return false;
                    }
                }
                _ = fix.tick() => {
                    self.walk.step(self.interval.as_secs_f64(), &mut self.rng);
                    self.steps += self.rng.range(0.0, 4.0) as u64;
                    let p = self.walk.position;
                    let fix = format!(
                        r#"{{"lat":{:.6},"lng":{:.6},"accuracy":{:.1},"timestamp":{}}}"#,
                        p.lat, p.lng, self.rng.range(3.0, 15.0), now_ms()
                    );
                    let _ = client.try_publish(self.topic("location"), QoS::AtLeastOnce, false, fix);
                    // Now and then the tracker loses power: no DISCONNECT.
                    if self.rng.chance(1.0 / 600.0) {
                        info!(pet = self.id, "tracker drops off");
                        return true;
                    }
                }
                _ = activity.tick() => {
                    let report = format!(
                        r#"{{"steps":{},"calories":{:.1},"timestamp":{}}}"#,
                        self.steps, self.steps as f64 * 0.04, now_ms()
                    );
                    let _ = client.try_publish(self.topic("activity"), QoS::AtLeastOnce, false, report);
                }
            }
        }
    }
}

/// Polls until the CONNACK (rumqttc turns a refusing one into an error).
async fn wait_connack(eventloop: &mut EventLoop) -> Result<(), ConnectionError> {
    loop {
        if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".to_owned(), 1883)
        );
        assert_eq!(
            parse_url("localhost:1884").unwrap(),
            ("localhost".to_owned(), 1884)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1883").unwrap(),
            ("::1".to_owned(), 1883)
        );
        assert!(parse_url("mqtt://nohost").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
    }
}
