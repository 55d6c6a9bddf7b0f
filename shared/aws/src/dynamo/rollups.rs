//! The daily rollups ([`tour_core::domain::rollup`]). Items:
//! - `ROLLUP#<property>` / `DAY#<YYYY-MM-DD>`: one local day's counters, each its own number attribute named
//!   `c:<counter>`, added to with `ADD` (so two tours' changes of one day never overwrite each other);
//! - `TOUR#<booking id>` / `ROLLUP`: the share last applied for the tour (`share`, JSON) and how many times one was
//!   (`applications`, the condition of the next), beside the tour, so the tour's whole partition (tour, messages,
//!   ratings, applied share) is one consistent `Query`.
//!
//! A share's application is one transaction: the applied item replaced under a condition on what was read, and an
//! `ADD` on each day it changes (four at most: a booking's day, a tour's old and new start days, and its messages').

use super::analytics::{StatsItem, stats_item};
use super::{DynamoStore, Item, corrupt, key, n, s, unavailable};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::NaiveDate;
use tour_core::domain::rollup::{Applied, DayCounters, Share, TourParts};
use tour_core::domain::{BookingId, ResManPropertyId};
use tour_core::ports::{Rollups, StoreError};

/// The prefix of a counter's attribute on a day item.
const COUNTER: &str = "c:";

fn day_key(property: &ResManPropertyId, date: NaiveDate) -> Item {
    key(format!("ROLLUP#{property}"), &format!("DAY#{date}"))
}

fn applied_from(item: &Item) -> Result<Applied, StoreError> {
    let applications = item
        .get("applications")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt("an applied share without its count".into()))?;
    let share = item
        .get("share")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt("an applied share without its counters".into()))?;
    Ok(Applied {
        applications,
        share: serde_json::from_str(share).map_err(corrupt("applied share"))?,
    })
}

fn counters_from(item: &Item) -> Result<Option<(NaiveDate, DayCounters)>, StoreError> {
    let Some(date) = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| sk.strip_prefix("DAY#"))
    else {
        return Ok(None);
    };
    let date = date.parse().map_err(corrupt("rollup day"))?;
    let mut counters = DayCounters::new();
    for (name, value) in item {
        if let Some(counter) = name.strip_prefix(COUNTER) {
            let count = value
                .as_n()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("rollup counter {counter}")))?;
            counters.insert(counter.to_owned(), count);
        }
    }
    Ok(Some((date, counters)))
}

#[async_trait]
impl Rollups for DynamoStore {
    async fn tour_for_rollup(&self, booking: &BookingId) -> Result<Option<(TourParts, Option<Applied>)>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", s(format!("TOUR#{booking}")))
            })
            .await?;
        let (mut tour, mut messages, mut rating, mut staff_rating, mut applied) = (None, Vec::new(), None, None, None);
        for item in items {
            match stats_item(item)? {
                StatsItem::Tour(found) => tour = Some(*found),
                StatsItem::Message(message) => messages.push(message),
                StatsItem::Rating(_, score) => rating = Some(score),
                StatsItem::StaffRating(_, found) => staff_rating = Some(found),
                StatsItem::Other(item)
                    if item
                        .get("sk")
                        .and_then(|v| v.as_s().ok())
                        .is_some_and(|sk| sk == "ROLLUP") =>
                {
                    applied = Some(applied_from(&item)?);
                }
                StatsItem::Refusal(_) | StatsItem::Other(_) => {}
            }
        }
        Ok(tour.map(|tour| {
            let parts = TourParts {
                tour,
                messages,
                rating,
                staff_rating,
            };
            (parts, applied)
        }))
    }

    async fn apply_share(
        &self,
        parts: &TourParts,
        before: Option<&Applied>,
        change: &Share,
        after: &Applied,
    ) -> Result<bool, StoreError> {
        let tour = &parts.tour;
        let mut item = key(format!("TOUR#{}", tour.booking_id), "ROLLUP");
        item.insert(
            "applications".into(),
            n(i64::try_from(after.applications).unwrap_or(i64::MAX)),
        );
        item.insert(
            "share".into(),
            s(serde_json::to_string(&after.share).map_err(corrupt("applied share"))?),
        );
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match before {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(before) => put
                .condition_expression("applications = :was")
                .expression_attribute_values(":was", n(i64::try_from(before.applications).unwrap_or(i64::MAX))),
        };
        let mut writes = vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(corrupt("applied share"))?)
                .build(),
        ];
        for (date, counters) in change.days() {
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(day_key(&tour.property_id, *date)));
            let mut adds = Vec::new();
            for (i, (counter, by)) in counters.iter().enumerate() {
                adds.push(format!("#c{i} :c{i}"));
                update = update
                    .expression_attribute_names(format!("#c{i}"), format!("{COUNTER}{counter}"))
                    .expression_attribute_values(format!(":c{i}"), n(*by));
            }
            let update = update
                .update_expression(format!("ADD {}", adds.join(", ")))
                .build()
                .map_err(corrupt("rollup day"))?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            // Another consumer applied a share first (its condition), or was applying one to the same items right
            // then (a conflict): read again.
            Err(e) if super::calendar::lost_a_condition(&e).is_some() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn day_counters(
        &self,
        property: &ResManPropertyId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Share, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :p AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":p", s(format!("ROLLUP#{property}")))
                    .expression_attribute_values(":from", s(format!("DAY#{from}")))
                    .expression_attribute_values(":to", s(format!("DAY#{to}")))
            })
            .await?;
        let mut days = Vec::new();
        for item in &items {
            days.extend(counters_from(item)?);
        }
        Ok(Share::from_days(days))
    }
}
