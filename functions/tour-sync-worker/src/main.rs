//! `tour-sync-worker`: brings ResMan (and, when configured, the chatbot's callback) to each queued tour's current
//! version. Consumes the retry queue with partial batch failures. A message that fails is made
//! visible again after a delay that grows with each receive; after the queue's `maxReceiveCount` SQS moves it to
//! the dead-letter queue (the booking is marked failed first, for staff). Wiring only: the rules live in
//! `shared::app::sync`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::callback::HttpCallbacks;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::resman::HttpResMan;
use shared::adapters::sqs::SqsSyncQueue;
use shared::adapters::sqs::batch;
use shared::app::budget::TimeBudget;
use shared::app::sync::{Attempts, WorkerDeps, process_batch};
use shared::config::{self, ColdStart};
use shared::ports::ChatbotCallbacks;
use std::time::Duration;

/// When the runtime gives no usable deadline: the template's Timeout.
const FALLBACK_TIME: Duration = Duration::from_secs(30);

struct Deps {
    store: DynamoStore,
    resman: HttpResMan,
    callbacks: Option<HttpCallbacks>,
    queue: SqsSyncQueue,
    max_receives: u32,
    retry_base: Duration,
}

async fn handle(deps: &Deps, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let (messages, handles) = batch::messages(&event.payload);
    let app_deps = WorkerDeps {
        properties: &deps.store,
        tours: &deps.store,
        resman: &deps.resman,
        callbacks: deps.callbacks.as_ref().map(|c| c as &dyn ChatbotCallbacks),
        queue: &deps.queue,
        clock: &chrono::Utc::now,
        attempts: Attempts {
            count: 1,
            backoff: Duration::ZERO,
        },
        max_receives: deps.max_receives,
    };
    let budget = TimeBudget::of_queue_batch(event.context.deadline(), FALLBACK_TIME);
    let failed = process_batch(&app_deps, &messages, deps.retry_base, budget).await;
    Ok(batch::respond(deps.queue.client(), deps.queue.queue_url(), &handles, failed).await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let secrets = &cold.secrets;
    let deps = Deps {
        store: cold.store()?,
        resman: config::resman_client(secrets, config::resman(secrets).await?)?,
        callbacks: config::callbacks(secrets).await?,
        queue: cold.sync_queue()?,
        max_receives: config::optional_number("SYNC_MAX_RECEIVES", 5)?,
        retry_base: config::optional_seconds("SYNC_RETRY_BASE_SECONDS", 30)?,
    };
    let deps = &deps;
    run(service_fn(move |event| async move { handle(deps, event).await })).await
}
