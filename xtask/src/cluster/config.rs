//! What `cargo xtask cluster` starts, decided before anything runs: its flags, each gateway's
//! ports and directory, and each gateway's aviary.toml. No processes here, so all of it is
//! unit-tested.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// The gateway nodes, in start order.
pub(super) const NODES: [&str; 3] = ["gw-a", "gw-b", "gw-c"];

/// Base ports: gateway `i` listens on `base + i`; 0 means free ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Options {
    /// MQTT over TCP (default 1883).
    pub(super) mqtt_port: u16,
    /// HTTP: map, WebSocket, REST API (default 8080).
    pub(super) http_port: u16,
    /// NATS clients (default 4222; routes 2000 and monitoring 4000 above).
    pub(super) nats_port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mqtt_port: 1883,
            http_port: 8080,
            nats_port: 4222,
        }
    }
}

/// Parses the command's arguments (`--flag N` or `--flag=N`); `None` asks for the help.
pub(super) fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg.as_str(), None),
        };
        let port = match flag {
            "-h" | "--help" => return Ok(None),
            "--free-ports" if inline.is_none() => {
                options = Options {
                    mqtt_port: 0,
                    http_port: 0,
                    nats_port: 0,
                };
                continue;
            }
            "--mqtt-port" => &mut options.mqtt_port,
            "--http-port" => &mut options.http_port,
            "--nats-port" => &mut options.nats_port,
            _ => bail!("unknown argument `{arg}`; see `cargo xtask cluster --help`"),
        };
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .with_context(|| format!("{flag} needs a port number"))?,
        };
        *port = value
            .parse()
            .with_context(|| format!("{flag} {value}: not a port number (0 to 65535)"))?;
    }
    Ok(Some(options))
}

/// One gateway: its node name, the ports it is asked to listen on (0: its choice) and its
/// directory (aviary.toml, aviary.log, data/).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GatewayPlan {
    pub(super) node: &'static str,
    pub(super) mqtt: u16,
    pub(super) http: u16,
    pub(super) dir: PathBuf,
}

/// Every gateway of [`NODES`], with ports counted up from the bases, in `dir/NODE`.
pub(super) fn plan_gateways(dir: &Path, options: &Options) -> Result<Vec<GatewayPlan>> {
    let mqtt = ports("--mqtt-port", options.mqtt_port)?;
    let http = ports("--http-port", options.http_port)?;
    Ok(NODES
        .iter()
        .zip(mqtt.into_iter().zip(http))
        .map(|(&node, (mqtt, http))| GatewayPlan {
            node,
            mqtt,
            http,
            dir: dir.join(node),
        })
        .collect())
}

/// `base`, `base + 1`, ... for each node; all 0 for a base of 0.
fn ports(flag: &str, base: u16) -> Result<Vec<u16>> {
    if base == 0 {
        return Ok(vec![0; NODES.len()]);
    }
    (0..NODES.len())
        .map(|i| {
            u16::try_from(i)
                .ok()
                .and_then(|i| base.checked_add(i))
                .with_context(|| {
                    format!("{flag} {base} leaves no room for {} gateways", NODES.len())
                })
        })
        .collect()
}

/// The demo's password file and ACL: `aviary --demo` writes them into its data dir at every
/// start (gateway/src/simulator/demo_auth.rs, `PASSWORD_FILE` and `ACL_FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DemoAuth {
    pub(super) password_file: PathBuf,
    pub(super) acl_file: PathBuf,
}

impl DemoAuth {
    /// The files the demo running on `plan` writes.
    pub(super) fn of(plan: &GatewayPlan) -> Self {
        Self {
            password_file: plan.data_dir().join("demo-passwd"),
            acl_file: plan.data_dir().join("demo-acl"),
        }
    }
}

/// What every gateway's configuration shares.
#[derive(Debug, Clone)]
pub(super) struct Setup {
    /// Every NATS server's client URL.
    pub(super) nats: Vec<String>,
    /// The web app's files (the workspace's `static/`).
    pub(super) static_dir: PathBuf,
    /// The users of the gateways that do not run the demo.
    pub(super) shared_auth: DemoAuth,
}

impl GatewayPlan {
    /// Its store's directory.
    pub(super) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Its aviary.toml. The demo's gateway has no `[auth]`: `--demo` then writes the demo's
    /// files and points it at them (with `[auth]` set, `--demo` would keep those files and let
    /// its trackers in without a password). The others point `[auth]` at those files.
    pub(super) fn config(&self, setup: &Setup, demo: bool) -> String {
        let nats: Vec<String> = setup.nats.iter().map(|url| quote(url)).collect();
        let mut text = format!(
            "# Written by `cargo xtask cluster` at every start: edits are overwritten.\n\
             data_dir = {data_dir}\n\n\
             [listen]\nmqtt = \"127.0.0.1:{mqtt}\"\nhttp = \"127.0.0.1:{http}\"\n\n\
             [http]\nstatic_dir = {static_dir}\n\n\
             [cluster]\nnats = [{nats}]\nnode = \"{node}\"\nreplicas = {replicas}\n",
            data_dir = quote(&self.data_dir().display().to_string()),
            mqtt = self.mqtt,
            http = self.http,
            static_dir = quote(&setup.static_dir.display().to_string()),
            nats = nats.join(", "),
            node = self.node,
            replicas = setup.nats.len(),
        );
        if !demo {
            let auth = &setup.shared_auth;
            // Writing to a String cannot fail.
            let _ = write!(
                text,
                "\n[auth]\n# The demo's users, written by the gateway that runs the demo.\n\
                 password_file = {}\nacl_file = {}\n",
                quote(&auth.password_file.display().to_string()),
                quote(&auth.acl_file.display().to_string()),
            );
        }
        text
    }
}

