//! `application/x-www-form-urlencoded` request bodies (RFC 6749 §3.2, Appendix B), as the token,
//! login, introspection and revocation endpoints receive them. Empty values count as absent
//! (§3.1); a parameter that may appear once and appears twice is an `invalid_request`.

use axum::http::{HeaderMap, header};

use crate::error::{OAuthError, OAuthErrorCode};

/// A parsed form body.
pub(crate) struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    /// Parses `body`, which must be declared `application/x-www-form-urlencoded`.
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Ok(Self::from_bytes(body))
    }

    /// Parses a query string or body without looking at headers (the authorization request).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        let params = url::form_urlencoded::parse(bytes)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Self { params }
    }

    /// A parameter that may appear at most once (§3.2: "MUST NOT be included more than once").
    pub(crate) fn single(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.all(name).into_iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid_request(&format!("parameter {name} is repeated")));
        }
        Ok(first)
    }

    /// Every value of a repeatable parameter (`resource`, RFC 8707 §2).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An `invalid_request` with `description`.
pub(crate) fn invalid_request(description: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRequest, description)
}
