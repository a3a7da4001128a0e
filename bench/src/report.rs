//! Turning measurements into the side-by-side Markdown table, and the statistics behind it.
//!
//! Every number is shown for both brokers with the ratio Aviary / Mosquitto, and every row
//! says which direction is better, so a reader never has to guess whether 1.3 is good news.

use std::fmt::Write as _;

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
}

/// One line of the table: a metric of a scenario for both brokers.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Scenario title; repeated rows of one scenario show it once.
    pub(crate) scenario: String,
    /// Metric name with its unit.
    pub(crate) metric: String,
    /// Which way is better.
    pub(crate) better: Better,
    /// Aviary's value, if measured.
    pub(crate) aviary: Option<f64>,
    /// The baseline Aviary build's value (`--baseline`), if measured.
    pub(crate) baseline: Option<f64>,
    /// Mosquitto's value, if measured.
    pub(crate) mosquitto: Option<f64>,
    /// Decimals to show.
    pub(crate) decimals: usize,
    /// Loss, timeouts, errors: anything that qualifies the numbers.
    pub(crate) notes: String,
}

impl Row {
    /// Aviary / Mosquitto, when both are measured and the divisor is not zero.
    pub(crate) fn ratio(&self) -> Option<f64> {
        ratio(self.aviary, self.mosquitto)
    }

    /// Aviary / baseline, when both are measured and the divisor is not zero.
    pub(crate) fn baseline_ratio(&self) -> Option<f64> {
        ratio(self.aviary, self.baseline)
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
    /// The rows, in scenario order.
    pub(crate) rows: Vec<Row>,
    /// Lines after the table.
    pub(crate) footnotes: Vec<String>,
    /// Sections of their own after the table (the durability scenarios), as Markdown.
    pub(crate) sections: Vec<String>,
}

impl Report {
    /// The report as Markdown. A baseline build, when one was measured, gets its own column
    /// and its own ratio.
    pub(crate) fn to_markdown(&self) -> String {
        let mut out = String::from("# Aviary vs Mosquitto\n\n");
        for line in &self.preamble {
            let _ = writeln!(out, "{line}");
        }
        // A run of the durability scenarios alone has no rows for the comparison table.
        if !self.rows.is_empty() {
            self.write_table(&mut out);
            out.push('\n');
            for line in &self.footnotes {
                let _ = writeln!(out, "{line}");
            }
        }
        for section in &self.sections {
            let _ = write!(out, "\n{section}");
        }
        out
    }

    /// The comparison table, one line per row.
    fn write_table(&self, out: &mut String) {
        let with_baseline = self.rows.iter().any(|r| r.baseline.is_some());
        if with_baseline {
            out.push_str(
                "\n| Scenario | Metric | Aviary | Aviary baseline | Mosquitto | \
                 Aviary / Mosquitto | Aviary / baseline | Notes |\n\
                 |---|---|---:|---:|---:|---:|---:|---|\n",
            );
        } else {
            out.push_str(
                "\n| Scenario | Metric | Aviary | Mosquitto | Aviary / Mosquitto | Notes |\n\
                 |---|---|---:|---:|---:|---|\n",
            );
        }
        let mut previous = "";
        for row in &self.rows {
            let scenario = if row.scenario == previous {
                ""
            } else {
                row.scenario.as_str()
            };
            previous = &row.scenario;
            let show_ratio =
                |r: Option<f64>| r.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"));
            let value = |v: Option<f64>| format_value(v, row.decimals);
            let (aviary, mosquitto) = (value(row.aviary), value(row.mosquitto));
            let (ratio, notes) = (show_ratio(row.ratio()), row.notes.replace('|', "\\|"));
            let metric = format!("{} {}", row.metric, row.better.arrow());
            let _ = if with_baseline {
                let (baseline, vs) = (value(row.baseline), show_ratio(row.baseline_ratio()));
                writeln!(
                    out,
                    "| {scenario} | {metric} | {aviary} | {baseline} | {mosquitto} | {ratio} | {vs} \
                     | {notes} |"
                )
            } else {
                writeln!(
                    out,
                    "| {scenario} | {metric} | {aviary} | {mosquitto} | {ratio} | {notes} |"
                )
            };
        }
    }
}

/// A number with thousands separators, or a dash when missing.
pub(crate) fn format_value(value: Option<f64>, decimals: usize) -> String {
    let Some(value) = value else {
        return "–".to_owned();
    };
    let text = format!("{value:.decimals$}");
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text.as_str(), None),
    };
    let (sign, digits) = match int.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Merges the rows of repeated runs of one scenario: each number becomes the median of its
