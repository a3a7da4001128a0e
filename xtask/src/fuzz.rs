//! `cargo xtask fuzz [--seconds N] [TARGET]`: run the codec's cargo-fuzz targets.
//!
//! The fuzz crate lives in `protocol/fuzz/` and needs nightly (sanitizers). libFuzzer's output
//! is streamed as it comes, but a ten-minute run scrolls far, so the lines that summarise the
//! run (final stats, `Done N runs`, a crash's `SUMMARY` and artifact path) are also kept and
//! printed again at the end, per target.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context as _, Result};

use crate::cmd::Cmd;
use crate::prereq;
use crate::tools::CARGO_FUZZ;
use crate::workspace::Workspace;

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 600;

/// Parsed command line of `cargo xtask fuzz`.
#[derive(Debug, PartialEq, Eq)]
struct FuzzArgs {
    seconds: u64,
    target: Option<String>,
    help: bool,
}

/// Runs `cargo xtask fuzz`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let args = parse(args)?;
    if args.help {
        print!("{}", crate::USAGE);
        return Ok(());
    }
    let workspace = Workspace::find()?;
    let crate_dir = workspace.path("protocol");
    if !crate_dir.join("fuzz").join("Cargo.toml").is_file() {
        bail!("there is no fuzz crate at protocol/fuzz/ yet (cargo-fuzz layout expected)");
    }
    prereq::ensure_toolchain("nightly")?;
    prereq::ensure_cargo_tool(&CARGO_FUZZ)?;
    let targets = match args.target {
        Some(target) => vec![target],
        None => list_targets(&crate_dir)?,
    };
    let mut summaries = Vec::new();
    for target in &targets {
        eprintln!("\n==> fuzzing `{target}` for {} seconds", args.seconds);
        let (result, summary) = run_target(&crate_dir, target, args.seconds);
        summaries.push((target, summary));
        // Print what we have before reporting a crash: the summary says what was found.
        if let Err(err) = result {
            print_summaries(&summaries);
            return Err(err.context(format!(
                "fuzz target `{target}` failed (see above; a crashing input is saved in \
                 protocol/fuzz/artifacts/{target}/)"
            )));
        }
    }
    print_summaries(&summaries);
    Ok(())
}

/// Parses `[--seconds N] [TARGET]` (also `--seconds=N`).
fn parse(args: &[String]) -> Result<FuzzArgs> {
    let mut parsed = FuzzArgs {
        seconds: DEFAULT_SECONDS,
        target: None,
        help: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let seconds = if let Some(value) = arg.strip_prefix("--seconds=") {
            Some(value)
        } else if arg == "--seconds" {
            Some(args.next().context("--seconds needs a value")?.as_str())
        } else {
            None
        };
        if let Some(value) = seconds {
            parsed.seconds = value
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("--seconds wants a positive number, got `{value}`"))?;
        } else if arg == "-h" || arg == "--help" {
            parsed.help = true;
        } else if arg.starts_with('-') {
            bail!("unknown option `{arg}` for `cargo xtask fuzz`");
        } else if parsed.target.is_some() {
            bail!("`cargo xtask fuzz` takes at most one TARGET (got a second, `{arg}`)");
        } else {
            parsed.target = Some(arg.clone());
        }
    }
    Ok(parsed)
}

/// `cargo fuzz list`: every target of the fuzz crate.
fn list_targets(crate_dir: &Path) -> Result<Vec<String>> {
    let listing = fuzz_cmd(crate_dir).arg("list").read()?;
    let targets: Vec<String> = listing
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!("`cargo fuzz list` found no fuzz targets in protocol/fuzz/");
    }
    Ok(targets)
}

