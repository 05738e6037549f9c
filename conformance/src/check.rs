//! `conformance check`: the resource-server side of the MCP authorization spec, judged black-box
//! against any MCP server, whatever its language or SDK.
//!
//! The server under test trusts the mock IdP this tool runs (its issuer and JWKS are printed for
//! the operator to configure); the tool then sends what a client, a confused deputy or an
//! attacker would, and records for each check its requirement id, level, reference, what was
//! sent and what came back. The attack corpus is the suite's own (`fixtures/attacks`), run by
//! the suite's own runner ([`crate::attacks::runner`]) in its [`Strictness::Spec`] mode.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mcp_oauth_server::SystemClock;
use mock_idp::MockIdp;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::attacks::runner::{self, Strictness, Verdict};
use crate::attacks::{EnvKind, load_corpus};
use crate::coverage::repo_root;
use crate::target::{Idp, Target};

mod report;
pub use report::{junit, table};

/// What the operator says about the server under test.
#[derive(Debug, Clone)]
pub struct Options {
    /// The MCP endpoint.
    pub url: String,
    /// Scopes every request needs (a valid token carries them).
    pub scopes: Vec<String>,
    /// A tool that needs an extra scope, and that scope: the 403 step-up is checked with it.
    pub scoped_tool: Option<(String, String)>,
}

/// A requirement's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// A failure fails the run.
    Must,
    /// A deviation is reported; the run passes.
    Should,
}

/// What came of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "why", rename_all = "lowercase")]
pub enum Outcome {
    /// It holds.
    Pass,
    /// It does not.
    Fail(String),
    /// It cannot apply here, and why.
    Skip(String),
}

/// One check's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// The spec-checklist id (`B03`, `J01`...).
    pub id: String,
    /// MUST or SHOULD.
    pub level: Level,
    /// Where the requirement comes from.
    pub reference: String,
    /// What was checked.
    pub check: String,
    /// Pass, fail or skip.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What was sent.
    pub sent: String,
    /// What came back.
    pub received: String,
}

/// Every finding of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The endpoint judged.
    pub url: String,
    /// The findings, in the order checked.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether a MUST failed: the run's exit status.
    pub fn must_failed(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.level == Level::Must && matches!(f.outcome, Outcome::Fail(_)))
    }

    /// Counts of passes, failures and skips.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for finding in &self.findings {
            match finding.outcome {
                Outcome::Pass => counts.0 += 1,
                Outcome::Fail(_) => counts.1 += 1,
                Outcome::Skip(_) => counts.2 += 1,
            }
        }
        counts
    }
}

/// The mock IdP the server under test must trust, on `port` (0: any), its tokens naming
/// `audience` unless a case says otherwise.
///
/// # Errors
/// When it cannot start.
pub async fn start_idp(port: u16, audience: &str) -> Result<MockIdp, String> {
    MockIdp::builder()
        .keys(crate::fixture_supply())
        .settings(mock_idp::IssuerSettings {
            default_audience: audience.to_owned(),
            ..mock_idp::IssuerSettings::default()
        })
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .start()
        .await
        .map_err(|e| format!("the mock IdP cannot start: {e}"))
}

