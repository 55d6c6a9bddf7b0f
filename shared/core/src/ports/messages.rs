//! The messages a tour owes and the services that carry them: email, the staff's webhook, the chatbot's callback.

use super::StoreError;
use async_trait::async_trait;

/// What claiming a message for its send found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This sender may send it now: the tour as it stands, and how many tries this is.
    Claimed(Box<crate::domain::record::TourRecord>, u32),
    /// Sent or superseded already: nothing to do (a redelivered message).
    Done,
    /// Failed for good already: its queue message belongs in the dead-letter queue.
    Failed,
    /// Another sender holds it (its claim has not lapsed): try again later.
    Busy,
    /// No such message (or tour).
    Missing,
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        provider_message_id: String,
        /// The calendar invitation it carried (`domain::notify::invitation`).
        invite: Option<String>,
    },
    /// The tour changed so the message no longer fits it, or it would only repeat one sent: `because` says which.
    Superseded { because: String },
    /// Given up (the last try failed, or it can never be sent).
    Failed { error: String },
    /// This try failed; the message stays owed and the claim is released.
    Retry { error: String },
}

/// The messages tours owe, and their delivery state.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// The tour and every message it owes or sent, in one read.
    async fn tour_with_messages(
        &self,
        booking: &crate::domain::BookingId,
    ) -> Result<Option<(crate::domain::record::TourRecord, Vec<crate::domain::notify::Delivery>)>, StoreError>;

    /// Claims a pending message for one send, for `lease` (longer than a send takes); counts the try.
    async fn claim_message(
        &self,
        message: &crate::domain::notify::MessageRef,
        now: chrono::DateTime<chrono::Utc>,
        lease: chrono::Duration,
    ) -> Result<Claim, StoreError>;

    /// Makes a delivery given up on pending again, from its first try (an operator redrove its queue message once
    /// the cause was fixed). `false` when it is not `failed` (another receive reopened it first, or it never failed).
    async fn reopen_failed(
        &self,
        message: &crate::domain::notify::MessageRef,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;

    /// Records how the claimed send ended: `false` when nothing was recorded (the message was no longer pending:
    /// sent, superseded or given up already).
    async fn finish_message(
        &self,
        message: &crate::domain::notify::MessageRef,
        outcome: &SendOutcome,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;

    /// Records a sent text's delivery receipt, once: only on the message sent as `provider_message_id`, and only its
    /// first receipt (`false`: no such sent text, or it has its receipt already).
    async fn record_receipt(
        &self,
        message: &crate::domain::notify::MessageRef,
        provider_message_id: &str,
        receipt: &crate::domain::notify::TextReceipt,
    ) -> Result<bool, StoreError>;

    /// Owes one more message of the tour as it now stands (a reminder's email when its text failed), pending; `None`
    /// when the tour owes that message at its version already.
    async fn owe_message(
        &self,
        tour: &crate::domain::record::TourRecord,
        kind: crate::domain::notify::MessageKind,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<crate::domain::notify::MessageRef>, StoreError>;

    /// Claims the messages still pending that were owed before `before` (their queue message was lost): each is
    /// stamped `now`, so it is claimed again only after another full period.
    async fn claim_unsent_messages(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::domain::notify::MessageRef>, StoreError>;
}

/// A reminder whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub booking_id: crate::domain::BookingId,
    pub kind: crate::domain::notify::MessageKind,
    pub due: chrono::DateTime<chrono::Utc>,
}

/// Reminders waiting for their time (set and dropped with the changes of their tour).
#[async_trait]
pub trait ReminderStore: Send + Sync {
    /// The reminders due by `now`, back to `lookback` ago.
    async fn due_reminders(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        lookback: chrono::Duration,
    ) -> Result<Vec<DueReminder>, StoreError>;

    /// Takes a due reminder, once (of two schedulers, one): with a tour, it becomes the message of the given kind
    /// (the reminder's, or its text) the tour owes at its current version, written in the same transaction; without,
    /// it is only dropped. The message, when one was made.
    async fn take_reminder(
        &self,
        reminder: &DueReminder,
        tour: Option<(&crate::domain::record::TourRecord, crate::domain::notify::MessageKind)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<crate::domain::notify::MessageRef>, StoreError>;
}

/// Why an email could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the email was not sent: {reason}")]
pub struct MailError {
    pub reason: String,
    /// Whether trying again may work (a throttle, an outage), or never will (a rejected address).
    pub retryable: bool,
}

/// The mail service (SES v2 in AWS, moto locally).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email; the provider's message id.
    async fn send(&self, email: &crate::domain::email::Mail) -> Result<String, MailError>;
}

/// A property's staff webhook (a chat channel's incoming webhook).
#[async_trait]
pub trait StaffWebhook: Send + Sync {
    /// Posts one alert as JSON; `event_id` (`<tour>:<message>`) lets a receiver drop a redelivery. What the
    /// receiver answered, for the delivery record.
    async fn post(&self, url: &str, event_id: &str, body: &serde_json::Value) -> Result<String, MailError>;
}

/// Why a callback to the chatbot did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the chatbot's callback failed: {0}")]
pub struct CallbackError(pub String);

/// The chatbot's change callbacks (DomIQ learns of every change of a tour in one of its conversations).
#[async_trait]
pub trait ChatbotCallbacks: Send + Sync {
    /// Posts one signed JSON callback; any answer but 2xx is a failure to retry.
    async fn send(&self, event_id: &str, body: &str) -> Result<(), CallbackError>;
}
