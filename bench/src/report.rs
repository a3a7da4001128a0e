//! Turning measurements into the side-by-side Markdown table, and the statistics behind it.
//!
//! Every number is shown for every broker, with the ratios Aviary / best peer and Aviary /
//! Mosquitto and whether Aviary meets its target in that row, and every row says which
//! direction is better, so a reader never has to guess whether 1.3 is good news.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::broker::BrokerKind;
pub(crate) use crate::stats::{format_value, median, percentile};

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    /// Throughput, connections held.
    Higher,
    /// Latency, memory, CPU.
    Lower,
}

impl Better {
    /// ↑ or ↓.
    pub(crate) fn arrow(self) -> &'static str {
        match self {
            Self::Higher => "↑",
            Self::Lower => "↓",
        }
    }

    /// Whether `a` is at least as good as `b`.
    pub(crate) fn at_least(self, a: f64, b: f64) -> bool {
        match self {
            Self::Higher => a >= b,
            Self::Lower => a <= b,
        }
    }
}

/// What Aviary aims for in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// Throughput: at least the best peer's, and at least twice Mosquitto's.
    BestPeerAndTwiceMosquitto,
    /// At least as good as the best peer.
    BestPeer,
    /// None: the row is context (memory at start, say).
    None,
}

/// One line of the table: a metric of a scenario for every broker.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Scenario title; repeated rows of one scenario show it once.
    pub(crate) scenario: String,
    /// Metric name with its unit.
    pub(crate) metric: String,
    /// Which way is better.
    pub(crate) better: Better,
    /// What Aviary aims for.
    pub(crate) goal: Goal,
    /// Each broker's value, for the brokers that measured one.
    pub(crate) values: BTreeMap<BrokerKind, f64>,
    /// Of a row merged from repeated runs ([`median_rows`]): each broker's value in each run,
    /// in the order of the runs (none where that run measured none); `values` holds their
    /// medians. Empty for a single run.
    pub(crate) runs: BTreeMap<BrokerKind, Vec<Option<f64>>>,
    /// Decimals to show.
    pub(crate) decimals: usize,
    /// Loss, timeouts, errors: anything that qualifies the numbers.
    pub(crate) notes: String,
}

impl Row {
    /// A row without values yet.
    pub(crate) fn new(scenario: &str, metric: &str, better: Better, decimals: usize) -> Self {
        Self {
            scenario: scenario.to_owned(),
            metric: metric.to_owned(),
            better,
            goal: Goal::BestPeer,
            values: BTreeMap::new(),
            runs: BTreeMap::new(),
            decimals,
            notes: String::new(),
        }
    }

    /// `kind`'s value, if measured.
    pub(crate) fn value(&self, kind: BrokerKind) -> Option<f64> {
        self.values.get(&kind).copied()
    }

    /// The best value among the brokers `which` picks, and whose it is.
    fn best(&self, which: impl Fn(BrokerKind) -> bool) -> Option<(BrokerKind, f64)> {
        self.values
            .iter()
            .filter(|(kind, _)| which(**kind))
            .map(|(kind, value)| (*kind, *value))
            .reduce(|best, next| {
                if self.better.at_least(best.1, next.1) {
                    best
                } else {
                    next
                }
            })
    }

    /// The best peer's value (any broker but Aviary's builds), and whose it is.
    pub(crate) fn best_peer(&self) -> Option<(BrokerKind, f64)> {
        self.best(BrokerKind::is_peer)
    }

    /// Mosquitto's better value of its two TCP_NODELAY settings, and which it is.
    pub(crate) fn best_mosquitto(&self) -> Option<(BrokerKind, f64)> {
        self.best(BrokerKind::is_mosquitto)
    }

    /// Aviary / best peer.
    pub(crate) fn peer_ratio(&self) -> Option<f64> {
        ratio(
            self.value(BrokerKind::Aviary),
            self.best_peer().map(|b| b.1),
        )
    }

    /// Aviary / Mosquitto (its better setting).
    pub(crate) fn mosquitto_ratio(&self) -> Option<f64> {
        ratio(
            self.value(BrokerKind::Aviary),
            self.best_mosquitto().map(|b| b.1),
        )
    }

    /// Aviary / baseline, when both are measured and the divisor is not zero.
    pub(crate) fn baseline_ratio(&self) -> Option<f64> {
        ratio(
            self.value(BrokerKind::Aviary),
            self.value(BrokerKind::AviaryBaseline),
        )
    }

