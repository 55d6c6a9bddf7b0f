//! Booking against real components: DynamoDB Local and moto (provisioned from template.yaml) and the ResMan
//! sandbox.

use chrono::{Duration, Utc};
use integration_tests::stack::*;
use integration_tests::*;
use serde_json::json;
use tour_core::app::AppError;
use tour_core::app::booking::book_tour;
use tour_core::domain::TourType;
use tour_core::domain::{ids::BookingId, record::SyncStatus};
use tour_core::ports::Outcome;
use tour_core::ports::ResManError;
use tour_core::ports::{CalendarStore, TourReads, TourWrites};

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
            .all(|b| b.outcome == Outcome::Booked && response(b)["sync_status"] == "synced")
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
    assert_eq!((first.outcome, &first.body), (again.outcome, &again.body));
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

/// Runs the sync worker until the tour's last change is in ResMan (the worker paces its writes per account).
async fn in_resman(stack: &Stack, id: &str) {
    for _ in 0..100 {
        stack.drain(1).await;
        if stack.tour(id).await.sync_status == SyncStatus::Synced {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{id} never reached ResMan");
}

/// Issue 23: with no key, the conversation and the slot are the key, and a cancelled tour gives it up; a key record
/// past its expiry is no record, though DynamoDB's TTL has not deleted it.
#[tokio::test]
async fn a_prospect_who_cancels_and_asks_again_is_booked_and_a_lapsed_key_record_blocks_nothing() {
    let stack = Stack::start().await;
    let c = command(&stack.property, 1, "11:00");
    let first = response(&stack.book(&c, None).await.unwrap())["appointment_id"].clone();
    stack
        .update(first.as_str().unwrap(), json!({"status": "cancelled"}), None)
        .await
        .unwrap();
    // The cancellation reaches ResMan (else ResMan itself would refuse the agent's time).
    in_resman(&stack, first.as_str().unwrap()).await;
    let again = stack.book(&c, None).await.unwrap();
    let second = response(&again)["appointment_id"].clone();
    assert_ne!(second, first, "a new tour, not the cancelled one replayed");
    assert_eq!(
        stack.tour(second.as_str().unwrap()).await.status,
        tour_core::domain::lifecycle::TourStatus::Scheduled
    );
    let retry = stack.book(&c, None).await.unwrap();
    assert_eq!(
        response(&retry)["appointment_id"],
        second,
        "the new tour owns the key now"
    );

    // A keyed request whose record lapsed (its expires_at passed; the item is still there).
    let keyed = command(&stack.property, 2, "13:00");
    let kept = response(&stack.book(&keyed, Some("lapsing-key")).await.unwrap())["appointment_id"].clone();
    stack
        .update(kept.as_str().unwrap(), json!({"status": "cancelled"}), None)
        .await
        .unwrap();
    in_resman(&stack, kept.as_str().unwrap()).await;
    assert_eq!(
        response(&stack.book(&keyed, Some("lapsing-key")).await.unwrap())["appointment_id"],
        kept,
        "within its lifetime, a key keeps its answer"
    );
    let sdk = stack.aws.dynamodb_sdk().await;
    aws_sdk_dynamodb::Client::new(&sdk)
        .update_item()
        .table_name(stack.aws.var("TABLE_NAME"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "IDEM#{}",
                tour_core::domain::fields::idempotency_key_of("lapsing-key").unwrap()
            )),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("IDEM".into()))
        // Only an item that is there: this must not create one.
        .condition_expression("attribute_exists(pk)")
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::N((Utc::now().timestamp() - 1).to_string()),
        )
        .send()
        .await
        .unwrap();
    let fresh = response(&stack.book(&keyed, Some("lapsing-key")).await.unwrap())["appointment_id"].clone();
    assert_ne!(fresh, kept);
}

