//! The ResMan adapter against the ResMan sandbox: the contract both were written from, checked end to end.

use chrono::{DateTime, Duration as Days, NaiveDate, TimeZone, Utc};
use chrono_tz::America::Phoenix;
use integration_tests::*;
use serde_json::{Value, json};
use std::time::Duration;
use tour_core::domain::resman::ResManSite;
use tour_core::domain::resman::{ProspectContact, ProspectLookup, ProspectTourPost, TourEventPost};
use tour_core::domain::{AgentId, Email, PersonName, Phone, ProspectSourceId, ResManPropertyId, UtcWindow};
use tour_core::ports::{ResManError, ResManGateway};

fn property(id: &str) -> ResManSite {
    ResManSite::new(None, ResManPropertyId::parse(id).unwrap())
}

fn tour_post(email: &str, start: DateTime<Utc>, agent: &str, source: &str) -> ProspectTourPost {
    ProspectTourPost {
        existing: None,
        contact: ProspectContact {
            name: PersonName::parse("Ana Lopez").unwrap(),
            email: Email::parse(email).unwrap(),
            phone: Some(Phone::parse("(512) 555-0100").unwrap()),
        },
        preferences: Some("2 bedrooms".into()),
        tour: TourEventPost {
            appointment_id: None,
            start,
            agent: Some(AgentId::parse(agent).unwrap()),
            source: ProspectSourceId::parse(source).unwrap(),
            status: None,
            first_contact: true,
            comments: "In-Person Tour, 30 min. [tour-ref:test]".into(),
        },
    }
}

fn next_week_at(hour: u32) -> DateTime<Utc> {
    let day = Utc::now().date_naive() + Days::days(7);
    Utc.from_utc_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
}

async fn control(sandbox: &RunningSandbox, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{}{path}", sandbox.base_url()));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

async fn appointments(sandbox: &RunningSandbox) -> Vec<Value> {
    control(sandbox, reqwest::Method::GET, "/_sandbox/appointments", None)
        .await
        .as_array()
        .cloned()
        .unwrap()
}

async fn set_faults(sandbox: &RunningSandbox, faults: Value) {
    control(sandbox, reqwest::Method::POST, "/_sandbox/faults", Some(faults)).await;
}

#[tokio::test]
async fn the_demo_property_lists_its_leasing_agents_and_the_chatbot_source() {
    let sandbox = sandbox().await;
    let resman = resman_for(&sandbox, Duration::from_secs(5));
    let staff = resman.employees(&property(DEMO_PROPERTY)).await.unwrap();
    let leasing: Vec<&str> = staff.iter().filter(|e| e.is_leasing).map(|e| e.id.as_str()).collect();
    assert_eq!(leasing, DEMO_AGENTS);
    assert!(
        staff.iter().any(|e| !e.is_leasing),
        "the property manager gives no tours"
    );
    let sources = resman.prospect_sources(&property(DEMO_PROPERTY)).await.unwrap();
    assert!(
        sources
            .iter()
            .any(|s| s.id.as_str() == DEMO_SOURCE && s.name == "DomIQ Chatbot")
    );
}

#[tokio::test]
async fn a_prospect_created_with_a_tour_is_then_found_by_email_and_by_phone() {
    let sandbox = sandbox().await;
    let resman = resman_for(&sandbox, Duration::from_secs(5));
    let p = property(DEMO_PROPERTY);
    let email = "ana.lopez@example.com";
    let lookup = ProspectLookup::Email(Email::parse(email).unwrap());
    assert!(resman.find_prospects(&p, &lookup).await.unwrap().is_empty());

    let posted = resman
        .post_tour(&p, &tour_post(email, next_week_at(16), DEMO_AGENTS[0], DEMO_SOURCE))
        .await
        .unwrap();

    let found = resman.find_prospects(&p, &lookup).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reference, posted.prospect);
    let tour = found[0].tours("Appointment").next().expect("the tour event");
    assert_eq!(tour.id.as_ref(), Some(&posted.appointment_id));
    assert_eq!(tour.agent.as_ref().map(AgentId::as_str), Some(DEMO_AGENTS[0]));
    let by_phone = resman
        .find_prospects(&p, &ProspectLookup::Phone(Phone::parse("512-555-0100").unwrap()))
        .await
        .unwrap();
    assert_eq!(by_phone.len(), 1);
}

#[tokio::test]
async fn a_tour_in_phoenix_is_posted_in_utc() {
    let sandbox = sandbox().await;
    let resman = resman_for(&sandbox, Duration::from_secs(5));
    // 10:00 in Phoenix (UTC-7 all year) is 17:00 UTC.
    let day: NaiveDate = Utc::now().date_naive() + Days::days(10);
    let local = Phoenix
        .from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap())
        .single()
        .unwrap();
    let start = local.with_timezone(&Utc);
    let posted = resman
        .post_tour(
            &property(PHOENIX_PROPERTY),
            &tour_post("pat@example.com", start, PHOENIX_AGENT, PHOENIX_SOURCE),
        )
        .await
        .unwrap();
    let all = appointments(&sandbox).await;
    let stored = all
        .iter()
        .find(|a| a["appointment_id"] == posted.appointment_id.as_str())
        .unwrap();
    let at = DateTime::parse_from_rfc3339(stored["scheduled_at"].as_str().unwrap()).unwrap();
    assert_eq!(at.with_timezone(&Utc), start);
    assert_eq!(at.with_timezone(&Utc).format("%H:%M").to_string(), "17:00");
    // And what ResMan received on the wire carried no offset.
    let requests = control(&sandbox, reqwest::Method::GET, "/_sandbox/requests", None).await;
    assert!(requests.to_string().contains("PostLeadManagement4_0"));
}

