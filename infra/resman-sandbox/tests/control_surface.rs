//! The `/_sandbox/` control surface: staff bookings and changes, signed webhooks, reset, request log.

mod common;

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::{DurationRound, Utc};
use common::*;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A webhook receiver on a free port that hands every request to the test.
struct Receiver {
    url: String,
    received: mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
}

async fn receiver() -> Receiver {
    let (sender, received) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hooks/resman",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sender = sender.clone();
            async move {
                sender.send((headers, body)).expect("test is listening");
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hooks/resman", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, received }
}

impl Receiver {
    async fn next(&mut self) -> (HeaderMap, Bytes) {
        tokio::time::timeout(Duration::from_secs(5), self.received.recv())
            .await
            .expect("a webhook arrives")
            .expect("channel open")
    }
}

/// Verifies `t=<ts>,v1=<hex>` with an HMAC computed here, not with the crate's signer.
fn verify_signature(header: &str, secret: &str, body: &[u8]) -> i64 {
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("malformed signature header {header}"));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, expected, "signature verifies");
    t.parse().expect("numeric timestamp")
}

async fn staff_change(sandbox: &Sandbox, appointment_id: &str, change: Value) -> reqwest::Response {
    sandbox
        .post_json(&format!("/_sandbox/appointments/{appointment_id}/staff-change"), change)
        .await
}

