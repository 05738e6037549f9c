//! DPoP proofs at the token endpoint (RFC 9449 §4.3, §5): what binds an issued token to the
//! client's key. A request with a `DPoP` header gets a token whose `cnf.jkt` is the proof key's
//! RFC 7638 thumbprint; a bad proof gets 400 `invalid_dpop_proof`, never an unbound token.
//!
//! Written apart from the resource server's checks (this crate does not depend on it), so each
//! side is tested against an implementation it does not share code with.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::digest::{SHA256, digest};
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// Proof algorithms accepted (and advertised as `dpop_signing_alg_values_supported`).
pub(crate) const PROOF_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::EdDSA,
];

/// How far a proof's `iat` may be from now, either way; also how long a `jti` is remembered
/// (twice that) and how often nonces rotate.
const WINDOW_SECS: i64 = 300;
/// The largest proof looked at.
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The most proofs remembered per issuer.
const MAX_SEEN: usize = 10_000;
/// Members only a private or symmetric JWK has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused: `invalid_dpop_proof`, or `use_dpop_nonce` (RFC 9449 §5, §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProofRefusal {
    /// The proof fails a rule; the text says which.
    Invalid(&'static str),
    /// Nonces are required and this proof has none, or an old one.
    UseNonce,
}

/// One issuer's memory of proofs: the `jti`s seen within the window, and the nonce secret.
#[derive(Debug)]
pub(crate) struct ProofLedger {
    seen: Mutex<HashMap<[u8; 32], i64>>,
    nonce_seed: [u8; 32],
}

impl Default for ProofLedger {
    fn default() -> Self {
        Self {
            seen: Mutex::default(),
            nonce_seed: rand::random(),
        }
    }
}

impl ProofLedger {
    /// The nonce of now's period (RFC 9449 §8): a hash of the issuer's seed and the period, so
    /// it rotates by itself and nothing is stored.
    pub(crate) fn nonce(&self, now: i64) -> String {
        self.nonce_of(now.div_euclid(WINDOW_SECS))
    }

    fn nonce_of(&self, period: i64) -> String {
        let mut input = self.nonce_seed.to_vec();
        input.extend_from_slice(&period.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&digest(&SHA256, &input).as_ref()[..16])
    }

    fn accepts_nonce(&self, nonce: &str, now: i64) -> bool {
        let period = now.div_euclid(WINDOW_SECS);
        nonce == self.nonce_of(period) || nonce == self.nonce_of(period - 1)
    }

    /// Records `jti` until `expires_at`; whether it was new.
    fn first_use(&self, jti: &str, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_SEEN {
            seen.retain(|_, expires_at| *expires_at > now);
            if seen.len() >= MAX_SEEN {
                // Full of live proofs: refuse rather than forget one that could be replayed.
                return false;
            }
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(digest(&SHA256, jti.as_bytes()).as_ref());
        match seen.get(&key) {
            Some(expires_at) if *expires_at > now => false,
            _ => {
                seen.insert(key, now + 2 * WINDOW_SECS);
                true
            }
        }
    }
}

/// The request a proof must be for: this token endpoint, by POST.
pub(crate) struct ProofTarget<'a> {
    pub(crate) htu: &'a str,
    pub(crate) now: i64,
    pub(crate) nonce_required: bool,
}

/// The thumbprint of the key of the request's one valid DPoP proof; `None` without a `DPoP`
/// header.
pub(crate) fn proof_key(
    headers: &HeaderMap,
    target: &ProofTarget<'_>,
    ledger: &ProofLedger,
) -> Result<Option<String>, ProofRefusal> {
    let mut proofs = headers.get_all("dpop").iter();
    let Some(proof) = proofs.next() else {
        return Ok(None);
    };
    if proofs.next().is_some() {
        return Err(ProofRefusal::Invalid("more than one DPoP header"));
    }
    let proof = proof
        .to_str()
        .map_err(|_| ProofRefusal::Invalid("the DPoP header is not text"))?;
    check(proof, target, ledger).map(Some)
}

