//! Signed webhooks for staff changes (contract section 4, shape [assumed]).
//!
//! Delivery is one attempt, in a task spawned after the staff change was answered; its outcome is kept
//! so that tests can see what was sent and what the receiver answered. No retries: a receiver under test
//! is expected to answer, and retry policy is the relay's concern, not ResMan's.

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

/// Where staff changes are pushed, and the secret they are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `X-ResMan-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
pub fn sign_webhook(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC hashes keys longer than a block and pads shorter ones, so no key length is refused.
        unreachable!("HMAC-SHA256 accepts keys of any length")
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON body of a staff-change webhook.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StaffChangeNotice {
    pub event_id: Uuid,
    pub appointment_id: Uuid,
    pub status: Option<&'static str>,
    pub updated_fields: Vec<&'static str>,
    pub staff_member: Option<Uuid>,
    pub timestamp: String,
    pub property_id: Uuid,
    pub scheduled_at: String,
}

/// One webhook sent (or being sent), as `GET /_sandbox/webhooks` lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Delivery {
    pub event_id: Uuid,
    pub url: String,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    /// Exactly the bytes that were signed, so a test can verify the signature from the log.
    pub body: String,
    /// True until the receiver answered or the attempt failed.
    pub pending: bool,
}

/// Posts one signed body; `Ok` carries the receiver's HTTP status, whatever it is.
pub(crate) async fn send(
    client: &reqwest::Client,
    target: &WebhookTarget,
    body: String,
    timestamp: i64,
) -> Result<u16, String> {
    let signature = sign_webhook(&target.secret, timestamp, body.as_bytes());
    client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-ResMan-Signature", signature)
        .body(body)
        .send()
        .await
        .map(|response| response.status().as_u16())
        .map_err(|e| error_chain(&e))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() {
        // Computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"Jefe", b"1700000000.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign_webhook("Jefe", 1_700_000_000, b"{}"),
            "t=1700000000,v1=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207"
        );
    }

    #[test]
    fn a_different_secret_or_body_changes_the_signature() {
        let base = sign_webhook("secret", 1, b"body");
        assert_ne!(base, sign_webhook("other", 1, b"body"));
        assert_ne!(base, sign_webhook("secret", 1, b"bodY"));
        assert_ne!(base, sign_webhook("secret", 2, b"body"));
    }
}
