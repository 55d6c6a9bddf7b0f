//! ResMan, in our domain's terms, and the pacing of the calls made to it.

use super::StoreError;
use crate::domain::resman::{
    Employee, NotePost, PostedTour, Prospect, ProspectLookup, ProspectSource, ProspectTourPost, ResManSite,
};
use crate::domain::{AppointmentId, UtcWindow};
use async_trait::async_trait;
use std::time::Duration;

/// Why a ResMan call failed, classed so a caller can decide what to do next.
///
/// - `Rejected` is ResMan's own refusal (`Status=Error`): final, not retried; nothing was written.
/// - `Unreachable` means the request never reached ResMan (connection refused, DNS): retry; nothing was written.
/// - `Timeout`, `Server` (HTTP 5xx) and `Malformed` (an answer we cannot read, such as a proxy's HTML page) are
///   retryable, and after a **write** they mean "unknown whether it happened", never "it did not happen":
///   ResMan may have applied the write and lost the answer. See [`ResManError::may_have_applied`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResManError {
    #[error("ResMan refused the request: {description}")]
    Rejected { description: String },
    #[error("ResMan could not be reached: {0}")]
    Unreachable(String),
    #[error("ResMan did not answer within {0:?}")]
    Timeout(Duration),
    #[error("ResMan answered HTTP {status}")]
    Server { status: u16 },
    #[error("ResMan's answer could not be read: {0}")]
    Malformed(String),
}

impl ResManError {
    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// The class the operators' metrics count it under (`ErrorClass`).
    pub fn class(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "rejected",
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Server { .. } => "server",
            Self::Malformed(_) => "malformed",
        }
    }

    /// After a write: whether ResMan may have applied it despite the error.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Server { .. } | Self::Malformed(_))
    }
}

/// ResMan, in our domain's terms. One implementation talks HTTP to ResMan (or its sandbox).
///
/// Writes are **not idempotent** in ResMan: callers search before they create, and after a write that
/// [`ResManError::may_have_applied`], they look for their booking reference before posting again.
#[async_trait]
pub trait ResManGateway: Send + Sync {
    /// Every call names its [`ResManSite`]: the property and its account, whose credentials the call carries (and
    /// no other account's).
    ///
    /// The property's employees; leasing agents are those with `is_leasing`.
    async fn employees(&self, site: &ResManSite) -> Result<Vec<Employee>, ResManError>;

    /// The property's lead sources.
    async fn prospect_sources(&self, site: &ResManSite) -> Result<Vec<ProspectSource>, ResManError>;

    /// Prospects matching an e-mail, phone or id, with all their events.
    async fn find_prospects(&self, site: &ResManSite, lookup: &ProspectLookup) -> Result<Vec<Prospect>, ResManError>;

    /// Creates a prospect (or adds to an existing one) with one tour event; a tour event with an id moves or
    /// re-statuses that tour. The tour's start is sent in UTC.
    async fn post_tour(&self, site: &ResManSite, post: &ProspectTourPost) -> Result<PostedTour, ResManError>;

    /// Adds a note (an `Other` event) to a prospect.
    async fn add_note(&self, site: &ResManSite, note: &NotePost) -> Result<AppointmentId, ResManError>;

    /// Every prospect modified inside the window, with all its events. A window ResMan finds too wide is split
    /// and the halves read in turn, so the caller sees one answer for the whole window.
    async fn changed_prospects(&self, site: &ResManSite, window: UtcWindow) -> Result<Vec<Prospect>, ResManError>;
}

/// Asked by the ResMan adapter before each HTTP request: returns when the request may go (pacing), or why it may
/// not (then nothing is sent).
#[async_trait]
pub trait CallPacer: Send + Sync {
    async fn before_call(&self, site: &crate::domain::resman::ResManSite) -> Result<(), ResManError>;
}

/// Per-account pacing of ResMan calls: one schedule per account, shared by every worker (it is in the store, so
/// concurrent workers on many Lambda instances reserve from the same schedule).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Reserves the next free moment of `key`'s schedule for a request asked for at `now`: how long to wait before
    /// sending it (zero when it may go at once).
    async fn reserve(
        &self,
        key: &str,
        rate: crate::domain::rate::Rate,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<chrono::Duration, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_is_final_and_only_lost_answers_may_have_applied() {
        let refused = ResManError::Rejected {
            description: "no".into(),
        };
        let unreachable = ResManError::Unreachable("refused".into());
        let timeout = ResManError::Timeout(Duration::from_secs(1));
        let server = ResManError::Server { status: 503 };
        let malformed = ResManError::Malformed("html".into());
        assert!(!refused.is_retryable() && !refused.may_have_applied());
        assert!(unreachable.is_retryable() && !unreachable.may_have_applied());
        for lost in [timeout, server, malformed] {
            assert!(lost.is_retryable() && lost.may_have_applied(), "{lost}");
        }
    }
}
