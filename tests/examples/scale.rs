//! `make scale`: the change feed at a thousand properties. On this machine's DynamoDB Local, moto (SQS, Secrets
//! Manager) and an in-process ResMan sandbox answering every call after 200 ms, it onboards 50 ResMan accounts of 20
//! properties each (every account with its own key in its own secret; staff already have three tours in ResMan at
//! each property), then runs the feed as AWS would run it:
//!
//! - a tick every `SCALE_TICK_SECONDS` (60, the template's `PollSchedule`) queues one poll per property on the poll queue (`enqueue_polls`, the
//!   `resman-change-poller` function's use case);
//! - `SCALE_WORKERS` (20, the template's `PollWorkerConcurrency`) workers each take batches of ten from the queue and
//!   run `process_poll_batch` (the `resman-poll-worker` function's use case) with the paced ResMan adapter
//!   (`ResManAccountRequestsPerSecond` 5: never more than five requests to one account in any second), deleting
//!   what succeeded;
//! - meanwhile staff book tours straight in ResMan (the sandbox), at random properties, and each booking's **lag** is
//!   the time until its busy time is in our table, which is when availability stops offering it.
//!
//! It prints the lag's p50 and p99 (in seconds and in ticks) and ResMan requests per account per second (the
//! highest one-second count of any account, and the mean), and fails if the p99 lag reaches two ticks or an account
//! is called faster than its rate allows.

use chrono::{Duration, Utc};
use integration_tests::customers::{ACCOUNT_SECRET_PREFIX, generate};
use integration_tests::*;
use rand::RngExt;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};
use tour_aws::secrets::{AccountSecrets, SecretsManager};
use tour_aws::sqs::SqsPollQueue;
use tour_core::app::changes::{FeedDeps, PollSettings, enqueue_polls, process_poll_batch};
use tour_core::app::pacing::AccountPacer;
use tour_core::domain::UtcWindow;
use tour_core::domain::rate::Rate;
use tour_core::ports::CalendarStore;
use tour_core::ports::QueuedMessage;

const ACCOUNTS: usize = 50;
const PER_ACCOUNT: usize = 20;
const LATENCY_MS: u64 = 200;
/// Tours each property's staff already have in ResMan when it is onboarded (its first poll mirrors them).
const EXISTING_TOURS: usize = 3;