fn check(
    proof: &str,
    target: &ProofTarget<'_>,
    ledger: &ProofLedger,
) -> Result<String, ProofRefusal> {
    use ProofRefusal::Invalid;
    if proof.len() > MAX_PROOF_BYTES {
        return Err(Invalid("the DPoP proof is too large"));
    }
    let header_segment = proof.split('.').next().unwrap_or_default();
    let raw_header: Value = URL_SAFE_NO_PAD
        .decode(header_segment)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(Invalid("the DPoP proof is not a JWS"))?;
    if raw_header["jwk"]
        .as_object()
        .is_some_and(|jwk| PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)))
    {
        return Err(Invalid("the DPoP proof's jwk holds a private key"));
    }
    if raw_header.get("crit").is_some() {
        return Err(Invalid("the DPoP proof has a crit header"));
    }
    let header =
        jsonwebtoken::decode_header(proof).map_err(|_| Invalid("the DPoP proof is not a JWS"))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(Invalid("the DPoP proof's typ is not dpop+jwt"));
    }
    if !PROOF_ALGORITHMS.contains(&header.alg) {
        return Err(Invalid("the DPoP proof's algorithm is not supported"));
    }
    let jwk: Jwk = header.jwk.ok_or(Invalid("the DPoP proof carries no jwk"))?;
    let key =
        DecodingKey::from_jwk(&jwk).map_err(|_| Invalid("the DPoP proof's jwk is unusable"))?;
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map_err(|_| Invalid("the DPoP proof's signature does not verify"))?
        .claims;
    let text = |name: &'static str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= 256)
        .ok_or(Invalid("the DPoP proof lacks jti"))?;
    if text("htm") != Some("POST") {
        return Err(Invalid("the DPoP proof is for another method"));
    }
    if text("htu").map(without_query) != Some(without_query(target.htu)) {
        return Err(Invalid("the DPoP proof is for another URL"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(Invalid("the DPoP proof lacks iat"))?;
    if iat.saturating_sub(target.now).abs() > WINDOW_SECS {
        return Err(Invalid("the DPoP proof is too old or from the future"));
    }
    if target.nonce_required
        && !text("nonce").is_some_and(|nonce| ledger.accepts_nonce(nonce, target.now))
    {
        return Err(ProofRefusal::UseNonce);
    }
    let thumbprint = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| Invalid("the DPoP proof's jwk is unusable"))?;
    if !ledger.first_use(jti, target.now) {
        return Err(Invalid("the DPoP proof was already used"));
    }
    Ok(thumbprint)
}

/// `htu` as compared: without query and fragment, scheme and host in lower case (RFC 9449 §4.3
/// step 9 and RFC 3986 §6.2.2.1), by `url`'s parser.
fn without_query(uri: &str) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::keys::{KeyFamily, KeyPair};

    const HTU: &str = "http://127.0.0.1:9/token";
    const NOW: i64 = 1_800_000_000;

    fn headers(proof: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("dpop", HeaderValue::from_str(proof).unwrap());
        headers
    }

    /// One change to a correct proof's header and claims.
    type Edit = Box<dyn FnOnce(&mut Value, &mut Value)>;

    fn proof(key: &KeyPair, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let mut header = crate::dpop::header(key);
        let mut claims = serde_json::json!({"jti": rand::random::<u64>().to_string(),
            "htm": "POST", "htu": HTU, "iat": NOW});
        edit(&mut header, &mut claims);
        let alg = key.family().default_algorithm();
        crate::dpop::sign(key, alg, &header, &claims).unwrap()
    }

    fn judged(
        proof: &str,
        ledger: &ProofLedger,
        nonce_required: bool,
    ) -> Result<Option<String>, ProofRefusal> {
        let target = ProofTarget {
            htu: HTU,
            now: NOW,
            nonce_required,
        };
        proof_key(&headers(proof), &target, ledger)
    }

    /// RFC 9449 §4.3 at the token endpoint: a correct proof yields its key's thumbprint once;
    /// each broken rule is `invalid_dpop_proof`; with nonces on, `use_dpop_nonce` until the
    /// current one is sent.
    #[test]
    fn a_token_request_proof_is_checked_rule_by_rule() {
        let key = KeyPair::generate(KeyFamily::P256).unwrap();
        let ledger = ProofLedger::default();
        let good = proof(&key, |_, _| {});
        assert_eq!(
            judged(&good, &ledger, false),
            Ok(Some(key.kid().to_owned()))
        );
        assert_eq!(
            judged(&good, &ledger, false),
            Err(ProofRefusal::Invalid("the DPoP proof was already used"))
        );
        assert_eq!(
            proof_key(
                &HeaderMap::new(),
                &ProofTarget {
                    htu: HTU,
                    now: NOW,
                    nonce_required: false
                },
                &ledger
            ),
            Ok(None)
        );
        let cases: Vec<(&str, Edit)> = vec![
            ("typ", Box::new(|h, _| h["typ"] = "JWT".into())),
            ("alg", Box::new(|h, _| h["alg"] = "HS256".into())),
            ("private", Box::new(|h, _| h["jwk"]["d"] = "AAAA".into())),
            ("htm", Box::new(|_, c| c["htm"] = "GET".into())),
            (
                "htu",
                Box::new(|_, c| c["htu"] = "http://127.0.0.1:9/other".into()),
            ),
            ("iat", Box::new(|_, c| c["iat"] = (NOW - 3_600).into())),
            ("jti", Box::new(|_, c| c["jti"] = "".into())),
        ];
        for (what, edit) in cases {
            assert!(
                matches!(
                    judged(&proof(&key, edit), &ledger, false),
                    Err(ProofRefusal::Invalid(_))
                ),
                "{what}"
            );
        }
        let query = proof(&key, |_, c| {
            c["htu"] = "HTTP://127.0.0.1:9/token?x=1".into()
        });
        assert!(
            judged(&query, &ledger, false).is_ok(),
            "query ignored, case normalised"
        );

        assert_eq!(
            judged(&proof(&key, |_, _| {}), &ledger, true),
            Err(ProofRefusal::UseNonce)
        );
        let nonce = ledger.nonce(NOW);
        let with_nonce = proof(&key, |_, c| c["nonce"] = nonce.clone().into());
        assert!(judged(&with_nonce, &ledger, true).is_ok());
        assert_ne!(
            ledger.nonce(NOW),
            ledger.nonce(NOW + WINDOW_SECS),
            "rotated"
        );
    }
}
