//! `make bench` (availability): latency of `GET availability` through the real use case and the DynamoDB adapter,
//! against a local moto server, on a cache hit and on a cache miss; and the pure slot computation alone.
//! Figures are for this machine and moto (a Python server, ~1-3 ms a call): real DynamoDB answers in single-digit
//! milliseconds from Lambda, so read them as relative costs. Prints p50/p99 over a fixed number of runs.

use chrono::{Duration, NaiveDate, Utc};
use integration_tests::*;
use shared::adapters::dynamo::DynamoStore;
use shared::app::availability::{AvailabilityDeps, AvailabilityQuery, Source, availability};
use shared::domain::TourType;
use shared::domain::property::parse_properties;
use shared::domain::slots::free_slots;
use shared::ports::AvailabilityCache;
use std::time::Instant;

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn report(name: &str, samples: &mut [f64]) {
    let p50 = percentile(samples, 0.50);
    let p99 = percentile(samples, 0.99);
    println!(
        "{name:<44} runs={:<5} p50={p50:>8.3} ms  p99={p99:>8.3} ms",
        samples.len()
    );
}

fn next_weekday() -> NaiveDate {
    let mut d = Utc::now().date_naive() + Duration::days(3);
    while chrono::Datelike::weekday(&d).number_from_monday() > 5 {
        d += Duration::days(1);
    }
    d
}

#[tokio::main]
async fn main() {
    let moto = Moto::start(&[], &[]);
    let store = DynamoStore::new(&moto.sdk().await, moto.var("TABLE_NAME"));
    load_demo_properties(&store).await;
    let deps = AvailabilityDeps {
        properties: &store,
        calendar: &store,
        cache: &store,
        cache_ttl: Duration::seconds(3600),
    };
    let date = next_weekday();
    let query = AvailabilityQuery::parse(Some(DEMO_PROPERTY), Some(&date.to_string()), Some("in_person")).unwrap();
    let runs = 300;

    // Warm up the connection pool.
    for _ in 0..20 {
        availability(&deps, &query, Utc::now()).await.unwrap();
    }

    let mut hits = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let (_, source) = availability(&deps, &query, Utc::now()).await.unwrap();
        hits.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(source, Source::Cache);
    }

    let mut misses = Vec::with_capacity(runs);
    for _ in 0..runs {
        store.invalidate(&query.property_id, &[date]).await.unwrap();
        let t = Instant::now();
        let (_, source) = availability(&deps, &query, Utc::now()).await.unwrap();
        misses.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(source, Source::Computed);
    }

    let text = std::fs::read_to_string(workspace_root().join("infra/properties/demo.json")).unwrap();
    let property = parse_properties(&text).unwrap().remove(0);
    let mut pure = Vec::with_capacity(runs * 10);
    let now = Utc::now();
    for _ in 0..runs * 10 {
        let t = Instant::now();
        let slots = free_slots(&property, TourType::InPerson, date, &[], now).unwrap();
        pure.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(slots);
    }

    println!("availability latency (local moto; demo property, in-person tours, {date})");
    report("cache hit  (1 GetItem + 1 BatchGetItem)", &mut hits);
    report("cache miss (+ busy Query, compute, PutItem)", &mut misses);
    report("slot computation alone (pure, one day)", &mut pure);
}
