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

use super::analytics::{StatsIndex, refusal_item, stats_keys};
use super::calendar::{busy_pk, busy_put, busy_sk, dates_of, generation_bumps, lost_a_condition};
use super::{DynamoStore, Item, corrupt, key, n, s, unavailable};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tour_core::domain::notify::MessageKind;
use tour_core::domain::property::Property;
use tour_core::domain::{AppointmentId, Phone, ResManPropertyId};
use tour_core::domain::{
    ids::{BookingId, ConversationId},
    lifecycle::TourStatus,
    record::TourRecord,
};
use tour_core::ports::{
    BookingWrite, ChangeExtras, ChangeWrite, Idempotency, IdempotencyRecord, Locks, NewBooking, Outbox, Outcome,
    Refusal, SavedOutcome, StoreError, TourReads, TourWrites,
};

/// A transaction holds at most 100 items; the locks of one tour stay well inside that.
const MAX_LOCKS: usize = 80;
/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
const IDEMPOTENCY_RETENTION: Duration = Duration::hours(24);
const LOCK_RETENTION: Duration = Duration::days(2);

fn lock_key(tour: &TourRecord, granule: DateTime<Utc>) -> Item {
    lock_key_of(&tour.property_id, &tour.holder, granule)
}

/// The lock of one granule of a holder's time (a tour's or a slot hold's).
pub(crate) fn lock_key_of(
    property: &tour_core::domain::ResManPropertyId,
    holder: &tour_core::domain::record::Holder,
    granule: DateTime<Utc>,
) -> Item {
    key(
        format!(
            "LOCK#{property}#{}#{}",
            holder.lock_name(),
            granule.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        "LOCK",
    )
}

/// The condition under which a lock is taken: nobody holds it, or only a slot hold that has lapsed by `now`, or
/// (with `hold`) the taker's own hold. A tour's lock has no `held_until`, so it never passes.
pub(crate) fn lock_condition(
    now: DateTime<Utc>,
    hold: Option<&tour_core::domain::HoldToken>,
) -> (&'static str, Vec<(&'static str, AttributeValue)>) {
    let mut values = vec![(":now", n(now.timestamp()))];
    match hold {
        Some(token) => {
            values.push((":hold", s(token.as_str())));
            (
                "attribute_not_exists(pk) OR held_until <= :now OR hold_token = :hold",
                values,
            )
        }
        None => ("attribute_not_exists(pk) OR held_until <= :now", values),
    }
}

/// The fields of a tour that are a prospect's personal data. They live in their own item, `TOUR#<id>` / `PERSON`,
/// beside the tour: it expires (TTL) a configured time after the tour, and an erasure request deletes it, while the
/// tour record (and every count made from it) stays. Staff notes are among them: staff write prospects' names and
/// numbers there, and prospects write anything in a text.
const PERSONAL: [&str; 7] = [
    "prospect_name",
    "prospect_email",
    "prospect_phone",
    "unit_preferences",
    "special_requests",
    "staff_notes",
    "prospect_reply",
];

/// The partition that lists a prospect's tours by e-mail (for an erasure request): a digest, so it holds no
/// address. One pointer item per tour, `PROSPECT#<digest>` / `<tour id>`, written with the booking and expiring
/// with the personal data.
fn prospect_pk(email: &str) -> String {
    format!(
        "PROSPECT#{}",
        hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
    )
}

fn prospect_pointer(tour: &TourRecord, expires_at: i64) -> Item {
    let mut item = key(prospect_pk(&tour.prospect_email), tour.booking_id.as_str());
    item.insert("expires_at".into(), n(expires_at));
    item
}

/// The tour's personal-data item, living until `retention` after the tour. It sits beside the tour in the
/// conversation's index too (right after it), so a conversation's tours are read with their personal data at once.
pub(crate) fn person_item(tour: &TourRecord, retention: Duration) -> Result<Item, StoreError> {
    let all: Item = serde_dynamo::to_item(tour).map_err(corrupt("tour record"))?;
    let mut item: Item = all
        .into_iter()
        .filter(|(k, _)| PERSONAL.contains(&k.as_str()))
        .collect();
    item.insert("pk".into(), s(format!("TOUR#{}", tour.booking_id)));
    item.insert("sk".into(), s("PERSON"));
    item.insert("gsi1pk".into(), s(format!("CONV#{}", tour.conversation_id.as_str())));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}#person", tour.created_at.to_rfc3339(), tour.booking_id)),
    );
    item.insert("expires_at".into(), n((tour.end + retention).timestamp()));
    Ok(item)
}

