//! The scenarios of the comparison, in the order they run, with their sizes from the command
//! line; and `--quick`, which shrinks those sizes for a run of a few minutes.

use aviary_protocol::QoS;
use clap::parser::ValueSource;
use clap::ArgMatches;

use crate::client::Transport;
use crate::report;
use crate::scenarios::FlowSpec;
use crate::{Cli, Group, Kind, Scenario};

/// Every scenario, in the order they run.
pub(crate) fn scenarios(cli: &Cli) -> Vec<Scenario> {
    let mut list = flows(cli, Transport::Tcp);
    list.extend(flows(cli, Transport::Ws));
    list.extend(cross_flows(cli));
    list.extend(latency_flows(cli));
    list.extend(idle_scenarios(cli));
    list
}

/// A number for a title, with thousands separators.
fn count(v: u64) -> String {
    report::format_value(Some(v as f64), 0)
}

/// How a transport reads in a title: `TCP`, or `WS→WS` (both ends over WebSocket).
fn both_ends(transport: Transport) -> String {
    match transport {
        Transport::Tcp => transport.name().to_owned(),
        Transport::Ws => format!("{0}→{0}", transport.name()),
    }
}

/// Every cell of point-to-point, fan-out and fan-in × QoS 0 and 1, publishers and subscribers
/// all over `transport`. Over TCP each shape is its own group; over WebSocket all are `ws`.
fn flows(cli: &Cli, transport: Transport) -> Vec<Scenario> {
    let fan = cli.fan.max(1);
    let over = both_ends(transport);
    let group = |tcp_group: Group| match transport {
        Transport::Tcp => tcp_group,
        Transport::Ws => Group::Ws,
    };
    let on = |spec: FlowSpec| FlowSpec {
        pub_transport: transport,
        sub_transport: transport,
        ..spec
    };
    // The broker-CPU targets are on QoS 0 fan-in and fan-out: those run `--cpu-repeat` times.
    let cpu_runs = |qos| match qos {
        QoS::AtMostOnce => cli.cpu_repeat,
        _ => 1,
    };
    let mut list = Vec::new();
    for (qos, total) in [
        (QoS::AtMostOnce, cli.qos0_messages),
        (QoS::AtLeastOnce, cli.qos1_messages),
    ] {
        let q = qos as u8;
        list.push(Scenario {
            group: group(Group::P2p),
            title: format!("p2p {over} QoS {q}, 1→1, {} msgs", count(total)),
            kind: Kind::Flow(on(FlowSpec::tcp(1, 1, total, qos))),
            min_runs: 1,
        });
    }
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        list.push(Scenario {
            group: group(Group::FanOut),
            title: format!(
                "fan-out {over} QoS {}, 1→{fan}, {} msgs",
                qos as u8,
                count(cli.fan_out_messages)
            ),
            kind: Kind::Flow(on(FlowSpec::tcp(1, fan, cli.fan_out_messages, qos))),
            min_runs: cpu_runs(qos),
        });
    }
    for (qos, total) in [
        (QoS::AtMostOnce, cli.qos0_messages),
        (QoS::AtLeastOnce, cli.qos1_messages),
    ] {
        let spec = on(FlowSpec {
            per_publisher_topics: true,
            ..FlowSpec::tcp(fan, 1, (total / fan as u64).max(1), qos)
        });
        list.push(Scenario {
            group: group(Group::FanIn),
            title: format!(
                "fan-in {over} QoS {}, {fan}→1, {} msgs",
                qos as u8,
                count(spec.expected())
            ),
            kind: Kind::Flow(spec),
            min_runs: cpu_runs(qos),
        });
    }
    list
}

/// QoS 1 point-to-point from one transport to the other: devices to browsers and back.
fn cross_flows(cli: &Cli) -> Vec<Scenario> {
    let (tcp, ws) = (Transport::Tcp, Transport::Ws);
    [(tcp, ws), (ws, tcp)]
        .into_iter()
        .map(|(from, to)| Scenario {
            group: Group::Ws,
            title: format!(
                "p2p {}→{} QoS 1, {} msgs",
                from.name(),
                to.name(),
                count(cli.cross_messages)
            ),
            kind: Kind::Flow(FlowSpec {
                pub_transport: from,
                sub_transport: to,
                ..FlowSpec::tcp(1, 1, cli.cross_messages, QoS::AtLeastOnce)
            }),
            min_runs: 1,
        })
        .collect()
}

