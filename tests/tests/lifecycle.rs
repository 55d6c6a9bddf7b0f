//! A tour's life against real components (DynamoDB Local, moto, the ResMan sandbox): the chatbot moves and cancels
//! tours, staff confirm and move them in ResMan, and both sides end up agreeing.

use chrono::{DateTime, Utc};
use integration_tests::stack::*;
use integration_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tour_core::app::AppError;
use tour_core::app::availability::{AvailabilityDeps, AvailabilityQuery, availability};
use tour_core::domain::lifecycle::ChangeSource;
use tour_core::domain::{ProspectId, UtcWindow};
use tour_core::domain::{ids::BookingId, lifecycle::TourStatus, record::SyncStatus};
use tour_core::ports::Outcome;
use tour_core::ports::{CalendarStore, ResManGateway};

/// Books prospect `n` at `time` on the stack's bookable date: our id and ResMan's.
async fn booked(stack: &Stack, n: usize, time: &str) -> (String, String) {
    let answer = stack.book(&command(&stack.property, n, time), None).await.unwrap();
    assert_eq!(answer.outcome, Outcome::Booked, "{}", answer.body);
    let body = response(&answer);
    (
        body["appointment_id"].as_str().unwrap().to_owned(),
        body["resman_appointment_id"].as_str().unwrap().to_owned(),
    )
}

/// The stack's bookable date at a local time, as the chatbot writes a new time.
fn local(stack: &Stack, time: &str) -> String {
    format!("{}T{time}", bookable_date(&stack.property))
}

/// The busy time of the bookable date, as (agent, start) pairs.
async fn busy_of_the_day(stack: &Stack) -> Vec<(Option<String>, DateTime<Utc>)> {
    let date = bookable_date(&stack.property);
    let start =
        tour_core::domain::slots::resolve_local(stack.property.time_zone, date.and_hms_opt(0, 0, 0).unwrap()).unwrap();
    let day = UtcWindow::starting_at(start, chrono::Duration::days(1)).unwrap();
    let mut busy: Vec<_> = stack
        .store
        .busy_in(&stack.property.id, day)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.agent.map(|a| a.to_string()), b.window.start()))
        .collect();
    busy.sort();
    busy
}

