//! Requests seen under an idempotency key, and the answers their retries get.

use super::StoreError;
use async_trait::async_trait;

/// A request already seen under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub booking_id: Option<crate::domain::booking::BookingId>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The saved answer (HTTP status and JSON body), once the first request finished.
    pub response: Option<(u16, String)>,
    /// When the record lapses. From then on the key is free, whenever TTL gets round to deleting it.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl IdempotencyRecord {
    /// Whether the record still stands at `now` (TTL deletes an expired item late, sometimes by a day).
    pub fn is_live(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// The answer a retry with the same idempotency key gets, saved with the change it answers.
#[derive(Debug, Clone)]
pub struct SavedAnswer {
    pub key: String,
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// Idempotency records: a request seen under a key, and the answer a retry with that key gets.
#[async_trait]
pub trait Idempotency: Send + Sync {
    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Saves the answer a retry with the same key will get.
    async fn finish_idempotency(&self, key: &str, status: u16, body: &str) -> Result<(), StoreError>;
}
