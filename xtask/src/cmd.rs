//! Running external commands.
//!
//! Every command that changes something is echoed before it runs (`    $ cargo test ...`), its
//! output streams straight to the terminal, and a failure becomes an error that names the whole
//! command line, so a red CI log says what broke without scrolling. Probes (`rustup target
//! list`, `cargo fuzz --version`, ...) run silently: they only answer a question.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

/// A command line to run: a small builder over [`std::process::Command`] that remembers what it
/// will run, so it can be echoed and named in errors.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    program: String,
    args: Vec<String>,
    dir: Option<PathBuf>,
    envs: Vec<(String, String)>,
}

impl Cmd {
    /// A command running `program` (looked up on `PATH`) with no arguments yet.
    pub(crate) fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            dir: None,
            envs: Vec::new(),
        }
    }

    /// Appends one argument.
    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs the command in `dir` instead of the current directory.
    pub(crate) fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets an environment variable for the command only.
    pub(crate) fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Echoes the command, runs it with inherited stdio and fails unless it exits with 0.
    pub(crate) fn run(&self) -> Result<()> {
        self.echo();
        let status = self
            .to_command()
            .status()
            .with_context(|| self.spawn_error())?;
        if !status.success() {
            bail!("`{self}` failed ({status})");
        }
        Ok(())
    }

    /// Echoes the command and replaces this process with it (Unix `exec`), so that a signal
    /// for this process reaches the command itself. Returns only if it could not start.
    pub(crate) fn exec(&self) -> anyhow::Error {
        use std::os::unix::process::CommandExt as _;
        self.echo();
        let error = self.to_command().exec();
        anyhow::Error::new(error).context(self.spawn_error())
    }

    /// Runs the command silently and returns its standard output, or an error naming the
    /// command (with its standard error) when it fails.
    pub(crate) fn read(&self) -> Result<String> {
        let output = self
            .to_command()
            .stdin(Stdio::null())
            .output()
            .with_context(|| self.spawn_error())?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            bail!("`{self}` failed ({}): {}", output.status, stderr.trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Prints the command line the way [`Cmd::run`] does, for callers that spawn it themselves.
    pub(crate) fn echo(&self) {
        match &self.dir {
            Some(dir) => eprintln!("    $ {self}    (in {})", dir.display()),
            None => eprintln!("    $ {self}"),
        }
    }

    /// The equivalent [`std::process::Command`], for callers that need to pipe its output.
    pub(crate) fn to_command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Context for a command that could not even start (usually: not installed). The
    /// `io::Error` alone would say "No such file or directory" without naming the program.
    pub(crate) fn spawn_error(&self) -> String {
        format!("could not start `{self}`")
    }
}

impl fmt::Display for Cmd {
    /// Shell-like rendering: environment assignments, program and arguments, with arguments
    /// that contain spaces or quotes single-quoted so the line can be pasted into a shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.envs {
            write!(f, "{key}={} ", quote(value))?;
        }
        f.write_str(&quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

/// Quotes `word` for a POSIX shell if it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+./:,@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_a_pasteable_shell_line() {
        let cmd = Cmd::new("cargo")
            .args(["fmt", "--all", "--", "--check"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .arg("two words")
            .arg("it's");
        assert_eq!(
            cmd.to_string(),
            r"DEBIAN_FRONTEND=noninteractive cargo fmt --all -- --check 'two words' 'it'\''s'"
        );
    }

    #[test]
    fn failure_names_the_command() {
        let err = Cmd::new("false").run().unwrap_err();
        assert!(err.to_string().contains("`false` failed"), "{err}");
    }

    #[test]
    fn missing_program_is_reported_clearly() {
        let cmd = Cmd::new("aviary-xtask-no-such-program");
        let err = cmd.read().unwrap_err();
        assert!(format!("{err:#}").contains("could not start"), "{err:#}");
    }
}
