//! The outbox's queues (SQS): the sync queue (`{"booking_id": "..."}`: the worker reads the tour itself, so a
//! message carries no personal data and a stale one cannot overwrite newer state) and the notification queue
//! (`{"booking_id": "...", "message": "<kind>#v<version>"}`: the sender reads the tour as it stands).

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tour_core::domain::BookingId;
use tour_core::domain::notify::MessageRef;
use tour_core::ports::{StoreError, SyncQueue};

pub struct SqsSyncQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    messages_url: Option<String>,
}

fn unavailable(e: impl std::error::Error + 'static) -> StoreError {
    StoreError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

impl SqsSyncQueue {
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(sdk),
            queue_url: queue_url.into(),
            messages_url: None,
        }
    }

    /// With the notification queue, for a function whose changes owe messages.
    pub fn with_messages(mut self, messages_url: impl Into<String>) -> Self {
        self.messages_url = Some(messages_url.into());
        self
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
            .map_err(unavailable)?;
        Ok(())
    }

    async fn enqueue_messages(&self, messages: &[MessageRef]) -> Result<(), StoreError> {
        let url = self
            .messages_url
            .as_deref()
            .ok_or_else(|| StoreError::Unavailable("no notification queue is configured".into()))?;
        // SQS takes ten entries a batch; a change owes two messages at most.
        for chunk in messages.chunks(10) {
            let bodies = chunk
                .iter()
                .map(|m| serde_json::json!({ "booking_id": m.booking_id.as_str(), "message": m.key() }).to_string());
            send_batch(&self.client, url, bodies).await?;
        }
        Ok(())
    }
}

/// The change poller's fan-out queue: `{"property_id": "..."}` per property, read by `resman-poll-worker`.
pub struct SqsPollQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsPollQueue {
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

    async fn send_polls(&self, chunk: &[tour_core::domain::ResManPropertyId]) -> Result<(), StoreError> {
        let bodies = chunk
            .iter()
            .map(|property| serde_json::json!({ "property_id": property.as_str() }).to_string());
        send_batch(&self.client, &self.queue_url, bodies).await
    }
}

/// Sends up to ten message bodies in one `SendMessageBatch`; any entry SQS did not take fails the whole send.
async fn send_batch(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: impl Iterator<Item = String>,
) -> Result<(), StoreError> {
    let entries = bodies
        .enumerate()
        .map(|(i, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = client
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(unavailable)?;
    if out.failed.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "{} message(s) were not queued",
            out.failed.len()
        )))
    }
}

#[async_trait]
impl tour_core::ports::PollQueue for SqsPollQueue {
    async fn enqueue_polls(&self, properties: &[tour_core::domain::ResManPropertyId]) -> Result<(), StoreError> {
        use futures::StreamExt;
        // Ten a batch (SQS's limit), eight batches in flight: a thousand properties are queued in about a second.
        let sends: Vec<_> = properties.chunks(10).map(|chunk| self.send_polls(chunk)).collect();
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(sends).buffer_unordered(8).collect().await;
        results.into_iter().collect()
    }
}

/// An SQS event as a queue consumer's use case sees it, and the way back: the failures it reports are made
/// visible again after their delay (partial batch response).
pub mod batch {
    use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
    use std::collections::HashMap;
    use tour_core::ports::{Failed, QueuedMessage};

    /// The event's messages, and each one's receipt handle by its id.
    pub fn messages(event: &SqsEvent) -> (Vec<QueuedMessage>, HashMap<String, String>) {
        let mut handles = HashMap::new();
        let messages = event
            .records
            .iter()
            .filter_map(|m| {
                let id = m.message_id.clone()?;
                if let Some(handle) = &m.receipt_handle {
                    handles.insert(id.clone(), handle.clone());
                }
                Some(QueuedMessage {
                    id,
                    body: m.body.clone().unwrap_or_default(),
                    receive_count: m
                        .attributes
                        .get("ApproximateReceiveCount")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                })
            })
            .collect();
        (messages, handles)
    }

    /// The partial batch response for `failed`, each failed message delayed by its own back-off first.
    pub async fn respond(
        client: &aws_sdk_sqs::Client,
        queue_url: &str,
        handles: &HashMap<String, String>,
        failed: Vec<Failed>,
    ) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for failed in failed {
            if let Some(handle) = handles.get(&failed.id) {
                let delayed = client
                    .change_message_visibility()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(i32::try_from(failed.retry_in_seconds).unwrap_or(900))
                    .send()
                    .await;
                if let Err(e) = delayed {
                    tracing::warn!(message_id = %failed.id, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not delay the retry");
                }
            }
            response.add_failure(failed.id);
        }
        response
    }
}
