//! Property tests: generated claim sets, time offsets around `exp`/`nbf`/leeway, audience and
//! issuer shapes (exact, arrays, near misses), header variants and scope sets. The oracle below
//! is written from the RFCs and shares no code with the server's validator; the server must
//! agree with it through its validator (volume) and over HTTP (a sample, scopes included).

use std::sync::Arc;

use conformance::{TestEnv, fixture_supply};
use jsonwebtoken::jwk::Jwk;
use mcp_oauth_server::settings::{AlgorithmAllowList, Audience, Issuer, Leeway, ValidationPolicy};
use mcp_oauth_server::validation::{KeySet, VerificationKey, validate};
use mock_idp::attack::{Forgery, KeyChoice, Signature};
use mock_idp::{AccessTokenSpec, Clock, IssuerHandle, MockIdp};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::{Value, json};

const LEEWAY: i64 = 60;
const REQUIRED_SCOPE: &str = "mcp:tools";

/// One generated token, described by how it deviates from a valid one.
#[derive(Debug, Clone)]
struct Case {
    exp: Option<i64>,
    nbf: Option<i64>,
    aud: Aud,
    iss: Iss,
    typ: Option<&'static str>,
    key: Key,
    sub: Option<&'static str>,
    scopes: Vec<&'static str>,
}

