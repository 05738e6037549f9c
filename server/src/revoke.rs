//! `mcp-oauth-server revoke`: pushes one revocation to the shared state store, for every replica
//! that shares it to honour within its poll interval (`MCP_STATE_REVOCATION_POLL_MS`). A token
//! is named by a file holding it (never by an argument: arguments show in `ps`) or by its SHA-256;
//! a user by issuer and subject (every token issued until now); a token by issuer and `jti`.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser};

use crate::shared_state::{
    Revocation, Revoked, SharedStateSettings, StateUrl, hex, push_revocation,
};

/// Revokes tokens on every replica that shares `MCP_STATE_URL`.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-oauth-server revoke",
    about = "Revokes tokens on every replica that shares MCP_STATE_URL",
    group(ArgGroup::new("what").required(true).args(["token_file", "token_sha256", "subject", "jti"]))
)]
struct RevokeArgs {
    /// The shared state store (`redis://` or `rediss://`).
    #[arg(long, env = "MCP_STATE_URL")]
    state_url: String,
    /// A file holding the store's password (instead of one in the URL).
    #[arg(long, env = "MCP_STATE_PASSWORD_FILE")]
    state_password_file: Option<PathBuf>,
    /// A file holding the token to revoke (`-`: standard input).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The token's fingerprint, as this command prints it: the hex SHA-256 of a JWT's signed part
    /// (`header.payload`, what its signature covers), or of an opaque token whole.
    #[arg(long)]
    token_sha256: Option<String>,
    /// Revoke every token of this subject issued until now (needs the issuer).
    #[arg(long, requires = "issuer")]
    subject: Option<String>,
    /// Revoke the token with this `jti` (needs the issuer).
    #[arg(long, requires = "issuer")]
    jti: Option<String>,
    /// The issuer of the subject or `jti`.
    #[arg(long, env = "OAUTH_ISSUER")]
    issuer: Option<String>,
    /// How long replicas keep the revocation, seconds: at least the longest lifetime of the
    /// tokens concerned (at most 30 days).
    #[arg(long, default_value_t = 86_400)]
    keep_secs: u64,
}

/// Whether the process was started as `mcp-oauth-server revoke ...`.
pub(crate) fn asked() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "revoke")
}

/// Runs the command; what it did, for the caller to print.
///
/// # Errors
/// A message for a bad argument or a store that cannot be reached.
pub(crate) async fn run() -> Result<String, String> {
    let args =
        RevokeArgs::try_parse_from(std::env::args_os().skip(1)).map_err(|e| e.to_string())?;
    let mut url = StateUrl::parse(&args.state_url)?;
    if let Some(path) = &args.state_password_file {
        url = crate::config::with_password_file(url, path)?;
    }
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs(),
    )
    .unwrap_or(i64::MAX);
    let keep = Duration::from_secs(args.keep_secs);
    let until = now.saturating_add(i64::try_from(args.keep_secs).unwrap_or(i64::MAX));
    let issuer = args.issuer.clone().unwrap_or_default();
    let (revocation, said) = if let Some(path) = &args.token_file {
        let mut token = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut token)
                .map_err(|e| format!("cannot read the token: {e}"))?;
        } else {
            token = crate::config::read_text_bounded(path, 64 * 1024)?;
        }
        let token = token.trim();
        let revocation = Revocation::token(token, now, keep);
        let hash = hex(&crate::shared_state::token_fingerprint(token));
        (revocation, format!("the token with fingerprint {hash}"))
    } else if let Some(hash) = &args.token_sha256 {
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("--token-sha256 takes 64 hex digits".into());
        }
        let said = format!("the token with fingerprint {hash}");
        let revoked = Revoked::Token { sha256: hash };
        (Revocation { revoked, until }, said)
    } else if let Some(subject) = &args.subject {
        let said = format!("every token of {subject:?} at {issuer:?} issued until now");
        (subject_revocation(issuer, subject, now, until), said)
    } else if let Some(jti) = &args.jti {
        let said = format!("the token {jti:?} of {issuer:?}");
        let revoked = Revoked::TokenId {
            issuer,
            jti: jti.clone(),
        };
        (Revocation { revoked, until }, said)
    } else {
        return Err("say what to revoke".into());
    };
    let settings = SharedStateSettings::new(url);
    let settings = SharedStateSettings {
        timeout: Duration::from_secs(5),
        ..settings
    };
    push_revocation(&settings, &revocation)
        .await
        .map_err(|e| format!("cannot push the revocation: {e}"))?;
    Ok(format!(
        "revoked {said}, on every replica within its poll interval"
    ))
}

/// Every token of `subject` at `issuer` issued until `now`, and a minute more: the authorization
/// server's clock may run ahead of this host's, and a token it issued a moment ago must not
/// escape.
fn subject_revocation(issuer: String, subject: &str, now: i64, until: i64) -> Revocation {
    Revocation {
        revoked: Revoked::Subject {
            issuer,
            subject: subject.to_owned(),
            before: now.saturating_add(SUBJECT_LEEWAY_SECS),
        },
        until,
    }
}

/// How far past this host's clock a subject's revocation reaches.
const SUBJECT_LEEWAY_SECS: i64 = 60;

#[cfg(test)]
mod tests {
    use super::*;

    /// A token issued by a clock a little ahead of this host's is revoked too.
    #[test]
    fn a_subjects_revocation_reaches_a_minute_past_now() {
        let revocation = subject_revocation("https://as.example".into(), "alice", 1_000, 90_000);
        assert_eq!(revocation.until, 90_000);
        assert!(matches!(
            revocation.revoked,
            Revoked::Subject { before: 1_060, ref subject, .. } if subject == "alice"
        ));
    }
}
