//! Client ID metadata documents: a client whose `client_id` is the https URL of its metadata,
//! fetched and checked on first use. The fetch is an outbound request that any caller of
//! `/authorize` or `/token` can aim, so it is fenced in: https (http only to loopback), global
//! addresses only, checked after DNS resolution ([`AddressPolicy`]); no redirects, no proxy,
//! bounded in time, size and concurrency; a failing URL is not fetched again for a while; and the
//! caller learns only that the client is unknown, never why (the reason goes to the IdP's log),
//! so the fetcher cannot be used to scan ports or probe a network.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;

use super::address_policy::AddressPolicy;
use super::bounded::BoundedMap;
use super::registry::{Registration, check_redirect_uris};
use super::{Client, is_https_or_loopback_http};

/// Why no client came of a metadata document, as the caller may learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocumentError {
    /// Not fetched, not usable, or failed recently: the client is unknown. The detail is logged.
    Unusable,
    /// Too many fetches under way; try again later.
    Busy,
}

/// Fetched documents, recent failures, and the fetcher.
#[derive(Debug)]
pub(crate) struct Documents {
    /// `None` only if no HTTP client could be made: then every fetch fails.
    http: Option<reqwest::Client>,
    policy: AddressPolicy,
    /// URL → the client and when it was fetched.
    fetched: Mutex<BoundedMap<(Client, i64)>>,
    /// URL → when fetching it last failed.
    failed: Mutex<BoundedMap<i64>>,
    permits: Semaphore,
    fetches: AtomicU64,
}

impl Documents {
    /// A fetcher under `policy`.
    pub(crate) fn new(policy: AddressPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(DOCUMENT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself, out of reach of the address check.
            .no_proxy()
            .dns_resolver(policy.resolver())
            .build()
            .inspect_err(|error| {
                // Only a TLS backend that cannot start fails here; every fetch then fails.
                tracing::error!(error = ?error, "no HTTP client for client metadata documents");
            })
            .ok();
        Self {
            http,
            policy,
            fetched: Mutex::new(BoundedMap::new(MAX_DOCUMENTS)),
            failed: Mutex::new(BoundedMap::new(MAX_DOCUMENTS)),
            permits: Semaphore::new(MAX_CONCURRENT_FETCHES),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many requests for documents were handed to the HTTP client (whether or not a
    /// connection followed): for tests that prove a refusal sent nothing.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The public client the document at `url` describes: from the cache when fetched less than
    /// a minute ago; refused without a fetch when it failed less than [`FAILURE_COOLDOWN_SECS`]
    /// ago; otherwise fetched, if a fetch slot is free.
    pub(crate) async fn client(&self, url: &str, now: i64) -> Result<Client, DocumentError> {
        if let Some((client, fetched_at)) = lock(&self.fetched).get(url)
            && now < fetched_at + DOCUMENT_CACHE_SECS
        {
            return Ok(client.clone());
        }
        if let Some(failed_at) = lock(&self.failed).get(url)
            && now < failed_at + FAILURE_COOLDOWN_SECS
        {
            tracing::debug!(url = ?url, "client metadata document failed recently; not fetched");
            return Err(DocumentError::Unusable);
        }
        let result = match self.permits.try_acquire() {
            Ok(_permit) => self.fetch(url).await,
            Err(_) => {
                tracing::warn!(url = ?url, "too many client metadata document fetches at once");
                return Err(DocumentError::Busy);
            }
        };
        match result {
            Ok(client) => {
                lock(&self.fetched).insert(url.to_owned(), (client.clone(), now));
                Ok(client)
            }
            Err(why) => {
                tracing::warn!(url = ?url, reason = ?why, "client metadata document refused");
                lock(&self.failed).insert(url.to_owned(), now);
                Err(DocumentError::Unusable)
            }
        }
    }

    /// Fetches and checks one document. The error is for the log only.
    async fn fetch(&self, url: &str) -> Result<Client, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !is_https_or_loopback_http(&parsed)
            || parsed.fragment().is_some()
            || parsed.path() == "/"
        {
            return Err("not an https URL with a path (http only to loopback)".into());
        }
        // A literal address is connected to directly, without the resolver: checked here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) | None => None,
        };
        if let Some(ip) = literal
            && !self.policy.allows(ip)
        {
            return Err(format!("{ip} may not be fetched from"));
        }
        let http = self.http.as_ref().ok_or("no HTTP client")?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let mut response = http
            .get(parsed)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("cannot be fetched: {e:?}"))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("the body broke off: {e:?}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > DOCUMENT_MAX_BYTES {
                return Err("too large".into());
            }
        }
        let document: Value =
            serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        if document.get("client_id").and_then(Value::as_str) != Some(url) {
            return Err("its client_id is not its own URL".into());
        }
        let request: Registration =
            serde_json::from_value(document).map_err(|e| format!("invalid metadata: {e}"))?;
        if request
            .token_endpoint_auth_method
            .as_deref()
            .is_some_and(|m| m != "none")
        {
            return Err("not a public client (token_endpoint_auth_method none)".into());
        }
        if request.redirect_uris.is_empty() {
            return Err("no redirect_uris".into());
        }
        check_redirect_uris(&request.redirect_uris)
            .map_err(|e| format!("a redirect URI: {}", e.error_description))?;
        Ok(Client {
            client_name: request.client_name,
            ..Client::public(url, request.redirect_uris)
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Writers insert whole entries; a poisoned lock still holds a consistent map.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many documents (and, separately, failed URLs) are remembered.
const MAX_DOCUMENTS: usize = 1_000;
/// How many documents may be fetched at once; a request beyond that is answered at once
/// (temporarily unavailable) rather than queued.
pub(crate) const MAX_CONCURRENT_FETCHES: usize = 4;
/// How long a fetched metadata document is used.
const DOCUMENT_CACHE_SECS: i64 = 60;
/// How long a URL whose fetch failed is refused without being fetched again.
pub(crate) const FAILURE_COOLDOWN_SECS: i64 = 60;
/// The largest metadata document accepted.
const DOCUMENT_MAX_BYTES: usize = 16 * 1024;
/// How long fetching a metadata document may take, name resolution included.
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(5);
