//! `resman-poll-worker`: polls one property per message of the poll queue (the scheduled tick queues one per
//! property): its ResMan changes since its checkpoint, applied to our tours or to the busy-time mirror. Every ResMan
//! request first reserves its moment in its account's schedule, so however many workers run, no account gets more than
//! `RESMAN_ACCOUNT_REQUESTS_PER_SECOND` requests in any one second. A property whose poll fails stays on the queue and is retried, and
//! never holds back the others. Wiring only: the rules live in `shared::app::changes` and `shared::app::pacing`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::resman::HttpResMan;
use shared::adapters::sqs::{SqsPollQueue, SqsSyncQueue, batch};
use shared::app::budget::TimeBudget;
use shared::app::changes::{FeedDeps, PollSettings, process_poll_batch};
use shared::app::pacing::AccountPacer;
use shared::config::{self, ColdStart};
use shared::domain::rate::Rate;
use std::sync::Arc;
use std::time::Duration;

/// When the runtime gives no usable deadline: the template's Timeout.
const FALLBACK_TIME: Duration = Duration::from_secs(60);

struct Deps {
    store: DynamoStore,
    resman: HttpResMan,
    queue: SqsSyncQueue,
    polls: SqsPollQueue,
    settings: PollSettings,
    retry_base: Duration,
}

async fn handle(deps: &Deps, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let (messages, handles) = batch::messages(&event.payload);
    let feed = FeedDeps {
        properties: &deps.store,
        calendar: &deps.store,
        tours: &deps.store,
        queue: &deps.queue,
    };
    let budget = TimeBudget::of_queue_batch(event.context.deadline(), FALLBACK_TIME);
    let failed = process_poll_batch(
        &feed,
        &deps.resman,
        &deps.settings,
        &messages,
        deps.retry_base,
        &budget,
        &chrono::Utc::now,
    )
    .await;
    tracing::info!(
        polled = messages.len() - failed.len(),
        failed = failed.len(),
        "polled properties"
    );
    Ok(batch::respond(deps.polls.client(), deps.polls.queue_url(), &handles, failed).await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let secrets = &cold.secrets;
    let resman_settings = config::resman(secrets).await?;
    let cap = config::optional_number("RESMAN_ACCOUNT_REQUESTS_PER_SECOND", 5)?;
    let rate = Rate::at_most_per_second(cap).ok_or_else(|| config::ConfigError::Invalid {
        name: "RESMAN_ACCOUNT_REQUESTS_PER_SECOND",
        reason: "must be at least 2".into(),
    })?;
    let pacer = AccountPacer {
        limiter: Arc::new(cold.store()?),
        rate,
        patience: chrono::Duration::seconds(20),
        clock: chrono::Utc::now,
    };
    let settings = PollSettings {
        backfill: chrono::Duration::from_std(config::optional_seconds("POLL_BACKFILL_SECONDS", 30 * 24 * 3600)?)?,
        tour_event_type: resman_settings.tour_event_type.clone(),
        min_gap: chrono::Duration::seconds(10),
        ..PollSettings::default()
    };
    let deps = Deps {
        store: cold.store()?,
        resman: config::resman_client(secrets, resman_settings)?.with_pacer(Arc::new(pacer)),
        queue: cold.sync_queue()?,
        polls: SqsPollQueue::new(&cold.sdk, config::required("POLL_QUEUE_URL")?),
        settings,
        retry_base: config::optional_seconds("POLL_RETRY_BASE_SECONDS", 30)?,
    };
    let deps = &deps;
    run(service_fn(move |event| async move { handle(deps, event).await })).await
}
