//! Booking against real components: DynamoDB Local and moto (provisioned from template.yaml) and the ResMan
//! sandbox.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::resman::HttpResMan;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::AppError;
use shared::app::booking::{Booked, BookingDeps, book_tour};
use shared::app::sync::{Attempts, QueuedMessage, WorkerDeps, process_batch};
use shared::domain::TourType;
use shared::domain::booking::{BookTourCommand, BookTourRequest, BookingId, SyncStatus};
use shared::domain::property::Property;
use shared::domain::slots::free_slots;
use shared::ports::{CalendarStore, PropertyStore, TourStore};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

struct Stack {
    _aws: LocalAws,
    sandbox: RunningSandbox,
    store: DynamoStore,
    resman: HttpResMan,
    queue: SqsSyncQueue,
    sqs: aws_sdk_sqs::Client,
    dlq_url: String,
    property: Property,
}

impl Stack {
    async fn start() -> Arc<Stack> {
        let aws = LocalAws::start(&[], &[]);
        let sdk = aws.sdk().await;
        let store = aws.store().await;
        load_demo_properties(&store).await;
        let sandbox = sandbox().await;
        let resman = resman_for(&sandbox, StdDuration::from_secs(2));
        let queue = SqsSyncQueue::new(&sdk, aws.var("SYNC_QUEUE_URL"));
        let property = store
            .property(&shared::domain::ResManPropertyId::parse(DEMO_PROPERTY).unwrap())
            .await
            .unwrap()
            .unwrap();
        Arc::new(Stack {
            dlq_url: aws.var("SYNC_DLQ_URL").to_owned(),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            _aws: aws,
            sandbox,
            store,
            resman,
            queue,
            property,
        })
    }

    fn deps(&self) -> BookingDeps<'_> {
        booking_deps(&self.store, &self.resman, &self.queue, StdDuration::from_millis(20))
    }

    fn worker(&self) -> WorkerDeps<'_> {
        WorkerDeps {
            properties: &self.store,
            tours: &self.store,
            resman: &self.resman,
            callbacks: None,
            clock: &Utc::now,
            attempts: Attempts {
                count: 1,
                backoff: StdDuration::ZERO,
            },
            max_receives: 5,
        }
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.sandbox.base_url()));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    async fn appointments(&self) -> Vec<Value> {
        self.control(reqwest::Method::GET, "/_sandbox/appointments", None)
            .await
            .as_array()
            .cloned()
            .unwrap()
    }

    async fn posts(&self) -> usize {
        let log = self.control(reqwest::Method::GET, "/_sandbox/requests", None).await;
        log.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "PostLeadManagement4_0")
            .count()
    }

    async fn faults(&self, faults: Value) {
        self.control(reqwest::Method::POST, "/_sandbox/faults", Some(faults))
            .await;
    }

    async fn book(&self, command: &BookTourCommand, key: Option<&str>) -> Result<Booked, AppError> {
        book_tour(
            &self.deps(),
            command,
            key,
            BookingId::from_uuid(uuid::Uuid::new_v4()),
            Utc::now(),
        )
        .await
    }

    /// Receives a batch as the event source mapping does and runs the worker on it: deletes what succeeded,
    /// and makes failures visible again at once (the real delay is tested in the unit tests).
    async fn deliver_once(&self) -> usize {
        let out = self
            .sqs
            .receive_message()
            .queue_url(self.queue.queue_url())
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let received = out.messages.unwrap_or_default();
        let messages: Vec<QueuedMessage> = received
            .iter()
            .map(|m| QueuedMessage {
                id: m.message_id.clone().unwrap(),
                body: m.body.clone().unwrap_or_default(),
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            })
            .collect();
        let failed = process_batch(&self.worker(), &messages, StdDuration::from_secs(30)).await;
        for m in &received {
            let id = m.message_id.as_deref().unwrap();
            let handle = m.receipt_handle.as_deref().unwrap();
            if failed.iter().any(|f| f.id == id) {
                self.sqs
                    .change_message_visibility()
                    .queue_url(self.queue.queue_url())
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                self.sqs
                    .delete_message()
                    .queue_url(self.queue.queue_url())
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap();
            }
        }
        received.len()
    }

    async fn dead_letters(&self) -> Vec<String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        out.messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.body)
            .collect()
    }
}

