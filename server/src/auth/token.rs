//! The token validator: a pure function of (token, keys, now, policy), so every rule can be
//! tested exhaustively without a network (checklist D02-D05, D07, E02-E09, E13, G06-G08, J01-J50).
//!
//! Order: compact-JWS shape (J42); the header, as one JSON object without duplicate members in
//! canonical base64url, and its policy (`alg` allow-list, no `crit`/`b64`/`cty`, `typ`: J01-J04,
//! J15-J17, J35-J38, J40, J44-J46); the signature and payload segments (J18, J40-J41, J44-J45);
//! the issuer (P09) and the other claims ([`super::claims`]), so a refusal never costs signature
//! work; key selection from the AS's keys only (`jku`/`x5u`/`jwk`/`x5c` are never read,
//! J11-J14), key/algorithm consistency (J05-J07), then the signature (J19-J21, via jsonwebtoken).
//! Claims are only ever used to refuse before the signature has verified.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::claims::{Claims, VerifiedClaims};
use super::key_set::{KeyFingerprint, KeySet, VerificationKey};
use super::policy::ValidationPolicy;
use super::token_error::TokenError;

/// Validates `token`, presented as a bearer token, against `keys` at `now` (Unix seconds) under
/// `policy`. A token bound to a key (`cnf`, DPoP or mTLS) is refused: it is no bearer token, and
/// this function sees no proof.
///
/// # Errors
/// [`TokenError`] naming the first rule the token breaks.
pub fn validate(
    token: &str,
    keys: &KeySet,
    now: i64,
    policy: &ValidationPolicy,
) -> Result<VerifiedClaims, TokenError> {
    let (claims, _) = validate_with_key(token, keys, now, policy)?;
    if claims.dpop_jkt.is_some() {
        return Err(TokenError::SenderConstrained);
    }
    Ok(claims)
}

/// Three base64url segments whose first decodes to a JSON object: what a JWS compact
/// serialization is. Anything else is an opaque token.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).ok()
        })
        .is_some()
}

/// [`validate`], also naming the key whose signature verified (for the verified-token cache).
pub(crate) fn validate_with_key(
    token: &str,
    keys: &KeySet,
    now: i64,
    policy: &ValidationPolicy,
) -> Result<(VerifiedClaims, KeyFingerprint), TokenError> {
    let parsed = parse(token, policy)?;
    // The claims, the issuer first, are judged before any key is chosen or any signature work: a
    // token of an untrusted issuer costs no key lookup and, in the caller, no refetch for its
    // unknown `kid` (P09); a token refused for its claims (expired, another audience...) costs a
    // parse, so bad tokens stay cheaper than good ones. Nothing is trusted from them; passing
    // claims still need the signature.
    let claims = parsed.claims.check(now, policy)?;
    if keys.is_empty() {
        return Err(TokenError::NoUsableKey);
    }
    let key = select_key(&parsed, keys)?;
    verify_signature(&parsed, key)?;
    Ok((claims, key.fingerprint()))
}

struct Parsed<'a> {
    signing_input: &'a str,
    signature: &'a str,
    alg: Algorithm,
    header: Header,
    claims: Claims,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    cty: Option<IgnoredAny>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
    #[serde(default)]
    b64: Option<IgnoredAny>,
}

fn parse<'a>(token: &'a str, policy: &ValidationPolicy) -> Result<Parsed<'a>, TokenError> {
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or(TokenError::Malformed("not a compact JWS"))?;
    let (header_b64, claims_b64) = signing_input
        .split_once('.')
        .ok_or(TokenError::Malformed("not a compact JWS"))?;
    if claims_b64.contains('.') {
        return Err(TokenError::Malformed("too many segments (JWE or nested)"));
    }
    if header_b64.is_empty() || claims_b64.is_empty() {
        return Err(TokenError::Malformed("empty segment"));
    }
    // The header is judged first: a token whose algorithm or extensions are refused is refused
    // for that (`alg: none` with its empty signature is J01, not a missing signature).
    // Canonical base64url without padding: rejects '=', '+', '/', whitespace and non-zero pad bits.
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    check_members(&header_bytes, Part::Header)?;
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| TokenError::Malformed("header is not a valid JOSE header"))?;
    // `alg` is case-sensitive (RFC 7515 §4.1.1): only exact allow-listed names pass.
    let alg = policy
        .algorithms()
        .find(&header.alg)
        .ok_or(TokenError::AlgorithmNotAllowed)?;
    if header.crit.is_some() || header.b64.is_some() || header.cty.is_some() {
        return Err(TokenError::UnsupportedHeader);
    }
    if !policy.token_types().accepts(header.typ.as_deref()) {
        return Err(TokenError::WrongType);
    }
    if signature.is_empty() {
        return Err(TokenError::Malformed("empty segment"));
    }
    URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    let claims_bytes = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
    check_members(&claims_bytes, Part::Claims)?;
    let claims: Claims = serde_json::from_slice(&claims_bytes)
        .map_err(|_| TokenError::Malformed("claims have invalid types"))?;
    Ok(Parsed {
        signing_input,
        signature,
        alg,
        header,
        claims,
    })
}

