//! The chatbot's change callbacks over HTTP: a JSON `POST` to `CHATBOT_CALLBACK_URL`, signed like ResMan's webhook
//! (`X-DomIQ-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`) under its own secret, with the
//! callback's `event_id` also in `X-Event-Id` so a receiver can drop a redelivery before reading the body.

use super::outbound::Outbound;
use async_trait::async_trait;
use std::time::Duration;
use tour_core::domain::signature;
use tour_core::ports::{CallbackError, ChatbotCallbacks};

pub struct HttpCallbacks {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: crate::secrets::RotatingSecret,
}

impl HttpCallbacks {
    /// `timeout` bounds how long a slow receiver can hold the worker (the change itself never waits on it).
    /// Refused (with the reason, never the URL) when `outbound` may not call the URL.
    pub fn new(
        url: &str,
        secret: crate::secrets::RotatingSecret,
        timeout: Duration,
        outbound: Outbound,
    ) -> Result<Self, String> {
        let url = outbound.check(url)?;
        Ok(Self {
            client: outbound.client(timeout).map_err(|e| e.to_string())?,
            url,
            secret,
        })
    }
}

#[async_trait]
impl ChatbotCallbacks for HttpCallbacks {
    async fn send(&self, event_id: &str, body: &str) -> Result<(), CallbackError> {
        // Signed with every value the rotating secret accepts now, newest first: a receiver that has the new
        // secret, or still only the old one, verifies it.
        let now = chrono::Utc::now();
        let ring = self.secret.ring(now).await;
        let signed = signature::sign_with_each(ring.accepted(now), now.timestamp(), body.as_bytes());
        let answer = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("x-domiq-signature", signed)
            .header("x-event-id", event_id)
            .body(body.to_owned())
            .send()
            .await
            // Without the URL: it may carry a token.
            .map_err(|e| CallbackError(format!("not delivered ({})", kind(&e))))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(CallbackError(format!("answered HTTP {}", answer.status().as_u16())))
        }
    }
}

fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection refused"
    } else {
        "request failed"
    }
}
