//! The attack corpus (`fixtures/attacks/*.json`, checklist §3 J01-J50 and header-level abuse):
//! none may be accepted, none may produce a 5xx, and the server keeps serving after each.

use conformance::attacks::runner::{self, Strictness, Verdict};
use conformance::attacks::{AttackCase, EnvKind, load_corpus};
use conformance::upstream::{RequestLog, Upstream};
use conformance::{Setup, TestEnv};
use mock_idp::Algorithm;

async fn env_for(kind: EnvKind, setup: &dyn Fn() -> Setup) -> TestEnv {
    let setup = setup().required_scopes(&["mcp:tools"]);
    match kind {
        EnvKind::Rs256 => setup.start().await,
        EnvKind::Es256 => {
            setup
                .idp(|idp| idp.algorithm(Algorithm::ES256))
                .start()
                .await
        }
    }
}

/// Sends one case; returns what went wrong, if anything. With `upstream`, the log of a gateway's
/// upstream: the attack must not reach it.
async fn run(env: &TestEnv, case: &AttackCase, upstream: Option<&Upstream>) -> Result<(), String> {
    let target = env.target();
    let prepared = runner::prepare(&target, case).await?;
    let posts_before = match upstream {
        Some(upstream) => Some(posts_in(upstream.settled_log().await)),
        None => None,
    };
    let response = runner::send(&target, case, &prepared).await?;
    let accepted = case.expect.status < 300;
    if let (Some(upstream), Some(before)) = (upstream, posts_before) {
        let reached = posts_in(upstream.settled_log().await) - before;
        match (accepted, reached) {
            (false, 0) | (true, 1) => {}
            (false, _) => return Err("the refused request reached the upstream".into()),
            (true, _) => return Err(format!("the accepted request reached it {reached} times")),
        }
    }
    match runner::judge(case, &response, Strictness::Exact) {
        Verdict::Pass => {}
        Verdict::Deviates(why) | Verdict::Fails(why) => return Err(why),
    }
    runner::fetched_nothing_it_was_told_to(&target, case).await?;
    runner::still_serves(&target).await
}

/// Every case of the corpus, each against a fresh-enough environment of its algorithm; all
/// failures are reported together, by file and checklist id.
#[tokio::test]
async fn no_attack_in_the_corpus_is_accepted() {
    no_attack_is_accepted_by(&TestEnv::setup, "get_me", None).await;
}

/// The same corpus against a server built on the library over the `custom_tools` example's
/// tools: the checks protect any handler, not only ours.
#[tokio::test]
async fn no_attack_in_the_corpus_is_accepted_in_front_of_custom_tools() {
    let custom = || TestEnv::setup().tools(crate::custom_tools::tools());
    no_attack_is_accepted_by(&custom, "save_note", None).await;
}

/// `tool` is one the handler under test lists: after the corpus, that handler still answers.
/// With `upstream`, the server under test is a gateway, and no attack may reach that upstream.
pub(crate) async fn no_attack_is_accepted_by(
    setup: &dyn Fn() -> Setup,
    tool: &str,
    upstream: Option<&Upstream>,
) {
    let corpus = load_corpus();
    assert!(corpus.len() >= 45, "the corpus has {} cases", corpus.len());
    let rs256 = env_for(EnvKind::Rs256, setup).await;
    let es256 = env_for(EnvKind::Es256, setup).await;
    let mut failures = Vec::new();
    for (file, case) in &corpus {
        let env = match case.env {
            EnvKind::Rs256 => &rs256,
            EnvKind::Es256 => &es256,
        };
        if let Err(why) = run(env, case, upstream).await {
            failures.push(format!("{file} ({}: {}): {why}", case.id, case.title));
        }
    }
    for env in [&rs256, &es256] {
        let token = env.token().await;
        let session = env.initialize(&token).await;
        let list = serde_json::json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
        let listed =
            conformance::jsonrpc_body(env.post(Some(&token), session.as_deref(), &list).await)
                .await;
        if !listed["result"]["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == tool))
        {
            failures.push(format!(
                "the handler under test does not list {tool}: {listed}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} attack cases failed:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}

/// The POSTs an upstream received: what a client's request becomes (a gateway ending a session it
/// let go of sends a DELETE of its own, at any time).
fn posts_in(log: &RequestLog) -> usize {
    log.all()
        .iter()
        .filter(|seen| seen.method == "POST")
        .count()
}

/// The corpus covers every J case of checklist §3 that can be built offline.
#[test]
fn the_corpus_covers_the_offline_j_cases() {
    let ids: std::collections::BTreeSet<String> =
        load_corpus().into_iter().map(|(_, case)| case.id).collect();
    // J27 (iat in the future) is a MAY we do not exercise; J36 (typ spelling variants) must be
    // accepted and is proved by the validator tests; J32 (aud array containing us) likewise;
    // J51 (introspection) does not apply to JWT validation.
    let not_attacks = ["J27", "J32", "J36", "J51"];
    let missing: Vec<String> = (1..=50)
        .map(|n| format!("J{n:02}"))
        .filter(|id| !not_attacks.contains(&id.as_str()) && !ids.contains(id))
        .collect();
    assert!(missing.is_empty(), "no corpus case for {missing:?}");
}
