//! The text-message service (AWS End User Messaging SMS; locally its stand-in, `infra/local/sms_sandbox.py`).

use async_trait::async_trait;

/// A text ready for the service: to whom, the words, and what it is about (ids only, echoed in its delivery
/// receipt so the receipt finds its message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingText {
    pub to: crate::domain::Phone,
    pub body: String,
    /// At most five pairs, ids and kinds only: the service keeps them with the text's records.
    pub context: Vec<(String, String)>,
}

/// Why a text was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The number is on the service's opt-out list (the prospect texted STOP to it): never retried, and the
    /// revocation is ours to record.
    #[error("the number has opted out of texts")]
    OptedOut,
    /// The service refused this text for good (a malformed number, a body it will not take).
    #[error("the text was refused: {0}")]
    Refused(String),
    /// Throttled, or the service could not be reached: trying again may work.
    #[error("the text service is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait TextSender: Send + Sync {
    /// Sends one text: the service's message id, which its delivery receipts carry.
    async fn send_text(&self, text: &OutgoingText) -> Result<String, TextError>;
}

/// A text the service took, as a reply to it finds its tour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentText {
    pub booking_id: crate::domain::BookingId,
    pub to: crate::domain::Phone,
    /// The service's id of the text, which a reply to it names (`previousPublishedMessageId`).
    pub provider_message_id: String,
    /// Until when a reply is placed by it (the tour's end and some days: a reply after that finds no tour).
    pub until: chrono::DateTime<chrono::Utc>,
}

/// Where our texts went, so that a prospect's reply finds its tour, and the replies already applied (the service
/// may deliver one twice).
#[async_trait]
pub trait TextLog: Send + Sync {
    /// Keeps a text sent: by its id, and as the latest text to its number.
    async fn text_sent(&self, text: &SentText) -> Result<(), super::StoreError>;

    /// The tour a reply from `from` is about: the one whose text it answers (`previous`, the service's id of our
    /// last text to that number), else the tour of our latest text to the number.
    async fn replied_tour(
        &self,
        previous: Option<&str>,
        from: &crate::domain::Phone,
    ) -> Result<Option<crate::domain::BookingId>, super::StoreError>;

    /// Whether the reply with this id (the service's `inboundMessageId`) was applied already.
    async fn reply_applied(&self, inbound_id: &str) -> Result<bool, super::StoreError>;

    /// Marks a reply applied (kept a week: the service's redeliveries come within minutes).
    async fn mark_reply_applied(
        &self,
        inbound_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), super::StoreError>;
}
