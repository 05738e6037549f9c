//! The library's forgery API builds the IdP-side cases of the spec checklist §3, and each is
//! exactly as broken as its name says (checked by decoding, and by jsonwebtoken refusing it).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation};
use mock_idp::attack::{Forgery, KeyChoice, Signature};
use mock_idp::{AccessTokenSpec, Algorithm};
use serde_json::{Value, json};

use crate::harness::{DEMO_AUDIENCE, builder, fetch_jwks, inspect, keys_dir, start, verify};

fn spec() -> AccessTokenSpec {
    AccessTokenSpec::user("alice").scope(["mcp:tools"])
}

#[tokio::test]
async fn alg_none_in_every_spelling_has_no_signature() {
    let idp = start().await;
    for spelling in ["none", "None", "NONE", "nOnE"] {
        let token = idp
            .issuer()
            .forge(&Forgery::alg_none(spec(), spelling))
            .await
            .unwrap();
        assert!(token.ends_with('.'));
        assert_eq!(inspect(&token).0["alg"], spelling);
    }
}

#[tokio::test]
async fn hmac_with_the_public_key_verifies_only_as_hs256_with_that_key() {
    // J03: the classic RS/HS confusion. The token is a correct HS256 MAC under the PEM public
    // key, so a verifier that let the header pick the algorithm would accept it.
    let idp = builder()
        .keys(mock_idp::KeySupply::new([crate::harness::fixture_key(
            "rsa-1",
        )]))
        .start()
        .await
        .unwrap();
    let public_pem = std::fs::read(keys_dir().join("rsa-1.pub.pem")).unwrap();
    let token = idp
        .issuer()
        .forge(&Forgery::hmac_with_public_key(spec(), public_pem.clone()))
        .await
        .unwrap();
    assert_eq!(inspect(&token).0["alg"], "HS256");
    assert_eq!(
        inspect(&token).0["kid"],
        idp.issuer().current_kid(),
        "points at the RSA key"
    );
    let mut hs = Validation::new(jsonwebtoken::Algorithm::HS256);
    hs.set_audience(&[DEMO_AUDIENCE]);
    jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(&public_pem), &hs)
        .expect("a real HS256 MAC");
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;
    assert!(verify(&token, &jwks, idp.url(), DEMO_AUDIENCE).is_err());
}

