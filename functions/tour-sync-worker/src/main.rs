//! `tour-sync-worker`: brings ResMan (and the chatbot's callback, when configured) to each queued tour's current
//! version, from the tour sync queue. Wiring only: the rules live in `tour_core::app::sync`.

use tour_core::app::sync::{Attempts, WorkerDeps, process_batch};
use tour_core::ports::{ChatbotCallbacks, Failed};
use tour_edge::serve::SYNC_QUEUE;
use tour_edge::{Batch, Error, config, serve_queue};

async fn handle(worker: &WorkerDeps<'_>, batch: Batch<'_>) -> Vec<Failed> {
    process_batch(worker, batch.messages, batch.retry_base, batch.budget).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let (store, queue, consumer) = (cold.store()?, cold.sync_queue()?, cold.consumer(&SYNC_QUEUE)?);
    let resman = cold.resman(cold.resman_settings().await?)?;
    let callbacks = config::callbacks(&cold.secrets).await?;
    let worker = WorkerDeps {
        properties: &store,
        tours: &store,
        resman: &resman,
        callbacks: callbacks.as_ref().map(|c| c as &dyn ChatbotCallbacks),
        queue: &queue,
        attempts: Attempts::ONCE,
        max_receives: consumer.max_receives,
        clock: &chrono::Utc::now,
    };
    serve_queue(&worker, &consumer, handle).await
}
