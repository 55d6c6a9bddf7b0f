//! `resman-change-poller`: the schedule tick. It re-queues the outbox's owed writes and messages, then fans the
//! change feed out: one message per property on the poll queue, which `resman-poll-worker` instances poll at the
//! same time (paced per ResMan account), so a tick's length no longer grows with the number of properties. Wiring
//! only: the rules live in `tour_core::app::changes`.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tour_aws::{dynamo::DynamoStore, sqs::SqsPollQueue, sqs::SqsSyncQueue};
use tour_core::app::{changes::enqueue_polls, notify::requeue_unsent_messages, sync::requeue_owed_syncs};
use tour_edge::{Error, config, serve_events};

async fn handle(
    (store, queue, polls): &(DynamoStore, SqsSyncQueue, SqsPollQueue),
    _: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let now = chrono::Utc::now();
    // The outbox first: a booking's owed ResMan write must not wait behind a slow poll.
    let requeued = requeue_owed_syncs(store, queue, now).await?;
    let messages_requeued = requeue_unsent_messages(store, queue, now).await?;
    let queued = enqueue_polls(store, polls).await?;
    tracing::info!(
        properties = queued,
        requeued,
        messages_requeued,
        "queued a poll of every property"
    );
    Ok(json!({ "properties_queued": queued, "requeued": requeued, "messages_requeued": messages_requeued }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    serve_events(&(cold.store()?, cold.sync_queue()?, cold.poll_queue()?), handle).await
}
