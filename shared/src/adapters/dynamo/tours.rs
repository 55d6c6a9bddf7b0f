//! Bookings. Items:
//! - `TOUR#<booking id>` / `TOUR`: the tour record (serde_dynamo), with `gsi1pk = CONV#<conversation>` so a
//!   conversation's tours are one index query (the conversation context the chatbot reads back).
//! - `LOCK#<property>#<agent | SG-seat>#<UTC granule>` / `LOCK`: one per 5-minute granule of the tour widened by
//!   its buffers; created with `attribute_not_exists`, so two overlapping tours of one agent cannot both commit.
//! - `BUSY#…`: the tour's busy time (see `calendar.rs`), and the `GEN#…` bumps of its dates.
//! - `IDEM#<key>` / `IDEM`: the idempotency record, created in the same transaction, finished with the answer.
//! - `OUTBOX#<booking id>` / `RESMAN`: the ResMan write owed, with `gsi1pk = OUTBOX`, deleted once synced.
//! - `RESMAN#<ResMan appointment id>` / `TOUR`: which booking ResMan's appointment is, written with the sync state.
//!
//! `create_booking` is one `TransactWriteItems`: all of it or nothing. Its cancellation reasons say which
//! condition failed: a lock (the slot is taken) or the idempotency record (the request was seen).

use super::calendar::{busy_pk, busy_put, busy_sk, dates_of, generation_bumps, lost_a_condition};
use super::{DynamoStore, Item, corrupt, key, n, s, unavailable};
use crate::domain::AppointmentId;
use crate::domain::booking::{BookingId, ConversationId, TourRecord, TourStatus};
use crate::domain::property::Property;
use crate::ports::{BookingWrite, IdempotencyRecord, NewBooking, StoreError, TourStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};

/// A transaction holds at most 100 items; the locks of one tour stay well inside that.
const MAX_LOCKS: usize = 80;
const IDEMPOTENCY_RETENTION: Duration = Duration::hours(24);
const LOCK_RETENTION: Duration = Duration::days(2);

fn lock_key(tour: &TourRecord, granule: DateTime<Utc>) -> Item {
    key(
        format!(
            "LOCK#{}#{}#{}",
            tour.property_id,
            tour.holder.lock_name(),
            granule.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        "LOCK",
    )
}

fn tour_item(tour: &TourRecord) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(tour).map_err(corrupt("tour record"))?;
    item.insert("pk".into(), s(format!("TOUR#{}", tour.booking_id)));
    item.insert("sk".into(), s("TOUR"));
    item.insert("gsi1pk".into(), s(format!("CONV#{}", tour.conversation_id.as_str())));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", tour.created_at.to_rfc3339(), tour.booking_id)),
    );
    item.insert("expires_at".into(), n((tour.end + Duration::days(90)).timestamp()));
    Ok(item)
}

fn tour_from(item: Item) -> Result<TourRecord, StoreError> {
    serde_dynamo::from_item(item).map_err(corrupt("tour record"))
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some(condition) = condition {
        put = put.condition_expression(condition);
    }
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(corrupt("put"))?)
        .build())
}

fn delete(table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .build()
        .map_err(corrupt("delete"))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// The idempotency record's answer, as the parts of an update (alone, or inside a transaction).
struct Answer {
    key: Option<Item>,
    update_expression: String,
    expression_attribute_values: Option<Item>,
}

fn idempotency_answer(idem_key: &str, status: u16, body: &str) -> Answer {
    Answer {
        key: Some(key(format!("IDEM#{idem_key}"), "IDEM")),
        update_expression: "SET response_status = :s, response_body = :b".into(),
        expression_attribute_values: Some(Item::from([
            (":s".to_owned(), n(status.into())),
            (":b".to_owned(), s(body)),
        ])),
    }
}

/// The writes that save a tour's ResMan side: the tour's sync fields, and the outbox item's removal once the write
/// is no longer owed.
fn sync_items(table: &str, tour: &TourRecord) -> Result<Vec<TransactWriteItem>, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(format!("TOUR#{}", tour.booking_id), "TOUR")))
        .update_expression(
            "SET sync_status = :st, resman_appointment_id = :a, resman_prospect_id = :p, last_error = :e",
        )
        .condition_expression("attribute_exists(pk)");
    let sync: AttributeValue = serde_dynamo::to_attribute_value(tour.sync_status).map_err(corrupt("sync status"))?;
    let opt = |v: Option<String>| v.map(s).unwrap_or(AttributeValue::Null(true));
    update = update
        .expression_attribute_values(":st", sync)
        .expression_attribute_values(":a", opt(tour.resman_appointment_id.as_ref().map(|a| a.to_string())))
        .expression_attribute_values(":p", opt(tour.resman_prospect_id.clone()))
        .expression_attribute_values(":e", opt(tour.last_error.clone()));
    let mut items = vec![
        TransactWriteItem::builder()
            .update(update.build().map_err(corrupt("sync update"))?)
            .build(),
    ];
    // Only a pending write is still owed: synced, failed (staff's now) and rejected ones leave the outbox.
    if tour.sync_status != crate::domain::booking::SyncStatus::Pending {
        items.push(delete(table, key(format!("OUTBOX#{}", tour.booking_id), "RESMAN"))?);
    }
    // ResMan's id for the tour leads back to it (the chatbot and staff may name a tour by either id).
    if let Some(appointment) = &tour.resman_appointment_id {
        let mut pointer = resman_pointer_key(appointment);
        pointer.insert("booking_id".into(), s(tour.booking_id.as_str()));
        pointer.insert("expires_at".into(), n((tour.end + Duration::days(90)).timestamp()));
        items.push(put(table, pointer, None)?);
    }
    Ok(items)
}

