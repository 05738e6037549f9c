//! Each rule of RFC 9449 §4.3 with a proof that passes it and one that fails it; `htu`
//! normalisation as properties.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_idp::{Algorithm, KeyPair, dpop};
use proptest::prelude::*;
use serde_json::{Value, json};
use url::Url;

use super::*;

const NOW: i64 = 1_800_000_000;
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";

fn fixture(name: &str) -> String {
    let path = format!("{}/../fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A client's key, from the fixtures.
fn client_key(stem: &str) -> KeyPair {
    KeyPair::from_pem(&fixture(&format!("{stem}.pem"))).unwrap()
}

fn sign(header: &Value, claims: &Value, key: &KeyPair, alg: Algorithm) -> String {
    dpop::sign(key, alg, header, claims).unwrap()
}

fn ath(token: &str) -> String {
    dpop::access_token_hash(token)
}

/// A correct proof's header and claims, for changing one thing at a time.
fn good_parts(key: &KeyPair, jti: &str) -> (Value, Value) {
    (
        dpop::header(key),
        dpop::claims("POST", "https://mcp.example.com/mcp", TOKEN, jti, NOW),
    )
}

fn policy() -> ProofPolicy {
    ProofPolicy {
        algorithms: AlgorithmAllowList::default(),
        window: Duration::from_secs(300),
        nonces: None,
    }
}

fn resource() -> Url {
    Url::parse("https://mcp.example.com/mcp").unwrap()
}

fn judge(proof: &str, replay: &ReplayCache) -> Result<String, ProofError> {
    let urls = [normalized_htu(resource().as_str()).unwrap()];
    let target = ProofTarget {
        method: "POST",
        urls: &urls,
        access_token: TOKEN,
        now: NOW,
    };
    check_proof(proof, &target, &policy(), replay)
}

fn fresh() -> ReplayCache {
    ReplayCache::new(Duration::from_secs(300), 1_000)
}

/// The proof `change` makes from a correct one, judged by a fresh cache.
fn judged_after(change: impl FnOnce(&mut Value, &mut Value)) -> Result<String, ProofError> {
    let key = client_key("p256-1");
    let (mut header, mut claims) = good_parts(&key, "one");
    change(&mut header, &mut claims);
    judge(&sign(&header, &claims, &key, Algorithm::ES256), &fresh())
}

#[test]
fn a_correct_proof_passes_and_names_its_keys_thumbprint() {
    let expected = client_key("p256-1").kid().to_owned();
    assert_eq!(judged_after(|_, _| {}), Ok(expected));
}

/// One change to a correct proof's header and claims.
type Change = Box<dyn FnOnce(&mut Value, &mut Value)>;

#[test]
fn each_rule_refuses_the_proof_that_breaks_it() {
    let cases: Vec<(&str, Change, ProofError)> = vec![
        (
            "typ",
            Box::new(|h, _| h["typ"] = json!("JWT")),
            ProofError::WrongType,
        ),
        (
            "no typ",
            Box::new(|h, _| {
                h.as_object_mut().unwrap().remove("typ");
            }),
            ProofError::WrongType,
        ),
        (
            "alg none",
            Box::new(|h, _| h["alg"] = json!("none")),
            ProofError::AlgorithmNotAllowed,
        ),
        (
            "alg HS256",
            Box::new(|h, _| h["alg"] = json!("HS256")),
            ProofError::AlgorithmNotAllowed,
        ),
        (
            "alg case",
            Box::new(|h, _| h["alg"] = json!("es256")),
            ProofError::AlgorithmNotAllowed,
        ),
        (
            "no jwk",
            Box::new(|h, _| {
                h.as_object_mut().unwrap().remove("jwk");
            }),
            ProofError::NoKey,
        ),
        (
            "private jwk",
            Box::new(|h, _| h["jwk"]["d"] = json!("c2VjcmV0")),
            ProofError::PrivateKey,
        ),
        (
            "symmetric jwk",
            Box::new(|h, _| h["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"})),
            ProofError::PrivateKey,
        ),
        (
            "crit",
            Box::new(|h, _| h["crit"] = json!(["x"])),
            ProofError::Malformed("crit is not supported"),
        ),
        (
            "another key",
            Box::new(|h, _| h["jwk"] = dpop::header(&client_key("p256-2"))["jwk"].clone()),
            ProofError::BadSignature,
        ),
        (
            "no jti",
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            ProofError::MissingClaim("jti"),
        ),
        (
            "no htm",
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("htm");
            }),
            ProofError::MissingClaim("htm"),
        ),
        (
            "no htu",
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("htu");
            }),
            ProofError::MissingClaim("htu"),
        ),
        (
            "no iat",
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
            ProofError::MissingClaim("iat"),
        ),
        (
            "no ath",
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("ath");
            }),
            ProofError::MissingClaim("ath"),
        ),
        (
            "htm",
            Box::new(|_, c| c["htm"] = json!("GET")),
            ProofError::WrongMethod,
        ),
        (
            "htm case",
            Box::new(|_, c| c["htm"] = json!("post")),
            ProofError::WrongMethod,
        ),
        (
            "htu host",
            Box::new(|_, c| c["htu"] = json!("https://evil.example.com/mcp")),
            ProofError::WrongUrl,
        ),
        (
            "htu path",
            Box::new(|_, c| c["htu"] = json!("https://mcp.example.com/other")),
            ProofError::WrongUrl,
        ),
        (
            "htu scheme",
            Box::new(|_, c| c["htu"] = json!("http://mcp.example.com/mcp")),
            ProofError::WrongUrl,
        ),
        (
            "htu port",
            Box::new(|_, c| c["htu"] = json!("https://mcp.example.com:8443/mcp")),
            ProofError::WrongUrl,
        ),
        (
            "iat old",
            Box::new(|_, c| c["iat"] = json!(NOW - 301)),
            ProofError::OutOfWindow,
        ),
        (
            "iat future",
            Box::new(|_, c| c["iat"] = json!(NOW + 301)),
            ProofError::OutOfWindow,
        ),
        (
            "ath",
            Box::new(|_, c| c["ath"] = json!(ath("another token"))),
            ProofError::WrongTokenHash,
        ),
        (
            "jti type",
            Box::new(|_, c| c["jti"] = json!(7)),
            ProofError::Malformed("claims have invalid types"),
        ),
        (
            "empty jti",
            Box::new(|_, c| c["jti"] = json!("")),
            ProofError::MissingClaim("jti"),
        ),
        (
            "jti too long for the replay cache",
            Box::new(|_, c| c["jti"] = json!("j".repeat(257))),
            ProofError::MissingClaim("jti"),
        ),
    ];
    for (what, change, expected) in cases {
        assert_eq!(judged_after(change), Err(expected), "{what}");
    }
}