#[tokio::test]
async fn health_answers_ok() {
    let sandbox = Sandbox::start().await;
    assert_eq!(sandbox.get_json("/_sandbox/health").await, json!({"status": "ok"}));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_staff_change_shows_in_search_and_sends_a_signed_webhook() {
    let mut receiver = receiver().await;
    let mut config = test_config();
    config.webhook = Some(resman_sandbox::WebhookTarget {
        url: receiver.url.clone(),
        secret: "whsec-test".to_owned(),
    });
    let sandbox = Sandbox::start_with(config).await;
    let echo = sandbox
        .book_tour("staff@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    let appointment_id = echo.prospect().event().event_id.value.clone();

    // Let the clock pass a whole second, so that only the staff change can fall in the window below.
    let created = Utc::now();
    let next_second =
        created.duration_trunc(chrono::Duration::seconds(1)).expect("truncates") + chrono::Duration::seconds(1);
    let margin = chrono::Duration::milliseconds(50);
    tokio::time::sleep((next_second - created + margin).to_std().expect("positive")).await;
    let window_start = resman_time(next_second);
    let window_end = resman_time(next_second + chrono::Duration::hours(1));

    let response = staff_change(
        &sandbox,
        &appointment_id,
        json!({"status": "Confirmed", "scheduled_at": "2026-12-01T11:00:00-06:00", "staff_notes": "Prefers the pool view"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.expect("json");
    assert_eq!(
        reply["updated_fields"],
        json!(["status", "scheduled_at", "staff_notes"])
    );
    assert_eq!(reply["appointment"]["scheduled_at"], "2026-12-01T17:00:00Z");

    let changed = sandbox
        .search(
            MAPLE,
            &[
                ("ModifiedStartDateTime", &window_start),
                ("ModifiedEndDateTime", &window_end),
            ],
        )
        .await;
    let event = changed.prospect().event();
    assert_eq!(event.event_id.value, appointment_id);
    assert_eq!(event.event_reasons.as_deref(), Some("Confirmed"));
    assert_eq!(event.event_date, "2026-12-01T17:00:00");
    let comments = event.comments.clone().unwrap_or_default();
    assert!(comments.contains("[tour-ref:abc]"), "{comments}");
    assert!(comments.contains("Prefers the pool view"), "{comments}");

    let (headers, body) = receiver.next().await;
    let signature = headers["x-resman-signature"].to_str().expect("ascii");
    let timestamp = verify_signature(signature, "whsec-test", &body);
    assert!((Utc::now().timestamp() - timestamp).abs() < 60);
    let notice: Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(notice["appointment_id"], appointment_id);
    assert_eq!(notice["event_id"], reply["webhook_event_id"]);
    assert_eq!(notice["status"], "Confirmed");
    assert_eq!(notice["updated_fields"], reply["updated_fields"]);
    assert_eq!(notice["staff_member"], ALEX);
    assert_eq!(notice["property_id"], MAPLE);
    assert_eq!(notice["scheduled_at"], "2026-12-01T17:00:00Z");
    assert!(chrono::DateTime::parse_from_rfc3339(notice["timestamp"].as_str().expect("string")).is_ok());

    // The delivery log records the receiver's answer and the exact signed body.
    let mut deliveries = Value::Null;
    for _ in 0..50 {
        deliveries = sandbox.get_json("/_sandbox/webhooks").await;
        if deliveries[0]["pending"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(deliveries[0]["status_code"], 200);
    assert_eq!(deliveries[0]["error"], Value::Null);
    assert_eq!(deliveries[0]["url"], receiver.url);
    assert_eq!(deliveries[0]["body"], String::from_utf8_lossy(&body).as_ref());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_staff_change_that_changes_nothing_sends_no_webhook() {
    let receiver = receiver().await;
    let sandbox = Sandbox::start().await;
    let set = sandbox
        .post_json("/_sandbox/webhook", json!({"url": receiver.url, "secret": "s"}))
        .await;
    assert_eq!(set.status(), 200);
    let echo = sandbox
        .book_tour("same@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    let appointment_id = echo.prospect().event().event_id.value.clone();
    let response = staff_change(&sandbox, &appointment_id, json!({"status": "Scheduled"})).await;
    let reply: Value = response.json().await.expect("json");
    assert_eq!(reply["updated_fields"], json!([]));
    assert_eq!(reply["webhook_event_id"], Value::Null);
    assert_eq!(sandbox.get_json("/_sandbox/webhooks").await, json!([]));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_webhook_target_can_be_set_and_removed_at_run_time() {
    let mut receiver = receiver().await;
    let sandbox = Sandbox::start().await;
    let echo = sandbox
        .book_tour("runtime@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    let appointment_id = echo.prospect().event().event_id.value.clone();

    let set = sandbox
        .post_json(
            "/_sandbox/webhook",
            json!({"url": receiver.url, "secret": "runtime-secret"}),
        )
        .await;
    assert_eq!(set.status(), 200);
    staff_change(&sandbox, &appointment_id, json!({"status": "Completed"})).await;
    let (headers, body) = receiver.next().await;
    verify_signature(
        headers["x-resman-signature"].to_str().expect("ascii"),
        "runtime-secret",
        &body,
    );

    assert_eq!(sandbox.delete("/_sandbox/webhook").await.status(), 200);
    let reply: Value = staff_change(&sandbox, &appointment_id, json!({"status": "No Show"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(reply["appointment"]["status"], "No Show");
    assert_eq!(reply["webhook_event_id"], Value::Null);
    assert_eq!(
        sandbox.get_json("/_sandbox/webhooks").await.as_array().map(Vec::len),
        Some(1)
    );

    let bad = sandbox
        .post_json("/_sandbox/webhook", json!({"url": "not a url", "secret": "s"}))
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.expect("json")["error"]["field"], "url");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn staff_changes_check_overlap_and_unknown_ids() {
    let sandbox = Sandbox::start().await;
    let first = sandbox
        .book_tour("a@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    sandbox
        .book_tour("b@example.com", ALEX, "2026-12-01T18:00:00", 45)
        .await
        .assert_success();
    let appointment_id = first.prospect().event().event_id.value.clone();

    let clash = staff_change(
        &sandbox,
        &appointment_id,
        json!({"scheduled_at": "2026-12-01T18:30:00Z"}),
    )
    .await;
    assert_eq!(clash.status(), 409);
    assert_eq!(sandbox.appointments().await[0]["scheduled_at"], "2026-12-01T16:00:00Z");

    let unknown = staff_change(
        &sandbox,
        "00000000-0000-4000-8000-000000000000",
        json!({"status": "Cancelled"}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let bad_status = staff_change(&sandbox, &appointment_id, json!({"status": "Maybe"})).await;
    assert_eq!(bad_status.status(), 400);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_direct_booking_blocks_the_agent_for_mits_posts() {
    let sandbox = Sandbox::start().await;
    let booking = json!({
        "property_id": MAPLE,
        "agent_id": ALEX,
        "scheduled_at": "2026-12-01T10:00:00-06:00",
        "duration_minutes": 60,
        "prospect": {"first_name": "Walk", "last_name": "In", "email": "walkin@example.com"},
        "comments": "Booked at the front desk"
    });
    let response = sandbox.post_json("/_sandbox/appointments", booking.clone()).await;
    assert_eq!(response.status(), 201);
    let appointment: Value = response.json().await.expect("json");
    assert_eq!(appointment["scheduled_at"], "2026-12-01T16:00:00Z");
    assert_eq!(appointment["duration_minutes"], 60);
    assert_eq!(appointment["status"], "Scheduled");
    assert_eq!(appointment["event_type"], "Appointment");
    assert_eq!(appointment["property_id"], MAPLE);

    assert_eq!(sandbox.post_json("/_sandbox/appointments", booking).await.status(), 409);
    let clash = sandbox
        .book_tour("bot@example.com", ALEX, "2026-12-01T16:50:00", 30)
        .await;
    assert_eq!(
        clash.error_description.as_deref(),
        Some("Agent is not available at that time")
    );

    let listed = sandbox
        .get_json(&format!("/_sandbox/appointments?property_id={MAPLE}"))
        .await;
    assert_eq!(listed, json!([appointment]));
    let elsewhere = sandbox
        .get_json(&format!("/_sandbox/appointments?property_id={SAGUARO}"))
        .await;
    assert_eq!(elsewhere, json!([]));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_direct_booking_made_in_the_past_shows_in_the_change_feed_from_then() {
    let sandbox = Sandbox::start().await;
    let booked_at = chrono::Utc::now() - chrono::Duration::days(10);
    let booking = |at: String| {
        json!({
            "property_id": MAPLE, "agent_id": ALEX, "scheduled_at": "2026-12-01T10:00:00-06:00",
            "prospect": {"first_name": "Early", "last_name": "Bird", "email": "early@example.com"},
            "booked_at": at
        })
    };
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let refused = sandbox.post_json("/_sandbox/appointments", booking(future)).await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["field"], "booked_at");
    let made = sandbox
        .post_json("/_sandbox/appointments", booking(booked_at.to_rfc3339()))
        .await;
    assert_eq!(made.status(), 201);
    let window = |from: chrono::DateTime<chrono::Utc>| {
        let f = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
        [f(from), f(from + chrono::Duration::days(1))]
    };
    let [start, end] = window(booked_at - chrono::Duration::hours(1));
    let then = sandbox
        .search(
            MAPLE,
            &[("ModifiedStartDateTime", &start), ("ModifiedEndDateTime", &end)],
        )
        .await;
    assert_eq!(then.prospects().len(), 1, "the feed shows it on the day it was booked");
    let [start, end] = window(chrono::Utc::now() - chrono::Duration::hours(1));
    let today = sandbox
        .search(
            MAPLE,
            &[("ModifiedStartDateTime", &start), ("ModifiedEndDateTime", &end)],
        )
        .await;
    assert!(today.prospects().is_empty(), "and not as a change of today");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn reset_restores_the_seed_but_keeps_the_webhook_target() {
    let mut receiver = receiver().await;
    let sandbox = Sandbox::start().await;
    sandbox
        .post_json("/_sandbox/webhook", json!({"url": receiver.url, "secret": "keep"}))
        .await;
    let echo = sandbox
        .book_tour("reset@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    staff_change(
        &sandbox,
        &echo.prospect().event().event_id.value,
        json!({"status": "Confirmed"}),
    )
    .await;
    receiver.next().await;
    sandbox.set_faults(json!({"latency_ms": 10})).await;

    let reset = sandbox
        .client
        .post(sandbox.url("/_sandbox/reset"))
        .send()
        .await
        .expect("sent");
    assert_eq!(reset.status(), 200);
    assert!(sandbox.appointments().await.is_empty());
    assert_eq!(sandbox.get_json("/_sandbox/requests").await, json!([]));
    assert_eq!(sandbox.get_json("/_sandbox/webhooks").await, json!([]));
    assert_eq!(sandbox.get_json("/_sandbox/faults").await["latency_ms"], 0);
    let gone = sandbox.search(MAPLE, &[("Email", "reset@example.com")]).await;
    assert!(gone.prospects().is_empty());

    let again = sandbox
        .book_tour("after@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    again.assert_success();
    staff_change(
        &sandbox,
        &again.prospect().event().event_id.value,
        json!({"status": "Confirmed"}),
    )
    .await;
    let (_, body) = receiver.next().await;
    let notice: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(notice["appointment_id"], again.prospect().event().event_id.value);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_request_log_records_calls_without_the_api_key_or_the_xml() {
    let mut config = test_config();
    config.credentials.api_key = "k3y-that-must-not-leak".to_owned();
    let sandbox = Sandbox::start_with(config).await;
    let card = tour_card("log@example.com", ALEX, "2026-12-01T16:00:00", 30);
    let response = sandbox
        .call_raw(
            "MITS",
            "PostLeadManagement4_0",
            &[
                ("IntegrationPartnerID", PARTNER),
                ("ApiKey", "k3y-that-must-not-leak"),
                ("AccountID", ACCOUNT),
                ("PropertyID", MAPLE),
                ("Xml", &card),
            ],
            false,
        )
        .await;
    let echo = parse_resman(&response.text().await.expect("body"));
    echo.assert_success();
    let wrong_key = sandbox
        .call("Leasing", "GetEmployees", &[("PropertyID", MAPLE)], true)
        .await;
    assert_eq!(wrong_key.status(), 200);

    let raw = sandbox
        .client
        .get(sandbox.url("/_sandbox/requests"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert!(!raw.contains("k3y-that-must-not-leak"));
    assert!(!raw.contains(API_KEY));
    assert!(!raw.contains("log@example.com"));
    assert!(!raw.contains("<LeadManagement"));
    assert!(!raw.contains("tour-ref"));

    let log: Value = serde_json::from_str(&raw).expect("json");
    let entries = log.as_array().expect("list");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["area"], "MITS");
    assert_eq!(entries[0]["method"], "PostLeadManagement4_0");
    assert_eq!(entries[0]["property_id"], MAPLE);
    assert_eq!(entries[0]["http_status"], 200);
    assert_eq!(entries[0]["status"], "Success");
    assert_eq!(entries[0]["fault"], Value::Null);
    assert_eq!(entries[0]["event_ids"], json!([echo.prospect().event().event_id.value]));
    assert_eq!(entries[1]["method"], "GetEmployees");
    assert_eq!(entries[1]["status"], "Error");
    assert!(entries[1].get("event_ids").is_none());

    assert_eq!(sandbox.delete("/_sandbox/requests").await.status(), 200);
    assert_eq!(sandbox.get_json("/_sandbox/requests").await, json!([]));
    sandbox.shutdown().await;
}
