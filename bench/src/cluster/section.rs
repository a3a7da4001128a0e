//! The cluster section of the report: one row per metric, the single node and the cluster
//! side by side with the ratio cluster / single node, each number the median of the runs,
//! and under the table what qualifies them (sent and received counts, errors, timeouts).

use std::fmt::Write as _;

use crate::report::{format_value, median, Better};

/// One number one setup measured in one run.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Metric name with its unit; the same, in the same order, in every run.
    pub(crate) metric: String,
    /// Which way is better.
    pub(crate) better: Better,
    /// Decimals to show.
    pub(crate) decimals: usize,
    /// The value, if measured.
    pub(crate) value: Option<f64>,
}

impl Sample {
    pub(crate) fn new(
        metric: impl Into<String>,
        better: Better,
        decimals: usize,
        value: Option<f64>,
    ) -> Self {
        Self {
            metric: metric.into(),
            better,
            decimals,
            value,
        }
    }
}

/// What one setup (single node or cluster) measured in one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Round {
    /// The numbers, in a fixed order.
    pub(crate) samples: Vec<Sample>,
    /// Counts and anything that qualifies the numbers.
    pub(crate) notes: Vec<String>,
}

/// The section as Markdown: `intro` lines, the table, `outro` lines, then the notes of each
/// run of `single` and `cluster`.
pub(crate) fn render(
    intro: &[String],
    single: &[Round],
    cluster: &[Round],
    outro: &[String],
) -> String {
    let mut out = String::from("## Cluster: cross-node cost (NATS JetStream)\n\n");
    for line in intro {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("\n| Metric | Single node | Cluster | Cluster / single |\n|---|---:|---:|---:|\n");
    let template = single
        .iter()
        .chain(cluster)
        .map(|r| &r.samples)
        .max_by_key(|s| s.len())
        .cloned()
        .unwrap_or_default();
    for (i, row) in template.iter().enumerate() {
        let s = median_at(single, i);
        let c = median_at(cluster, i);
        let ratio = match (c, s) {
            (Some(c), Some(s)) if s != 0.0 => format!("{:.2}", c / s),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} {} | {} | {} | {ratio} |",
            row.metric,
            row.better.arrow(),
            format_value(s, row.decimals),
            format_value(c, row.decimals),
        );
    }
    out.push('\n');
    for line in outro {
        let _ = writeln!(out, "{line}");
    }
    for (label, rounds) in [("Single node", single), ("Cluster", cluster)] {
        for (n, round) in rounds.iter().enumerate() {
            if !round.notes.is_empty() {
                // One list item per run: a quoted log's lines are joined.
                let notes = round.notes.join("; ").replace('\n', " ⏎ ");
                let _ = writeln!(out, "- {label}, run {}: {notes}", n + 1);
            }
        }
    }
    out
}

/// The median of sample `i` over the runs that measured it.
pub(crate) fn median_at(rounds: &[Round], i: usize) -> Option<f64> {
    let mut values: Vec<f64> = rounds
        .iter()
        .filter_map(|r| r.samples.get(i)?.value)
        .collect();
    median(&mut values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(values: [Option<f64>; 2]) -> Round {
        Round {
            samples: vec![
                Sample::new("msg/s", Better::Higher, 0, values[0]),
                Sample::new("p99, µs", Better::Lower, 0, values[1]),
            ],
            notes: vec!["sent 10".to_owned()],
        }
    }

    #[test]
    fn medians_side_by_side_with_the_ratio() {
        let single = [round([Some(100.0), Some(10.0)]), round([Some(300.0), None])];
        let cluster = [
            round([Some(50.0), Some(40.0)]),
            round([Some(25.0), Some(20.0)]),
        ];
        let text = render(&["intro".to_owned()], &single, &cluster, &[]);
        assert!(text.contains("| msg/s ↑ | 100 | 25 | 0.25 |"), "{text}");
        assert!(text.contains("| p99, µs ↓ | 10 | 20 | 2.00 |"), "{text}");
        assert!(text.contains("- Cluster, run 2: sent 10"), "{text}");
    }
}
