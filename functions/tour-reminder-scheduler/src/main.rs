//! `tour-reminder-scheduler`: on every schedule tick, turns the reminders now due into messages their tours owe and
//! queues them for `notification-sender`; then sends each property's weekly digest to its leasing team, once, from
//! Monday 8 am on the property's clock. Wiring only: the rules live in `shared::app::notify` and
//! `shared::app::digest`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::ses::SesMailer;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::budget::TimeBudget;
use shared::app::digest::{DigestDeps, send_due_digests};
use shared::app::notify::queue_due_reminders;
use shared::config::{self, ColdStart};
use shared::domain::email::Templates;
use shared::domain::link::Links;

struct Deps {
    store: DynamoStore,
    queue: SqsSyncQueue,
    mailer: SesMailer,
    templates: Templates,
    links: Links,
}

/// When the runtime gives no usable deadline: the template's Timeout.
const FALLBACK_TIME: std::time::Duration = std::time::Duration::from_secs(60);

async fn handle(deps: &Deps, tick: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    let budget = TimeBudget::of_queue_batch(tick.context.deadline(), FALLBACK_TIME);
    let now = chrono::Utc::now();
    let queued = queue_due_reminders(&deps.store, &deps.store, &deps.queue, now, &budget).await?;
    let digests = DigestDeps {
        properties: &deps.store,
        tours: &deps.store,
        analytics: &deps.store,
        digests: &deps.store,
        mailer: &deps.mailer,
        templates: &deps.templates,
        links: &deps.links,
    };
    let sent = send_due_digests(&digests, now, &budget).await?;
    Ok(serde_json::json!({ "reminders_queued": queued, "digests_sent": sent }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let deps = Deps {
        store: cold.store()?,
        queue: cold.sync_queue()?,
        mailer: SesMailer::new(
            &cold.sdk,
            config::required("SENDER_EMAIL")?,
            config::required("SES_CONFIGURATION_SET").ok(),
            config::optional_seconds("SES_TIMEOUT_SECONDS", 5)?,
        ),
        templates: Templates::defaults()?,
        links: config::links(&cold.secrets).await?,
    };
    let deps = &deps;
    run(service_fn(move |tick| async move { handle(deps, tick).await })).await
}
