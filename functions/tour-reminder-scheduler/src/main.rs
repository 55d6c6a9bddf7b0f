//! `tour-reminder-scheduler`: on every schedule tick, queues the reminders now due, then sends each property's weekly
//! digest once, from Monday 8 am its time. Wiring only: the rules live in `tour_core::app::{notify, digest}`.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tour_aws::{dynamo::DynamoStore, sqs::SqsSyncQueue};
use tour_core::app::{
    budget::TimeBudget, digest::DigestDeps, digest::send_due_digests, notify::SchedulerDeps,
    notify::queue_due_reminders,
};
use tour_core::domain::email::Templates;
use tour_edge::{Error, config, serve_events};

type Deps<'a> = (&'a DynamoStore, SqsSyncQueue, DigestDeps<'a>);

async fn handle((store, queue, digests): &Deps<'_>, tick: LambdaEvent<Value>) -> Result<Value, Error> {
    // The template's timeout stands in when the runtime gives no usable deadline.
    let budget = TimeBudget::of_queue_batch(tick.context.deadline(), std::time::Duration::from_secs(60));
    let now = chrono::Utc::now();
    let reminders = SchedulerDeps {
        tours: *store,
        reminders: *store,
        queue,
        properties: *store,
        consents: *store,
    };
    let queued = queue_due_reminders(&reminders, now, &budget).await?;
    let sent = send_due_digests(digests, now, &budget).await?;
    Ok(json!({ "reminders_queued": queued, "digests_sent": sent }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let (store, mailer) = (cold.store()?, cold.mailer()?);
    let digests = DigestDeps {
        properties: &store,
        tours: &store,
        analytics: &store,
        digests: &store,
        mailer: &mailer,
        templates: &Templates::defaults()?,
        links: &cold.links().await?,
    };
    serve_events(&(&store, cold.sync_queue()?, digests), handle).await
}
