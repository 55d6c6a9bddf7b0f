//! The single DynamoDB table (`TABLE_NAME`): keys `pk`/`sk`, index `gsi1` on `gsi1pk`/`gsi1sk`, TTL attribute
//! `expires_at` (epoch seconds). Item kinds are told apart by their key prefixes.
//!
//! Guarantees: every "once only" rule is a condition expression, so it holds across concurrent Lambdas; a failed
//! condition is an outcome in the return type, not an error. Any other failure is `StoreError::Unavailable`, which
//! after a write means "unknown whether it happened". TTL deletion is lazy (up to days in AWS, never in moto), so
//! readers check `expires_at` themselves.

mod analytics;
mod calendar;
mod consent;
mod digests;
mod holds;
mod messages;
mod rate;
mod ratings;
mod rollups;
mod texts;
mod tours;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Duration, Utc};
use tour_core::domain::notice::ChangeNotice;
use tour_core::ports::{NoticeInbox, Recorded, StoreError};

/// How long a notice's `event_id` is remembered: far longer than any redelivery, and the 5-minute signature window.
const NOTICE_RETENTION: Duration = Duration::days(7);

/// How long after its tour a prospect's personal data is kept unless configured otherwise.
pub const DEFAULT_PERSONAL_DATA_RETENTION: Duration = Duration::days(30);

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How long after its tour the tour's personal-data item lives (its `expires_at`).
    personal_data_retention: Duration,
}

impl DynamoStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::with_client(Client::new(sdk), table)
    }

    /// With a client configured by the caller (an interceptor that counts calls, say).
    pub fn with_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            personal_data_retention: DEFAULT_PERSONAL_DATA_RETENTION,
        }
    }

    /// Keeps prospects' personal data `retention` after their tour (the tours themselves stay longer).
    pub fn with_personal_data_retention(mut self, retention: Duration) -> Self {
        self.personal_data_retention = retention;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

pub(crate) type Item = std::collections::HashMap<String, AttributeValue>;

pub(crate) fn key(pk: String, sk: &str) -> Item {
    Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(crate) fn corrupt<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

impl DynamoStore {
    /// Sends one all-or-nothing transaction.
    pub(crate) async fn transact(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<
        (),
        SdkError<
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    > {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
    }

    /// A strongly consistent read of several items in one `BatchGetItem` (at most 100 keys). Keys that DynamoDB
    /// leaves unprocessed (throttling) are asked for again, so the answer is complete: the items found, in no order.
    pub(crate) async fn get_many(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(corrupt("keys"))?,
        );
        while let Some(keys) = pending.take() {
            if !found.is_empty() {
                // Unprocessed keys mean the table is throttling us: give it a moment, as DynamoDB advises.
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(unavailable)?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys.is_empty());
        }
        Ok(found)
    }

    /// Claims the items of an index partition (`gsi1pk`) stamped before `before` (`gsi1sk` = `<RFC 3339>#<rest>`):
    /// each is re-stamped `now` under a condition on the stamp read, so of two sweepers one claims it, and it is
    /// claimed again only after another full period. The claimed items, as read.
    pub(crate) async fn claim_stale(
        &self,
        partition: &str,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Item>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :p AND gsi1sk < :before")
            .expression_attribute_values(":p", s(partition))
            .expression_attribute_values(":before", s(before.to_rfc3339()))
            .send()
            .await
            .map_err(unavailable)?;
        let mut claimed = Vec::new();
        for item in out.items.unwrap_or_default() {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            let (Some(pk), Some(sk), Some(stamp)) = (text("pk"), text("sk"), text("gsi1sk")) else {
                continue;
            };
            let rest = stamp.split_once('#').map_or("", |(_, rest)| rest);
            let claim = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, &sk)))
                .update_expression("SET gsi1sk = :now")
                .condition_expression("gsi1sk = :was")
                .expression_attribute_values(":now", s(format!("{}#{rest}", now.to_rfc3339())))
                .expression_attribute_values(":was", s(stamp.as_str()))
                .send()
                .await;
            match claim {
                Ok(_) => claimed.push(item),
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(claimed)
    }

    /// Every item a query finds, page after page: `query` builds the request (the key condition and its values),
    /// read strongly consistent.
    pub(crate) async fn query_all(
        &self,
        query: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_pages(true, None, query).await
    }

    /// The items a query finds, page after page, or up to `limit`; strongly consistent when `consistent` and the
    /// query is on the table (an index offers only eventual consistency).
    pub(crate) async fn query_pages(
        &self,
        consistent: bool,
        limit: Option<usize>,
        query: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let query = query();
            let consistent = consistent && query.get_index_name().is_none();
            let mut query = query.table_name(&self.table).consistent_read(consistent);
            if let Some(limit) = limit {
                query = query.limit(i32::try_from(limit.saturating_sub(items.len())).unwrap_or(i32::MAX));
            }
            let out = query.set_exclusive_start_key(start).send().await.map_err(unavailable)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|limit| items.len() >= limit) {
                return Ok(items);
            }
        }
    }

    /// A strongly consistent read of one item.
    pub(crate) async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

#[async_trait]
impl NoticeInbox for DynamoStore {
    async fn record_once(&self, notice: &ChangeNotice, now: DateTime<Utc>) -> Result<Recorded, StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("NOTICE#{}", notice.event_id)))
            .item("sk", s("NOTICE"))
            .item("gsi1pk", s(format!("APPT#{}", notice.appointment_id)))
            .item("gsi1sk", s(format!("NOTICE#{}", notice.sent_at.to_rfc3339())))
            .item("appointment_id", s(notice.appointment_id.as_str()))
            .item("status", s(notice.status.as_resman()))
            .item("updated_fields", s(notice.updated_fields.join(",")))
            .item("sent_at", s(notice.sent_at.to_rfc3339()))
            .item("received_at", s(now.to_rfc3339()))
            .item("expires_at", n((now + NOTICE_RETENTION).timestamp()))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(agent) = &notice.staff_member {
            put = put.item("staff_member", s(agent.as_str()));
        }
        if let Some(property) = &notice.property_id {
            put = put.item("property_id", s(property.as_str()));
        }
        if let Some(at) = notice.scheduled_at {
            put = put.item("scheduled_at", s(at.to_rfc3339()));
        }
        match put.send().await {
            Ok(_) => Ok(Recorded::New),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                Ok(Recorded::AlreadySeen)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}
