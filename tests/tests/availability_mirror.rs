//! Availability against real components: DynamoDB Local (provisioned from template.yaml) and the ResMan sandbox.
//! A staff member books straight in ResMan; the poller mirrors it; the slot leaves availability, and the cached
//! answer from before is not served again.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::America::Phoenix;
use integration_tests::*;
use serde_json::json;
use shared::app::availability::{AvailabilityDeps, AvailabilityQuery, Source, availability};
use shared::app::changes::{PollSettings, poll_changes};
use std::time::Duration as StdDuration;

/// A Phoenix weekday at least two days ahead (Saguaro Flats is open Mon-Sat 08:00-17:00, 30-minute tours).
fn bookable_day() -> NaiveDate {
    let mut day = Utc::now().with_timezone(&Phoenix).date_naive() + Duration::days(2);
    while day.weekday() == Weekday::Sun {
        day += Duration::days(1);
    }
    day
}

#[tokio::test]
async fn a_tour_booked_by_staff_in_resman_leaves_availability_and_the_cache() {
    let aws = LocalAws::start(&[], &[]);
    let store = aws.store().await;
    let queue = aws.queue().await;
    load_demo_properties(&store).await;
    let sandbox = sandbox().await;
    let resman = resman_for(&sandbox, StdDuration::from_secs(5));
    let deps = AvailabilityDeps {
        calendar: &store,
        cache: &store,
        cache_ttl: Duration::seconds(60),
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

    let report = poll_changes(&feed(&store, &queue), &resman, &PollSettings::default(), Utc::now())
        .await
        .unwrap();
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
    let again = poll_changes(&feed(&store, &queue), &resman, &PollSettings::default(), Utc::now())
        .await
        .unwrap();
    assert_eq!(again.appointments_changed, 0);
}