/// Waits until something answers HTTP at `url`.
///
/// # Errors
/// When nothing does within `wait`.
pub async fn wait_for(url: &str, wait: Duration) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    let http = crate::no_redirects();
    loop {
        if http.get(url).send().await.is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("nothing answered at {url} within {wait:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Levels and sources of the checklist's rows (`docs/spec-checklist.md`): every row's id, its
/// level (the attack table's rows, which have none, are refusals: MUST) and its source, the RFC
/// or spec section it comes from.
struct Checklist(BTreeMap<String, (Option<Level>, String)>);

impl Checklist {
    fn read() -> Self {
        let text =
            std::fs::read_to_string(repo_root().join("docs/spec-checklist.md")).unwrap_or_default();
        let mut rows = BTreeMap::new();
        for line in text.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let Some(id) = cells.get(1) else { continue };
            let is_id = id.len() == 3
                && id.as_bytes()[0].is_ascii_uppercase()
                && id[1..].bytes().all(|b| b.is_ascii_digit());
            if !is_id || rows.contains_key(*id) {
                continue;
            }
            let level_cell = cells.get(3).copied().unwrap_or_default();
            // The attack table's rows have no level: refusals, MUST. Others say MUST,
            // SHOULD or MAY; a row of practice or derivation leaves it to the check.
            let is_attack = id.starts_with('J');
            let level = if level_cell.contains("MUST") || is_attack {
                Some(Level::Must)
            } else if level_cell.to_ascii_uppercase().contains("SHOULD")
                || level_cell.contains("MAY")
            {
                Some(Level::Should)
            } else {
                None
            };
            let source = cells
                .iter()
                .rev()
                .skip(1)
                .find(|c| {
                    c.contains("RFC")
                        || c.contains('§')
                        || c.contains("M0")
                        || c.contains("M1")
                        || c.contains("M2")
                })
                .copied()
                .unwrap_or_default();
            rows.insert((*id).to_owned(), (level, source.to_owned()));
        }
        Self(rows)
    }

    fn level(&self, id: &str, otherwise: Level) -> Level {
        self.0
            .get(id)
            .and_then(|(level, _)| *level)
            .unwrap_or(otherwise)
    }

    fn source(&self, id: &str) -> String {
        self.0
            .get(id)
            .map(|(_, source)| source.clone())
            .unwrap_or_default()
    }
}

/// Runs every check against `options.url`, whose server trusts `idp`.
pub async fn run(options: &Options, idp: Idp<'_>) -> Report {
    let http = crate::no_redirects();
    let clock = SystemClock;
    let target = Target {
        endpoint: &options.url,
        resource: &options.url,
        idp,
        http: &http,
        clock: &clock,
        scopes: options.scopes.clone(),
    };
    let checklist = Checklist::read();
    let mut report = Report {
        url: options.url.clone(),
        findings: Vec::new(),
    };
    let token = target.token_for("conformance-alice").await;
    let valid = target.initialize_status(Some(&token)).await;
    report.findings.push(Finding {
        id: "D01".into(),
        level: Level::Must,
        reference: "the baseline: every other check assumes a valid token is served".into(),
        check: "a valid token (the tool's issuer, the URL as audience, the scopes given) is served"
            .into(),
        outcome: if valid.is_success() {
            Outcome::Pass
        } else {
            Outcome::Fail(format!(
                "initialize got {valid}: configure the server with the issuer and audience printed"
            ))
        },
        sent: "initialize, Bearer <valid token>".into(),
        received: valid.to_string(),
    });
    if !valid.is_success() {
        return report;
    }
    let metadata = discovery(&target, &checklist, &mut report).await;
    let dpop = metadata
        .as_ref()
        .is_some_and(|m| m.get("dpop_signing_alg_values_supported").is_some());
    corpus(&target, &checklist, dpop, &mut report).await;
    transport(&target, &checklist, &token, &mut report).await;
    step_up(&target, &checklist, options, &mut report).await;
    report
}

fn finding(
    checklist: &Checklist,
    id: &str,
    otherwise: Level,
    check: &str,
    outcome: Outcome,
    sent: &str,
    received: String,
) -> Finding {
    Finding {
        id: id.to_owned(),
        level: checklist.level(id, otherwise),
        reference: checklist.source(id),
        check: check.to_owned(),
        outcome,
        sent: sent.to_owned(),
        received,
    }
}

fn holds(ok: bool, why: impl FnOnce() -> String) -> Outcome {
    if ok {
        Outcome::Pass
    } else {
        Outcome::Fail(why())
    }
}

/// B01-B04, B08, A01-A07: the 401 without credentials and the RFC 9728 document it points to.
/// Returns the document, when there is one.
async fn discovery(
    target: &Target<'_>,
    checklist: &Checklist,
    report: &mut Report,
) -> Option<Value> {
    let anonymous = target
        .http
        .post(target.endpoint)
        .headers(target.mcp_headers(None))
        .json(&crate::initialize_request())
        .send()
        .await
        .ok()?;
    let status = anonymous.status();
    let challenge = anonymous
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.to_ascii_lowercase().starts_with("bearer "))
        .map(str::to_owned);
    let sent = "initialize, no Authorization";
    let received = format!(
        "{status}, WWW-Authenticate: {}",
        challenge.as_deref().unwrap_or("-")
    );
    report.findings.push(finding(
        checklist,
        "B01",
        Level::Must,
        "a request without credentials gets 401",
        holds(status == StatusCode::UNAUTHORIZED, || {
            format!("got {status}")
        }),
        sent,
        received.clone(),
    ));
    report.findings.push(finding(
        checklist,
        "B02",
        Level::Must,
        "the 401 carries a Bearer challenge",
        holds(challenge.is_some(), || "no Bearer challenge".into()),
        sent,
        received.clone(),
    ));
    let params = crate::challenge_of(anonymous.headers(), "Bearer");
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let metadata_url = param("resource_metadata");
    report.findings.push(finding(
        checklist,
        "B03",
        Level::Must,
        "the challenge names resource_metadata",
        holds(metadata_url.is_some(), || {
            "no resource_metadata parameter".into()
        }),
        sent,
        received.clone(),
    ));
    report.findings.push(finding(
        checklist,
        "B08",
        Level::Should,
        "no error parameter when no credentials were sent",
        holds(param("error").is_none(), || {
            format!("error={:?}", param("error"))
        }),
        sent,
        received,
    ));
    let Some(metadata_url) = metadata_url else {
        for (id, check) in [
            (
                "B04",
                "the resource_metadata URL serves the RFC 9728 document",
            ),
            ("A02", "authorization_servers names the issuer"),
            ("A04", "resource is the URL clients use"),
        ] {
            report.findings.push(finding(
                checklist,
                id,
                Level::Must,
                check,
                Outcome::Skip("the challenge names no resource_metadata".into()),
                "-",
                "-".into(),
            ));
        }
        return None;
    };
    let fetched = target.http.get(&metadata_url).send().await;
    let (status, document) = match fetched {
        Ok(response) => {
            let status = response.status();
            (status, response.json::<Value>().await.ok())
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Some(json!({"transport error": e.to_string()})),
        ),
    };
    let sent = format!("GET {metadata_url}");
    let shown = document.as_ref().map_or("-".to_owned(), Value::to_string);
    report.findings.push(finding(
        checklist,
        "B04",
        Level::Must,
        "the resource_metadata URL serves the RFC 9728 document (200, JSON object)",
        holds(
            status == StatusCode::OK && document.as_ref().is_some_and(Value::is_object),
            || format!("got {status}"),
        ),
        &sent,
        shown.clone(),
    ));
    let document = document.filter(Value::is_object)?;
    let issuer = target.idp.url();
    let issuer = issuer.as_str();
    let servers = document["authorization_servers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    report.findings.push(finding(
        checklist,
        "A02",
        Level::Must,
        "authorization_servers names the issuer",
        holds(
            servers.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.trim_end_matches('/') == issuer.trim_end_matches('/'))
            }),
            || format!("authorization_servers: {servers:?}"),
        ),
        &sent,
        shown.clone(),
    ));
    let resource = document["resource"].as_str().unwrap_or_default();
    report.findings.push(finding(
        checklist,
        "A04",
        Level::Must,
        "resource is the URL clients use",
        holds(resource == target.endpoint, || {
            format!("resource {resource:?}, URL {:?}", target.endpoint)
        }),
        &sent,
        shown,
    ));
    Some(document)
}

