//! Fault switches of `/_sandbox/faults`, each seen from a client's side.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

async fn employees_status(sandbox: &Sandbox) -> (u16, String) {
    let response = sandbox
        .call("Leasing", "GetEmployees", &[("PropertyID", MAPLE)], true)
        .await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn latency_delays_every_answer_by_at_least_the_set_time() {
    let sandbox = Sandbox::start().await;
    sandbox.set_faults(json!({"latency_ms": 300})).await;
    for _ in 0..2 {
        let started = Instant::now();
        let (status, _) = employees_status(&sandbox).await;
        assert_eq!(status, 200);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_http_error_answers_a_gateway_page_and_applies_nothing() {
    let sandbox = Sandbox::start().await;
    sandbox
        .set_faults(json!({"http_error_rate": 1.0, "http_error_statuses": [503]}))
        .await;
    let response = sandbox
        .call(
            "MITS",
            "PostLeadManagement4_0",
            &[
                ("PropertyID", MAPLE),
                ("Xml", &tour_card("gw@example.com", ALEX, "2026-12-01T16:00:00", 30)),
            ],
            false,
        )
        .await;
    assert_eq!(response.status(), 503);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let body = response.text().await.expect("body");
    assert_eq!(body, "<html><body><h1>503 Service Unavailable</h1></body></html>");
    assert!(sandbox.appointments().await.is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn http_errors_are_drawn_from_the_configured_statuses() {
    let sandbox = Sandbox::start().await;
    sandbox
        .set_faults(json!({"http_error_rate": 1.0, "http_error_statuses": [500, 502]}))
        .await;
    for _ in 0..6 {
        let (status, body) = employees_status(&sandbox).await;
        assert!(status == 500 || status == 502, "{status}");
        assert!(body.contains(&format!("<h1>{status} ")), "{body}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_hang_outlasts_the_client_timeout_and_applies_nothing() {
    let sandbox = Sandbox::start().await;
    sandbox.set_faults(json!({"hang_rate": 1.0})).await;
    let started = Instant::now();
    let result = sandbox
        .client
        .post(sandbox.url("/MITS/PostLeadManagement4_0"))
        .timeout(Duration::from_millis(300))
        .form(&[
            ("IntegrationPartnerID", PARTNER),
            ("ApiKey", API_KEY),
            ("AccountID", ACCOUNT),
            ("PropertyID", MAPLE),
            ("Xml", &tour_card("hang@example.com", ALEX, "2026-12-01T16:00:00", 30)),
        ])
        .send()
        .await;
    let error = result.expect_err("the client times out");
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() < TEST_HANG);
    assert!(sandbox.appointments().await.is_empty());

    // Left alone, the hang ends with a gateway timeout.
    let (status, body) = employees_status(&sandbox).await;
    assert_eq!(status, 504);
    assert!(body.contains("504 Gateway Timeout"), "{body}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_status_error_fault_answers_the_envelope_error_and_applies_nothing() {
    let sandbox = Sandbox::start().await;
    sandbox
        .set_faults(json!({"status_error_rate": 1.0, "status_error_message": "Database timeout"}))
        .await;
    let answer = sandbox
        .book_tour("status@example.com", ALEX, "2026-12-01T16:00:00", 30)
        .await;
    assert_eq!(answer.status, "Error");
    assert_eq!(answer.error_description.as_deref(), Some("Database timeout"));
    assert!(sandbox.appointments().await.is_empty());

    sandbox.set_faults(json!({"status_error_rate": 1.0})).await;
    let (status, body) = employees_status(&sandbox).await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["Status"], "Error");
    assert_eq!(json["ErrorDescription"], "Simulated failure");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn applied_then_503_writes_the_appointment_but_answers_503() {
    let sandbox = Sandbox::start().await;
    sandbox.set_faults(json!({"applied_then_503_rate": 1.0})).await;
    let response = sandbox
        .call(
            "MITS",
            "PostLeadManagement4_0",
            &[
                ("PropertyID", MAPLE),
                ("Xml", &tour_card("lost@example.com", ALEX, "2026-12-01T16:00:00", 30)),
            ],
            false,
        )
        .await;
    assert_eq!(response.status(), 503);
    sandbox.delete("/_sandbox/faults").await;

    let appointments = sandbox.appointments().await;
    assert_eq!(appointments.len(), 1);
    assert_eq!(appointments[0]["agent_id"], ALEX);
    let found = sandbox.search(MAPLE, &[("Email", "lost@example.com")]).await;
    assert_eq!(found.prospects().len(), 1);

    let log = sandbox.get_json("/_sandbox/requests").await;
    let post = &log.as_array().expect("list")[0];
    assert_eq!(post["fault"], "applied_then_503");
    assert_eq!(post["http_status"], 503);
    assert_eq!(post["event_ids"][0], appointments[0]["appointment_id"]);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn remaining_limits_faults_to_the_next_n_requests() {
    let sandbox = Sandbox::start().await;
    sandbox
        .set_faults(json!({"http_error_rate": 1.0, "http_error_statuses": [500], "remaining": 2}))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(employees_status(&sandbox).await.0);
    }
    assert_eq!(statuses, vec![500, 500, 200, 200]);
    assert_eq!(sandbox.get_json("/_sandbox/faults").await["remaining"], 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn methods_limit_faults_to_the_named_methods() {
    let sandbox = Sandbox::start().await;
    sandbox
        .set_faults(json!({"http_error_rate": 1.0, "methods": ["PostLeadManagement4_0"]}))
        .await;
    assert_eq!(employees_status(&sandbox).await.0, 200);
    let response = sandbox
        .call(
            "MITS",
            "PostLeadManagement4_0",
            &[
                ("PropertyID", MAPLE),
                ("Xml", &tour_card("m@example.com", ALEX, "2026-12-01T16:00:00", 30)),
            ],
            false,
        )
        .await;
    assert!(response.status().is_server_error());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn delete_clears_every_fault() {
    let sandbox = Sandbox::start().await;
    sandbox
        .set_faults(json!({"http_error_rate": 1.0, "latency_ms": 50}))
        .await;
    assert_eq!(sandbox.get_json("/_sandbox/faults").await["http_error_rate"], 1.0);
    assert_eq!(employees_status(&sandbox).await.0 / 100, 5);

    let cleared = sandbox.delete("/_sandbox/faults").await;
    assert_eq!(cleared.status(), 200);
    let faults = sandbox.get_json("/_sandbox/faults").await;
    assert_eq!(faults["http_error_rate"], 0.0);
    assert_eq!(faults["latency_ms"], 0);
    assert_eq!(employees_status(&sandbox).await.0, 200);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn invalid_fault_settings_are_a_400_naming_the_field() {
    let sandbox = Sandbox::start().await;
    for (body, field) in [
        (json!({"http_error_rate": 2.0}), "http_error_rate"),
        (json!({"latency_ms": "slow"}), "latency_ms"),
        (json!({"hang": 1.0}), "hang"),
    ] {
        let response = sandbox.post_json("/_sandbox/faults", body).await;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["field"], field);
    }
    assert_eq!(sandbox.get_json("/_sandbox/faults").await["http_error_rate"], 0.0);
    sandbox.shutdown().await;
}