/// The first date with a 10:00 in-person slot at least a day ahead (skips Sundays and holidays).
fn bookable_date(property: &Property) -> NaiveDate {
    let today = Utc::now().with_timezone(&property.time_zone).date_naive();
    (1..20)
        .map(|d| today + Duration::days(d))
        .find(|d| {
            free_slots(property, TourType::InPerson, *d, &[], Utc::now())
                .is_ok_and(|s| s.iter().any(|s| s.start.format("%H:%M").to_string() == "10:00"))
        })
        .expect("a bookable date")
}

fn command(property: &Property, n: usize, time: &str) -> BookTourCommand {
    let body = json!({
        "conversation_id": format!("conv-{n}"),
        "tour_data": {
            "prospect_name": format!("Prospect Number{n}"),
            "prospect_email": format!("prospect{n}@example.com"),
            "prospect_phone": format!("+1512555{:04}", n),
            "tour_type": "in_person",
            "preferred_date": bookable_date(property).to_string(),
            "preferred_time": time,
            "property_id": DEMO_PROPERTY,
            "unit_preferences": "2 bedrooms",
            "special_requests": "ground floor"
        }
    });
    BookTourCommand::parse(&BookTourRequest::from_body(body.to_string().as_bytes()).unwrap()).unwrap()
}

fn response(booked: &Booked) -> Value {
    serde_json::from_str(&booked.body).unwrap()
}

type Interval = (DateTime<Utc>, DateTime<Utc>);

