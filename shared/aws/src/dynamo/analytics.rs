//! The analytics' reads, by key. Two sparse indexes carry them, each partitioned by property and UTC month and
//! sorted by instant, so a period is one `Query` per index and month touched (plus pages of 1 MB):
//! - `gsi2` (`gsi2pk = STATS#<property>#<YYYY-MM>`, `gsi2sk = <start>#…`): tours by their start, and their ratings
//!   (the prospect's and the leasing team's);
//! - `gsi3` (`gsi3pk` likewise, `gsi3sk = <booked at>#…`): tours by when they were booked, the messages they owe,
//!   and the refusals of taken slots (`REFUSAL#<property>` / `<at>#<key digest>`).
//!
//! The index keys are written by the same put or transaction that writes each item (the tour record, its messages,
//! its rating), so the figures follow every change without a second write to keep in step; the index is updated
//! by DynamoDB within a second or so of the write (an index read is eventually consistent). The property's zone is
//! applied when reading (a UTC month partition holds every local date it overlaps), so the writers need none.

use super::tours::tour_from;
use super::{DynamoStore, Item, key, n, s};
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, Utc};
use sha2::{Digest, Sha256};
use tour_core::domain::BookingId;
use tour_core::domain::analytics::{Facts, MessageFact};
use tour_core::domain::{ResManPropertyId, UtcWindow};
use tour_core::ports::{AnalyticsStore, StoreError};

/// How long a refusal is kept for the figures (a little over a year).
const REFUSAL_RETENTION: Duration = Duration::days(400);

/// The two analytics indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatsIndex {
    /// By the tour's start.
    ByStart,
    /// By when the booking was made.
    ByBooking,
}

impl StatsIndex {
    fn name(self) -> &'static str {
        match self {
            Self::ByStart => "gsi2",
            Self::ByBooking => "gsi3",
        }
    }
}

