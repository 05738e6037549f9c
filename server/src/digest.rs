//! The SHA-256 of bytes, for token hashes and key fingerprints: one place, so the cache and the
//! key set agree on it without depending on each other.

/// The SHA-256 of `bytes`: token hashes and key fingerprints.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut hash = [0; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}
