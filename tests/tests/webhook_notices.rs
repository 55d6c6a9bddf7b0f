//! A staff change in the sandbox goes out as a signed webhook; our webhook use case verifies it and keeps it
//! exactly once in DynamoDB (DynamoDB Local, provisioned from template.yaml).

use integration_tests::*;
use serde_json::json;
use std::time::Duration;
use tour_core::app::AppError;
use tour_core::app::changes::NoticeEffect;
use tour_core::app::webhook::{NoticeOutcome, WebhookDeps, receive_change_notice};
use tour_core::domain::resman::TourEventStatus;
use tour_core::ports::{CalendarStore, MirrorOutcome};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "local-webhook-secret-for-tests";

#[tokio::test]
async fn a_signed_staff_change_is_verified_and_kept_once() {
    let aws = LocalAws::start(&[], &[("WebhookSecretArn", SECRET)]);
    let store = aws.store().await;
    load_demo_properties(&store).await;

    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let mut config = SandboxConfig::demo();
    config.webhook = Some(resman_sandbox::WebhookTarget {
        url: format!("{}/hook", receiver.uri()),
        secret: SECRET.into(),
    });
    let sandbox = sandbox_with(config).await;

    let client = reqwest::Client::new();
    let start = chrono::Utc::now() + chrono::Duration::days(3);
    let created: serde_json::Value = client
        .post(format!("{}/_sandbox/appointments", sandbox.base_url()))
        .json(&json!({
            "property_id": DEMO_PROPERTY, "agent_id": DEMO_AGENTS[0],
            "scheduled_at": start.to_rfc3339(), "duration_minutes": 30,
            "prospect": {"first_name": "Dana", "last_name": "Demo", "email": "dana@example.com"}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let appointment_id = created["appointment_id"].as_str().unwrap().to_owned();
    let res = client
        .post(format!(
            "{}/_sandbox/appointments/{appointment_id}/staff-change",
            sandbox.base_url()
        ))
        .json(&json!({"status": "Cancelled", "staff_notes": "prospect called"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());

    let delivered = async {
        loop {
            let got = receiver.received_requests().await.unwrap_or_default();
            if let Some(r) = got.into_iter().next() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let request = tokio::time::timeout(Duration::from_secs(10), delivered)
        .await
        .expect("no webhook arrived");
    let signature = request
        .headers
        .get("x-resman-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let now = chrono::Utc::now();

    let queue = aws.queue().await;
    let relays = relays_of(SECRET);
    let deps = WebhookDeps {
        inbox: &store,
        feed: feed(&store, &queue),
        relays: &relays,
    };
    let first = receive_change_notice(&deps, signature.as_deref(), &request.body, now)
        .await
        .unwrap();
    match first {
        NoticeOutcome::Accepted(notice, effect) => {
            assert_eq!(effect, NoticeEffect::Applied(MirrorOutcome::Changed));
            assert_eq!(notice.appointment_id.as_str(), appointment_id);
            assert_eq!(notice.status, TourEventStatus::Cancelled);
            assert_eq!(notice.staff_member.as_deref(), Some(DEMO_AGENTS[0]));
        }
        other => panic!("expected the notice to be accepted, got {other:?}"),
    }
    let again = receive_change_notice(&deps, signature.as_deref(), &request.body, now)
        .await
        .unwrap();
    assert_eq!(again, NoticeOutcome::Duplicate);
    let (_, mirrored) = store
        .mirrored(&tour_core::domain::AppointmentId::parse(&appointment_id).unwrap())
        .await
        .unwrap()
        .expect("the cancelled appointment is mirrored");
    assert!(!mirrored.holds_time(), "a cancelled tour frees its agent");

    let wrong_relays = relays_of("some-other-secret-0123");
    let wrong_deps = WebhookDeps {
        relays: &wrong_relays,
        ..deps
    };
    let wrong = receive_change_notice(&wrong_deps, signature.as_deref(), &request.body, now).await;
    assert!(matches!(wrong, Err(AppError::BadSignature(_))));
}

/// The brief's `TourUpdateWebhook`, as a relay sends it: `updated_fields` an object of the new values, the staff
/// member by name. It is accepted and moves the mirrored tour to the new time and the named agent.
#[tokio::test]
async fn a_relay_notice_in_the_briefs_shape_moves_the_tour_to_the_new_time_and_agent() {
    let aws = LocalAws::start(&[], &[("WebhookSecretArn", SECRET)]);
    let store = aws.store().await;
    load_demo_properties(&store).await;
    let queue = aws.queue().await;
    let relays = relays_of(SECRET);
    let deps = WebhookDeps {
        inbox: &store,
        feed: feed(&store, &queue),
        relays: &relays,
    };
    let now = chrono::Utc::now();
    let tomorrow = |hour: u32| {
        (now + chrono::Duration::days(1))
            .date_naive()
            .and_hms_opt(hour, 0, 0)
            .unwrap()
            .and_utc()
    };
    let notice = |event: &str, at: chrono::DateTime<chrono::Utc>, staff: &str, sent: i64| {
        json!({
            "event_id": event, "appointment_id": "relay-appt-1", "status": "Confirmed",
            "updated_fields": {"status": "Confirmed", "scheduled_at": at.to_rfc3339()},
            "staff_member": staff, "timestamp": (now + chrono::Duration::seconds(sent)).to_rfc3339(),
            "property_id": DEMO_PROPERTY
        })
        .to_string()
        .into_bytes()
    };
    let send = async |body: Vec<u8>| {
        let signature = tour_core::domain::signature::sign(SECRET.as_bytes(), now.timestamp(), &body);
        receive_change_notice(&deps, Some(&signature), &body, now).await
    };

    let first = send(notice("relay-1", tomorrow(15), "Alex Rivera", 0)).await.unwrap();
    assert!(matches!(
        first,
        NoticeOutcome::Accepted(_, NoticeEffect::Applied(MirrorOutcome::Changed))
    ));
    let moved = send(notice("relay-2", tomorrow(17), "jordan lee", 1)).await.unwrap();
    assert!(matches!(
        moved,
        NoticeOutcome::Accepted(_, NoticeEffect::Applied(MirrorOutcome::Changed))
    ));

    let (_, mirrored) = store
        .mirrored(&tour_core::domain::AppointmentId::parse("relay-appt-1").unwrap())
        .await
        .unwrap()
        .expect("the relayed tour is mirrored");
    assert_eq!(
        mirrored.window.start(),
        tomorrow(17),
        "the new time from updated_fields"
    );
    assert_eq!(
        mirrored.agent.map(|a| a.as_str().to_owned()).as_deref(),
        Some(DEMO_AGENTS[1])
    );
}
