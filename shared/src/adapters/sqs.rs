//! The ResMan retry queue (SQS). A message is `{"booking_id": "..."}`: the worker reads the booking itself, so a
//! message carries no personal data and a stale one cannot overwrite newer state.

use crate::domain::booking::BookingId;
use crate::ports::{StoreError, SyncQueue};
use async_trait::async_trait;

pub struct SqsSyncQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsSyncQueue {
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(sdk),
            queue_url: queue_url.into(),
        }
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

#[async_trait]
impl SyncQueue for SqsSyncQueue {
    async fn enqueue(&self, booking: &BookingId) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(serde_json::json!({ "booking_id": booking.as_str() }).to_string())
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