/// Every case of the corpus, graded by [`Strictness::Spec`]: accepting what must be refused (or
/// a 5xx) fails a MUST; refusing with another status or error code than RFC 6750's deviates
/// from a SHOULD.
async fn corpus(target: &Target<'_>, checklist: &Checklist, dpop: bool, report: &mut Report) {
    for (file, case) in load_corpus() {
        let reference = format!("{}; fixtures/attacks/{file}", checklist.source(&case.id));
        let record = |outcome: Outcome, level: Level, received: String| Finding {
            id: case.id.clone(),
            level,
            reference: reference.clone(),
            check: case.title.clone(),
            outcome,
            sent: format!(
                "initialize, {}",
                case.request
                    .authorization
                    .first()
                    .map_or("no Authorization".to_owned(), |a| a
                        .replace("{token}", "<token>"))
            ),
            received,
        };
        if case.needs_in_process_idp() && target.idp.in_process().is_none() {
            report.findings.push(record(Outcome::Skip("the case publishes a key the mock IdP's admin API cannot: run without --issuer".into()), Level::Must, "-".into()));
            continue;
        }
        if case.env == EnvKind::Es256 {
            report.findings.push(record(
                Outcome::Skip("an ECDSA signature case: the tool's issuer signs with RS256".into()),
                Level::Must,
                "-".into(),
            ));
            continue;
        }
        if case.id == "J49" && target.scopes.is_empty() {
            report.findings.push(record(
                Outcome::Skip("no scope is required of every request (--scope)".into()),
                Level::Must,
                "-".into(),
            ));
            continue;
        }
        // D13, J48 are MUST (cond.): refusing a bound token as Bearer applies to a server
        // that supports DPoP.
        if (case.dpop.is_some() || case.id == "J48") && !dpop {
            report.findings.push(record(
                Outcome::Skip(
                    "the server does not advertise DPoP (dpop_signing_alg_values_supported)".into(),
                ),
                Level::Must,
                "-".into(),
            ));
            continue;
        }
        let prepared = match runner::prepare(target, &case).await {
            Ok(prepared) => prepared,
            Err(why) => {
                report
                    .findings
                    .push(record(Outcome::Fail(why), Level::Must, "-".into()));
                continue;
            }
        };
        let response = match runner::send(target, &case, &prepared).await {
            Ok(response) => response,
            // An oversized request (431 expected) may be refused by closing the connection
            // before it is read: a refusal too, and which one a server does can vary by timing.
            Err(_) if case.expect.status == 431 => {
                let closed = "the connection was closed".to_owned();
                report
                    .findings
                    .push(record(Outcome::Pass, Level::Must, closed));
                continue;
            }
            Err(why) => {
                report
                    .findings
                    .push(record(Outcome::Fail(why), Level::Must, "-".into()));
                continue;
            }
        };
        let received = describe(&response);
        match runner::judge(&case, &response, Strictness::Spec) {
            Verdict::Pass => report
                .findings
                .push(record(Outcome::Pass, Level::Must, received)),
            Verdict::Fails(why) => {
                report
                    .findings
                    .push(record(Outcome::Fail(why), Level::Must, received))
            }
            Verdict::Deviates(why) => {
                report
                    .findings
                    .push(record(Outcome::Pass, Level::Must, received.clone()));
                report.findings.push(Finding {
                    level: Level::Should,
                    check: format!("{} (RFC 6750 status and error code)", case.title),
                    ..record(Outcome::Fail(why), Level::Should, received)
                });
            }
        }
        if let Err(why) = runner::fetched_nothing_it_was_told_to(target, &case).await {
            report
                .findings
                .push(record(Outcome::Fail(why), Level::Must, "-".into()));
        }
        if let Err(why) = runner::still_serves(target).await {
            report.findings.push(Finding {
                check: format!("still serving after: {}", case.title),
                ..record(Outcome::Fail(why), Level::Must, "-".into())
            });
        }
    }
}

