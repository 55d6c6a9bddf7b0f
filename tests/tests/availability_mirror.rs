//! Availability against real components: DynamoDB Local (provisioned from template.yaml) and the ResMan sandbox.
//! A staff member books straight in ResMan; the poller mirrors it; the slot leaves availability, and the cached
//! answer from before is not served again.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::America::Phoenix;
use integration_tests::*;
use serde_json::json;
use std::time::Duration as StdDuration;
use tour_core::app::availability::{AvailabilityDeps, AvailabilityQuery, Source, availability};
use tour_core::app::changes::{PollSettings, poll_changes};

/// A Phoenix weekday at least two days ahead (Saguaro Flats is open Mon-Sat 08:00-17:00, 30-minute tours).
fn bookable_day() -> NaiveDate {
    let mut day = Utc::now().with_timezone(&Phoenix).date_naive() + Duration::days(2);
    while day.weekday() == Weekday::Sun {
        day += Duration::days(1);
    }
    day
}

/// Our side (DynamoDB Local and moto, the demo properties loaded) and a ResMan sandbox, with the gateway to it.
async fn demo_stack() -> (
    LocalAws,
    tour_aws::dynamo::DynamoStore,
    tour_aws::sqs::SqsSyncQueue,
    RunningSandbox,
    tour_aws::resman::HttpResMan,
) {
    let aws = LocalAws::start(&[], &[]);
    let store = aws.store().await;
    let queue = aws.queue().await;
    load_demo_properties(&store).await;
    let sandbox = sandbox().await;
    let resman = resman_for(&sandbox, StdDuration::from_secs(5));
    (aws, store, queue, sandbox, resman)
}

/// One tick of the change poller over the demo properties.
async fn poll(
    store: &tour_aws::dynamo::DynamoStore,
    queue: &tour_aws::sqs::SqsSyncQueue,
    resman: &tour_aws::resman::HttpResMan,
) -> tour_core::app::changes::PollReport {
    poll_changes(
        &feed(store, queue),
        resman,
        &PollSettings::default(),
        Utc::now(),
        &invocation(60),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_tour_booked_by_staff_in_resman_leaves_availability_and_the_cache() {
    let (_aws, store, queue, sandbox, resman) = demo_stack().await;
    let deps = AvailabilityDeps {
        calendar: &store,
        cache: &store,
        cache_ttl: Duration::seconds(60),
        reach: &tour_core::domain::access::EVERY_ACCOUNT,
    };
    let day = bookable_day();
    let query = AvailabilityQuery::parse(Some(PHOENIX_PROPERTY), Some(&day.to_string()), Some("in_person")).unwrap();
    let ten = Phoenix
        .from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap())
        .unwrap();
    let ten_text = ten.to_rfc3339();

    let (before, source) = availability(&deps, &query, Utc::now()).await.unwrap();
    assert_eq!(source, Source::Computed);
    assert!(
        before.available_slots.iter().any(|s| s.time == ten_text),
        "10:00 is free at first"
    );
    let (_, source) = availability(&deps, &query, Utc::now()).await.unwrap();
    assert_eq!(source, Source::Cache, "the second ask is a cache hit");

    // Both agents of the property get a 10:00 tour, booked at ResMan's front desk.
    for (i, agent) in [
        "a1e0c3b2-0011-4c6a-9d1e-000000000011",
        "a1e0c3b2-0012-4c6a-9d1e-000000000012",
    ]
    .iter()
    .enumerate()
    {
        let res = reqwest::Client::new()
            .post(format!("{}/_sandbox/appointments", sandbox.base_url()))
            .json(&json!({
                "property_id": PHOENIX_PROPERTY, "agent_id": agent,
                "scheduled_at": ten.to_rfc3339(), "duration_minutes": 30,
                "prospect": {"first_name": "Walk", "last_name": format!("In{i}"), "email": format!("walk{i}@example.com")}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    let report = poll(&store, &queue, &resman).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.appointments_changed, 2, "{report:?}");

    let (after, source) = availability(&deps, &query, Utc::now()).await.unwrap();
    assert_eq!(source, Source::Computed, "the change made the cached answer stale");
    assert!(
        !after.available_slots.iter().any(|s| s.time == ten_text),
        "10:00 is gone"
    );
    assert!(
        after.available_slots.iter().any(|s| s.time.contains("T10:30:00")),
        "10:30 is still free"
    );
    assert_eq!(after.available_slots.len(), before.available_slots.len() - 1);

    // The next poll reads the same appointments again and changes nothing.
    let again = poll(&store, &queue, &resman).await;
    assert_eq!(again.appointments_changed, 0);
}

#[tokio::test]
async fn a_first_poll_of_thirty_busy_days_with_resman_at_two_seconds_a_call_completes_over_ticks() {
    use tour_core::app::changes::poll_one;
    use tour_core::domain::{AppointmentId, ResManPropertyId};
    use tour_core::ports::CalendarStore;

    let (_aws, store, queue, sandbox, resman) = demo_stack().await;
    // A month of front-desk bookings before the property joined us: one booked on each of the last 30 days, each for
    // a tour in the coming weeks.
    let now = Utc::now();
    let mut booked = Vec::new();
    for d in 0..30 {
        let at = now + Duration::days(2 + d) + Duration::minutes(7 * d);
        let answer = reqwest::Client::new()
            .post(format!("{}/_sandbox/appointments", sandbox.base_url()))
            .json(&json!({
                "property_id": PHOENIX_PROPERTY, "agent_id": "a1e0c3b2-0011-4c6a-9d1e-000000000011",
                "scheduled_at": at.to_rfc3339(), "duration_minutes": 30,
                "prospect": {"first_name": "Front", "last_name": format!("Desk{d}"), "email": format!("desk{d}@example.com")},
                "booked_at": (now - Duration::days(d) - Duration::hours(1)).to_rfc3339()
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        let view: serde_json::Value = answer.json().await.unwrap();
        booked.push(AppointmentId::parse(view["appointment_id"].as_str().unwrap()).unwrap());
    }
    // ResMan now takes 2 s to answer each call.
    reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&json!({"latency_ms": 2000}))
        .send()
        .await
        .unwrap();

    // Ticks of a 20 s poll worker: each ends inside its time and keeps what it read; the backfill completes.
    let id = ResManPropertyId::parse(PHOENIX_PROPERTY).unwrap();
    let feed = feed(&store, &queue);
    let mut ticks = 0;
    loop {
        let checkpoint = store.poll_checkpoint(&id).await.unwrap();
        if checkpoint.is_some_and(|c| c >= now) {
            break;
        }
        ticks += 1;
        assert!(ticks <= 6, "the backfill did not complete; checkpoint {checkpoint:?}");
        let began = std::time::Instant::now();
        poll_one(&feed, &resman, &id, &PollSettings::default(), now, &invocation(20))
            .await
            .unwrap();
        assert!(
            began.elapsed() < StdDuration::from_secs(20),
            "tick {ticks} ran {:?}",
            began.elapsed()
        );
    }
    assert!(ticks >= 3, "30 reads at 2 s each take several 20 s ticks, not {ticks}");
    for appointment in &booked {
        assert!(
            store.mirrored(appointment).await.unwrap().is_some(),
            "{appointment} is busy time"
        );
    }
}
