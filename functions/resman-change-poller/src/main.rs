//! `resman-change-poller`: the schedule tick. It re-queues the outbox's owed writes and messages, then fans the
//! change feed out: one message per property on the poll queue, which `resman-poll-worker` instances poll at the same
//! time (paced per ResMan account), so a tick's length no longer grows with the number of properties. Wiring only: the
//! rules live in `shared::app::changes`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::{SqsPollQueue, SqsSyncQueue};
use shared::app::changes::enqueue_polls;
use shared::app::notify::requeue_unsent_messages;
use shared::app::sync::requeue_owed_syncs;
use shared::config::{self, ColdStart};

struct Deps {
    store: DynamoStore,
    queue: SqsSyncQueue,
    polls: SqsPollQueue,
}

async fn handle(deps: &Deps, _tick: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    let now = chrono::Utc::now();
    // The outbox first: a booking's owed ResMan write must not wait behind a slow poll.
    let requeued = requeue_owed_syncs(&deps.store, &deps.queue, now).await?;
    let messages_requeued = requeue_unsent_messages(&deps.store, &deps.queue, now).await?;
    let queued = enqueue_polls(&deps.store, &deps.polls).await?;
    tracing::info!(
        properties = queued,
        requeued,
        messages_requeued,
        "queued a poll of every property"
    );
    Ok(serde_json::json!({
        "properties_queued": queued,
        "requeued": requeued,
        "messages_requeued": messages_requeued,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let deps = Deps {
        store: cold.store()?,
        queue: cold.sync_queue()?,
        polls: SqsPollQueue::new(&cold.sdk, config::required("POLL_QUEUE_URL")?),
    };
    let deps = &deps;
    run(service_fn(move |tick| async move { handle(deps, tick).await })).await
}