#[tokio::test]
async fn an_overlapping_tour_for_the_same_agent_is_a_refusal_with_resmans_words() {
    let sandbox = sandbox().await;
    let resman = resman_for(&sandbox, Duration::from_secs(5));
    let p = property(DEMO_PROPERTY);
    resman
        .post_tour(
            &p,
            &tour_post("one@example.com", next_week_at(16), DEMO_AGENTS[1], DEMO_SOURCE),
        )
        .await
        .unwrap();
    let err = resman
        .post_tour(
            &p,
            &tour_post("two@example.com", next_week_at(16), DEMO_AGENTS[1], DEMO_SOURCE),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ResManError::Rejected {
            description: "Agent is not available at that time".into()
        }
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_wrong_api_key_is_a_final_refusal() {
    let sandbox = sandbox().await;
    let mut settings = tour_aws::resman::ResManSettings::new(
        sandbox.base_url(),
        tour_aws::resman::ResManCredentials {
            integration_partner_id: "domiq-sandbox".into(),
            api_key: "not-the-key".into(),
            account_id: 400,
        },
    );
    settings.timeout = Duration::from_secs(5);
    let resman = tour_aws::resman::HttpResMan::new(settings).unwrap();
    let err = resman.employees(&property(DEMO_PROPERTY)).await.unwrap_err();
    assert!(
        matches!(&err, ResManError::Rejected { description } if description.contains("ApiKey")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn each_sandbox_fault_maps_to_its_error_class() {
    let sandbox = sandbox_with(SandboxConfig {
        hang_duration: Duration::from_secs(3),
        ..SandboxConfig::demo()
    })
    .await;
    let resman = resman_for(&sandbox, Duration::from_millis(700));
    let p = property(DEMO_PROPERTY);

    set_faults(&sandbox, json!({"http_error_rate": 1.0, "http_error_statuses": [502]})).await;
    assert_eq!(
        resman.employees(&p).await.unwrap_err(),
        ResManError::Server { status: 502 }
    );

    set_faults(&sandbox, json!({"hang_rate": 1.0})).await;
    let err = resman.employees(&p).await.unwrap_err();
    assert!(
        matches!(err, ResManError::Timeout(_)) && err.may_have_applied(),
        "{err:?}"
    );

    set_faults(&sandbox, json!({"latency_ms": 1500})).await;
    assert!(matches!(
        resman.employees(&p).await.unwrap_err(),
        ResManError::Timeout(_)
    ));

    set_faults(
        &sandbox,
        json!({"status_error_rate": 1.0, "status_error_message": "Simulated failure"}),
    )
    .await;
    assert_eq!(
        resman.employees(&p).await.unwrap_err(),
        ResManError::Rejected {
            description: "Simulated failure".into()
        }
    );

    set_faults(&sandbox, json!({"applied_then_503_rate": 1.0})).await;
    let before = appointments(&sandbox).await.len();
    let err = resman
        .post_tour(
            &p,
            &tour_post("lost@example.com", next_week_at(17), DEMO_AGENTS[2], DEMO_SOURCE),
        )
        .await
        .unwrap_err();
    assert_eq!(err, ResManError::Server { status: 503 });
    assert!(err.may_have_applied());
    assert_eq!(
        appointments(&sandbox).await.len(),
        before + 1,
        "the write happened although the answer was a 503"
    );

    control(&sandbox, reqwest::Method::DELETE, "/_sandbox/faults", None).await;
    assert!(resman.employees(&p).await.is_ok());
}

#[tokio::test]
async fn a_nine_day_change_window_is_split_and_still_finds_the_change() {
    let sandbox = sandbox().await;
    let resman = resman_for(&sandbox, Duration::from_secs(5));
    let p = property(DEMO_PROPERTY);
    resman
        .post_tour(
            &p,
            &tour_post("window@example.com", next_week_at(15), DEMO_AGENTS[0], DEMO_SOURCE),
        )
        .await
        .unwrap();
    control(&sandbox, reqwest::Method::DELETE, "/_sandbox/requests", None).await;

    let window = UtcWindow::new(Utc::now() - Days::days(9), Utc::now() + Days::minutes(1)).unwrap();
    let changed = resman.changed_prospects(&p, window).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].email.as_deref(), Some("window@example.com"));

    let log = control(&sandbox, reqwest::Method::GET, "/_sandbox/requests", None).await;
    let statuses: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["http_status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses[0], 502, "the whole window was refused first: {statuses:?}");
    assert!(
        statuses.len() >= 3 && statuses[1..].iter().all(|s| *s == 200),
        "{statuses:?}"
    );
}