fn resman_pointer_key(appointment: &AppointmentId) -> Item {
    key(format!("RESMAN#{appointment}"), "TOUR")
}

#[async_trait]
impl TourStore for DynamoStore {
    async fn idempotency(&self, idem_key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let Some(item) = self.get(key(format!("IDEM#{idem_key}"), "IDEM")).await? else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let started_at = text("started_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| StoreError::Corrupt("idempotency record without started_at".into()))?;
        let status = item
            .get("response_status")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u16>().ok());
        Ok(Some(IdempotencyRecord {
            fingerprint: text("fingerprint").unwrap_or_default(),
            booking_id: text("booking_id").and_then(|b| BookingId::parse(&b).ok()),
            started_at,
            response: status.zip(text("response_body")),
        }))
    }

    async fn create_booking(
        &self,
        property: &Property,
        booking: &NewBooking,
        now: DateTime<Utc>,
    ) -> Result<BookingWrite, StoreError> {
        let tour = &booking.tour;
        if booking.lock_granules.is_empty() || booking.lock_granules.len() > MAX_LOCKS {
            return Err(StoreError::Corrupt(format!("a tour needs 1 to {MAX_LOCKS} slot locks")));
        }
        let mut items = vec![put(&self.table, tour_item(tour)?, Some("attribute_not_exists(pk)"))?];
        let first_lock = items.len();
        for granule in &booking.lock_granules {
            let mut lock = lock_key(tour, *granule);
            lock.insert("booking_id".into(), s(tour.booking_id.as_str()));
            lock.insert("expires_at".into(), n((tour.end + LOCK_RETENTION).timestamp()));
            items.push(put(&self.table, lock, Some("attribute_not_exists(pk)"))?);
        }
        let after_locks = items.len();
        items.push(busy_put(
            &self.table,
            &tour.property_id,
            tour.holder.agent(),
            &tour.window(),
            "TOUR",
            tour.booking_id.as_str(),
        )?);
        items.extend(generation_bumps(
            &self.table,
            &tour.property_id,
            &dates_of(property, &tour.window()),
        )?);
        let idem_index = items.len();
        let mut idem = key(format!("IDEM#{}", tour.idempotency_key), "IDEM");
        idem.insert("fingerprint".into(), s(booking.fingerprint.as_str()));
        idem.insert("booking_id".into(), s(tour.booking_id.as_str()));
        idem.insert("started_at".into(), s(now.to_rfc3339()));
        idem.insert("expires_at".into(), n((now + IDEMPOTENCY_RETENTION).timestamp()));
        items.push(put(&self.table, idem, Some("attribute_not_exists(pk)"))?);
        let mut outbox = key(format!("OUTBOX#{}", tour.booking_id), "RESMAN");
        outbox.insert("gsi1pk".into(), s("OUTBOX"));
        outbox.insert("gsi1sk".into(), s(format!("{}#{}", now.to_rfc3339(), tour.booking_id)));
        outbox.insert("booking_id".into(), s(tour.booking_id.as_str()));
        items.push(put(&self.table, outbox, None)?);

        match self.transact(items).await {
            Ok(_) => Ok(BookingWrite::Created),
            Err(e) => match lost_a_condition(&e) {
                Some(reasons) => {
                    let failed = |i: usize| reasons.get(i).and_then(|r| r.as_deref()) == Some("ConditionalCheckFailed");
                    if failed(idem_index) {
                        Ok(BookingWrite::KeyInUse)
                    } else if (first_lock..after_locks).any(failed) {
                        Ok(BookingWrite::SlotTaken)
                    } else if reasons.iter().any(|r| r.as_deref() == Some("TransactionConflict")) {
                        // Another transaction was writing the same lock at that instant: it holds the slot.
                        Ok(BookingWrite::SlotTaken)
                    } else {
                        Err(StoreError::Unavailable(format!(
                            "booking transaction cancelled: {reasons:?}"
                        )))
                    }
                }
                None => Err(unavailable(e)),
            },
        }
    }

