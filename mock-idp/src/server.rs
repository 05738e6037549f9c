//! The running IdP: [`MockIdpBuilder`] configures it, [`MockIdp`] is the handle that owns the
//! listening task (dropping it stops the server), and `Shared` is the state the routes read.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clients::{Client, ClientRegistry};
use crate::clock::Clock;
use crate::error::IdpError;
use crate::issuer::{Issuer, IssuerHandle, IssuerSettings};
use crate::keys::{Algorithm, KeySupply};
use crate::routes;

/// Configures a mock IdP. Defaults: `127.0.0.1` on a random port, the demo client, RS256,
/// `at+jwt`, the system clock, admin endpoints off, at most 64 tenants.
#[derive(Debug)]
pub struct MockIdpBuilder {
    bind: SocketAddr,
    public_url: Option<String>,
    clients: Vec<Client>,
    defaults: IssuerSettings,
    tenants: HashMap<String, IssuerSettings>,
    supply: KeySupply,
    clock: Clock,
    admin: bool,
    max_tenants: usize,
}

impl Default for MockIdpBuilder {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            public_url: None,
            clients: Vec::new(),
            defaults: IssuerSettings::default(),
            tenants: HashMap::new(),
            supply: KeySupply::default(),
            clock: Clock::system(),
            admin: false,
            max_tenants: 64,
        }
    }
}

impl MockIdpBuilder {
    /// Where to listen (default `127.0.0.1:0`, a random free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The issuer URL clients see, when it differs from the listening address (a proxy, a
    /// container). No trailing slash: `iss` is compared byte for byte.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Applies a configuration file: its clients are added, its settings replace the defaults.
    pub fn config(mut self, config: crate::config::IdpConfig) -> Self {
        self.clients.extend(config.clients);
        self.defaults = config.settings;
        self.tenants.extend(config.tenants);
        self
    }

    /// Registers a client (the demo client is used only when none is registered).
    pub fn client(mut self, client: Client) -> Self {
        self.clients.push(client);
        self
    }

    /// Settings of every issuer without its own.
    pub fn settings(mut self, settings: IssuerSettings) -> Self {
        self.defaults = settings;
        self
    }

    /// The default issuer's (and every tenant's) algorithm.
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        self.defaults.algorithm = alg;
        self
    }

    /// Settings of the tenant at `/{name}`; other tenants use the defaults.
    pub fn tenant(mut self, name: impl Into<String>, settings: IssuerSettings) -> Self {
        self.tenants.insert(name.into(), settings);
        self
    }

    /// Where keys come from; tests pass the fixture keys so nothing waits for RSA generation.
    pub fn keys(mut self, supply: KeySupply) -> Self {
        self.supply = supply;
        self
    }

    /// The clock tokens and rotation read.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Serves the `/admin/...` test API (mint, rotate, faults, counters, clock). Off by default:
    /// anyone who can reach it can mint valid tokens.
    pub fn admin(mut self, enabled: bool) -> Self {
        self.admin = enabled;
        self
    }

    /// Caps how many `/{tenant}` issuers requests may create.
    pub fn max_tenants(mut self, max: usize) -> Self {
        self.max_tenants = max;
        self
    }

    /// Binds, creates the root issuer and serves until the returned [`MockIdp`] is dropped.
    ///
    /// # Errors
    /// [`IdpError::Config`] for an invalid client or tenant, [`IdpError::Io`] if the address
    /// cannot be bound, [`IdpError::KeyGeneration`] if the first key cannot be made.
    pub async fn start(self) -> Result<MockIdp, IdpError> {
        let clients = if self.clients.is_empty() {
            vec![Client::demo()]
        } else {
            self.clients
        };
        for client in &clients {
            client.validate()?;
        }
        for name in self.tenants.keys() {
            validate_tenant(name)?;
        }
        let listener = TcpListener::bind(self.bind).await?;
        let addr = listener.local_addr()?;
        let base_url = self.public_url.unwrap_or_else(|| {
            if addr.ip().is_unspecified() {
                format!("http://localhost:{}", addr.port())
            } else {
                format!("http://{addr}")
            }
        });
        let shared = Arc::new(Shared {
            base_url,
            clock: self.clock,
            supply: self.supply,
            clients: ClientRegistry::new(clients),
            defaults: self.defaults,
            tenant_settings: self.tenants,
            issuers: RwLock::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
            max_tenants: self.max_tenants,
            admin: self.admin,
        });
        let root = shared.issuer(None).await?;
        let app = routes::router(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                tracing::error!(%error, "mock IdP server stopped");
            }
        });
        tracing::info!(issuer = %root.url, "mock IdP listening");
        Ok(MockIdp {
            root: IssuerHandle {
                shared: Arc::clone(&shared),
                issuer: root,
            },
            shared,
            addr,
            stop: Some(stop),
            task,
        })
    }
}

