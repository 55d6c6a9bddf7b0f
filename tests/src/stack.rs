//! A whole local stack in one test process, wired as the functions wire it: DynamoDB Local and moto (provisioned
//! from template.yaml), the ResMan sandbox, the retry queue delivered to the worker's use case as the event source
//! mapping would, and (on demand) the sandbox's webhook delivered to the webhook's use case as its function URL would.

use crate::*;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tour_aws::dynamo::DynamoStore;
use tour_aws::resman::HttpResMan;
use tour_aws::sqs::SqsSyncQueue;
use tour_core::app::AppError;
use tour_core::app::booking::{Booked, BookingDeps, book_tour};
use tour_core::app::sync::{Attempts, WorkerDeps, process_batch};
use tour_core::domain::TourType;
use tour_core::domain::property::Property;
use tour_core::domain::slots::free_slots;
use tour_core::domain::{
    booking::{BookTourCommand, BookTourRequest},
    ids::BookingId,
    record::TourRecord,
};
use tour_core::ports::Outcome;
use tour_core::ports::QueuedMessage;
use tour_core::ports::{PropertyStore, TourReads};

/// The webhook's HMAC secret the stack's sandbox signs with and its webhook receiver checks.
pub const WEBHOOK_SECRET: &str = "lifecycle-webhook-secret-0123456789";
/// The callbacks' HMAC secret.
pub const CALLBACK_SECRET: &str = "lifecycle-callback-secret-0123456789";
/// The key that signs the prospects' self-service links, and where they point.
pub const LINK_SECRET: &str = "stack-link-secret-0123456789abcdef";
pub const SELF_SERVICE_URL: &str = "https://tours.test/tour";

/// The links the stack's sender writes into emails.
pub fn links() -> tour_core::domain::link::Links {
    tour_core::domain::link::Links::new(
        SELF_SERVICE_URL,
        tour_core::domain::link::LinkKey::new(LINK_SECRET.as_bytes().to_vec()).unwrap(),
    )
    .unwrap()
}

pub struct Stack {
    pub aws: LocalAws,
    pub sandbox: RunningSandbox,
    pub store: DynamoStore,
    pub resman: HttpResMan,
    pub queue: SqsSyncQueue,
    pub sqs: aws_sdk_sqs::Client,
    pub dlq_url: String,
    pub property: Property,
    /// The chatbot's callbacks, when the test configured them.
    pub callbacks: Option<tour_aws::callback::HttpCallbacks>,
    /// The texts `deliver_notifications` sent (the SMS adapter itself is held to the service's stand-in in
    /// `tests/texts.rs`).
    pub texts: tour_core::app::fakes::MemoryTexts,
    /// One HTTP client for the sandbox's controls (building one loads the machine's root certificates).
    http: reqwest::Client,
    /// The in-process function URL that runs `tour-webhook`'s use case, while the sandbox's webhook is on.
    webhook: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Stack {
    pub async fn start() -> Arc<Stack> {
        Self::start_with_callbacks(None).await
    }

    /// With the chatbot's callbacks posted to `callback_url`, signed with [`CALLBACK_SECRET`].
    pub async fn start_with_callbacks(callback_url: Option<&str>) -> Arc<Stack> {
        // Started off the async task (it waits on processes), so stacks started together come up side by side.
        let aws = tokio::task::spawn_blocking(|| LocalAws::start(&[], &[])).await.unwrap();
        let sdk = aws.sdk().await;
        let store = aws.store().await;
        load_demo_properties(&store).await;
        let sandbox = sandbox().await;
        let resman = resman_for(&sandbox, StdDuration::from_secs(2));
        let queue = aws.queue().await;
        let property = store
            .property(&tour_core::domain::ResManPropertyId::parse(DEMO_PROPERTY).unwrap())
            .await
            .unwrap()
            .unwrap();
        Arc::new(Stack {
            dlq_url: aws.var("SYNC_DLQ_URL").to_owned(),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            aws,
            callbacks: callback_url.map(|url| {
                tour_aws::callback::HttpCallbacks::new(
                    url,
                    tour_aws::secrets::RotatingSecret::fixed(vec![CALLBACK_SECRET.as_bytes().to_vec()]),
                    StdDuration::from_secs(2),
                    tour_aws::outbound::Outbound::local_stack(),
                )
                .unwrap()
            }),
            webhook: std::sync::Mutex::new(None),
            texts: tour_core::app::fakes::MemoryTexts::default(),
            http: reqwest::Client::new(),
            sandbox,
            store,
            resman,
            queue,
            property,
        })
    }

    /// The reminder scheduler over the stack's table and queue, as `tour-reminder-scheduler` wires it.
    pub fn scheduler(&self) -> tour_core::app::notify::SchedulerDeps<'_> {
        tour_core::app::notify::SchedulerDeps {
            tours: &self.store,
            reminders: &self.store,
            queue: &self.queue,
            properties: &self.store,
            consents: &self.store,
        }
    }

