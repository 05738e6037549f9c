//! [`SharedStore`] on Redis or Valkey, through the `redis` crate's reconnecting connection
//! manager: the rate limit is one Lua script (GCRA on the server's own clock, so replicas' clocks
//! need not agree), a DPoP proof is a `SET NX PX`, revocations are a capped stream every replica
//! reads from where it left off.
//!
//! No connection at start is not fatal: each call tries to connect (at most once a second, never
//! two at a time) and fails fast meanwhile, so requests meet the configured fallback, not a hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Cursor, Revocation, SharedStateSettings, SharedStore, StoreError};

/// A `redis://` or `rediss://` URL; shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct StateUrl(String);

impl StateUrl {
    /// `url` when it is a `redis://` (plain) or `rediss://` (TLS) URL the client accepts.
    ///
    /// ```
    /// use mcp_oauth_server::settings::StateUrl;
    ///
    /// assert!(StateUrl::parse("rediss://:secret@redis.internal:6380/0").is_ok());
    /// assert!(StateUrl::parse("http://redis.internal").is_err());
    /// ```
    ///
    /// # Errors
    /// When the scheme is another, or the client cannot read it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let scheme = url.split("://").next().unwrap_or_default();
        if !matches!(scheme, "redis" | "rediss") {
            return Err("must be a redis:// or rediss:// URL".into());
        }
        // The client's `#insecure` turns off certificate checks: never silently.
        if url.contains('#') {
            return Err("must not have a fragment (#insecure would turn off TLS checks)".into());
        }
        redis::Client::open(url).map_err(|e| format!("not a usable Redis URL: {e}"))?;
        Ok(Self(url.to_owned()))
    }

    /// The same server with `password` (from a file) instead of any in the URL.
    ///
    /// # Errors
    /// When the password cannot be put in the URL.
    pub fn with_password(&self, password: &str) -> Result<Self, String> {
        let mut url = url::Url::parse(&self.0).map_err(|e| e.to_string())?;
        url.set_password(Some(password))
            .map_err(|()| "this URL cannot carry a password".to_owned())?;
        Self::parse(url.as_str())
    }
}

impl std::fmt::Debug for StateUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                write!(f, "StateUrl({url})")
            }
            Err(_) => f.write_str("StateUrl(..)"),
        }
    }
}

/// The revocation log: a stream trimmed by age, never by count (a burst of revocations must not
/// push older ones still in force out): entries older than [`super::MAX_KEEP`] go.
const REVOCATIONS: &str = "mcp:revocations";
/// At most this many revocations are read per poll.
const READ_BATCH: usize = 1_000;
/// How often a broken connection is retried.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// GCRA (the generic cell rate algorithm) on one key, by the server's clock: `ARGV[1]` is the
/// emission interval (ms per request), `ARGV[2]` the burst. Returns 0 when admitted, else the
/// milliseconds until the next request would be.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
if tat - now > tolerance then
  return math.max(1, math.ceil(tat - tolerance - now))
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.max(1, math.ceil(next_tat - now)))
return 0
";

/// The store.
pub(crate) struct RedisStore {
    client: redis::Client,
    connection: ArcSwapOption<ConnectionManager>,
    /// Held while connecting; when the last attempt began.
    connecting: tokio::sync::Mutex<Option<Instant>>,
    timeout: Duration,
    gcra: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `settings` (not connected yet).
    ///
    /// # Errors
    /// When the URL cannot be used.
    pub(crate) fn new(settings: &SharedStateSettings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.url.0.as_str())
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            client,
            connection: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(None),
            timeout: settings.timeout,
            gcra: redis::Script::new(GCRA),
        })
    }

    /// The connection, connecting if there is none (one attempt at a time, one a second).
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(connection) = self.connection.load_full() {
            return Ok((*connection).clone());
        }
        let Ok(mut last_attempt) = self.connecting.try_lock() else {
            return Err(StoreError::Unavailable("connecting".into()));
        };
        if let Some(connection) = self.connection.load_full() {
            return Ok((*connection).clone());
        }
        if last_attempt.is_some_and(|at| at.elapsed() < RECONNECT_EVERY) {
            return Err(StoreError::Unavailable("not connected".into()));
        }
        *last_attempt = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(RECONNECT_EVERY);
        let connect = ConnectionManager::new_with_config(self.client.clone(), config);
        let connection = tokio::time::timeout(self.timeout.saturating_mul(2), connect)
            .await
            .map_err(|_| StoreError::TimedOut)?
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.connection.store(Some(Arc::new(connection.clone())));
        Ok(connection)
    }

    /// Runs `command` within the timeout.
    async fn run<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = Instant::now() + self.timeout;
        let connection = self.connection().await?;
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, command(connection))
            .await
            .map_err(|_| StoreError::TimedOut)?
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

impl SharedStore for RedisStore {
    fn spend<'a>(
        &'a self,
        key: &'a str,
        per_minute: u32,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        Box::pin(async move {
            let interval = 60_000.0 / f64::from(per_minute.max(1));
            let wait_ms: u64 = self
                .run(|mut connection| async move {
                    self.gcra
                        .key(key)
                        .arg(interval)
                        .arg(per_minute.max(1))
                        .invoke_async(&mut connection)
                        .await
                })
                .await?;
            Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
        })
    }

    fn first_use<'a>(
        &'a self,
        id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let set: Option<String> = self
                .run(|mut connection| async move {
                    redis::cmd("SET")
                        .arg(id)
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            Ok(set.is_some())
        })
    }

    fn get_text<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            self.run(|mut connection| async move {
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
            })
            .await
        })
    }

    fn put_text<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            self.run(|mut connection| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await
        })
    }

    fn revoke<'a>(&'a self, revocation: &'a Revocation) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let entry = serde_json::to_string(revocation)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            // Stream ids are milliseconds of the store's clock; the trim bound is approximate
            // (`~`), and only ever drops entries older than any revocation may be kept.
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            let oldest_kept = now_ms.saturating_sub(super::MAX_KEEP.as_millis());
            let _: String = self
                .run(|mut connection| async move {
                    redis::cmd("XADD")
                        .arg(REVOCATIONS)
                        .arg("MINID")
                        .arg("~")
                        .arg(oldest_kept)
                        .arg("*")
                        .arg("r")
                        .arg(entry)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            Ok(())
        })
    }

    fn revocations_since<'a>(
        &'a self,
        cursor: &'a Cursor,
    ) -> BoxFuture<'a, Result<(Vec<Revocation>, Cursor), StoreError>> {
        Box::pin(async move {
            let reply: Option<redis::streams::StreamReadReply> = self
                .run(|mut connection| async move {
                    redis::cmd("XREAD")
                        .arg("COUNT")
                        .arg(READ_BATCH)
                        .arg("STREAMS")
                        .arg(REVOCATIONS)
                        .arg(&cursor.0)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            let mut next = cursor.clone();
            let mut revocations = Vec::new();
            for stream in reply.into_iter().flat_map(|reply| reply.keys) {
                for entry in stream.ids {
                    next = Cursor(entry.id.clone());
                    // An entry this version cannot read is skipped, not a reason to stop reading.
                    if let Some(revocation) = entry
                        .get::<String>("r")
                        .and_then(|text| serde_json::from_str(&text).ok())
                    {
                        revocations.push(revocation);
                    }
                }
            }
            Ok((revocations, next))
        })
    }
}
