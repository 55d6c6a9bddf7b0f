//! The daily rollups of the figures ([`crate::domain::rollup`]): kept from the table's change stream, one tour at a
//! time, and read by day.

use super::StoreError;
use crate::domain::analytics::AttentionItem;
use crate::domain::rollup::{Applied, RefusalRef, Share, TourParts};
use crate::domain::{BookingId, ResManPropertyId};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

#[async_trait]
pub trait Rollups: Send + Sync {
    /// A tour as it now stands, with its messages and ratings, and the share last applied for it (`None`: none yet),
    /// in one consistent read; `None` when there is no such tour.
    async fn tour_for_rollup(&self, booking: &BookingId) -> Result<Option<(TourParts, Option<Applied>)>, StoreError>;

    /// Adds `change` to the day counters of the tour's property, records `after` as the share applied for it, and
    /// keeps its attention flags (`after.flags`, in place of `before`'s), all or nothing, provided what is applied is
    /// still `before` (as read). `false`: another consumer applied a share meanwhile, and nothing was written (read
    /// again).
    async fn apply_share(
        &self,
        parts: &TourParts,
        before: Option<&Applied>,
        change: &Share,
        after: &Applied,
    ) -> Result<bool, StoreError>;

    /// Adds `change` (a refusal's share) to the day counters, once per refusal: `false` when it was counted before.
    async fn count_refusal(&self, refusal: &RefusalRef, change: &Share) -> Result<bool, StoreError>;

    /// A property's day counters from `from` to `to`, both included, and the tours flagged for attention whose start
    /// falls on those dates: one query.
    async fn period(
        &self,
        property: &ResManPropertyId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Share, Vec<AttentionItem>), StoreError>;

    /// The property's scheduled (unconfirmed) open tours starting after `from` and up to `to`: one query.
    async fn scheduled_between(
        &self,
        property: &ResManPropertyId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AttentionItem>, StoreError>;
}