/// A tour read with its personal-data item: the item's fields, unless it has expired (TTL deletes lazily) or was
/// erased, in which case they stay empty.
pub(crate) fn with_person(mut tour: TourRecord, person: Option<&Item>, now: DateTime<Utc>) -> TourRecord {
    let live = person.filter(|item| {
        item.get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .is_none_or(|at| at > now.timestamp())
            && (item.contains_key("prospect_email") || item.contains_key("staff_notes"))
    });
    if let Some(item) = live {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        tour.prospect_name = text("prospect_name").unwrap_or_default();
        tour.prospect_email = text("prospect_email").unwrap_or_default();
        tour.prospect_phone = text("prospect_phone").unwrap_or_default();
        tour.unit_preferences = text("unit_preferences");
        tour.special_requests = text("special_requests");
        tour.staff_notes = text("staff_notes");
        tour.prospect_reply = item
            .get("prospect_reply")
            .and_then(|v| serde_dynamo::from_attribute_value(v.clone()).ok());
    }
    tour
}

/// The pointer from a tour to an idempotent answer saved for one of its changes (`TOUR#<id>` / `IDEM#<key>`): the
/// answer shows the tour's staff notes, so an erasure finds it through this and blanks them.
fn answer_pointer(tour: &TourRecord, idem_key: &str, expires_at: i64) -> Item {
    let mut item = key(format!("TOUR#{}", tour.booking_id), &format!("IDEM#{idem_key}"));
    item.insert("expires_at".into(), n(expires_at));
    item
}

fn tour_item(tour: &TourRecord) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(tour).map_err(corrupt("tour record"))?;
    item.retain(|k, _| !PERSONAL.contains(&k.as_str()));
    item.insert("pk".into(), s(format!("TOUR#{}", tour.booking_id)));
    item.insert("sk".into(), s("TOUR"));
    item.insert("gsi1pk".into(), s(format!("CONV#{}", tour.conversation_id.as_str())));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", tour.created_at.to_rfc3339(), tour.booking_id)),
    );
    item.insert("expires_at".into(), n((tour.end + Duration::days(90)).timestamp()));
    // The analytics' two access paths: by the tour's start and by when it was booked (see `analytics.rs`).
    let suffix = format!("TOUR#{}", tour.booking_id);
    stats_keys(&mut item, StatsIndex::ByStart, &tour.property_id, tour.start, &suffix);
    stats_keys(
        &mut item,
        StatsIndex::ByBooking,
        &tour.property_id,
        tour.created_at,
        &suffix,
    );
    Ok(item)
}

pub(crate) fn tour_from(item: Item) -> Result<TourRecord, StoreError> {
    serde_dynamo::from_item(item).map_err(corrupt("tour record"))
}

/// A conditional put whose condition uses values.
pub(crate) fn put_if(
    table: &str,
    item: Item,
    (condition, values): (&str, Vec<(&str, AttributeValue)>),
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    for (name, value) in values {
        put = put.expression_attribute_values(name, value);
    }
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(corrupt("put"))?)
        .build())
}

pub(crate) fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some(condition) = condition {
        put = put.condition_expression(condition);
    }
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(corrupt("put"))?)
        .build())
}

pub(crate) fn delete(table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
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

fn idempotency_answer(idem_key: &str, outcome: &SavedOutcome) -> Result<Answer, StoreError> {
    let (name, text) = outcome_parts(outcome)?;
    Ok(Answer {
        key: Some(key(format!("IDEM#{idem_key}"), "IDEM")),
        update_expression: "SET outcome = :o, response_body = :b".into(),
        expression_attribute_values: Some(Item::from([(":o".to_owned(), s(name)), (":b".to_owned(), s(text))])),
    })
}

/// The name of a saved outcome (`booked`, `pending`, `updated`, `refused`) and its text: the body the caller got, or
/// the refusal as JSON.
fn outcome_parts(outcome: &SavedOutcome) -> Result<(&'static str, String), StoreError> {
    Ok(match outcome {
        SavedOutcome::Done { outcome, body } => (outcome.as_str(), body.clone()),
        SavedOutcome::Refused(refusal) => ("refused", serde_json::to_string(refusal).map_err(corrupt("refusal"))?),
    })
}

/// A record's saved outcome, if its first request finished. Records written before outcomes had names kept the HTTP
/// status instead; they are read by it until they lapse (a day after they were written).
fn saved_outcome(item: &Item) -> Option<SavedOutcome> {
    let body = item.get("response_body").and_then(|v| v.as_s().ok())?.clone();
    let name = match item.get("outcome").and_then(|v| v.as_s().ok()) {
        Some(name) => name.clone(),
        None => legacy_outcome(item.get("response_status")?.as_n().ok()?)?.to_owned(),
    };
    match (Outcome::parse(&name), name.as_str()) {
        (Some(outcome), _) => Some(SavedOutcome::Done { outcome, body }),
        (None, "refused") => serde_json::from_str::<Refusal>(&body)
            .ok()
            .or_else(|| legacy_refusal(&body))
            .map(SavedOutcome::Refused),
        _ => None,
    }
}

/// The outcome name an answer saved by its status stood for.
fn legacy_outcome(status: &str) -> Option<&'static str> {
    Some(match status {
        "201" => "booked",
        "202" => "pending",
        "200" => "updated",
        "409" | "422" => "refused",
        _ => return None,
    })
}

