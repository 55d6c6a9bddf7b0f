//! The daily rollups of the figures ([`crate::domain::rollup`]): kept from the table's change stream, one tour at a
//! time, and read by day.

use super::StoreError;
use crate::domain::rollup::{Applied, Share, TourParts};
use crate::domain::{BookingId, ResManPropertyId};
use async_trait::async_trait;
use chrono::NaiveDate;

#[async_trait]
pub trait Rollups: Send + Sync {
    /// A tour as it now stands, with its messages and ratings, and the share last applied for it (`None`: none yet),
    /// in one consistent read; `None` when there is no such tour.
    async fn tour_for_rollup(&self, booking: &BookingId) -> Result<Option<(TourParts, Option<Applied>)>, StoreError>;

    /// Adds `change` to the day counters of the tour's property and records `after` as the share applied for it,
    /// all or nothing, provided what is applied is still `before` (as read). `false`: another consumer applied a share
    /// meanwhile, and nothing was written (read again).
    async fn apply_share(
        &self,
        parts: &TourParts,
        before: Option<&Applied>,
        change: &Share,
        after: &Applied,
    ) -> Result<bool, StoreError>;

    /// A property's day counters from `from` to `to`, both included.
    async fn day_counters(
        &self,
        property: &ResManPropertyId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Share, StoreError>;
}
