//! Use cases: one async function per thing a user does, taking its ports as arguments and `now` as a value.

pub mod analytics;
pub mod availability;
pub mod booking;
pub mod budget;
pub mod changes;
pub mod digest;
pub mod holds;
pub mod lifecycle;
pub mod notify;
pub mod pacing;
pub mod privacy;
pub mod reach;
pub mod replies;
pub mod rollups;
pub mod self_service;
pub mod sync;
pub mod webhook;

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;

use crate::domain::InvalidField;
use crate::domain::signature::SignatureError;
use crate::ports::{ResManError, StoreError};
use availability::SlotView;

/// What a change of a tour reads and writes, whoever makes it (the chatbot, a prospect's link, or ResMan's change
/// feed): the property, its calendar (locks and busy time), the tour, and the outbox's queue for what the change owes.
#[derive(Clone, Copy)]
pub struct ChangeDeps<'a> {
    pub properties: &'a dyn crate::ports::PropertyStore,
    pub calendar: &'a dyn crate::ports::CalendarStore,
    pub tours: &'a dyn crate::ports::TourStore,
    pub queue: &'a dyn crate::ports::SyncQueue,
}

impl<'a> ChangeDeps<'a> {
    /// Over one store that keeps properties, calendars and tours (the table), and the outbox's queue.
    pub fn over<S>(store: &'a S, queue: &'a dyn crate::ports::SyncQueue) -> Self
    where
        S: crate::ports::PropertyStore + crate::ports::CalendarStore + crate::ports::TourStore,
    {
        Self {
            properties: store,
            calendar: store,
            tours: store,
            queue,
        }
    }
}

/// Every way a use case can fail. The edge maps each to an HTTP status and JSON body, once (`tour_edge::http::response`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid request: {0}")]
    Invalid(#[from] InvalidField),
    #[error("not found: {0}")]
    NotFound(InvalidField),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("unauthenticated: {0}")]
    BadSignature(#[from] SignatureError),
    /// Authenticated, but outside what the credential may touch.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("the slot was taken")]
    SlotTaken {
        alternatives: Vec<SlotView>,
        /// The field that asked for the time.
        field: &'static str,
    },
    #[error("{change}")]
    Illegal {
        change: crate::domain::lifecycle::IllegalChange,
        /// The field that asked for the change.
        field: &'static str,
    },
    #[error("the idempotency key was used for a different request")]
    KeyReused,
    /// A self-service link that does not (or no longer) allow what it was used for.
    #[error("{0}")]
    Link(crate::domain::link::LinkProblem),
    /// The calling key already keeps `bound` live holds at the property in that hour.
    #[error("too many holds")]
    TooManyHolds { bound: u8, retry_after: u32 },
    #[error("a request with this idempotency key is still in progress")]
    InProgress,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    ResMan(#[from] ResManError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::ports::Refusal> for AppError {
    /// A refusal saved under an idempotency key, as its retry hears it again.
    fn from(refusal: crate::ports::Refusal) -> Self {
        match refusal {
            crate::ports::Refusal::SlotTaken { alternatives } => Self::SlotTaken {
                alternatives,
                field: "tour_data.preferred_time",
            },
            crate::ports::Refusal::ResManRejected { description } => {
                Self::ResMan(ResManError::Rejected { description })
            }
        }
    }
}
