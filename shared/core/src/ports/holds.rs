//! Slot holds across chat turns.

use super::StoreError;
use async_trait::async_trait;

/// What placing a slot hold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldWrite {
    Placed,
    /// A lock of the slot is held by a tour or by another conversation's live hold.
    SlotTaken,
    /// The conversation's hold, or the place chosen for the new one, changed since it was read (another request of
    /// the conversation or of the key): read them again.
    Raced,
}

/// Slot holds across chat turns.
#[async_trait]
pub trait HoldStore: Send + Sync {
    /// The conversation's slot hold (live or lapsed), if it placed one.
    async fn hold(
        &self,
        conversation: &crate::domain::ConversationId,
    ) -> Result<Option<crate::domain::hold::SlotHold>, StoreError>;

    /// The places taken among `key`'s holds at `property` in `hour` (see `domain::hold::HoldPlace`), lapsed or not.
    async fn places(
        &self,
        property: &crate::domain::ResManPropertyId,
        key: &str,
        hour: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::domain::hold::PlaceTaken>, StoreError>;

    /// Places `hold` in one transaction: the conversation's hold item, the slot's locks (taken only where free or
    /// held by a lapsed hold), its place among its key's (taken only where free, lapsed or `previous`'s), its busy
    /// time and the bumps of its dates' availability generations. `previous` is the conversation's hold as read: the
    /// new one replaces it, and what it held is freed. A place taken meanwhile is `Raced`.
    async fn place_hold(
        &self,
        property: &crate::domain::property::Property,
        hold: &crate::domain::hold::SlotHold,
        previous: Option<&crate::domain::hold::SlotHold>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<HoldWrite, StoreError>;
}