/// A running mock IdP. Dropping it stops the server; tests never leak a listener.
#[derive(Debug)]
pub struct MockIdp {
    shared: Arc<Shared>,
    root: IssuerHandle,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl MockIdp {
    /// A builder with the defaults of [`MockIdpBuilder`].
    pub fn builder() -> MockIdpBuilder {
        MockIdpBuilder::default()
    }

    /// The root issuer's identifier, e.g. `http://127.0.0.1:9400`.
    pub fn url(&self) -> &str {
        self.root.url()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The root issuer.
    pub fn issuer(&self) -> &IssuerHandle {
        &self.root
    }

    /// The issuer at `/{name}`, created on first use with its own keys.
    ///
    /// # Errors
    /// [`IdpError::InvalidTenant`], [`IdpError::TooManyTenants`], or a key generation failure.
    pub async fn tenant(&self, name: &str) -> Result<IssuerHandle, IdpError> {
        let issuer = self.shared.issuer(Some(name)).await?;
        Ok(IssuerHandle {
            shared: Arc::clone(&self.shared),
            issuer,
        })
    }

    /// The clock tokens and key rotation read; move it to test expiry and grace periods.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// The registered clients (the demo client when none was given).
    pub fn clients(&self) -> &[Client] {
        self.shared.clients.all()
    }

    /// Whether the admin test API is served.
    pub fn admin_enabled(&self) -> bool {
        self.shared.admin
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// What every route reads: configuration and the issuers created so far.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Scheme, host and port of every issuer URL, no trailing slash.
    pub(crate) base_url: String,
    pub(crate) clock: Clock,
    pub(crate) supply: KeySupply,
    pub(crate) clients: ClientRegistry,
    pub(crate) admin: bool,
    defaults: IssuerSettings,
    tenant_settings: HashMap<String, IssuerSettings>,
    /// Keyed by tenant name; the root issuer is `""`.
    issuers: RwLock<HashMap<String, Arc<Issuer>>>,
    creating: tokio::sync::Mutex<()>,
    max_tenants: usize,
}

impl Shared {
    /// The issuer for `tenant` (`None`: the root issuer), created with fresh keys on first use.
    pub(crate) async fn issuer(&self, tenant: Option<&str>) -> Result<Arc<Issuer>, IdpError> {
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
        if self.read_issuers().len() > self.max_tenants {
            return Err(IdpError::TooManyTenants(self.max_tenants));
        }
        let settings = self
            .tenant_settings
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone());
        let key = self.supply.obtain(settings.algorithm.family()).await?;
        let url = if name.is_empty() {
            self.base_url.clone()
        } else {
            format!("{}/{name}", self.base_url)
        };
        let issuer = Arc::new(Issuer::new(url, settings, key, self.clock.now()));
        self.issuers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&issuer));
        Ok(issuer)
    }

    fn lookup(&self, name: &str) -> Option<Arc<Issuer>> {
        self.read_issuers().get(name).cloned()
    }

    fn read_issuers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Issuer>>> {
        // Inserting one entry cannot leave the map inconsistent, so a poisoned lock is usable.
        self.issuers.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A tenant is one path segment: 1-64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit,
/// and not a name the IdP's own routes use.
fn validate_tenant(name: &str) -> Result<(), IdpError> {
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