/// Latency percentiles at a fixed rate, over TCP and over WebSocket.
fn latency_flows(cli: &Cli) -> Vec<Scenario> {
    let rate = cli.rate.max(1);
    let mut list = Vec::new();
    for transport in [Transport::Tcp, Transport::Ws] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            list.push(Scenario {
                group: Group::Latency,
                title: format!(
                    "latency {} QoS {}, {} msg/s for {} s",
                    transport.name(),
                    qos as u8,
                    count(u64::from(cli.rate)),
                    cli.latency_secs
                ),
                kind: Kind::Latency(FlowSpec {
                    rate: Some(rate),
                    record_latency: true,
                    pub_transport: transport,
                    sub_transport: transport,
                    ..FlowSpec::tcp(1, 1, u64::from(rate) * cli.latency_secs.max(1), qos)
                }),
                min_runs: cli.latency_repeat,
            });
        }
    }
    list
}

/// Memory per idle connection over TCP and over WebSocket, and connections held.
fn idle_scenarios(cli: &Cli) -> Vec<Scenario> {
    let mut list = Vec::new();
    if cli.idle_connections > 0 {
        for transport in [Transport::Tcp, Transport::Ws] {
            list.push(Scenario {
                group: Group::Memory,
                title: format!(
                    "{} idle {} connections",
                    count(cli.idle_connections as u64),
                    transport.name()
                ),
                kind: Kind::Memory(cli.idle_connections, transport),
                min_runs: 1,
            });
        }
    }
    if cli.held_cap > 0 {
        list.push(Scenario {
            group: Group::Held,
            title: format!("connections held (cap {})", count(cli.held_cap as u64)),
            kind: Kind::Held(cli.held_cap),
            min_runs: 1,
        });
    }
    if cli.spread_connections > 0 {
        list.push(Scenario {
            group: Group::Spread,
            title: format!(
                "{} idle TCP connections from several processes",
                count(cli.spread_connections as u64)
            ),
            kind: Kind::Spread(cli.spread_connections),
            min_runs: 1,
        });
    }
    list
}