/// A refusal saved as the error body it was sent as: `slot_taken` with its alternatives, or `resman_refused`.
fn legacy_refusal(body: &str) -> Option<Refusal> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = json.get("error")?;
    match error.get("code")?.as_str()? {
        "slot_taken" => Some(Refusal::SlotTaken {
            alternatives: serde_json::from_value(error.get("alternatives")?.clone()).ok()?,
        }),
        "resman_refused" => Some(Refusal::ResManRejected {
            description: error
                .get("message")?
                .as_str()?
                .trim_start_matches("ResMan refused it: ")
                .to_owned(),
        }),
        _ => None,
    }
}

/// The writes that save a tour's side-effect state (ResMan's ids and version, the callback's version, last error), if
/// the tour is still at the version they describe; with `settled`, the outbox item goes too.
fn sync_items(table: &str, tour: &TourRecord, settled: bool) -> Result<Vec<TransactWriteItem>, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(format!("TOUR#{}", tour.booking_id), "TOUR")))
        .update_expression(
            "SET sync_status = :st, resman_appointment_id = :a, resman_prospect_id = :p, last_error = :e, \
             resman_version = :rv, resman_synced_at = :rs, callback_version = :cv, in_resman_at = :ir, \
             resman_seen = :seen",
        )
        .condition_expression("attribute_exists(pk) AND version = :v");
    let sync: AttributeValue = serde_dynamo::to_attribute_value(tour.sync_status).map_err(corrupt("sync status"))?;
    let opt = |v: Option<String>| v.map(s).unwrap_or(AttributeValue::Null(true));
    let count = |v: u64| n(i64::try_from(v).unwrap_or(i64::MAX));
    update = update
        .expression_attribute_values(":st", sync)
        .expression_attribute_values(":a", opt(tour.resman_appointment_id.as_ref().map(|a| a.to_string())))
        .expression_attribute_values(":p", opt(tour.resman_prospect_id.clone()))
        .expression_attribute_values(":e", opt(tour.last_error.clone()))
        .expression_attribute_values(":rv", count(tour.resman_version))
        .expression_attribute_values(":rs", opt(tour.resman_synced_at.map(|t| t.to_rfc3339())))
        .expression_attribute_values(":cv", count(tour.callback_version))
        .expression_attribute_values(":ir", opt(tour.in_resman_at.map(|t| t.to_rfc3339())))
        .expression_attribute_values(
            ":seen",
            serde_dynamo::to_attribute_value(&tour.resman_seen).map_err(corrupt("what ResMan holds"))?,
        )
        .expression_attribute_values(":v", count(tour.version));
    let mut items = vec![
        TransactWriteItem::builder()
            .update(update.build().map_err(corrupt("sync update"))?)
            .build(),
    ];
    if settled {
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

/// The outbox item that says a tour owes side effects (its ResMan write, its callback), stamped when it was written:
/// the sweeper re-queues items left too long.
fn outbox_item(booking: &BookingId, now: DateTime<Utc>) -> Item {
    let mut outbox = key(format!("OUTBOX#{booking}"), "RESMAN");
    outbox.insert("gsi1pk".into(), s("OUTBOX"));
    outbox.insert("gsi1sk".into(), s(format!("{}#{booking}", now.to_rfc3339())));
    outbox.insert("booking_id".into(), s(booking.as_str()));
    // When the write became owed: unlike the claim stamp (`gsi1sk`), a re-queue never moves it.
    outbox.insert("owed_since".into(), s(now.to_rfc3339()));
    outbox
}

/// The lock items a tour holds, by key, when it holds time at all.
fn lock_items(property: &Property, tour: &TourRecord) -> BTreeMap<String, Item> {
    if !tour.status.holds_time() {
        return BTreeMap::new();
    }
    tour_core::domain::record::lock_granules(property, &tour.holder, &tour.window())
        .into_iter()
        .map(|granule| {
            let item = lock_key(tour, granule);
            let name = item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            (name, item)
        })
        .collect()
}

/// The busy item's key of a tour that holds time.
fn busy_key(tour: &TourRecord) -> Option<Item> {
    tour.status.holds_time().then(|| {
        key(
            busy_pk(&tour.property_id, tour.start),
            &busy_sk(tour.start, "TOUR", tour.booking_id.as_str()),
        )
    })
}

fn idempotency_item(idem_key: &str, fingerprint: &str, booking: &BookingId, now: DateTime<Utc>) -> Item {
    let mut idem = key(format!("IDEM#{idem_key}"), "IDEM");
    idem.insert("fingerprint".into(), s(fingerprint));
    idem.insert("booking_id".into(), s(booking.as_str()));
    idem.insert("started_at".into(), s(now.to_rfc3339()));
    idem.insert("expires_at".into(), n((now + IDEMPOTENCY_RETENTION).timestamp()));
    idem
}

fn resman_pointer_key(appointment: &AppointmentId) -> Item {
    key(format!("RESMAN#{appointment}"), "TOUR")
}

#[async_trait]
impl TourReads for DynamoStore {
    async fn tour(&self, id: &BookingId) -> Result<Option<TourRecord>, StoreError> {
        // The tour and its personal data in one consistent read of the two keys.
        let items = self
            .get_many(vec![
                key(format!("TOUR#{id}"), "TOUR"),
                key(format!("TOUR#{id}"), "PERSON"),
            ])
            .await?;
        let sk = |item: &Item| item.get("sk").and_then(|v| v.as_s().ok()).cloned();
        let person = items.iter().find(|i| sk(i).as_deref() == Some("PERSON"));
        items
            .iter()
            .find(|i| sk(i).as_deref() == Some("TOUR"))
            .map(|item| Ok(with_person(tour_from(item.clone())?, person, Utc::now())))
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
        // Each tour, then its personal data (while it has any), in index order.
        let now = Utc::now();
        let mut tours: Vec<TourRecord> = Vec::new();
        let mut pending: Option<TourRecord> = None;
        for item in out.items.unwrap_or_default() {
            if item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("PERSON") {
                tours.extend(pending.take().map(|tour| with_person(tour, Some(&item), now)));
            } else {
                tours.extend(pending.take());
                pending = Some(tour_from(item)?);
            }
        }
        tours.extend(pending);
        Ok(tours)
    }
}

#[async_trait]
impl TourWrites for DynamoStore {
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
        let mut items = vec![
            put(&self.table, tour_item(tour)?, Some("attribute_not_exists(pk)"))?,
            put(&self.table, person_item(tour, self.personal_data_retention)?, None)?,
            put(
                &self.table,
                prospect_pointer(tour, (tour.end + self.personal_data_retention).timestamp()),
                None,
            )?,
        ];
        let first_lock = items.len();
        let own_hold = booking.hold.as_ref().map(|h| &h.token);
        let mut taken = std::collections::BTreeSet::new();
        for granule in &booking.lock_granules {
            let mut lock = lock_key(tour, *granule);
            taken.extend(lock.get("pk").and_then(|v| v.as_s().ok()).cloned());
            lock.insert("booking_id".into(), s(tour.booking_id.as_str()));
            lock.insert("expires_at".into(), n((tour.end + LOCK_RETENTION).timestamp()));
            items.push(put_if(&self.table, lock, lock_condition(now, own_hold))?);
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
        let mut dates = dates_of(property, &tour.window());
        if let Some(hold) = &booking.hold {
            dates.extend(dates_of(property, &hold.window()));
        }
        items.extend(generation_bumps(&self.table, &tour.property_id, &dates)?);
        let idem_index = items.len();
        // The key is free when nobody has it, when its record has lapsed (TTL may not have deleted it yet), or when
        // it still names the cancelled booking this one replaces.
        let mut free = vec![(":now", n(now.timestamp()))];
        let condition = match &booking.replaces {
            Some(earlier) => {
                free.push((":earlier", s(earlier.as_str())));
                "attribute_not_exists(pk) OR expires_at <= :now OR booking_id = :earlier"
            }
            None => "attribute_not_exists(pk) OR expires_at <= :now",
        };
        items.push(put_if(
            &self.table,
            idempotency_item(&tour.idempotency_key, &booking.fingerprint, &tour.booking_id, now),
            (condition, free),
        )?);
        items.push(put(&self.table, outbox_item(&tour.booking_id, now), None)?);
        for kind in &booking.messages {
            items.push(put(&self.table, super::messages::message_item(tour, *kind, now), None)?);
        }
        for reminder in &booking.reminders {
            items.push(put(&self.table, super::messages::reminder_item(tour, reminder), None)?);
        }
        if let Some(consent) = &booking.consent {
            let expires = (tour.end + self.personal_data_retention).timestamp();
            items.push(put(&self.table, super::consent::consent_item(consent, expires), None)?);
        }
        // The presented hold goes with the booking: what it held beyond the tour's own locks is freed.
        let release = match &booking.hold {
            Some(hold) => super::holds::release_items(&self.table, property, hold, &taken, true, now)?,
            None => Vec::new(),
        };
        let outcome = |result: Result<(), _>| match result {
            Ok(()) => Ok(BookingWrite::Created),
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
        };
        if release.is_empty() || items.len() + release.len() > MAX_TRANSACTION_ITEMS {
            return outcome(self.transact(items).await);
        }
        let released = items.len()..items.len() + release.len();
        match self.transact(items.iter().cloned().chain(release).collect()).await {
            // Only the hold's release failed (the conversation placed another hold meanwhile, or a staff move took a
            // granule): the booking goes in alone, and whatever the hold still holds lapses by itself.
            Err(e)
                if lost_a_condition(&e).is_some_and(|reasons| {
                    reasons
                        .iter()
                        .enumerate()
                        .all(|(i, r)| matches!(r.as_deref(), None | Some("None")) || released.contains(&i))
                }) =>
            {
                outcome(self.transact(items).await)
            }
            result => outcome(result),
        }
    }

    async fn finish_booking(
        &self,
        tour: &TourRecord,
        idem_key: &str,
        outcome: &SavedOutcome,
    ) -> Result<(), StoreError> {
        let settled = tour.sync_status != tour_core::domain::record::SyncStatus::Pending;
        let mut items = sync_items(&self.table, tour, settled)?;
        let answer = idempotency_answer(idem_key, outcome)?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(answer.key)
            .set_update_expression(Some(answer.update_expression))
            .set_expression_attribute_values(answer.expression_attribute_values)
            .build()
            .map_err(corrupt("idempotency answer"))?;
        items.push(TransactWriteItem::builder().update(update).build());
        match self.transact(items).await {
            Ok(()) => Ok(()),
            // The tour changed while it was being written to ResMan: its newer version owes its own write, which
            // finds this one by its reference. The answer is saved all the same.
            Err(e) if lost_a_condition(&e).is_some() => self.finish_idempotency(idem_key, outcome).await,
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn save_sync(&self, tour: &TourRecord, settled: bool) -> Result<bool, StoreError> {
        match self.transact(sync_items(&self.table, tour, settled)?).await {
            Ok(()) => Ok(true),
            Err(e) if lost_a_condition(&e).is_some() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn save_change(
        &self,
        property: &Property,
        before: &TourRecord,
        after: &TourRecord,
        locks: Locks,
        extras: ChangeExtras<'_>,
        now: DateTime<Utc>,
    ) -> Result<ChangeWrite, StoreError> {
        let answer = extras.answer;
        let version = |v: u64| n(i64::try_from(v).unwrap_or(i64::MAX));
        // The whole record is put: besides its version, the one field written beside the versioned changes (the
        // prospect's stage, by the poller) must still be what was read, or the put would undo it (then: Stale).
        let (stage_condition, stage_value) = match before.prospect_stage {
            Some(stage) => (
                "prospect_stage = :stage",
                serde_dynamo::to_attribute_value(stage).map_err(corrupt("prospect stage"))?,
            ),
            None => (
                "(attribute_not_exists(prospect_stage) OR attribute_type(prospect_stage, :stage))",
                s("NULL"),
            ),
        };
        let tour_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(tour_item(after)?))
            .condition_expression(format!("version = :v AND {stage_condition}"))
            .expression_attribute_values(":v", version(before.version))
            .expression_attribute_values(":stage", stage_value)
            .build()
            .map_err(corrupt("tour put"))?;
        let mut items = vec![TransactWriteItem::builder().put(tour_put).build()];
        let (old_locks, new_locks) = (lock_items(property, before), lock_items(property, after));
        let first_lock = items.len();
        for (name, mut lock) in new_locks.clone() {
            if old_locks.contains_key(&name) {
                continue;
            }
            lock.insert("booking_id".into(), s(after.booking_id.as_str()));
            lock.insert("expires_at".into(), n((after.end + LOCK_RETENTION).timestamp()));
            items.push(match locks {
                Locks::Take => put_if(&self.table, lock, lock_condition(now, None))?,
                Locks::Follow => put(&self.table, lock, None)?,
            });
        }
        let after_locks = items.len();
        for (name, lock) in old_locks {
            if !new_locks.contains_key(&name) {
                items.push(delete(&self.table, lock)?);
            }
        }
        let time_moved = before.status.holds_time() != after.status.holds_time()
            || before.window() != after.window()
            || before.holder != after.holder;
        if time_moved {
            let (old_busy, new_busy) = (busy_key(before), busy_key(after));
            if old_busy.is_some()
                && old_busy != new_busy
                && let Some(old) = old_busy
            {
                items.push(delete(&self.table, old)?);
            }
            if after.status.holds_time() {
                items.push(busy_put(
                    &self.table,
                    &after.property_id,
                    after.holder.agent(),
                    &after.window(),
                    "TOUR",
                    after.booking_id.as_str(),
                )?);
            }
            let mut dates = dates_of(property, &before.window());
            dates.extend(dates_of(property, &after.window()));
            items.extend(generation_bumps(&self.table, &after.property_id, &dates)?);
        }
        items.push(put(&self.table, outbox_item(&after.booking_id, now), None)?);
        for kind in extras.messages {
            items.push(put(
                &self.table,
                super::messages::message_item(after, *kind, now),
                None,
            )?);
        }
        if let Some((drop, set)) = extras.reminders {
            for reminder in drop.iter().filter(|r| !set.contains(r)) {
                items.push(delete(
                    &self.table,
                    super::messages::reminder_item_key(&before.booking_id, reminder),
                )?);
            }
            for reminder in set.iter().filter(|r| !drop.contains(r)) {
                items.push(put(&self.table, super::messages::reminder_item(after, reminder), None)?);
            }
        }
        let expiry_moved = after.end > before.end && !after.prospect_email.is_empty();
        // The notes live with the personal data, written whenever the tour has any (notes kept on a tour item from
        // before they moved there come across with its next change). A tour whose personal data was erased or lapsed
        // gets an item holding the notes alone, gone when the tour's data would have gone.
        let notes_written = before.staff_notes != after.staff_notes || after.staff_notes.is_some();
        // A prospect's words by text live with the personal data too.
        let reply = (before.prospect_reply != after.prospect_reply)
            .then_some(after.prospect_reply.as_ref())
            .flatten();
        if notes_written || reply.is_some() {
            let expiry = if expiry_moved {
                "expires_at = :e"
            } else {
                "expires_at = if_not_exists(expires_at, :e)"
            };
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("TOUR#{}", after.booking_id), "PERSON")))
                .expression_attribute_values(":e", n((after.end + self.personal_data_retention).timestamp()));
            let mut sets = vec![expiry.to_owned()];
            let mut removes = Vec::new();
            match (&after.staff_notes, notes_written) {
                (Some(notes), true) => {
                    sets.push("staff_notes = :n".to_owned());
                    update = update.expression_attribute_values(":n", s(notes));
                }
                (None, true) => removes.push("staff_notes"),
                (_, false) => {}
            }
            if let Some(reply) = reply {
                sets.push("prospect_reply = :r".to_owned());
                let value = serde_dynamo::to_attribute_value(reply).map_err(corrupt("prospect reply"))?;
                update = update.expression_attribute_values(":r", value);
            }
            let remove = if removes.is_empty() {
                String::new()
            } else {
                format!(" REMOVE {}", removes.join(", "))
            };
            update = update.update_expression(format!("SET {}{remove}", sets.join(", ")));
            items.push(
                TransactWriteItem::builder()
                    .update(update.build().map_err(corrupt("staff notes"))?)
                    .build(),
            );
        }
        if expiry_moved {
            // The personal data lives `retention` after the tour: a tour moved later keeps it (and the pointer that
            // finds it for an erasure) as long.
            let expires = n((after.end + self.personal_data_retention).timestamp());
            let person = (!notes_written).then(|| key(format!("TOUR#{}", after.booking_id), "PERSON"));
            for item_key in person
                .into_iter()
                .chain([key(prospect_pk(&after.prospect_email), after.booking_id.as_str())])
            {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(item_key))
                    .update_expression("SET expires_at = :e")
                    .expression_attribute_values(":e", expires.clone())
                    .build()
                    .map_err(corrupt("personal data expiry"))?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
        }
        let idem_index = items.len();
        if let Some(answer) = answer {
            let mut idem = idempotency_item(&answer.key, &answer.fingerprint, &after.booking_id, now);
            let (name, text) = outcome_parts(&answer.outcome)?;
            idem.insert("outcome".into(), s(name));
            idem.insert("response_body".into(), s(text));
            let expires = (now + IDEMPOTENCY_RETENTION).timestamp();
            // A lapsed record (TTL may not have deleted it yet) is no record.
            let free = (
                "attribute_not_exists(pk) OR expires_at <= :now",
                vec![(":now", n(now.timestamp()))],
            );
            items.push(put_if(&self.table, idem, free)?);
            items.push(put(&self.table, answer_pointer(after, &answer.key, expires), None)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(ChangeWrite::Saved),
            Err(e) => match lost_a_condition(&e) {
                Some(reasons) => {
                    let code = |i: usize| reasons.get(i).and_then(|r| r.as_deref());
                    let lock_lost = (first_lock..after_locks)
                        .any(|i| matches!(code(i), Some("ConditionalCheckFailed" | "TransactionConflict")));
                    if code(0).is_some_and(|c| c != "None") {
                        Ok(ChangeWrite::Stale)
                    } else if answer.is_some() && code(idem_index) == Some("ConditionalCheckFailed") {
                        Ok(ChangeWrite::KeyInUse)
                    } else if lock_lost {
                        Ok(ChangeWrite::SlotTaken)
                    } else if reasons.iter().any(|r| r.as_deref() == Some("TransactionConflict")) {
                        Ok(ChangeWrite::Stale)
                    } else {
                        Err(StoreError::Unavailable(format!(
                            "change transaction cancelled: {reasons:?}"
                        )))
                    }
                }
                None => Err(unavailable(e)),
            },
        }
    }

    async fn release(
        &self,
        property: &Property,
        tour: &TourRecord,
        messages: &[MessageKind],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut items = Vec::new();
        for granule in tour_core::domain::record::lock_granules(property, &tour.holder, &tour.window()) {
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
        for kind in messages {
            items.push(put(
                &self.table,
                super::messages::message_item(&released, *kind, now),
                None,
            )?);
        }
        self.transact(items).await.map_err(unavailable)?;
        Ok(())
    }

    async fn record_prospect_stage(
        &self,
        booking: &BookingId,
        stage: tour_core::domain::resman::ProspectStage,
    ) -> Result<(), StoreError> {
        let stage = serde_dynamo::to_attribute_value(stage).map_err(corrupt("prospect stage"))?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("TOUR#{booking}"), "TOUR")))
            .update_expression("SET prospect_stage = :s")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":s", stage)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            // The tour is gone (its retention ran out): nothing to record.
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(e))
                if e.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn record_slot_refusal(
        &self,
        property: &tour_core::domain::ResManPropertyId,
        idem_key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Once: the rollups mark a refusal counted on its own item, which a second put must not wipe.
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(refusal_item(property, idem_key, at)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(e))
                if e.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl Idempotency for DynamoStore {
    async fn idempotency(&self, idem_key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let Some(item) = self.get(key(format!("IDEM#{idem_key}"), "IDEM")).await? else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let started_at = text("started_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| StoreError::Corrupt("idempotency record without started_at".into()))?;
        let expires_at = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|at| DateTime::from_timestamp(at, 0));
        Ok(Some(IdempotencyRecord {
            fingerprint: text("fingerprint").unwrap_or_default(),
            booking_id: text("booking_id").and_then(|b| BookingId::parse(&b).ok()),
            started_at,
            response: saved_outcome(&item),
            expires_at,
        }))
    }

    async fn finish_idempotency(&self, idem_key: &str, outcome: &SavedOutcome) -> Result<(), StoreError> {
        let answer = idempotency_answer(idem_key, outcome)?;
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
}

#[async_trait]
impl Outbox for DynamoStore {
    async fn oldest_owed_sync(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .index_name("gsi1")
                    .key_condition_expression("gsi1pk = :p")
                    .expression_attribute_values(":p", s("OUTBOX"))
            })
            .await?;
        let since = |item: &Item| {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            // An item written before `owed_since` existed: its claim stamp is the best we know.
            let stamp =
                text("owed_since").or_else(|| text("gsi1sk").map(|s| s.split('#').next().unwrap_or("").to_owned()));
            stamp
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        Ok(items.iter().filter_map(since).min())
    }

    async fn claim_owed_syncs(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<BookingId>, StoreError> {
        Ok(self
            .claim_stale("OUTBOX", before, now)
            .await?
            .iter()
            .filter_map(|item| item.get("booking_id").and_then(|v| v.as_s().ok()))
            .filter_map(|b| BookingId::parse(b).ok())
            .collect())
    }
}

impl DynamoStore {
    /// Blanks the staff notes in every idempotent answer saved for `booking`'s changes (a replay then shows none),
    /// deleting each answer's pointer once done.
    /// Opts the number of an erased tour out for good, then deletes its grants and revocations at the tour's
    /// property. `tour` and `person` are the tour's items as read for the erasure.
    async fn forget_consent(&self, tour: Option<&Item>, person: Option<&Item>) -> Result<(), StoreError> {
        let text = |item: Option<&Item>, name: &str| item?.get(name)?.as_s().ok().cloned();
        let property = text(tour, "property_id").and_then(|p| ResManPropertyId::parse(&p).ok());
        let phone = text(person, "prospect_phone").and_then(|p| Phone::parse(&p).ok());
        let (Some(property), Some(phone)) = (property, phone) else {
            return Ok(());
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(super::consent::opt_out_key(&phone)))
            .send()
            .await
            .map_err(unavailable)?;
        for consent in self.consent_keys(&property, &phone).await? {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(consent))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn blank_saved_answers(&self, booking: &BookingId) -> Result<(), StoreError> {
        let pointers = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :p AND begins_with(sk, :idem)")
                    .expression_attribute_values(":p", s(format!("TOUR#{booking}")))
                    .expression_attribute_values(":idem", s("IDEM#"))
            })
            .await?;
        for pointer in pointers {
            let Some(answer_pk) = pointer.get("sk").and_then(|v| v.as_s().ok()).cloned() else {
                continue;
            };
            let answer_key = key(answer_pk, "IDEM");
            if let Some(answer) = self.get(answer_key.clone()).await?
                && let Some(body) = answer.get("response_body").and_then(|v| v.as_s().ok())
                && let Ok(mut json) = serde_json::from_str::<serde_json::Value>(body)
                && json.get("staff_notes").is_some_and(|n| !n.is_null())
            {
                json["staff_notes"] = serde_json::Value::Null;
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(answer_key))
                    .update_expression("SET response_body = :b")
                    .expression_attribute_values(":b", s(json.to_string()))
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
            let mut pointer_key = pointer;
            pointer_key.retain(|k, _| k == "pk" || k == "sk");
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(pointer_key))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

#[async_trait]
impl tour_core::ports::PersonalData for DynamoStore {
    async fn erase_prospect(&self, email: &tour_core::domain::Email) -> Result<Vec<BookingId>, StoreError> {
        let pk = prospect_pk(email.expose());
        let pointers = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", s(pk.clone()))
            })
            .await?;
        let mut erased = Vec::new();
        for pointer in pointers {
            let Some(booking) = pointer
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .and_then(|b| BookingId::parse(b).ok())
            else {
                continue;
            };
            // Saved answers to the tour's changes show its staff notes: blanked first, each with its pointer, so a
            // retried erasure still finds the rest through the prospect's pointer, deleted last.
            self.blank_saved_answers(&booking).await?;
            // The tour and its personal data, read once (consistently) for what follows.
            let read = self
                .get_many(vec![
                    key(format!("TOUR#{booking}"), "TOUR"),
                    key(format!("TOUR#{booking}"), "PERSON"),
                ])
                .await?;
            let item = |sk: &str| {
                read.iter()
                    .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).is_some_and(|v| v == sk))
            };
            let (tour, person) = (item("TOUR"), item("PERSON"));
            // Consent to texts: the number is opted out for good, then its grants and revocations go, before the
            // personal data that names the number (so a retried erasure still finds it).
            self.forget_consent(tour, person).await?;
            // The personal data and its pointer together; from the tour item, any notes it kept from before they
            // moved to the personal data, and the fields ResMan's notices sent beside its changes (staff may write
            // anything there), kept in its history.
            let mut items = vec![
                delete(&self.table, key(format!("TOUR#{booking}"), "PERSON"))?,
                delete(&self.table, key(pk.clone(), booking.as_str()))?,
            ];
            if let Some(tour) = tour {
                let mut removed = vec!["staff_notes".to_owned()];
                if let Some(history) = tour.get("history").and_then(|v| v.as_l().ok()) {
                    removed.extend(
                        history
                            .iter()
                            .enumerate()
                            .filter(|(_, entry)| entry.as_m().is_ok_and(|m| m.contains_key("received")))
                            .map(|(i, _)| format!("history[{i}].received")),
                    );
                }
                let tour_notes = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("TOUR#{booking}"), "TOUR")))
                    .update_expression(format!("REMOVE {}", removed.join(", ")))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(corrupt("tour notes"))?;
                items.push(TransactWriteItem::builder().update(tour_notes).build());
            }
            self.transact(items).await.map_err(unavailable)?;
            erased.push(booking);
        }
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn every_outcome_is_read_back_as_it_was_saved() {
        let slot = tour_core::domain::slots::sample_slot_view();
        let outcomes = Outcome::ALL
            .map(|outcome| SavedOutcome::Done {
                outcome,
                body: r#"{"appointment_id":"tour_1"}"#.into(),
            })
            .into_iter()
            .chain([
                SavedOutcome::Refused(Refusal::SlotTaken {
                    alternatives: vec![slot],
                }),
                SavedOutcome::Refused(Refusal::ResManRejected {
                    description: "Transaction Source could not be found".into(),
                }),
            ]);
        for outcome in outcomes {
            let (name, text) = outcome_parts(&outcome).unwrap();
            let stored = item(&[("outcome", s(name)), ("response_body", s(text))]);
            assert_eq!(saved_outcome(&stored), Some(outcome));
        }
        assert_eq!(saved_outcome(&item(&[("outcome", s("booked"))])), None, "not finished");
    }

    #[test]
    fn an_answer_saved_by_its_status_before_outcomes_had_names_is_still_read() {
        let legacy = |status: i64, body: &str| {
            saved_outcome(&item(&[("response_status", n(status)), ("response_body", s(body))]))
        };
        let booking = r#"{"appointment_id":"tour_1"}"#;
        for (status, outcome) in [(201, Outcome::Booked), (202, Outcome::Pending), (200, Outcome::Updated)] {
            assert_eq!(
                legacy(status, booking),
                Some(SavedOutcome::Done {
                    outcome,
                    body: booking.into()
                })
            );
        }
        let taken = r#"{"error":{"code":"slot_taken","field":"tour_data.preferred_time","alternatives":[{"time":"2026-12-01T10:15:00-06:00","staff_member":"Alex Rivera","duration":45,"tour_type":"in_person"}]}}"#;
        assert!(matches!(
            legacy(409, taken),
            Some(SavedOutcome::Refused(Refusal::SlotTaken { alternatives })) if alternatives.len() == 1
        ));
        let refused = r#"{"error":{"code":"resman_refused","message":"ResMan refused it: no such source"}}"#;
        assert_eq!(
            legacy(422, refused),
            Some(SavedOutcome::Refused(Refusal::ResManRejected {
                description: "no such source".into()
            }))
        );
        assert_eq!(legacy(500, booking), None);
    }
}
