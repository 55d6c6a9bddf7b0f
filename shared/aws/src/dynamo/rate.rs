//! The pacing schedules of ResMan accounts. Item: `RATE#<key>` / `RATE` with `next_due` (epoch microseconds) and a
//! version `v`. A reservation reads the schedule and writes it back under the condition that `v` is still what was
//! read, so two workers never reserve the same moment; the loser reads again at once (it waits only for its moment).

use super::{DynamoStore, key, n, unavailable};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use chrono::{DateTime, Utc};
use tour_core::domain::rate::{Rate, Schedule};
use tour_core::ports::{RateLimiter, StoreError};

fn schedule_key(name: &str) -> super::Item {
    key(format!("RATE#{name}"), "RATE")
}

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn reserve(&self, name: &str, rate: Rate, now: DateTime<Utc>) -> Result<chrono::Duration, StoreError> {
        // Each lost round means another worker reserved a moment: with N workers waiting, at most N rounds.
        for _ in 0..200 {
            let stored = self.get(schedule_key(name)).await?;
            let number = |name: &str| {
                stored
                    .as_ref()
                    .and_then(|item| item.get(name))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok())
            };
            if stored.is_some() && (number("next_due").is_none() || number("v").is_none()) {
                return Err(StoreError::Corrupt(format!("the pacing schedule {name} is unreadable")));
            }
            let read = Schedule {
                next_due: number("next_due").and_then(DateTime::from_timestamp_micros),
            };
            let (reserved, go) = read.reserve(rate, now);
            let next_due = reserved.next_due.unwrap_or(now).timestamp_micros();
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(schedule_key(name)))
                .item("next_due", n(next_due))
                .item("v", n(number("v").map_or(1, |v| v + 1)))
                // An account not called for a day needs no schedule: TTL tidies it away (a missing one is idle).
                .item("expires_at", n((now + chrono::Duration::days(1)).timestamp()));
            put = match number("v") {
                Some(version) => put
                    .condition_expression("v = :v")
                    .expression_attribute_values(":v", n(version)),
                None => put.condition_expression("attribute_not_exists(pk)"),
            };
            match put.send().await {
                Ok(_) => return Ok(go - now),
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "the pacing schedule {name} kept changing"
        )))
    }
}
