//! ResMan paced per account: every HTTP request to ResMan first reserves the next free moment of its account's
//! schedule (shared by every worker through the store) and waits until then. ResMan's limits are per account, so one busy
//! customer never slows another, and however many poll workers run at once an account is never called faster than
//! its rate. The adapter asks before each request (a change window split in halves reserves a moment per half).

use crate::domain::rate::Rate;
use crate::domain::resman::ResManSite;
use crate::ports::{CallPacer, RateLimiter, ResManError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub struct AccountPacer {
    pub limiter: Arc<dyn RateLimiter>,
    pub rate: Rate,
    /// The longest a request waits for its moment; further ahead, it gives up (its message is retried later).
    pub patience: chrono::Duration,
    pub clock: fn() -> DateTime<Utc>,
}

/// The schedule of an account (the default account's is `account-default`).
pub fn schedule_of(site: &ResManSite) -> String {
    site.account
        .map_or_else(|| "account-default".to_owned(), |a| format!("account-{a}"))
}

#[async_trait]
impl CallPacer for AccountPacer {
    async fn before_call(&self, site: &ResManSite) -> Result<(), ResManError> {
        let now = (self.clock)();
        let wait = self
            .limiter
            .reserve(&schedule_of(site), self.rate, now)
            .await
            .map_err(|e| ResManError::Unreachable(format!("not sent: the pacing store failed ({e})")))?;
        if wait > self.patience {
            // The moment stays reserved and unused: the account's rate is only ever undershot.
            return Err(ResManError::Unreachable(format!(
                "not sent: {} is booked {} s ahead; tried again later",
                schedule_of(site),
                wait.num_seconds()
            )));
        }
        tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
        Ok(())
    }
}
