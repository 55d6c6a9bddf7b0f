//! `make bench` (booking): latency of a booking through the real use case, DynamoDB adapter (local moto) and
//! ResMan adapter (the sandbox), with ResMan's added latency at 0 and at 200 ms; and the time for 200 concurrent
//! bookings of one slot to settle (every request answered: as many booked as agents, the rest refused with
//! alternatives). Moto is a Python server and the sandbox is in-process, so read the figures as this machine's.

use chrono::{Duration, NaiveDate, Utc};
use integration_tests::*;
use serde_json::json;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::resman::HttpResMan;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::AppError;
use shared::app::booking::{BookingDeps, book_tour};
use shared::app::sync::Attempts;
use shared::domain::TourType;
use shared::domain::booking::{BookTourCommand, BookTourRequest, BookingId};
use shared::domain::property::Property;
use shared::domain::slots::free_slots;
use shared::ports::PropertyStore;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

struct Parts {
    store: DynamoStore,
    resman: HttpResMan,
    queue: SqsSyncQueue,
}

impl Parts {
    fn deps(&self) -> BookingDeps<'_> {
        BookingDeps {
            properties: &self.store,
            calendar: &self.store,
            tours: &self.store,
            resman: &self.resman,
            queue: &self.queue,
            attempts: Attempts {
                count: 3,
                backoff: StdDuration::from_millis(250),
            },
        }
    }
}

fn command(n: usize, date: NaiveDate, time: &str) -> BookTourCommand {
    let body = json!({
        "conversation_id": format!("bench-{n}"),
        "tour_data": {
            "prospect_name": format!("Bench Prospect{n}"), "prospect_email": format!("bench{n}@example.com"),
            "prospect_phone": format!("+1512556{:04}", n % 10_000), "tour_type": "in_person",
            "preferred_date": date.to_string(), "preferred_time": time, "property_id": DEMO_PROPERTY
        }
    });
    BookTourCommand::parse(&BookTourRequest::from_body(body.to_string().as_bytes()).unwrap()).unwrap()
}

/// Distinct (date, time) pairs, each offered to every agent: enough bookable slots for `count` bookings.
fn slots(property: &Property, count: usize) -> Vec<(NaiveDate, String)> {
    let today = Utc::now().with_timezone(&property.time_zone).date_naive();
    let agents = property.agents_for(TourType::InPerson).count();
    let mut found = Vec::new();
    for day in (1..30).map(|d| today + Duration::days(d)) {
        for slot in free_slots(property, TourType::InPerson, day, &[], Utc::now()).unwrap_or_default() {
            // 45-minute tours with a 15-minute buffer: one start an hour keeps the agents' hours apart.
            if slot.start.format("%M").to_string() == "00" {
                for _ in 0..agents {
                    found.push((day, slot.start.format("%H:%M").to_string()));
                }
            }
        }
        if found.len() >= count {
            break;
        }
    }
    found.truncate(count);
    found
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

async fn set_latency(sandbox: &RunningSandbox, ms: u64) {
    reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&json!({"latency_ms": ms}))
        .send()
        .await
        .unwrap();
}

/// A fresh moto and sandbox for each measurement, so each starts from the same small table.
async fn fresh() -> (Moto, RunningSandbox, Arc<Parts>, Property) {
    let moto = Moto::start(&[], &[]);
    let sdk = moto.sdk().await;
    let sandbox = sandbox().await;
    let parts = Arc::new(Parts {
        store: DynamoStore::new(&sdk, moto.var("TABLE_NAME")),
        resman: resman_for(&sandbox, StdDuration::from_secs(8)),
        queue: SqsSyncQueue::new(&sdk, moto.var("SYNC_QUEUE_URL")),
    });
    load_demo_properties(&parts.store).await;
    let id = shared::domain::ResManPropertyId::parse(DEMO_PROPERTY).unwrap();
    let property = parts.store.property(&id).await.unwrap().unwrap();
    (moto, sandbox, parts, property)
}

async fn book(parts: &Parts, n: usize, date: NaiveDate, time: &str) -> Result<u16, AppError> {
    let id = BookingId::from_uuid(uuid::Uuid::new_v4());
    book_tour(&parts.deps(), &command(n, date, time), None, id, Utc::now())
        .await
        .map(|b| b.status)
}

#[tokio::main]
async fn main() {
    let runs = 60;
    println!("booking latency (local moto + in-process ResMan sandbox; demo property, in-person tours)");
    for latency in [0u64, 200] {
        let (_moto, sandbox, parts, property) = fresh().await;
        set_latency(&sandbox, latency).await;
        let mut samples = Vec::with_capacity(runs);
        for (n, (date, time)) in slots(&property, runs).iter().enumerate() {
            let t = Instant::now();
            let status = book(&parts, n, *date, time).await;
            samples.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(status.ok(), Some(201), "booking {n} at {date} {time}");
        }
        let p50 = percentile(&mut samples, 0.5);
        let p99 = percentile(&mut samples, 0.99);
        println!("ResMan latency {latency:>3} ms: runs={runs}  p50={p50:>8.1} ms  p99={p99:>8.1} ms");
    }

    let (_moto, _sandbox, parts, property) = fresh().await;
    let (date, time) = slots(&property, 1).remove(0);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let parts = parts.clone();
        let time = time.clone();
        tasks.spawn(async move { book(&parts, 10_000 + n, date, &time).await });
    }
    let (mut booked, mut refused) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => booked += 1,
            Err(AppError::SlotTaken { .. }) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    println!(
        "200 concurrent bookings of one slot settled in {:.2} s: {booked} booked, {refused} refused with alternatives",
        start.elapsed().as_secs_f64()
    );
}
