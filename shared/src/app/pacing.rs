//! ResMan paced per account: every HTTP request to ResMan first takes a token from its account's bucket (shared by
//! every worker through the store), waiting when the bucket is empty. ResMan's limits are per account, so one busy
//! customer never slows another, and however many poll workers run at once an account is never called faster than
//! its rate. The adapter asks before each request (a change window split in halves costs a token per half).

use crate::domain::rate::Rate;
use crate::domain::resman::ResManSite;
use crate::ports::{CallPacer, RateLimiter, ResManError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub struct AccountPacer {
    pub limiter: Arc<dyn RateLimiter>,
    pub rate: Rate,
    /// The longest a request waits for a token before it gives up (its message is then retried later).
    pub patience: chrono::Duration,
    pub clock: fn() -> DateTime<Utc>,
}

/// The bucket of an account (the default account's is `default`).
pub fn bucket_of(site: &ResManSite) -> String {
    site.account
        .map_or_else(|| "account-default".to_owned(), |a| format!("account-{a}"))
}

#[async_trait]
impl CallPacer for AccountPacer {
    async fn before_call(&self, site: &ResManSite) -> Result<(), ResManError> {
        let bucket = bucket_of(site);
        let started = (self.clock)();
        loop {
            let now = (self.clock)();
            let wait = self
                .limiter
                .try_take(&bucket, self.rate, now)
                .await
                .map_err(|e| ResManError::Unreachable(format!("not sent: the pacing store failed ({e})")))?;
            let Some(wait) = wait else {
                return Ok(());
            };
            if now + wait - started > self.patience {
                return Err(ResManError::Unreachable(format!(
                    "not sent: {bucket} is at its rate; tried again later"
                )));
            }
            tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
        }
    }
}
