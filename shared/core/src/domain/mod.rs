//! Types and rules. No I/O, no clock: time is passed in.

pub mod access;
pub mod analytics;
pub mod booking;
pub mod calendar;
pub mod contact;
pub mod digest;
pub mod email;
pub mod hold;
pub mod ids;
pub mod lifecycle;
pub mod limits;
pub mod link;
pub mod notice;
pub mod notify;
pub mod property;
pub mod rate;
pub mod reconcile;
pub mod resman;
pub mod rotation;
pub mod signature;
pub mod slots;
pub mod time;
pub mod tour;
pub mod update;

pub use contact::{Email, PersonName, Phone};
pub use ids::{AgentId, AppointmentId, HoldToken, ProspectId, ProspectSourceId, ResManPropertyId};
pub use time::UtcWindow;
pub use tour::TourType;

/// Why a value could not be accepted: which field, and why, in words a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
