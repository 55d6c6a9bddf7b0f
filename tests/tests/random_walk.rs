//! A seeded random walk of 500 operations from both sides (the chatbot books, confirms, moves, cancels, completes,
//! marks no-shows; leasing staff do the same in ResMan's portal), with ResMan failing some calls and losing some
//! answers, then the queue and the poller left to settle: our tours and ResMan's calendar must agree on every tour
//! (time, agent, status), with no overlap and no duplicate on either side. The figures' rollups, kept from stream
//! batches delivered now and then during the walk and once at its end, must recount to 0 differences.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use integration_tests::stack::*;
use integration_tests::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::collections::HashMap;
use tour_core::app::rollups::{RecountDeps, RollupDeps, recount, roll_up};
use tour_core::domain::TourType;
use tour_core::domain::slots::free_slots;
use tour_core::domain::{
    booking::{BookTourCommand, BookTourRequest},
    ids::BookingId,
    lifecycle::TourStatus,
    record::TourRecord,
};
use tour_core::ports::TourReads;

const SEED: u64 = 20261130;
const OPERATIONS: usize = 500;

/// The next few dates with in-person tours, a day ahead at least.
fn tour_dates(stack: &Stack) -> Vec<NaiveDate> {
    let today = Utc::now().with_timezone(&stack.property.time_zone).date_naive();
    (1..20)
        .map(|d| today + Duration::days(d))
        .filter(|d| free_slots(&stack.property, TourType::InPerson, *d, &[], Utc::now()).is_ok_and(|s| !s.is_empty()))
        .take(3)
        .collect()
}

fn random_time(rng: &mut StdRng) -> String {
    format!(
        "{:02}:{:02}",
        rng.random_range(9..16),
        [0, 15, 30, 45][rng.random_range(0..4)]
    )
}

