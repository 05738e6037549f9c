//! The server crate's example clients (`server/examples/`), run as a user runs them: as separate
//! processes, killed when their handle drops, their stdout read line by line with a deadline.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The example's executable, built first (a no-op when `cargo test` already built it).
pub fn example_binary(name: &str) -> PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "mcp-oauth-server", "--example", name])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building example {name}");
    target_dir().join("debug/examples").join(name)
}

/// The server binary (`mcp-oauth-server`), built first (a no-op when already built).
pub fn server_binary() -> PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "mcp-oauth-server",
            "--bin",
            "mcp-oauth-server",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the server");
    target_dir().join("debug/mcp-oauth-server")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// A running example; killed when dropped.
pub struct RunningExample {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl RunningExample {
    /// Starts example `name` with `args` (and `env`), its stderr inherited so that its logs
    /// show with a failing test's output.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(example_binary(name));
        command
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the example starts");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self { child, stdout }
    }

    /// The next line the example prints, within `deadline`; `None` once it has closed stdout.
    pub async fn next_line(&mut self, deadline: Duration) -> Option<String> {
        tokio::time::timeout(deadline, self.stdout.next_line())
            .await
            .expect("the example printed nothing in time")
            .expect("reading the example's stdout")
    }

    /// Every remaining line, then the exit status, within `deadline`.
    pub async fn finish(mut self, deadline: Duration) -> (Vec<String>, std::process::ExitStatus) {
        let mut lines = Vec::new();
        while let Some(line) = self.next_line(deadline).await {
            lines.push(line);
        }
        let status = tokio::time::timeout(deadline, self.child.wait())
            .await
            .expect("the example exits in time")
            .expect("waiting for the example");
        (lines, status)
    }
}