#[tokio::test]
async fn a_post_applied_but_answered_503_still_leaves_one_appointment() {
    let stack = Stack::start().await;
    stack
        .faults(json!({"applied_then_503_rate": 1.0, "methods": ["PostLeadManagement4_0"], "remaining": 1}))
        .await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    assert_eq!(booked.outcome, Outcome::Booked);
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
    assert_eq!(booked.outcome, Outcome::Pending);
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
                .outcome,
            Outcome::Pending
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
    let day = tour_core::domain::UtcWindow::starting_at(Utc::now(), Duration::days(20)).unwrap();
    assert!(
        stack.store.busy_in(&stack.property.id, day).await.unwrap().is_empty(),
        "no busy time remains"
    );
    // A retry gets the same answer, replayed, without touching ResMan again.
    let posts = stack.posts().await;
    let again = stack.book(&c, None).await.unwrap_err();
    assert!(
        matches!(&again, AppError::ResMan(ResManError::Rejected { description }) if description.contains("blocked by policy")),
        "{again:?}"
    );
    assert_eq!(stack.posts().await, posts);
    // Every agent's 10:00 is free again.
    stack.control(reqwest::Method::DELETE, "/_sandbox/faults", None).await;
    for n in 2..5 {
        assert_eq!(
            stack
                .book(&command(&stack.property, n, "10:00"), None)
                .await
                .unwrap()
                .outcome,
            Outcome::Booked
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

#[tokio::test]
async fn a_booking_whose_queue_message_was_lost_is_requeued_from_the_outbox_once() {
    use tour_core::app::sync::requeue_owed_syncs;
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
    use tour_core::domain::{
        booking::requested_slot,
        lifecycle::TourStatus,
        record::{TourRecord, lock_granules},
    };
    use tour_core::ports::{BookingWrite, NewBooking};
    let stack = Stack::start().await;
    let c = command(&stack.property, 1, "10:00");
    let key = c.idempotency_key(Some("crash-key")).unwrap();
    // The first call held the slot, then died before ResMan was asked or the answer saved.
    let window = requested_slot(&stack.property, &c, Utc::now()).unwrap();
    let holder = tour_core::domain::record::Holder::Agent(tour_core::domain::AgentId::parse(DEMO_AGENTS[0]).unwrap());
    let tour = TourRecord {
        booking_id: BookingId::from_uuid(uuid::Uuid::new_v4()),
        conversation_id: c.conversation_id.clone(),
        property_id: stack.property.id.clone(),
        holder: holder.clone(),
        start: window.start(),
        end: window.end(),
        sync_status: SyncStatus::Pending,
        prospect_name: "Prospect Number1".into(),
        prospect_email: "prospect1@example.com".into(),
        prospect_phone: "+15125550001".into(),
        idempotency_key: key,
        created_at: Utc::now(),
        resman_version: 0,
        ..tour_core::domain::update::tests::tour(TourStatus::Scheduled)
    };
    let booking = NewBooking {
        messages: Vec::new(),
        reminders: Vec::new(),
        lock_granules: lock_granules(&stack.property, &holder, &window),
        tour: tour.clone(),
        fingerprint: c.fingerprint(),
        hold: None,
        replaces: None,
        consent: None,
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
    assert_eq!(recovered.outcome, Outcome::Pending);
    assert_eq!(response(&recovered)["appointment_id"], tour.booking_id.as_str());
    assert_eq!(response(&recovered)["sync_status"], "pending");
}

#[tokio::test]
async fn a_booked_tour_reads_back_by_our_id_and_by_resmans_with_its_history() {
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let answer = booked.response.unwrap();
    let ours = tour_core::app::booking::tour_view(
        &stack.store,
        &stack.store,
        &stack.store,
        &stack.store,
        &answer.tour.appointment_id,
    )
    .await
    .unwrap();
    let resman_id = answer.tour.resman_appointment_id.clone().expect("synced");
    let theirs = tour_core::app::booking::tour_view(&stack.store, &stack.store, &stack.store, &stack.store, &resman_id)
        .await
        .unwrap();
    assert_eq!(ours, theirs, "ResMan's id leads to the same tour");
    assert_eq!(ours.tour, answer);
    assert_eq!((ours.version, ours.history.len()), (1, 1));
    assert_eq!(ours.history[0].datetime, answer.tour.confirmed_datetime);
}
