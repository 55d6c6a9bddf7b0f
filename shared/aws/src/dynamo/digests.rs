//! The weekly digests: `DIGEST#<ISO week>` / `<property>`, one item per property and week, a week's in one partition
//! (one query tells a tick which digests are settled). A tick claims it with an
//! update under a condition (new, or pending with its lease or retry time past), sends, and records how it ended;
//! so ticks that overlap send each digest once. Kept a little over a year (`expires_at`).

use super::messages::{attempts_of, lost_condition};
use super::{DynamoStore, key, n, s, unavailable};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tour_core::domain::ResManPropertyId;
use tour_core::ports::{DigestClaim, DigestOutcome, DigestStore, StoreError};

const RETENTION: Duration = Duration::days(400);

fn digest_key(property: &ResManPropertyId, week: &str) -> super::Item {
    key(format!("DIGEST#{week}"), property.as_str())
}

#[async_trait]
impl DigestStore for DynamoStore {
    async fn settled_digests(&self, week: &str) -> Result<Vec<ResManPropertyId>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", s(format!("DIGEST#{week}")))
            })
            .await?;
        Ok(items
            .iter()
            .filter(|item| {
                item.get("status")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|st| st != "pending")
            })
            .filter_map(|item| item.get("sk").and_then(|v| v.as_s().ok()))
            .filter_map(|sk| ResManPropertyId::parse(sk).ok())
            .collect())
    }

    async fn claim_digest(
        &self,
        property: &ResManPropertyId,
        week: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<DigestClaim, StoreError> {
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(digest_key(property, week)))
            .update_expression("SET #st = :pending, claimed_until = :until, expires_at = :exp ADD attempts :one")
            .condition_expression("attribute_not_exists(pk) OR (#st = :pending AND claimed_until < :now)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":until", s((now + lease).to_rfc3339()))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":exp", n((now + RETENTION).timestamp()))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match claimed {
            Ok(out) => Ok(DigestClaim::Claimed(attempts_of(&out))),
            Err(e) if lost_condition(&e) => {
                let item = self.get(digest_key(property, week)).await?;
                let pending = item
                    .as_ref()
                    .and_then(|i| i.get("status"))
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|st| st == "pending");
                Ok(if pending { DigestClaim::Busy } else { DigestClaim::Done })
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn finish_digest(
        &self,
        property: &ResManPropertyId,
        week: &str,
        outcome: &DigestOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(digest_key(property, week)))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":at", s(now.to_rfc3339()));
        let update = match outcome {
            DigestOutcome::Sent { provider_message_id } => update
                .update_expression("SET #st = :done, finished_at = :at, provider_message_id = :id REMOVE claimed_until")
                .expression_attribute_values(":done", s("sent"))
                .expression_attribute_values(":id", s(provider_message_id.clone())),
            DigestOutcome::Skipped { because } => update
                .update_expression("SET #st = :done, finished_at = :at, because = :why REMOVE claimed_until")
                .expression_attribute_values(":done", s("skipped"))
                .expression_attribute_values(":why", s(because.clone())),
            DigestOutcome::Failed { error } => update
                .update_expression("SET #st = :done, finished_at = :at, last_error = :why REMOVE claimed_until")
                .expression_attribute_values(":done", s("failed"))
                .expression_attribute_values(":why", s(error.clone())),
            DigestOutcome::Retry { error, after } => update
                .update_expression("SET claimed_until = :after, last_error = :why, tried_at = :at")
                .condition_expression("#st = :pending")
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":after", s(after.to_rfc3339()))
                .expression_attribute_values(":why", s(error.clone())),
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if lost_condition(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