/// Audience shapes: the exact resource, case variants, arrays, near misses, nothing.
#[derive(Debug, Clone)]
enum Aud {
    Exact,
    UpperSchemeAndHost,
    ArrayWith {
        others_before: usize,
        others_after: usize,
    },
    ArrayWithout(usize),
    NearMiss(&'static str),
    EmptyArray,
    Missing,
}

#[derive(Debug, Clone, Copy)]
enum Iss {
    Exact,
    TrailingSlash,
    Upper,
    Other,
    Missing,
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Current,
    Unpublished,
    WrongAlgorithm,
    NoSignature,
}

fn case_strategy(time_range: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = Case> {
    let aud = prop_oneof![
        4 => Just(Aud::Exact),
        1 => Just(Aud::UpperSchemeAndHost),
        2 => (0usize..3, 0usize..3).prop_map(|(b, a)| Aud::ArrayWith { others_before: b, others_after: a }),
        1 => (1usize..4).prop_map(Aud::ArrayWithout),
        2 => prop::sample::select(vec!["/", "/x", "-other", "?q=1", "#f", "PREFIX"]).prop_map(Aud::NearMiss),
        1 => Just(Aud::EmptyArray),
        1 => Just(Aud::Missing),
    ];
    let iss = prop_oneof![6 => Just(Iss::Exact), 1 => Just(Iss::TrailingSlash), 1 => Just(Iss::Upper), 1 => Just(Iss::Other), 1 => Just(Iss::Missing)];
    let typ = prop::sample::select(vec![
        None,
        Some("JWT"),
        Some("at+jwt"),
        Some("AT+JWT"),
        Some("application/at+jwt"),
        Some("id_token+jwt"),
        Some("logout+jwt"),
    ]);
    let key = prop_oneof![6 => Just(Key::Current), 1 => Just(Key::Unpublished), 1 => Just(Key::WrongAlgorithm), 1 => Just(Key::NoSignature)];
    let sub = prop_oneof![8 => Just(Some("alice")), 1 => Just(Some("")), 1 => Just(None)];
    let scopes = prop::sample::subsequence(vec!["mcp:tools", "mcp:read", "profile"], 0..=3);
    let time = proptest::option::weighted(0.95, time_range.clone());
    let nbf = proptest::option::of(time_range);
    (time, nbf, aud, iss, typ, key, sub, scopes).prop_map(
        |(exp, nbf, aud, iss, typ, key, sub, scopes)| Case {
            exp,
            nbf,
            aud,
            iss,
            typ,
            key,
            sub,
            scopes,
        },
    )
}

/// The oracle, from the RFCs: RFC 9068 §4 (iss exact, aud contains us, exp, signature by the
/// AS with an allow-listed algorithm, typ), RFC 7519 §4.1.5 (nbf), MCP's canonical URI rule
/// (scheme and host case-insensitive only), RFC 8725bis §3.8 (a subject).
fn oracle_accepts(case: &Case) -> bool {
    let time_ok =
        case.exp.is_some_and(|exp| exp + LEEWAY >= 0) && case.nbf.is_none_or(|nbf| nbf <= LEEWAY);
    let aud_ok = matches!(
        case.aud,
        Aud::Exact | Aud::UpperSchemeAndHost | Aud::ArrayWith { .. }
    );
    let typ_ok = case.typ.is_none_or(|t| {
        ["jwt", "at+jwt", "application/at+jwt"].contains(&t.to_ascii_lowercase().as_str())
    });
    let sub_ok = case.sub.is_some_and(|s| !s.is_empty());
    time_ok
        && aud_ok
        && matches!(case.iss, Iss::Exact)
        && typ_ok
        && sub_ok
        && matches!(case.key, Key::Current)
}

/// What the server must answer over HTTP with `--required-scopes mcp:tools`.
fn oracle_status(case: &Case) -> u16 {
    match (oracle_accepts(case), case.scopes.contains(&REQUIRED_SCOPE)) {
        (false, _) => 401,
        (true, false) => 403,
        (true, true) => 200,
    }
}

/// The token `case` describes, with times relative to `now` (the IdP clock's).
async fn build(issuer: &IssuerHandle, resource: &str, now: i64, case: &Case) -> String {
    let mut spec = AccessTokenSpec::user("placeholder").scope(case.scopes.iter().copied());
    spec = spec.audience(resource);
    let mut forgery = Forgery::new(spec);
    match case.sub {
        Some(sub) => forgery = forgery.claim("sub", sub),
        None => forgery = forgery.without_claim("sub"),
    }
    match case.exp {
        Some(offset) => forgery = forgery.claim("exp", now + offset),
        None => forgery = forgery.without_claim("exp"),
    }
    if let Some(offset) = case.nbf {
        forgery = forgery.claim("nbf", now + offset);
    }
    let upper = |s: &str| {
        let (scheme, rest) = s.split_once("://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        format!("{}://{}{path}", scheme.to_uppercase(), host.to_uppercase())
    };
    let others = |n: usize, tag: &str| {
        (0..n)
            .map(|i| format!("https://{tag}{i}.example/mcp"))
            .collect::<Vec<_>>()
    };
    forgery = match &case.aud {
        Aud::Exact => forgery,
        Aud::UpperSchemeAndHost => forgery.claim("aud", upper(resource)),
        Aud::ArrayWith {
            others_before,
            others_after,
        } => {
            let mut all = others(*others_before, "b");
            all.push(resource.to_owned());
            all.extend(others(*others_after, "a"));
            forgery.claim("aud", json!(all))
        }
        Aud::ArrayWithout(n) => forgery.claim("aud", json!(others(*n, "o"))),
        Aud::NearMiss("PREFIX") => forgery.claim("aud", resource.trim_end_matches("/mcp")),
        Aud::NearMiss(suffix) => forgery.claim("aud", format!("{resource}{suffix}")),
        Aud::EmptyArray => forgery.claim("aud", json!([])),
        Aud::Missing => forgery.without_claim("aud"),
    };
    let iss = issuer.url().to_owned();
    forgery = match case.iss {
        Iss::Exact => forgery,
        Iss::TrailingSlash => forgery.claim("iss", format!("{iss}/")),
        Iss::Upper => forgery.claim("iss", iss.to_uppercase()),
        Iss::Other => forgery.claim("iss", "https://other-as.example"),
        Iss::Missing => forgery.without_claim("iss"),
    };
    forgery = match case.typ {
        Some(typ) => forgery.header("typ", typ),
        None => forgery.without_header("typ"),
    };
    forgery = match case.key {
        Key::Current => forgery,
        Key::Unpublished => forgery.signature(Signature::Key {
            key: KeyChoice::Unpublished,
            alg: None,
        }),
        Key::WrongAlgorithm => forgery.signature(Signature::Key {
            key: KeyChoice::Current,
            alg: Some(jsonwebtoken::Algorithm::RS512),
        }),
        Key::NoSignature => forgery.signature(Signature::Empty),
    };
    issuer.forge(&forgery).await.unwrap()
}

fn key_set(jwks: &Value) -> KeySet {
    KeySet::new(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter_map(|jwk| VerificationKey::from_jwk(&jwk).ok())
            .collect(),
    )
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    })
}

/// Reference model: the validator accepts exactly the tokens the RFC oracle accepts, across
/// 512 generated cases, including every time offset around `exp`, `nbf` and the leeway.
#[test]
fn prop_validator_agrees_with_the_rfc_oracle() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let now = Clock::system().now();
    let resource = "https://mcp.example.com/mcp";
    let idp = runtime
        .block_on(
            MockIdp::builder()
                .keys(fixture_supply())
                .clock(Clock::frozen_at(now))
                .start(),
        )
        .unwrap();
    let issuer = idp.issuer().clone();
    let keys = key_set(&issuer.jwks());
    let policy = ValidationPolicy::new(
        Issuer::parse(issuer.url()).unwrap(),
        Audience::new(resource).unwrap(),
    )
    .with_algorithms(
        AlgorithmAllowList::new([
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::Algorithm::EdDSA,
        ])
        .unwrap(),
    )
    .with_leeway(Leeway::new(std::time::Duration::from_secs(LEEWAY.unsigned_abs())).unwrap());
    let result = runner(512).run(&case_strategy(-2 * LEEWAY..=2 * LEEWAY), |case| {
        let token = runtime.block_on(build(&issuer, resource, now, &case));
        let verdict = validate(&token, &keys, now, &policy);
        prop_assert_eq!(
            verdict.is_ok(),
            oracle_accepts(&case),
            "validator said {:?}",
            verdict
        );
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// The same oracle over HTTP (with scopes: 401, 403 or 200), on a sample of 32 cases whose
/// times stay clear of the boundaries (the server reads the real clock here).
#[test]
fn prop_server_agrees_with_the_rfc_oracle_over_http() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let env = runtime.block_on(TestEnv::setup().required_scopes(&[REQUIRED_SCOPE]).start());
    let env = Arc::new(env);
    let issuer = env.idp.issuer().clone();
    let resource = env.resource().to_owned();
    let away_from_boundaries =
        case_strategy(-600..=600).prop_filter("clear of the leeway boundaries", |case| {
            case.exp.is_none_or(|exp| (exp + LEEWAY).abs() > 10)
                && case.nbf.is_none_or(|nbf| (nbf - LEEWAY).abs() > 10)
        });
    let result = runner(32).run(&away_from_boundaries, |case| {
        let status = runtime.block_on(async {
            let token = build(&issuer, &resource, env.idp.clock().now(), &case).await;
            env.initialize_status(Some(&token)).await.as_u16()
        });
        prop_assert_eq!(status, oracle_status(&case));
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