/// The template's `ResManAccountRequestsPerSecond`.
const CAP: u32 = 5;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One worker: receives up to ten poll messages at a time until `stop`, polls them, deletes what succeeded (a
/// failure comes back after the queue's visibility timeout, as with the event source mapping).
async fn worker(
    stack: Arc<Stack>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    resman: Arc<tour_aws::resman::HttpResMan>,
    settings: PollSettings,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (usize, usize) {
    let (mut polled, mut failed_total) = (0, 0);
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        let Ok(received) = received else {
            continue;
        };
        let messages: Vec<(QueuedMessage, String)> = received
            .messages()
            .iter()
            .map(|m| {
                let count = m
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                (
                    QueuedMessage {
                        id: m.message_id().unwrap_or_default().to_owned(),
                        body: m.body().unwrap_or_default().to_owned(),
                        receive_count: count,
                    },
                    m.receipt_handle().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if messages.is_empty() {
            // An idle worker asks again in a while: like the event source mapping, it must not hammer the queue.
            tokio::time::sleep(StdDuration::from_millis(500)).await;
            continue;
        }
        let batch: Vec<QueuedMessage> = messages.iter().map(|(m, _)| m.clone()).collect();
        let began = Instant::now();
        let feed = FeedDeps {
            properties: &stack.store,
            calendar: &stack.store,
            tours: &stack.store,
            queue: &stack.queue,
        };
        let failed = process_poll_batch(
            &feed,
            resman.as_ref(),
            &settings,
            &batch,
            StdDuration::from_secs(30),
            &integration_tests::invocation(60),
            &Utc::now,
        )
        .await;
        failed_total += failed.len();
        if began.elapsed() > StdDuration::from_secs(10) {
            eprintln!(
                "slow batch: {} polls in {:.1} s ({} failed)",
                batch.len(),
                began.elapsed().as_secs_f64(),
                failed.len()
            );
        }
        // What succeeded is deleted in one call, as the event source mapping does.
        let done: Vec<aws_sdk_sqs::types::DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|(message, _)| !failed.iter().any(|f| f.id == message.id))
            .enumerate()
            .filter_map(|(i, (_, handle))| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .ok()
            })
            .collect();
        polled += done.len();
        if !done.is_empty() {
            let _ = sqs
                .delete_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(done))
                .send()
                .await;
        }
    }
    (polled, failed_total)
}

use integration_tests::stack::Stack;

/// Waits until every property has a checkpoint (its first poll is done). Not the queue's emptiness: moto sometimes
/// hands one message to two workers at once (SQS is at-least-once too), and the second's delete then fails, leaving a
/// copy in flight for the queue's visibility timeout although its property was polled.
async fn all_polled(
    store: &tour_aws::dynamo::DynamoStore,
    ids: &[tour_core::domain::ResManPropertyId],
    within: StdDuration,
) -> bool {
    use futures::StreamExt;
    let started = Instant::now();
    while started.elapsed() < within {
        let checks: Vec<_> = ids.iter().map(|id| store.poll_checkpoint(id)).collect();
        let missing = futures::stream::iter(checks)
            .buffer_unordered(32)
            .filter(|c| std::future::ready(!matches!(c, Ok(Some(_)))))
            .count()
            .await;
        if missing == 0 {
            return true;
        }
        tokio::time::sleep(StdDuration::from_secs(1)).await;
    }
    false
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> std::process::ExitCode {
    // Errors go out as the functions log them (a failed poll is counted in the table below).
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: set before any other thread reads the environment.
        unsafe { std::env::set_var("RUST_LOG", "error") };
    }
    tour_edge::telemetry::init();
    // The template's PollSchedule (a minute), and the poll workers' PollWorkerConcurrency.
    let tick = StdDuration::from_secs(setting("SCALE_TICK_SECONDS", 60));
    let ticks = setting("SCALE_TICKS", 5);
    let workers = setting("SCALE_WORKERS", 20) as usize;
    let changes = setting("SCALE_CHANGES", 40) as usize;

    println!(
        "Onboarding {ACCOUNTS} ResMan accounts x {PER_ACCOUNT} properties; ResMan answers after {LATENCY_MS} ms ..."
    );
    let stack = Stack::start().await;
    let sdk = stack.aws.sdk().await;
    let customers = generate(ACCOUNTS, PER_ACCOUNT);
    customers.load_into_sandbox(&stack.sandbox.base_url()).await;
    let existing = customers
        .book_existing_tours(&stack.sandbox.base_url(), EXISTING_TOURS)
        .await;
    println!("Staff already have {existing} tours in ResMan ({EXISTING_TOURS} a property).");
    customers
        .onboard(&aws_sdk_secretsmanager::Client::new(&sdk), &stack.store)
        .await;
    stack
        .control(
            reqwest::Method::POST,
            "/_sandbox/faults",
            Some(json!({"latency_ms": LATENCY_MS})),
        )
        .await;

    let rate = Rate::at_most_per_second(CAP).expect("a valid cap");
    let pacer = AccountPacer {
        limiter: Arc::new(stack.aws.store().await),
        rate,
        patience: Duration::seconds(20),
        clock: Utc::now,
    };
    let accounts = AccountSecrets::new(
        SecretsManager::new(&sdk),
        ACCOUNT_SECRET_PREFIX,
        StdDuration::from_secs(300),
    );
    let resman = Arc::new(
        resman_for(&stack.sandbox, StdDuration::from_secs(10))
            .with_accounts(Arc::new(accounts))
            .with_pacer(Arc::new(pacer)),
    );
    // The demo's own two properties are in the table too: 1,002 properties in all.
    let settings = PollSettings {
        // Every generated property is new: its first poll reads back one day, not thirty, so that the warm-up tick
        // below is one request per property (a thirty-day first read is read a day at a time).
        backfill: Duration::days(1),
        min_gap: Duration::seconds(2),
        ..PollSettings::default()
    };
    let queue_url = stack.aws.var("QUEUE_URL_ResManPollQueue").to_owned();
    let polls = SqsPollQueue::new(&sdk, queue_url.clone());
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pool = tokio::task::JoinSet::new();
    for _ in 0..workers {
        pool.spawn(worker(
            Arc::clone(&stack),
            sqs.clone(),
            queue_url.clone(),
            Arc::clone(&resman),
            settings.clone(),
            Arc::clone(&stop),
        ));
    }

    // Warm-up: one tick, so that every property has a checkpoint.
    let read = Instant::now();
    let all = tour_core::ports::PropertyStore::properties(&stack.store)
        .await
        .expect("properties");
    println!(
        "Read {} property configurations in {:.1} s.",
        all.len(),
        read.elapsed().as_secs_f64()
    );
    let warm = Instant::now();
    let queued = enqueue_polls(&stack.store, &polls).await.expect("queued");
    println!("Queued {queued} polls in {:.1} s.", warm.elapsed().as_secs_f64());
    let ids: Vec<tour_core::domain::ResManPropertyId> = all.iter().map(|p| p.id.clone()).collect();
    assert!(
        all_polled(&stack.store, &ids, StdDuration::from_secs(600)).await,
        "the warm-up tick never finished"
    );
    println!(
        "Warm-up tick: {queued} properties polled in {:.1} s with {workers} workers.",
        warm.elapsed().as_secs_f64()
    );
    stack.control(reqwest::Method::DELETE, "/_sandbox/requests", None).await;

    // The run: ticks on schedule, staff bookings spread over it, each watched until it is in our table.
    let run_started = Utc::now();
    let ticker = {
        let (stack, polls) = (Arc::clone(&stack), polls);
        tokio::spawn(async move {
            let mut longest = StdDuration::ZERO;
            for _ in 0..ticks {
                let began = Instant::now();
                enqueue_polls(&stack.store, &polls).await.expect("queued");
                longest = longest.max(began.elapsed());
                tokio::time::sleep(tick.saturating_sub(began.elapsed())).await;
            }
            longest
        })
    };
    let spacing = tick.mul_f64(ticks as f64 - 2.0) / changes as u32;
    let mut watchers = tokio::task::JoinSet::new();
    let mut rng = rand::rng();
    for n in 0..changes {
        tokio::time::sleep(spacing).await;
        let property = &customers.properties[rng.random_range(0..customers.properties.len())];
        let agent = property.agents[rng.random_range(0..property.agents.len())].id.clone();
        // A time well ahead, on a five-minute grid, so that bookings rarely collide.
        let start = (Utc::now() + Duration::days(2 + rng.random_range(0..20)))
            .date_naive()
            .and_hms_opt(8 + rng.random_range(0..11), 5 * rng.random_range(0..12), 0)
            .unwrap()
            .and_utc();
        let booked_at = Utc::now();
        let answer = reqwest::Client::new()
            .post(format!("{}/_sandbox/appointments", stack.sandbox.base_url()))
            .json(&json!({
                "property_id": property.id.as_str(), "agent_id": agent.as_str(),
                "scheduled_at": start.to_rfc3339(), "duration_minutes": 30,
                "prospect": {"first_name": "Walk", "last_name": format!("In{n}"), "email": format!("walkin{n}@example.com")},
            }))
            .send()
            .await
            .expect("the sandbox answers");
        if !answer.status().is_success() {
            continue; // that agent already had that time
        }
        let (stack, id) = (Arc::clone(&stack), property.id.clone());
        watchers.spawn(async move {
            let window = UtcWindow::starting_at(start, Duration::minutes(30)).unwrap();
            loop {
                let seen = stack
                    .store
                    .busy_in(&id, window)
                    .await
                    .is_ok_and(|busy| busy.iter().any(|b| b.window.start() == start));
                if seen {
                    return (Utc::now() - booked_at).num_milliseconds() as f64 / 1000.0;
                }
                if Utc::now() - booked_at > Duration::minutes(5) {
                    return f64::INFINITY;
                }
                tokio::time::sleep(StdDuration::from_millis(200)).await;
            }
        });
    }
    let longest_tick = ticker.await.expect("ticker");
    let mut lags = Vec::new();
    while let Some(lag) = watchers.join_next().await {
        lags.push(lag.expect("watcher"));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut polled, mut failed) = (0, 0);
    while let Some(done) = pool.join_next().await {
        let (p, f) = done.expect("worker");
        polled += p;
        failed += f;
    }
    let run_seconds = (Utc::now() - run_started).num_milliseconds() as f64 / 1000.0;
    lags.sort_by(f64::total_cmp);

    // ResMan's side: every request of the run, by account.
    let requests: Vec<serde_json::Value> = stack
        .control(reqwest::Method::GET, "/_sandbox/requests", None)
        .await
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut by_account: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for request in &requests {
        if let (Some(account), Some(at)) = (request["account_id"].as_i64(), request["at_ms"].as_i64()) {
            by_account.entry(account).or_default().push(at);
        }
    }
    // The busiest second of any account: the most requests that arrived within one second of each other.
    let mut busiest_second = 0usize;
    for times in by_account.values_mut() {
        times.sort_unstable();
        let mut start = 0;
        for end in 0..times.len() {
            while times[end] - times[start] >= 1000 {
                start += 1;
            }
            busiest_second = busiest_second.max(end - start + 1);
        }
    }
    let over_cap = usize::from(busiest_second > CAP as usize);
    let mean_rate = requests.len() as f64 / run_seconds / by_account.len().max(1) as f64;
    let tick_s = tick.as_secs_f64();
    let (p50, p99) = (percentile(&lags, 50.0), percentile(&lags, 99.0));
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| properties, accounts | {}, {} |",
        customers.properties.len() + 2,
        ACCOUNTS + 1
    );
    println!("| ResMan latency, cap per account | {LATENCY_MS} ms, {CAP} requests in any second |");
    println!("| tick, workers | {tick_s} s, {workers} |");
    println!("| staff bookings watched | {} |", lags.len());
    println!("| lag p50 | {p50:.1} s ({:.2} ticks) |", p50 / tick_s);
    println!("| lag p99 | {p99:.1} s ({:.2} ticks) |", p99 / tick_s);
    println!("| polls done, failed | {polled}, {failed} |");
    println!(
        "| longest tick (queueing {} polls) | {:.2} s |",
        customers.properties.len() + 2,
        longest_tick.as_secs_f64()
    );
    println!(
        "| ResMan requests per account per second: busiest second of any account, mean | {busiest_second}, {mean_rate:.2} |"
    );
    let ok = p99 < 2.0 * tick_s && over_cap == 0 && !lags.is_empty();
    // Returning (rather than exiting) stops moto and the sandbox on the way out.
    if ok {
        println!("make scale: the feed kept up: p99 lag under two ticks, every account within its rate.");
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("make scale: FAILED (p99 lag must stay under two ticks, no account above its rate)");
        std::process::ExitCode::FAILURE
    }
}