/// An instant as a sort key: fixed width, so text order is time order.
pub(crate) fn sortable(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn partition(property: &ResManPropertyId, year: i32, month: u32) -> String {
    format!("STATS#{property}#{year:04}-{month:02}")
}

/// Puts `item` on `index` at the instant `at`, after the others of that instant in `suffix` order.
pub(crate) fn stats_keys(
    item: &mut Item,
    index: StatsIndex,
    property: &ResManPropertyId,
    at: DateTime<Utc>,
    suffix: &str,
) {
    let name = index.name();
    item.insert(format!("{name}pk"), s(partition(property, at.year(), at.month())));
    item.insert(format!("{name}sk"), s(format!("{}#{suffix}", sortable(at))));
}

/// The UTC months a window touches, oldest first.
fn months(window: UtcWindow) -> Vec<(i32, u32)> {
    let mut months = Vec::new();
    let (mut year, mut month) = (window.start().year(), window.start().month());
    let last = (window.end().year(), window.end().month());
    loop {
        months.push((year, month));
        if (year, month) >= last {
            return months;
        }
        (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    }
}

/// A refusal of a taken slot, kept for the figures.
pub(crate) fn refusal_item(property: &ResManPropertyId, idem_key: &str, at: DateTime<Utc>) -> Item {
    let digest = hex::encode(&Sha256::digest(idem_key.as_bytes())[..12]);
    let mut item = key(format!("REFUSAL#{property}"), &format!("{}#{digest}", sortable(at)));
    item.insert("at".into(), s(at.to_rfc3339()));
    item.insert("expires_at".into(), n((at + REFUSAL_RETENTION).timestamp()));
    stats_keys(
        &mut item,
        StatsIndex::ByBooking,
        property,
        at,
        &format!("REFUSAL#{digest}"),
    );
    item
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn booking_of(item: &Item) -> Option<BookingId> {
    text(item, "pk")
        .and_then(|pk| pk.strip_prefix("TOUR#"))
        .and_then(|id| BookingId::parse(id).ok())
}

/// One item the figures read (of a stats index, or of a tour's own partition).
pub(crate) enum StatsItem {
    Tour(Box<tour_core::domain::record::TourRecord>),
    Rating(BookingId, u8),
    StaffRating(BookingId, tour_core::domain::link::StaffRating),
    Message(MessageFact),
    Refusal(tour_core::domain::rollup::RefusalRef),
    /// An item of a kind the figures do not use.
    Other(Item),
}

pub(crate) fn stats_item(item: Item) -> Result<StatsItem, StoreError> {
    let corrupt = || StoreError::Corrupt("an analytics item is not what we wrote".into());
    let sk = text(&item, "sk").unwrap_or_default().to_owned();
    let pk = text(&item, "pk").unwrap_or_default();
    Ok(if pk.starts_with("REFUSAL#") {
        let mut refusal = tour_core::domain::rollup::RefusalRef::from_keys(pk, &sk).ok_or_else(corrupt)?;
        // The instant as written (the key keeps milliseconds).
        if let Some(at) = text(&item, "at").and_then(|at| DateTime::parse_from_rfc3339(at).ok()) {
            refusal.at = at.with_timezone(&Utc);
        }
        StatsItem::Refusal(refusal)
    } else if sk == "TOUR" {
        StatsItem::Tour(Box::new(tour_from(item)?))
    } else if sk == "RATING" {
        let rating = super::ratings::rating_from(&item)?;
        StatsItem::Rating(booking_of(&item).ok_or_else(corrupt)?, rating.score.get())
    } else if sk == "STAFF_RATING" {
        let rating = super::ratings::staff_rating_from(&item)?;
        StatsItem::StaffRating(booking_of(&item).ok_or_else(corrupt)?, rating)
    } else if sk.starts_with("MSG#") {
        let delivery = super::messages::delivery_from(&item)?;
        StatsItem::Message(MessageFact {
            booking_id: booking_of(&item).ok_or_else(corrupt)?,
            kind: delivery.message,
            status: delivery.status,
            receipt: delivery.receipt.map(|r| r.delivered),
        })
    } else {
        StatsItem::Other(item)
    })
}

/// Sorts one index item into the facts; an item of a kind the figures do not use is left out.
fn file(facts: &mut Facts, index: StatsIndex, item: Item) -> Result<(), StoreError> {
    match stats_item(item)? {
        StatsItem::Refusal(at) => facts.refusals.push(at),
        StatsItem::Tour(tour) => match index {
            StatsIndex::ByStart => facts.tours_by_start.push(*tour),
            StatsIndex::ByBooking => facts.tours_by_booking.push(*tour),
        },
        StatsItem::Rating(booking, score) => facts.ratings.push((booking, score)),
        StatsItem::StaffRating(booking, rating) => facts.staff_ratings.push((booking, rating)),
        StatsItem::Message(message) => facts.messages.push(message),
        StatsItem::Other(_) => {}
    }
    Ok(())
}

impl DynamoStore {
    /// Every item of `index` for `property` inside `window`: one query per month touched, every page read.
    async fn stats_items(
        &self,
        index: StatsIndex,
        property: &ResManPropertyId,
        window: UtcWindow,
    ) -> Result<Vec<Item>, StoreError> {
        let name = index.name();
        let mut items = Vec::new();
        for (year, month) in months(window) {
            items.extend(
                self.query_all(|| {
                    self.client
                        .query()
                        .index_name(name)
                        .key_condition_expression(format!("{name}pk = :p AND {name}sk BETWEEN :from AND :to"))
                        .expression_attribute_values(":p", s(partition(property, year, month)))
                        .expression_attribute_values(":from", s(sortable(window.start())))
                        // `~` sorts after every suffix: the whole last millisecond is inside.
                        .expression_attribute_values(":to", s(format!("{}~", sortable(window.end()))))
                })
                .await?,
            );
        }
        Ok(items)
    }
}

#[async_trait]
impl AnalyticsStore for DynamoStore {
    async fn facts(&self, property: &ResManPropertyId, window: UtcWindow) -> Result<Facts, StoreError> {
        let (by_start, by_booking) = tokio::try_join!(
            self.stats_items(StatsIndex::ByStart, property, window),
            self.stats_items(StatsIndex::ByBooking, property, window),
        )?;
        let mut facts = Facts::default();
        for item in by_start {
            file(&mut facts, StatsIndex::ByStart, item)?;
        }
        for item in by_booking {
            file(&mut facts, StatsIndex::ByBooking, item)?;
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_window_reads_every_utc_month_it_touches_and_sort_keys_order_as_time() {
        let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 6, 0, 0).unwrap();
        let window = UtcWindow::new(at(2026, 11, 20), at(2027, 1, 3)).unwrap();
        assert_eq!(months(window), vec![(2026, 11), (2026, 12), (2027, 1)]);
        let one = UtcWindow::new(at(2026, 11, 1), at(2026, 11, 2)).unwrap();
        assert_eq!(months(one), vec![(2026, 11)]);
        let earlier = Utc.with_ymd_and_hms(2026, 11, 1, 9, 5, 3).unwrap();
        let later = earlier + Duration::milliseconds(1);
        assert!(sortable(earlier) < sortable(later));
        assert_eq!(sortable(earlier).len(), sortable(later + Duration::days(400)).len());
    }

    #[test]
    fn index_keys_name_the_property_and_the_utc_month_of_the_instant() {
        let property = ResManPropertyId::parse("p-1").unwrap();
        let mut item = Item::new();
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 4, 30, 0).unwrap();
        stats_keys(&mut item, StatsIndex::ByStart, &property, at, "TOUR#b");
        assert_eq!(text(&item, "gsi2pk"), Some("STATS#p-1#2026-12"));
        assert_eq!(text(&item, "gsi2sk"), Some("2026-12-01T04:30:00.000Z#TOUR#b"));
        let refusal = refusal_item(&property, "key-1", at);
        assert!(
            text(&refusal, "gsi3sk")
                .unwrap()
                .starts_with("2026-12-01T04:30:00.000Z#REFUSAL#")
        );
        assert_eq!(
            refusal_item(&property, "key-1", at),
            refusal,
            "one item per key and moment"
        );
    }
}
