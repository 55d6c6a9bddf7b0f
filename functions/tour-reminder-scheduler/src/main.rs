//! `tour-reminder-scheduler`: on every schedule tick, turns the reminders now due into messages their tours owe and
//! queues them for `notification-sender`. Wiring only: the rules live in `shared::app::notify`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::notify::queue_due_reminders;
use shared::config::ColdStart;

struct Deps {
    store: DynamoStore,
    queue: SqsSyncQueue,
}

async fn handle(deps: &Deps, _tick: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    let queued = queue_due_reminders(&deps.store, &deps.store, &deps.queue, chrono::Utc::now()).await?;
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
