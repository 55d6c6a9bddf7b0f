//! The running sandbox's shared state: one mutex over everything that changes.
//!
//! A std mutex is enough because no handler holds it across an `.await`; every handler locks, reads or
//! writes, and lets go before it sleeps, answers or sends.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use crate::Credentials;
use crate::faults::Faults;
use crate::store::Store;
use crate::webhook::{Delivery, WebhookTarget};

/// Oldest entries of the request log and the delivery log are dropped past this, so a sandbox left
/// running for days in a dev stack does not grow without bound.
const LOG_CAPACITY: usize = 10_000;

/// One request received on the ResMan surface. Never the ApiKey or the Xml body.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestRecord {
    pub at: String,
    /// When it arrived, in epoch milliseconds (for measuring request rates).
    pub at_ms: i64,
    pub area: String,
    pub method: String,
    pub property_id: Option<String>,
    /// The `AccountID` the call carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<i64>,
    pub http_status: u16,
    pub fault: Option<&'static str>,
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_ids: Option<Vec<Uuid>>,
}

pub(crate) struct State {
    /// Every account's key, the sandbox's own included.
    pub accounts: std::collections::BTreeMap<i64, String>,
    pub store: Store,
    pub faults: Faults,
    pub requests: VecDeque<RequestRecord>,
    pub webhook: Option<WebhookTarget>,
    pub deliveries: VecDeque<Delivery>,
}

impl State {
    pub(crate) fn record_request(&mut self, record: RequestRecord) {
        push_capped(&mut self.requests, record);
    }

    pub(crate) fn record_delivery(&mut self, delivery: Delivery) {
        push_capped(&mut self.deliveries, delivery);
    }

    /// Back to the seed; the webhook target is configuration, not state, so it stays.
    pub(crate) fn reset(&mut self) {
        self.store.reset();
        self.faults = Faults::default();
        self.requests.clear();
        self.deliveries.clear();
    }
}

fn push_capped<T>(log: &mut VecDeque<T>, item: T) {
    if log.len() >= LOG_CAPACITY {
        log.pop_front();
    }
    log.push_back(item);
}

pub(crate) struct App {
    pub credentials: Credentials,
    pub hang_duration: Duration,
    pub http: reqwest::Client,
    shutdown: watch::Receiver<bool>,
    state: Mutex<State>,
}

impl App {
    pub(crate) fn new(
        credentials: Credentials,
        hang_duration: Duration,
        http: reqwest::Client,
        shutdown: watch::Receiver<bool>,
        state: State,
    ) -> Self {
        Self {
            credentials,
            hang_duration,
            http,
            shutdown,
            state: Mutex::new(state),
        }
    }

    /// A panic in one handler must not make the sandbox useless for the rest of a test run, and every
    /// write leaves the state consistent before anything can panic, so a poisoned lock is still usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration`, or less if the sandbox is shutting down (a hang fault must not hold up
    /// a graceful shutdown for a minute).
    pub(crate) async fn sleep(&self, duration: Duration) {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => {}
        }
    }
}
