//! The tasks a serving Server runs beside the requests: loading keys that were not there at start,
//! and forgetting idle rate-limit state.

use std::sync::Arc;
use std::time::Duration;

use super::Server;
use crate::auth::keys::KeySource;

impl Server {
    /// Keeps trying to load each issuer's keys until it succeeds (1 s, doubling to 30 s between
    /// tries), so an authorization server that was down at start is picked up without a restart.
    pub(super) fn spawn_key_loaders(&self) {
        for keys in self.keys.iter() {
            self.spawn_key_loader(Arc::clone(keys));
        }
    }

    fn spawn_key_loader(&self, keys: Arc<KeySource>) {
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            while !keys.is_ready() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                match keys.refresh().await {
                    Ok(()) if keys.is_ready() => return,
                    Ok(()) => backoff = (backoff * 2).min(Duration::from_secs(30)),
                    Err(error) if error.is_permanent() => {
                        tracing::error!(
                            error = &error as &dyn std::error::Error,
                            "authorization server metadata names another issuer; tokens will be refused"
                        );
                        return;
                    }
                    Err(_) => backoff = (backoff * 2).min(Duration::from_secs(30)),
                }
            }
        });
    }

    /// Once a minute, drops the rate-limit state of principals idle for a whole period.
    /// Reads the revocations other replicas (or `mcp-oauth-server revoke`) pushed, every poll
    /// interval, when a shared state store is configured.
    pub(super) fn spawn_revocation_follower(&self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        tokio::spawn(crate::shared_state::revocations::follow(
            shared.store,
            shared.revocations,
            shared.settings.revocation_poll,
            shared.clock,
            Arc::clone(&self.metrics),
            self.shutdown.clone(),
        ));
    }

    pub(super) fn spawn_rate_limit_pruner(&self) {
        let Some(limiter) = self.rate_limiter.as_ref().map(Arc::clone) else {
            return;
        };
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = every_minute.tick() => limiter.forget_idle(),
                }
            }
        });
    }
}
