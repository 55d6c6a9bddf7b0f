//! Types and rules. No I/O, no clock: time is passed in.

/// A type that holds a checked `String` goes to and from serde's `String` through its `parse`, so that no value
/// read from JSON or a stored item skips the check: `#[serde(try_from = "String", into = "String")]` on the type.
macro_rules! checked_string {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = $crate::domain::InvalidField;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

pub mod access;
pub mod analytics;
pub mod booking;
pub mod calendar;
pub mod consent;
pub mod contact;
pub mod digest;
pub mod email;
pub mod fields;
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
pub mod record;
pub mod resman;
pub mod rollup;
pub mod rotation;
pub mod signature;
pub mod slots;
pub mod texts;
pub mod time;
pub mod tour;
pub mod update;

pub use contact::{Email, PersonName, Phone};
pub use ids::{
    AgentId, AppointmentId, BookingId, ConversationId, HoldToken, ProspectId, ProspectSourceId, ResManPropertyId,
};
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
