//! The trusted issuers at run time: each one's authorization server, keys and remote verifier.

use std::sync::Arc;

use super::StartError;
use crate::auth::authorization_server::AuthorizationServer;
use crate::auth::fetch::Fetcher;
use crate::auth::issuers::{IssuerVerifier, TrustedIssuer};
use crate::auth::keys::KeySource;
use crate::auth::remote::RemoteVerifier;
use crate::clock::Clock;
use crate::settings::Settings;
use crate::shared_state::SharedStore;
use crate::telemetry::Metrics;

/// One trusted issuer, ready to judge tokens: its authorization server, its keys (first load
/// attempted now; their source added to `sources`) and its remote verifier.
pub(super) async fn issuer_verifier(
    trusted: &TrustedIssuer,
    settings: &Settings,
    fetcher: &Fetcher,
    clock: &Arc<dyn Clock>,
    metrics: &Arc<Metrics>,
    sources: &mut Vec<Arc<KeySource>>,
    shared: Option<&Arc<dyn SharedStore>>,
) -> Result<IssuerVerifier, StartError> {
    let authorization_server = Arc::new(AuthorizationServer::new(
        trusted.issuer().clone(),
        trusted.authorization_server.clone(),
        fetcher.clone(),
        Arc::clone(clock),
    ));
    let keys = if trusted.verifies_jwts_locally() {
        let keys = Arc::new(KeySource::new(
            Arc::clone(&authorization_server),
            settings.keys,
            Arc::clone(clock),
            Arc::clone(metrics),
        ));
        if let Err(error) = keys.refresh().await
            && error.is_permanent()
        {
            return Err(StartError::Discovery(error));
        }
        sources.push(Arc::clone(&keys));
        Some(keys)
    } else {
        None
    };
    let remote = trusted.remote.clone().map(|method| {
        RemoteVerifier::new(
            method,
            Arc::clone(&authorization_server),
            trusted.validation.clone(),
            Arc::clone(clock),
            settings.rate_limit.remote_checks_per_address,
        )
        .with_shared_answers(shared.map(|store| (Arc::clone(store), Arc::clone(metrics))))
    });
    Ok(IssuerVerifier {
        policy: trusted.validation.clone(),
        authorization_server,
        keys,
        remote,
    })
}