/// `--quick`: sizes for a run of the whole default comparison (five broker columns, then the
/// durability scenarios) in under three minutes on two cores, for every size the command
/// line did not set itself. Enough to see that every scenario works on every broker; too
/// small to quote.
pub(crate) fn apply_quick(cli: &mut Cli, matches: &ArgMatches) {
    let unset = |id: &str| matches.value_source(id) != Some(ValueSource::CommandLine);
    if unset("qos0_messages") {
        cli.qos0_messages = 10_000;
    }
    if unset("qos1_messages") {
        cli.qos1_messages = 5_000;
    }
    if unset("fan") {
        cli.fan = 10;
    }
    if unset("fan_out_messages") {
        cli.fan_out_messages = 1_000;
    }
    if unset("cross_messages") {
        cli.cross_messages = 2_000;
    }
    if unset("latency_secs") {
        cli.latency_secs = 1;
    }
    if unset("latency_repeat") {
        cli.latency_repeat = 1;
    }
    if unset("cpu_repeat") {
        cli.cpu_repeat = 1;
    }
    if unset("idle_connections") {
        cli.idle_connections = 500;
    }
    if unset("held_cap") {
        cli.held_cap = 1_000;
    }
    if unset("spread_connections") {
        cli.spread_connections = 1_000;
    }
    if unset("timeout_secs") {
        cli.timeout_secs = 20;
    }
    if unset("idle_secs") {
        cli.idle_secs = 1;
    }
    if unset("repeat") {
        cli.repeat = 1;
    }
    // The durability scenarios are part of the default run too.
    let durability = &mut cli.durability;
    if unset("durable_messages") {
        durability.durable_messages = 20_000;
    }
    if unset("restart_retained") {
        durability.restart_retained = 20_000;
    }
    if unset("restart_queued") {
        durability.restart_queued = 5_000;
    }
    if unset("fill_timeout_secs") {
        durability.fill_timeout_secs = 60;
    }
    if unset("steady_secs") {
        durability.steady_secs = 10;
    }
    if unset("steady_sample_secs") {
        durability.steady_sample_secs = 5;
    }
    // So are the growth curves and the slow consumer.
    let growth = &mut cli.growth;
    if unset("subscriptions_max") {
        growth.subscriptions_max = 10_000;
    }
    if unset("growth_messages") {
        growth.growth_messages = 2_000;
    }
    if unset("growth_rounds") {
        growth.growth_rounds = 1;
    }
    if unset("payload_sizes") {
        growth.payload_sizes = vec![16, 4_096, 65_536];
    }
    if unset("payload_messages") {
        growth.payload_messages = 2_000;
    }
    if unset("payload_budget") {
        growth.payload_budget = 16 << 20;
    }
    if unset("slow_messages") {
        cli.slow.slow_messages = 10_000;
    }
    if unset("slow_seconds") {
        cli.slow.slow_seconds = 0.0;
    }
    if unset("slow_qos") {
        cli.slow.slow_qos = vec![1];
    }
    if unset("slow_repeat") {
        cli.slow.slow_repeat = 1;
    }
    // One Mosquitto column: which setting is faster is a question for a full run.
    if unset("mosquitto_nodelay") {
        cli.mosquitto_nodelay = crate::Nodelay::On;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn scenarios_come_in_group_order_with_their_sizes() {
        let cli = Cli::parse_from(["aviary-bench"]);
        let titles: Vec<String> = scenarios(&cli).into_iter().map(|s| s.title).collect();
        assert_eq!(
            titles,
            [
                "p2p TCP QoS 0, 1→1, 100,000 msgs",
                "p2p TCP QoS 1, 1→1, 50,000 msgs",
                "fan-out TCP QoS 0, 1→50, 10,000 msgs",
                "fan-out TCP QoS 1, 1→50, 10,000 msgs",
                "fan-in TCP QoS 0, 50→1, 100,000 msgs",
                "fan-in TCP QoS 1, 50→1, 50,000 msgs",
                "p2p WS→WS QoS 0, 1→1, 100,000 msgs",
                "p2p WS→WS QoS 1, 1→1, 50,000 msgs",
                "fan-out WS→WS QoS 0, 1→50, 10,000 msgs",
                "fan-out WS→WS QoS 1, 1→50, 10,000 msgs",
                "fan-in WS→WS QoS 0, 50→1, 100,000 msgs",
                "fan-in WS→WS QoS 1, 50→1, 50,000 msgs",
                "p2p TCP→WS QoS 1, 50,000 msgs",
                "p2p WS→TCP QoS 1, 50,000 msgs",
                "latency TCP QoS 0, 1,000 msg/s for 5 s",
                "latency TCP QoS 1, 1,000 msg/s for 5 s",
                "latency WS QoS 0, 1,000 msg/s for 5 s",
                "latency WS QoS 1, 1,000 msg/s for 5 s",
                "5,000 idle TCP connections",
                "5,000 idle WS connections",
                "connections held (cap 15,000)",
                "19,990 idle TCP connections from several processes",
            ]
        );
    }

    /// Every message flow of the comparison, small, against an in-process gateway: messages
    /// flow, all of them arrive, in order, none twice. (The idle scenarios measure a broker
    /// process's memory; `spread` has its own smoke test.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smoke_every_flow_delivers_everything() {
        let cli = Cli::parse_from([
            "aviary-bench",
            "--qos0-messages",
            "300",
            "--qos1-messages",
            "300",
            "--fan",
            "3",
            "--fan-out-messages",
            "100",
            "--cross-messages",
            "200",
            "--rate",
            "200",
            "--latency-secs",
            "1",
        ]);
        let broker = crate::testkit::TestBroker::start().await;
        let params = crate::testkit::smoke_params(64);
        let mut flows = 0;
        for scenario in scenarios(&cli) {
            let (Kind::Flow(spec) | Kind::Latency(spec)) = &scenario.kind else {
                continue;
            };
            // The broker runs in this process: its CPU clock is this process's.
            let pid = Some(std::process::id());
            let result = crate::scenarios::run_flow_metered(&broker.endpoint, spec, &params, pid)
                .await
                .unwrap_or_else(|e| panic!("{}: {e:#}", scenario.title));
            let title = &scenario.title;
            let cpu = result.broker_cpu;
            assert!(
                cpu.is_some_and(|c| c > std::time::Duration::ZERO),
                "{title}: CPU {cpu:?}"
            );
            assert!(result.errors.is_empty(), "{title}: {:?}", result.errors);
            assert!(!result.timed_out, "{title}: timed out");
            assert_eq!(result.delivered, spec.expected(), "{title}");
            assert_eq!((result.lost(), result.out_of_order), (0, 0), "{title}");
            flows += 1;
        }
        assert_eq!(flows, 18, "every flow and latency scenario ran");
    }

    #[test]
    fn quick_shrinks_only_what_the_command_line_left_alone() {
        let args = ["aviary-bench", "--quick", "--fan", "7", "--repeat", "3"];
        let matches = <Cli as clap::CommandFactory>::command().get_matches_from(args);
        let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        apply_quick(&mut cli, &matches);
        assert_eq!(cli.qos0_messages, 10_000);
        assert_eq!(cli.held_cap, 1_000);
        assert_eq!(cli.fan, 7);
        assert_eq!(cli.repeat, 3);
        assert_eq!((cli.cpu_repeat, cli.latency_repeat), (1, 1));
        assert_eq!(cli.durability.steady_secs, 10);
    }

    #[test]
    fn the_scenarios_behind_cpu_and_latency_targets_repeat() {
        let cli = Cli::parse_from(["aviary-bench", "--cpu-repeat", "4", "--latency-repeat", "6"]);
        for scenario in scenarios(&cli) {
            let title = &scenario.title;
            let cpu_target = (title.starts_with("fan-in") || title.starts_with("fan-out"))
                && title.contains("QoS 0");
            let expected = match scenario.group {
                Group::Latency => 6,
                _ if cpu_target => 4,
                _ => 1,
            };
            assert_eq!(scenario.min_runs, expected, "{title}");
        }
    }
}