/// `text` as a TOML basic string.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    #[test]
    fn flags_set_base_ports_in_both_spellings() {
        assert_eq!(parse(&[]).unwrap(), Some(Options::default()));
        let options = parse(&strings(&["--mqtt-port", "2883", "--http-port=0"])).unwrap();
        assert_eq!(
            options,
            Some(Options {
                mqtt_port: 2883,
                http_port: 0,
                nats_port: 4222,
            })
        );
        let free = parse(&strings(&["--free-ports"])).unwrap().unwrap();
        assert_eq!((free.mqtt_port, free.http_port, free.nats_port), (0, 0, 0));
        assert_eq!(parse(&strings(&["--help"])).unwrap(), None);
    }

    #[test]
    fn bad_flags_are_named() {
        let error = |args: &[&str]| format!("{:#}", parse(&strings(args)).unwrap_err());
        assert!(error(&["--mqtt-port"]).contains("--mqtt-port needs a port number"));
        assert!(error(&["--nats-port", "70000"]).contains("--nats-port 70000: not a port"));
        assert!(error(&["--demo"]).contains("unknown argument `--demo`"));
        assert!(error(&["--free-ports=1"]).contains("unknown argument `--free-ports=1`"));
    }

    #[test]
    fn gateways_count_up_from_the_base_ports() {
        let plans = plan_gateways(Path::new("/c"), &Options::default()).unwrap();
        let summary: Vec<(&str, u16, u16)> =
            plans.iter().map(|p| (p.node, p.mqtt, p.http)).collect();
        assert_eq!(
            summary,
            [
                ("gw-a", 1883, 8080),
                ("gw-b", 1884, 8081),
                ("gw-c", 1885, 8082)
            ]
        );
        assert_eq!(plans[2].dir, Path::new("/c/gw-c"));
        let free = Options {
            mqtt_port: 0,
            http_port: 0,
            nats_port: 0,
        };
        let plans = plan_gateways(Path::new("/c"), &free).unwrap();
        assert!(plans.iter().all(|p| p.mqtt == 0 && p.http == 0));
        let high = Options {
            mqtt_port: 65_534,
            ..Options::default()
        };
        let err = plan_gateways(Path::new("/c"), &high).unwrap_err();
        assert!(err.to_string().contains("--mqtt-port 65534 leaves no room"));
    }

    fn setup(plans: &[GatewayPlan]) -> Setup {
        Setup {
            nats: vec![
                "nats://127.0.0.1:4222".to_owned(),
                "nats://127.0.0.1:4223".to_owned(),
                "nats://127.0.0.1:4224".to_owned(),
            ],
            static_dir: PathBuf::from("/ws/static"),
            shared_auth: DemoAuth::of(&plans[0]),
        }
    }

    #[test]
    fn the_demo_gateway_has_no_auth_section() {
        let plans = plan_gateways(Path::new("/c"), &Options::default()).unwrap();
        let config = plans[0].config(&setup(&plans), true);
        assert_eq!(
            config,
            "# Written by `cargo xtask cluster` at every start: edits are overwritten.\n\
             data_dir = \"/c/gw-a/data\"\n\n\
             [listen]\nmqtt = \"127.0.0.1:1883\"\nhttp = \"127.0.0.1:8080\"\n\n\
             [http]\nstatic_dir = \"/ws/static\"\n\n\
             [cluster]\n\
             nats = [\"nats://127.0.0.1:4222\", \"nats://127.0.0.1:4223\", \
             \"nats://127.0.0.1:4224\"]\n\
             node = \"gw-a\"\nreplicas = 3\n"
        );
    }

    #[test]
    fn the_other_gateways_share_the_demo_users() {
        let plans = plan_gateways(Path::new("/c"), &Options::default()).unwrap();
        let config = plans[2].config(&setup(&plans), false);
        assert!(config.contains("mqtt = \"127.0.0.1:1885\"\nhttp = \"127.0.0.1:8082\"\n"));
        assert!(config.contains("data_dir = \"/c/gw-c/data\"\n"));
        assert!(config.contains("node = \"gw-c\"\n"));
        assert!(config.ends_with(
            "\n[auth]\n# The demo's users, written by the gateway that runs the demo.\n\
             password_file = \"/c/gw-a/data/demo-passwd\"\n\
             acl_file = \"/c/gw-a/data/demo-acl\"\n"
        ));
    }

    #[test]
    fn paths_are_quoted_for_toml() {
        assert_eq!(quote("/a b/c"), "\"/a b/c\"");
        assert_eq!(quote(r#"C:\x "y""#), r#""C:\\x \"y\"""#);
        assert_eq!(quote("a\tb"), "\"a\\u0009b\"");
    }
}
