//! `notification-sender`: consumes the notification queue with partial batch failures. Each message names one
//! message a tour owes; it is claimed, rendered from the tour as it now stands, sent through SES v2 and recorded,
//! so a redelivery never sends it twice. A failing one comes back after a growing delay; after the queue's
//! `maxReceiveCount` it is marked failed and SQS moves it to the dead-letter queue. Wiring only: the rules live in
//! `shared::app::notify`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::ses::SesMailer;
use shared::adapters::sqs::batch;
use shared::adapters::staff_webhook::HttpStaffWebhook;
use shared::app::budget::TimeBudget;
use shared::app::notify::{SenderDeps, give_up_message, message_lane, send_queued_message};
use shared::app::sync::{BatchSteps, run_batch};
use shared::config::{self, ColdStart};
use shared::domain::email::Templates;
use shared::domain::link::Links;
use std::time::Duration;

/// When the runtime gives no usable deadline: the template's Timeout.
const FALLBACK_TIME: Duration = Duration::from_secs(30);

struct Deps {
    store: DynamoStore,
    mailer: SesMailer,
    staff_webhook: HttpStaffWebhook,
    templates: Templates,
    links: Links,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    max_receives: u32,
    retry_base: Duration,
    longest_send: Duration,
}

async fn handle(deps: &Deps, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let (messages, handles) = batch::messages(&event.payload);
    let app_deps = SenderDeps {
        properties: &deps.store,
        messages: &deps.store,
        mailer: &deps.mailer,
        staff_webhook: &deps.staff_webhook,
        templates: &deps.templates,
        links: &deps.links,
        max_receives: deps.max_receives,
        longest_send: deps.longest_send,
    };
    let budget = TimeBudget::of_queue_batch(event.context.deadline(), FALLBACK_TIME);
    let steps = BatchSteps {
        last_receive: deps.max_receives,
        lane: async |message: &shared::app::sync::QueuedMessage| message_lane(&message.body),
        handle: async |message: &shared::app::sync::QueuedMessage| {
            let left = budget.left();
            send_queued_message(
                &app_deps,
                &message.body,
                message.receive_count,
                chrono::Utc::now(),
                left,
            )
            .await
        },
        give_up: async |message: &shared::app::sync::QueuedMessage| {
            give_up_message(&app_deps, &message.body, chrono::Utc::now()).await
        },
    };
    let failed = run_batch(&messages, deps.retry_base, budget, steps).await;
    Ok(batch::respond(&deps.sqs, &deps.queue_url, &handles, failed).await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let ses_timeout = config::optional_seconds("SES_TIMEOUT_SECONDS", 5)?;
    let webhook_timeout = config::optional_seconds("STAFF_WEBHOOK_TIMEOUT_SECONDS", 5)?;
    let deps = Deps {
        store: cold.store()?,
        mailer: SesMailer::new(
            &cold.sdk,
            config::required("SENDER_EMAIL")?,
            config::required("SES_CONFIGURATION_SET").ok(),
            ses_timeout,
        ),
        staff_webhook: HttpStaffWebhook::new(webhook_timeout, shared::adapters::outbound::Outbound::from_env())?,
        longest_send: ses_timeout.max(webhook_timeout),
        templates: Templates::defaults()?,
        links: config::links(&cold.secrets).await?,
        sqs: aws_sdk_sqs::Client::new(&cold.sdk),
        queue_url: config::required("NOTIFY_QUEUE_URL")?,
        max_receives: config::optional_number("NOTIFY_MAX_RECEIVES", 5)?,
        retry_base: config::optional_seconds("NOTIFY_RETRY_BASE_SECONDS", 30)?,
    };
    let deps = &deps;
    run(service_fn(move |event| async move { handle(deps, event).await })).await
}
