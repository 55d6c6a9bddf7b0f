//! Slot holds across chat turns, against DynamoDB Local (its conditions decide who holds what) and the ResMan
//! sandbox: a hold survives competing bookings, its token gets the slot, and an unused hold lapses by itself at its
//! instant, with nothing deleting it.

use chrono::{DateTime, Duration, Utc};
use integration_tests::stack::*;
use serde_json::json;
use std::sync::Arc;
use tour_core::app::AppError;
use tour_core::app::availability::{AvailabilityDeps, AvailabilityQuery, availability};
use tour_core::app::booking::{BookingDeps, book_tour};
use tour_core::app::holds::{HoldDeps, HoldView, place_hold};
use tour_core::domain::hold::{HoldCommand, HoldMinutes, HoldsPerHour};
use tour_core::domain::{HoldToken, TourType};
use tour_core::domain::{booking::BookTourCommand, ids::BookingId};
use tour_core::ports::Outcome;
use tour_core::ports::{CalendarStore, HoldStore};

fn hold_command(stack: &Stack, conversation: &str, time: &str, staff: Option<&str>) -> HoldCommand {
    let mut body = json!({
        "conversation_id": conversation,
        "property_id": stack.property.id.as_str(),
        "tour_type": "in_person",
        "date": bookable_date(&stack.property).to_string(),
        "time": time,
    });
    if let Some(staff) = staff {
        body["staff_member_id"] = json!(staff);
    }
    HoldCommand::from_body(body.to_string().as_bytes()).unwrap()
}

async fn hold(stack: &Stack, command: &HoldCommand, now: DateTime<Utc>) -> Result<HoldView, AppError> {
    hold_as("chatbot", stack, command, now).await
}

/// A hold placed by the key named, under the default bound.
async fn hold_as(key: &str, stack: &Stack, command: &HoldCommand, now: DateTime<Utc>) -> Result<HoldView, AppError> {
    let deps = HoldDeps {
        properties: &stack.store,
        calendar: &stack.store,
        holds: &stack.store,
        minutes: HoldMinutes::default(),
        bound: HoldsPerHour::default(),
        key,
    };
    let token = HoldToken::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    place_hold(&deps, command, token, now).await
}

async fn book_at(
    stack: &Stack,
    command: &BookTourCommand,
    now: DateTime<Utc>,
) -> Result<tour_core::app::booking::Booked, AppError> {
    let deps: BookingDeps<'_> = stack.deps();
    book_tour(&deps, command, None, BookingId::from_uuid(uuid::Uuid::new_v4()), now).await
}

/// The times availability offers on the bookable date, as local "HH:MM", answered at `now`.
async fn offered(stack: &Stack, now: DateTime<Utc>) -> Vec<String> {
    let deps = AvailabilityDeps {
        calendar: &stack.store,
        cache: &stack.store,
        cache_ttl: Duration::seconds(300),
        reach: &tour_core::domain::access::EVERY_ACCOUNT,
    };
    let query = AvailabilityQuery::parse(
        Some(stack.property.id.as_str()),
        Some(&bookable_date(&stack.property).to_string()),
        Some("in_person"),
    )
    .unwrap();
    let (view, _) = availability(&deps, &query, now).await.unwrap();
    view.available_slots.iter().map(|s| s.time[11..16].to_owned()).collect()
}

