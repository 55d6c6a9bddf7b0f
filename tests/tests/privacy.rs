//! Prospects' personal data on DynamoDB Local: kept apart from the tour, gone by itself after the retention
//! (read as gone as soon as it expires, whatever TTL's lag), and erased at once on request, with every tour kept.

use chrono::Duration;
use integration_tests::stack::*;
use tour_aws::dynamo::DynamoStore;
use tour_core::app::privacy::erase_prospect;
use tour_core::domain::BookingId;
use tour_core::ports::TourReads;

async fn item(
    store: &DynamoStore,
    id: &BookingId,
    sk: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("TOUR#{id}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test]
async fn personal_data_lives_beside_the_tour_until_its_retention_and_an_erasure_removes_it_leaving_every_tour() {
    let stack = Stack::start().await;
    let mut ids = Vec::new();
    for (n, time) in [(1, "10:00"), (1, "14:00"), (2, "11:00")] {
        let booked = stack.book(&command(&stack.property, n, time), None).await.unwrap();
        ids.push(BookingId::parse(response(&booked)["appointment_id"].as_str().unwrap()).unwrap());
    }
    let tour = stack.store.tour(&ids[0]).await.unwrap().unwrap();
    assert_eq!(tour.prospect_email, "prospect1@example.com", "read back with the tour");
    let record = item(&stack.store, &ids[0], "TOUR").await.unwrap();
    for field in [
        "prospect_name",
        "prospect_email",
        "prospect_phone",
        "unit_preferences",
        "special_requests",
    ] {
        assert!(!record.contains_key(field), "{field} is not in the tour record");
    }
    let person = item(&stack.store, &ids[0], "PERSON").await.unwrap();
    let expires: i64 = person["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(
        expires,
        (tour.end + Duration::days(30)).timestamp(),
        "30 days after the tour by default"
    );

    // A data-subject request for prospect 1: both of their tours lose the personal data, at once; none is lost.
    let erased = erase_prospect(&stack.store, " Prospect1@Example.com ").await.unwrap();
    assert_eq!(
        erased.iter().collect::<std::collections::BTreeSet<_>>(),
        ids[..2].iter().collect(),
        "both of prospect 1's tours, by the address in any case"
    );
    for id in &ids[..2] {
        let tour = stack.store.tour(id).await.unwrap().expect("the tour stays");
        assert_eq!(
            (
                tour.prospect_name.as_str(),
                tour.prospect_email.as_str(),
                tour.prospect_phone.as_str()
            ),
            ("", "", "")
        );
        assert_eq!(tour.unit_preferences, None);
        assert!(item(&stack.store, id, "PERSON").await.is_none());
    }
    let untouched = stack.store.tour(&ids[2]).await.unwrap().unwrap();
    assert_eq!(untouched.prospect_email, "prospect2@example.com");
    let conversation = command(&stack.property, 1, "10:00").conversation_id;
    assert_eq!(
        stack.store.conversation_tours(&conversation).await.unwrap().len(),
        2,
        "the counts stay"
    );
    assert!(
        erase_prospect(&stack.store, "prospect1@example.com")
            .await
            .unwrap()
            .is_empty(),
        "nothing left"
    );
    assert!(erase_prospect(&stack.store, "not an address").await.is_err());
}

#[tokio::test]
async fn personal_data_past_its_retention_reads_as_removed_before_ttl_deletes_it() {
    let stack = Stack::start().await;
    // A retention that already ended for a tour tomorrow: as a tour long past would be.
    let store = stack.store.clone().with_personal_data_retention(Duration::days(-10));
    let deps = integration_tests::booking_deps(
        &store,
        &stack.resman,
        &stack.queue,
        std::time::Duration::from_millis(20),
    );
    let booked = tour_core::app::booking::book_tour(
        &deps,
        &command(&stack.property, 3, "10:00"),
        None,
        BookingId::from_uuid(uuid::Uuid::new_v4()),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let id = BookingId::parse(response(&booked)["appointment_id"].as_str().unwrap()).unwrap();
    // DynamoDB Local runs TTL too, at moments of its own: the expired item may be gone already. Put it back as it
    // was written (past its expiry) and read the tour at once, so the read meets an expired item TTL has not removed.
    use aws_sdk_dynamodb::types::AttributeValue;
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut met_expired = false;
    for _ in 0..5 {
        store
            .client()
            .put_item()
            .table_name(store.table())
            .item("pk", s(&format!("TOUR#{id}")))
            .item("sk", s("PERSON"))
            .item("prospect_name", s("Prospect Number3"))
            .item("prospect_email", s("prospect3@example.com"))
            .item("prospect_phone", s("+15125550003"))
            .item(
                "expires_at",
                AttributeValue::N((chrono::Utc::now() - Duration::days(9)).timestamp().to_string()),
            )
            .send()
            .await
            .unwrap();
        let tour = store.tour(&id).await.unwrap().unwrap();
        if item(&store, &id, "PERSON").await.is_some() {
            assert_eq!(tour.prospect_email, "", "expired personal data is never read");
            assert_eq!(tour.prospect_name, "");
            met_expired = true;
            break;
        }
    }
    assert!(
        met_expired,
        "the read never met the expired item (TTL removed it every time)"
    );
}

/// Every item of the table and every message waiting in the queues and their dead-letter queues, as text (messages
/// are read without being consumed: they stay visible).
async fn everything(stack: &Stack) -> String {
    let mut all = String::new();
    let mut start = None;
    loop {
        let page = stack
            .store
            .client()
            .scan()
            .table_name(stack.store.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        all.push_str(&format!("{:?}", page.items()));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    for queue in ["SYNC_QUEUE_URL", "SYNC_DLQ_URL", "NOTIFY_QUEUE_URL", "NOTIFY_DLQ_URL"] {
        let got = stack
            .sqs
            .receive_message()
            .queue_url(stack.aws.var(queue))
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        for message in got.messages() {
            all.push_str(message.body().unwrap_or_default());
        }
    }
    all
}

/// Issue 22: after an erasure, nothing holds the prospect's name, e-mail or phone: not the tour or its analytics
/// copies, not the staff notes, not a saved answer, not a queued or dead-lettered message.
#[tokio::test]
async fn after_an_erasure_no_item_and_no_queued_message_holds_the_prospects_name_email_or_phone() {
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 7, "10:00"), None).await.unwrap();
    let id = response(&booked)["appointment_id"].as_str().unwrap().to_owned();
    let tour = stack.tour(&id).await;
    let (name, email, phone) = (
        tour.prospect_name.clone(),
        tour.prospect_email.clone(),
        tour.prospect_phone.clone(),
    );
    // Staff write the prospect's name and number in the notes, through a keyed change: its answer is saved.
    let notes = format!("{name} called back from {phone}");
    let note_it = async || {
        stack
            .update(
                &id,
                serde_json::json!({"staff_notes": notes, "status": "confirmed"}),
                Some("erase-notes-1"),
            )
            .await
            .unwrap()
    };
    note_it().await;
    // ResMan's notice sends the number again among its other fields, kept in the tour's history as received.
    let theirs = tour
        .resman_appointment_id
        .as_ref()
        .expect("booked in ResMan")
        .to_string();
    let callback = format!("call {phone} after 5");
    stack
        .notice(&serde_json::json!({
            "appointment_id": theirs, "status": "Confirmed", "timestamp": chrono::Utc::now().to_rfc3339(),
            "updated_fields": {"status": "Confirmed", "staff_notes": format!("{notes}, twice"), "callback": callback},
        }))
        .await
        .unwrap();
    assert_eq!(
        stack.tour(&id).await.history.last().unwrap().received.as_ref().unwrap()["callback"],
        callback.as_str()
    );
    // The prospect texts a question with their name in it: kept with the personal data.
    let texted = format!("this is {name}, is parking free?");
    {
        use tour_core::ports::{ChangeExtras, Locks, TourWrites};
        let now = stack.tour(&id).await;
        let replied = now.replied_by_text(chrono::Utc::now(), &texted);
        let saved = stack
            .store
            .save_change(
                &stack.property,
                &now,
                &replied,
                Locks::Take,
                ChangeExtras::default(),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        assert_eq!(saved, tour_core::ports::ChangeWrite::Saved);
        assert_eq!(stack.tour(&id).await.prospect_reply.unwrap().words, texted);
    }
    // A message of the tour's dead-lettered, as after its last receive.
    let waiting = stack.receive_sync_batch().await;
    let dead = waiting.first().expect("the change's ResMan write is queued");
    stack
        .sqs
        .send_message()
        .queue_url(stack.aws.var("SYNC_DLQ_URL"))
        .message_body(&dead.body)
        .send()
        .await
        .unwrap();
    let before = everything(&stack).await;
    for kept in [&name, &email, &phone, &notes, &callback, &texted] {
        assert!(
            before.contains(kept.as_str()),
            "the search finds {kept} before the erasure"
        );
    }

    let erased = erase_prospect(&stack.store, &email).await.unwrap();
    assert_eq!(erased.len(), 1);
    let after = everything(&stack).await;
    for gone in [&name, &email, &phone, &notes, &callback, &texted] {
        assert!(!after.contains(gone.as_str()), "{gone} is still somewhere: {after}");
    }
    // The tour stays, and the chatbot's replay of its change answers without the notes.
    let replay = note_it().await;
    assert_eq!(replay["status"], "confirmed");
    assert_eq!(replay["staff_notes"], serde_json::Value::Null);
    assert_eq!(stack.tour(&id).await.staff_notes, None);
}

#[tokio::test]
async fn an_erasure_removes_consent_to_texts_and_leaves_only_an_opt_out_marker_so_the_number_is_never_texted() {
    use tour_core::domain::consent::{ConsentState, phone_digest};
    use tour_core::ports::Consents;
    let stack = Stack::start().await;
    let mut with_consent = command(&stack.property, 7, "10:00");
    with_consent.sms_consent = Some(tour_core::domain::consent::SmsConsent {
        words: "Text me about my tour at this number. Reply STOP to stop.".into(),
        agreed_at: chrono::Utc::now() - Duration::minutes(2),
    });
    let phone = with_consent.contact.phone.clone().unwrap();
    stack.book(&with_consent, None).await.unwrap();
    let before = stack.store.consent(&stack.property.id, &phone).await.unwrap();
    assert!(before.state().may_text(), "{before:?}");

    erase_prospect(&stack.store, "prospect7@example.com").await.unwrap();
    let after = stack.store.consent(&stack.property.id, &phone).await.unwrap();
    assert_eq!((after.state(), after.events.len()), (ConsentState::OptedOut, 0));
    // Nothing in the table holds the number, its words or its conversation any more: only the marker's digest.
    let items = stack
        .store
        .client()
        .scan()
        .table_name(stack.store.table())
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let digits = phone.expose().trim_start_matches('+').to_owned();
    for item in &items {
        let text = format!("{item:?}");
        assert!(
            !text.contains(&digits[digits.len() - 7..]),
            "the number stays in {text}"
        );
        assert!(
            !text.contains("Reply STOP to stop"),
            "the consent's words stay in {text}"
        );
        assert!(!text.contains("CONSENT#"), "a consent item stays: {text}");
    }
    let marker = format!("OPTOUT#{}", phone_digest(&phone));
    assert!(
        items
            .iter()
            .any(|i| i.get("pk").and_then(|v| v.as_s().ok()) == Some(&marker)),
        "the opt-out marker stays"
    );
    // A later booking from the same number that agrees again does not undo an erasure.
    let mut again = command(&stack.property, 7, "14:00");
    again.sms_consent = with_consent.sms_consent.clone();
    stack.book(&again, None).await.unwrap();
    let state = stack.store.consent(&stack.property.id, &phone).await.unwrap().state();
    assert_eq!(state, ConsentState::OptedOut);
}