/// Runs one target, streaming its output; returns the outcome and the summary lines.
fn run_target(crate_dir: &Path, target: &str, seconds: u64) -> (Result<()>, Vec<String>) {
    if let Err(err) = std::fs::create_dir_all(crate_dir.join("fuzz/corpus").join(target)) {
        return (
            Err(err).context("cannot create the fuzz corpus directory"),
            Vec::new(),
        );
    }
    // The working corpus (git-ignored) grows as the fuzzer learns; the
    // committed seeds (vectors and past regressions) are read too.
    let cmd = fuzz_cmd(crate_dir).args([
        "run".to_owned(),
        target.to_owned(),
        format!("fuzz/corpus/{target}"),
        "fuzz/seeds".to_owned(),
        "--".to_owned(),
        format!("-max_total_time={seconds}"),
        "-print_final_stats=1".to_owned(),
    ]);
    cmd.echo();
    let mut child = match cmd.to_command().stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(err) => return (Err(err).context(cmd.spawn_error()), Vec::new()),
    };
    let mut summary = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        // Bytes, not `lines()`: a crash report may quote non-UTF-8 input.
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            eprint!("{text}");
            if is_summary_line(&text) {
                summary.push(text.trim_end().replace('\t', " "));
            }
            line.clear();
        }
    }
    let result = match child.wait() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(anyhow::anyhow!("`{cmd}` failed ({status})")),
        Err(err) => Err(err).context(format!("waiting for `{cmd}`")),
    };
    (result, summary)
}

/// `cargo +nightly fuzz ...` from the protocol crate, where cargo-fuzz finds `fuzz/`.
fn fuzz_cmd(crate_dir: &Path) -> Cmd {
    Cmd::new("cargo").args(["+nightly", "fuzz"]).dir(crate_dir)
}

/// The libFuzzer lines worth repeating after the run.
fn is_summary_line(line: &str) -> bool {
    line.starts_with("Done ")
        || line.starts_with("stat::")
        || line.starts_with("SUMMARY:")
        // The last status line: `#2097152\tDONE   cov: 411 ft: 1220 corp: 230/9Kb ...`.
        || (line.starts_with('#') && line.contains("DONE"))
        || line.contains("Test unit written to")
        // AddressSanitizer's report header: `==1234==ERROR: AddressSanitizer: ...`.
        || (line.starts_with("==") && line.contains("ERROR:"))
}

/// Prints each target's kept lines under a header.
fn print_summaries(summaries: &[(&String, Vec<String>)]) {
    for (target, lines) in summaries {
        eprintln!("\n==> libFuzzer summary for `{target}`:");
        if lines.is_empty() {
            eprintln!("    (no summary lines; see the output above)");
        }
        for line in lines {
            eprintln!("    {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    #[test]
    fn defaults_to_all_targets_for_ten_minutes() {
        let parsed = parse(&[]).unwrap();
        assert_eq!(parsed.seconds, 600);
        assert_eq!(parsed.target, None);
    }

    #[test]
    fn parses_seconds_and_target_in_any_order() {
        for args in [
            strings(&["--seconds", "30", "decode"]),
            strings(&["decode", "--seconds=30"]),
        ] {
            let parsed = parse(&args).unwrap();
            assert_eq!(parsed.seconds, 30);
            assert_eq!(parsed.target.as_deref(), Some("decode"));
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse(&strings(&["--seconds"])).is_err());
        assert!(parse(&strings(&["--seconds", "0"])).is_err());
        assert!(parse(&strings(&["--seconds", "ten"])).is_err());
        assert!(parse(&strings(&["--jobs", "2"])).is_err());
        assert!(parse(&strings(&["decode", "encode"])).is_err());
    }

    #[test]
    fn keeps_libfuzzer_summary_lines() {
        assert!(is_summary_line("Done 123456 runs in 61 second(s)"));
        assert!(is_summary_line("stat::number_of_executed_units: 123456"));
        assert!(is_summary_line(
            "#123456\tDONE   cov: 411 ft: 1220 corp: 230/9Kb"
        ));
        assert!(is_summary_line("SUMMARY: libFuzzer: deadly signal"));
        assert!(!is_summary_line("#1024\tpulse  cov: 300 ft: 800"));
    }
}