fn presenting(mut command: BookTourCommand, conversation: &str, token: &str) -> BookTourCommand {
    command.conversation_id = tour_core::domain::ConversationId::parse(conversation).unwrap();
    command.hold_token = Some(HoldToken::parse(token).unwrap());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_survives_competing_bookings_and_its_token_gets_the_slot() {
    let stack = Stack::start().await;
    let now = Utc::now();
    let held = hold(&stack, &hold_command(&stack, "conv-holder", "10:00", None), now)
        .await
        .unwrap();
    let held_agent = held.slot.staff_member_id.clone().unwrap();
    // Fifty other prospects race for 10:00 while it is held: every agent but the held one is booked once.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..50 {
        let stack = Arc::clone(&stack);
        tasks.spawn(async move { stack.book(&command(&stack.property, n, "10:00"), None).await });
    }
    let mut winners = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(booked) => winners.push(response(&booked)["staff_member_id"].as_str().unwrap().to_owned()),
            Err(AppError::SlotTaken { .. }) => {}
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    let agents = stack.property.agents_for(TourType::InPerson).count();
    assert_eq!(winners.len(), agents - 1, "every agent but the held one: {winners:?}");
    assert!(!winners.contains(&held_agent), "nobody booked the held agent");
    assert!(
        !offered(&stack, Utc::now()).await.contains(&"10:00".to_owned()),
        "a held slot is not offered"
    );
    // Another conversation cannot hold it either.
    assert!(matches!(
        hold(
            &stack,
            &hold_command(&stack, "conv-other", "10:00", Some(&held_agent)),
            Utc::now()
        )
        .await,
        Err(AppError::SlotTaken { .. })
    ));
    // The holder confirms in its next turn with the token: the held agent is its.
    let mine = presenting(command(&stack.property, 99, "10:00"), "conv-holder", &held.hold_token);
    let booked = stack.book(&mine, None).await.unwrap();
    assert_eq!(booked.outcome, Outcome::Booked);
    assert_eq!(response(&booked)["staff_member_id"], held_agent.as_str());
    assert!(
        stack.store.hold(&mine.conversation_id).await.unwrap().is_none(),
        "the hold went with the booking"
    );
    let appointments = stack.appointments().await;
    assert_eq!(appointments.len(), agents);
    assert_no_overlap(&appointments);
    // The hold's busy time went too: only the tours are busy at 10:00.
    let date = bookable_date(&stack.property);
    let day = tour_core::domain::slots::day_window(stack.property.time_zone, date);
    let busy = stack.store.busy_in(&stack.property.id, day).await.unwrap();
    assert_eq!(busy.len(), agents);
    assert!(busy.iter().all(|b| b.held.is_none()));
}

