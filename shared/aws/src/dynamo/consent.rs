//! Consent to texts: one item per grant or revocation, `CONSENT#<property>#<number's digest>` /
//! `<at>#<grant|revoke>#<booking id or text>`, so a number's events at a property are one query and no write ever
//! contends with another (a grant comes inside the booking's transaction without a condition). No item holds the
//! number itself: the key holds its digest. A grant holds the words shown and its conversation and lives as long as
//! the prospect's personal data; a revocation holds the word used and no expiry, so an old grant never comes back.
//! An erased number leaves `OPTOUT#<digest>` / `OPTOUT`, and nothing else.

use super::{DynamoStore, Item, key, n, s, unavailable};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tour_core::domain::consent::{ConsentChange, ConsentEvent, ConsentSource, phone_digest};
use tour_core::domain::{BookingId, ConversationId, Phone, ResManPropertyId};
use tour_core::ports::{ConsentRecord, Consents, StoreError};

fn consent_pk(property: &ResManPropertyId, phone: &Phone) -> String {
    format!("CONSENT#{property}#{}", phone_digest(phone))
}

pub(crate) fn opt_out_key(phone: &Phone) -> Item {
    key(format!("OPTOUT#{}", phone_digest(phone)), "OPTOUT")
}

/// The event's item; a grant expires at `grant_expires_at` (epoch seconds), with the personal data it came with.
pub(crate) fn consent_item(event: &ConsentEvent, grant_expires_at: i64) -> Item {
    let at = event.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let (kind, source) = match &event.source {
        ConsentSource::Conversation { booking_id, .. } => ("conversation", booking_id.as_str()),
        ConsentSource::TextReply => ("text_reply", "text"),
        ConsentSource::OptOutList => ("opt_out_list", "optout"),
    };
    let change = match &event.change {
        ConsentChange::Granted { .. } => "grant",
        ConsentChange::Revoked { .. } => "revoke",
    };
    let mut item = key(
        consent_pk(&event.property_id, &event.phone),
        &format!("{at}#{change}#{source}"),
    );
    item.insert("at".into(), s(at));
    item.insert("source".into(), s(kind));
    match &event.change {
        ConsentChange::Granted { words } => {
            item.insert("words".into(), s(words.as_str()));
            item.insert("expires_at".into(), n(grant_expires_at));
        }
        ConsentChange::Revoked { by } => {
            item.insert("by".into(), s(by.as_str()));
        }
    }
    if let ConsentSource::Conversation {
        conversation_id,
        booking_id,
    } = &event.source
    {
        item.insert("conversation_id".into(), s(conversation_id.as_str()));
        item.insert("booking_id".into(), s(booking_id.as_str()));
    }
    item
}

fn event_from(item: &Item, property: &ResManPropertyId, phone: &Phone) -> Result<ConsentEvent, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let bad = || StoreError::Corrupt("a consent item".into());
    let at = text("at")
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .ok_or_else(bad)?
        .with_timezone(&Utc);
    let change = match (text("words"), text("by")) {
        (Some(words), None) => ConsentChange::Granted { words },
        (None, Some(by)) => ConsentChange::Revoked { by },
        _ => return Err(bad()),
    };
    let source = match text("source").as_deref() {
        Some("conversation") => ConsentSource::Conversation {
            conversation_id: text("conversation_id")
                .and_then(|c| ConversationId::parse(&c).ok())
                .ok_or_else(bad)?,
            booking_id: text("booking_id")
                .and_then(|b| BookingId::parse(&b).ok())
                .ok_or_else(bad)?,
        },
        Some("text_reply") => ConsentSource::TextReply,
        Some("opt_out_list") => ConsentSource::OptOutList,
        _ => return Err(bad()),
    };
    Ok(ConsentEvent {
        property_id: property.clone(),
        phone: phone.clone(),
        at,
        change,
        source,
    })
}

impl DynamoStore {
    /// Every consent item of `phone` at `property`, as keys to delete.
    pub(crate) async fn consent_keys(
        &self,
        property: &ResManPropertyId,
        phone: &Phone,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", s(consent_pk(property, phone)))
                    .projection_expression("pk, sk")
            })
            .await?;
        for item in &mut items {
            item.retain(|k, _| k == "pk" || k == "sk");
        }
        Ok(items)
    }
}

#[async_trait]
impl Consents for DynamoStore {
    async fn consent(&self, property: &ResManPropertyId, phone: &Phone) -> Result<ConsentRecord, StoreError> {
        let now = Utc::now().timestamp();
        let (items, marker) = tokio::join!(
            self.query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", s(consent_pk(property, phone)))
            }),
            self.get(opt_out_key(phone)),
        );
        let lapsed = |item: &Item| {
            item.get("expires_at")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|at| at <= now)
        };
        Ok(ConsentRecord {
            // A grant past its expiry is gone, whenever TTL gets round to deleting it.
            events: items?
                .iter()
                .filter(|item| !lapsed(item))
                .map(|item| event_from(item, property, phone))
                .collect::<Result<_, _>>()?,
            opted_out: marker?.is_some(),
        })
    }

    async fn record_consent(&self, event: &ConsentEvent) -> Result<(), StoreError> {
        let expires = (event.at + self.personal_data_retention).timestamp();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(consent_item(event, expires)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