    /// Whether Aviary meets the row's goal; `None` when there is none or nothing to compare.
    pub(crate) fn target_met(&self) -> Option<bool> {
        let aviary = self.value(BrokerKind::Aviary)?;
        let (_, peer) = self.best_peer()?;
        let beats_peers = self.better.at_least(aviary, peer);
        match self.goal {
            Goal::None => None,
            Goal::BestPeer => Some(beats_peers),
            Goal::BestPeerAndTwiceMosquitto => {
                let (_, mosquitto) = self.best_mosquitto()?;
                Some(beats_peers && aviary >= 2.0 * mosquitto)
            }
        }
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// The whole report: a preamble of context lines, then the table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    /// Lines before the table (machine, versions, parameters), as Markdown.
    pub(crate) preamble: Vec<String>,
    /// The brokers' columns, in order; brokers found only in rows are added after them.
    pub(crate) columns: Vec<BrokerKind>,
    /// The rows, in scenario order.
    pub(crate) rows: Vec<Row>,
    /// Lines after the table.
    pub(crate) footnotes: Vec<String>,
    /// Sections of their own after the table (the durability scenarios), as Markdown.
    pub(crate) sections: Vec<String>,
}

impl Report {
    /// The report as Markdown. A baseline build, when one was measured, gets its own ratio.
    pub(crate) fn to_markdown(&self) -> String {
        let mut out = String::from("# Aviary and its peers\n\n");
        for line in &self.preamble {
            let _ = writeln!(out, "{line}");
        }
        // A run of the durability scenarios alone has no rows for the comparison table.
        if !self.rows.is_empty() {
            self.write_table(&mut out);
            out.push('\n');
            let _ = writeln!(out, "{}\n", self.targets_summary());
            for line in &self.footnotes {
                let _ = writeln!(out, "{line}");
            }
            let targets = crate::targets::section(&self.rows);
            if !targets.is_empty() {
                let _ = write!(out, "\n{targets}");
            }
        }
        for section in &self.sections {
            let _ = write!(out, "\n{section}");
        }
        out
    }

    /// The columns to show: the chosen ones, then any other broker a row has a value for.
    fn shown_columns(&self) -> Vec<BrokerKind> {
        let mut columns = self.columns.clone();
        for row in &self.rows {
            for kind in row.values.keys() {
                if !columns.contains(kind) {
                    columns.push(*kind);
                }
            }
        }
        columns
    }

    /// The comparison table, one line per row. The best peer's value is in bold.
    fn write_table(&self, out: &mut String) {
        let columns = self.shown_columns();
        let with_baseline = columns.contains(&BrokerKind::AviaryBaseline);
        let mut head = String::from("\n| Scenario | Metric |");
        let mut rule = String::from("|---|---|");
        for kind in &columns {
            let _ = write!(head, " {kind} |");
            rule.push_str("---:|");
        }
        if with_baseline {
            head.push_str(" Aviary / baseline |");
            rule.push_str("---:|");
        }
        head.push_str(" Aviary / best peer | Aviary / Mosquitto | Target | Notes |\n");
        rule.push_str("---:|---:|:---:|---|\n");
        out.push_str(&head);
        out.push_str(&rule);
        let show_ratio = |r: Option<f64>| r.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"));
        let mut previous = "";
        for row in &self.rows {
            let scenario = if row.scenario == previous {
                ""
            } else {
                row.scenario.as_str()
            };
            previous = &row.scenario;
            let best = row.best_peer().map(|b| b.0);
            let _ = write!(
                out,
                "| {scenario} | {} {} |",
                row.metric,
                row.better.arrow()
            );
            for kind in &columns {
                let value = format_value(row.value(*kind), row.decimals);
                if best == Some(*kind) && columns.iter().filter(|k| k.is_peer()).count() > 1 {
                    let _ = write!(out, " **{value}** |");
                } else {
                    let _ = write!(out, " {value} |");
                }
            }
            if with_baseline {
                let _ = write!(out, " {} |", show_ratio(row.baseline_ratio()));
            }
            let target = match row.target_met() {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "–",
            };
            let _ = writeln!(
                out,
                " {} | {} | {target} | {} |",
                show_ratio(row.peer_ratio()),
                show_ratio(row.mosquitto_ratio()),
                row.notes.replace('|', "\\|"),
            );
        }
    }

