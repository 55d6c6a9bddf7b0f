//! What is owed beyond a tour's own transaction: the outbox of ResMan writes, and the queues that carry them, its
//! messages and the properties to poll.

use super::StoreError;
use async_trait::async_trait;

/// The outbox of owed ResMan writes (an item per tour whose ResMan side is behind), as the schedule tick reads it.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// When the oldest ResMan write still owed (the outbox) became owed; `None` when none is.
    async fn oldest_owed_sync(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;

    /// Claims the bookings whose ResMan write is still owed and was last queued before `before` (the outbox):
    /// each claimed item is stamped `now`, so it is claimed again only after another full period.
    async fn claim_owed_syncs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::domain::BookingId>, StoreError>;
}

/// The outbox's queues: the tour's ResMan write and callback (the sync queue), and its messages (the notification
/// queue).
#[async_trait]
pub trait SyncQueue: Send + Sync {
    async fn enqueue(&self, booking: &crate::domain::BookingId) -> Result<(), StoreError>;

    /// Queues messages for the notification sender, one queue message each.
    async fn enqueue_messages(&self, messages: &[crate::domain::notify::MessageRef]) -> Result<(), StoreError>;
}

/// The change poller's fan-out queue: one message per property to poll.
#[async_trait]
pub trait PollQueue: Send + Sync {
    async fn enqueue_polls(&self, properties: &[crate::domain::ResManPropertyId]) -> Result<(), StoreError>;
}

/// A queue message as its consumer's use case sees it (no AWS types).
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: String,
    pub body: String,
    pub receive_count: u32,
}

/// A message to leave on the queue, and how long it stays out of sight before the next try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub id: String,
    pub retry_in_seconds: u32,
}
