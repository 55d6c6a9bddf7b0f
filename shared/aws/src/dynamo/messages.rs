//! The messages tours owe. Items: `TOUR#<booking id>` / `MSG#<kind>#v<version>`, beside the tour record (so the
//! tour and its deliveries are one `Query`), written in the same transaction as the change that owes them. While
//! pending, `gsi1pk = MSGS` and `gsi1sk = <when owed>#<booking id>#<key>`, so the sweeper finds the ones whose queue
//! message was lost; a finished message leaves the index.
//!
//! Reminders wait as `REMIND#<due hour, UTC>` / `<due>#<booking id>#<kind>` items, set and dropped in the
//! transaction of the change that moves the tour (or ends it); the scheduler reads the last hours' partitions and
//! turns each due one into a message in one transaction (the reminder's delete is its condition, so it is taken
//! once).
//!
//! A send is claimed first (`claimed_until`, under a condition), so two deliveries of the same queue message cannot
//! both send; the result is recorded under the same claim.

use super::tours::{tour_from, with_person};
use super::{DynamoStore, Item, key, n, s, unavailable};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use chrono::{DateTime, Duration, Utc};
use tour_core::domain::notify::ReminderDue;
use tour_core::domain::notify::{Delivery, DeliveryStatus, MessageKind, MessageRef};
use tour_core::domain::{ids::BookingId, record::TourRecord};
use tour_core::ports::{Claim, DueReminder, MessageStore, ReminderStore, SendOutcome, StoreError};

fn message_key(message: &MessageRef) -> Item {
    key(
        format!("TOUR#{}", message.booking_id),
        &format!("MSG#{}", message.key()),
    )
}

/// A message owed by the change that made `tour` (at its version), pending.
pub(crate) fn message_item(tour: &TourRecord, kind: MessageKind, now: DateTime<Utc>) -> Item {
    let reference = MessageRef {
        booking_id: tour.booking_id.clone(),
        kind,
        version: tour.version,
    };
    let mut item = message_key(&reference);
    item.insert("kind".into(), s(kind.as_str()));
    item.insert("version".into(), n(i64::try_from(tour.version).unwrap_or(i64::MAX)));
    item.insert("delivery".into(), s("pending"));
    item.insert("attempts".into(), n(0));
    item.insert("created_at".into(), s(now.to_rfc3339()));
    item.insert("gsi1pk".into(), s("MSGS"));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}#{}", now.to_rfc3339(), tour.booking_id, reference.key())),
    );
    item.insert("expires_at".into(), n((tour.end + Duration::days(90)).timestamp()));
    // Counted with the booking that owes it (the confirmation delivery rate, failed messages).
    super::analytics::stats_keys(
        &mut item,
        super::analytics::StatsIndex::ByBooking,
        &tour.property_id,
        tour.created_at,
        &format!("MSG#{}#{}", tour.booking_id, reference.key()),
    );
    item
}

fn reminder_key(booking: &BookingId, kind: MessageKind, due: DateTime<Utc>) -> Item {
    key(
        format!("REMIND#{}", due.format("%Y-%m-%dT%H")),
        &format!("{}#{booking}#{}", due.format("%Y-%m-%dT%H:%M:%SZ"), kind.as_str()),
    )
}

/// A reminder of `tour`, waiting for its time.
pub(crate) fn reminder_item(tour: &TourRecord, reminder: &ReminderDue) -> Item {
    let mut item = reminder_key(&tour.booking_id, reminder.kind, reminder.due);
    item.insert("booking_id".into(), s(tour.booking_id.as_str()));
    item.insert("kind".into(), s(reminder.kind.as_str()));
    item.insert("due".into(), s(reminder.due.to_rfc3339()));
    item.insert("expires_at".into(), n((tour.end + Duration::days(2)).timestamp()));
    item
}

/// The key of a reminder of `booking`, to drop it.
pub(crate) fn reminder_item_key(booking: &BookingId, reminder: &ReminderDue) -> Item {
    reminder_key(booking, reminder.kind, reminder.due)
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    text(item, name)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) fn delivery_from(item: &Item) -> Result<Delivery, StoreError> {
    let corrupt = || StoreError::Corrupt("a message item is not what we wrote".into());
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let status = match text(item, "delivery") {
        Some("pending") => DeliveryStatus::Pending,
        Some("sent") => DeliveryStatus::Sent,
        Some("failed") => DeliveryStatus::Failed,
        Some("superseded") => DeliveryStatus::Superseded,
        _ => return Err(corrupt()),
    };
    Ok(Delivery {
        message: text(item, "kind").and_then(MessageKind::parse).ok_or_else(corrupt)?,
        version: number("version").ok_or_else(corrupt)?,
        status,
        attempts: number("attempts").and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
        created_at: time(item, "created_at").ok_or_else(corrupt)?,
        sent_at: time(item, "sent_at"),
        provider_message_id: text(item, "provider_message_id").map(str::to_owned),
        last_error: text(item, "last_error").map(str::to_owned),
        invite: text(item, "invite").map(str::to_owned),
        superseded_because: text(item, "superseded_because").map(str::to_owned),
        receipt: time(item, "receipt_at").map(|at| tour_core::domain::notify::TextReceipt {
            delivered: text(item, "receipt") == Some("delivered"),
            at,
            failure: text(item, "receipt_failure").map(str::to_owned),
        }),
    })
}

