//! The daily rollups ([`tour_core::domain::rollup`]). Items:
//! - `ROLLUP#<property>` / `<YYYY-MM-DD>#DAY`: one local day's counters, each its own number attribute named
//!   `c:<counter>`, added to with `ADD` (so two tours' changes of one day never overwrite each other);
//! - `ROLLUP#<property>` / `<YYYY-MM-DD>#FLAG#<start>#<booking id>`: a tour on the attention list (`item`, JSON),
//!   under its local start date, so that a period's counters and flagged tours are one `Query`;
//! - `UNCONF#<property>` / `<start>#<booking id>`: a scheduled (unconfirmed) open tour (`item`), by its start, so
//!   the list reads only those starting within the next day;
//! - `TOUR#<booking id>` / `ROLLUP`: the share and flags last applied for the tour (`applied`, JSON) and how many
//!   times one was (`applications`, the condition of the next), beside the tour, so the tour's whole partition
//!   (tour, messages, ratings, applied share) is one consistent `Query`;
//! - a refusal's own item (`REFUSAL#<property>`) gets `counted` when its count is added, under the condition that
//!   it had none, in the same transaction.
//!
//! A share's application is one transaction: the applied item replaced under a condition on what was read, an `ADD`
//! on each day it changes (a booking's day, a tour's old and new start days), and its flag items put or deleted.

use super::analytics::{StatsItem, sortable, stats_item};
use super::{DynamoStore, Item, corrupt, key, n, s, unavailable};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};
use tour_core::domain::analytics::{AttentionItem, MAX_ATTENTION};
use tour_core::domain::rollup::{Applied, DayCounters, RefusalRef, Share, TourParts};
use tour_core::domain::{BookingId, ResManPropertyId};
use tour_core::ports::{Rollups, StoreError};

/// How long after its tour a tour's applied share is kept: well beyond the tour record's 90 days.
const APPLIED_RETENTION: chrono::Duration = chrono::Duration::days(400);

/// The prefix of a counter's attribute on a day item.
const COUNTER: &str = "c:";

fn day_key(property: &ResManPropertyId, date: NaiveDate) -> Item {
    key(format!("ROLLUP#{property}"), &format!("{date}#DAY"))
}

/// Where a tour's attention item lives: flagged (under its local start date beside the counters), or scheduled.
fn flag_key(property: &ResManPropertyId, item: &AttentionItem, flagged: bool) -> Item {
    let start = DateTime::parse_from_rfc3339(&item.start)
        .map(|at| sortable(at.with_timezone(&Utc)))
        .unwrap_or_else(|_| item.start.clone());
    if flagged {
        let date = item.local_start.get(..10).unwrap_or_default();
        key(
            format!("ROLLUP#{property}"),
            &format!("{date}#FLAG#{start}#{}", item.booking_id),
        )
    } else {
        key(format!("UNCONF#{property}"), &format!("{start}#{}", item.booking_id))
    }
}

fn applied_from(item: &Item) -> Result<Applied, StoreError> {
    let applied = item
        .get("applied")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt("an applied share without its counters".into()))?;
    serde_json::from_str(applied).map_err(corrupt("applied share"))
}

fn attention_from(item: &Item) -> Result<AttentionItem, StoreError> {
    let text = item
        .get("item")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt("an attention item without its tour".into()))?;
    serde_json::from_str(text).map_err(corrupt("attention item"))
}

fn counters_from(item: &Item) -> Result<Option<(NaiveDate, DayCounters)>, StoreError> {
    let Some(date) = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| sk.strip_suffix("#DAY"))
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

