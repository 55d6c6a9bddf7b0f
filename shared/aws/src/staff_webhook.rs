//! A property's staff webhook over HTTP: the alert posted as JSON, with `X-Event-Id` so a receiver can drop a
//! redelivery. A chat service's incoming-webhook URL is itself the credential, so it never reaches a log or an
//! error message.

use super::outbound::Outbound;
use async_trait::async_trait;
use std::time::Duration;
use tour_core::ports::{MailError, StaffWebhook};

pub struct HttpStaffWebhook {
    client: reqwest::Client,
    outbound: Outbound,
}

impl HttpStaffWebhook {
    /// `timeout` bounds how long a slow chat service can hold the sender; `outbound`, where a property's URL may
    /// point.
    pub fn new(timeout: Duration, outbound: Outbound) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: outbound.client(timeout)?,
            outbound,
        })
    }
}

#[async_trait]
impl StaffWebhook for HttpStaffWebhook {
    async fn post(&self, url: &str, event_id: &str, body: &serde_json::Value) -> Result<String, MailError> {
        // A URL that may not be called will not become callable: the alert fails for good, and says why.
        let url = self.outbound.check(url).map_err(|why| MailError {
            reason: format!("staff webhook refused: {why}"),
            retryable: false,
        })?;
        let answer = self
            .client
            .post(url)
            .header("x-event-id", event_id)
            .json(body)
            .send()
            .await
            .map_err(|e| MailError {
                reason: format!(
                    "staff webhook not reached ({})",
                    if e.is_timeout() { "timeout" } else { "connection failed" }
                ),
                retryable: true,
            })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(format!("webhook HTTP {}", status.as_u16()));
        }
        Err(MailError {
            reason: format!("staff webhook answered HTTP {}", status.as_u16()),
            // A throttle or an outage passes; a URL the service no longer knows (404, 410) or refuses does not.
            retryable: status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn an_alert_is_posted_as_json_with_its_event_id_and_refusals_are_classed() {
        let server = MockServer::start().await;
        let alert = serde_json::json!({"text": "New tour", "alert": "staff_new"});
        Mock::given(method("POST"))
            .and(path("/hook/ok"))
            .and(header("x-event-id", "tour_1:webhook_new#v1"))
            .and(body_json(&alert))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/hook/gone"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        Mock::given(path("/hook/busy"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let hook = HttpStaffWebhook::new(Duration::from_secs(2), Outbound::local_stack()).unwrap();
        let at = |p: &str| format!("{}/hook/{p}", server.uri());
        assert_eq!(
            hook.post(&at("ok"), "tour_1:webhook_new#v1", &alert).await.unwrap(),
            "webhook HTTP 200"
        );
        let gone = hook.post(&at("gone"), "e", &alert).await.unwrap_err();
        assert!(!gone.retryable && gone.reason.contains("404"));
        assert!(hook.post(&at("busy"), "e", &alert).await.unwrap_err().retryable);
        let down = hook.post("http://127.0.0.1:9/hook", "e", &alert).await.unwrap_err();
        assert!(down.retryable && !down.reason.contains("127.0.0.1"), "{}", down.reason);
    }
}
