//! `resman-change-poller`: on every schedule tick, reads each property's ResMan changes since its checkpoint
//! and applies them: to our own tours (the same path as the webhook's), else as busy time in the mirror. Wiring only: the rules live in `shared::app::changes`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::resman::HttpResMan;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::changes::{FeedDeps, PollSettings, poll_changes};
use shared::app::notify::requeue_unsent_messages;
use shared::app::sync::requeue_owed_syncs;
use shared::config::{self, ColdStart};

struct Deps {
    store: DynamoStore,
    resman: HttpResMan,
    queue: SqsSyncQueue,
    settings: PollSettings,
}

async fn handle(deps: &Deps, _tick: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    let now = chrono::Utc::now();
    // The outbox first: a booking's owed ResMan write must not wait behind a slow poll.
    let requeued = requeue_owed_syncs(&deps.store, &deps.queue, now).await?;
    let messages_requeued = requeue_unsent_messages(&deps.store, &deps.queue, now).await?;
    let feed = FeedDeps {
        properties: &deps.store,
        calendar: &deps.store,
        tours: &deps.store,
        queue: &deps.queue,
    };
    let report = poll_changes(&feed, &deps.resman, &deps.settings, now).await?;
    tracing::info!(
        properties = report.properties,
        seen = report.appointments_seen,
        changed = report.appointments_changed,
        tours_changed = report.tours_changed,
        failed = report.failed.len(),
        "polled ResMan"
    );
    Ok(serde_json::json!({
        "properties": report.properties,
        "appointments_seen": report.appointments_seen,
        "appointments_changed": report.appointments_changed,
        "tours_changed": report.tours_changed,
        "failed": report.failed,
        "requeued": requeued,
        "messages_requeued": messages_requeued,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let secrets = &cold.secrets;
    let resman_settings = config::resman(secrets).await?;
    let settings = PollSettings {
        backfill: chrono::Duration::from_std(config::optional_seconds("POLL_BACKFILL_SECONDS", 30 * 24 * 3600)?)?,
        tour_event_type: resman_settings.tour_event_type.clone(),
        ..PollSettings::default()
    };
    let deps = Deps {
        store: cold.store()?,
        resman: config::resman_client(&cold.secrets, resman_settings)?,
        queue: cold.sync_queue()?,
        settings,
    };
    let deps = &deps;
    run(service_fn(move |tick| async move { handle(deps, tick).await })).await
}