fn select_key<'k>(
    parsed: &Parsed<'_>,
    keys: &'k KeySet,
) -> Result<&'k VerificationKey, TokenError> {
    match &parsed.header.kid {
        Some(kid) => {
            let key = keys.by_kid(kid).ok_or(TokenError::UnknownKey)?;
            if key.fits(parsed.alg) {
                Ok(key)
            } else {
                Err(TokenError::KeyMismatch)
            }
        }
        // J10: without a kid, only a signature that verifies under one of the AS's fitting keys.
        None => {
            let mut fitting = keys.fitting(parsed.alg).peekable();
            if fitting.peek().is_none() {
                return Err(TokenError::UnknownKey);
            }
            fitting
                .find(|key| verify_signature(parsed, key).is_ok())
                .ok_or(TokenError::BadSignature)
        }
    }
}

fn verify_signature(parsed: &Parsed<'_>, key: &VerificationKey) -> Result<(), TokenError> {
    match jsonwebtoken::crypto::verify(
        parsed.signature,
        parsed.signing_input.as_bytes(),
        key.decoding_key(),
        parsed.alg,
    ) {
        Ok(true) => Ok(()),
        Ok(false) | Err(_) => Err(TokenError::BadSignature),
    }
}

#[derive(Clone, Copy)]
enum Part {
    Header,
    Claims,
}

/// One UTF-8 JSON object whose member names are unique (RFC 7515 §5.2 steps 4 and 8, RFC 7519
/// §7.2 step 10, RFC 7493 §2.3): rejecting duplicates removes parser differentials such as
/// `{"alg":"RS256","alg":"none"}` (J45). UTF-8 is checked on the whole part, because serde_json
/// does not validate the strings it skips (E15).
fn check_members(json: &[u8], part: Part) -> Result<(), TokenError> {
    if std::str::from_utf8(json).is_err() {
        return Err(TokenError::Malformed(match part {
            Part::Header => "header is not UTF-8",
            Part::Claims => "claims are not UTF-8",
        }));
    }
    match serde_json::from_slice::<MemberNames>(json) {
        Ok(MemberNames::Unique) => Ok(()),
        Ok(MemberNames::Duplicate) => Err(TokenError::DuplicateMember(match part {
            Part::Header => "header",
            Part::Claims => "claims",
        })),
        Err(_) => Err(TokenError::Malformed(match part {
            Part::Header => "header is not one JSON object",
            Part::Claims => "claims are not one JSON object",
        })),
    }
}

/// Whether `json` is one UTF-8 JSON object whose member names are unique: the same rule for the
/// other JOSE objects the server reads (DPoP proofs).
pub(crate) fn is_one_object_with_unique_members(json: &[u8]) -> bool {
    std::str::from_utf8(json).is_ok()
        && matches!(
            serde_json::from_slice::<MemberNames>(json),
            Ok(MemberNames::Unique)
        )
}

/// What a scan of an object's member names found. A duplicate is a finding, not a parse error,
/// so it is told apart from malformed JSON by type rather than by error text.
enum MemberNames {
    Unique,
    Duplicate,
}

impl<'de> Deserialize<'de> for MemberNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = MemberNames;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MemberNames, A::Error> {
                let mut seen = HashSet::new();
                let mut duplicate = false;
                // Every member is read, so the whole object must still be valid JSON.
                while let Some(name) = map.next_key::<String>()? {
                    duplicate |= !seen.insert(name);
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(if duplicate {
                    MemberNames::Duplicate
                } else {
                    MemberNames::Unique
                })
            }
        }
        deserializer.deserialize_map(Names)
    }
}