#[tokio::test]
async fn unpublished_keys_and_unknown_kids_are_not_in_the_jwks() {
    let idp = start().await;
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;
    let unpublished = idp
        .issuer()
        .forge(&Forgery::unpublished_key(spec()))
        .await
        .unwrap();
    let kid = inspect(&unpublished).0["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid, idp.issuer().current_kid());
    assert!(
        verify(&unpublished, &jwks, idp.url(), DEMO_AUDIENCE)
            .unwrap_err()
            .contains("not in the JWKS")
    );
    for odd in [
        json!("../../../dev/null"),
        json!("' OR '1'='1"),
        json!("x".repeat(10_000)),
        json!("a\u{0}b\r\n"),
        json!(42),
    ] {
        let token = idp
            .issuer()
            .forge(&Forgery::unknown_kid(spec(), odd.clone()))
            .await
            .unwrap();
        assert_eq!(inspect(&token).0["kid"], odd);
    }
}

#[tokio::test]
async fn foreign_key_references_are_signed_by_the_key_they_point_to_not_the_issuers() {
    let idp = start().await;
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;
    for (header, value) in [
        ("jku", json!("https://attacker.example/jwks")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("jwk", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
        ("x5c", json!(["MIIB"])),
    ] {
        let token = idp
            .issuer()
            .forge(&Forgery::foreign_key_reference(
                spec(),
                header,
                value.clone(),
            ))
            .await
            .unwrap();
        assert_eq!(inspect(&token).0[header], value);
        assert!(
            verify(&token, &jwks, idp.url(), DEMO_AUDIENCE).is_err(),
            "{header}"
        );
    }
}

#[tokio::test]
async fn signatures_can_be_stripped_zeroed_or_replaced_verbatim() {
    let idp = builder().algorithm(Algorithm::ES256).start().await.unwrap();
    let valid = idp.issuer().mint(&spec()).await.unwrap();
    let (signing_input, _) = valid.rsplit_once('.').unwrap();
    let stripped = idp
        .issuer()
        .forge(&Forgery::new(spec()).signature(Signature::Empty))
        .await
        .unwrap();
    assert!(stripped.ends_with('.'));
    let zero = idp
        .issuer()
        .forge(&Forgery::new(spec()).signature(Signature::Bytes(vec![0; 64])))
        .await
        .unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(zero.rsplit_once('.').unwrap().1)
            .unwrap(),
        vec![0; 64]
    );
    let verbatim = idp
        .issuer()
        .forge(&Forgery::new(spec()).signature(Signature::Segment("a+b/c=".into())))
        .await
        .unwrap();
    assert!(verbatim.ends_with(".a+b/c="));
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;
    for token in [stripped, zero] {
        assert!(
            verify(&token, &jwks, idp.url(), DEMO_AUDIENCE)
                .unwrap_err()
                .contains("InvalidSignature")
        );
    }
    assert!(signing_input.split('.').count() == 2);
}

#[tokio::test]
async fn raw_headers_and_payloads_are_signed_as_given() {
    let idp = start().await;
    let duplicate = br#"{"alg":"RS256","alg":"none","typ":"at+jwt"}"#.to_vec();
    let token = idp
        .issuer()
        .forge(
            &Forgery::new(spec())
                .raw_header(duplicate.clone())
                .raw_claims(b"[1,2,3]".to_vec()),
        )
        .await
        .unwrap();
    let mut parts = token.split('.');
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap(),
        duplicate
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap(),
        b"[1,2,3]"
    );
    // The signature is genuine: it verifies over the exact bytes with the current key.
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    assert!(
        jsonwebtoken::crypto::verify(
            signature,
            input.as_bytes(),
            &key,
            jsonwebtoken::Algorithm::RS256
        )
        .unwrap()
    );
}

#[tokio::test]
async fn a_published_encryption_key_signs_tokens_a_verifier_must_refuse() {
    let idp = start().await;
    let kid = idp.issuer().publish_encryption_key().await.unwrap();
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;
    let enc = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    assert_eq!(enc["use"], "enc");
    let token = idp
        .issuer()
        .forge(&Forgery::new(spec()).signature(Signature::Key {
            key: KeyChoice::Kid(kid.clone()),
            alg: None,
        }))
        .await
        .unwrap();
    assert_eq!(inspect(&token).0["kid"], kid);
}

#[tokio::test]
async fn algorithm_and_key_mismatches_can_be_built() {
    let idp = start().await;
    // J06: signed by the RS256 key under RS512; J05: ES256 named on the RSA key's kid.
    let rs512 = idp
        .issuer()
        .forge(&Forgery::new(spec()).signature(Signature::Key {
            key: KeyChoice::Current,
            alg: Some(jsonwebtoken::Algorithm::RS512),
        }))
        .await
        .unwrap();
    assert_eq!(inspect(&rs512).0["alg"], "RS512");
    let es256_on_rsa = idp
        .issuer()
        .forge(
            &Forgery::new(spec())
                .header("alg", "ES256")
                .signature(Signature::Bytes(vec![1; 64])),
        )
        .await
        .unwrap();
    assert_eq!(inspect(&es256_on_rsa).0["kid"], idp.issuer().current_kid());
    // Signing an RSA key with an EC algorithm is refused, not panicked on.
    let refused = idp
        .issuer()
        .forge(&Forgery::new(spec()).signature(Signature::Key {
            key: KeyChoice::Current,
            alg: Some(jsonwebtoken::Algorithm::ES256),
        }))
        .await;
    assert!(matches!(refused, Err(mock_idp::IdpError::Signing(_))));
}

#[tokio::test]
async fn a_weak_rsa_key_can_be_published_and_sign_genuine_rs256_tokens() {
    // J22: aws-lc refuses RSA keys under 2048 bits, so the IdP signs these with the rsa crate.
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::signature::Verifier as _;
    let idp = start().await;
    let pem = std::fs::read_to_string(keys_dir().join("rsa-1024-weak.pem")).unwrap();
    idp.issuer()
        .publish_jwk(mock_idp::attack::rsa_public_jwk(&pem, "weak-1024").unwrap());
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;
    let weak = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "weak-1024")
        .unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(weak["n"].as_str().unwrap())
            .unwrap()
            .len(),
        128,
        "1024 bits"
    );

    let token = idp
        .issuer()
        .forge(
            &Forgery::new(spec())
                .header("kid", "weak-1024")
                .signature(Signature::RsaPem(pem)),
        )
        .await
        .unwrap();
    assert_eq!(inspect(&token).0["alg"], "RS256");
    let (input, signature) = token.rsplit_once('.').unwrap();
    let public_pem = std::fs::read_to_string(keys_dir().join("rsa-1024-weak.pub.pem")).unwrap();
    let public = rsa::PublicKey::from_public_key_pem(&public_pem).unwrap();
    let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public);
    let signature =
        rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(signature).unwrap().as_slice())
            .unwrap();
    verifier
        .verify(input.as_bytes(), &signature)
        .expect("a genuine RS256 signature by the weak key");
    assert!(
        verify(&token, &jwks, idp.url(), DEMO_AUDIENCE).is_err(),
        "jsonwebtoken/aws-lc refuses it"
    );
}