    /// One line counting the rows whose target Aviary meets.
    pub(crate) fn targets_summary(&self) -> String {
        let count = |throughput: bool| {
            let judged: Vec<bool> = self
                .rows
                .iter()
                .filter(|r| !throughput || r.goal == Goal::BestPeerAndTwiceMosquitto)
                .filter_map(Row::target_met)
                .collect();
            (judged.iter().filter(|met| **met).count(), judged.len())
        };
        let ((met, of), (tp_met, tp_of)) = (count(false), count(true));
        format!(
            "Targets met: {met} of {of} rows; throughput (≥ best peer and ≥ 2 × Mosquitto): \
             {tp_met} of {tp_of}."
        )
    }
}

/// Merges the rows of repeated runs of one scenario: each number becomes the median of its
/// runs (the lower middle one for an even count, so it is a value that was measured), with the
/// runs' own values beside it, and the notes of every run are kept.
pub(crate) fn median_rows(runs: Vec<Vec<Row>>) -> Vec<Row> {
    let mut runs = runs.into_iter();
    let Some(mut merged) = runs.next() else {
        return Vec::new();
    };
    let rest: Vec<Vec<Row>> = runs.collect();
    if rest.is_empty() {
        return merged;
    }
    for (i, row) in merged.iter_mut().enumerate() {
        let others: Vec<&Row> = rest.iter().filter_map(|run| run.get(i)).collect();
        let all = || std::iter::once(&*row).chain(others.iter().copied());
        let mut runs: BTreeMap<BrokerKind, Vec<Option<f64>>> = BTreeMap::new();
        for kind in all().flat_map(|one| one.values.keys()) {
            runs.entry(*kind)
                .or_insert_with(|| all().map(|one| one.value(*kind)).collect());
        }
        let mut notes: Vec<String> = Vec::new();
        for one in all() {
            if !one.notes.is_empty() && !notes.contains(&one.notes) {
                notes.push(one.notes.clone());
            }
        }
        row.values = runs
            .iter()
            .filter_map(|(kind, values)| {
                let mut measured: Vec<f64> = values.iter().flatten().copied().collect();
                Some((*kind, median(&mut measured)?))
            })
            .collect();
        row.runs = runs;
        row.notes = notes.join(" / ");
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row with these values.
    fn row(better: Better, values: &[(BrokerKind, f64)]) -> Row {
        let mut row = Row::new("s", "m", better, 0);
        row.values = values.iter().copied().collect();
        row
    }

    #[test]
    fn repeated_runs_merge_into_medians() {
        let run = |aviary: Option<f64>, mosquitto: f64, notes: &str| {
            let mut one = row(Better::Higher, &[(BrokerKind::Mosquitto, mosquitto)]);
            one.values.extend(aviary.map(|v| (BrokerKind::Aviary, v)));
            one.notes = notes.to_owned();
            vec![one]
        };
        let merged = median_rows(vec![
            run(Some(3.0), 10.0, ""),
            run(Some(1.0), 30.0, "Aviary: lost 1"),
            run(None, 20.0, ""),
            run(Some(2.0), 40.0, "Aviary: lost 1"),
        ]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].value(BrokerKind::Aviary), Some(2.0));
        assert_eq!(merged[0].value(BrokerKind::Mosquitto), Some(20.0));
        assert_eq!(merged[0].notes, "Aviary: lost 1");
        let runs = |kind| merged[0].runs[&kind].clone();
        assert_eq!(
            runs(BrokerKind::Aviary),
            [Some(3.0), Some(1.0), None, Some(2.0)]
        );
        assert_eq!(runs(BrokerKind::Mosquitto).iter().flatten().count(), 4);
        assert!(median_rows(Vec::new()).is_empty());
    }

    #[test]
    fn best_peer_and_mosquitto_follow_the_direction() {
        use BrokerKind::{Aedes, Aviary, Mosquitto, MosquittoNagle, Rumqttd};
        let values = [
            (Aviary, 300.0),
            (Mosquitto, 100.0),
            (MosquittoNagle, 140.0),
            (Rumqttd, 250.0),
            (Aedes, 50.0),
        ];
        let mut higher = row(Better::Higher, &values);
        higher.goal = Goal::BestPeerAndTwiceMosquitto;
        assert_eq!(higher.best_peer(), Some((Rumqttd, 250.0)));
        assert_eq!(higher.best_mosquitto(), Some((MosquittoNagle, 140.0)));
        assert_eq!(higher.peer_ratio(), Some(1.2));
        // Beats every peer and twice Mosquitto's better setting (280).
        assert_eq!(higher.target_met(), Some(true));
        higher.values.insert(Aviary, 270.0);
        assert_eq!(higher.target_met(), Some(false));
        higher.goal = Goal::BestPeer;
        assert_eq!(higher.target_met(), Some(true));
        higher.goal = Goal::None;
        assert_eq!(higher.target_met(), None);

        let lower = row(Better::Lower, &values);
        assert_eq!(lower.best_peer(), Some((Aedes, 50.0)));
        assert_eq!(lower.best_mosquitto(), Some((Mosquitto, 100.0)));
        assert_eq!(lower.target_met(), Some(false));
        // Nothing to compare with: no verdict.
        assert_eq!(row(Better::Lower, &[(Aviary, 1.0)]).target_met(), None);
        assert_eq!(row(Better::Lower, &[(Rumqttd, 1.0)]).target_met(), None);
    }

    #[test]
    fn table_has_a_column_per_broker_and_the_ratios() {
        use BrokerKind::{Aedes, Aviary, Mosquitto, MosquittoNagle, Rumqttd};
        let mut throughput = row(
            Better::Higher,
            &[
                (Aviary, 200_000.0),
                (Mosquitto, 100_000.0),
                (MosquittoNagle, 80_000.0),
                (Rumqttd, 150_000.0),
                (Aedes, 20_000.0),
            ],
        );
        throughput.scenario = "p2p".to_owned();
        throughput.metric = "msg/s".to_owned();
        throughput.goal = Goal::BestPeerAndTwiceMosquitto;
        let mut cpu = row(Better::Lower, &[(Aviary, 1.0)]);
        cpu.scenario = "p2p".to_owned();
        cpu.metric = "CPU µs/msg".to_owned();
        cpu.decimals = 2;
        cpu.notes = "a | b".to_owned();
        let report = Report {
            preamble: vec!["machine: test".to_owned()],
            columns: vec![Aviary, Mosquitto, MosquittoNagle, Rumqttd, Aedes],
            rows: vec![throughput, cpu],
            ..Report::default()
        };
        let markdown = report.to_markdown();
        assert!(
            markdown.contains(
                "| Scenario | Metric | Aviary | Mosquitto | Mosquitto (Nagle) | rumqttd | Aedes | \
                 Aviary / best peer | Aviary / Mosquitto | Target | Notes |"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "| p2p | msg/s ↑ | 200,000 | 100,000 | 80,000 | **150,000** | 20,000 | 1.33 | \
                 2.00 | ✓ |  |"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains("|  | CPU µs/msg ↓ | 1.00 | – | – | – | – | – | – | – | a \\| b |"),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "Targets met: 1 of 1 rows; throughput (≥ best peer and ≥ 2 × \
                 Mosquitto): 1 of 1."
            ),
            "{markdown}"
        );
        assert!(!markdown.contains("baseline"), "{markdown}");
    }

    #[test]
    fn a_baseline_gets_its_own_column_and_ratio() {
        use BrokerKind::{Aviary, AviaryBaseline, Mosquitto};
        let mut idle = row(
            Better::Lower,
            &[
                (Aviary, 3_000.0),
                (AviaryBaseline, 12_000.0),
                (Mosquitto, 6_000.0),
            ],
        );
        idle.scenario = "idle".to_owned();
        idle.metric = "bytes".to_owned();
        let report = Report {
            columns: vec![Aviary, AviaryBaseline, Mosquitto],
            rows: vec![idle],
            ..Report::default()
        };
        let markdown = report.to_markdown();
        assert!(
            markdown.contains("| Aviary | Aviary baseline | Mosquitto | Aviary / baseline |"),
            "{markdown}"
        );
        // One peer: nothing to single out in bold.
        assert!(
            markdown.contains(
                "| idle | bytes ↓ | 3,000 | 12,000 | 6,000 | 0.25 | 0.50 | 0.50 | ✓ |  |"
            ),
            "{markdown}"
        );
    }
}
