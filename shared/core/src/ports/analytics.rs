//! What the figures read, and the ratings and digests they come with.

use super::StoreError;
use crate::domain::ResManPropertyId;
use async_trait::async_trait;

/// The records the analytics read: a property's tours by their start and by when they were booked, their ratings and
/// messages, and the refusals of taken slots, over a window of instants. Read by key (a partition per property and
/// month), never by scanning: the cost follows the property's tours in the window, not the table.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn facts(
        &self,
        property: &ResManPropertyId,
        window: crate::domain::UtcWindow,
    ) -> Result<crate::domain::analytics::Facts, StoreError>;
}

/// What recording a rating found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rated {
    Recorded,
    /// The tour was rated before: that rating stands.
    Already(crate::domain::link::Rating),
}

/// The prospects' ratings of their tours, one per tour.
#[async_trait]
pub trait RatingStore: Send + Sync {
    /// Records the tour's rating unless it has one (a condition, so two clicks at once record one).
    async fn record_rating(
        &self,
        tour: &crate::domain::record::TourRecord,
        rating: crate::domain::link::Rating,
    ) -> Result<Rated, StoreError>;
    async fn rating(
        &self,
        booking: &crate::domain::BookingId,
    ) -> Result<Option<crate::domain::link::Rating>, StoreError>;
}

/// What recording a staff rating found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffRated {
    Recorded,
    /// The booking was rated before: that rating stands.
    Already(crate::domain::link::StaffRating),
}

/// The leasing team's ratings of bookings ("was this booking useful?"), one per tour, with what went wrong.
#[async_trait]
pub trait StaffRatingStore: Send + Sync {
    /// Records the tour's staff rating unless it has one (a condition, so two clicks at once record one).
    async fn record_staff_rating(
        &self,
        tour: &crate::domain::record::TourRecord,
        rating: &crate::domain::link::StaffRating,
    ) -> Result<StaffRated, StoreError>;
    /// Records what went wrong on the tour's staff rating unless it says already (once, as the score): the rating
    /// as it then stands, `None` when the booking has no staff rating.
    async fn record_went_wrong(
        &self,
        booking: &crate::domain::BookingId,
        went_wrong: &[crate::domain::link::StaffIssue],
    ) -> Result<Option<crate::domain::link::StaffRating>, StoreError>;
}

/// What claiming a property's weekly digest found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestClaim {
    /// This tick may send it now: the how-manyth try this is.
    Claimed(u32),
    /// Sent, skipped or given up already.
    Done,
    /// Another tick holds it, or its retry is not due yet.
    Busy,
}

/// How a digest's try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestOutcome {
    Sent {
        provider_message_id: String,
    },
    /// Nothing to send (a quiet week, no staff address): never tried again.
    Skipped {
        because: String,
    },
    /// Tried again from `after`.
    Retry {
        error: String,
        after: chrono::DateTime<chrono::Utc>,
    },
    Failed {
        error: String,
    },
}

/// The weekly digests, one per property and week: a claim with a lease, so ticks that overlap send it once.
#[async_trait]
pub trait DigestStore: Send + Sync {
    /// The properties whose digest of `week` is settled (sent, skipped or given up): one read per tick, so a tick
    /// claims only the digests still owed, not every property's on every tick of the week.
    async fn settled_digests(&self, week: &str) -> Result<Vec<crate::domain::ResManPropertyId>, StoreError>;
    async fn claim_digest(
        &self,
        property: &crate::domain::ResManPropertyId,
        week: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease: chrono::Duration,
    ) -> Result<DigestClaim, StoreError>;
    async fn finish_digest(
        &self,
        property: &crate::domain::ResManPropertyId,
        week: &str,
        outcome: &DigestOutcome,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
}
