//! Email through SES v2: the message built as MIME (mail-builder) with its plain-text and HTML parts and, for tour
//! messages, the invite as a `text/calendar; method=...` part, sent as raw content (moto keeps it whole, so tests can
//! read the invite back). The sender address and the configuration set come from the template.

use async_trait::async_trait;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use mail_builder::MessageBuilder;
use tour_core::domain::email::Mail;
use tour_core::ports::{MailError, Mailer};

pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    sender: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// `timeout` bounds one send, retries included (the SDK sets no bound of its own): the sender starts a send
    /// only with that much time left in its invocation.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        sender: impl Into<String>,
        configuration_set: Option<String>,
        timeout: std::time::Duration,
    ) -> Self {
        let config = aws_sdk_sesv2::config::Builder::from(sdk)
            .timeout_config(crate::operation_timeout(timeout))
            .build();
        Self {
            client: aws_sdk_sesv2::Client::from_conf(config),
            sender: sender.into(),
            configuration_set: configuration_set.filter(|c| !c.trim().is_empty()),
        }
    }

    /// The MIME message: multipart/alternative (text, HTML) and the invite.
    pub fn mime(&self, email: &Mail) -> Result<Vec<u8>, MailError> {
        let mut builder = MessageBuilder::new()
            .from((email.from_name.as_str(), self.sender.as_str()))
            .to(email.to.iter().map(String::as_str).collect::<Vec<_>>())
            .subject(email.subject.as_str())
            .text_body(email.text.as_str())
            .html_body(email.html.as_str());
        if let Some(reply_to) = &email.reply_to {
            builder = builder.reply_to(reply_to.as_str());
        }
        if let Some(invite) = &email.invite {
            builder = builder.attachment(
                format!("text/calendar; method={}; charset=utf-8", invite.method),
                "invite.ics",
                invite.ics.as_bytes().to_vec(),
            );
        }
        builder.write_to_vec().map_err(|e| MailError {
            reason: format!("the message could not be built: {e}"),
            retryable: false,
        })
    }
}

/// SES's refusals that trying again will not fix.
fn permanent(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "MessageRejected"
                | "MailFromDomainNotVerifiedException"
                | "AccountSuspendedException"
                | "BadRequestException"
        )
    )
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Mail) -> Result<String, MailError> {
        let raw = RawMessage::builder()
            .data(Blob::new(self.mime(email)?))
            .build()
            .map_err(|e| MailError {
                reason: e.to_string(),
                retryable: false,
            })?;
        let sent = self
            .client
            .send_email()
            .from_email_address(&self.sender)
            .destination(Destination::builder().set_to_addresses(Some(email.to.clone())).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match sent {
            Ok(out) => Ok(out.message_id.unwrap_or_default()),
            Err(e) => {
                let code = match &e {
                    SdkError::ServiceError(service) => service.err().code().map(str::to_owned),
                    _ => None,
                };
                // The error's text names no recipient: SES's messages carry addresses only in rejections, and those
                // are summarised by their code.
                let reason = match &code {
                    Some(code) => format!("SES refused it ({code})"),
                    None => format!(
                        "SES could not be reached ({})",
                        short(&DisplayErrorContext(&e).to_string())
                    ),
                };
                Err(MailError {
                    retryable: !permanent(code.as_deref()),
                    reason,
                })
            }
        }
    }
}

/// The first line of a transport error, without any address it might quote.
fn short(text: &str) -> String {
    text.lines().next().unwrap_or_default().chars().take(120).collect()
}
