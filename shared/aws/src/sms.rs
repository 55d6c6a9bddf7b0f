//! Texts through AWS End User Messaging SMS (`pinpoint-sms-voice-v2`): transactional texts from the template's phone
//! pool (or number), under its configuration set, whose event destination sends the delivery receipts. Locally the
//! SDK is pointed at `infra/local/sms_sandbox.py`, which speaks the same API.

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageError;
use aws_sdk_pinpointsmsvoicev2::types::{ConflictExceptionReason, MessageType};
use tour_core::ports::{OutgoingText, TextError, TextSender};

pub struct SmsTexts {
    client: aws_sdk_pinpointsmsvoicev2::Client,
    /// The phone pool (or number) texts come from.
    origination: String,
    configuration_set: Option<String>,
}

impl SmsTexts {
    /// `timeout` bounds one send, retries included, as for email.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        origination: impl Into<String>,
        configuration_set: Option<String>,
        timeout: std::time::Duration,
    ) -> Self {
        let config = aws_sdk_pinpointsmsvoicev2::config::Builder::from(sdk)
            .timeout_config(crate::operation_timeout(timeout))
            .build();
        Self {
            client: aws_sdk_pinpointsmsvoicev2::Client::from_conf(config),
            origination: origination.into(),
            configuration_set: configuration_set.filter(|c| !c.trim().is_empty()),
        }
    }
}

/// The text service of a deployment that has none (no phone pool registered yet): every text is refused at once,
/// so a reminder's email goes instead.
pub struct NoTextService;

#[async_trait]
impl TextSender for NoTextService {
    async fn send_text(&self, _: &OutgoingText) -> Result<String, TextError> {
        Err(TextError::Refused(
            "this deployment has no text service (SMS_ORIGINATION is not set)".to_owned(),
        ))
    }
}

/// What a refusal means for the text. The reason names the service's code only: its messages may quote the number.
fn refusal(error: &SdkError<SendTextMessageError>) -> TextError {
    let SdkError::ServiceError(service) = error else {
        let first = DisplayErrorContext(error).to_string();
        return TextError::Unavailable(format!(
            "the service could not be reached ({})",
            first
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect::<String>()
        ));
    };
    let code = service.err().code().unwrap_or("unknown").to_owned();
    match service.err() {
        SendTextMessageError::ConflictException(conflict)
            if conflict.reason() == Some(&ConflictExceptionReason::DestinationPhoneNumberOptedOut) =>
        {
            TextError::OptedOut
        }
        SendTextMessageError::ThrottlingException(_)
        | SendTextMessageError::InternalServerException(_)
        | SendTextMessageError::ServiceQuotaExceededException(_) => {
            TextError::Unavailable(format!("the service said {code}"))
        }
        _ => TextError::Refused(format!("the service said {code}")),
    }
}

#[async_trait]
impl TextSender for SmsTexts {
    async fn send_text(&self, text: &OutgoingText) -> Result<String, TextError> {
        let context = (!text.context.is_empty()).then(|| text.context.iter().cloned().collect());
        let sent = self
            .client
            .send_text_message()
            .destination_phone_number(text.to.expose())
            .origination_identity(&self.origination)
            .message_body(&text.body)
            .message_type(MessageType::Transactional)
            .set_configuration_set_name(self.configuration_set.clone())
            .set_context(context)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(out.message_id.unwrap_or_default()),
            Err(e) => Err(refusal(&e)),
        }
    }
}