fn assert_no_overlap(appointments: &[Value]) {
    let mut by_agent: HashMap<String, Vec<Interval>> = HashMap::new();
    for a in appointments.iter().filter(|a| a["status"] != "Cancelled") {
        let start: DateTime<Utc> = a["scheduled_at"].as_str().unwrap().parse().unwrap();
        let end = start + Duration::minutes(a["duration_minutes"].as_i64().unwrap());
        by_agent
            .entry(a["agent_id"].as_str().unwrap_or("none").to_owned())
            .or_default()
            .push((start, end));
    }
    for (agent, mut tours) in by_agent {
        tours.sort();
        for pair in tours.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "agent {agent} is double-booked: {pair:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_bookings_of_one_slot_give_it_to_exactly_as_many_as_there_are_agents() {
    let stack = Stack::start().await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let stack = stack.clone();
        tasks.spawn(async move { stack.book(&command(&stack.property, n, "10:00"), None).await });
    }
    let (mut booked, mut taken) = (Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(b) => booked.push(b),
            Err(AppError::SlotTaken { alternatives, .. }) => {
                assert!(!alternatives.is_empty() && alternatives.len() <= 3);
                assert!(
                    alternatives.iter().all(|a| !a.time.contains("T10:00:00")),
                    "10:00 is not an alternative to itself"
                );
                let times: Vec<&str> = alternatives.iter().map(|a| a.time.as_str()).collect();
                assert!(
                    times.windows(2).all(|w| w[0] < w[1]),
                    "alternatives in time order: {times:?}"
                );
                assert!(
                    times.iter().any(|t| t.contains("T09:") || t.contains("T11:")),
                    "the nearest times are offered: {times:?}"
                );
                taken += 1;
            }
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    let agents = stack.property.agents_for(TourType::InPerson).count();
    assert_eq!(booked.len(), agents, "one booking per free agent");
    assert_eq!(taken, 200 - agents);
    assert!(
        booked
            .iter()
            .all(|b| b.status == 201 && response(b)["sync_status"] == "synced")
    );
    let mut staff: Vec<String> = booked
        .iter()
        .map(|b| response(b)["staff_member_id"].as_str().unwrap().to_owned())
        .collect();
    staff.sort();
    staff.dedup();
    assert_eq!(staff.len(), agents, "each agent got exactly one of them");
    let appointments = stack.appointments().await;
    assert_eq!(appointments.len(), agents);
    assert_no_overlap(&appointments);
    // Our slot locks decided it: only the winners ever reached ResMan (ResMan's own overlap refusal, a second line
    // of defence, was never needed).
    assert_eq!(
        stack.posts().await,
        agents,
        "only the bookings that held the slot posted to ResMan"
    );
}

#[tokio::test]
async fn a_retried_request_with_the_same_key_returns_the_same_tour_and_resman_got_one_post() {
    let stack = Stack::start().await;
    let c = command(&stack.property, 1, "11:00");
    let first = stack.book(&c, Some("retry-key-1")).await.unwrap();
    let again = stack.book(&c, Some("retry-key-1")).await.unwrap();
    assert_eq!((first.status, &first.body), (again.status, &again.body));
    assert_eq!(stack.posts().await, 1);
    // Without a key, the conversation and the slot are the key.
    let c2 = command(&stack.property, 2, "13:00");
    let a = stack.book(&c2, None).await.unwrap();
    let b = stack.book(&c2, None).await.unwrap();
    assert_eq!(response(&a)["appointment_id"], response(&b)["appointment_id"]);
    assert_eq!(stack.posts().await, 2);
    // The same key with a different body is refused.
    let other = command(&stack.property, 3, "14:00");
    assert!(matches!(
        stack.book(&other, Some("retry-key-1")).await,
        Err(AppError::KeyReused)
    ));
}

#[tokio::test]
async fn a_post_applied_but_answered_503_still_leaves_one_appointment() {
    let stack = Stack::start().await;
    stack
        .faults(json!({"applied_then_503_rate": 1.0, "methods": ["PostLeadManagement4_0"], "remaining": 1}))
        .await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    assert_eq!(booked.status, 201);
    let body = response(&booked);
    assert_eq!(body["sync_status"], "synced");
    let appointments = stack.appointments().await;
    assert_eq!(
        appointments.len(),
        1,
        "the retry found the first write instead of posting again"
    );
    assert_eq!(appointments[0]["appointment_id"], body["resman_appointment_id"]);
    assert_eq!(stack.posts().await, 1);
}

#[tokio::test]
async fn with_resman_down_the_booking_is_pending_and_reaches_resman_once_it_recovers() {
    let stack = Stack::start().await;
    stack
        .faults(json!({"http_error_rate": 1.0, "http_error_statuses": [503]}))
        .await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    assert_eq!(booked.status, 202);
    let body = response(&booked);
    assert_eq!(
        (body["status"].as_str(), body["sync_status"].as_str()),
        (Some("scheduled"), Some("pending"))
    );
    assert!(body["resman_appointment_id"].is_null());
    // The slot stays held meanwhile: the same time for every agent cannot be booked a fourth time.
    for n in 2..4 {
        assert_eq!(
            stack
                .book(&command(&stack.property, n, "10:00"), None)
                .await
                .unwrap()
                .status,
            202
        );
    }
    assert!(matches!(
        stack.book(&command(&stack.property, 9, "10:00"), None).await,
        Err(AppError::SlotTaken { .. })
    ));
    assert!(stack.appointments().await.is_empty());

    stack.control(reqwest::Method::DELETE, "/_sandbox/faults", None).await;
    assert_eq!(stack.deliver_once().await, 3);
    let appointments = stack.appointments().await;
    assert_eq!(appointments.len(), 3);
    assert_no_overlap(&appointments);
    let id = BookingId::parse(body["appointment_id"].as_str().unwrap()).unwrap();
    let tour = stack.store.tour(&id).await.unwrap().unwrap();
    assert_eq!(tour.sync_status, SyncStatus::Synced);
    // Delivered again (as SQS may), nothing more is posted.
    stack.queue_again(&id).await;
    stack.deliver_once().await;
    assert_eq!(stack.appointments().await.len(), 3);
}

#[tokio::test]
async fn a_booking_resman_refuses_frees_its_slot() {
    let stack = Stack::start().await;
    stack
        .faults(json!({"status_error_rate": 1.0, "status_error_message": "Prospect blocked by policy", "methods": ["PostLeadManagement4_0"]}))
        .await;
    let c = command(&stack.property, 1, "10:00");
    let refused = stack.book(&c, None).await;
    assert!(
        matches!(&refused, Err(AppError::ResMan(e)) if e.to_string().contains("blocked by policy")),
        "{refused:?}"
    );
    let day = shared::domain::UtcWindow::starting_at(Utc::now(), Duration::days(20)).unwrap();
    assert!(
        stack.store.busy_in(&stack.property.id, day).await.unwrap().is_empty(),
        "no busy time remains"
    );
    // A retry gets the same answer, replayed, without touching ResMan again.
    let posts = stack.posts().await;
    let again = stack.book(&c, None).await.unwrap();
    assert_eq!(again.status, 422);
    assert!(again.body.contains("blocked by policy"));
    assert_eq!(stack.posts().await, posts);
    // Every agent's 10:00 is free again.
    stack.control(reqwest::Method::DELETE, "/_sandbox/faults", None).await;
    for n in 2..5 {
        assert_eq!(
            stack
                .book(&command(&stack.property, n, "10:00"), None)
                .await
                .unwrap()
                .status,
            201
        );
    }
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dead_letter_queue_without_blocking_its_batch() {
    let stack = Stack::start().await;
    let booked = stack.book_while_resman_is_down(1, "10:00").await;
    stack.control(reqwest::Method::DELETE, "/_sandbox/faults", None).await;
    stack
        .sqs
        .send_message()
        .queue_url(stack.queue.queue_url())
        .message_body("{not a sync message")
        .send()
        .await
        .unwrap();

    stack.deliver_until_a_dead_letter().await;
    assert_eq!(stack.dead_letters().await, vec!["{not a sync message".to_owned()]);
    let id = BookingId::parse(response(&booked)["appointment_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        stack.store.tour(&id).await.unwrap().unwrap().sync_status,
        SyncStatus::Synced,
        "the good message went through"
    );
    assert_eq!(stack.appointments().await.len(), 1);
}

#[tokio::test]
async fn a_booking_resman_never_takes_is_marked_failed_for_staff_and_dead_lettered() {
    let stack = Stack::start().await;
    let booked = stack.book_while_resman_is_down(1, "10:00").await;
    let id = BookingId::parse(response(&booked)["appointment_id"].as_str().unwrap()).unwrap();
    stack.deliver_until_a_dead_letter().await;
    assert_eq!(stack.dead_letters().await.len(), 1);
    let tour = stack.store.tour(&id).await.unwrap().unwrap();
    assert_eq!(tour.sync_status, SyncStatus::Failed);
    assert!(tour.last_error.is_some());
}

impl Stack {
    async fn queue_again(&self, id: &BookingId) {
        use shared::ports::SyncQueue;
        self.queue.enqueue(id).await.unwrap();
    }

    /// Books while every ResMan call fails: the answer must be 202, pending. ResMan stays down until the test says.
    async fn book_while_resman_is_down(&self, n: usize, time: &str) -> Booked {
        self.faults(json!({"http_error_rate": 1.0})).await;
        let booked = self.book(&command(&self.property, n, time), None).await.unwrap();
        assert_eq!(booked.status, 202, "accepted as pending while ResMan is down");
        booked
    }

    /// Delivers as the event source mapping does until something reaches the dead-letter queue (at most ten
    /// rounds: the queue's maxReceiveCount is five).
    async fn deliver_until_a_dead_letter(&self) {
        for _ in 0..10 {
            if self.dead_letters_peek().await > 0 {
                return;
            }
            self.deliver_once().await;
        }
    }

    async fn dead_letters_peek(&self) -> usize {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.dlq_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        out.attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    .cloned()
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn a_booking_whose_queue_message_was_lost_is_requeued_from_the_outbox_once() {
    use shared::app::sync::requeue_owed_syncs;
    let stack = Stack::start().await;
    stack.book_while_resman_is_down(1, "10:00").await;
    stack.control(reqwest::Method::DELETE, "/_sandbox/faults", None).await;
    // The message is lost (as if the send had failed after the booking was stored).
    stack
        .sqs
        .purge_queue()
        .queue_url(stack.queue.queue_url())
        .send()
        .await
        .unwrap();
    assert_eq!(stack.deliver_once().await, 0);

    assert_eq!(
        requeue_owed_syncs(&stack.store, &stack.queue, Utc::now())
            .await
            .unwrap(),
        0,
        "still travelling: not yet owed"
    );
    let later = Utc::now() + Duration::hours(2);
    assert_eq!(requeue_owed_syncs(&stack.store, &stack.queue, later).await.unwrap(), 1);
    assert_eq!(
        requeue_owed_syncs(&stack.store, &stack.queue, later).await.unwrap(),
        0,
        "claimed once per period"
    );
    assert_eq!(stack.deliver_once().await, 1);
    assert_eq!(stack.appointments().await.len(), 1);
    let much_later = later + Duration::hours(2);
    assert_eq!(
        requeue_owed_syncs(&stack.store, &stack.queue, much_later)
            .await
            .unwrap(),
        0,
        "a synced booking owes nothing"
    );
}

#[tokio::test]
async fn a_request_whose_first_call_died_after_holding_the_slot_is_answered_from_the_booking() {
    use shared::domain::booking::{TourRecord, TourStatus, lock_granules, requested_slot};
    use shared::ports::{BookingWrite, NewBooking};
    let stack = Stack::start().await;
    let c = command(&stack.property, 1, "10:00");
    let key = c.idempotency_key(Some("crash-key")).unwrap();
    // The first call held the slot, then died before ResMan was asked or the answer saved.
    let window = requested_slot(&stack.property, &c, Utc::now()).unwrap();
    let holder = shared::domain::booking::Holder::Agent(shared::domain::AgentId::parse(DEMO_AGENTS[0]).unwrap());
    let tour = TourRecord {
        booking_id: BookingId::from_uuid(uuid::Uuid::new_v4()),
        conversation_id: c.conversation_id.clone(),
        property_id: stack.property.id.clone(),
        tour_type: TourType::InPerson,
        holder: holder.clone(),
        start: window.start(),
        end: window.end(),
        status: TourStatus::Scheduled,
        sync_status: SyncStatus::Pending,
        resman_appointment_id: None,
        resman_prospect_id: None,
        prospect_name: "Prospect Number1".into(),
        prospect_email: "prospect1@example.com".into(),
        prospect_phone: "+15125550001".into(),
        unit_preferences: None,
        special_requests: None,
        idempotency_key: key,
        created_at: Utc::now(),
        last_error: None,
        version: 1,
        history: Vec::new(),
        resman_version: 0,
        resman_synced_at: None,
        callback_version: 1,
        staff_notes: None,
        outcome: None,
        resman_word: None,
    };
    let booking = NewBooking {
        lock_granules: lock_granules(&stack.property, &holder, &window),
        tour: tour.clone(),
        fingerprint: c.fingerprint(),
    };
    assert_eq!(
        stack
            .store
            .create_booking(&stack.property, &booking, Utc::now())
            .await
            .unwrap(),
        BookingWrite::Created
    );

    let soon = book_tour(
        &stack.deps(),
        &c,
        Some("crash-key"),
        BookingId::from_uuid(uuid::Uuid::new_v4()),
        Utc::now(),
    )
    .await;
    assert!(
        matches!(soon, Err(AppError::InProgress)),
        "within the call's lifetime it may still be running"
    );
    let later = Utc::now() + Duration::minutes(2);
    let recovered = book_tour(
        &stack.deps(),
        &c,
        Some("crash-key"),
        BookingId::from_uuid(uuid::Uuid::new_v4()),
        later,
    )
    .await
    .unwrap();
    assert_eq!(recovered.status, 202);
    assert_eq!(response(&recovered)["appointment_id"], tour.booking_id.as_str());
    assert_eq!(response(&recovered)["sync_status"], "pending");
}

#[tokio::test]
async fn a_booked_tour_reads_back_by_our_id_and_by_resmans_with_its_history() {
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let answer = booked.response.unwrap();
    let ours = shared::app::booking::tour_view(&stack.store, &stack.store, &answer.appointment_id)
        .await
        .unwrap();
    let resman_id = answer.resman_appointment_id.clone().expect("synced");
    let theirs = shared::app::booking::tour_view(&stack.store, &stack.store, &resman_id)
        .await
        .unwrap();
    assert_eq!(ours, theirs, "ResMan's id leads to the same tour");
    assert_eq!(ours.tour, answer);
    assert_eq!((ours.version, ours.history.len()), (1, 1));
    assert_eq!(ours.history[0].datetime, answer.confirmed_datetime);
}