/// runs (the lower middle one for an even count, so it is a value that was measured), and the
/// notes of every run are kept.
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
        let others = rest.iter().filter_map(|run| run.get(i));
        let mut aviary: Vec<f64> = row.aviary.into_iter().collect();
        let mut baseline: Vec<f64> = row.baseline.into_iter().collect();
        let mut mosquitto: Vec<f64> = row.mosquitto.into_iter().collect();
        let mut notes: Vec<String> = Some(row.notes.clone())
            .filter(|n| !n.is_empty())
            .into_iter()
            .collect();
        for other in others {
            aviary.extend(other.aviary);
            baseline.extend(other.baseline);
            mosquitto.extend(other.mosquitto);
            if !other.notes.is_empty() && !notes.contains(&other.notes) {
                notes.push(other.notes.clone());
            }
        }
        row.aviary = median(&mut aviary);
        row.baseline = median(&mut baseline);
        row.mosquitto = median(&mut mosquitto);
        row.notes = notes.join(" / ");
    }
    merged
}

/// The median of some numbers, or the lower of the two middle ones.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// The `p`-th percentile (0 < p <= 100) of sorted samples, by the nearest-rank method: the
/// smallest sample that at least p % of the samples are less than or equal to. No
/// interpolation, so every reported latency is one that really happened.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    // The epsilon keeps float error from pushing an exact rank up by one (99.9 % of 1,000 is
    // 999.0000000000001 in f64).
    let rank = (p / 100.0).mul_add(sorted.len() as f64, -1e-9).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&samples, 50.0), Some(500));
        assert_eq!(percentile(&samples, 90.0), Some(900));
        assert_eq!(percentile(&samples, 99.0), Some(990));
        assert_eq!(percentile(&samples, 99.9), Some(999));
        assert_eq!(percentile(&samples, 100.0), Some(1000));
        assert_eq!(percentile(&[7], 99.9), Some(7));
        assert_eq!(percentile(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&samples, 0.0), None);
    }

    #[test]
    fn repeated_runs_merge_into_medians() {
        let row = |aviary: Option<f64>, mosquitto: f64, notes: &str| Row {
            scenario: "s".to_owned(),
            metric: "m".to_owned(),
            better: Better::Higher,
            aviary,
            baseline: None,
            mosquitto: Some(mosquitto),
            decimals: 0,
            notes: notes.to_owned(),
        };
        let merged = median_rows(vec![
            vec![row(Some(3.0), 10.0, "")],
            vec![row(Some(1.0), 30.0, "Aviary: lost 1")],
            vec![row(None, 20.0, "")],
            vec![row(Some(2.0), 40.0, "Aviary: lost 1")],
        ]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].aviary, Some(2.0));
        assert_eq!(merged[0].mosquitto, Some(20.0));
        assert_eq!(merged[0].notes, "Aviary: lost 1");
        assert!(median_rows(Vec::new()).is_empty());
    }

    #[test]
    fn values_get_thousands_separators() {
        assert_eq!(format_value(Some(1_234_567.0), 0), "1,234,567");
        assert_eq!(format_value(Some(999.0), 0), "999");
        assert_eq!(format_value(Some(1234.5678), 1), "1,234.6");
        assert_eq!(format_value(Some(-4321.0), 0), "-4,321");
        assert_eq!(format_value(None, 0), "–");
    }

    #[test]
    fn table_shows_ratio_and_direction() {
        let report = Report {
            preamble: vec!["machine: test".to_owned()],
            rows: vec![
                Row {
                    scenario: "p2p".to_owned(),
                    metric: "msg/s".to_owned(),
                    better: Better::Higher,
                    aviary: Some(200_000.0),
                    baseline: None,
                    mosquitto: Some(100_000.0),
                    decimals: 0,
                    notes: String::new(),
                },
                Row {
                    scenario: "p2p".to_owned(),
                    metric: "CPU µs/msg".to_owned(),
                    better: Better::Lower,
                    aviary: Some(1.0),
                    baseline: None,
                    mosquitto: None,
                    decimals: 2,
                    notes: "a | b".to_owned(),
                },
            ],
            footnotes: Vec::new(),
            sections: Vec::new(),
        };
        let markdown = report.to_markdown();
        assert!(
            markdown.contains("| p2p | msg/s ↑ | 200,000 | 100,000 | 2.00 |  |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("|  | CPU µs/msg ↓ | 1.00 | – | – | a \\| b |"),
            "{markdown}"
        );
        assert!(!markdown.contains("baseline"), "{markdown}");
    }

    #[test]
    fn a_baseline_gets_its_own_column_and_ratio() {
        let report = Report {
            preamble: Vec::new(),
            rows: vec![Row {
                scenario: "idle".to_owned(),
                metric: "bytes".to_owned(),
                better: Better::Lower,
                aviary: Some(3_000.0),
                baseline: Some(12_000.0),
                mosquitto: Some(6_000.0),
                decimals: 0,
                notes: String::new(),
            }],
            footnotes: Vec::new(),
            sections: Vec::new(),
        };
        let markdown = report.to_markdown();
        assert!(
            markdown.contains("| Aviary | Aviary baseline | Mosquitto |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| idle | bytes ↓ | 3,000 | 12,000 | 6,000 | 0.50 | 0.25 |  |"),
            "{markdown}"
        );
    }
}
