//! Where our texts went, so a prospect's reply finds its tour, and the replies applied. Items:
//! - `TEXTID#<the service's message id>` / `TEXT`: the tour a text was about, for a reply that names it
//!   (`previousPublishedMessageId`);
//! - `TEXTTO#<SHA-256 of the number>` / `LATEST`: the tour of our latest text to a number (the number itself is not
//!   kept), for a reply that names no text;
//! - `REPLY#<the service's inboundMessageId>` / `REPLY`: a reply applied, kept a week.
//!
//! Each expires (the table's TTL) when a reply could no longer be placed by it.

use super::{DynamoStore, Item, key, n, s, unavailable};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tour_core::domain::consent::phone_digest;
use tour_core::domain::{BookingId, Phone};
use tour_core::ports::{SentText, StoreError, TextLog};

/// How long a reply's mark is kept: the service redelivers within minutes.
const REPLY_MARK_KEPT: Duration = Duration::days(7);

fn pointer(pk: String, sk: &str, booking: &BookingId, until: DateTime<Utc>) -> Item {
    let mut item = key(pk, sk);
    item.insert("booking_id".into(), s(booking.as_str()));
    item.insert("expires_at".into(), n(until.timestamp()));
    item
}

impl DynamoStore {
    /// Writes one item as it is (no condition: writing it twice is the same item).
    async fn put_plain(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn pointed(&self, pk: String, sk: &str) -> Result<Option<BookingId>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out
            .item
            .as_ref()
            .and_then(|item| item.get("booking_id"))
            .and_then(|v| v.as_s().ok())
            .and_then(|b| BookingId::parse(b).ok()))
    }
}

#[async_trait]
impl TextLog for DynamoStore {
    async fn text_sent(&self, text: &SentText) -> Result<(), StoreError> {
        let items = [
            pointer(
                format!("TEXTID#{}", text.provider_message_id),
                "TEXT",
                &text.booking_id,
                text.until,
            ),
            pointer(
                format!("TEXTTO#{}", phone_digest(&text.to)),
                "LATEST",
                &text.booking_id,
                text.until,
            ),
        ];
        for item in items {
            self.put_plain(item).await?;
        }
        Ok(())
    }

    async fn replied_tour(&self, previous: Option<&str>, from: &Phone) -> Result<Option<BookingId>, StoreError> {
        if let Some(previous) = previous
            && let Some(booking) = self.pointed(format!("TEXTID#{previous}"), "TEXT").await?
        {
            return Ok(Some(booking));
        }
        self.pointed(format!("TEXTTO#{}", phone_digest(from)), "LATEST").await
    }

    async fn reply_applied(&self, inbound_id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("REPLY#{inbound_id}"), "REPLY")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item.is_some())
    }

    async fn mark_reply_applied(&self, inbound_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = key(format!("REPLY#{inbound_id}"), "REPLY");
        item.insert("applied_at".into(), s(now.to_rfc3339()));
        item.insert("expires_at".into(), n((now + REPLY_MARK_KEPT).timestamp()));
        self.put_plain(item).await
    }
}
