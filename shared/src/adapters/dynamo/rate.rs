//! Token buckets for pacing ResMan calls per account. Item: `RATE#<key>` / `RATE` with `tokens`, `at` (epoch
//! milliseconds) and a version `v`. A take reads the bucket and writes it back under the condition that `v` is still
//! what was read, so concurrent takers never spend the same token; the loser waits a moment and tries again.

use super::{DynamoStore, key, n, unavailable};
use crate::domain::rate::{Bucket, Rate};
use crate::ports::{RateLimiter, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

fn bucket_key(name: &str) -> super::Item {
    key(format!("RATE#{name}"), "RATE")
}

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn try_take(
        &self,
        name: &str,
        rate: Rate,
        now: DateTime<Utc>,
    ) -> Result<Option<chrono::Duration>, StoreError> {
        {
            let stored = self.get(bucket_key(name)).await?;
            // A bucket item we cannot read would be taken as full forever: say so instead.
            if stored
                .as_ref()
                .is_some_and(|item| item.get("tokens").is_none_or(|v| v.as_n().is_err()))
            {
                return Err(StoreError::Corrupt(format!(
                    "the rate bucket {name} has no number of tokens"
                )));
            }
            let read = stored.as_ref().and_then(|item| {
                let number = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<f64>().ok())
                };
                let bucket = Bucket {
                    tokens: number("tokens")?,
                    at: DateTime::from_timestamp_millis(number("at")? as i64)?,
                };
                Some((bucket, number("v")? as i64))
            });
            let bucket = read.map_or_else(|| Bucket::full(rate, now), |(bucket, _)| bucket);
            let taken = match bucket.take(rate, now) {
                Ok(taken) => taken,
                Err(wait) => return Ok(Some(wait)),
            };
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(bucket_key(name)))
                .item("tokens", AttributeValue::N(format!("{:.6}", taken.tokens)))
                .item("at", n(taken.at.timestamp_millis()))
                .item("v", n(read.map_or(1, |(_, v)| v + 1)))
                // An account not called for a day needs no bucket: TTL tidies it away (a missing bucket is full).
                .item("expires_at", n((now + chrono::Duration::days(1)).timestamp()));
            put = match read {
                Some((_, version)) => put
                    .condition_expression("v = :v")
                    .expression_attribute_values(":v", n(version)),
                None => put.condition_expression("attribute_not_exists(pk)"),
            };
            match put.send().await {
                Ok(_) => Ok(None),
                // Another worker took a token meanwhile: try again after a short wait, spread (by the clock's
                // nanoseconds) so that many waiting workers do not all come back at once.
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                    Ok(Some(chrono::Duration::milliseconds(
                        10 + i64::from(Utc::now().timestamp_subsec_nanos() % 40_000_000) / 1_000_000,
                    )))
                }
                Err(e) => Err(unavailable(e)),
            }
        }
    }
}
