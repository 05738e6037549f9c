//! Runs one corpus case against a [`Target`]: the same steps for our server (the suite, which
//! holds it to every byte of the expected answer) and for any other (`conformance check`, which
//! holds it to what the RFCs require).
//!
//! A case is [`prepared`](prepare) (IdP set-up, the credential, its proofs, and a replayed
//! proof's first use), [`sent`](send), [`judged`](judge) and followed by a check that the server
//! [still serves](still_serves) a valid request. The steps are separate so the suite can look at a
//! gateway's upstream between them.

use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use super::{AttackCase, Sending};
use crate::target::Target;

/// How closely an answer must match the case's expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Our server: the status, the challenge scheme carrying the error, the error code and the
    /// exact `error_description`.
    Exact,
    /// Any server: what the RFCs require. A refusal must be a refusal (4xx) and never a 5xx
    /// (MUST); its status and error code are RFC 6750's (SHOULD: [`Verdict::Deviates`]); the
    /// description is the server's own.
    Spec,
}

/// What came of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answered as expected.
    Pass,
    /// Refused, as required, but not in the expected shape (status or error code): a SHOULD.
    Deviates(String),
    /// Accepted what must be refused, refused what must be accepted, or a 5xx: a MUST.
    Fails(String),
}

/// A case ready to send: its credential and proofs, and the first use of a replayed proof done.
#[derive(Debug)]
pub struct Prepared {
    /// The credential (a token, or the case's literal).
    pub credential: String,
    /// The `DPoP` header values.
    pub proofs: Vec<String>,
}

/// Sets up the IdP as the case asks, makes its credential and proofs and, for a replay, sends
/// the request once first (it must be accepted, or the replay proves nothing).
///
/// # Errors
/// When the replay's first use is refused, or the request cannot be sent.
pub async fn prepare(target: &Target<'_>, case: &AttackCase) -> Result<Prepared, String> {
    case.prepare(target).await?;
    let credential = case.credential(target).await;
    let proofs = case.proofs(target, &credential).await;
    let prepared = Prepared { credential, proofs };
    if case.dpop_sending() == Some(Sending::Replayed) {
        let first = send(target, case, &prepared).await?.status();
        if !first.is_success() {
            return Err(format!("the proof's first use got {first}"));
        }
    }
    Ok(prepared)
}

/// Sends the case's request: `initialize` with its credential as its `request` says, and its
/// proofs.
///
/// # Errors
/// When a header cannot be sent or the connection fails.
pub async fn send(
    target: &Target<'_>,
    case: &AttackCase,
    prepared: &Prepared,
) -> Result<reqwest::Response, String> {
    let token = &prepared.credential;
    let url = if case.request.query_token {
        format!("{}?access_token={token}", target.endpoint)
    } else {
        target.endpoint.to_owned()
    };
    let mut request = target
        .http
        .post(&url)
        .headers(target.mcp_headers(None))
        .json(&crate::initialize_request());
    for template in &case.request.authorization {
        let value = template.replace("{token}", token);
        let value = HeaderValue::from_bytes(value.as_bytes())
            .map_err(|e| format!("unsendable header: {e}"))?;
        request = request.header("authorization", value);
    }
    for proof in &prepared.proofs {
        let value = HeaderValue::from_bytes(proof.as_bytes())
            .map_err(|e| format!("unsendable proof: {e}"))?;
        request = request.header("dpop", value);
    }
    request
        .send()
        .await
        .map_err(|e| format!("transport error: {e}"))
}

/// Judges the answer to the case's request.
pub fn judge(case: &AttackCase, response: &reqwest::Response, strictness: Strictness) -> Verdict {
    let status = response.status();
    let expected = case.expect.status;
    if status.is_server_error() {
        return Verdict::Fails(format!("answered {status}: a 5xx"));
    }
    let must_accept = expected < 300;
    match (must_accept, status.is_success()) {
        (true, false) => {
            return Verdict::Fails(format!("refused ({status}) what must be accepted"));
        }
        (false, true) => {
            return Verdict::Fails(format!("accepted ({status}) what must be refused"));
        }
        _ => {}
    }
    let params = crate::challenge_of(response.headers(), &case.expect.challenge);
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
    };
    let (error, description) = (param("error"), param("error_description"));
    let shape = if status.as_u16() != expected {
        Some(format!("answered {status}, expected {expected}"))
    } else if error != case.expect.error {
        Some(format!(
            "challenge error {error:?}, expected {:?}",
            case.expect.error
        ))
    } else {
        None
    };
    match strictness {
        Strictness::Spec => shape.map_or(Verdict::Pass, Verdict::Deviates),
        Strictness::Exact => match shape {
            Some(why) => Verdict::Fails(why),
            None if description != case.expect.error_description => Verdict::Fails(format!(
                "refused for another reason: error_description {description:?}, expected {:?}",
                case.expect.error_description
            )),
            None => Verdict::Pass,
        },
    }
}

/// Whether the server still serves a valid request after the case.
///
/// # Errors
/// What it answered instead.
pub async fn still_serves(target: &Target<'_>) -> Result<(), String> {
    let valid = target.token_for("conformance-after").await;
    match target.initialize_status(Some(&valid)).await {
        StatusCode::OK => Ok(()),
        other => Err(format!("a valid request after the attack got {other}")),
    }
}

/// A case whose token names a key URL (`jku`, `x5u`) at one of the IdP's tenants: that tenant's
/// JWKS must never have been fetched.
///
/// # Errors
/// How often it was.
pub async fn fetched_nothing_it_was_told_to(
    target: &Target<'_>,
    case: &AttackCase,
) -> Result<(), String> {
    let Some(tenant) = &case.expect.never_fetched_tenant else {
        return Ok(());
    };
    let fetched = target.idp.jwks_fetches(tenant).await?;
    if fetched == 0 {
        Ok(())
    } else {
        Err(format!(
            "the server fetched a key URL from the token header ({fetched} times)"
        ))
    }
}
