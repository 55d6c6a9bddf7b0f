//! `tour-reminder-scheduler`: on every schedule tick, queues the reminders now due, then sends each property's weekly
//! digest once, from Monday 8 am its time. Wiring only: the rules live in `tour_core::app::{notify, digest}`.

use chrono::{DateTime, Utc};
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
    let now = tick_time(&tick.payload, chrono::Utc::now());
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

/// The scheduler's clock for one tick: the time EventBridge stamped on the scheduled event, or the clock when the
/// stamp is missing or behind it (a late or retried delivery acts on what is due now). In AWS the stamp is never
/// ahead of the clock; a tick played ahead of it (the local demo's, to show tomorrow's reminders) is taken at its
/// stamp, as that moment's tick would be.
fn tick_time(event: &Value, clock: DateTime<Utc>) -> DateTime<Utc> {
    event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|stamp| DateTime::parse_from_rfc3339(stamp).ok())
        .map(|stamp| stamp.with_timezone(&Utc).max(clock))
        .unwrap_or(clock)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> DateTime<Utc> {
        "2026-12-08T14:00:30Z".parse().unwrap()
    }

    #[test]
    fn a_tick_stamped_ahead_of_the_clock_is_taken_at_its_stamp() {
        let tick = json!({"detail-type": "Scheduled Event", "time": "2026-12-09T15:00:00Z"});
        assert_eq!(
            tick_time(&tick, clock()),
            "2026-12-09T15:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_late_tick_and_one_without_a_usable_stamp_act_at_the_clock() {
        for tick in [
            json!({"time": "2026-12-08T14:00:00Z"}),
            json!({"time": "yesterday"}),
            json!({"time": 12}),
            json!({}),
        ] {
            assert_eq!(tick_time(&tick, clock()), clock(), "{tick}");
        }
    }
}
