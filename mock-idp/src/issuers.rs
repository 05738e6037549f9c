//! The issuers of one mock IdP: the root issuer and the `/{tenant}` issuers, each created with
//! its own keys on first use and kept until the IdP stops. Bounded, so requests naming new
//! tenants cannot allocate without limit.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::clock::Clock;
use crate::error::IdpError;
use crate::issuer::{Issuer, IssuerLocation, IssuerSettings};
use crate::keys::KeySupply;

/// Every issuer created so far, and how to create the next.
#[derive(Debug)]
pub(crate) struct Issuers {
    /// Scheme, host and port of every issuer URL, no trailing slash.
    base_url: String,
    clock: Clock,
    supply: KeySupply,
    defaults: IssuerSettings,
    tenant_settings: HashMap<String, IssuerSettings>,
    /// Keyed by tenant name; the root issuer is `""`.
    created: RwLock<HashMap<String, Arc<Issuer>>>,
    creating: tokio::sync::Mutex<()>,
    max_tenants: usize,
}

/// How the issuers are made.
#[derive(Debug)]
pub(crate) struct IssuersConfig {
    pub(crate) base_url: String,
    pub(crate) clock: Clock,
    pub(crate) supply: KeySupply,
    pub(crate) defaults: IssuerSettings,
    pub(crate) tenant_settings: HashMap<String, IssuerSettings>,
    pub(crate) max_tenants: usize,
}

impl Issuers {
    pub(crate) fn new(config: IssuersConfig) -> Self {
        Self {
            base_url: config.base_url,
            clock: config.clock,
            supply: config.supply,
            defaults: config.defaults,
            tenant_settings: config.tenant_settings,
            created: RwLock::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
            max_tenants: config.max_tenants,
        }
    }

    /// The clock every issuer reads.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The issuer for `tenant` (`None`: the root issuer), created with fresh keys on first use.
    pub(crate) async fn get(&self, tenant: Option<&str>) -> Result<Arc<Issuer>, IdpError> {
        let name = tenant.unwrap_or_default();
        if let Some(issuer) = self.lookup(name) {
            return Ok(issuer);
        }
        if tenant.is_some() {
            validate_tenant(name)?;
        }
        let _one_at_a_time = self.creating.lock().await;
        if let Some(issuer) = self.lookup(name) {
            return Ok(issuer);
        }
        if self.read().len() > self.max_tenants {
            return Err(IdpError::TooManyTenants(self.max_tenants));
        }
        let settings = self
            .tenant_settings
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone());
        let key = self.supply.obtain(settings.algorithm.family()).await?;
        let issuer = Arc::new(Issuer::new(
            IssuerLocation {
                base: &self.base_url,
                tenant,
            },
            settings,
            key,
            self.supply.clone(),
            self.clock.clone(),
        ));
        self.created
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&issuer));
        Ok(issuer)
    }

    fn lookup(&self, name: &str) -> Option<Arc<Issuer>> {
        self.read().get(name).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Issuer>>> {
        // Inserting one entry cannot leave the map inconsistent, so a poisoned lock is usable.
        self.created.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A tenant is one path segment: 1-64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit,
/// and not a name the IdP's own routes use.
pub(crate) fn validate_tenant(name: &str) -> Result<(), IdpError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let reserved = matches!(name, "admin" | "jwks" | "token");
    if valid_chars && starts_well && name.len() <= 64 && !reserved {
        Ok(())
    } else {
        Err(IdpError::InvalidTenant(name.to_owned()))
    }
}
