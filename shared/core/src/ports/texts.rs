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