    async fn finish_idempotency(&self, idem_key: &str, status: u16, body: &str) -> Result<(), StoreError> {
        let answer = idempotency_answer(idem_key, status, body);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(answer.key)
            .set_update_expression(Some(answer.update_expression))
            .set_expression_attribute_values(answer.expression_attribute_values)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn finish_booking(
        &self,
        tour: &TourRecord,
        idem_key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        let mut items = sync_items(&self.table, tour)?;
        let answer = idempotency_answer(idem_key, status, body);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(answer.key)
            .set_update_expression(Some(answer.update_expression))
            .set_expression_attribute_values(answer.expression_attribute_values)
            .build()
            .map_err(corrupt("idempotency answer"))?;
        items.push(TransactWriteItem::builder().update(update).build());
        self.transact(items).await.map_err(unavailable)?;
        Ok(())
    }

    async fn tour(&self, id: &BookingId) -> Result<Option<TourRecord>, StoreError> {
        self.get(key(format!("TOUR#{id}"), "TOUR"))
            .await?
            .map(tour_from)
            .transpose()
    }

    async fn tour_by_resman_id(&self, appointment: &AppointmentId) -> Result<Option<TourRecord>, StoreError> {
        let Some(pointer) = self.get(resman_pointer_key(appointment)).await? else {
            return Ok(None);
        };
        let id = pointer
            .get("booking_id")
            .and_then(|v| v.as_s().ok())
            .and_then(|b| BookingId::parse(b).ok())
            .ok_or_else(|| StoreError::Corrupt("a ResMan pointer without a booking id".into()))?;
        self.tour(&id).await
    }

    async fn save_sync(&self, tour: &TourRecord) -> Result<(), StoreError> {
        self.transact(sync_items(&self.table, tour)?)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release(&self, property: &Property, tour: &TourRecord) -> Result<(), StoreError> {
        let mut items = Vec::new();
        for granule in crate::domain::booking::lock_granules(property, &tour.holder, &tour.window()) {
            items.push(delete(&self.table, lock_key(tour, granule))?);
        }
        items.push(delete(
            &self.table,
            key(
                busy_pk(&tour.property_id, tour.start),
                &busy_sk(tour.start, "TOUR", tour.booking_id.as_str()),
            ),
        )?);
        items.push(delete(
            &self.table,
            key(format!("OUTBOX#{}", tour.booking_id), "RESMAN"),
        )?);
        items.extend(generation_bumps(
            &self.table,
            &tour.property_id,
            &dates_of(property, &tour.window()),
        )?);
        let released = TourRecord {
            status: TourStatus::Released,
            ..tour.clone()
        };
        items.push(put(&self.table, tour_item(&released)?, None)?);
        self.transact(items).await.map_err(unavailable)?;
        Ok(())
    }

    async fn conversation_tours(&self, conversation: &ConversationId) -> Result<Vec<TourRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :c")
            .expression_attribute_values(":c", s(format!("CONV#{}", conversation.as_str())))
            .send()
            .await
            .map_err(unavailable)?;
        out.items.unwrap_or_default().into_iter().map(tour_from).collect()
    }

    async fn claim_owed_syncs(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<BookingId>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :o AND gsi1sk < :before")
            .expression_attribute_values(":o", s("OUTBOX"))
            .expression_attribute_values(":before", s(before.to_rfc3339()))
            .send()
            .await
            .map_err(unavailable)?;
        let mut claimed = Vec::new();
        for item in out.items.unwrap_or_default() {
            let (Some(id), Some(stamp)) = (
                item.get("booking_id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|b| BookingId::parse(b).ok()),
                item.get("gsi1sk").and_then(|v| v.as_s().ok()),
            ) else {
                continue;
            };
            // Conditional on the stamp we read: of two sweepers, one claims it.
            let claim = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(format!("OUTBOX#{id}"), "RESMAN")))
                .update_expression("SET gsi1sk = :now")
                .condition_expression("gsi1sk = :was")
                .expression_attribute_values(":now", s(format!("{}#{id}", now.to_rfc3339())))
                .expression_attribute_values(":was", s(stamp.as_str()))
                .send()
                .await;
            match claim {
                Ok(_) => claimed.push(id),
                Err(aws_sdk_dynamodb::error::SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(claimed)
    }
}
