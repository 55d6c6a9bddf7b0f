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
pub mod self_service;
pub mod sync;
pub mod webhook;

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;

use crate::domain::InvalidField;
use crate::domain::signature::SignatureError;
use crate::ports::{ResManError, StoreError};
use availability::SlotView;
use serde_json::json;

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

/// Every way a use case can fail. [`ErrorBody::of`] is the one mapping to an HTTP status and JSON body.
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

/// An error as the caller sees it: status, `{"error": {...}}` body, and a `Retry-After` in seconds when useful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody(pub u16, pub String, pub Option<u32>);

impl ErrorBody {
    pub fn of(err: &AppError) -> Self {
        let (status, code, message, field, retry) = match err {
            AppError::Invalid(f) => (400, "invalid_request", f.to_string(), Some(f.field), None),
            AppError::NotFound(f) => (404, "not_found", f.to_string(), Some(f.field), None),
            AppError::TooLarge(limit) => (
                413,
                "body_too_large",
                format!("the body must be at most {limit} bytes"),
                Some("body"),
                None,
            ),
            AppError::BadSignature(why) => (401, "unauthorized", why.to_string(), None, None),
            AppError::Forbidden(why) => (403, "forbidden", (*why).to_owned(), None, None),
            AppError::SlotTaken { field, .. } => (
                409,
                "slot_taken",
                "that time was just taken; here are the nearest free times".to_owned(),
                Some(*field),
                None,
            ),
            AppError::Illegal { change, field } => (409, "illegal_transition", change.to_string(), Some(*field), None),
            AppError::Link(problem) => (
                if *problem == crate::domain::link::LinkProblem::Forged {
                    403
                } else {
                    410
                },
                "link_refused",
                problem.to_string(),
                Some("t"),
                None,
            ),
            AppError::KeyReused => (
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request".to_owned(),
                Some("Idempotency-Key"),
                None,
            ),
            AppError::TooManyHolds { bound, retry_after } => (
                429,
                "too_many_holds",
                format!(
                    "this key already holds {bound} times in that hour at this property; a place frees in \
                     {retry_after} s, or book without a hold"
                ),
                None,
                Some(*retry_after),
            ),
            AppError::InProgress => (
                409,
                "request_in_progress",
                "the first request with this Idempotency-Key is still being processed; retry shortly".to_owned(),
                None,
                Some(2),
            ),
            AppError::Store(_) => (
                503,
                "temporarily_unavailable",
                "please try again shortly".to_owned(),
                None,
                Some(2),
            ),
            AppError::ResMan(ResManError::Rejected { description }) => (
                422,
                "resman_refused",
                format!("ResMan refused it: {description}"),
                None,
                None,
            ),
            AppError::ResMan(_) => (
                503,
                "resman_unavailable",
                "ResMan is not answering; please try again shortly".to_owned(),
                None,
                Some(5),
            ),
            AppError::Internal(_) => (500, "internal", "internal error".to_owned(), None, None),
        };
        let mut error = json!({ "code": code, "message": message });
        if let Some(field) = field {
            error["field"] = json!(field);
        }
        if let AppError::SlotTaken { alternatives, .. } = err {
            error["alternatives"] = json!(alternatives);
        }
        if let AppError::Illegal { change, .. } = err {
            error["current_status"] = json!(change.current);
        }
        Self(status, json!({ "error": error }).to_string(), retry)
    }
}