/// How many tries a claim's update (`ADD attempts :one`, returning the new item) counts, this one included.
pub(super) fn attempts_of(out: &aws_sdk_dynamodb::operation::update_item::UpdateItemOutput) -> u32 {
    out.attributes
        .as_ref()
        .and_then(|a| a.get("attempts"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

pub(super) fn lost_condition<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(service) if service.err().code() == Some("ConditionalCheckFailedException"))
}

#[async_trait]
impl MessageStore for DynamoStore {
    async fn tour_with_messages(&self, booking: &BookingId) -> Result<Option<(TourRecord, Vec<Delivery>)>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(format!("TOUR#{booking}")))
            })
            .await?;
        let mut tour = None;
        let mut person = None;
        let mut deliveries = Vec::new();
        for item in items {
            match text(&item, "sk") {
                Some("TOUR") => tour = Some(tour_from(item)?),
                Some("PERSON") => person = Some(item),
                Some(sk) if sk.starts_with("MSG#") => deliveries.push(delivery_from(&item)?),
                _ => {}
            }
        }
        deliveries.sort_by_key(|d| (d.version, d.created_at));
        Ok(tour.map(|t| (with_person(t, person.as_ref(), Utc::now()), deliveries)))
    }

    async fn claim_message(
        &self,
        message: &MessageRef,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(message_key(message)))
            .update_expression("SET claimed_until = :until ADD attempts :one")
            .condition_expression(
                "delivery = :pending AND (attribute_not_exists(claimed_until) OR claimed_until < :now)",
            )
            .expression_attribute_values(":until", s((now + lease).to_rfc3339()))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        let attempts = match claimed {
            Ok(out) => attempts_of(&out),
            Err(e) if lost_condition(&e) => {
                // Why not: already finished, held by another sender, or not there at all.
                return Ok(match self.get(message_key(message)).await? {
                    None => Claim::Missing,
                    Some(item) if text(&item, "delivery") == Some("pending") => Claim::Busy,
                    Some(item) if text(&item, "delivery") == Some("failed") => Claim::Failed,
                    Some(_) => Claim::Done,
                });
            }
            Err(e) => return Err(unavailable(e)),
        };
        // The tour with its personal data: the email goes to the prospect.
        match tour_core::ports::TourReads::tour(self, &message.booking_id).await? {
            Some(tour) => Ok(Claim::Claimed(Box::new(tour), attempts)),
            None => Ok(Claim::Missing),
        }
    }

    async fn reopen_failed(&self, message: &MessageRef, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let reopened = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(message_key(message)))
            // Pending again, from its first try, and back in the sweeper's index (as a new message is).
            .update_expression("SET delivery = :pending, attempts = :zero, gsi1pk = :msgs, gsi1sk = :stamp REMOVE last_error, claimed_until")
            .condition_expression("delivery = :failed")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":msgs", s("MSGS"))
            .expression_attribute_values(
                ":stamp",
                s(format!("{}#{}#{}", now.to_rfc3339(), message.booking_id, message.key())),
            )
            .send()
            .await;
        match reopened {
            Ok(_) => Ok(true),
            Err(e) if lost_condition(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn finish_message(
        &self,
        message: &MessageRef,
        outcome: &SendOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(message_key(message)))
            .condition_expression("delivery = :pending")
            .expression_attribute_values(":pending", s("pending"));
        let update = match outcome {
            SendOutcome::Sent {
                provider_message_id,
                invite,
            } => {
                let sent = update
                    .expression_attribute_values(":sent", s("sent"))
                    .expression_attribute_values(":now", s(now.to_rfc3339()))
                    .expression_attribute_values(":id", s(provider_message_id.as_str()));
                match invite {
                    Some(invite) => sent
                        .update_expression(
                            "SET delivery = :sent, sent_at = :now, provider_message_id = :id, invite = :invite \
                             REMOVE claimed_until, gsi1pk, gsi1sk, last_error",
                        )
                        .expression_attribute_values(":invite", s(invite.as_str())),
                    None => sent.update_expression(
                        "SET delivery = :sent, sent_at = :now, provider_message_id = :id \
                         REMOVE claimed_until, gsi1pk, gsi1sk, last_error",
                    ),
                }
            }
            SendOutcome::Superseded { because } => update
                .update_expression(
                    "SET delivery = :superseded, superseded_because = :why REMOVE claimed_until, gsi1pk, gsi1sk",
                )
                .expression_attribute_values(":superseded", s("superseded"))
                .expression_attribute_values(":why", s(because.as_str())),
            SendOutcome::Failed { error } => update
                .update_expression("SET delivery = :failed, last_error = :e REMOVE claimed_until, gsi1pk, gsi1sk")
                .expression_attribute_values(":failed", s("failed"))
                .expression_attribute_values(":e", s(error.as_str())),
            SendOutcome::Retry { error } => update
                .update_expression("SET last_error = :e REMOVE claimed_until")
                .expression_attribute_values(":e", s(error.as_str())),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            // Finished already (a second delivery that lost the race): nothing to record.
            Err(e) if lost_condition(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn record_receipt(
        &self,
        message: &MessageRef,
        provider_message_id: &str,
        receipt: &tour_core::domain::notify::TextReceipt,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(message_key(message)))
            .condition_expression("delivery = :sent AND provider_message_id = :id AND attribute_not_exists(receipt_at)")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":id", s(provider_message_id))
            .expression_attribute_values(":at", s(receipt.at.to_rfc3339()))
            .expression_attribute_values(":state", s(if receipt.delivered { "delivered" } else { "failed" }));
        update = match &receipt.failure {
            Some(failure) => update
                .update_expression("SET receipt = :state, receipt_at = :at, receipt_failure = :why")
                .expression_attribute_values(":why", s(failure.as_str())),
            None => update.update_expression("SET receipt = :state, receipt_at = :at"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if lost_condition(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn owe_message(
        &self,
        tour: &TourRecord,
        kind: MessageKind,
        now: DateTime<Utc>,
    ) -> Result<Option<MessageRef>, StoreError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(message_item(tour, kind, now)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(Some(MessageRef {
                booking_id: tour.booking_id.clone(),
                kind,
                version: tour.version,
            })),
            Err(e) if lost_condition(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn claim_unsent_messages(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<MessageRef>, StoreError> {
        Ok(self
            .claim_stale("MSGS", before, now)
            .await?
            .iter()
            .filter_map(|item| {
                let booking = text(item, "pk")?
                    .strip_prefix("TOUR#")
                    .and_then(|b| BookingId::parse(b).ok())?;
                MessageRef::parse(booking, text(item, "sk")?.strip_prefix("MSG#")?)
            })
            .collect())
    }
}

#[async_trait]
impl ReminderStore for DynamoStore {
    async fn due_reminders(&self, now: DateTime<Utc>, lookback: Duration) -> Result<Vec<DueReminder>, StoreError> {
        let mut hour = now - lookback;
        let mut partitions = Vec::new();
        while hour <= now {
            partitions.push(format!("REMIND#{}", hour.format("%Y-%m-%dT%H")));
            hour += Duration::hours(1);
        }
        let reads = partitions.into_iter().map(|partition| async move {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk <= :now")
                .expression_attribute_values(":pk", s(partition))
                .expression_attribute_values(":now", s(format!("{}~", now.format("%Y-%m-%dT%H:%M:%SZ"))))
                .consistent_read(true)
                .send()
                .await
                .map_err(unavailable)
        });
        let mut due = Vec::new();
        for out in futures::future::try_join_all(reads).await? {
            for item in out.items.unwrap_or_default() {
                let (Some(booking), Some(kind), Some(at)) = (
                    text(&item, "booking_id").and_then(|b| BookingId::parse(b).ok()),
                    text(&item, "kind").and_then(MessageKind::parse),
                    time(&item, "due"),
                ) else {
                    continue;
                };
                if at <= now {
                    due.push(DueReminder {
                        booking_id: booking,
                        kind,
                        due: at,
                    });
                }
            }
        }
        Ok(due)
    }

    async fn take_reminder(
        &self,
        reminder: &DueReminder,
        tour: Option<(&TourRecord, MessageKind)>,
        now: DateTime<Utc>,
    ) -> Result<Option<MessageRef>, StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(reminder_key(&reminder.booking_id, reminder.kind, reminder.due)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(super::corrupt("reminder delete"))?;
        let mut items = vec![
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .delete(delete)
                .build(),
        ];
        if let Some((tour, kind)) = tour {
            items.push(super::tours::put(
                &self.table,
                message_item(tour, kind, now),
                Some("attribute_not_exists(pk)"),
            )?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(tour.map(|(t, kind)| MessageRef {
                booking_id: t.booking_id.clone(),
                kind,
                version: t.version,
            })),
            // Taken by another scheduler, or the tour owes that message at this version already.
            Err(e) if super::calendar::lost_a_condition(&e).is_some() => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }
}