fn describe(response: &reqwest::Response) -> String {
    let challenges: Vec<&str> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if challenges.is_empty() {
        response.status().to_string()
    } else {
        format!(
            "{}, WWW-Authenticate: {}",
            response.status(),
            challenges.join(" | ")
        )
    }
}

/// T02, T05, K04, K06, L06: Origin, Host, session binding and the 2026-07-28 header rule.
async fn transport(target: &Target<'_>, checklist: &Checklist, token: &str, report: &mut Report) {
    let post = |extra: Vec<(&'static str, String)>, token: String, body: Value| {
        let mut request = target
            .http
            .post(target.endpoint)
            .headers(target.mcp_headers(Some(&token)))
            .json(&body);
        for (name, value) in extra {
            request = request.header(name, value);
        }
        request.send()
    };
    // A transport error counts as an answer that is not the one required (shown as 502).
    let status_of = |extra, token, body| {
        let sent = post(extra, token, body);
        async move {
            sent.await
                .map(|r| r.status())
                .unwrap_or(StatusCode::BAD_GATEWAY)
        }
    };
    let status = status_of(
        vec![("origin", "https://evil.example".into())],
        token.to_owned(),
        crate::initialize_request(),
    )
    .await;
    report.findings.push(finding(
        checklist,
        "T02",
        Level::Must,
        "a request with a foreign Origin is refused with 403",
        holds(status == StatusCode::FORBIDDEN, || format!("got {status}")),
        "initialize, valid token, Origin: https://evil.example",
        status.to_string(),
    ));
    let status = status_of(
        vec![("host", "evil.example".into())],
        token.to_owned(),
        crate::initialize_request(),
    )
    .await;
    report.findings.push(finding(
        checklist,
        "T05",
        Level::Should,
        "a request for a foreign Host is refused (DNS rebinding)",
        holds(status.is_client_error(), || format!("got {status}")),
        "initialize, valid token, Host: evil.example",
        status.to_string(),
    ));

    let opened = post(vec![], token.to_owned(), crate::initialize_request()).await;
    let (session, negotiated) = match opened {
        Ok(response) => {
            let session = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let answer = crate::jsonrpc_body(response).await;
            (
                session,
                answer["result"]["protocolVersion"]
                    .as_str()
                    .map(str::to_owned),
            )
        }
        Err(_) => (None, None),
    };
    match &session {
        None => {
            for (id, check) in [
                ("K04", "another principal cannot use a session"),
                ("K06", "an unknown session id gets 404"),
            ] {
                report.findings.push(finding(
                    checklist,
                    id,
                    Level::Must,
                    check,
                    Outcome::Skip("the server issued no session (stateless)".into()),
                    "-",
                    "-".into(),
                ));
            }
        }
        Some(session) => {
            let bob = target.token_for("conformance-bob").await;
            let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
            let status =
                status_of(vec![("mcp-session-id", session.clone())], bob, ping.clone()).await;
            report.findings.push(finding(
                checklist,
                "K04",
                Level::Should,
                "another principal's token cannot use a session",
                holds(!status.is_success(), || format!("got {status}")),
                "ping, another user's valid token, the first user's Mcp-Session-Id",
                status.to_string(),
            ));
            let status = status_of(
                vec![("mcp-session-id", "00000000-unknown-session".into())],
                token.to_owned(),
                ping,
            )
            .await;
            report.findings.push(finding(
                checklist,
                "K06",
                Level::Must,
                "an unknown session id gets 404",
                holds(status == StatusCode::NOT_FOUND, || format!("got {status}")),
                "ping, valid token, a made-up Mcp-Session-Id",
                status.to_string(),
            ));
        }
    }
    if negotiated.as_deref() == Some("2026-07-28") {
        let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
        let mut extra = vec![
            ("mcp-method", "tools/call".to_owned()),
            ("mcp-protocol-version", "2026-07-28".to_owned()),
        ];
        if let Some(session) = &session {
            extra.push(("mcp-session-id", session.clone()));
        }
        let status = status_of(extra, token.to_owned(), list).await;
        report.findings.push(finding(
            checklist,
            "L06",
            Level::Must,
            "an Mcp-Method header that disagrees with the body gets 400",
            holds(status == StatusCode::BAD_REQUEST, || {
                format!("got {status}")
            }),
            "tools/list with Mcp-Method: tools/call",
            status.to_string(),
        ));
    } else {
        report.findings.push(finding(
            checklist,
            "L06",
            Level::Must,
            "an Mcp-Method header that disagrees with the body gets 400",
            Outcome::Skip(format!(
                "the server negotiated {}, not 2026-07-28",
                negotiated.as_deref().unwrap_or("nothing")
            )),
            "-",
            "-".into(),
        ));
    }
}

