//! Tables of measured points for the growth and slow-consumer sections: one row per point
//! and broker, one column per metric, each number the median of the repeated runs.
//!
//! Long format (a row per broker, not a column) so the tables hold any number of brokers
//! without knowing which; the medians come back to the caller for the charts.

use std::fmt::Write as _;

use crate::report::{format_value, median, Better};

/// A metric column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    /// Heading, with its unit.
    pub(crate) name: &'static str,
    /// Which way is better, if either.
    pub(crate) better: Option<Better>,
    /// Decimals to show.
    pub(crate) decimals: usize,
}

impl Column {
    /// A column where higher is better.
    pub(crate) const fn up(name: &'static str, decimals: usize) -> Self {
        Self {
            name,
            better: Some(Better::Higher),
            decimals,
        }
    }

    /// A column where lower is better.
    pub(crate) const fn down(name: &'static str, decimals: usize) -> Self {
        Self {
            name,
            better: Some(Better::Lower),
            decimals,
        }
    }
}

/// What one run of one point measured: a value per column (in the table's order), and what
/// qualifies them (errors, timeouts).
#[derive(Debug, Clone, Default)]
pub(crate) struct Measure {
    /// One per column; `None` when not measured.
    pub(crate) values: Vec<Option<f64>>,
    /// Why the run failed or what qualifies it.
    pub(crate) note: Option<String>,
}

impl Measure {
    /// One progress line for stderr: every column's value, then the note.
    pub(crate) fn summary(&self, columns: &[Column]) -> String {
        let values: Vec<String> = self
            .values
            .iter()
            .zip(columns)
            .map(|(v, c)| format!("{} {}", c.name, format_value(*v, c.decimals)))
            .collect();
        match &self.note {
            Some(note) => format!("{}; {note}", values.join(", ")),
            None => values.join(", "),
        }
    }
}

/// A table: key columns (point, broker), then metric columns with medians.
#[derive(Debug, Clone)]
pub(crate) struct PointTable {
    keys: Vec<&'static str>,
    columns: Vec<Column>,
    rows: Vec<(Vec<String>, Vec<Option<f64>>, String)>,
}

impl PointTable {
    /// An empty table with these key and metric columns.
    pub(crate) fn new(keys: &[&'static str], columns: &[Column]) -> Self {
        Self {
            keys: keys.to_vec(),
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds the row of one point and broker from its runs; returns the medians, one per
    /// column, for the charts.
    pub(crate) fn push(&mut self, keys: Vec<String>, runs: &[Measure]) -> Vec<Option<f64>> {
        let medians: Vec<Option<f64>> = (0..self.columns.len())
            .map(|i| {
                let mut values: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.values.get(i).copied().flatten())
                    .collect();
                median(&mut values)
            })
            .collect();
        let mut notes: Vec<String> = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            if let Some(note) = &run.note {
                let note = note.replace('\n', " ");
                let note = if runs.len() > 1 {
                    format!("run {}: {note}", i + 1)
                } else {
                    note
                };
                notes.push(note);
            }
        }
        self.rows.push((keys, medians.clone(), notes.join("; ")));
        medians
    }

    /// The table as Markdown.
    pub(crate) fn to_markdown(&self) -> String {
        let mut head: Vec<String> = self.keys.iter().map(|k| (*k).to_owned()).collect();
        head.extend(self.columns.iter().map(|c| match c.better {
            Some(better) => format!("{} {}", c.name, better.arrow()),
            None => c.name.to_owned(),
        }));
        head.push("Notes".to_owned());
        let mut out = format!("| {} |\n|", head.join(" | "));
        out.push_str(&"---|".repeat(self.keys.len()));
        out.push_str(&"---:|".repeat(self.columns.len()));
        out.push_str("---|\n");
        for (keys, values, notes) in &self.rows {
            let mut cells = keys.clone();
            cells.extend(
                values
                    .iter()
                    .zip(&self.columns)
                    .map(|(v, c)| format_value(*v, c.decimals)),
            );
            cells.push(notes.replace('|', "\\|"));
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_hold_medians_and_every_runs_note() {
        let mut table = PointTable::new(
            &["Payload", "Broker"],
            &[Column::up("msg/s", 0), Column::down("lost", 0)],
        );
        let run = |rate: Option<f64>, note: Option<&str>| Measure {
            values: vec![rate, Some(0.0)],
            note: note.map(str::to_owned),
        };
        let medians = table.push(
            vec!["16 B".to_owned(), "Aviary".to_owned()],
            &[
                run(Some(3.0), None),
                run(None, Some("timed out")),
                run(Some(1.0), None),
            ],
        );
        assert_eq!(medians, [Some(1.0), Some(0.0)]);
        assert_eq!(
            table.to_markdown(),
            "| Payload | Broker | msg/s ↑ | lost ↓ | Notes |\n|---|---|---:|---:|---|\n\
             | 16 B | Aviary | 1 | 0 | run 2: timed out |\n"
        );
    }
}