#[test]
fn the_window_is_inclusive_and_htu_ignores_query_fragment_and_spelling() {
    for (what, change) in [
        ("iat at the past edge", json!({"iat": NOW - 300})),
        ("iat at the future edge", json!({"iat": NOW + 300})),
        (
            "query and fragment",
            json!({"htu": "https://mcp.example.com/mcp?x=1#f"}),
        ),
        (
            "host case and default port",
            json!({"htu": "HTTPS://MCP.Example.COM:443/mcp"}),
        ),
        (
            "escaped unreserved",
            json!({"htu": "https://mcp.example.com/%6Dcp"}),
        ),
    ] {
        let result = judged_after(|_, claims| {
            for (name, value) in change.as_object().unwrap() {
                claims[name] = value.clone();
            }
        });
        assert!(result.is_ok(), "{what}: {result:?}");
    }
}

#[test]
fn a_proof_is_accepted_once() {
    let key = client_key("p256-1");
    let (header, claims) = good_parts(&key, "once");
    let proof = sign(&header, &claims, &key, Algorithm::ES256);
    let replay = fresh();
    assert!(judge(&proof, &replay).is_ok());
    assert_eq!(judge(&proof, &replay), Err(ProofError::Replayed));
    // A refused proof does not spend its jti: the same jti in a correct proof still passes.
    let (wrong_header, mut wrong) = good_parts(&key, "unspent");
    wrong["htm"] = json!("GET");
    let refused = sign(&wrong_header, &wrong, &key, Algorithm::ES256);
    assert_eq!(judge(&refused, &replay), Err(ProofError::WrongMethod));
    let (header, claims) = good_parts(&key, "unspent");
    assert!(judge(&sign(&header, &claims, &key, Algorithm::ES256), &replay).is_ok());
}

