//! The fixture keys load, and their committed public JWKs match them (refresh with
//! `UPDATE_FIXTURES=1 cargo test -p mock-idp --test api fixtures`).

use mock_idp::KeyFamily;

use crate::harness::{fixture_key, keys_dir};

#[test]
fn fixture_keys_load_with_the_expected_families_and_match_their_committed_jwks() {
    let cases = [
        ("rsa-1", KeyFamily::Rsa),
        ("rsa-2", KeyFamily::Rsa),
        ("rsa-3", KeyFamily::Rsa),
        ("rsa-4", KeyFamily::Rsa),
        ("p256-1", KeyFamily::P256),
        ("p256-2", KeyFamily::P256),
        ("ed25519-1", KeyFamily::Ed25519),
        ("ed25519-2", KeyFamily::Ed25519),
    ];
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    for (stem, family) in cases {
        let key = fixture_key(stem);
        assert_eq!(key.family(), family, "{stem}");
        let jwk = key.public_jwk(family.default_algorithm(), "sig");
        let path = keys_dir().join(format!("{stem}.jwk.json"));
        let text = serde_json::to_string_pretty(&jwk).unwrap() + "\n";
        if update {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_FIXTURES=1", path.display()));
        let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
        assert_eq!(
            committed, jwk,
            "{stem}: the committed JWK does not match the PEM"
        );
    }
}

#[test]
fn the_weak_rsa_key_is_refused_for_signing() {
    // RFC 7518 §3.3: RSA keys must have at least 2048 bits; aws-lc refuses smaller ones, so the
    // IdP can never sign with the J22 fixture by accident.
    let pem = std::fs::read_to_string(keys_dir().join("rsa-1024-weak.pem")).unwrap();
    assert!(mock_idp::KeyPair::from_pem(&pem).is_err());
}
