//! The daily rollups on DynamoDB Local (issue 26): tours booked and changed through the real paths, their stream
//! records played to the rollups' use case with duplicates, reordering, a dropped batch and a replay, and two
//! consumers at once. The recount (every tour read as it stands, summed) must then find 0 differences, and the day
//! counters must say what was done.

use chrono::{Duration, NaiveDate, Utc};
use integration_tests::stack::*;
use serde_json::json;
use tour_core::app::rollups::{RecountDeps, RollupDeps, recount, roll_up};
use tour_core::domain::ResManPropertyId;
use tour_core::domain::analytics::Period;
use tour_core::domain::ids::BookingId;
use tour_core::domain::link::{Rating, Score};
use tour_core::ports::{RatingStore, Rollups};

/// A shuffle that is the same on every run (xorshift).
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut state = seed.max(1);
    let mut out = items.to_vec();
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, (state % (i as u64 + 1)) as usize);
    }
    out
}

fn deps(stack: &Stack) -> RollupDeps<'_> {
    RollupDeps {
        rollups: &stack.store,
        properties: &stack.store,
    }
}

async fn roll_up_tours(
    deps: &RollupDeps<'_>,
    tours: &[BookingId],
) -> Result<tour_core::app::rollups::RollupReport, tour_core::app::AppError> {
    roll_up(deps, tours, &[]).await
}