/// J03 from the JSON recipe: HMAC keyed with the issuer's own public key. The PEM form is byte
/// for byte the SPKI PEM openssl writes (the fixture), so this is the real key-confusion attack;
/// the JWK and modulus forms are MACs under exactly what the JWKS publishes.
#[tokio::test]
async fn hmac_with_the_issuers_own_public_key_matches_what_a_confused_verifier_would_use() {
    let idp = builder()
        .keys(mock_idp::KeySupply::new([crate::harness::fixture_key(
            "rsa-1",
        )]))
        .start()
        .await
        .unwrap();
    let jwk = idp.issuer().jwks()["keys"][0].clone();
    let secrets = [
        (
            "pem",
            std::fs::read(keys_dir().join("rsa-1.pub.pem")).unwrap(),
        ),
        ("jwk", serde_json::to_vec(&jwk).unwrap()),
        ("modulus", jwk["n"].as_str().unwrap().as_bytes().to_vec()),
    ];
    for (encoding, secret) in secrets {
        let forgery: Forgery =
            serde_json::from_value(json!({"signature": {"hmac_issuer_key": encoding}})).unwrap();
        let token = idp.issuer().forge(&forgery).await.unwrap();
        assert_eq!(inspect(&token).0["alg"], "HS256", "{encoding}");
        let mut hs = Validation::new(jsonwebtoken::Algorithm::HS256);
        hs.set_audience(&[DEMO_AUDIENCE]);
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(&secret), &hs)
            .unwrap_or_else(|e| panic!("{encoding}: not a MAC under that secret: {e}"));
    }
}

/// The JSON recipe (what the admin API and the attack corpus send) means what the builder
/// methods mean.
#[tokio::test]
async fn the_json_recipe_builds_the_same_token_as_the_builder() {
    let idp = start().await;
    let forgery: Forgery = serde_json::from_value(json!({
        "subject": "bob",
        "client_id": "cli",
        "audience": ["https://a", "https://b"],
        "scope": "x y",
        "expires_in": -600,
        "claims": {"extra": 1},
        "remove_claims": ["jti"],
        "header": {"kid": "odd"},
        "remove_header": ["typ"],
        "signature": {"bytes_b64url": "AAAA"}
    }))
    .unwrap();
    let token = idp.issuer().forge(&forgery).await.unwrap();
    let (header, claims) = inspect(&token);
    assert_eq!(header, json!({"alg": "RS256", "kid": "odd"}));
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["client_id"], "cli");
    assert_eq!(claims["aud"], json!(["https://a", "https://b"]));
    assert_eq!(claims["scope"], "x y");
    assert_eq!(claims["extra"], 1);
    assert!(claims.get("jti").is_none());
    let now = idp.clock().now();
    assert!((claims["exp"].as_i64().unwrap() - (now - 600)).abs() <= 1);
    assert!(claims["iat"].as_i64().unwrap() < claims["exp"].as_i64().unwrap());
    assert!(token.ends_with(".AAAA"));
    let raw: Forgery = serde_json::from_value(json!({
        "raw_header": "{\"alg\":\"RS256\",\"alg\":\"none\"}",
        "raw_claims": {"b64url": "e30"}
    }))
    .unwrap();
    let token = idp.issuer().forge(&raw).await.unwrap();
    let mut parts = token.split('.');
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap(),
        br#"{"alg":"RS256","alg":"none"}"#
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap(),
        b"{}"
    );
    for unknown in [
        json!({"signatur": "current"}),
        json!({"signature": "forged"}),
    ] {
        assert!(serde_json::from_value::<Forgery>(unknown).is_err());
    }
}