#[tokio::test]
async fn an_unused_hold_lapses_by_itself_at_its_instant() {
    let stack = Stack::start().await;
    let now = Utc::now();
    // Every agent held at 11:00, by three conversations.
    let mut holds = Vec::new();
    for (n, agent) in stack.property.agents_for(TourType::InPerson).enumerate() {
        let c = hold_command(&stack, &format!("conv-h{n}"), "11:00", Some(agent.id.as_str()));
        holds.push(hold(&stack, &c, now).await.unwrap());
    }
    let lapse = DateTime::parse_from_rfc3339(&holds[0].held_until)
        .unwrap()
        .with_timezone(&Utc);
    assert!(lapse > now + Duration::minutes(4) && lapse <= now + Duration::minutes(5));
    // While held: not offered (and that answer is cached), not bookable.
    assert!(!offered(&stack, now).await.contains(&"11:00".to_owned()));
    assert!(matches!(
        book_at(
            &stack,
            &command(&stack.property, 1, "11:00"),
            now + Duration::minutes(1)
        )
        .await,
        Err(AppError::SlotTaken { .. })
    ));
    // At the hold's instant, with nothing having deleted anything, the slot is offered and booked again. The cached
    // answer that left it out expires at that instant too.
    assert!(
        stack
            .store
            .hold(&tour_core::domain::ConversationId::parse("conv-h0").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert!(offered(&stack, lapse).await.contains(&"11:00".to_owned()));
    let booked = book_at(&stack, &command(&stack.property, 2, "11:00"), lapse)
        .await
        .unwrap();
    assert_eq!(booked.outcome, Outcome::Booked);
    // A lapsed token gives nothing more: its conversation books as anyone would, the next agent.
    let late = presenting(command(&stack.property, 3, "11:00"), "conv-h0", &holds[0].hold_token);
    let second = book_at(&stack, &late, lapse).await.unwrap();
    assert_ne!(
        response(&second)["staff_member_id"],
        response(&booked)["staff_member_id"]
    );
    assert_no_overlap(&stack.appointments().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_conversations_holding_one_agent_at_once_exactly_one_holds_it() {
    let stack = Stack::start().await;
    let agent = stack
        .property
        .agents_for(TourType::InPerson)
        .next()
        .unwrap()
        .id
        .to_string();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let stack = Arc::clone(&stack);
        let agent = agent.clone();
        tasks.spawn(async move {
            hold(
                &stack,
                &hold_command(&stack, &format!("conv-{n}"), "14:00", Some(&agent)),
                Utc::now(),
            )
            .await
        });
    }
    let (mut held, mut taken) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => held += 1,
            Err(AppError::SlotTaken { .. }) => taken += 1,
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!((held, taken), (1, 19));
}

#[tokio::test]
async fn a_new_hold_replaces_the_conversations_old_one_and_frees_its_time() {
    let stack = Stack::start().await;
    let now = Utc::now();
    let agent = stack
        .property
        .agents_for(TourType::InPerson)
        .next()
        .unwrap()
        .id
        .to_string();
    let first = hold(&stack, &hold_command(&stack, "conv-1", "10:00", Some(&agent)), now)
        .await
        .unwrap();
    // Asked again (a retry): the same hold.
    let again = hold(&stack, &hold_command(&stack, "conv-1", "10:00", Some(&agent)), now)
        .await
        .unwrap();
    assert_eq!(again, first);
    // The prospect picks 14:00 instead: 10:00 is free at once for another conversation, with the same agent.
    let moved = hold(&stack, &hold_command(&stack, "conv-1", "14:00", Some(&agent)), now)
        .await
        .unwrap();
    assert_ne!(moved.hold_token, first.hold_token);
    hold(&stack, &hold_command(&stack, "conv-2", "10:00", Some(&agent)), now)
        .await
        .expect("the replaced hold's time is free");
    // The old token is no longer the conversation's: presenting it gives nothing at 14:00 for that agent.
    let stale = presenting(command(&stack.property, 1, "14:00"), "conv-1", &first.hold_token);
    let booked = stack.book(&stale, None).await.unwrap();
    assert_ne!(response(&booked)["staff_member_id"], agent.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_five_holds_one_key_places_at_once_in_one_hour_only_its_bound_hold_and_the_rest_learn_when() {
    let stack = Stack::start().await;
    // Five holds that could all be given at 14:00 (three agents, two self-guided seats), from five made-up
    // conversations of one key, all at once.
    let mut wanted: Vec<HoldCommand> = stack
        .property
        .agents_for(TourType::InPerson)
        .enumerate()
        .map(|(i, agent)| hold_command(&stack, &format!("made-up-{i}"), "14:00", Some(agent.id.as_str())))
        .collect();
    for i in 3..5 {
        let mut seat = hold_command(&stack, &format!("made-up-{i}"), "14:00", None);
        seat.tour_type = TourType::SelfGuided;
        wanted.push(seat);
    }
    assert_eq!(wanted.len(), 5);
    let now = Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    for command in wanted.clone() {
        let stack = Arc::clone(&stack);
        tasks.spawn(async move { (hold(&stack, &command, now).await, command) });
    }
    let bound = usize::from(HoldsPerHour::default().get());
    let (mut held, mut refused) = (0, Vec::new());
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (Ok(_), _) => held += 1,
            (Err(AppError::TooManyHolds { retry_after, .. }), command) => refused.push((retry_after, command)),
            (Err(other), _) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!((held, refused.len()), (bound, 5 - bound));
    let (retry_after, command) = refused.pop().unwrap();
    assert!(
        (1..=300).contains(&retry_after),
        "told to come back when the first hold lapses: {retry_after}"
    );
    // The refused time was free: another key holds it at once, not held back by this key's holds.
    hold_as("another-chatbot", &stack, &command, now)
        .await
        .expect("another key holds at once");
    // Once the holds lapse the key holds again in that hour, with nothing having removed them.
    let later = now + Duration::minutes(5);
    hold(&stack, &hold_command(&stack, "made-up-5", "14:30", None), later)
        .await
        .expect("lapsed holds free their places");
}
