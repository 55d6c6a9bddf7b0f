//! How many requests each use case sends to DynamoDB (counted on the wire) and to ResMan (the sandbox's request
//! log), on DynamoDB Local and the ResMan sandbox. The use-case tests show which of them run at the same time;
//! these show the real adapters make no call the ports do not account for.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use integration_tests::*;
use serde_json::json;
use std::time::Duration as StdDuration;
use tour_core::app::availability::{AvailabilityDeps, AvailabilityQuery, Source, availability};
use tour_core::app::booking::book_tour;
use tour_core::domain::{
    booking::{BookTourCommand, BookTourRequest},
    ids::BookingId,
};
use tour_core::ports::Outcome;

/// A weekday in the middle of a month, so a day's busy time is one month partition.
fn mid_month_weekday() -> NaiveDate {
    let mut day = Utc::now().date_naive() + Duration::days(3);
    while !(8..=22).contains(&day.day()) || matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day += Duration::days(1);
    }
    day
}

async fn resman_calls(sandbox: &RunningSandbox) -> Vec<String> {
    let log = sandbox_json(sandbox, "requests").await;
    log.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["area"].as_str().unwrap_or(""),
                r["method"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn an_availability_cache_hit_is_one_dynamodb_request_and_a_miss_three() {
    let aws = LocalAws::start(&[], &[]);
    let (store, dynamodb) = aws.counted_store().await;
    load_demo_properties(&store).await;
    let deps = AvailabilityDeps {
        calendar: &store,
        cache: &store,
        cache_ttl: Duration::seconds(600),
        reach: &tour_core::domain::access::EVERY_ACCOUNT,
    };
    let day = mid_month_weekday().to_string();
    let query = AvailabilityQuery::parse(Some(DEMO_PROPERTY), Some(&day), Some("in_person")).unwrap();

    let before = dynamodb.count();
    let (_, source) = availability(&deps, &query, Utc::now()).await.unwrap();
    assert_eq!(source, Source::Computed);
    assert_eq!(
        dynamodb.count() - before,
        3,
        "one batch read (property, generation, cache), the busy-time query, the cache write"
    );

    let before = dynamodb.count();
    let (_, source) = availability(&deps, &query, Utc::now()).await.unwrap();
    assert_eq!(source, Source::Cache);
    assert_eq!(dynamodb.count() - before, 1, "one consistent batch read");
}

fn command(conversation: &str, date: NaiveDate, time: &str) -> BookTourCommand {
    let body = json!({
        "conversation_id": conversation,
        "tour_data": {
            "prospect_name": "Rita Round", "prospect_email": "rita.round@example.com",
            "prospect_phone": "(512) 555-0142", "tour_type": "in_person",
            "preferred_date": date.to_string(), "preferred_time": time, "property_id": DEMO_PROPERTY
        }
    });
    BookTourCommand::parse(&BookTourRequest::from_body(body.to_string().as_bytes()).unwrap()).unwrap()
}

#[tokio::test]
async fn a_booking_is_five_dynamodb_requests_and_a_second_in_the_conversation_skips_resman_searches() {
    let aws = LocalAws::start(&[], &[]);
    let (store, dynamodb) = aws.counted_store().await;
    load_demo_properties(&store).await;
    let sandbox = sandbox().await;
    let resman = resman_for(&sandbox, StdDuration::from_secs(5));
    let queue = aws.queue().await;
    let deps = booking_deps(&store, &resman, &queue, StdDuration::from_millis(100));
    let day = mid_month_weekday();
    let (first, second) = (command("conv-rt", day, "10:00"), command("conv-rt", day, "14:00"));
    let book = async |command| {
        let id = BookingId::from_uuid(uuid::Uuid::new_v4());
        book_tour(&deps, command, None, id, Utc::now()).await.unwrap().outcome
    };

    let before = dynamodb.count();
    assert_eq!(book(&first).await, Outcome::Booked);
    assert_eq!(
        dynamodb.count() - before,
        5,
        "property, busy time and the conversation's tours (at once); the booking transaction; sync state and \
         answer in one transaction"
    );
    assert_eq!(
        resman_calls(&sandbox).await,
        [
            "MITS/SearchProspects",
            "MITS/SearchProspects",
            "MITS/PostLeadManagement4_0"
        ],
        "searches by e-mail and phone, then the post"
    );

    assert_eq!(book(&second).await, Outcome::Booked);
    let calls = resman_calls(&sandbox).await;
    assert_eq!(
        &calls[3..],
        ["MITS/PostLeadManagement4_0"],
        "the conversation's first tour found the prospect: the post alone"
    );
    let prospects = sandbox_json(&sandbox, "appointments").await;
    let ids: std::collections::BTreeSet<&str> = prospects
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["prospect_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "both tours on one guest card: {prospects}");
}
