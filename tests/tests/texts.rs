//! The text adapter (`tour_aws::sms::SmsTexts`, the real `aws-sdk-pinpointsmsvoicev2`) against the stand-in for AWS
//! End User Messaging SMS (`infra/local/sms_sandbox.py`): a text is sent once, transactional, from the configured
//! pool, with its context; an opted-out number, a throttle and a malformed number each come back as what the sender
//! must do about them; and a receipt reaches whoever listens, as the SNS event a Lambda receives.

use integration_tests::SmsSandbox;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tour_aws::sms::SmsTexts;
use tour_core::domain::Phone;
use tour_core::ports::{OutgoingText, TextError, TextSender};

fn text(to: &str, body: &str) -> OutgoingText {
    OutgoingText {
        to: Phone::parse(to).unwrap(),
        body: body.to_owned(),
        context: vec![
            ("booking_id".into(), "tour_0123456789abcdef0123456789abcdef".into()),
            ("kind".into(), "confirmation".into()),
        ],
    }
}

async fn texts(sms: &SmsSandbox) -> Vec<serde_json::Value> {
    sms.control(Method::GET, "/_sandbox/texts", None).await["texts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_text_is_sent_once_from_the_pool_with_its_context_and_each_refusal_says_what_to_do() {
    let sms = SmsSandbox::start(None, None);
    let sender = SmsTexts::new(
        &sms.sdk().await,
        "pool-tour-texts",
        Some("tour-texts".into()),
        Duration::from_secs(5),
    );
    let id = sender
        .send_text(&text(
            "(512) 555-0142",
            "Maple Grove: your tour is booked. Reply C to confirm.",
        ))
        .await
        .unwrap();
    assert!(!id.is_empty());
    let kept = texts(&sms).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    let sent = &kept[0];
    assert_eq!(sent["message_id"].as_str(), Some(id.as_str()), "{sent}");
    let flat = sent.to_string();
    for wanted in [
        "+15125550142",
        "pool-tour-texts",
        "tour-texts",
        "TRANSACTIONAL",
        "confirmation",
        "Reply C to confirm",
    ] {
        assert!(flat.contains(wanted), "{wanted} not in {flat}");
    }

    // The prospect texted STOP to the service: the number is on its opt-out list.
    sms.control(
        Method::POST,
        "/_sandbox/replies",
        Some(json!({"from": "+15125550142", "to": "+17375550100", "body": "STOP"})),
    )
    .await;
    let refused = sender.send_text(&text("+15125550142", "Reminder")).await;
    assert_eq!(refused, Err(TextError::OptedOut));

    // Throttled: worth another try later.
    sms.control(Method::POST, "/_sandbox/faults", Some(json!({"throttle": true})))
        .await;
    let throttled = sender.send_text(&text("+15125550177", "Reminder")).await;
    assert!(matches!(throttled, Err(TextError::Unavailable(_))), "{throttled:?}");
    sms.control(Method::DELETE, "/_sandbox/faults", None).await;

    // Nothing else was kept: one text, however the others ended.
    assert_eq!(texts(&sms).await.len(), 1);
}

#[tokio::test]
async fn a_refusal_never_carries_the_number_and_an_unreachable_service_is_worth_retrying() {
    let sms = SmsSandbox::start(None, None);
    let sender = SmsTexts::new(&sms.sdk().await, "pool-tour-texts", None, Duration::from_secs(5));
    // A body the service will not take (empty): refused for good, naming the service's code only.
    let refused = sender.send_text(&text("+15125550142", "")).await;
    match refused {
        Err(TextError::Refused(why)) => assert!(!why.contains("5550142"), "{why}"),
        other => panic!("{other:?}"),
    }
    drop(sms);
    let gone = sender.send_text(&text("+15125550142", "Hello")).await;
    assert!(matches!(gone, Err(TextError::Unavailable(_))), "{gone:?}");
}
