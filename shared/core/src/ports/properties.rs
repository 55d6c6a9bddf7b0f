//! Property configurations, the change notices received about them, and the prospects' personal data.

use super::StoreError;
use crate::domain::ResManPropertyId;
use async_trait::async_trait;

/// Property configurations, as loaded by operators.
#[async_trait]
pub trait PropertyStore: Send + Sync {
    async fn property(&self, id: &ResManPropertyId) -> Result<Option<crate::domain::property::Property>, StoreError>;
    async fn properties(&self) -> Result<Vec<crate::domain::property::Property>, StoreError>;
    async fn save_property(&self, property: &crate::domain::property::Property) -> Result<(), StoreError>;
}

/// Whether a notice was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    AlreadySeen,
}

/// The log of change notices from ResMan, one entry per `event_id` (a conditional write keeps it so), kept a week.
#[async_trait]
pub trait NoticeInbox: Send + Sync {
    async fn record_once(
        &self,
        notice: &crate::domain::notice::ChangeNotice,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Recorded, StoreError>;
}

/// Prospects' personal data, kept apart from their tours.
#[async_trait]
pub trait PersonalData: Send + Sync {
    /// Removes the personal data (name, e-mail, phone, what they asked for) of every tour booked with `email`, at
    /// once; the tours stay. The tours it was removed from.
    async fn erase_prospect(&self, email: &crate::domain::Email) -> Result<Vec<crate::domain::BookingId>, StoreError>;
}
