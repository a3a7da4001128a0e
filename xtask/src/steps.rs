//! A list of named steps run in order, stopping at the first failure, with a timed summary.
//!
//! Long runs (`cargo xtask test` on a cold machine) scroll thousands of lines; the summary at the
//! end is the part people read, so it says which steps passed, which one failed and which never
//! ran, and where the time went.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cmd::Cmd;

/// One named unit of work.
pub(crate) struct Step {
    name: String,
    action: Box<dyn FnOnce() -> Result<()>>,
}

impl Step {
    /// A step that runs an arbitrary action.
    pub(crate) fn new(
        name: impl Into<String>,
        action: impl FnOnce() -> Result<()> + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            action: Box::new(action),
        }
    }

    /// Runs the step on its own, outside a step list, saying what it is first.
    pub(crate) fn run_now(self) -> Result<()> {
        eprintln!("==> {}", self.name);
        (self.action)().map_err(|err| err.context(format!("`{}` failed", self.name)))
    }

    /// A step that runs one command.
    pub(crate) fn command(name: impl Into<String>, cmd: Cmd) -> Self {
        Self::new(name, move || cmd.run())
    }
}

/// How a step ended, for the summary.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Passed(Duration),
    Failed(Duration),
    NotRun,
}

/// Runs the steps in order. Stops at the first failure and returns its error, prefixed with
/// the step's name; prints the summary either way.
pub(crate) fn run_all(title: &str, steps: Vec<Step>) -> Result<()> {
    let total = steps.len();
    let started = Instant::now();
    let mut outcomes: Vec<(String, Outcome)> = Vec::with_capacity(total);
    let mut failure = None;
    for (index, step) in steps.into_iter().enumerate() {
        if failure.is_some() {
            outcomes.push((step.name, Outcome::NotRun));
            continue;
        }
        eprintln!("\n==> [{}/{total}] {}", index + 1, step.name);
        let step_started = Instant::now();
        let result = (step.action)();
        let elapsed = step_started.elapsed();
        match result {
            Ok(()) => outcomes.push((step.name, Outcome::Passed(elapsed))),
            Err(err) => {
                failure = Some(err.context(format!("step `{}` failed", step.name)));
                outcomes.push((step.name, Outcome::Failed(elapsed)));
            }
        }
    }
    eprint!("{}", summary(title, &outcomes, started.elapsed()));
    failure.map_or(Ok(()), Err)
}

/// The summary table printed after the run.
fn summary(title: &str, outcomes: &[(String, Outcome)], total: Duration) -> String {
    let failed = outcomes
        .iter()
        .any(|(_, outcome)| matches!(outcome, Outcome::Failed(_)));
    let verdict = if failed { "FAILED" } else { "passed" };
    let mut text = format!(
        "\n==> {title} {verdict} in {}; summary:\n",
        format_duration(total)
    );
    for (name, outcome) in outcomes {
        let (status, time) = match outcome {
            Outcome::Passed(elapsed) => ("ok", format_duration(*elapsed)),
            Outcome::Failed(elapsed) => ("FAILED", format_duration(*elapsed)),
            Outcome::NotRun => ("not run", String::new()),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(text, "    {status:<8} {time:>9}  {name}");
    }
    text
}

/// `0.4s`, `12.3s`, `3m 05s`: precise for short steps, readable for long ones.
pub(crate) fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn durations_are_short_and_readable() {
        assert_eq!(format_duration(Duration::from_millis(400)), "0.4s");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3m 05s");
    }

    #[test]
    fn stops_at_the_first_failure_and_names_it() {
        let ran_after_failure = Rc::new(Cell::new(false));
        let flag = Rc::clone(&ran_after_failure);
        let steps = vec![
            Step::new("first", || Ok(())),
            Step::new("second", || anyhow::bail!("boom")),
            Step::new("third", move || {
                flag.set(true);
                Ok(())
            }),
        ];
        let err = run_all("test", steps).unwrap_err();
        assert_eq!(format!("{err:#}"), "step `second` failed: boom");
        assert!(!ran_after_failure.get());
    }

    #[test]
    fn summary_lists_every_step() {
        let outcomes = [
            ("fmt".to_owned(), Outcome::Passed(Duration::from_secs(1))),
            ("clippy".to_owned(), Outcome::Failed(Duration::from_secs(2))),
            ("test".to_owned(), Outcome::NotRun),
        ];
        let text = summary("cargo xtask test", &outcomes, Duration::from_secs(3));
        assert!(text.contains("cargo xtask test FAILED in 3.0s"), "{text}");
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(2)
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec!["ok", "1.0s", "fmt"],
                vec!["FAILED", "2.0s", "clippy"],
                vec!["not", "run", "test"],
            ],
            "{text}"
        );
    }
}
