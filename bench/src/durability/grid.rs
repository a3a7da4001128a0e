//! The durability sections' tables: one column per broker configuration (or run), one row
//! per metric, each row saying which way is better.

use std::fmt::Write as _;

use crate::report::{format_value, Better};

/// A table of metrics by configuration.
#[derive(Debug, Clone, Default)]
pub(super) struct Grid {
    columns: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
}

impl Grid {
    /// An empty table with these column headings (after the metric column).
    pub(super) fn new(columns: impl IntoIterator<Item = String>) -> Self {
        Self {
            columns: columns.into_iter().collect(),
            rows: Vec::new(),
        }
    }

    /// A row of numbers, `None` shown as a dash.
    pub(super) fn numbers(
        &mut self,
        metric: &str,
        better: Option<Better>,
        decimals: usize,
        values: impl IntoIterator<Item = Option<f64>>,
    ) {
        let cells = values
            .into_iter()
            .map(|v| format_value(v, decimals))
            .collect();
        let metric = match better {
            Some(better) => format!("{metric} {}", better.arrow()),
            None => metric.to_owned(),
        };
        self.rows.push((metric, cells));
    }

    /// A row of text cells.
    pub(super) fn text(&mut self, metric: &str, cells: impl IntoIterator<Item = String>) {
        self.rows
            .push((metric.to_owned(), cells.into_iter().collect()));
    }

    /// The table as Markdown.
    pub(super) fn to_markdown(&self) -> String {
        let mut out = format!("| Metric | {} |\n|---|", self.columns.join(" | "));
        out.push_str(&"---:|".repeat(self.columns.len()));
        out.push('\n');
        for (metric, cells) in &self.rows {
            let cells: Vec<String> = (0..self.columns.len())
                .map(|i| {
                    cells
                        .get(i)
                        .map_or_else(|| "–".to_owned(), |c| c.replace('|', "\\|"))
                })
                .collect();
            let _ = writeln!(out, "| {metric} | {} |", cells.join(" | "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_configurations_and_rows_metrics() {
        let mut grid = Grid::new(["Aviary memory".to_owned(), "Aviary fsync".to_owned()]);
        grid.numbers(
            "throughput, msg/s",
            Some(Better::Higher),
            0,
            [Some(40_000.0), None],
        );
        grid.text("session present", ["yes".to_owned()]);
        assert_eq!(
            grid.to_markdown(),
            "| Metric | Aviary memory | Aviary fsync |\n|---|---:|---:|\n\
             | throughput, msg/s ↑ | 40,000 | – |\n\
             | session present | yes | – |\n"
        );
    }
}
