//! The token validator, rule by rule, each with the outcome that passes and the one that fails.
//! Tokens come from the mock IdP (real signatures, fixture keys); validation is the pure
//! function, so no network is involved. Each test cites its spec-checklist ids.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use mcp_oauth_server::settings::{
    AlgorithmAllowList, Audience, Issuer, TokenTypePolicy, ValidationPolicy,
};
use mcp_oauth_server::validation::{KeyRejection, KeySet, TokenError, VerificationKey, validate};
use mock_idp::attack::{Forgery, KeyChoice, Signature};
use mock_idp::{AccessTokenSpec, Algorithm, KeyPair, KeySupply, MockIdp};
use serde_json::{Value, json};

const AUD: &str = "https://mcp.example.com/mcp";

fn key(stem: &str) -> KeyPair {
    let path = format!("{}/../fixtures/keys/{stem}.pem", env!("CARGO_MANIFEST_DIR"));
    KeyPair::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Fixture {
    idp: MockIdp,
    policy: ValidationPolicy,
}

impl Fixture {
    async fn new(alg: Algorithm) -> Self {
        let supply = KeySupply::new(
            [
                "rsa-1",
                "rsa-2",
                "p256-1",
                "p256-2",
                "ed25519-1",
                "ed25519-2",
            ]
            .map(key),
        );
        let idp = MockIdp::builder()
            .keys(supply)
            .algorithm(alg)
            .start()
            .await
            .unwrap();
        let policy = ValidationPolicy::new(
            Issuer::parse(idp.url()).unwrap(),
            Audience::new(AUD).unwrap(),
        );
        Self { idp, policy }
    }

    async fn rs256() -> Self {
        Self::new(Algorithm::RS256).await
    }

    fn keys(&self) -> KeySet {
        key_set(&self.idp.issuer().jwks())
    }

    fn now(&self) -> i64 {
        self.idp.clock().now()
    }

    async fn check(&self, spec: AccessTokenSpec) -> Result<(), TokenError> {
        let token = self.idp.issuer().mint(&spec).await.unwrap();
        self.check_token(&token)
    }

    async fn check_forged(&self, forgery: Forgery) -> Result<(), TokenError> {
        let token = self.idp.issuer().forge(&forgery).await.unwrap();
        self.check_token(&token)
    }

    fn check_token(&self, token: &str) -> Result<(), TokenError> {
        validate(token, &self.keys(), self.now(), &self.policy).map(|_| ())
    }
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

fn spec() -> AccessTokenSpec {
    AccessTokenSpec::user("alice")
        .audience(AUD)
        .scope(["mcp:tools"])
}

/// C01, E04, E11: a valid RS256 token passes, with its claims as the tools will see them.
#[tokio::test]
async fn a_valid_token_passes_with_its_claims() {
    let f = Fixture::rs256().await;
    let token = f
        .idp
        .issuer()
        .mint(&spec().claim("uid", "00u1"))
        .await
        .unwrap();
    let claims = validate(&token, &f.keys(), f.now(), &f.policy).unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.issuer, f.idp.url());
    assert_eq!(claims.audience, json!(AUD));
    assert_eq!(claims.scopes, ["mcp:tools"]);
    assert_eq!(claims.uid.as_deref(), Some("00u1"));
    assert_eq!(claims.client_id.as_deref(), Some("mcp-client"));
}

/// E04: every allow-listed algorithm family verifies (RS256, PS256, ES256, EdDSA).
#[tokio::test]
async fn each_supported_algorithm_verifies() {
    for alg in Algorithm::ALL {
        let f = Fixture::new(alg).await;
        assert_eq!(f.check(spec()).await, Ok(()), "{alg}");
    }
}

/// J04, E04: an algorithm off the allow-list is refused even when the signature is genuine.
#[tokio::test]
async fn an_algorithm_off_the_allow_list_is_refused() {
    let mut f = Fixture::new(Algorithm::ES256).await;
    f.policy = f
        .policy
        .clone()
        .with_algorithms(AlgorithmAllowList::new([jsonwebtoken::Algorithm::RS256]).unwrap());
    assert_eq!(f.check(spec()).await, Err(TokenError::AlgorithmNotAllowed));
}

/// J01, J02: `alg: none` in any spelling.
#[tokio::test]
async fn alg_none_in_any_spelling_is_refused() {
    let f = Fixture::rs256().await;
    for spelling in ["none", "None", "NONE", "nOnE"] {
        let result = f.check_forged(Forgery::alg_none(spec(), spelling)).await;
        assert!(
            matches!(
                result,
                Err(TokenError::Malformed(_) | TokenError::AlgorithmNotAllowed)
            ),
            "{spelling}: {result:?}"
        );
    }
}

/// J03: HS256 keyed with the AS's public key (PEM, JWK JSON) is refused.
#[tokio::test]
async fn hmac_keyed_with_the_public_key_is_refused() {
    let f = Fixture::rs256().await;
    let pem = std::fs::read(format!(
        "{}/../fixtures/keys/rsa-1.pub.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let jwk = serde_json::to_vec(&f.idp.issuer().jwks()["keys"][0]).unwrap();
    for secret in [pem, jwk] {
        assert_eq!(
            f.check_forged(Forgery::hmac_with_public_key(spec(), secret))
                .await,
            Err(TokenError::AlgorithmNotAllowed)
        );
    }
}

/// J05, J06, G07: the header algorithm must fit the key's type and its pinned JWK `alg`.
#[tokio::test]
async fn an_algorithm_that_does_not_fit_the_key_is_refused() {
    let f = Fixture::rs256().await;
    let rs512 = Forgery::new(spec()).signature(Signature::Key {
        key: KeyChoice::Current,
        alg: Some(jsonwebtoken::Algorithm::RS512),
    });
    assert_eq!(f.check_forged(rs512).await, Err(TokenError::KeyMismatch));
    let es256 = Forgery::new(spec())
        .header("alg", "ES256")
        .signature(Signature::Bytes(vec![1; 64]));
    assert_eq!(f.check_forged(es256).await, Err(TokenError::KeyMismatch));
}

/// J07, G07: keys published for encryption are not used for signatures.
#[tokio::test]
async fn a_key_published_for_encryption_is_never_used() {
    let f = Fixture::rs256().await;
    let kid = f.idp.issuer().publish_encryption_key().await.unwrap();
    assert_eq!(f.idp.issuer().jwks()["keys"].as_array().unwrap().len(), 2);
    assert_eq!(f.keys().len(), 1, "the enc key is left out of the key set");
    let forged = Forgery::new(spec()).signature(Signature::Key {
        key: KeyChoice::Kid(kid),
        alg: None,
    });
    assert_eq!(f.check_forged(forged).await, Err(TokenError::UnknownKey));
    let jwk: Jwk =
        serde_json::from_value(json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}))
            .unwrap();
    assert_eq!(
        VerificationKey::from_jwk(&jwk).unwrap_err(),
        KeyRejection::NotForSignatures
    );
    // RFC 7517 §4.3: `key_ops` without "verify" says the same.
    let mut signing: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/keys/rsa-1.jwk.json")).unwrap();
    assert!(VerificationKey::from_jwk(&serde_json::from_value(signing.clone()).unwrap()).is_ok());
    signing["key_ops"] = json!(["encrypt", "wrapKey"]);
    assert_eq!(
        VerificationKey::from_jwk(&serde_json::from_value(signing).unwrap()).unwrap_err(),
        KeyRejection::NotForSignatures
    );
}

/// J08, J09, G05: unknown or hostile `kid`s and unpublished keys are refused.
#[tokio::test]
async fn unknown_kids_and_unpublished_keys_are_refused() {
    let f = Fixture::rs256().await;
    assert_eq!(
        f.check_forged(Forgery::unpublished_key(spec())).await,
        Err(TokenError::UnknownKey)
    );
    for kid in [
        "../../../dev/null",
        "' OR '1'='1",
        &"k".repeat(10_000),
        "a\u{0}b\r\n",
    ] {
        assert_eq!(
            f.check_forged(Forgery::unknown_kid(spec(), kid)).await,
            Err(TokenError::UnknownKey),
            "{kid:.20}"
        );
    }
    let numeric = f.check_forged(Forgery::unknown_kid(spec(), 42)).await;
    assert!(matches!(numeric, Err(TokenError::Malformed(_))));
}

/// J10: without a `kid`, only a signature by one of the AS's keys passes.
#[tokio::test]
async fn a_token_without_kid_passes_only_with_an_as_signature() {
    let f = Fixture::rs256().await;
    assert_eq!(
        f.check_forged(Forgery::new(spec()).without_header("kid"))
            .await,
        Ok(())
    );
    let forged = Forgery::unpublished_key(spec()).without_header("kid");
    assert_eq!(f.check_forged(forged).await, Err(TokenError::BadSignature));
}

/// J11-J14, G06: `jku`, `x5u`, `jwk`, `x5c` are never followed or trusted.
#[tokio::test]
async fn key_references_in_the_header_are_ignored() {
    let f = Fixture::rs256().await;
    for (name, value) in [
        ("jku", json!("https://attacker.example/jwks")),
        ("x5u", json!("https://attacker.example/x.pem")),
        ("jwk", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
        ("x5c", json!(["MIIB"])),
    ] {
        let forged = Forgery::foreign_key_reference(spec(), name, value).without_header("kid");
        assert_eq!(
            f.check_forged(forged).await,
            Err(TokenError::BadSignature),
            "{name}"
        );
    }
}

/// J15-J17, J46: `crit`, `b64` and nested (`cty`) tokens are refused.
#[tokio::test]
async fn critical_extensions_and_nested_tokens_are_refused() {
    let f = Fixture::rs256().await;
    for (name, value) in [
        ("crit", json!(["urn:x"])),
        ("crit", json!([])),
        ("b64", json!(false)),
        ("cty", json!("JWT")),
    ] {
        assert_eq!(
            f.check_forged(Forgery::new(spec()).header(name, value))
                .await,
            Err(TokenError::UnsupportedHeader),
            "{name}"
        );
    }
}

/// J18-J21: stripped, zeroed, tampered and DER signatures.
#[tokio::test]
async fn broken_signatures_are_refused() {
    let f = Fixture::new(Algorithm::ES256).await;
    assert!(matches!(
        f.check_forged(Forgery::new(spec()).signature(Signature::Empty))
            .await,
        Err(TokenError::Malformed(_))
    ));
    assert_eq!(
        f.check_forged(Forgery::new(spec()).signature(Signature::Bytes(vec![0; 64])))
            .await,
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        f.check_forged(Forgery::new(spec()).signature(Signature::Bytes(vec![0x30; 72])))
            .await,
        Err(TokenError::BadSignature)
    );
    let token = f.idp.issuer().mint(&spec()).await.unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered =
        base64_json(json!({"iss": f.idp.url(), "sub": "admin", "aud": AUD, "exp": f.now() + 300}));
    parts[1] = &tampered;
    assert_eq!(
        f.check_token(&parts.join(".")),
        Err(TokenError::BadSignature)
    );
}

/// J23, J24, J25, E05, E09, E14, D02: `exp` required, enforced with the leeway, numeric only.
#[tokio::test]
async fn expiry_is_required_and_enforced_with_leeway() {
    let f = Fixture::rs256().await;
    assert_eq!(
        f.check(spec().expired_since(Duration::from_secs(30))).await,
        Ok(()),
        "within the 60 s leeway"
    );
    assert_eq!(
        f.check(spec().expired_since(Duration::from_secs(600)))
            .await,
        Err(TokenError::Expired)
    );
    assert_eq!(
        f.check_forged(Forgery::new(spec()).without_claim("exp"))
            .await,
        Err(TokenError::MissingClaim("exp"))
    );
    // E14: a NumericDate is a number; anything else present, null included, is invalid.
    for bad in [
        json!("9999999999"),
        json!(true),
        json!({"n": 1}),
        json!(null),
    ] {
        assert_eq!(
            f.check_forged(Forgery::new(spec()).claim("exp", bad.clone()))
                .await,
            Err(TokenError::InvalidClaim("exp")),
            "{bad}"
        );
    }
    assert_eq!(
        f.check_forged(Forgery::new(spec()).claim("exp", -1)).await,
        Err(TokenError::Expired)
    );
    let float = (f.now() + 300) as f64 + 0.5;
    assert_eq!(
        f.check_forged(Forgery::new(spec()).claim("exp", float))
            .await,
        Ok(()),
        "a float NumericDate is legal"
    );
    let huge = f
        .check_forged(Forgery::new(spec()).raw_claims(format!(
            r#"{{"iss":"{}","sub":"a","aud":"{AUD}","exp":1e400}}"#,
            f.idp.url()
        )))
        .await;
    assert!(matches!(huge, Err(TokenError::Malformed(_))));
    // A finite float too large for a date would saturate to "never expires": refused.
    let far = f
        .check_forged(Forgery::new(spec()).claim("exp", 1e300))
        .await;
    assert_eq!(far, Err(TokenError::InvalidClaim("exp")));
}

/// E14: `nbf` and `iat`, when present, are numbers; `null` is not "absent".
#[tokio::test]
async fn present_time_claims_must_be_numbers() {
    let f = Fixture::rs256().await;
    for (claim, error) in [
        ("nbf", TokenError::InvalidClaim("nbf")),
        ("iat", TokenError::InvalidClaim("iat")),
    ] {
        for bad in [json!(null), json!("0"), json!(false)] {
            assert_eq!(
                f.check_forged(Forgery::new(spec()).claim(claim, bad.clone()))
                    .await,
                Err(error.clone()),
                "{claim}: {bad}"
            );
        }
    }
}

/// E15, J44: a correctly signed payload that is not UTF-8 is refused, even when the bad bytes
/// sit in a claim nobody reads (serde_json skips those strings without checking them).
#[tokio::test]
async fn a_validly_signed_payload_that_is_not_utf8_is_refused() {
    let f = Fixture::rs256().await;
    let claims = format!(
        r#"{{"iss":"{}","sub":"alice","aud":"{AUD}","exp":{},"ignored":"X"}}"#,
        f.idp.url(),
        f.now() + 300
    );
    assert_eq!(
        f.check_forged(Forgery::new(spec()).raw_claims(claims.clone()))
            .await,
        Ok(()),
        "the same claims, UTF-8"
    );
    let mut bytes = claims.into_bytes();
    let at = bytes.iter().rposition(|b| *b == b'X').unwrap();
    bytes[at] = 0xff;
    assert_eq!(
        f.check_forged(Forgery::new(spec()).raw_claims(bytes)).await,
        Err(TokenError::Malformed("claims are not UTF-8"))
    );
    let mut header = format!(
        r#"{{"alg":"RS256","kid":"{}","x":""#,
        f.idp.issuer().current_kid()
    )
    .into_bytes();
    header.extend_from_slice(b"\xff\"}");
    assert_eq!(
        f.check_forged(Forgery::new(spec()).raw_header(header))
            .await,
        Err(TokenError::Malformed("header is not UTF-8"))
    );
}

/// J26, E06: `nbf` honoured with the leeway.
#[tokio::test]
async fn not_before_is_honoured_with_leeway() {
    let f = Fixture::rs256().await;
    assert_eq!(
        f.check(spec().not_before_in(Duration::from_secs(30))).await,
        Ok(())
    );
    assert_eq!(
        f.check(spec().not_before_in(Duration::from_secs(600)))
            .await,
        Err(TokenError::NotYetValid)
    );
}

/// J28, E02, D05: `iss` must equal the configured issuer byte for byte.
#[tokio::test]
async fn the_issuer_must_match_exactly() {
    let f = Fixture::rs256().await;
    let issuer = f.idp.url().to_owned();
    for wrong in [
        format!("{issuer}/"),
        issuer.to_uppercase(),
        "https://evil.example".to_owned(),
    ] {
        assert_eq!(
            f.check(spec().claim("iss", wrong.clone())).await,
            Err(TokenError::WrongIssuer),
            "{wrong}"
        );
    }
    assert_eq!(
        f.check_forged(Forgery::new(spec()).without_claim("iss"))
            .await,
        Err(TokenError::MissingClaim("iss"))
    );
}

/// J29, E07: a token naming issuer A but signed by issuer B's key fails against A's keys.
#[tokio::test]
async fn another_issuers_key_does_not_verify() {
    let f = Fixture::rs256().await;
    let other = f.idp.tenant("other").await.unwrap();
    let token = other.mint(&spec().claim("iss", f.idp.url())).await.unwrap();
    assert_eq!(f.check_token(&token), Err(TokenError::UnknownKey));
}

/// J30-J34, E03, D03, D04, D07: `aud` contains an accepted audience, compared exactly
/// (only the scheme and host may differ in case).
#[tokio::test]
async fn the_audience_must_name_this_server_exactly() {
    let f = Fixture::rs256().await;
    let accepted = [
        json!(AUD),
        json!(["https://a.example", AUD]),
        json!("HTTPS://MCP.EXAMPLE.COM/mcp"),
    ];
    for aud in accepted {
        assert_eq!(
            f.check_forged(Forgery::new(spec()).claim("aud", aud.clone()))
                .await,
            Ok(()),
            "{aud}"
        );
    }
    let refused = [
        json!("https://other.example/mcp"),
        json!(["https://a.example", "https://b.example"]),
        json!("https://mcp.example.com"),
        json!("https://mcp.example.com/mcp/"),
        json!("https://mcp.example.com/mcp/x"),
        json!("https://mcp.example.com.evil.com/mcp"),
        json!("https://mcp.example.com/MCP"),
        json!("http://mcp.example.com/mcp"),
        json!("https://mcp.example.com/other-mcp"),
        json!([]),
    ];
    for aud in refused {
        assert_eq!(
            f.check_forged(Forgery::new(spec()).claim("aud", aud.clone()))
                .await,
            Err(TokenError::WrongAudience),
            "{aud}"
        );
    }
    for aud in [json!(42), json!([[AUD]])] {
        assert!(
            matches!(
                f.check_forged(Forgery::new(spec()).claim("aud", aud.clone()))
                    .await,
                Err(TokenError::Malformed(_))
            ),
            "{aud}"
        );
    }
    assert_eq!(
        f.check_forged(Forgery::new(spec()).claim("aud", json!(null)))
            .await,
        Err(TokenError::MissingClaim("aud"))
    );
    assert_eq!(
        f.check_forged(Forgery::new(spec()).without_claim("aud"))
            .await,
        Err(TokenError::MissingClaim("aud"))
    );
}

/// J35-J38, E01: `typ` policy. Default: none, JWT, at+jwt, application/at+jwt in any case;
/// strict: at+jwt only. Other JWT types (ID tokens, logout tokens) never.
#[tokio::test]
async fn token_types_follow_the_policy() {
    let mut f = Fixture::rs256().await;
    let with_typ = |typ: Option<&str>| match typ {
        Some(typ) => Forgery::new(spec()).header("typ", typ),
        None => Forgery::new(spec()).without_header("typ"),
    };
    // `application/jwt` is the media type `JWT` abbreviates (RFC 7515 §4.1.9): the same type.
    for typ in [
        None,
        Some("JWT"),
        Some("jwt"),
        Some("application/jwt"),
        Some("at+jwt"),
        Some("AT+JWT"),
        Some("application/at+jwt"),
    ] {
        assert_eq!(
            f.check_forged(with_typ(typ)).await,
            Ok(()),
            "default accepts {typ:?}"
        );
    }
    for typ in [
        "id_token+jwt",
        "logout+jwt",
        "secevent+jwt",
        "application/json",
        "",
    ] {
        assert_eq!(
            f.check_forged(with_typ(Some(typ))).await,
            Err(TokenError::WrongType),
            "{typ}"
        );
    }
    f.policy = f.policy.clone().with_token_types(TokenTypePolicy::Strict);
    for typ in [Some("at+jwt"), Some("application/AT+JWT")] {
        assert_eq!(
            f.check_forged(with_typ(typ)).await,
            Ok(()),
            "strict accepts {typ:?}"
        );
    }
    for typ in [None, Some("JWT"), Some("application/jwt")] {
        assert_eq!(
            f.check_forged(with_typ(typ)).await,
            Err(TokenError::WrongType),
            "strict refuses {typ:?}"
        );
    }
}

/// J40-J44: malformed compact serialisations never reach the signature check.
#[tokio::test]
async fn malformed_serialisations_are_refused() {
    let f = Fixture::rs256().await;
    let token = f.idp.issuer().mint(&spec()).await.unwrap();
    let (header, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let cases = [
        format!("{header}.{payload}"),
        format!("{header}.{payload}.{signature}.extra"),
        format!("{header}.{payload}.{signature}.a.b"),
        format!(".{payload}.{signature}"),
        format!("{header}..{signature}"),
        "..".to_owned(),
        format!("{header}=.{payload}.{signature}"),
        format!(
            "{header}.{payload}.{}",
            signature.replace('-', "+").replace('_', "/")
        ),
        format!("{header}.{payload} .{signature}"),
        format!("{header}.{}.{signature}", &payload[..payload.len() - 1]),
        r#"{"payload":"x","signatures":[]}"#.to_owned(),
    ];
    for case in cases {
        let result = f.check_token(&case);
        assert!(
            matches!(
                result,
                Err(TokenError::Malformed(_) | TokenError::BadSignature)
            ),
            "{case:.60}: {result:?}"
        );
        assert_ne!(result, Ok(()));
    }
    for not_object in [
        &b"[1,2]"[..],
        b"\"str\"",
        b"42",
        b"{} trailing",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",
    ] {
        let result = f
            .check_forged(Forgery::new(spec()).raw_claims(not_object.to_vec()))
            .await;
        assert!(
            matches!(result, Err(TokenError::Malformed(_))),
            "{not_object:?}: {result:?}"
        );
    }
}

/// J41: non-canonical base64 (non-zero pad bits) is refused.
#[tokio::test]
async fn non_canonical_base64_is_refused() {
    let f = Fixture::rs256().await;
    let token = f.idp.issuer().mint(&spec()).await.unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    // 256 bytes → 342 chars, the last carrying 4 pad bits: flip them.
    let mut tail = signature.as_bytes().to_vec();
    let last = tail.last_mut().unwrap();
    *last = if *last == b'A' { b'B' } else { b'A' };
    let tweaked = format!("{input}.{}", String::from_utf8(tail).unwrap());
    assert!(matches!(
        f.check_token(&tweaked),
        Err(TokenError::Malformed(_) | TokenError::BadSignature)
    ));
}

/// J45: duplicate member names in the header or claims.
#[tokio::test]
async fn duplicate_members_are_refused() {
    let f = Fixture::rs256().await;
    let kid = f.idp.issuer().current_kid();
    let header = format!(r#"{{"alg":"RS256","alg":"none","kid":"{kid}"}}"#);
    assert_eq!(
        f.check_forged(Forgery::new(spec()).raw_header(header))
            .await,
        Err(TokenError::DuplicateMember("header"))
    );
    let claims = format!(
        r#"{{"iss":"{}","sub":"a","aud":"x","aud":"{AUD}","exp":{}}}"#,
        f.idp.url(),
        f.now() + 300
    );
    assert_eq!(
        f.check_forged(Forgery::new(spec()).raw_claims(claims))
            .await,
        Err(TokenError::DuplicateMember("claims"))
    );
}

/// J50, E13: `sub` must name a subject.
#[tokio::test]
async fn the_subject_must_be_present_and_non_empty() {
    let f = Fixture::rs256().await;
    assert_eq!(
        f.check(spec().claim("sub", "")).await,
        Err(TokenError::InvalidClaim("sub"))
    );
    assert_eq!(
        f.check_forged(Forgery::new(spec()).without_claim("sub"))
            .await,
        Err(TokenError::MissingClaim("sub"))
    );
}

/// J48, D13: a key-bound (DPoP / mTLS) token presented as a bearer token is refused.
#[tokio::test]
async fn sender_constrained_tokens_are_refused() {
    let f = Fixture::rs256().await;
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
    ] {
        assert_eq!(
            f.check(spec().claim("cnf", cnf.clone())).await,
            Err(TokenError::SenderConstrained),
            "{cnf}"
        );
    }
}

/// E10: `scope` strings are split on spaces; Okta's `scp` arrays are taken as they are; a scope
/// claim of another type is an error, not "no scopes".
#[tokio::test]
async fn scope_claims_of_each_shape() {
    let f = Fixture::rs256().await;
    let okta = f
        .idp
        .issuer()
        .mint(
            &AccessTokenSpec::user("u")
                .audience(AUD)
                .claim("scp", json!(["a", "b"])),
        )
        .await
        .unwrap();
    assert_eq!(
        validate(&okta, &f.keys(), f.now(), &f.policy)
            .unwrap()
            .scopes,
        ["a", "b"]
    );
    assert_eq!(
        f.check(spec().claim("scope", 7)).await,
        Err(TokenError::InvalidClaim("scope"))
    );
}

/// J22, G08: RSA keys under 2048 bits are not accepted from a JWKS.
#[tokio::test]
async fn weak_rsa_keys_are_left_out_of_the_key_set() {
    let f = Fixture::rs256().await;
    let pem = std::fs::read_to_string(format!(
        "{}/../fixtures/keys/rsa-1024-weak.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let jwk = mock_idp::attack::rsa_public_jwk(&pem, "weak").unwrap();
    assert_eq!(
        VerificationKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap_err(),
        KeyRejection::WeakKey
    );
    f.idp.issuer().publish_jwk(jwk);
    let token = f
        .idp
        .issuer()
        .forge(
            &Forgery::new(spec())
                .header("kid", "weak")
                .signature(Signature::RsaPem(pem)),
        )
        .await
        .unwrap();
    assert_eq!(f.check_token(&token), Err(TokenError::UnknownKey));
}

fn base64_json(value: Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&value).unwrap())
}