/// H01, H03: with `--tool` and `--tool-scope`, a token without that scope calling the tool gets
/// 403 `insufficient_scope` naming it.
async fn step_up(
    target: &Target<'_>,
    checklist: &Checklist,
    options: &Options,
    report: &mut Report,
) {
    let Some((tool, scope)) = &options.scoped_tool else {
        report.findings.push(finding(
            checklist,
            "H01",
            Level::Must,
            "a tool call without the tool's scope gets 403 insufficient_scope",
            Outcome::Skip("no --tool and --tool-scope given".into()),
            "-",
            "-".into(),
        ));
        return;
    };
    let token = target
        .token_with("conformance-carol", &options.scopes)
        .await;
    let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
    let response = target
        .http
        .post(target.endpoint)
        .headers(target.mcp_headers(Some(&token)))
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool.as_str())
        .json(&call)
        .send()
        .await;
    let Ok(response) = response else {
        report.findings.push(finding(
            checklist,
            "H01",
            Level::Must,
            "a tool call without the tool's scope gets 403 insufficient_scope",
            Outcome::Fail("no answer".into()),
            "-",
            "-".into(),
        ));
        return;
    };
    let status = response.status();
    let params = crate::challenge_of(response.headers(), "Bearer");
    let error = params
        .iter()
        .find(|(n, _)| n == "error")
        .map(|(_, v)| v.clone());
    let scopes = params
        .iter()
        .find(|(n, _)| n == "scope")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let received = describe(&response);
    report.findings.push(finding(
        checklist,
        "H01",
        Level::Must,
        "a tool call without the tool's scope gets 403 insufficient_scope",
        holds(
            status == StatusCode::FORBIDDEN && error.as_deref() == Some("insufficient_scope"),
            || format!("got {status}, error {error:?}"),
        ),
        &format!("tools/call {tool}, a token without {scope}"),
        received.clone(),
    ));
    report.findings.push(finding(
        checklist,
        "H03",
        Level::Should,
        "the 403 names the scope the tool needs",
        holds(scopes.split(' ').any(|s| s == scope), || {
            format!("scope={scopes:?}")
        }),
        &format!("tools/call {tool}, a token without {scope}"),
        received,
    ));
}