fn booking(n: usize, date: NaiveDate, time: &str) -> BookTourCommand {
    let body = json!({
        "conversation_id": format!("walk-{n}"),
        "tour_data": {
            "prospect_name": format!("Walker Number{n}"), "prospect_email": format!("walker{n}@example.com"),
            "prospect_phone": format!("+1512556{:04}", n), "tour_type": "in_person",
            "preferred_date": date.to_string(), "preferred_time": time, "property_id": DEMO_PROPERTY
        }
    });
    BookTourCommand::parse(&BookTourRequest::from_body(body.to_string().as_bytes()).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_mixed_operations_from_both_sides_with_faults_end_in_agreement() {
    let stack = Stack::start().await;
    stack.webhook_on().await;
    let dates = tour_dates(&stack);
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut ours: Vec<String> = Vec::new();
    let mut tally: HashMap<&'static str, usize> = HashMap::new();
    // The stream's deliveries have their own seed, so the walk itself stays the same.
    let mut stream = StdRng::seed_from_u64(SEED + 1);
    let rollups = RollupDeps {
        rollups: &stack.store,
        properties: &stack.store,
    };
    stack
        .faults(json!({"http_error_rate": 0.05, "applied_then_503_rate": 0.03}))
        .await;

    for n in 0..OPERATIONS {
        let roll = rng.random_range(0..100);
        let op = match roll {
            0..25 => {
                let date = dates[rng.random_range(0..dates.len())];
                if let Ok(booked) = stack.book(&booking(n, date, &random_time(&mut rng)), None).await {
                    ours.push(response(&booked)["appointment_id"].as_str().unwrap().to_owned());
                }
                "book"
            }
            25..55 if !ours.is_empty() => {
                let id = ours[rng.random_range(0..ours.len())].clone();
                let body = match rng.random_range(0..6) {
                    0 => json!({"status": "confirmed"}),
                    1 => json!({"status": "cancelled"}),
                    2 => json!({"status": "completed"}),
                    3 => json!({"status": "no_show"}),
                    _ => {
                        let date = dates[rng.random_range(0..dates.len())];
                        json!({"rescheduled_datetime": format!("{date}T{}", random_time(&mut rng))})
                    }
                };
                // Refusals (an illegal change, a full slot) are part of the walk.
                let _ = stack.update(&id, body, None).await;
                "chatbot change"
            }
            55..80 if !ours.is_empty() => {
                let id = ours[rng.random_range(0..ours.len())].clone();
                let tour = stack.tour(&id).await;
                // Staff act on tours that are open in ResMan, as in its portal.
                let appointments = stack.appointments().await;
                let open = tour.resman_appointment_id.as_ref().and_then(|a| {
                    appointments
                        .iter()
                        .find(|x| x["appointment_id"] == a.as_str())
                        .filter(|x| matches!(x["status"].as_str(), Some("Scheduled" | "Confirmed")))
                });
                if let Some(appointment) = open {
                    let change = match rng.random_range(0..5) {
                        0 => json!({"status": "Confirmed"}),
                        1 => json!({"status": "Completed"}),
                        2 => json!({"status": "No Show"}),
                        3 => json!({"status": "Cancelled"}),
                        _ => {
                            let at: DateTime<Utc> = appointment["scheduled_at"].as_str().unwrap().parse().unwrap();
                            let shift = Duration::minutes(15 * rng.random_range(-8..9));
                            json!({"scheduled_at": (at + shift).to_rfc3339()})
                        }
                    };
                    let id = appointment["appointment_id"].as_str().unwrap().to_owned();
                    stack.try_staff_change(&id, change).await;
                }
                "staff change"
            }
            80..95 => {
                stack.deliver_once().await;
                "worker"
            }
            _ => {
                stack.try_poll().await;
                "poll"
            }
        };
        *tally.entry(op).or_default() += 1;
        // Now and then the change stream delivers a batch: some of the tours, as they stand by then.
        if n % 50 == 49 {
            let batch: Vec<BookingId> = ours
                .iter()
                .filter(|_| stream.random_range(0..3) == 0)
                .map(|id| BookingId::parse(id).unwrap())
                .collect();
            roll_up(&rollups, &batch, &[]).await.unwrap();
        }
    }

    // ResMan recovers; the queue, the webhook and the poller settle.
    stack.control(reqwest::Method::DELETE, "/_sandbox/faults", None).await;
    for _ in 0..4 {
        stack.drain(50).await;
        stack.webhooks_settled().await;
        stack.poll().await;
    }
    stack.drain(50).await;

    // The last records of every tour arrive: the rollups recount to 0 differences over the walk's dates.
    let every: Vec<BookingId> = ours.iter().map(|id| BookingId::parse(id).unwrap()).collect();
    let today = Utc::now().with_timezone(&stack.property.time_zone).date_naive();
    let period =
        tour_core::domain::analytics::Period::new(today - Duration::days(1), today + Duration::days(21)).unwrap();
    // With the records of the walk's refused double bookings.
    let window = period.window(stack.property.time_zone);
    let refusals = tour_core::ports::AnalyticsStore::facts(&stack.store, &stack.property.id, window)
        .await
        .unwrap()
        .refusals;
    assert!(!refusals.is_empty(), "the walk refuses some double bookings");
    roll_up(&rollups, &every, &refusals).await.unwrap();
    let recount_deps = RecountDeps {
        rollups: &stack.store,
        properties: &stack.store,
        analytics: &stack.store,
    };
    let differences = recount(&recount_deps, &stack.property.id, &period).await.unwrap();
    assert_eq!(
        differences,
        [],
        "seed {SEED}: the rollups against a recount after the walk"
    );

    let appointments = stack.appointments().await;
    assert_no_overlap(&appointments);
    let mut tours: Vec<TourRecord> = Vec::new();
    for id in &ours {
        tours.push(stack.store.tour(&BookingId::parse(id).unwrap()).await.unwrap().unwrap());
    }
    let context = format!("seed {SEED}, operations {tally:?}, tours {}", tours.len());
    for tour in &tours {
        let reference = tour.booking_id.resman_reference();
        let carrying: Vec<&Value> = appointments
            .iter()
            .filter(|a| a["comments"].as_str().is_some_and(|c| c.contains(&reference)))
            .collect();
        if tour.status == TourStatus::Released {
            assert!(carrying.is_empty(), "{context}: a released hold is in ResMan: {tour:?}");
            continue;
        }
        assert_eq!(
            carrying.len(),
            1,
            "{context}: one appointment per tour: {tour:?} {carrying:?}"
        );
        let theirs = carrying[0];
        assert_eq!(
            theirs["appointment_id"].as_str(),
            tour.resman_appointment_id.as_ref().map(|a| a.as_str()),
            "{context}"
        );
        assert_agrees_with_resman(tour, theirs, &context);
    }
    // No overlap on our side either: the tours that hold time, per agent.
    let mut held: Vec<&TourRecord> = tours.iter().filter(|t| t.status.holds_time()).collect();
    held.sort_by_key(|t| (t.holder.agent().map(|a| a.to_string()), t.start));
    for pair in held.windows(2) {
        if pair[0].holder == pair[1].holder {
            assert!(
                pair[0].end <= pair[1].start,
                "{context}: we double-booked {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    let mut statuses: HashMap<&str, usize> = HashMap::new();
    for t in &tours {
        *statuses.entry(t.status.as_str()).or_default() += 1;
    }
    let changed = tours.iter().filter(|t| t.version > 1).count();
    let by_staff = tours
        .iter()
        .filter(|t| {
            t.history
                .iter()
                .any(|c| c.source != tour_core::domain::lifecycle::ChangeSource::Chatbot)
        })
        .count();
    eprintln!("{context}: final statuses {statuses:?}; {changed} tours changed after booking, {by_staff} by staff");
    assert!(
        by_staff > 0 && changed > by_staff,
        "{context}: both sides changed tours"
    );
    let in_resman = tours.iter().filter(|t| t.status != TourStatus::Released).count();
    assert!(
        in_resman >= 20,
        "{context}: the walk must book enough tours to mean something"
    );
    assert!(
        tally.values().all(|n| *n > 0) && tally.len() == 5,
        "{context}: every kind of operation ran"
    );
}
