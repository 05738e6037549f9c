#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! Configuration mistakes as an operator makes them, run through the real binary: every
//! malformed value reported at once, each naming its variable, and a misspelled variable named
//! with the one it most likely means instead of being ignored.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the server with exactly `env` (nothing inherited, so a developer's own `OAUTH_*` cannot
/// change the outcome) in `dir`, and returns what it printed. Every case here stops before
/// binding: the configuration is refused.
fn run(env: &[(&str, &str)], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-oauth-server"))
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A fresh empty directory (no `.env`) for this test.
fn directory(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-oauth-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(dir.join(".env"));
    dir
}

/// The README's promise: every problem at once, naming each variable. A number that is not one
/// (`PORT=abc`) and an enum value that is not one no longer stop the parse alone: they are listed
/// with the URL that is not one, each under its variable and not under a flag.
#[test]
fn every_malformed_variable_is_reported_at_once_naming_the_variable() {
    let output = run(
        &[
            ("PORT", "abc"),
            ("OAUTH_ISSUER", "notaurl"),
            ("OAUTH_TOKEN_TYPES", "loose"),
            ("MCP_MAX_SESSIONS", "0"),
        ],
        &directory("all-problems"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid configuration (4 problems)"),
        "{stderr}"
    );
    for line in [
        "  PORT: \"abc\" is not valid: invalid digit found in string",
        "  OAUTH_TOKEN_TYPES: \"loose\" is not valid: use one of: default, strict",
        "  OAUTH_ISSUER: ",
        "  MCP_MAX_SESSIONS: must be at least 1",
    ] {
        assert!(stderr.contains(line), "{line:?} missing from:\n{stderr}");
    }
    assert!(
        !stderr.contains("--port"),
        "the variable, not the flag: {stderr}"
    );
}

/// A malformed value on the command line is named by its flag, next to the variables'
/// problems.
#[test]
fn a_malformed_flag_is_reported_with_the_malformed_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_mcp-oauth-server"))
        .env_clear()
        .env("OAUTH_LEEWAY_SECS", "-5")
        .args(["--port", "70000"])
        .current_dir(directory("flag-problem"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("  PORT: --port \"70000\" is not valid"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  OAUTH_LEEWAY_SECS: \"-5\" is not valid"),
        "{stderr}"
    );
}

/// `OAUTH_AUDIANCE` is not silently ignored: a warning names it and the variable it most
/// likely means, also when it comes from `.env`; a variable of another program sharing the
/// environment (the example clients' `MCP_CLIENT_ID`) is left alone.
#[test]
fn a_misspelled_variable_is_named_with_the_closest_known_one() {
    let dir = directory("misspelled");
    std::fs::write(dir.join(".env"), "OAUTH_ISSUR=https://idp.example.com\n").unwrap();
    let output = run(
        &[
            ("OAUTH_AUDIANCE", "https://mcp.example.com/mcp"),
            ("MCP_CLIENT_ID", "demo-client"),
        ],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let warning = |name: &str, suggestion: &str| {
        stderr.lines().any(|line| {
            line.contains("WARN")
                && line.contains(&format!("variable=\"{name}\""))
                && line.contains(&format!("did you mean {suggestion}?"))
        })
    };
    assert!(warning("OAUTH_AUDIANCE", "OAUTH_AUDIENCE"), "{stderr}");
    assert!(
        warning("OAUTH_ISSUR", "OAUTH_ISSUER"),
        "from .env: {stderr}"
    );
    assert!(!stderr.contains("MCP_CLIENT_ID"), "{stderr}");
    assert!(stderr.contains("  OAUTH_ISSUER: required"), "{stderr}");
}
