//! Server-provided DPoP nonces (RFC 9449 §8, §9): a proof must carry a value this server chose
//! recently, so a proof made ahead of time (by malware holding the key for a moment) is worthless
//! by the time it could be used.
//!
//! Stateless: a nonce is the rotation period it was issued in and an HMAC of it under a secret,
//! so any replica that holds the same secret accepts it and nothing is stored. A nonce is accepted
//! in its period and the next one, then refused with `use_dpop_nonce` and a fresh one.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The secret nonces are made with: 32 random bytes per process, or shared by replicas from a
/// file.
#[derive(Clone)]
pub struct NonceSecret(Vec<u8>);

impl NonceSecret {
    /// The fewest bytes a shared secret may have.
    pub const MIN_BYTES: usize = 32;

    /// A random secret, for one process (replicas then refuse each other's nonces).
    ///
    /// # Errors
    /// When the system's random source fails.
    pub fn random() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut bytes = vec![0; Self::MIN_BYTES];
        aws_lc_rs::rand::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// A secret shared by replicas, e.g. a file's content; `None` when shorter than
    /// [`Self::MIN_BYTES`].
    ///
    /// ```
    /// use mcp_oauth_server::settings::NonceSecret;
    ///
    /// assert!(NonceSecret::from_bytes(b"too short".to_vec()).is_none());
    /// assert!(NonceSecret::from_bytes(vec![7; 32]).is_some());
    /// ```
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= Self::MIN_BYTES).then_some(Self(bytes))
    }
}

impl std::fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceSecret(..)")
    }
}

impl PartialEq for NonceSecret {
    /// Secrets are compared in constant time, should settings ever be compared.
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl Eq for NonceSecret {}

/// Issues and checks nonces.
#[derive(Debug)]
pub(crate) struct Nonces {
    key: hmac::Key,
    /// Seconds per rotation period (at least one).
    period: i64,
}

/// The largest nonce looked at: this server's are 54 characters.
const MAX_NONCE_CHARS: usize = 128;
const EPOCH_BYTES: usize = 8;

impl Nonces {
    /// Nonces under `secret`, rotated every `period`.
    pub(crate) fn new(secret: &NonceSecret, period: Duration) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret.0),
            period: i64::try_from(period.as_secs()).unwrap_or(i64::MAX).max(1),
        }
    }

    /// The nonce of now's period (`now` in seconds since the epoch).
    pub(crate) fn current(&self, now: i64) -> String {
        let epoch = now.div_euclid(self.period).to_be_bytes();
        let tag = hmac::sign(&self.key, &epoch);
        let mut bytes = epoch.to_vec();
        bytes.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` is one of this server's, from now's period or the one before.
    pub(crate) fn accepts(&self, nonce: &str, now: i64) -> bool {
        if nonce.len() > MAX_NONCE_CHARS {
            return false;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((epoch, tag)) = bytes.split_at_checked(EPOCH_BYTES) else {
            return false;
        };
        let Ok(epoch_bytes) = <[u8; EPOCH_BYTES]>::try_from(epoch) else {
            return false;
        };
        let issued = i64::from_be_bytes(epoch_bytes);
        let current = now.div_euclid(self.period);
        (issued == current || issued == current.saturating_sub(1))
            && hmac::verify(&self.key, epoch, tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(secret: u8) -> Nonces {
        Nonces::new(
            &NonceSecret::from_bytes(vec![secret; 32]).unwrap(),
            Duration::from_secs(300),
        )
    }

    /// A nonce lives in its period and the next; then, or under another secret, or altered, it
    /// is refused.
    #[test]
    fn a_nonce_is_accepted_for_one_to_two_periods_under_its_secret() {
        let (ours, theirs) = (nonces(1), nonces(2));
        let now = 1_800_000_000;
        let nonce = ours.current(now);
        assert!(ours.accepts(&nonce, now));
        assert!(ours.accepts(&nonce, now + 300), "the next period");
        assert!(!ours.accepts(&nonce, now + 600), "rotated out");
        assert!(!ours.accepts(&nonce, now - 300), "not yet issued");
        assert!(!theirs.accepts(&nonce, now), "another secret");
        assert_ne!(ours.current(now), ours.current(now + 300), "rotated");
        let mut altered = nonce.clone().into_bytes();
        altered[3] ^= 1;
        assert!(!ours.accepts(&String::from_utf8(altered).unwrap(), now));
        assert!(!ours.accepts("", now));
        assert!(!ours.accepts("not base64!", now));
        assert!(!ours.accepts(&"A".repeat(4_096), now));
        assert_eq!(nonce.len(), 54);
    }

    /// Replicas that share the secret accept each other's nonces.
    #[test]
    fn replicas_with_one_secret_agree() {
        let now = 1_800_000_123;
        assert!(nonces(9).accepts(&nonces(9).current(now), now));
        assert!(NonceSecret::from_bytes(vec![0; 31]).is_none());
        assert_eq!(
            format!("{:?}", NonceSecret::random().unwrap()),
            "NonceSecret(..)"
        );
    }
}
