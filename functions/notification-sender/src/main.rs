//! `notification-sender`: sends each message a tour owes once (SES v2, the staff's chat webhook, or a text through
//! End User Messaging SMS), from the notification queue. Wiring only: the rules live in `tour_core::app::notify`.

use tour_aws::{outbound::Outbound, staff_webhook::HttpStaffWebhook};
use tour_core::app::notify::{SenderDeps, send_batch};
use tour_core::{domain::email::Templates, ports::Failed};
use tour_edge::serve::NOTIFY_QUEUE;
use tour_edge::{Batch, Error, config, serve_queue};

async fn handle(sender: &SenderDeps<'_>, batch: Batch<'_>) -> Vec<Failed> {
    send_batch(
        sender,
        batch.messages,
        batch.retry_base,
        batch.budget,
        &chrono::Utc::now,
    )
    .await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let (store, mailer, consumer) = (cold.store()?, cold.mailer()?, cold.consumer(&NOTIFY_QUEUE)?);
    let webhook_timeout = config::optional_seconds("STAFF_WEBHOOK_TIMEOUT_SECONDS", 5)?;
    let texts = cold.texts()?;
    let sender = SenderDeps {
        properties: &store,
        messages: &store,
        mailer: &mailer,
        staff_webhook: &HttpStaffWebhook::new(webhook_timeout, Outbound::from_env())?,
        texts: texts.as_ref(),
        consents: &store,
        text_log: &store,
        queue: &cold.sync_queue()?,
        templates: &Templates::defaults()?,
        links: &cold.links().await?,
        max_receives: consumer.max_receives,
        // No send starts with less time left than the slowest of the three may take.
        longest_send: cold.mail_timeout()?.max(webhook_timeout).max(cold.text_timeout()?),
    };
    serve_queue(&sender, &consumer, handle).await
}
