//! ResMan sandbox: a stand-in for ResMan's partner API, for development and tests only.
//!
//! It speaks sections 3 and 4 of `resman-api.md` from the contract alone (it shares no code with the
//! `shared` crate, so that a misreading of the contract shows up as a failing test instead of being
//! copied to both sides), keeps an in-memory calendar that refuses double-booking an agent, and adds a
//! `/_sandbox/` control surface for faults, staff actions, webhooks and inspection.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sandbox = resman_sandbox::start(
//!     resman_sandbox::SandboxConfig::demo(),
//!     "127.0.0.1:0".parse().expect("address"),
//! )
//! .await?;
//! let base = sandbox.base_url(); // e.g. http://127.0.0.1:38291
//! # let _ = base;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod app;
mod control;
mod envelope;
mod faults;
mod mits;
mod resman;
mod seed;
mod store;
mod webhook;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use seed::{EmployeeSeed, OfficeHours, PropertySeed, ProspectSourceSeed, SeedError};
pub use webhook::{WebhookTarget, sign_webhook};

use crate::app::{App, State};
use crate::faults::Faults;
use crate::store::Store;

/// How long a `hang` fault holds a request unless configured otherwise: past the 30 s client timeout
/// public ResMan clients use.
pub const DEFAULT_HANG_DURATION: Duration = Duration::from_secs(60);

/// How long the sandbox waits for a webhook receiver.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// What callers must present on every ResMan call.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub integration_partner_id: String,
    pub api_key: String,
    pub account_id: i64,
}

impl Credentials {
    /// `domiq-sandbox` / `sandbox-api-key` / `400`.
    pub fn demo() -> Self {
        Self {
            integration_partner_id: "domiq-sandbox".to_owned(),
            api_key: "sandbox-api-key".to_owned(),
            account_id: 400,
        }
    }
}

/// The ApiKey stays out of logs and panics.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("integration_partner_id", &self.integration_partner_id)
            .field("api_key", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// Another ResMan account (a management company) and the key our integration holds for it. The integration
/// partner id is the sandbox's one for every account, as in ResMan.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct AccountSeed {
    pub account_id: i64,
    pub api_key: String,
}

impl std::fmt::Debug for AccountSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSeed")
            .field("account_id", &self.account_id)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// Everything a sandbox starts from.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// What callers must present: the partner id, and the key of the sandbox's own account. Properties without an
    /// `account_id` belong to that account.
    pub credentials: Credentials,
    /// Further accounts, each with its own key.
    pub accounts: Vec<AccountSeed>,
    /// Seed data; validated again by [`start`].
    pub properties: Vec<PropertySeed>,
    /// Where staff changes are pushed; can also be set at run time with `POST /_sandbox/webhook`.
    pub webhook: Option<WebhookTarget>,
    /// How long a `hang` fault sleeps before answering 504.
    pub hang_duration: Duration,
}

impl SandboxConfig {
    /// Demo credentials and the seed embedded from `seed.json`.
    pub fn demo() -> Self {
        // The embedded seed is a compile-time constant covered by a unit test, so failing here is a
        // build defect, not a run-time condition a caller could handle.
        let properties =
            seed::parse_properties(seed::EMBEDDED_SEED, "embedded seed.json").expect("the embedded seed.json is valid");
        Self {
            credentials: Credentials::demo(),
            accounts: Vec::new(),
            properties,
            webhook: None,
            hang_duration: DEFAULT_HANG_DURATION,
        }
    }

    /// Adds the properties of a JSON file (an array of properties, the shape of `seed.json`), checking
    /// them together with those already configured.
    pub fn load_properties(&mut self, path: &Path) -> Result<(), SeedError> {
        let mut properties = self.properties.clone();
        properties.extend(seed::read_properties(path)?);
        seed::validate(&properties)?;
        self.properties = properties;
        Ok(())
    }
}

/// A sandbox serving on `addr` until [`RunningSandbox::shutdown`] (or until the runtime ends).
#[derive(Debug)]
pub struct RunningSandbox {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl RunningSandbox {
    /// `http://127.0.0.1:PORT` (a wildcard bind address is reported as loopback, which is what a
    /// client on the same machine must dial).
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Stops accepting, cuts short any hang or latency in progress and waits for open requests.
    pub async fn shutdown(self) {
        // Only fails when the server task has already ended, which is the goal anyway.
        let _ = self.shutdown.send(true);
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "sandbox server task ended abnormally");
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves the sandbox in a background task.
pub async fn start(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<RunningSandbox> {
    seed::validate(&config.properties).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let http = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .build()
        .map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stopping) = watch::channel(false);
    let mut keys =
        std::collections::BTreeMap::from([(config.credentials.account_id, config.credentials.api_key.clone())]);
    keys.extend(config.accounts.iter().map(|a| (a.account_id, a.api_key.clone())));
    let state = State {
        accounts: keys,
        store: Store::new(config.properties),
        faults: Faults::default(),
        requests: VecDeque::new(),
        webhook: config.webhook,
        deliveries: VecDeque::new(),
    };
    let app = Arc::new(App::new(
        config.credentials,
        config.hang_duration,
        http,
        stopping.clone(),
        state,
    ));
    let router = Router::new()
        .merge(control::routes())
        .route("/{area}/{method}", post(resman::handle))
        .fallback(resman::unknown_path)
        .with_state(app);
    let mut stopping = stopping;
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                // An error means the sender is gone, which also means stop.
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "sandbox server failed");
        }
    });
    tracing::info!(%addr, "ResMan sandbox listening");
    Ok(RunningSandbox { addr, shutdown, server })
}
