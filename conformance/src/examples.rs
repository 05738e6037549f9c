//! The server crate's example clients (`server/examples/`), run as a user runs them: as separate
//! processes, killed when their handle drops, their stdout read line by line with a deadline.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The example's executable, built first (a no-op when `cargo test` already built it).
pub fn example_binary(name: &str) -> PathBuf {
    build(
        "mcp-oauth-server",
        &["--example", name],
        &format!("example {name}"),
    );
    profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The server binary (`mcp-oauth-server`), built first (a no-op when already built).
pub fn server_binary() -> PathBuf {
    build(
        "mcp-oauth-server",
        &["--bin", "mcp-oauth-server"],
        "the server",
    );
    profile_dir().join(format!("mcp-oauth-server{}", std::env::consts::EXE_SUFFIX))
}

/// The mock IdP's binary (`mock-idp`), built first (a no-op when already built).
pub fn mock_idp_binary() -> PathBuf {
    build("mock-idp", &["--bin", "mock-idp"], "the mock IdP");
    profile_dir().join(format!("mock-idp{}", std::env::consts::EXE_SUFFIX))
}

/// Builds `what` of `package` into the target directory and profile this test binary was
/// built in, so that the executable is where [`profile_dir`] says, however the target directory
/// was chosen (`CARGO_TARGET_DIR`, `--target-dir`, `build.target-dir`, `--release`).
fn build(package: &str, target: &[&str], what: &str) {
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", package])
        .args(target)
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--profile", &cargo_profile(&profile_dir)])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {what}");
}

/// `<target>/<profile>`, the directory of this test binary's profile: Cargo puts test binaries
/// in `<target>/<profile>/deps/`, binaries in `<target>/<profile>/` and examples in
/// `<target>/<profile>/examples/`. Read from the running executable, it is right wherever the
/// target directory is, where `../target/debug` is right only by default.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(std::path::Path::parent)
        .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()))
        .to_path_buf()
}

/// The Cargo profile whose output directory is `profile_dir`: `debug` is the `dev` (and
/// `test`) profile's; every other profile's directory bears its name.
fn cargo_profile(profile_dir: &std::path::Path) -> String {
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(name) => name.to_owned(),
    }
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

/// An example that serves (`custom_tools`, `axum_embed`), started as a user starts it: the
/// server's variables in its environment, `PORT=0`, JSON logs. Killed when dropped.
pub struct ServingExample {
    _child: Child,
    /// `127.0.0.1:PORT`, as its "listening" log line says.
    pub address: String,
    /// The MCP endpoint it serves, as its "listening" log line says.
    pub endpoint: String,
}

impl ServingExample {
    /// Starts example `name` with the server's variables `env` (plus `PORT=0` and
    /// `LOG_FORMAT=json`) and waits, at most `deadline`, for its "listening" log line. Its other
    /// log lines go on to the test's stderr.
    pub async fn start(name: &str, env: &[(&str, &str)], deadline: Duration) -> Self {
        let mut child = Command::new(example_binary(name))
            .env_remove("RUST_LOG")
            .env_remove("MCP_RESOURCE_URL")
            .env_remove("HOST")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the example starts");
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let listening = tokio::time::timeout(deadline, async {
            while let Some(line) = lines
                .next_line()
                .await
                .expect("reading the example's stderr")
            {
                eprintln!("{line}");
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let message = record["message"].as_str().unwrap_or_default();
                if message.ends_with("listening") {
                    return record;
                }
            }
            panic!("example {name} stopped before listening");
        })
        .await
        .unwrap_or_else(|_| panic!("example {name} did not listen within {deadline:?}"));
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
            }
        });
        let field = |name: &str| {
            listening[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {listening}"))
                .to_owned()
        };
        Self {
            address: field("address"),
            endpoint: field("endpoint"),
            _child: child,
        }
    }
}
