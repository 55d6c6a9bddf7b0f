//! One adapter per port: DynamoDB, SQS, SES, End User Messaging SMS, Secrets Manager, ResMan, and the chatbot's and staff's webhooks.
//! Each implements `tour_core::ports`; nothing here decides a rule.

pub mod callback;
pub mod dynamo;
pub mod outbound;
pub mod resman;
pub mod secrets;
pub mod ses;
pub mod sms;
pub mod sqs;
pub mod staff_webhook;

/// A bound on one SDK operation, retries included (the SDK sets none of its own): a sender starts a call only with
/// that much time left in its invocation.
pub(crate) fn operation_timeout(timeout: std::time::Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(timeout)
        .build()
}

/// A setting or secret that could not be read at cold start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("secret {arn} could not be read: {reason}")]
    Secret { arn: String, reason: String },
}

pub trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The kind of JSON error only: serde's message could quote the secret's content.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "missing or mistyped field",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}