fn sandbox_appointment<'a>(appointments: &'a [Value], id: &str) -> &'a Value {
    appointments
        .iter()
        .find(|a| a["appointment_id"] == id)
        .unwrap_or_else(|| panic!("no appointment {id} in the sandbox"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_reschedules_racing_for_one_slot_leave_one_winner_and_both_old_slots_right() {
    let stack = Stack::start().await;
    let (x, _) = booked(&stack, 1, "10:00").await;
    let (y, _) = booked(&stack, 2, "11:00").await;
    // Two of the three agents are taken at 14:00: one seat is left for the two moves.
    booked(&stack, 3, "14:00").await;
    booked(&stack, 4, "14:00").await;
    let (old_x, old_y) = (stack.tour(&x).await, stack.tour(&y).await);

    let to_two = json!({ "rescheduled_datetime": local(&stack, "14:00") });
    let (a, b) = tokio::join!(stack.update(&x, to_two.clone(), None), stack.update(&y, to_two, None));
    let (winner, loser, lost) = match (a, b) {
        (Ok(_), Err(lost)) => (&old_x, &old_y, lost),
        (Err(lost), Ok(_)) => (&old_y, &old_x, lost),
        other => panic!("exactly one move must win: {other:?}"),
    };
    assert!(
        matches!(&lost, AppError::SlotTaken { alternatives, field } if *field == "rescheduled_datetime" && !alternatives.is_empty()),
        "{lost:?}"
    );
    let won = stack.tour(winner.booking_id.as_str()).await;
    assert_eq!((won.version, won.status), (2, TourStatus::Scheduled));
    assert_ne!(won.start, winner.start);
    assert_eq!(
        stack.tour(loser.booking_id.as_str()).await,
        *loser,
        "the loser is untouched"
    );

    let busy = busy_of_the_day(&stack).await;
    assert!(
        !busy.contains(&(winner.holder.agent().map(|a| a.to_string()), winner.start)),
        "the winner's old time is free again: {busy:?}"
    );
    assert!(
        busy.contains(&(loser.holder.agent().map(|a| a.to_string()), loser.start)),
        "the loser keeps its time"
    );
    assert_eq!(
        busy.iter().filter(|(_, start)| *start == won.start).count(),
        3,
        "14:00 is full"
    );

    // ResMan follows: the winner's appointment moves, and nobody is double-booked there.
    stack.drain(5).await;
    let won = stack.tour(winner.booking_id.as_str()).await;
    assert_eq!((won.sync_status, won.resman_version), (SyncStatus::Synced, 2));
    let appointments = stack.appointments().await;
    let moved = sandbox_appointment(&appointments, won.resman_appointment_id.as_ref().unwrap().as_str());
    assert_eq!(
        moved["scheduled_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        won.start
    );
    assert_no_overlap(&appointments);
}

/// Whether availability on the stack's bookable date offers 10:00 for an in-person tour.
async fn offers_ten(stack: &Stack) -> bool {
    let deps = AvailabilityDeps {
        calendar: &stack.store,
        cache: &stack.store,
        cache_ttl: chrono::Duration::seconds(60),
        reach: &tour_core::domain::access::EVERY_ACCOUNT,
    };
    let date = bookable_date(&stack.property).to_string();
    let query = AvailabilityQuery::parse(Some(DEMO_PROPERTY), Some(&date), Some("in_person")).unwrap();
    let (answer, _) = availability(&deps, &query, Utc::now()).await.unwrap();
    answer.available_slots.iter().any(|s| s.time.contains("T10:00:00"))
}

/// The prospect's events in ResMan: no `Cancel` ever (it would mark the prospect lost), and the cancellation notes.
async fn cancellation_notes(stack: &Stack, tour: &tour_core::domain::record::TourRecord) -> Vec<String> {
    let prospect = ProspectId::parse(tour.resman_prospect_id.as_deref().unwrap()).unwrap();
    let found = stack
        .resman
        .find_prospects(
            &stack.property.site(),
            &tour_core::domain::resman::ProspectLookup::Id(prospect),
        )
        .await
        .unwrap();
    let events: Vec<_> = found.iter().flat_map(|p| &p.events).collect();
    assert!(
        events.iter().all(|e| !e.event_type.eq_ignore_ascii_case("Cancel")),
        "{events:?}"
    );
    events
        .iter()
        .filter_map(|e| e.comments.clone())
        .filter(|c| c.contains("#cancelled]"))
        .collect()
}

#[tokio::test]
async fn a_cancellation_writes_resman_the_note_alone_and_keeps_the_agent_busy_until_staff_cancel_it_there() {
    let stack = Stack::start().await;
    let mut ours = Vec::new();
    for n in 1..=3 {
        ours.push(booked(&stack, n, "10:00").await);
    }
    assert!(!offers_ten(&stack).await, "every agent has 10:00");

    let (cancelled, resman_id) = &ours[0];
    let view = stack
        .update(cancelled, json!({"status": "cancelled"}), None)
        .await
        .unwrap();
    assert_eq!(
        (view["status"].as_str(), view["sync_status"].as_str()),
        (Some("cancelled"), Some("pending"))
    );
    // ResMan's calendar still shows the appointment: its agent is not offered at 10:00 to a new prospect.
    assert!(
        !offers_ten(&stack).await,
        "the agent's time stays busy while ResMan shows it"
    );

    // ResMan gets the contract's note alone (once, even after a redelivery): the appointment is not touched and
    // the prospect stays active.
    stack.drain(5).await;
    stack.queue_again(&BookingId::parse(cancelled).unwrap()).await;
    stack.drain(5).await;
    let appointments = stack.appointments().await;
    let appointment = sandbox_appointment(&appointments, resman_id);
    assert_eq!(appointment["status"], "Scheduled", "no cancel word on the appointment");
    assert_ne!(appointment["prospect_status"], "Lost", "the prospect must not be lost");
    let tour = stack.tour(cancelled).await;
    assert_eq!((tour.sync_status, tour.resman_version), (SyncStatus::Synced, 2));
    let notes = cancellation_notes(&stack, &tour).await;
    assert_eq!(notes.len(), 1, "one note, even after a redelivery: {notes:?}");
    assert!(notes[0].contains("please mark it cancelled"), "{notes:?}");

    // The poller reads the appointment as we left it: nothing changes, and the time stays busy.
    stack.poll().await;
    assert!(!offers_ten(&stack).await);
    let tour = stack.tour(cancelled).await;
    assert_eq!((tour.status, tour.version), (TourStatus::Cancelled, 2), "{tour:?}");

    // Staff cancel it in ResMan: the next poll frees the agent, and a new prospect takes the time.
    stack.staff_change(resman_id, json!({"status": "Cancelled"})).await;
    stack.poll().await;
    assert!(offers_ten(&stack).await, "ResMan freed the agent, so do we");
    let answer = stack.book(&command(&stack.property, 9, "10:00"), None).await.unwrap();
    assert_eq!(answer.outcome, Outcome::Booked, "a new prospect takes the time");
    stack.drain(5).await;
    let tour = stack.tour(cancelled).await;
    assert_eq!(tour.status, TourStatus::Cancelled);
    assert!(tour.disagreement.is_none(), "{tour:?}");
    assert_no_overlap(&stack.appointments().await);
}

#[tokio::test]
async fn with_the_cancel_word_on_a_cancellation_frees_the_slot_at_once_and_marks_the_appointment_cancelled() {
    let stack = Stack::start().await;
    let mut file = stack.property.to_file().clone();
    file.resman_cancel_word = true;
    let property = tour_core::domain::property::Property::from_file(file).unwrap();
    tour_core::ports::PropertyStore::save_property(&stack.store, &property)
        .await
        .unwrap();
    let mut ours = Vec::new();
    for n in 1..=3 {
        ours.push(booked(&stack, n, "10:00").await);
    }
    assert!(!offers_ten(&stack).await, "every agent has 10:00");

    let (cancelled, resman_id) = &ours[0];
    stack
        .update(cancelled, json!({"status": "cancelled"}), None)
        .await
        .unwrap();
    assert!(
        offers_ten(&stack).await,
        "the next availability call offers 10:00 again"
    );

    // ResMan: the appointment's reason is Cancelled (the agent is free there too, so a new prospect can take the
    // time), a note says why, the prospect stays active, and a redelivered message writes no second note.
    stack.drain(5).await;
    let answer = stack.book(&command(&stack.property, 9, "10:00"), None).await.unwrap();
    assert_eq!(answer.outcome, Outcome::Booked, "a new prospect takes the time");
    stack.queue_again(&BookingId::parse(cancelled).unwrap()).await;
    stack.drain(5).await;
    let appointments = stack.appointments().await;
    let appointment = sandbox_appointment(&appointments, resman_id);
    assert_eq!(appointment["status"], "Cancelled");
    assert_ne!(appointment["prospect_status"], "Lost", "the prospect must not be lost");
    let tour = stack.tour(cancelled).await;
    assert_eq!((tour.sync_status, tour.resman_version), (SyncStatus::Synced, 2));
    let notes = cancellation_notes(&stack, &tour).await;
    assert_eq!(notes.len(), 1, "one note, even after a redelivery: {notes:?}");
    assert_no_overlap(&appointments);
}

/// Books a tour, lets it reach ResMan, and has a leasing agent confirm it there.
async fn confirmed_by_staff(stack: &Stack) -> (String, String) {
    let (ours, theirs) = booked(stack, 1, "10:00").await;
    stack.drain(3).await;
    let change = stack.staff_change(&theirs, json!({"status": "Confirmed"})).await;
    assert_eq!(change["updated_fields"], json!(["status"]));
    (ours, theirs)
}

#[tokio::test]
async fn a_staff_confirmation_reaches_the_tour_once_by_webhook_or_by_poller_with_the_same_record() {
    // With the webhook on.
    let hooked = Stack::start().await;
    hooked.webhook_on().await;
    let (id, _) = confirmed_by_staff(&hooked).await;
    let deliveries = hooked.webhooks_settled().await;
    assert_eq!(deliveries.len(), 1);
    let by_webhook = hooked.tour(&id).await;
    assert_eq!((by_webhook.status, by_webhook.version), (TourStatus::Confirmed, 2));
    assert_eq!(by_webhook.history.last().unwrap().source, ChangeSource::ResmanWebhook);
    let report = hooked.poll().await;
    assert_eq!(
        report.tours_changed, 0,
        "the poller reads the same change and applies nothing"
    );
    assert_eq!(hooked.tour(&id).await.version, 2, "applied once");

    // With the webhook off: the poller alone.
    let polled = Stack::start().await;
    let (id, _) = confirmed_by_staff(&polled).await;
    assert_eq!(
        polled.tour(&id).await.status,
        TourStatus::Scheduled,
        "nothing told us yet"
    );
    assert_eq!(polled.poll().await.tours_changed, 1);
    assert_eq!(
        polled.poll().await.tours_changed,
        0,
        "a second read of the same change applies nothing"
    );
    let by_poller = polled.tour(&id).await;
    assert_eq!(by_poller.history.last().unwrap().source, ChangeSource::ResmanPoll);

    let same = |t: &tour_core::domain::record::TourRecord| (t.status, t.version, t.holder.clone(), t.sync_status);
    assert_eq!(same(&by_webhook), same(&by_poller));
    // The conversation's view shows the same record.
    let conversation =
        tour_core::app::booking::conversation_tours(&polled.store, &polled.store, &by_poller.conversation_id)
            .await
            .unwrap();
    assert_eq!(conversation.tours[0].tour.status, TourStatus::Confirmed);
}

#[tokio::test]
async fn a_staff_move_moves_our_tour_and_frees_its_old_time_for_good() {
    let stack = Stack::start().await;
    stack.webhook_on().await;
    let (id, theirs) = booked(&stack, 1, "10:00").await;
    stack.drain(3).await;
    let before = stack.tour(&id).await;
    let new_start = before.start + chrono::Duration::hours(5);
    stack
        .staff_change(&theirs, json!({"scheduled_at": new_start.to_rfc3339()}))
        .await;
    stack.webhooks_settled().await;
    stack.poll().await;
    let after = stack.tour(&id).await;
    assert_eq!(
        (after.start, after.version, after.holder.clone()),
        (new_start, 2, before.holder.clone())
    );
    let busy = busy_of_the_day(&stack).await;
    let agent = before.holder.agent().map(|a| a.to_string());
    assert!(
        !busy.contains(&(agent.clone(), before.start)),
        "the old time is free: {busy:?}"
    );
    assert_eq!(busy, vec![(agent, new_start)], "only the new time is held, once");
}

#[tokio::test]
async fn out_of_order_and_replayed_notices_end_in_the_right_state() {
    let stack = Stack::start().await;
    let (id, theirs) = booked(&stack, 1, "10:00").await;
    stack.drain(3).await;
    let relays = relays_of(WEBHOOK_SECRET);
    let deps = tour_core::app::webhook::WebhookDeps {
        inbox: &stack.store,
        feed: feed(&stack.store, &stack.queue),
        relays: &relays,
    };
    let now = Utc::now();
    let notice = |event: &str, status: &str, seconds: i64| {
        json!({
            "event_id": event, "appointment_id": theirs, "status": status,
            "updated_fields": {"status": status}, "staff_member": null,
            "timestamp": (now + chrono::Duration::seconds(seconds)).to_rfc3339()
        })
        .to_string()
        .into_bytes()
    };
    let send = async |body: Vec<u8>| {
        let signature = tour_core::domain::signature::sign(WEBHOOK_SECRET.as_bytes(), now.timestamp(), &body);
        tour_core::app::webhook::receive_change_notice(&deps, Some(&signature), &body, now)
            .await
            .unwrap()
    };
    // Staff confirmed, then completed; the completion arrives first, and then again.
    let completed = notice("n-completed", "Completed", 20);
    send(completed.clone()).await;
    send(notice("n-confirmed", "Confirmed", 10)).await;
    assert_eq!(send(completed).await, tour_core::app::webhook::NoticeOutcome::Duplicate);
    let tour = stack.tour(&id).await;
    assert_eq!((tour.status, tour.version), (TourStatus::Completed, 2));
    // A word ResMan uses that we do not know is kept verbatim; the status stays.
    send(notice("n-odd", "Rained Out", 30)).await;
    let view = stack.view(&id).await;
    assert_eq!(
        (view["status"].as_str(), view["resman_status"].as_str()),
        (Some("completed"), Some("Rained Out"))
    );
}

/// What a callback receiver got: each request's signature header and body.
type Received = Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A callback receiver that records what it gets, answering `status`.
async fn receiver(status: u16) -> (String, Received) {
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callbacks", listener.local_addr().unwrap());
    let kept = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/callbacks",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                let signature = headers
                    .get("x-domiq-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                kept.lock().unwrap().push((signature, body.to_vec()));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (url, got)
}

#[tokio::test]
async fn the_briefs_webhook_as_written_confirms_the_tour_and_its_staff_notes_reach_the_conversation_and_the_chatbot() {
    let (url, got) = receiver(200).await;
    let stack = Stack::start_with_callbacks(Some(&url)).await;
    let (id, theirs) = booked(&stack, 1, "10:00").await;
    stack.drain(3).await;
    // The brief's TourUpdateWebhook, to the letter: no event_id, the new values in updated_fields.
    let notice = json!({
        "appointment_id": theirs,
        "status": "Confirmed",
        "updated_fields": {"status": "Confirmed", "staff_notes": "Wants to see the pool first", "unit": "B12"},
        "staff_member": stack.property.agents[0].name,
        "timestamp": Utc::now().to_rfc3339(),
    });
    let outcome = stack.notice(&notice).await.expect("the brief's shape is accepted");
    assert!(
        matches!(outcome, tour_core::app::webhook::NoticeOutcome::Accepted(..)),
        "{outcome:?}"
    );
    // A relay's retry of the same notice is recognised by its content.
    assert_eq!(
        stack.notice(&notice).await.unwrap(),
        tour_core::app::webhook::NoticeOutcome::Duplicate
    );
    let tour = stack.tour(&id).await;
    assert_eq!(
        (tour.status, tour.staff_notes.as_deref(), tour.version),
        (TourStatus::Confirmed, Some("Wants to see the pool first"), 2),
        "one change: the status and the notes together"
    );
    let entry = tour.history.last().unwrap();
    assert_eq!(entry.source, ChangeSource::ResmanWebhook);
    assert_eq!(
        entry.received.as_ref().unwrap()["unit"],
        "B12",
        "the other fields, as received"
    );
    // The conversation's view and the chatbot's callback carry the notes.
    let conversation = tour_core::app::booking::conversation_tours(
        &stack.store,
        &stack.store,
        &tour_core::domain::ConversationId::parse(tour.conversation_id.as_str()).unwrap(),
    )
    .await
    .unwrap();
    let listed = serde_json::to_value(&conversation).unwrap();
    assert_eq!(listed["tours"][0]["staff_notes"], "Wants to see the pool first");
    stack.drain(3).await;
    let got = got.lock().unwrap().clone();
    let callback: Value = serde_json::from_slice(&got.last().expect("the chatbot was called back").1).unwrap();
    assert_eq!(
        (callback["source"].as_str(), callback["tour"]["staff_notes"].as_str()),
        (Some("resman_webhook"), Some("Wants to see the pool first"))
    );
}

#[tokio::test]
async fn the_chatbot_hears_of_each_change_once_signed_and_a_receiver_that_is_down_delays_nothing() {
    let (url, got) = receiver(200).await;
    let stack = Stack::start_with_callbacks(Some(&url)).await;
    stack.webhook_on().await;
    let (id, theirs) = booked(&stack, 1, "10:00").await;
    stack.drain(3).await;
    stack.update(&id, json!({"status": "confirmed"}), None).await.unwrap();
    stack.drain(3).await;
    let later = stack.tour(&id).await.start + chrono::Duration::hours(4);
    stack
        .staff_change(&theirs, json!({"scheduled_at": later.to_rfc3339()}))
        .await;
    stack.webhooks_settled().await;
    // The staff change queues its own callback: nothing else has to wake the sync worker.
    stack.drain(3).await;

    let got = got.lock().unwrap().clone();
    let bodies: Vec<Value> = got.iter().map(|(_, b)| serde_json::from_slice(b).unwrap()).collect();
    let events: Vec<&str> = bodies.iter().map(|b| b["event_id"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [format!("{id}:v2"), format!("{id}:v3")],
        "each change once, in order"
    );
    for (signature, body) in &got {
        tour_core::domain::signature::verify(CALLBACK_SECRET.as_bytes(), Some(signature), body, Utc::now())
            .expect("a valid signature");
    }
    assert_eq!(bodies[0]["source"], "chatbot");
    assert_eq!(
        (bodies[1]["source"].as_str(), bodies[1]["tour"]["status"].as_str()),
        (Some("resman_webhook"), Some("confirmed")),
        "moved by staff, still confirmed as ResMan shows it"
    );

    // DomIQ down: the update answers at once, ResMan is written, and only the callback waits for its retry.
    let dead = Stack::start_with_callbacks(Some(&format!("http://127.0.0.1:{}/callbacks", free_port()))).await;
    let (id, theirs) = booked(&dead, 1, "10:00").await;
    dead.drain(3).await;
    let view = tokio::time::timeout(
        StdDuration::from_secs(2),
        dead.update(&id, json!({"status": "confirmed"}), None),
    )
    .await
    .expect("the update never waits on DomIQ")
    .unwrap();
    assert_eq!(view["status"], "confirmed");
    dead.deliver_once().await;
    let tour = dead.tour(&id).await;
    assert_eq!(
        (tour.resman_version, tour.callback_version),
        (2, 1),
        "ResMan has it; the callback is owed"
    );
    let appointments = dead.appointments().await;
    assert_eq!(sandbox_appointment(&appointments, &theirs)["status"], "Confirmed");
}

#[tokio::test]
async fn a_staff_update_of_a_tour_not_ours_still_feeds_the_mirror() {
    // Kept from before this issue: an appointment that is not one of our tours changes busy time only.
    let stack = Stack::start().await;
    stack.webhook_on().await;
    let date = bookable_date(&stack.property);
    let at =
        tour_core::domain::slots::resolve_local(stack.property.time_zone, date.and_hms_opt(15, 0, 0).unwrap()).unwrap();
    let made = stack
        .control(
            reqwest::Method::POST,
            "/_sandbox/appointments",
            Some(json!({
                "property_id": DEMO_PROPERTY, "agent_id": DEMO_AGENTS[0], "scheduled_at": at.to_rfc3339(),
                "duration_minutes": 30,
                "prospect": {"first_name": "Walk", "last_name": "In", "email": "walkin@example.com"}
            })),
        )
        .await;
    stack.poll().await;
    let appointment = made["appointment_id"].as_str().unwrap().to_owned();
    assert_eq!(busy_of_the_day(&stack).await.len(), 1, "the walk-in is busy time");
    stack.staff_change(&appointment, json!({"status": "Cancelled"})).await;
    let deliveries = stack.webhooks_settled().await;
    assert!(
        busy_of_the_day(&stack).await.is_empty(),
        "the cancelled walk-in frees the agent: {deliveries:?}"
    );
}

#[tokio::test]
async fn a_move_resman_refuses_because_staff_took_the_time_ends_where_resman_has_it() {
    let stack = Stack::start().await;
    let (id, theirs) = booked(&stack, 1, "10:00").await;
    stack.drain(3).await;
    let before = stack.tour(&id).await;
    let agent = before.holder.agent().unwrap().to_string();
    // Staff give the same agent 14:00 at the front desk; we have not read it yet.
    let two = tour_core::domain::slots::resolve_local(
        stack.property.time_zone,
        bookable_date(&stack.property).and_hms_opt(14, 0, 0).unwrap(),
    )
    .unwrap();
    stack
        .control(
            reqwest::Method::POST,
            "/_sandbox/appointments",
            Some(json!({
                "property_id": DEMO_PROPERTY, "agent_id": agent, "scheduled_at": two.to_rfc3339(),
                "duration_minutes": 45,
                "prospect": {"first_name": "Walk", "last_name": "In", "email": "walkin@example.com"}
            })),
        )
        .await;
    let moved = stack
        .update(&id, json!({"rescheduled_datetime": local(&stack, "14:00")}), None)
        .await
        .unwrap();
    assert_eq!(
        moved["staff_member_id"].as_str(),
        Some(agent.as_str()),
        "its own agent, free as far as we knew"
    );
    stack.drain(5).await;
    let after = stack.tour(&id).await;
    assert_eq!(
        (after.start, after.version),
        (before.start, 3),
        "back where ResMan has it, as a new version"
    );
    assert_eq!(after.history.last().unwrap().source, ChangeSource::ResmanPoll);
    assert!(
        after.last_error.as_deref().unwrap_or_default().contains("refused"),
        "{after:?}"
    );
    let appointments = stack.appointments().await;
    let appointment = sandbox_appointment(&appointments, &theirs);
    assert_eq!(
        appointment["scheduled_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        before.start
    );
    assert_eq!(
        busy_of_the_day(&stack)
            .await
            .iter()
            .filter(|(_, s)| *s == before.start)
            .count(),
        1
    );
}

/// The cross of two writers, step by step: the chatbot confirms a tour (owed to ResMan), a leasing agent marks it a
/// no-show in ResMan before our write lands, then our worker runs, and the agent's no-show reaches us (by the
/// worker's own read, or first by the webhook). ResMan keeps the no-show, our tour ends a no-show with the chatbot's
/// confirmation on record as overridden, and no later poll finds the two apart.
#[tokio::test]
async fn a_staff_no_show_crossing_the_chatbots_confirmation_is_never_written_over() {
    for webhook_first in [false, true] {
        let stack = Stack::start().await;
        if webhook_first {
            stack.webhook_on().await;
        }
        let (id, theirs) = booked(&stack, 1, "10:00").await;
        stack.update(&id, json!({"status": "confirmed"}), None).await.unwrap();
        stack.staff_change(&theirs, json!({"status": "No Show"})).await;
        if webhook_first {
            stack.webhooks_settled().await;
        }
        stack.drain(3).await;

        let appointments = stack.appointments().await;
        let appointment = appointments
            .iter()
            .find(|a| a["appointment_id"] == theirs.as_str())
            .unwrap();
        assert_eq!(
            appointment["status"], "No Show",
            "the agent's no-show stands in ResMan (webhook first: {webhook_first})"
        );
        let tour = stack.tour(&id).await;
        assert_eq!(tour.status, TourStatus::NoShow);
        assert!(!tour.owes_resman());
        let overrode = tour
            .history
            .iter()
            .find_map(|c| c.overrode.clone())
            .expect("the chatbot's confirmation is on record as overridden");
        assert_eq!(
            (overrode.source, overrode.status),
            (ChangeSource::Chatbot, TourStatus::Confirmed)
        );
        for _ in 0..2 {
            let report = stack.poll().await;
            assert_eq!(report.tours_changed, 0, "the two agree: {report:?}");
        }
        assert_eq!(stack.tour(&id).await.version, tour.version);
    }
}
