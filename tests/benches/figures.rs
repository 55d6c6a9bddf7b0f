//! `make bench`: the measured figures of `docs/figures.md`, side by side in one run, on this machine's DynamoDB Local (AWS's
//! own emulator), moto (SQS, Secrets Manager) and an in-process ResMan sandbox:
//!
//! - the floor the emulator itself sets: a bare `GetItem`, and a bare `TransactWriteItems` as large as a booking's;
//! - availability (cache hit, cache miss) and booking (ResMan at 0 ms and at 200 ms): p50, p99, DynamoDB requests
//!   and ResMan calls per request, and p50 as a multiple of the floor that matches it;
//! - changes of booked tours (a confirmation, a move), with the same columns;
//! - 200 concurrent bookings of one slot, until every request is answered;
//! - the slot computation alone (pure);
//! - each function's release binary: its size, and its cold start (process start to first answer, against a
//!   Lambda runtime API played by this bench) for the three chatbot-facing functions.
//!
//! - the webhook's cost per request, signed or refused, with the header stuffed with candidates and the body over its
//!   cap;
//! - a text through the sender, and a prospect's `C` reply to it (`texts`).
//!
//! DynamoDB requests are counted on the wire (an SDK interceptor); ResMan calls from the sandbox's request log.

use chrono::{Duration, NaiveDate, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};
use tour_aws::dynamo::DynamoStore;
use tour_aws::resman::HttpResMan;
use tour_aws::sqs::SqsSyncQueue;
use tour_core::app::AppError;
use tour_core::app::availability::{AvailabilityDeps, AvailabilityQuery, Source, availability};
use tour_core::app::booking::{BookingDeps, book_tour};
use tour_core::domain::TourType;
use tour_core::domain::property::Property;
use tour_core::domain::slots::free_slots;
use tour_core::domain::{
    booking::{BookTourCommand, BookTourRequest},
    ids::BookingId,
    record::{Holder, lock_granules},
};
use tour_core::ports::Outcome;
use tour_core::ports::{AvailabilityCache, PropertyStore, TourReads, TourWrites};

const RUNS: usize = 200;
const BOOKINGS: usize = 60;

/// The HTTP-facing functions whose cold start is measured, with the sample event each answers first.
const COLD_STARTS: [&str; 3] = ["tour-availability", "book-tour", "conversation-tours"];
/// The chatbot's API key in this bench's secret (and in the events it sends).
const API_KEY: &str = "bench-api-key-0123456789";

struct Stack {
    aws: LocalAws,
    sandbox: RunningSandbox,
    store: DynamoStore,
    dynamodb: CallCounter,
    resman: HttpResMan,
    queue: SqsSyncQueue,
    property: Property,
}

impl Stack {
    /// Its own tables, queues and sandbox, so each measurement starts from the same small table.
    async fn fresh() -> Stack {
        let sandbox = sandbox().await;
        let keys = serde_json::to_string(&[API_KEY]).unwrap();
        let aws = LocalAws::start(
            &[("ResManBaseUrl", &sandbox.base_url())],
            &[("ApiKeysSecretArn", &keys)],
        );
        let (store, dynamodb) = aws.counted_store().await;
        load_demo_properties(&store).await;
        let id = tour_core::domain::ResManPropertyId::parse(DEMO_PROPERTY).unwrap();
        let property = store.property(&id).await.unwrap().unwrap();
        Stack {
            queue: aws.queue().await,
            resman: resman_for(&sandbox, StdDuration::from_secs(8)),
            aws,
            sandbox,
            store,
            dynamodb,
            property,
        }
    }

