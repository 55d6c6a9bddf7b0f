//! `resman-poll-worker`: polls one property per message of the poll queue for its ResMan changes since its
//! checkpoint, paced per ResMan account. Wiring only: the rules live in `tour_core::app::changes`.

use tour_core::app::changes::{FeedDeps, PollSettings, process_poll_batch};
use tour_core::ports::{Failed, ResManGateway};
use tour_edge::serve::POLL_QUEUE;
use tour_edge::{Batch, Error, config, serve_queue};

async fn handle(
    (feed, resman, settings): &(FeedDeps<'_>, &dyn ResManGateway, PollSettings),
    batch: Batch<'_>,
) -> Vec<Failed> {
    let (messages, now) = (batch.messages, &chrono::Utc::now);
    let failed = process_poll_batch(feed, *resman, settings, messages, batch.retry_base, &batch.budget, now).await;
    tracing::info!(
        polled = messages.len() - failed.len(),
        failed = failed.len(),
        "polled properties"
    );
    failed
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let ((resman, settings), consumer) = (cold.poller().await?, cold.consumer(&POLL_QUEUE)?);
    let (store, queue) = (cold.store()?, cold.sync_queue()?);
    let deps: (_, &dyn ResManGateway, _) = (FeedDeps::over(&store, &queue), &resman, settings);
    serve_queue(&deps, &consumer, handle).await
}