    /// Turns texting on at the demo property (`texts: true`), as its configuration file would.
    pub async fn texting(&self) {
        texting(&self.store, &self.property).await;
    }

    pub fn deps(&self) -> BookingDeps<'_> {
        booking_deps(&self.store, &self.resman, &self.queue, StdDuration::from_millis(20))
    }

    pub fn worker(&self) -> WorkerDeps<'_> {
        WorkerDeps {
            properties: &self.store,
            tours: &self.store,
            resman: &self.resman,
            callbacks: self
                .callbacks
                .as_ref()
                .map(|c| c as &dyn tour_core::ports::ChatbotCallbacks),
            queue: &self.queue,
            clock: &Utc::now,
            attempts: Attempts {
                count: 1,
                backoff: StdDuration::ZERO,
            },
            max_receives: 5,
        }
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.sandbox.base_url()));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    pub async fn appointments(&self) -> Vec<Value> {
        self.control(reqwest::Method::GET, "/_sandbox/appointments", None)
            .await
            .as_array()
            .cloned()
            .unwrap()
    }

    pub async fn posts(&self) -> usize {
        let log = self.control(reqwest::Method::GET, "/_sandbox/requests", None).await;
        log.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "PostLeadManagement4_0")
            .count()
    }

    pub async fn faults(&self, faults: Value) {
        self.control(reqwest::Method::POST, "/_sandbox/faults", Some(faults))
            .await;
    }

    pub async fn book(&self, command: &BookTourCommand, key: Option<&str>) -> Result<Booked, AppError> {
        self.book_at(command, key, Utc::now()).await
    }

    /// A booking made at `now` (the chatbot's request at that moment).
    pub async fn book_at(
        &self,
        command: &BookTourCommand,
        key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Booked, AppError> {
        book_tour(
            &self.deps(),
            command,
            key,
            BookingId::from_uuid(uuid::Uuid::new_v4()),
            now,
        )
        .await
    }

    /// Receives a batch as the event source mapping does and runs the worker on it (see `settle_sync_batch`).
    pub async fn deliver_once(&self) -> usize {
        let messages = self.receive_sync_batch().await;
        let failed = process_batch(&self.worker(), &messages, StdDuration::from_secs(30), invocation(30)).await;
        self.settle_sync_batch(&messages, &failed).await;
        messages.len()
    }

    /// Receives up to ten sync queue messages, as the event source mapping does (ids are receipt handles).
    pub async fn receive_sync_batch(&self) -> Vec<QueuedMessage> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(self.queue.queue_url())
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let received = out.messages.unwrap_or_default();
        received
            .iter()
            .map(|m| QueuedMessage {
                id: m.receipt_handle.clone().unwrap(),
                body: m.body.clone().unwrap_or_default(),
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            })
            .collect()
    }

    /// Answers a batch as the event source mapping reads a partial batch response: deletes what succeeded, and
    /// makes failures visible again at once (the real delay is tested in the unit tests).
    pub async fn settle_sync_batch(&self, messages: &[QueuedMessage], failed: &[tour_core::ports::Failed]) {
        for m in messages {
            if failed.iter().any(|f| f.id == m.id) {
                self.sqs
                    .change_message_visibility()
                    .queue_url(self.queue.queue_url())
                    .receipt_handle(&m.id)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                self.sqs
                    .delete_message()
                    .queue_url(self.queue.queue_url())
                    .receipt_handle(&m.id)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    pub async fn dead_letters(&self) -> Vec<String> {
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
pub fn bookable_date(property: &Property) -> NaiveDate {
    let today = Utc::now().with_timezone(&property.time_zone).date_naive();
    (1..20)
        .map(|d| today + Duration::days(d))
        .find(|d| {
            free_slots(property, TourType::InPerson, *d, &[], Utc::now())
                .is_ok_and(|s| s.iter().any(|s| s.start.format("%H:%M").to_string() == "10:00"))
        })
        .expect("a bookable date")
}

pub fn command(property: &Property, n: usize, time: &str) -> BookTourCommand {
    let body = json!({
        "conversation_id": format!("conv-{n}"),
        "tour_data": {
            "prospect_name": format!("Prospect Number{n}"),
            "prospect_email": format!("prospect{n}@example.com"),
            "prospect_phone": format!("+1512555{:04}", n),
            "tour_type": "in_person",
            "preferred_date": bookable_date(property).to_string(),
            "preferred_time": time,
            "property_id": property.id.as_str(),
            "unit_preferences": "2 bedrooms",
            "special_requests": "ground floor"
        }
    });
    BookTourCommand::parse(&BookTourRequest::from_body(body.to_string().as_bytes()).unwrap()).unwrap()
}

pub fn response(booked: &Booked) -> Value {
    serde_json::from_str(&booked.body).unwrap()
}

pub type Interval = (DateTime<Utc>, DateTime<Utc>);

pub fn assert_no_overlap(appointments: &[Value]) {
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

impl Stack {
    /// The chatbot's `PUT /api/resman/tours/{id}`, as `update-tour` wires it: the answer's JSON.
    pub async fn update(&self, id: &str, body: Value, key: Option<&str>) -> Result<Value, AppError> {
        let updated = update_tour(&self.store, &self.queue, id, &body, key).await?;
        Ok(serde_json::from_str(&updated.body).unwrap())
    }

    /// A tour as `GET /api/resman/tours/{id}` shows it.
    pub async fn view(&self, id: &str) -> Value {
        let view = tour_core::app::booking::tour_view(&self.store, &self.store, &self.store, &self.store, id)
            .await
            .unwrap();
        serde_json::to_value(view).unwrap()
    }

    pub async fn tour(&self, id: &str) -> TourRecord {
        self.store
            .tour(&BookingId::parse(id).unwrap())
            .await
            .unwrap()
            .expect("the tour exists")
    }

    /// A leasing agent changes an appointment in ResMan's portal (the sandbox's staff action).
    pub async fn staff_change(&self, appointment_id: &str, change: Value) -> Value {
        self.control(
            reqwest::Method::POST,
            &format!("/_sandbox/appointments/{appointment_id}/staff-change"),
            Some(change),
        )
        .await
    }

    /// One tick of the change poller, as `resman-change-poller` wires it; every property must be read.
    pub async fn poll(&self) -> tour_core::app::changes::PollReport {
        let report = self.try_poll().await;
        assert!(report.failed.is_empty(), "{report:?}");
        report
    }

    /// One tick of the change poller, whatever ResMan answers.
    pub async fn try_poll(&self) -> tour_core::app::changes::PollReport {
        tour_core::app::changes::poll_changes(
            &feed(&self.store, &self.queue),
            &self.resman,
            &tour_core::app::changes::PollSettings::default(),
            Utc::now(),
            &invocation(60),
        )
        .await
        .unwrap()
    }

    /// A staff action that ResMan may refuse (an overlap): its HTTP status.
    pub async fn try_staff_change(&self, appointment_id: &str, change: Value) -> u16 {
        self.staff_change_answer(appointment_id, change).await.0
    }

    /// A staff action in ResMan's portal that ResMan may refuse: the sandbox's HTTP status and its answer.
    pub async fn staff_change_answer(&self, appointment_id: &str, change: Value) -> (u16, Value) {
        let answer = self
            .http
            .post(format!(
                "{}/_sandbox/appointments/{appointment_id}/staff-change",
                self.sandbox.base_url()
            ))
            .json(&change)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// Runs the worker until the queue is empty (failures come back at once; at most `rounds` receives).
    pub async fn drain(&self, rounds: usize) {
        for _ in 0..rounds {
            if self.deliver_once().await == 0 {
                return;
            }
        }
    }

    /// Switches the sandbox's webhook on: staff changes are posted, signed, to an in-process function URL that runs
    /// the webhook's use case against this stack's store.
    pub async fn webhook_on(self: &Arc<Self>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let stack = Arc::clone(self);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let stack = Arc::clone(&stack);
                async move {
                    let relays = relays_of(WEBHOOK_SECRET);
                    let deps = tour_core::app::webhook::WebhookDeps {
                        inbox: &stack.store,
                        feed: feed(&stack.store, &stack.queue),
                        relays: &relays,
                    };
                    let signature = headers.get("x-resman-signature").and_then(|v| v.to_str().ok());
                    match tour_core::app::webhook::receive_change_notice(&deps, signature, &body, Utc::now()).await {
                        Ok(_) => axum::http::StatusCode::OK,
                        Err(e) => {
                            eprintln!("webhook refused: {e}");
                            axum::http::StatusCode::BAD_REQUEST
                        }
                    }
                }
            }),
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        if let Some(old) = self.webhook.lock().unwrap().replace(server) {
            old.abort();
        }
        self.control(
            reqwest::Method::POST,
            "/_sandbox/webhook",
            Some(json!({ "url": url, "secret": WEBHOOK_SECRET })),
        )
        .await;
    }

    /// Switches the sandbox's webhook off: staff changes reach us only through the poller.
    pub async fn webhook_off(&self) {
        self.control(reqwest::Method::DELETE, "/_sandbox/webhook", None).await;
        if let Some(server) = self.webhook.lock().unwrap().take() {
            server.abort();
        }
    }

    /// Waits until every webhook the sandbox started sending has been answered.
    pub async fn webhooks_settled(&self) -> Vec<Value> {
        for _ in 0..100 {
            let deliveries = self.control(reqwest::Method::GET, "/_sandbox/webhooks", None).await;
            let list = deliveries.as_array().cloned().unwrap_or_default();
            if list.iter().all(|d| d["pending"] != true) {
                return list;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!("webhooks still pending after 5 s");
    }
}

impl Stack {
    /// Delivers one change notice to the webhook's use case as a relay would: `body` exactly as given, signed now
    /// with the stack's webhook secret.
    pub async fn notice(
        &self,
        body: &Value,
    ) -> Result<tour_core::app::webhook::NoticeOutcome, tour_core::app::AppError> {
        let raw = body.to_string().into_bytes();
        let signature = tour_core::domain::signature::sign(WEBHOOK_SECRET.as_bytes(), Utc::now().timestamp(), &raw);
        let relays = relays_of(WEBHOOK_SECRET);
        let deps = tour_core::app::webhook::WebhookDeps {
            inbox: &self.store,
            feed: feed(&self.store, &self.queue),
            relays: &relays,
        };
        tour_core::app::webhook::receive_change_notice(&deps, Some(&signature), &raw, Utc::now()).await
    }

    pub async fn queue_again(&self, id: &BookingId) {
        use tour_core::ports::SyncQueue;
        self.queue.enqueue(id).await.unwrap();
    }

    /// Books while every ResMan call fails: the answer must be 202, pending. ResMan stays down until the test says.
    pub async fn book_while_resman_is_down(&self, n: usize, time: &str) -> Booked {
        self.faults(json!({"http_error_rate": 1.0})).await;
        let booked = self.book(&command(&self.property, n, time), None).await.unwrap();
        assert_eq!(
            booked.outcome,
            Outcome::Pending,
            "accepted as pending while ResMan is down"
        );
        booked
    }

    /// Delivers as the event source mapping does until something reaches the dead-letter queue (at most ten
    /// rounds: the queue's maxReceiveCount is five).
    pub async fn deliver_until_a_dead_letter(&self) {
        for _ in 0..10 {
            if self.dead_letters_peek().await > 0 {
                return;
            }
            self.deliver_once().await;
        }
    }

    pub async fn dead_letters_peek(&self) -> usize {
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

/// Turns texting on at `property` (`texts: true`), as its file in `infra/properties/demo.json` would: the property as
/// now saved.
pub async fn texting(store: &DynamoStore, property: &Property) -> Property {
    let text = std::fs::read_to_string(crate::workspace_root().join("infra/properties/demo.json")).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let properties = file.as_array().cloned().unwrap_or_else(|| vec![file.clone()]);
    let mut json = properties
        .into_iter()
        .find(|p| p["property_id"] == property.id.as_str())
        .expect("the property is in infra/properties/demo.json");
    json["texts"] = true.into();
    let texting = Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
    store.save_property(&texting).await.unwrap();
    texting
}

/// What the sender needs beside its store, text service and queue, as `notification-sender` wires it: SES in the
/// stack's moto, the templates, the staff webhook's client and the links.
pub struct SenderParts {
    mailer: tour_aws::ses::SesMailer,
    templates: tour_core::domain::email::Templates,
    staff_webhook: tour_aws::staff_webhook::HttpStaffWebhook,
    links: tour_core::domain::link::Links,
}

impl SenderParts {
    pub async fn new(aws: &LocalAws) -> SenderParts {
        SenderParts {
            mailer: tour_aws::ses::SesMailer::new(
                &aws.sdk().await,
                aws.var("SENDER_EMAIL"),
                Some(aws.var("SES_CONFIGURATION_SET").to_owned()),
                StdDuration::from_secs(5),
            ),
            templates: tour_core::domain::email::Templates::defaults().unwrap(),
            staff_webhook: tour_aws::staff_webhook::HttpStaffWebhook::new(
                StdDuration::from_secs(2),
                tour_aws::outbound::Outbound::local_stack(),
            )
            .unwrap(),
            links: links(),
        }
    }

    /// The sender's use case over `store`, sending texts through `texts` and queueing on `queue`.
    pub fn deps<'a>(
        &'a self,
        store: &'a DynamoStore,
        texts: &'a dyn tour_core::ports::TextSender,
        queue: &'a SqsSyncQueue,
    ) -> tour_core::app::notify::SenderDeps<'a> {
        tour_core::app::notify::SenderDeps {
            properties: store,
            messages: store,
            mailer: &self.mailer,
            staff_webhook: &self.staff_webhook,
            texts,
            consents: store,
            queue,
            text_log: store,
            templates: &self.templates,
            links: &self.links,
            max_receives: 5,
            longest_send: StdDuration::from_secs(5),
        }
    }
}

impl Stack {
    /// Brings the figures' rollups up to date with every tour and refusal in the table, as the change stream's
    /// consumer (`tour-rollups`) does once their records arrive: how many tours moved a figure.
    pub async fn roll_up_all(&self) -> usize {
        use tour_core::app::rollups::{RollupDeps, roll_up};
        let (mut tours, mut refusals) = (Vec::new(), Vec::new());
        let mut start = None;
        loop {
            let page = self
                .store
                .client()
                .scan()
                .table_name(self.store.table())
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str);
                let (Some(pk), Some(sk)) = (text("pk"), text("sk")) else {
                    continue;
                };
                if sk == "TOUR" {
                    tours.extend(pk.strip_prefix("TOUR#").and_then(|id| BookingId::parse(id).ok()));
                }
                refusals.extend(tour_core::domain::rollup::RefusalRef::from_keys(pk, sk));
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let deps = RollupDeps {
            rollups: &self.store,
            properties: &self.store,
        };
        roll_up(&deps, &tours, &refusals).await.unwrap().changed
    }

    /// Delivers the notification queue to the sender's use case (with SES in moto) until it is empty, as the
    /// event source mapping would: how many messages were handled.
    pub async fn deliver_notifications(&self) -> usize {
        let parts = SenderParts::new(&self.aws).await;
        let deps = parts.deps(&self.store, &self.texts, &self.queue);
        let url = self.aws.var("NOTIFY_QUEUE_URL");
        let mut handled = 0;
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let received = out.messages.unwrap_or_default();
            if received.is_empty() {
                return handled;
            }
            for m in received {
                let outcome = tour_core::app::notify::send_queued_message(
                    &deps,
                    m.body.as_deref().unwrap_or_default(),
                    1,
                    Utc::now(),
                    StdDuration::from_secs(28),
                )
                .await
                .unwrap();
                assert_eq!(outcome, tour_core::app::sync::WorkerOutcome::Done, "{:?}", m.body);
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
                handled += 1;
            }
        }
    }

    /// The self-service page's use cases over the stack's table and queues, as `tour-self-service` wires them.
    pub fn self_service<'a>(
        &'a self,
        key: &'a tour_core::domain::link::LinkKey,
    ) -> tour_core::app::self_service::SelfServiceDeps<'a> {
        tour_core::app::self_service::SelfServiceDeps {
            update: tour_core::app::lifecycle::UpdateDeps {
                properties: &self.store,
                calendar: &self.store,
                tours: &self.store,
                queue: &self.queue,
            },
            ratings: &self.store,
            staff_ratings: &self.store,
            messages: &self.store,
            key,
        }
    }

    /// Every email moto's SES took, as raw MIME, oldest first (`/moto-api/data.json`, key `ses`).
    pub async fn sent_emails(&self) -> Vec<Vec<u8>> {
        let data: Value = self
            .http
            .get(format!("{}/moto-api/data.json", self.aws.endpoint))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut raw = Vec::new();
        collect_raw(&data["ses"], &mut raw);
        raw
    }
}

/// Every `raw_data` under a moto state tree (its nesting by account and region varies with moto's version).
fn collect_raw(value: &Value, into: &mut Vec<Vec<u8>>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(raw)) = map.get("raw_data") {
                into.push(raw.clone().into_bytes());
            }
            for v in map.values() {
                collect_raw(v, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_raw(v, into)),
        _ => {}
    }
}

/// What ResMan's calendar says of a tour's status, in ResMan's words.
pub fn resman_word(status: tour_core::domain::lifecycle::TourStatus) -> Option<&'static str> {
    tour_core::domain::lifecycle::ResManWord::write(status).map(|w| w.as_resman())
}

/// Asserts that ResMan's appointment `theirs` holds the tour's last version: written (synced), at the same time, with
/// the same agent and status.
pub fn assert_agrees_with_resman(tour: &TourRecord, theirs: &Value, context: &str) {
    use tour_core::domain::record::SyncStatus;
    assert_eq!(tour.sync_status, SyncStatus::Synced, "{context}: {tour:?}");
    assert_eq!(
        tour.resman_version, tour.version,
        "{context}: ResMan holds the last version: {tour:?}"
    );
    // A tour we cancelled with the contract's note alone stays on ResMan's calendar as we last saw it there (held,
    // or cancelled by staff at the time it then had): ResMan must show exactly that, and our mirror keeps its agent
    // busy while it holds time. With the cancel word, what we last saw is what we wrote: the tour as it stands.
    let (status, start, agent) = match &tour.resman_seen {
        Some(seen) if tour.status == tour_core::domain::lifecycle::TourStatus::Cancelled => {
            (seen.status, seen.start, seen.agent.as_ref())
        }
        _ => (tour.status, tour.start, tour.holder.agent()),
    };
    let theirs_start: DateTime<Utc> = theirs["scheduled_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(theirs_start, start, "{context}: same time: {tour:?} {theirs}");
    assert_eq!(
        theirs["agent_id"].as_str(),
        agent.map(|a| a.as_str()),
        "{context}: same agent: {tour:?} {theirs}"
    );
    assert_eq!(
        theirs["status"].as_str(),
        resman_word(status),
        "{context}: same status: {tour:?} {theirs}"
    );
}
