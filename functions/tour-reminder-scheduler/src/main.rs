//! `tour-reminder-scheduler`: on every schedule tick, turns the reminders now due into messages their tours owe and
//! queues them for `notification-sender`. Wiring only: the rules live in `shared::app::notify`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::budget::TimeBudget;
use shared::app::notify::queue_due_reminders;
use shared::config::ColdStart;

struct Deps {
    store: DynamoStore,
    queue: SqsSyncQueue,
}

/// When the runtime gives no usable deadline: the template's Timeout.
const FALLBACK_TIME: std::time::Duration = std::time::Duration::from_secs(60);

async fn handle(deps: &Deps, tick: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    let budget = TimeBudget::of_queue_batch(tick.context.deadline(), FALLBACK_TIME);
    let queued = queue_due_reminders(&deps.store, &deps.store, &deps.queue, chrono::Utc::now(), &budget).await?;
    Ok(serde_json::json!({ "reminders_queued": queued }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let deps = Deps {
        store: cold.store()?,
        queue: cold.sync_queue()?,
    };
    let deps = &deps;
    run(service_fn(move |tick| async move { handle(deps, tick).await })).await
}