/// One `ADD` per day that `change` moves, of each of its counters.
fn day_adds(table: &str, property: &ResManPropertyId, change: &Share) -> Result<Vec<TransactWriteItem>, StoreError> {
    let mut writes = Vec::new();
    for (date, counters) in change.days() {
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(day_key(property, *date)));
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
    Ok(writes)
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
            "applied".into(),
            s(serde_json::to_string(after).map_err(corrupt("applied share"))?),
        );
        // Outlives the tour record (90 days after the tour), so a late record of a tour still there never finds its
        // share gone and counts it twice.
        item.insert("expires_at".into(), n((tour.end + APPLIED_RETENTION).timestamp()));
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
        writes.extend(day_adds(&self.table, &tour.property_id, change)?);
        let empty = tour_core::domain::rollup::Flags::default();
        let was = before.map_or(&empty, |b| &b.flags);
        for (old, new, flagged) in [
            (&was.flagged, &after.flags.flagged, true),
            (&was.scheduled, &after.flags.scheduled, false),
        ] {
            let old_key = old.as_ref().map(|item| flag_key(&tour.property_id, item, flagged));
            let new_key = new.as_ref().map(|item| flag_key(&tour.property_id, item, flagged));
            if let Some(old_key) = old_key.filter(|k| Some(k) != new_key.as_ref()) {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(old_key))
                    .build()
                    .map_err(corrupt("attention item"))?;
                writes.push(TransactWriteItem::builder().delete(delete).build());
            }
            if let (Some(mut item), Some(attention)) = (new_key, new.as_ref())
                && old != new
            {
                item.insert(
                    "item".into(),
                    s(serde_json::to_string(attention).map_err(corrupt("attention item"))?),
                );
                // Gone with the tour record.
                item.insert(
                    "expires_at".into(),
                    n((tour.end + chrono::Duration::days(90)).timestamp()),
                );
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()
                    .map_err(corrupt("attention item"))?;
                writes.push(TransactWriteItem::builder().put(put).build());
            }
        }
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            // Another consumer applied a share first (its condition), or was applying one to the same items right
            // then (a conflict): read again.
            Err(e) if super::calendar::lost_a_condition(&e).is_some() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn count_refusal(&self, refusal: &RefusalRef, change: &Share) -> Result<bool, StoreError> {
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("REFUSAL#{}", refusal.property), &refusal.key)))
            .update_expression("SET counted = :yes")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(counted)")
            .expression_attribute_values(":yes", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .build()
            .map_err(corrupt("refusal"))?;
        let mut writes = vec![TransactWriteItem::builder().update(mark).build()];
        writes.extend(day_adds(&self.table, &refusal.property, change)?);
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            Err(e) if super::calendar::lost_a_condition(&e).is_some() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn period(
        &self,
        property: &ResManPropertyId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Share, Vec<AttentionItem>), StoreError> {
        // Eventually consistent: half the read units, and a second or so behind a write, as the totals are anyway.
        let items = self
            .query_pages(false, None, || {
                self.client
                    .query()
                    .key_condition_expression("pk = :p AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":p", s(format!("ROLLUP#{property}")))
                    .expression_attribute_values(":from", s(format!("{from}#")))
                    // `~` sorts after every suffix of the last date.
                    .expression_attribute_values(":to", s(format!("{to}#~")))
            })
            .await?;
        let (mut days, mut flagged) = (Vec::new(), Vec::new());
        for item in &items {
            match counters_from(item)? {
                Some(day) => days.push(day),
                None => flagged.push(attention_from(item)?),
            }
        }
        Ok((Share::from_days(days), flagged))
    }

    async fn scheduled_between(
        &self,
        property: &ResManPropertyId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AttentionItem>, StoreError> {
        // The attention list names the first few hundred by start at most: never more are read.
        let items = self
            .query_pages(false, Some(MAX_ATTENTION), || {
                self.client
                    .query()
                    .key_condition_expression("pk = :p AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":p", s(format!("UNCONF#{property}")))
                    .expression_attribute_values(":from", s(format!("{}#~", sortable(from))))
                    .expression_attribute_values(":to", s(format!("{}#~", sortable(to))))
            })
            .await?;
        items.iter().map(attention_from).collect()
    }
}