#[test]
fn malformed_proofs_are_refused_before_any_signature_work() {
    let replay = fresh();
    for (proof, expected) in [
        ("", ProofError::Malformed("not a compact JWS")),
        ("a.b", ProofError::Malformed("not a compact JWS")),
        ("a.b.c.d", ProofError::Malformed("not a compact JWS")),
        ("!!.b.c", ProofError::Malformed("header is not base64url")),
    ] {
        assert_eq!(judge(proof, &replay), Err(expected), "{proof}");
    }
    let duplicate = URL_SAFE_NO_PAD.encode(r#"{"typ":"dpop+jwt","typ":"JWT","alg":"ES256"}"#);
    assert_eq!(
        judge(&format!("{duplicate}.e30.c2ln"), &replay),
        Err(ProofError::Malformed("header is not one JSON object"))
    );
    assert_eq!(
        judge(&"a".repeat(MAX_PROOF_BYTES + 1), &replay),
        Err(ProofError::TooLarge)
    );
}

#[test]
fn an_rsa_or_ed25519_key_signs_with_its_own_algorithm_only() {
    let rsa = client_key("rsa-1");
    let (mut header, claims) = good_parts(&rsa, "rsa");
    header["alg"] = json!("PS256");
    assert!(judge(&sign(&header, &claims, &rsa, Algorithm::PS256), &fresh()).is_ok());
    // The same key claiming an EC algorithm: refused before verifying.
    header["alg"] = json!("ES256");
    let ec = client_key("p256-1");
    assert_eq!(
        judge(&sign(&header, &claims, &ec, Algorithm::ES256), &fresh()),
        Err(ProofError::NoKey)
    );
}

proptest! {
    /// Spelling differences RFC 3986 calls equivalent normalise alike; the query, fragment and
    /// percent-encoding of unreserved characters never make two URLs differ.
    #[test]
    fn equivalent_spellings_of_a_url_normalise_alike(
        host in "[a-z][a-z0-9]{0,10}(\\.[a-z]{2,5}){1,2}",
        segments in proptest::collection::vec("[a-zA-Z0-9_~.-]{1,8}", 0..4),
        upper in any::<bool>(),
        explicit_port in any::<bool>(),
        query in "[a-z0-9=&]{0,10}",
    ) {
        let path: String = segments.iter().map(|s| format!("/{s}")).collect();
        let plain = format!("https://{host}{path}");
        let scheme = if upper { "HTTPS" } else { "https" };
        let shown_host = if upper { host.to_uppercase() } else { host.clone() };
        let port = if explicit_port { ":443" } else { "" };
        let escaped: String = path
            .chars()
            .map(|c| if c.is_ascii_alphabetic() && upper { format!("%{:02x}", c as u32) } else { c.to_string() })
            .collect();
        let variant = format!("{scheme}://{shown_host}{port}{escaped}?{query}#frag");
        prop_assert_eq!(normalized_htu(&plain), normalized_htu(&variant));
    }

    /// Different paths or hosts never normalise alike.
    #[test]
    fn different_urls_stay_different(
        a in "[a-z]{1,8}",
        b in "[a-z]{1,8}",
    ) {
        prop_assume!(a != b);
        prop_assert_ne!(
            normalized_htu(&format!("https://x.example/{a}")),
            normalized_htu(&format!("https://x.example/{b}"))
        );
        prop_assert_ne!(
            normalized_htu(&format!("https://{a}.example/mcp")),
            normalized_htu(&format!("https://{b}.example/mcp"))
        );
    }
}

/// §9: with nonces on, a proof passes only with a nonce this server issued, of now's period or
/// the one before; none, a forged one and a rotated-out one are `use_dpop_nonce`.
#[test]
fn with_nonces_on_a_proof_needs_a_recent_nonce_of_ours() {
    let secret = NonceSecret::from_bytes(vec![5; 32]).unwrap();
    let period = Duration::from_secs(300);
    let nonces = Nonces::new(&secret, period);
    let policy = ProofPolicy {
        nonces: Some(Nonces::new(&secret, period)),
        ..policy()
    };
    let key = client_key("p256-1");
    let urls = [normalized_htu(resource().as_str()).unwrap()];
    let target = ProofTarget {
        method: "POST",
        urls: &urls,
        access_token: TOKEN,
        now: NOW,
    };
    let with_nonce = |jti: &str, nonce: Option<String>| {
        let (header, mut claims) = good_parts(&key, jti);
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        check_proof(
            &sign(&header, &claims, &key, Algorithm::ES256),
            &target,
            &policy,
            &fresh(),
        )
    };
    assert_eq!(
        with_nonce("current", Some(nonces.current(NOW))),
        Ok(key.kid().to_owned())
    );
    assert!(with_nonce("previous", Some(nonces.current(NOW - 300))).is_ok());
    for (what, nonce) in [
        ("none", None),
        ("rotated out", Some(nonces.current(NOW - 600))),
        ("forged", Some("AAAAAABrSeA".to_owned())),
        (
            "another secret",
            Some(Nonces::new(&NonceSecret::from_bytes(vec![6; 32]).unwrap(), period).current(NOW)),
        ),
    ] {
        assert_eq!(with_nonce(what, nonce), Err(ProofError::UseNonce), "{what}");
    }
}

/// The replay cache is bounded: a flood of distinct proofs never holds more than its capacity
/// (each entry a 32-byte hash of the `jti`, however long the `jti` was).
#[test]
fn the_replay_cache_holds_at_most_its_capacity() {
    let cache = ReplayCache::new(Duration::from_secs(300), 1_000);
    for n in 0..20_000 {
        assert!(cache.first_use(&format!("{n:0>200}")), "each jti is new");
    }
    cache.seen.run_pending_tasks();
    assert!(
        cache.seen.entry_count() <= 1_000,
        "{} entries",
        cache.seen.entry_count()
    );
}
