//! The running IdP: [`MockIdpBuilder`] configures it, [`MockIdp`] is the handle that owns the
//! listening task (dropping it stops the server). The builder makes the issuers and the client
//! registry and hands them down to the routes; nothing below reaches back up.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clients::{AddressPolicy, Client, ClientRegistry};
use crate::clock::Clock;
use crate::error::IdpError;
use crate::issuer::{IssuerHandle, IssuerSettings};
use crate::issuers::{Issuers, IssuersConfig, validate_tenant};
use crate::keys::{Algorithm, KeySupply};
use crate::routes::{self, AdminToken, Guard, IdpState, SignIn};
use crate::users::{User, Users};

/// Configures a mock IdP. Defaults: `127.0.0.1` on a random port, the demo client, the demo users
/// (alice, bob) signing in through the login page, RS256, `at+jwt`, the system clock, admin
/// endpoints off (and without a token when on), at most 64 tenants, client metadata documents on
/// loopback only when listening on loopback.
#[derive(Debug)]
pub struct MockIdpBuilder {
    bind: SocketAddr,
    public_url: Option<String>,
    clients: Vec<Client>,
    users: Vec<User>,
    auto_login: Option<String>,
    resources: Vec<String>,
    scopes: Vec<String>,
    defaults: IssuerSettings,
    tenants: HashMap<String, IssuerSettings>,
    supply: KeySupply,
    clock: Clock,
    admin: bool,
    admin_token: Option<AdminToken>,
    loopback_documents: Option<bool>,
    max_tenants: usize,
}

impl Default for MockIdpBuilder {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            public_url: None,
            clients: Vec::new(),
            users: Vec::new(),
            auto_login: None,
            resources: Vec::new(),
            scopes: Vec::new(),
            defaults: IssuerSettings::default(),
            tenants: HashMap::new(),
            supply: KeySupply::default(),
            clock: Clock::system(),
            admin: false,
            admin_token: None,
            loopback_documents: None,
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

    /// Adds a user who can sign in (the demo users are used only when none is added).
    pub fn user(mut self, user: User) -> Self {
        self.users.push(user);
        self
    }

    /// Signs this user in at once, without the login page: for headless tests and scripted
    /// clients. The login page is shown when this is unset.
    pub fn auto_login(mut self, username: impl Into<String>) -> Self {
        self.auto_login = Some(username.into());
        self
    }

    /// A resource (RFC 8707) that clients without their own list (registered and metadata-document
    /// clients) may request. The configured clients' resources are always included.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// A scope that clients without their own list may request. The configured clients' scopes and
    /// `openid`, `profile`, `email`, `offline_access` are always included.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
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

    /// Requires `Authorization: Bearer <token>` on every admin request (compared in constant
    /// time). Off by default, so tests and scripts on the same machine need nothing; the admin
    /// API refuses requests from web pages (an `Origin`) and for other hosts either way.
    pub fn admin_token(mut self, token: impl AsRef<str>) -> Self {
        self.admin_token = Some(AdminToken::new(token.as_ref()));
        self
    }

    /// Whether client ID metadata documents may be fetched from loopback addresses (a local
    /// client serves its document there). Default: only when the IdP itself listens on
    /// loopback. Private, link-local and other non-global addresses are never fetched from.
    pub fn loopback_client_documents(mut self, allowed: bool) -> Self {
        self.loopback_documents = Some(allowed);
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
    /// [`IdpError::InvalidClient`] or [`IdpError::InvalidTenant`] for a bad client or tenant,
    /// [`IdpError::EmptyAdminToken`] for an empty admin token,
    /// [`IdpError::Io`] if the address
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
        if self.admin_token.as_ref().is_some_and(AdminToken::is_empty) {
            return Err(IdpError::EmptyAdminToken);
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
        let issuers = Arc::new(Issuers::new(IssuersConfig {
            base_url,
            clock: self.clock,
            supply: self.supply,
            defaults: self.defaults,
            tenant_settings: self.tenants,
            max_tenants: self.max_tenants,
        }));
        let users = if self.users.is_empty() {
            User::demo()
        } else {
            self.users
        };
        if let Some(name) = &self.auto_login
            && !users.iter().any(|u| u.username == *name)
        {
            return Err(IdpError::UnknownUser(name.clone()));
        }
        let sign_in = Arc::new(SignIn {
            scopes: union(
                self.scopes,
                clients
                    .iter()
                    .flat_map(|c| c.scopes.iter().cloned())
                    .chain(STANDARD_SCOPES.map(str::to_owned)),
            ),
            resources: union(
                self.resources,
                clients.iter().flat_map(|c| c.resources.iter().cloned()),
            ),
            users: Users::new(users),
            auto_login: self.auto_login,
        });
        let loopback = addr.ip().is_loopback();
        let clients = Arc::new(ClientRegistry::new(
            clients,
            AddressPolicy {
                loopback: self.loopback_documents.unwrap_or(loopback),
            },
        ));
        let root = issuers.get(None).await?;
        let guard = Guard::new(addr.port(), loopback, &root.url, self.admin_token);
        let app = routes::router(IdpState {
            issuers: Arc::clone(&issuers),
            clients: Arc::clone(&clients),
            sign_in: Arc::clone(&sign_in),
            admin: self.admin,
            guard: Arc::new(guard),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    "mock IdP server stopped"
                );
            }
        });
        tracing::info!(issuer = %root.url, "mock IdP listening");
        Ok(MockIdp {
            root: IssuerHandle { issuer: root },
            issuers,
            clients,
            sign_in,
            admin: self.admin,
            addr,
            stop: Some(stop),
            task,
        })
    }
}

/// A running mock IdP. Dropping it stops the server; tests never leak a listener.
#[derive(Debug)]
pub struct MockIdp {
    issuers: Arc<Issuers>,
    clients: Arc<ClientRegistry>,
    sign_in: Arc<SignIn>,
    admin: bool,
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
        let issuer = self.issuers.get(Some(name)).await?;
        Ok(IssuerHandle { issuer })
    }

    /// The clock tokens and key rotation read; move it to test expiry and grace periods.
    pub fn clock(&self) -> &Clock {
        self.issuers.clock()
    }

    /// The registered clients (the demo client when none was given).
    pub fn clients(&self) -> &[Client] {
        self.clients.all()
    }

    /// The users who can sign in.
    pub fn users(&self) -> &[User] {
        self.sign_in.users.all()
    }

    /// Whether the admin test API is served.
    pub fn admin_enabled(&self) -> bool {
        self.admin
    }

    /// How many client ID metadata document requests were sent (refusals by address, scheme or
    /// cooldown send none): for tests that prove a refused document cost no request.
    pub fn client_document_fetches(&self) -> u64 {
        self.clients.document_fetches()
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

/// `first` followed by whatever of `more` it lacks, in order.
fn union(mut first: Vec<String>, more: impl IntoIterator<Item = String>) -> Vec<String> {
    for item in more {
        if !first.contains(&item) {
            first.push(item);
        }
    }
    first
}

/// The OpenID Connect scopes every client may request.
const STANDARD_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
