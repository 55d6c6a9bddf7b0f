//! Requests seen under an idempotency key, and the answers their retries get.

use super::StoreError;
use crate::domain::slots::SlotView;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A request already seen under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub booking_id: Option<crate::domain::BookingId>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// What the first request came to, once it finished.
    pub response: Option<SavedOutcome>,
    /// When the record lapses. From then on the key is free, whenever TTL gets round to deleting it.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl IdempotencyRecord {
    /// Whether the record still stands at `now` (TTL deletes an expired item late, sometimes by a day).
    pub fn is_live(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// What a request came to: a retry with the same key is told it again. The use case decides the outcome; the edge
/// picks the HTTP status for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedOutcome {
    /// Done: `body` is the JSON the caller got (the booking, or the tour's view).
    Done { outcome: Outcome, body: String },
    /// Refused for good: a retry is refused the same way.
    Refused(Refusal),
}

/// How a request that was done came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A booking ResMan has.
    Booked,
    /// A booking that stands while ResMan is owed it.
    Pending,
    /// A change of a tour.
    Updated,
}

impl Outcome {
    pub const ALL: [Self; 3] = [Self::Booked, Self::Pending, Self::Updated];

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Pending => "pending",
            Self::Updated => "updated",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// Why a booking was refused for good, as a retry with the same key hears it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The time was taken (ResMan said so); the nearest free times then.
    SlotTaken { alternatives: Vec<SlotView> },
    /// ResMan refused the booking, saying why.
    ResManRejected { description: String },
}

/// The answer a retry with the same idempotency key gets, saved with the change it answers.
#[derive(Debug, Clone)]
pub struct SavedAnswer {
    pub key: String,
    pub fingerprint: String,
    pub outcome: SavedOutcome,
}

/// Idempotency records: a request seen under a key, and the answer a retry with that key gets.
#[async_trait]
pub trait Idempotency: Send + Sync {
    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Saves the answer a retry with the same key will get.
    async fn finish_idempotency(&self, key: &str, outcome: &SavedOutcome) -> Result<(), StoreError>;
}
