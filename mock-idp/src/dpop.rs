//! DPoP proofs (RFC 9449 §4.2) as a client makes them with its key: what tests of a resource
//! server's DPoP checks send, correct ([`proof`]) or changed one member at a time ([`header`],
//! [`claims`], then [`sign`]). A token bound to the key carries its [`KeyPair::kid`], the RFC 7638
//! thumbprint, as `cnf.jkt`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::error::IdpError;
use crate::keys::{Algorithm, KeyPair};

/// A proof's header: `typ` `dpop+jwt`, the key's default algorithm, its public JWK.
pub fn header(key: &KeyPair) -> Value {
    let alg = key.family().default_algorithm();
    let mut jwk = key.public_jwk(alg, "sig");
    if let Some(members) = jwk.as_object_mut() {
        for published_only in ["kid", "use", "alg"] {
            members.remove(published_only);
        }
    }
    json!({"typ": "dpop+jwt", "alg": alg.as_str(), "jwk": jwk})
}

/// A proof's claims for `method` at `htu` with `access_token`, issued at `iat` (Unix seconds).
pub fn claims(method: &str, htu: &str, access_token: &str, jti: &str, iat: i64) -> Value {
    json!({"jti": jti, "htm": method, "htu": htu, "iat": iat, "ath": access_token_hash(access_token)})
}

/// `ath`: the base64url SHA-256 of the access token.
pub fn access_token_hash(access_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

/// `header` and `claims` as a compact JWS signed by `key` with `alg`, whatever the header says
/// (so a header naming another algorithm can be sent as it is).
///
/// # Errors
/// [`IdpError::Signing`] when `key` cannot sign with `alg`.
pub fn sign(
    key: &KeyPair,
    alg: Algorithm,
    header: &Value,
    claims: &Value,
) -> Result<String, IdpError> {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key.signing_key(), alg.jwt())
        .map_err(IdpError::Signing)?;
    Ok(format!("{input}.{signature}"))
}

/// A correct proof for `method` at `htu` with `access_token`.
///
/// ```
/// use mock_idp::{KeyFamily, KeyPair, dpop};
///
/// let key = KeyPair::generate(KeyFamily::P256).unwrap();
/// let proof = dpop::proof(&key, "POST", "https://mcp.example.com/mcp", "the-token", "1", 1_800_000_000)
///     .unwrap();
/// // Sent as `Authorization: DPoP the-token` and `DPoP: {proof}`, for a token whose `cnf.jkt`
/// // is `key.kid()`.
/// assert_eq!(proof.split('.').count(), 3);
/// ```
///
/// # Errors
/// [`IdpError::Signing`] when the key cannot sign.
pub fn proof(
    key: &KeyPair,
    method: &str,
    htu: &str,
    access_token: &str,
    jti: &str,
    iat: i64,
) -> Result<String, IdpError> {
    let alg = key.family().default_algorithm();
    sign(
        key,
        alg,
        &header(key),
        &claims(method, htu, access_token, jti, iat),
    )
}

/// A proof for a token request (RFC 9449 §4.2, §5): `POST` at the token endpoint `htu`, no `ath`,
/// and the authorization server's `nonce` when it asked for one (§8). The token that comes back
/// is bound to `key`: its `cnf.jkt` is `key.kid()`.
///
/// ```
/// use mock_idp::{KeyFamily, KeyPair, dpop};
///
/// let key = KeyPair::generate(KeyFamily::P256).unwrap();
/// let proof =
///     dpop::token_request_proof(&key, "https://idp.example/token", "1", 1_800_000_000, None)
///         .unwrap();
/// // Sent as the `DPoP` header of the token request.
/// assert_eq!(proof.split('.').count(), 3);
/// ```
///
/// # Errors
/// [`IdpError::Signing`] when the key cannot sign.
pub fn token_request_proof(
    key: &KeyPair,
    htu: &str,
    jti: &str,
    iat: i64,
    nonce: Option<&str>,
) -> Result<String, IdpError> {
    let mut claims = json!({"jti": jti, "htm": "POST", "htu": htu, "iat": iat});
    if let Some(nonce) = nonce {
        claims["nonce"] = nonce.into();
    }
    sign(key, key.family().default_algorithm(), &header(key), &claims)
}