async fn differences(stack: &Stack, period: &Period) -> Vec<tour_core::domain::rollup::Difference> {
    let deps = RecountDeps {
        rollups: &stack.store,
        properties: &stack.store,
        analytics: &stack.store,
    };
    recount(&deps, &stack.property.id, period).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollups_kept_from_duplicated_reordered_and_replayed_records_recount_to_0_differences() {
    let stack = Stack::start().await;
    let date = bookable_date(&stack.property);
    let today = Utc::now().with_timezone(&stack.property.time_zone).date_naive();
    let period = Period::new(today - Duration::days(1), date + Duration::days(3)).unwrap();
    let mut ids = Vec::new();
    for (n, time) in ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00"]
        .iter()
        .enumerate()
    {
        let booked = stack.book(&command(&stack.property, n, time), None).await.unwrap();
        ids.push(response(&booked)["appointment_id"].as_str().unwrap().to_owned());
    }
    let bookings: Vec<BookingId> = ids.iter().map(|id| BookingId::parse(id).unwrap()).collect();
    // Every booking's records (its tour, then its messages as they are written), each delivered twice, in any order.
    let records: Vec<BookingId> = shuffled(&bookings.iter().chain(&bookings).cloned().collect::<Vec<_>>(), 7);
    let (first, second) = records.split_at(records.len() / 2);
    roll_up_tours(&deps(&stack), second).await.unwrap();
    roll_up_tours(&deps(&stack), first).await.unwrap();
    assert_eq!(differences(&stack, &period).await, []);

    // The tours change while the second half is still on its way.
    stack
        .update(&ids[0], json!({"status": "confirmed"}), None)
        .await
        .unwrap();
    stack
        .update(&ids[1], json!({"status": "cancelled"}), None)
        .await
        .unwrap();
    stack
        .update(&ids[2], json!({"status": "completed", "outcome": "interested"}), None)
        .await
        .unwrap();
    stack.update(&ids[3], json!({"status": "no_show"}), None).await.unwrap();
    stack.deliver_notifications().await;
    let rated = stack.tour(&ids[2]).await;
    let rating = Rating {
        score: Score::parse("5").unwrap(),
        at: Utc::now(),
    };
    stack.store.record_rating(&rated, rating).await.unwrap();

    // The records of the changes and of the messages sent, except one batch that is dropped (tours 2 and 3's): the
    // recount sees it.
    let delivered = [&bookings[..2], &bookings[4..]].concat();
    roll_up_tours(&deps(&stack), &delivered).await.unwrap();
    let dropped = &bookings[2..4];
    let missed = differences(&stack, &period).await;
    assert!(!missed.is_empty(), "a dropped batch must show in the recount");
    assert!(
        missed
            .iter()
            .any(|d| d.counter == "tours.status.completed" && d.rollup == 0 && d.recount == 1),
        "{missed:?}"
    );

    // The dropped batch replayed (after later ones, and twice at once by two consumers), then an old batch again.
    let consumer = deps(&stack);
    let (replay, again) = tokio::join!(roll_up_tours(&consumer, dropped), roll_up_tours(&consumer, dropped));
    assert!(replay.unwrap().changed + again.unwrap().changed >= 2);
    roll_up_tours(&deps(&stack), first).await.unwrap();
    assert_eq!(differences(&stack, &period).await, []);

    // And the counters say what was done.
    let (counters, _) = stack
        .store
        .period(&stack.property.id, period.from(), period.to())
        .await
        .unwrap();
    let on = |name: &str| counters.get(date, name);
    assert_eq!(on("tours"), 6);
    assert_eq!(on("tours.status.cancelled"), 1);
    assert_eq!(on("tours.status.completed"), 1);
    assert_eq!(on("tours.status.no_show"), 1);
    assert_eq!(on("tours.confirmed"), 1);
    assert_eq!(on("tours.outcome.interested"), 1);
    assert_eq!(on("ratings.sum"), 5);
    assert_eq!(on("shows.all.tours"), 2);
    assert_eq!(on("shows.all.shows"), 1);
    assert_eq!(counters.get(today, "bookings"), 6, "booked today, at the property");
    assert_eq!(
        counters.get(today, "confirmation.sent"),
        3,
        "the open tours' confirmations; the others' were superseded before the sender got to them"
    );
    let total: i64 = counters.days().values().filter_map(|day| day.get("bookings")).sum();
    assert_eq!(total, 6);
}

#[tokio::test]
async fn a_tour_of_another_property_and_a_record_twice_change_nothing_here() {
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let id = BookingId::parse(response(&booked)["appointment_id"].as_str().unwrap()).unwrap();
    let first = roll_up_tours(&deps(&stack), &[id.clone(), id.clone()]).await.unwrap();
    assert_eq!(
        (first.tours, first.changed),
        (1, 1),
        "a batch's records of one tour apply once"
    );
    let again = roll_up_tours(&deps(&stack), std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(again.changed, 0, "nothing changed since: nothing is written");
    let other = ResManPropertyId::parse("5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f02").unwrap();
    let from = NaiveDate::MIN.max(Utc::now().date_naive() - Duration::days(2));
    let (counters, _) = stack
        .store
        .period(&other, from, from + Duration::days(60))
        .await
        .unwrap();
    assert!(counters.is_empty(), "{counters:?}");
}

#[tokio::test]
async fn the_attention_list_and_the_refusals_are_kept_beside_the_counters() {
    use tour_core::domain::analytics::Attention;
    use tour_core::ports::{AnalyticsStore, TourWrites};
    let stack = Stack::start().await;
    let date = bookable_date(&stack.property);
    let period = Period::new(date - Duration::days(3), date + Duration::days(1)).unwrap();
    let mut ids = Vec::new();
    for (n, time) in ["10:00", "11:00"].iter().enumerate() {
        let booked = stack.book(&command(&stack.property, n, time), None).await.unwrap();
        ids.push(response(&booked)["appointment_id"].as_str().unwrap().to_owned());
    }
    let bookings: Vec<BookingId> = ids.iter().map(|id| BookingId::parse(id).unwrap()).collect();
    roll_up_tours(&deps(&stack), &bookings).await.unwrap();
    let start = stack.tour(&ids[0]).await.start;
    let upcoming = || async {
        let mut found = stack
            .store
            .scheduled_between(
                &stack.property.id,
                start - Duration::hours(1),
                start + Duration::hours(2),
            )
            .await
            .unwrap();
        found.sort_by(|a, b| a.start.cmp(&b.start));
        found.into_iter().map(|item| item.booking_id).collect::<Vec<_>>()
    };
    assert_eq!(upcoming().await, ids, "both are scheduled, and read by their start");
    let (_, flagged) = stack
        .store
        .period(&stack.property.id, period.from(), period.to())
        .await
        .unwrap();
    assert!(flagged.is_empty(), "both are in ResMan: {flagged:?}");

    // Staff confirm the first: it leaves the scheduled list, and ResMan owes the change until the queue runs.
    stack
        .update(&ids[0], json!({"status": "confirmed"}), None)
        .await
        .unwrap();
    roll_up_tours(&deps(&stack), &bookings[..1]).await.unwrap();
    assert_eq!(upcoming().await, ids[1..]);
    let (_, flagged) = stack
        .store
        .period(&stack.property.id, period.from(), period.to())
        .await
        .unwrap();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0].booking_id, ids[0]);
    assert_eq!(flagged[0].reasons, [Attention::SyncPending]);
    stack.drain(10).await;
    roll_up_tours(&deps(&stack), &bookings[..1]).await.unwrap();
    let (_, flagged) = stack
        .store
        .period(&stack.property.id, period.from(), period.to())
        .await
        .unwrap();
    assert!(flagged.is_empty(), "ResMan took it: off the list ({flagged:?})");

    // A double booking refused: counted once on its day, however often its records come.
    let refused_at = Utc::now();
    stack
        .store
        .record_slot_refusal(&stack.property.id, "refused-key", refused_at)
        .await
        .unwrap();
    stack
        .store
        .record_slot_refusal(&stack.property.id, "refused-key", refused_at)
        .await
        .unwrap();
    let today = refused_at.with_timezone(&stack.property.time_zone).date_naive();
    let window = Period::new(today, today).unwrap().window(stack.property.time_zone);
    let refusals = stack.store.facts(&stack.property.id, window).await.unwrap().refusals;
    assert_eq!(refusals.len(), 1);
    let first = roll_up(&deps(&stack), &[], &refusals).await.unwrap();
    let again = roll_up(&deps(&stack), &[], &[refusals[0].clone(), refusals[0].clone()])
        .await
        .unwrap();
    assert_eq!((first.refusals, again.refusals), (1, 0));
    let (counters, _) = stack.store.period(&stack.property.id, today, today).await.unwrap();
    assert_eq!(counters.get(today, "refusals"), 1);
    let around = Period::new(today, date + Duration::days(1)).unwrap();
    assert_eq!(differences(&stack, &around).await, []);
}