    fn booking(&self) -> BookingDeps<'_> {
        booking_deps(&self.store, &self.resman, &self.queue, StdDuration::from_millis(250))
    }

    async fn book(&self, n: usize, date: NaiveDate, time: &str) -> Result<Outcome, AppError> {
        let id = BookingId::from_uuid(uuid::Uuid::new_v4());
        book_tour(&self.booking(), &command(n, date, time), None, id, Utc::now())
            .await
            .map(|b| b.outcome)
    }

    /// The chatbot's `PUT /api/resman/tours/{id}` with `body`: the tour's view.
    async fn update(&self, id: &BookingId, body: Value) -> Result<String, AppError> {
        update_tour(&self.store, &self.queue, id.as_str(), &body, None)
            .await
            .map(|u| u.body)
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request =
            reqwest::Client::new().request(method, format!("{}/_sandbox/{path}", self.sandbox.base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// ResMan calls so far (the sandbox's request log).
    async fn resman_calls(&self) -> usize {
        self.control(reqwest::Method::GET, "requests", None)
            .await
            .as_array()
            .map_or(0, Vec::len)
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
    for day in (2..60).map(|d| today + Duration::days(d)) {
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

/// Milliseconds of each run.
struct Timings(Vec<f64>);

impl Timings {
    fn new() -> Self {
        Self(Vec::new())
    }

    fn add(&mut self, started: Instant) {
        self.0.push(started.elapsed().as_secs_f64() * 1e3);
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }
}

/// One row of the table: what, p50, p99, DynamoDB requests and ResMan calls per run, and p50 over its floor.
fn row(what: &str, timings: &Timings, dynamodb: f64, resman: Option<f64>, floor: Option<(&str, f64)>) {
    let per = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    let p50 = timings.percentile(0.5);
    println!(
        "| {what} | {p50:.2} ms | {:.2} ms | {} | {} | {} |",
        timings.percentile(0.99),
        per(dynamodb),
        resman.map_or("-".into(), per),
        floor.map_or("-".into(), |(name, f)| format!("{:.2}x {name}", p50 / f)),
    );
}

fn next_weekday() -> NaiveDate {
    let mut d = Utc::now().date_naive() + Duration::days(3);
    while chrono::Datelike::weekday(&d).number_from_monday() > 5 {
        d += Duration::days(1);
    }
    d
}

/// The emulator's floor: a bare consistent `GetItem` of the property item, and a bare `TransactWriteItems` of
/// `items` conditional puts (the size of a booking's transaction).
async fn floors(stack: &Stack, items: usize) -> (Timings, Timings) {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
    let client = stack.store.client();
    let table = stack.store.table();
    let get = timed_get_items(client, table).await;
    let mut transact = Timings::new();
    for round in 0..RUNS * 2 {
        let run = uuid::Uuid::new_v4();
        let puts = (0..items).map(|i| {
            let put = Put::builder()
                .table_name(table)
                .item("pk", AttributeValue::S(format!("FLOOR#{run}#{i}")))
                .item("sk", AttributeValue::S("FLOOR".into()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .unwrap();
            TransactWriteItem::builder().put(put).build()
        });
        let started = Instant::now();
        client
            .transact_write_items()
            .set_transact_items(Some(puts.collect()))
            .send()
            .await
            .unwrap();
        if round >= RUNS {
            transact.add(started);
        }
    }
    (get, transact)
}

async fn availability_rows(stack: &Stack, get_floor: f64) {
    let deps = AvailabilityDeps {
        calendar: &stack.store,
        cache: &stack.store,
        cache_ttl: Duration::seconds(3600),
        reach: &tour_core::domain::access::EVERY_ACCOUNT,
    };
    let date = next_weekday();
    let query = AvailabilityQuery::parse(Some(DEMO_PROPERTY), Some(&date.to_string()), Some("in_person")).unwrap();
    availability(&deps, &query, Utc::now()).await.unwrap();

    let (mut hits, before) = (Timings::new(), stack.dynamodb.count());
    for _ in 0..RUNS {
        let started = Instant::now();
        let (_, source) = availability(&deps, &query, Utc::now()).await.unwrap();
        hits.add(started);
        assert_eq!(source, Source::Cache);
    }
    let hit_calls = (stack.dynamodb.count() - before) as f64 / RUNS as f64;

    let (mut misses, mut calls) = (Timings::new(), 0);
    for _ in 0..RUNS {
        stack.store.invalidate(&query.property_id, &[date]).await.unwrap();
        let before = stack.dynamodb.count();
        let started = Instant::now();
        let (_, source) = availability(&deps, &query, Utc::now()).await.unwrap();
        misses.add(started);
        calls += stack.dynamodb.count() - before;
        assert_eq!(source, Source::Computed);
    }
    let floor = Some(("GetItem", get_floor));
    row("availability, cache hit", &hits, hit_calls, None, floor);
    row(
        "availability, cache miss",
        &misses,
        calls as f64 / RUNS as f64,
        None,
        floor,
    );
}

async fn booking_row(latency_ms: u64, transact_floor: f64) {
    let stack = Stack::fresh().await;
    stack
        .control(reqwest::Method::POST, "faults", Some(json!({"latency_ms": latency_ms})))
        .await;
    let (mut timings, dynamodb, resman) = (Timings::new(), stack.dynamodb.count(), stack.resman_calls().await);
    for (n, (date, time)) in slots(&stack.property, BOOKINGS).iter().enumerate() {
        let started = Instant::now();
        let status = stack.book(n, *date, time).await;
        timings.add(started);
        assert_eq!(status.ok(), Some(Outcome::Booked), "booking {n} at {date} {time}");
    }
    let runs = BOOKINGS as f64;
    row(
        &format!("booking, ResMan at {latency_ms} ms"),
        &timings,
        (stack.dynamodb.count() - dynamodb) as f64 / runs,
        Some((stack.resman_calls().await - resman) as f64 / runs),
        Some(("TransactWriteItems", transact_floor)),
    );
}

/// Changes of booked tours: a confirmation, then a move to another free time (the new slot's locks taken and the
/// old ones freed in one transaction). ResMan is written afterwards by the worker, so it takes no part here.
async fn change_rows(transact_floor: f64) {
    let stack = Stack::fresh().await;
    let all = slots(&stack.property, BOOKINGS * 2);
    let (booked, targets) = all.split_at(BOOKINGS);
    let mut ids = Vec::new();
    for (n, (date, time)) in booked.iter().enumerate() {
        let id = BookingId::from_uuid(uuid::Uuid::new_v4());
        let answer = book_tour(&stack.booking(), &command(n, *date, time), None, id.clone(), Utc::now()).await;
        assert_eq!(answer.map(|b| b.outcome).ok(), Some(Outcome::Booked), "booking {n}");
        ids.push(id);
    }
    let body = |what: &str, n: usize| match what {
        "change: confirm" => json!({"status": "confirmed"}),
        _ => {
            let (date, time) = &targets[n];
            json!({"rescheduled_datetime": format!("{date}T{time}")})
        }
    };
    for what in ["change: confirm", "change: move to a free time"] {
        let (mut timings, dynamodb, resman) = (Timings::new(), stack.dynamodb.count(), stack.resman_calls().await);
        for (n, id) in ids.iter().enumerate() {
            let started = Instant::now();
            let updated = stack.update(id, body(what, n)).await;
            timings.add(started);
            assert!(updated.is_ok_and(|view| view.contains(id.as_str())), "{what} {n}");
        }
        let runs = BOOKINGS as f64;
        row(
            what,
            &timings,
            (stack.dynamodb.count() - dynamodb) as f64 / runs,
            Some((stack.resman_calls().await - resman) as f64 / runs),
            Some(("TransactWriteItems", transact_floor)),
        );
    }
}

async fn concurrent_bookings() {
    let stack = Arc::new(Stack::fresh().await);
    let (date, time) = slots(&stack.property, 1).remove(0);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let (stack, time) = (stack.clone(), time.clone());
        tasks.spawn(async move { stack.book(10_000 + n, date, &time).await });
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
        "\n200 concurrent bookings of one slot settled in {:.2} s: {booked} booked, {refused} refused with alternatives",
        started.elapsed().as_secs_f64()
    );
}

fn pure_row(property: &Property) {
    let (date, now) = (next_weekday(), Utc::now());
    let mut pure = Timings::new();
    for _ in 0..RUNS * 10 {
        let started = Instant::now();
        std::hint::black_box(free_slots(property, TourType::InPerson, date, &[], now).unwrap());
        pure.add(started);
    }
    println!(
        "\nslot computation alone (pure, one day): p50 {:.4} ms, p99 {:.4} ms",
        pure.percentile(0.5),
        pure.percentile(0.99)
    );
}

/// The functions' release binaries: each one's size, and the cold start of the chatbot-facing ones.
async fn binaries(stack: &Stack) {
    let release = workspace_root().join("target/release");
    println!("\n| function | release binary | cold start (process start to first answer) |\n|---|---|---|");
    for function in function_names() {
        let path = release.join(&function);
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|_| {
                panic!(
                    "{} is missing: run `make bench` (it builds the release binaries)",
                    path.display()
                )
            })
            .len();
        let cold = if COLD_STARTS.contains(&function.as_str()) {
            let text = std::fs::read_to_string(workspace_root().join(format!("events/{function}.json"))).unwrap();
            let mut event: Value = serde_json::from_str(&text).unwrap();
            event["headers"]["x-api-key"] = json!(API_KEY);
            let event = event.to_string();
            let mut starts = Timings::new();
            for _ in 0..5 {
                starts.0.push(cold_start(&path, &event, stack).await);
            }
            format!("{:.0} ms (median of 5)", starts.percentile(0.5))
        } else {
            "-".into()
        };
        println!("| {function} | {:.1} MiB | {cold} |", size as f64 / 1_048_576.0);
    }
}

/// The function binaries of the workspace: the crates under `functions/`.
fn function_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("functions"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

/// Starts a function binary against a one-event Lambda runtime API and times it until it posts its answer.
async fn cold_start(binary: &std::path::Path, event: &str, stack: &Stack) -> f64 {
    use axum::extract::{Path, State};
    use axum::routing::{get, post};
    let (answered, mut answer) = tokio::sync::mpsc::unbounded_channel::<String>();
    let failed = answered.clone();
    let served = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let event = event.to_owned();
    let app = axum::Router::new()
        .route(
            "/2018-06-01/runtime/invocation/next",
            get(
                move |State(served): State<Arc<std::sync::atomic::AtomicBool>>| async move {
                    if served.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        // One event only: the next poll waits until the process is stopped.
                        std::future::pending::<()>().await;
                    }
                    let deadline = (Utc::now() + Duration::seconds(30)).timestamp_millis().to_string();
                    (
                        [
                            ("lambda-runtime-aws-request-id", "bench-request".to_owned()),
                            ("lambda-runtime-deadline-ms", deadline),
                            (
                                "lambda-runtime-invoked-function-arn",
                                "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
                            ),
                        ],
                        event,
                    )
                },
            ),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/{outcome}",
            post(move |Path((_, outcome)): Path<(String, String)>| async move {
                let _ = answered.send(outcome);
                ""
            }),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            post(move |body: String| async move {
                let _ = failed.send(format!("init/error: {body}"));
                ""
            }),
        )
        .with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(&stack.aws.env)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &stack.aws.dynamodb_endpoint)
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_LEVEL", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let outcome = tokio::select! {
        answered = tokio::time::timeout(StdDuration::from_secs(30), answer.recv()) => answered.ok().flatten(),
        exited = child.wait() => Some(format!("exited: {exited:?}")),
    };
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    let _ = child.kill().await;
    if outcome.as_deref() != Some("response") {
        let mut log = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut log).await;
        }
        panic!("{} did not answer ({outcome:?}); its log:\n{log}", binary.display());
    }
    server.abort();
    elapsed
}

/// `cargo bench --bench figures -- binaries` measures only the binaries (`latency`: only the latency tables).
fn wanted(section: &str) -> bool {
    let asked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    asked.is_empty() || asked.iter().any(|a| a == section)
}

#[tokio::main]
async fn main() {
    println!("tour-booking figures ({RUNS} runs each, {BOOKINGS} bookings per booking row; release build)\n");
    let stack = Stack::fresh().await;
    if wanted("latency") {
        latency(&stack).await;
    }
    if wanted("binaries") {
        binaries(&stack).await;
    }
    // `analytics` at 10,000 tours a month; `analytics-100k` at 100,000 (about 40 minutes of seeding and rolling up).
    for (section, tours_a_month) in [("analytics", TOURS_A_MONTH[0]), ("analytics-100k", TOURS_A_MONTH[1])] {
        if wanted(section) {
            analytics_rows(tours_a_month).await;
        }
    }
    if wanted("iam") {
        iam_rows().await;
    }
    if wanted("webhook") {
        webhook_rows(&stack).await;
    }
    if wanted("texts") {
        texts_rows().await;
    }
}

/// Texts sent and replies taken in this section (each its own prospect and number).
const TEXTS: usize = 60;

/// What a text costs us: one through the sender (a booking's confirmation text: consent read, claimed, sent through
/// the stand-in for End User Messaging SMS, its id logged for replies, marked sent), and a prospect's `C` reply to
/// it (placed by the text it answers, applied once, the tour's next version saved with its answer owed, both
/// queued). On fresh tables, at a property that texts; each prospect agreed to texts with the booking.
async fn texts_rows() {
    use tour_core::app::notify::send_queued_message;
    use tour_core::app::replies::{InboundText, ReplyDeps, ReplyOutcome, take_reply};
    let stack = Stack::fresh().await;
    let property = integration_tests::stack::texting(&stack.store, &stack.property).await;
    let sms = SmsSandbox::start(None, None);
    let texts = tour_aws::sms::SmsTexts::new(&sms.sdk().await, "pool-local", None, StdDuration::from_secs(5));
    // Booked at noon at the property, so that no confirmation text waits for the morning.
    let zone = property.time_zone;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let noon = tour_core::domain::slots::resolve_local(zone, today.and_hms_opt(12, 0, 0).unwrap()).unwrap();
    let mut booked = Vec::new();
    for (n, (date, time)) in slots(&property, TEXTS).into_iter().enumerate() {
        let mut command = command(n, date, &time);
        command.sms_consent = Some(tour_core::domain::consent::SmsConsent {
            words: "Maple Grove may text me about my tour. Reply STOP to stop.".into(),
            agreed_at: noon - Duration::minutes(1),
        });
        let id = BookingId::from_uuid(uuid::Uuid::new_v4());
        let answer = book_tour(&stack.booking(), &command, None, id.clone(), noon)
            .await
            .unwrap();
        assert_eq!(answer.outcome, Outcome::Booked);
        booked.push((id, command.contact.phone.clone().unwrap()));
    }

    let parts = integration_tests::stack::SenderParts::new(&stack.aws).await;
    let sender = parts.deps(&stack.store, &texts, &stack.queue);
    let mut sent = Timings::new();
    let before = stack.dynamodb.count();
    for (id, _) in &booked {
        let body = json!({"booking_id": id.as_str(), "message": "text_confirmation#v1"}).to_string();
        let started = Instant::now();
        let outcome = send_queued_message(&sender, &body, 1, Utc::now(), StdDuration::from_secs(28))
            .await
            .unwrap();
        sent.add(started);
        assert_eq!(outcome, tour_core::app::sync::WorkerOutcome::Done);
    }
    let per_text = (stack.dynamodb.count() - before) as f64 / TEXTS as f64;
    let kept = sms.control(reqwest::Method::GET, "/_sandbox/texts", None).await["texts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(kept.len(), TEXTS, "one text each, from the sender");

    let replies = ReplyDeps {
        update: tour_core::app::lifecycle::UpdateDeps {
            properties: &stack.store,
            calendar: &stack.store,
            tours: &stack.store,
            queue: &stack.queue,
        },
        messages: &stack.store,
        consents: &stack.store,
        text_log: &stack.store,
    };
    let mut taken = Timings::new();
    let before = stack.dynamodb.count();
    for (n, (id, phone)) in booked.iter().enumerate() {
        let answered = kept.iter().find(|t| t["to"].as_str() == Some(phone.expose())).unwrap();
        let reply = InboundText {
            from: phone.clone(),
            body: "C".into(),
            inbound_id: format!("bench-reply-{n}"),
            previous: answered["message_id"].as_str().map(str::to_owned),
        };
        let started = Instant::now();
        let outcome = take_reply(&replies, &reply, Utc::now()).await.unwrap();
        taken.add(started);
        assert!(matches!(outcome, ReplyOutcome::Applied(_)), "{outcome:?}");
        assert!(
            stack
                .store
                .tour(id)
                .await
                .unwrap()
                .unwrap()
                .prospect_confirmed_at
                .is_some()
        );
    }
    // Each reply's check that it was recorded (one GetItem) is the bench's own, not the reply's.
    let per_reply = (stack.dynamodb.count() - before) as f64 / TEXTS as f64 - 1.0;
    println!("\ntexts ({TEXTS} prospects who agreed to texts, one text and one reply each):\n");
    println!("| operation | p50 | p99 | DynamoDB requests per run | ResMan calls per run | p50 over its floor |");
    println!("|---|---|---|---|---|---|");
    row(
        "a confirmation text through the sender (1 text service call)",
        &sent,
        per_text,
        None,
        None,
    );
    row(
        "a prospect's C reply, placed and applied",
        &taken,
        per_reply,
        Some(0.0),
        None,
    );
}

/// What an unauthenticated caller can make the webhook spend: each refusal's cost, beside a signed notice's, through
/// the webhook's use case (`receive_change_notice`). The refusals never reach the store.
async fn webhook_rows(stack: &Stack) {
    use tour_core::app::webhook::{WebhookDeps, receive_change_notice};
    use tour_core::domain::signature;
    const SECRET: &str = "bench-webhook-secret-0123";
    let relays = relays_of(SECRET);
    let deps = WebhookDeps {
        inbox: &stack.store,
        feed: feed(&stack.store, &stack.queue),
        relays: &relays,
    };
    let now = Utc::now();
    let t = now.timestamp();
    // The largest body accepted (64 KiB), and a 1 MB one.
    let (large, huge) = (vec![b' '; 64 * 1024], vec![b' '; 1 << 20]);
    let wrong = format!(",v1={}", "00".repeat(32));
    let empties = format!("t={t}{}", ",v1=".repeat(2000));
    let cases: [(&str, &[u8], String); 6] = [
        (
            "64 KiB, signed (one HMAC, then read)",
            &large,
            signature::sign(SECRET.as_bytes(), t, &large),
        ),
        (
            "64 KiB, 4 wrong candidates (one HMAC)",
            &large,
            format!("t={t}{}", wrong.repeat(4)),
        ),
        ("64 KiB, 2,000 empty candidates", &large, empties.clone()),
        (
            "64 KiB, 2,000 full-length candidates",
            &large,
            format!("t={t}{}", wrong.repeat(2000)),
        ),
        ("1 MB, one candidate", &huge, format!("t={t}{wrong}")),
        ("1 MB, 2,000 empty candidates", &huge, empties),
    ];
    println!("\n| webhook request (refused unless signed) | p50 | p99 | answer |");
    println!("|---|---|---|---|");
    for (what, body, header) in cases {
        let mut timings = Timings::new();
        let mut answer = String::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let outcome = receive_change_notice(&deps, Some(&header), body, now).await;
            timings.add(started);
            answer = match outcome {
                Ok(_) => "accepted".into(),
                Err(e) => tour_edge::http::response::ErrorBody::of(&e).0.to_string(),
            };
        }
        println!(
            "| {what} | {:.3} ms | {:.3} ms | {answer} |",
            timings.percentile(0.5),
            timings.percentile(0.99)
        );
    }
}

/// `RUNS * 3` consistent reads of the property item through `client`; the last `RUNS` timed (the emulator is a JVM:
/// the first few hundred requests run slower while it compiles its hot paths).
async fn timed_get_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Timings {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut timings = Timings::new();
    for round in 0..RUNS * 3 {
        let started = Instant::now();
        client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("PROPERTY".into()))
            .key("sk", AttributeValue::S(DEMO_PROPERTY.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        if round >= RUNS * 2 {
            timings.add(started);
        }
    }
    timings
}

/// get-tour's read of one tour: the tour with its personal data, then with its messages.
async fn timed_tour_reads(store: &DynamoStore, id: &BookingId) -> Timings {
    use tour_core::ports::MessageStore;
    let mut timings = Timings::new();
    for round in 0..RUNS * 2 {
        let started = Instant::now();
        assert!(store.tour(id).await.unwrap().is_some());
        assert!(store.tour_with_messages(id).await.unwrap().is_some());
        if round >= RUNS {
            timings.add(started);
        }
    }
    timings
}

/// The local IAM gate's cost: the same operations straight to the emulators and through the gate, signed as the
/// function that makes them (its policy resolved from template.yaml, as `make up` runs it).
async fn iam_rows() {
    let stack = Stack::fresh().await;
    let gate = stack.aws.iam_gate().await;
    let table = stack.aws.var("TABLE_NAME");
    let as_get_tour = DynamoStore::new(&stack.aws.sdk_as(&gate, "LOCALGetTour").await, table);
    let as_book_tour = stack.aws.sdk_as(&gate, "LOCALBookTour").await;
    let gated_store = DynamoStore::new(&as_book_tour, table);
    let gated_queue = SqsSyncQueue::new(&as_book_tour, stack.aws.var("SYNC_QUEUE_URL"))
        .with_messages(stack.aws.var("NOTIFY_QUEUE_URL"));

    let get = (
        timed_get_items(stack.store.client(), table).await,
        timed_get_items(as_get_tour.client(), table).await,
    );
    // Bookings alternate between the two paths over the same kind of slots, one slot each.
    let (mut direct, mut gated) = (Timings::new(), Timings::new());
    let calls_before = stack.dynamodb.count();
    let mut first = None;
    for (n, (date, time)) in slots(&stack.property, 2 * BOOKINGS).iter().enumerate() {
        let id = BookingId::from_uuid(uuid::Uuid::new_v4());
        let deps = if n % 2 == 0 {
            stack.booking()
        } else {
            integration_tests::booking_deps(&gated_store, &stack.resman, &gated_queue, StdDuration::from_millis(250))
        };
        let started = Instant::now();
        let booked = book_tour(&deps, &command(n, *date, time), None, id.clone(), Utc::now()).await;
        if n % 2 == 0 {
            direct.add(started)
        } else {
            gated.add(started)
        }
        assert_eq!(
            booked.map(|b| b.outcome).ok(),
            Some(Outcome::Booked),
            "booking {n} at {date} {time}"
        );
        first.get_or_insert(id);
    }
    let booking_calls = (stack.dynamodb.count() - calls_before) as f64 / BOOKINGS as f64;
    let id = first.expect("a booking");
    let reads = (
        timed_tour_reads(&stack.store, &id).await,
        timed_tour_reads(&as_get_tour, &id).await,
    );
    let denied: Vec<Value> = reqwest::get(format!("{gate}/_iam/denials"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        denied.is_empty(),
        "the measured calls stay inside their policies: {denied:?}"
    );

    // The added time is divided by the DynamoDB requests alone: a booking's queue messages pass the gate too, so
    // its per-request figure is an upper bound.
    println!("\n| through the IAM gate | direct p50 | gated p50 | DynamoDB requests per run | added per request |");
    println!("|---|---|---|---|---|");
    let gate_row = |what: &str, timings: &(Timings, Timings), requests: f64| {
        let (d, g) = (timings.0.percentile(0.5), timings.1.percentile(0.5));
        println!(
            "| {what} | {d:.2} ms | {g:.2} ms | {requests:.1} | {:.3} ms |",
            (g - d) / requests
        );
    };
    gate_row("GetItem (the floor)", &get, 1.0);
    gate_row("tour read (get-tour)", &reads, 2.0);
    gate_row("booking, ResMan at 0 ms (book-tour)", &(direct, gated), booking_calls);
}

/// Tours a month at one property, for the analytics rows: the two sizes.
const TOURS_A_MONTH: [usize; 2] = [10_000, 100_000];

/// Writes `count` tours of `property` (copies of `template`) spread evenly over the 30 days from `first`, each
/// booked a day before it, through the booking transaction: their ids.
async fn seed_tours(
    store: &DynamoStore,
    property: &Property,
    template: &tour_core::domain::record::TourRecord,
    first: chrono::DateTime<Utc>,
    count: usize,
) -> Vec<BookingId> {
    use futures::StreamExt;
    use tour_core::ports::NewBooking;
    let step = Duration::days(30) / i32::try_from(count).unwrap();
    futures::stream::iter(0..count)
        .map(|i| {
            let mut tour = template.clone();
            tour.booking_id = BookingId::from_uuid(uuid::Uuid::new_v4());
            tour.property_id = property.id.clone();
            tour.idempotency_key = format!("seed-{}", tour.booking_id);
            tour.start = first + step * i32::try_from(i).unwrap();
            tour.end = tour.start + Duration::minutes(45);
            tour.created_at = tour.start - Duration::days(1);
            tour.in_resman_at = Some(tour.created_at + Duration::seconds(1 + (i % 40) as i64));
            // Every tenth completed, every twentieth a no-show, so the show rates have something to count.
            tour.status = match i % 20 {
                0 => tour_core::domain::lifecycle::TourStatus::NoShow,
                1 | 2 => tour_core::domain::lifecycle::TourStatus::Completed,
                _ => tour.status,
            };
            // A guide of its own, so the tours (one every few minutes) do not compete for slot locks.
            tour.holder =
                Holder::Agent(tour_core::domain::AgentId::parse(&format!("seed-{}", tour.booking_id)).unwrap());
            let booking = NewBooking {
                lock_granules: vec![tour.start],
                tour,
                fingerprint: "seed".into(),
                messages: Vec::new(),
                reminders: Vec::new(),
                hold: None,
                replaces: None,
                consent: None,
            };
            async move {
                store.create_booking(property, &booking, Utc::now()).await.unwrap();
                booking.tour.booking_id
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// The rollups brought up to date with `tours`, as `tour-rollups` does with its stream batches (100 records, a few
/// consumers at once): the seconds it took.
async fn roll_up_seeded(store: &DynamoStore, tours: &[BookingId]) -> f64 {
    use futures::StreamExt;
    use tour_core::app::rollups::{RollupDeps, roll_up};
    let deps = RollupDeps {
        rollups: store,
        properties: store,
    };
    let started = Instant::now();
    futures::stream::iter(tours.chunks(100))
        .for_each_concurrent(4, |batch| {
            let deps = &deps;
            async move {
                roll_up(deps, batch, &[]).await.unwrap();
            }
        })
        .await;
    started.elapsed().as_secs_f64()
}

/// Read units a dashboard load consumes: the summary's three reads (the property, the period's counters with its
/// flagged tours, the next day's first 200 scheduled tours, both eventually consistent, as the store reads them)
/// made again, raw, asking DynamoDB Local for their consumed capacity.
async fn read_units(stack: &Stack, from: NaiveDate, to: NaiveDate, now: chrono::DateTime<Utc>) -> f64 {
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
    let client = stack.store.client();
    let table = stack.store.table();
    let s = |v: String| AttributeValue::S(v);
    let property = client
        .get_item()
        .table_name(table)
        .key("pk", s("PROPERTY".into()))
        .key("sk", s(stack.property.id.to_string()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let mut units = property
        .consumed_capacity()
        .and_then(|c| c.capacity_units())
        .unwrap_or(0.5);
    for (pk, from, to) in [
        (
            format!("ROLLUP#{}", stack.property.id),
            format!("{from}#"),
            format!("{to}#~"),
        ),
        (
            format!("UNCONF#{}", stack.property.id),
            now.format("%Y-%m-%dT%H:%M:%S%.3fZ#~").to_string(),
            (now + Duration::hours(24))
                .format("%Y-%m-%dT%H:%M:%S%.3fZ#~")
                .to_string(),
        ),
    ] {
        let mut start = None;
        loop {
            let page = client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :p AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":p", s(pk.clone()))
                .expression_attribute_values(":from", s(from.clone()))
                .expression_attribute_values(":to", s(to.clone()))
                .consistent_read(false)
                .limit(if pk.starts_with("UNCONF#") { 200 } else { 10_000 })
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            units += page.consumed_capacity().and_then(|c| c.capacity_units()).unwrap_or(0.0);
            start = page.last_evaluated_key;
            if start.is_none() || pk.starts_with("UNCONF#") {
                break;
            }
        }
    }
    units
}

/// The analytics' cost at 10,000 and 100,000 tours a month at one property: the tours seeded through the booking
/// transaction and rolled up as the stream's consumer does, then a 30-day `metrics`, `trends` and `summary` (the
/// dashboard's one call) read from the rollups; then again after as many tours of another property in the same
/// month and of the same property the month before were added. The requests stay 3 and the read units stay flat:
/// the reads follow the property's days, never its tours or the table.
async fn analytics_rows(tours_a_month: usize) {
    use tour_core::app::analytics::{AnalyticsDeps, AnalyticsQuery, tour_metrics, tour_summary, tour_trends};
    {
        let stack = Stack::fresh().await;
        let other = stack
            .store
            .property(&tour_core::domain::ResManPropertyId::parse("5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f02").unwrap())
            .await
            .unwrap()
            .expect("the second demo property");
        let (date, time) = slots(&stack.property, 1).remove(0);
        assert_eq!(stack.book(0, date, &time).await.unwrap(), Outcome::Booked);
        let template = stack
            .store
            .conversation_tours(&tour_core::domain::ConversationId::parse("bench-0").unwrap())
            .await
            .unwrap()
            .remove(0);
        // A period of 30 local dates, a year out (nothing else of the bench is there).
        let from = Utc::now().with_timezone(&stack.property.time_zone).date_naive() + Duration::days(365);
        let to = from + Duration::days(29);
        let first = tour_core::domain::slots::day_window(stack.property.time_zone, from).start();
        let started = Instant::now();
        let seeded = seed_tours(&stack.store, &stack.property, &template, first, tours_a_month).await;
        let seeding = started.elapsed().as_secs_f64();
        let rolling = roll_up_seeded(&stack.store, &seeded).await;
        println!(
            "\nanalytics at {tours_a_month} tours a month (seeded in {seeding:.0} s; rolled up in {rolling:.0} s, \
             {:.0} tours a second):\n",
            tours_a_month as f64 / rolling
        );
        println!(
            "| request (30 days) | tours in the table | p50 | p99 | DynamoDB requests | read units | bookings counted |"
        );
        println!("|---|---|---|---|---|---|---|");
        let deps = AnalyticsDeps {
            properties: &stack.store,
            rollups: &stack.store,
        };
        let query = AnalyticsQuery::parse(Some(DEMO_PROPERTY), Some(&from.to_string()), Some(&to.to_string())).unwrap();
        let now = first + Duration::days(10);
        let units = read_units(&stack, from, to, now).await;
        let measure = |label: &'static str, in_table: usize| {
            let (deps, query, dynamodb) = (&deps, &query, &stack.dynamodb);
            async move {
                for what in ["metrics", "trends", "summary"] {
                    let mut timings = Timings::new();
                    let before = dynamodb.count();
                    let mut read = 0;
                    const ROUNDS: usize = 50;
                    for _ in 0..ROUNDS {
                        let started = Instant::now();
                        read = match what {
                            "metrics" => tour_metrics(deps, query, now).await.unwrap().total_bookings,
                            "trends" => tour_trends(deps, query, now)
                                .await
                                .unwrap()
                                .daily_bookings
                                .iter()
                                .map(|d| d.count)
                                .sum::<u64>(),
                            _ => tour_summary(deps, query, now).await.unwrap().metrics.total_bookings,
                        };
                        timings.add(started);
                    }
                    let requests = (dynamodb.count() - before) as f64 / ROUNDS as f64;
                    println!(
                        "| {what}, {label} | {in_table} | {:.2} ms | {:.2} ms | {requests:.0} | {} | {read} |",
                        timings.percentile(0.5),
                        timings.percentile(0.99),
                        if what == "trends" {
                            "-".to_owned()
                        } else {
                            format!("{units:.1}")
                        },
                    );
                }
            }
        };
        measure("the property's month alone", tours_a_month + 1).await;
        if tours_a_month > TOURS_A_MONTH[0] {
            // The larger size shows the reads stay flat as the property grows; the table's growth beside it is
            // shown at the smaller size (seeding twice 100,000 more would take the bench an hour).
            return;
        }
        let more = [
            seed_tours(&stack.store, &other, &template, first, tours_a_month).await,
            seed_tours(
                &stack.store,
                &stack.property,
                &template,
                first - Duration::days(30),
                tours_a_month,
            )
            .await,
        ]
        .concat();
        roll_up_seeded(&stack.store, &more).await;
        measure("beside twice as many more", 3 * tours_a_month + 1).await;
    }
}

async fn latency(stack: &Stack) {
    let window = {
        let (date, time) = slots(&stack.property, 1).remove(0);
        tour_core::domain::booking::requested_slot(&stack.property, &command(0, date, &time), Utc::now()).unwrap()
    };
    let agent = stack.property.agents_for(TourType::InPerson).next().unwrap().id.clone();
    // A booking's transaction: tour, locks, busy time, the date's generation, idempotency record, outbox item.
    let transaction_items = lock_granules(&stack.property, &Holder::Agent(agent), &window).len() + 5;
    let (get, transact) = floors(stack, transaction_items).await;

    println!("| operation | p50 | p99 | DynamoDB requests per run | ResMan calls per run | p50 over its floor |");
    println!("|---|---|---|---|---|---|");
    row("floor: bare GetItem", &get, 1.0, None, None);
    row(
        &format!("floor: bare TransactWriteItems, {transaction_items} puts"),
        &transact,
        1.0,
        None,
        None,
    );
    availability_rows(stack, get.percentile(0.5)).await;
    for latency in [0, 200] {
        booking_row(latency, transact.percentile(0.5)).await;
    }
    change_rows(transact.percentile(0.5)).await;
    concurrent_bookings().await;
    pure_row(&stack.property);
}
