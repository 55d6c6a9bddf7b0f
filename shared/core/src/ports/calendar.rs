//! Busy time, the mirror of ResMan's calendar that feeds it, and the availability cache.

use super::StoreError;
use crate::domain::{AppointmentId, ResManPropertyId, UtcWindow};
use async_trait::async_trait;

/// What applying a mirror record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorOutcome {
    /// Busy time was added, moved or released.
    Changed,
    /// Same as what we had, or older than what we had: nothing written.
    Unchanged,
}

/// Busy time by property, and the mirror of ResMan's calendar that feeds it.
///
/// Every change of busy time also bumps the availability generation of the local dates it touches (in the same
/// transaction), which is what invalidates cached availability.
#[async_trait]
pub trait CalendarStore: Send + Sync {
    /// Busy time (tours, holds, mirrored appointments) of a property overlapping `window`. Needs only the
    /// property's id, so it can be read at the same time as the property's configuration.
    async fn busy_in(
        &self,
        property: &ResManPropertyId,
        window: UtcWindow,
    ) -> Result<Vec<crate::domain::slots::Busy>, StoreError>;

    /// The mirror record of an appointment, if we have one.
    async fn mirrored(
        &self,
        appointment: &AppointmentId,
    ) -> Result<Option<(ResManPropertyId, crate::domain::calendar::MirroredAppointment)>, StoreError>;

    /// Records an appointment as last seen in ResMan: adds, moves or releases its busy time, unless we already
    /// hold a description as new or newer.
    async fn apply_mirror(
        &self,
        property: &crate::domain::property::Property,
        appointment: &crate::domain::calendar::MirroredAppointment,
    ) -> Result<MirrorOutcome, StoreError>;

    /// Where the change poller stopped for a property.
    async fn poll_checkpoint(
        &self,
        property: &ResManPropertyId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;

    /// Moves the checkpoint from `from` (what was read) to `to`; fails if another poller moved it meanwhile.
    async fn advance_checkpoint(
        &self,
        property: &ResManPropertyId,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;
}

/// One consistent read of everything an availability answer from the cache needs.
#[derive(Debug, Clone)]
pub struct DayRead {
    /// The property's configuration, `None` for a property we do not serve.
    pub property: Option<crate::domain::property::Property>,
    /// The date's current generation: what a fresh computation must be stamped with.
    pub generation: u64,
    /// The cached answer, when it is of the current generation and not expired.
    pub fresh: Option<String>,
}

/// The availability cache (a TTL item per property, date and tour type).
#[async_trait]
pub trait AvailabilityCache: Send + Sync {
    /// The property's configuration, the date's generation and the cached answer, in one consistent read: on a
    /// cache hit this is the request's only store call.
    async fn read_day(
        &self,
        property: &ResManPropertyId,
        date: chrono::NaiveDate,
        tour_type: crate::domain::TourType,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<DayRead, StoreError>;

    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        property: &ResManPropertyId,
        date: chrono::NaiveDate,
        tour_type: crate::domain::TourType,
        generation: u64,
        body: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;

    /// Makes every cached answer for these dates stale.
    async fn invalidate(&self, property: &ResManPropertyId, dates: &[chrono::NaiveDate]) -> Result<(), StoreError>;
}
