//! The analytics against real components (DynamoDB Local with the template's indexes, moto, the ResMan sandbox): a
//! known mix of tours goes through the real booking, update, poll and notification paths, and every figure of
//! `GET /api/resman/tours/metrics` and `/trends` is checked against counts made by hand from that mix.
//!
//! The mix, on the stack's bookable date at Maple Grove (America/Chicago):
//! - A 10:00 in person: staff confirm it (our API), it is completed, rated 5, and its prospect becomes a resident in
//!   ResMan (the sandbox), which the change feed brings in;
//! - B 11:00 in person: staff confirm it in ResMan (the poller brings it), then it is marked a no-show;
//! - C 13:00 virtual: cancelled;
//! - D 14:00 self-guided: completed without a confirmation, rated 3;
//! - E 15:00 in person, booked at 23:30 the evening before (Chicago), which is already the next day in UTC;
//! - the other in-person agents' 10:00 (fillers), then one more 10:00 request: refused, the slot is taken;
//! - P 16:00 in person, booked while ResMan is down: accepted, pending;
//! - R 16:00 in person, which ResMan refuses: released.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use integration_tests::stack::*;
use integration_tests::*;
use serde_json::{Value, json};
use tour_core::app::AppError;
use tour_core::app::analytics::{AnalyticsDeps, AnalyticsQuery, tour_metrics, tour_trends};
use tour_core::app::booking::book_tour;
use tour_core::domain::TourType;
use tour_core::domain::link::{Rating, Score};
use tour_core::domain::slots::resolve_local;
use tour_core::domain::{
    booking::{BookTourCommand, BookTourRequest},
    ids::BookingId,
    lifecycle::TourStatus,
    record::TourRecord,
};
use tour_core::metrics::{capture, names};
use tour_core::ports::{RatingStore, TourReads, TourWrites};

fn command_of(stack: &Stack, n: usize, time: &str, tour_type: TourType) -> BookTourCommand {
    let body = json!({
        "conversation_id": format!("analytics-{n}"),
        "tour_data": {
            "prospect_name": format!("Prospect Number{n}"),
            "prospect_email": format!("analytics{n}@example.com"),
            "prospect_phone": format!("+1512556{:04}", n),
            "tour_type": tour_type.as_str(),
            "preferred_date": bookable_date(&stack.property).to_string(),
            "preferred_time": time,
            "property_id": DEMO_PROPERTY,
        }
    });
    BookTourCommand::parse(&BookTourRequest::from_body(body.to_string().as_bytes()).unwrap()).unwrap()
}

/// Books through the booking use case as `book-tour` does, received at `now`: its id.
async fn book_at(
    stack: &Stack,
    n: usize,
    time: &str,
    tour_type: TourType,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let id = BookingId::from_uuid(uuid::Uuid::new_v4());
    let booked = book_tour(&stack.deps(), &command_of(stack, n, time, tour_type), None, id, now).await?;
    Ok(response(&booked)["appointment_id"].as_str().unwrap().to_owned())
}

async fn book(stack: &Stack, n: usize, time: &str, tour_type: TourType) -> String {
    book_at(stack, n, time, tour_type, Utc::now()).await.unwrap()
}

async fn set_status(stack: &Stack, id: &str, status: &str) {
    stack.update(id, json!({ "status": status }), None).await.unwrap();
}

async fn rate(stack: &Stack, id: &str, score: &str) {
    let tour = stack.tour(id).await;
    let rating = Rating {
        score: Score::parse(score).unwrap(),
        at: Utc::now(),
    };
    stack.store.record_rating(&tour, rating).await.unwrap();
}

/// The nearest-rank percentile, as docs/api.md defines it.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

/// What the rollups answer for a duration: the upper bound of its histogram bucket, in seconds.
fn bucket(seconds: f64) -> f64 {
    use tour_core::domain::rollup::{SECONDS_BUCKETS, seconds_bucket};
    SECONDS_BUCKETS[seconds_bucket(seconds).min(SECONDS_BUCKETS.len() - 1)] as f64
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// The figures as the API reads them: from the daily rollups, once the change stream's records of every tour have
/// been applied.
async fn figures(stack: &Stack, from: NaiveDate, to: NaiveDate, now: DateTime<Utc>) -> (Value, Value) {
    stack.roll_up_all().await;
    let deps = AnalyticsDeps {
        properties: &stack.store,
        rollups: &stack.store,
    };
    let query = AnalyticsQuery::parse(Some(DEMO_PROPERTY), Some(&from.to_string()), Some(&to.to_string())).unwrap();
    let metrics = tour_metrics(&deps, &query, now).await.unwrap();
    let trends = tour_trends(&deps, &query, now).await.unwrap();
    (
        serde_json::to_value(metrics).unwrap(),
        serde_json::to_value(trends).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_figure_matches_a_hand_count_of_a_known_mix_of_tours() {
    let stack = Stack::start().await;
    let zone = stack.property.time_zone;
    let today = Utc::now().with_timezone(&zone).date_naive();
    let yesterday = today - Duration::days(1);
    let day = bookable_date(&stack.property);

    let a = book(&stack, 1, "10:00", TourType::InPerson).await;
    let b = book(&stack, 2, "11:00", TourType::InPerson).await;
    let c = book(&stack, 3, "13:00", TourType::Virtual).await;
    let d = book(&stack, 4, "14:00", TourType::SelfGuided).await;
    // 23:30 yesterday in Chicago is 05:30 today in UTC: the booking belongs to yesterday.
    let late_evening = resolve_local(zone, yesterday.and_hms_opt(23, 30, 0).unwrap()).unwrap();
    assert_eq!(
        late_evening.date_naive(),
        today,
        "the booking's UTC date differs from its local date"
    );
    let e = book_at(&stack, 5, "15:00", TourType::InPerson, late_evening)
        .await
        .unwrap();

    // Every other in-person agent takes 10:00; one more request finds the slot taken.
    let in_person_agents = stack.property.agents_for(TourType::InPerson).count();
    let mut fillers = Vec::new();
    for n in 0..in_person_agents - 1 {
        fillers.push(book(&stack, 10 + n, "10:00", TourType::InPerson).await);
    }
    let (refused, lines) = capture(book_at(&stack, 20, "10:00", TourType::InPerson, Utc::now())).await;
    assert!(matches!(refused, Err(AppError::SlotTaken { .. })), "{refused:?}");
    assert!(names(&lines).contains(&"SlotTakenRefusals".to_owned()), "{lines:?}");

    // Staff: A confirmed through our API, B in ResMan (the poller brings it); outcomes recorded.
    set_status(&stack, &a, "confirmed").await;
    let b_resman = stack.tour(&b).await.resman_appointment_id.unwrap().to_string();
    stack.staff_change(&b_resman, json!({"status": "Confirmed"})).await;
    stack.poll().await;
    assert_eq!(stack.tour(&b).await.status, TourStatus::Confirmed);
    set_status(&stack, &a, "completed").await;
    set_status(&stack, &b, "no_show").await;
    set_status(&stack, &c, "cancelled").await;
    set_status(&stack, &d, "completed").await;
    rate(&stack, &a, "5").await;
    rate(&stack, &d, "3").await;
    // A's prospect signs a lease: staff move them to resident in ResMan, and the change feed brings it in.
    let prospect = stack.tour(&a).await.resman_prospect_id.unwrap();
    stack
        .control(
            reqwest::Method::POST,
            &format!("/_sandbox/prospects/{prospect}/customer-type"),
            Some(json!({"customer_type": "resident"})),
        )
        .await;
    stack.poll().await;
    assert_eq!(
        stack.tour(&a).await.prospect_stage,
        Some(tour_core::domain::resman::ProspectStage::Resident)
    );
    // ResMan takes every change (the sync queue, as the event source mapping delivers it).
    stack.drain(20).await;
    // ResMan down: accepted as pending, and the operators' metrics say so.
    stack.faults(json!({"http_error_rate": 1.0})).await;
    let (pending, lines) = capture(book_at(&stack, 30, "16:00", TourType::InPerson, Utc::now())).await;
    let p = pending.unwrap();
    let emitted = names(&lines);
    for metric in ["BookingsAccepted", "BookingsPending", "ResManErrors", "ResManLatency"] {
        assert!(emitted.contains(&metric.to_owned()), "{metric} in {emitted:?}");
    }
    // ResMan refuses the next one: released, a failed booking.
    stack.faults(json!({"status_error_rate": 1.0})).await;
    let (refused, lines) = capture(book_at(&stack, 40, "16:00", TourType::InPerson, Utc::now())).await;
    assert!(refused.is_err(), "ResMan refused it");
    assert!(names(&lines).contains(&"BookingsFailed".to_owned()), "{lines:?}");
    stack.faults(json!({})).await;
    let r = stack
        .store
        .conversation_tours(&tour_core::domain::ConversationId::parse("analytics-40").unwrap())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(r.status, TourStatus::Released);

    // The confirmations (and every other message owed) go out.
    stack.deliver_notifications().await;

    // The hand count, from the mix above.
    let now = Utc::now();
    let ids: Vec<&String> = [&a, &b, &c, &d, &e, &p].into_iter().chain(&fillers).collect();
    let mut tours: Vec<TourRecord> = Vec::new();
    for id in &ids {
        tours.push(stack.tour(id).await);
    }
    let n = in_person_agents as u64;
    let (m, t) = figures(&stack, yesterday, day, now).await;

    assert_eq!(m["total_bookings"], 6 + n, "A B C D E P R and the fillers");
    assert_eq!(m["confirmed_tours"], 2, "A and B");
    assert_eq!(m["completed_tours"], 2, "A and D");
    assert_eq!(m["no_show_tours"], 1, "B");
    assert_eq!(m["cancelled_tours"], 1, "C");
    assert_eq!(m["completion_rate"], round(2.0 / 3.0, 4), "A and D of A, B and D");
    assert_eq!(m["no_show_rate"], round(1.0 / 3.0, 4));
    assert_eq!(
        m["booking_success_rate"],
        round((4 + n) as f64 / (5 + n) as f64, 4),
        "R failed, P undecided"
    );
    assert_eq!(m["confirmation_delivery_rate"], 1.0);
    assert_eq!(m["satisfaction_score"], 4.0);
    assert_eq!(m["satisfaction_count"], 2);
    assert_eq!(m["double_booking_refusals"], 1);

    let mut booking_times: Vec<f64> = tours
        .iter()
        .filter_map(|t| t.in_resman_at.map(|at| secs(t.created_at, at)))
        .collect();
    booking_times.sort_by(f64::total_cmp);
    assert_eq!(
        booking_times.len() as u64,
        4 + n,
        "every booking but P (pending) and R (refused) reached ResMan"
    );
    let mean = booking_times.iter().sum::<f64>() / booking_times.len() as f64;
    assert_eq!(m["average_booking_time"], round(mean, 3));
    assert_eq!(m["booking_time_p50"], bucket(nearest_rank(&booking_times, 50.0)));
    assert_eq!(m["booking_time_p95"], bucket(nearest_rank(&booking_times, 95.0)));
    // E was booked at 23:30 last night (local) and reached ResMan now: the slowest, however late "now" is (within
    // the first hour after midnight it waited under an hour).
    let waited = tours
        .iter()
        .find(|t| t.booking_id.as_str() == e.as_str())
        .and_then(|t| t.in_resman_at.map(|at| secs(t.created_at, at)))
        .expect("E reached ResMan");
    assert_eq!(
        booking_times.last().copied(),
        Some(waited),
        "E waited from last evening: the slowest"
    );
    assert!(waited > 1.0, "{waited}");

    let confirmed_at = |t: &TourRecord| {
        t.history
            .iter()
            .find(|c| c.status == TourStatus::Confirmed)
            .map(|c| secs(t.created_at, c.at))
    };
    let mut responses: Vec<f64> = tours.iter().filter_map(confirmed_at).collect();
    responses.sort_by(f64::total_cmp);
    assert_eq!(responses.len(), 2);
    assert_eq!(m["staff_response_time_median"], bucket(responses[0]));

    // Agent time: A, B, E, P and the fillers keep 45 minutes each (C was cancelled, D needs no agent, R released).
    let booked_minutes = 45.0 * (4 + in_person_agents - 1) as f64;
    let agents = stack
        .property
        .agents
        .iter()
        .filter(|a| a.tour_types.iter().any(TourType::needs_agent))
        .count() as f64;
    let office: f64 = yesterday
        .iter_days()
        .take_while(|d| *d <= day)
        .map(|d| {
            let hours = stack.property.hours_on(d);
            hours
                .ranges()
                .iter()
                .map(|(o, c)| (*c - *o).num_minutes() as f64)
                .sum::<f64>()
        })
        .sum();
    assert_eq!(m["staff_utilization"], round(booked_minutes / (agents * office), 4));

    // Attention: P waits for ResMan; an open tour within a day (and not confirmed) waits for staff.
    let mut expected: Vec<(String, Vec<&str>)> = tours
        .iter()
        .filter_map(|t| {
            let mut reasons = Vec::new();
            if t.booking_id.as_str() == p {
                reasons.push("sync_pending");
            }
            if t.status == TourStatus::Scheduled && t.start > now && t.start <= now + Duration::hours(24) {
                reasons.push("unconfirmed");
            }
            (!reasons.is_empty()).then(|| (t.booking_id.to_string(), reasons))
        })
        .collect();
    expected.sort_by_key(|(id, _)| {
        (
            tours.iter().find(|t| t.booking_id.as_str() == id).unwrap().start,
            id.clone(),
        )
    });
    let listed: Vec<(String, Vec<&str>)> = m["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["booking_id"].as_str().unwrap().to_owned(),
                item["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(listed, expected);

    // Trends.
    let daily: Vec<(String, u64)> = t["daily_bookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["date"].as_str().unwrap().to_owned(), d["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        daily.len() as i64,
        (day - yesterday).num_days() + 1,
        "every date of the period, zeros included"
    );
    assert_eq!(daily[0], (yesterday.to_string(), 1), "E, booked late yesterday evening");
    assert_eq!(daily[1], (today.to_string(), 5 + n), "the rest, R included");
    assert!(daily[2..].iter().all(|(_, count)| *count == 0));
    assert_eq!(
        t["tour_type_distribution"],
        json!({"in_person": 4 + n, "virtual": 1, "self_guided": 1})
    );
    assert_eq!(
        t["funnel"],
        json!({"booked": 5 + n, "confirmed": 2, "completed": 2, "applied": 1, "leased": 1})
    );
    assert_eq!(t["tour_to_lease_rate"], 0.5, "A's prospect leased; D's did not");
    assert_eq!(t["tour_to_application_rate"], 0.5);
    assert_eq!(t["conversion_rate"], 0.5);
    let weekday = day.format("%A").to_string();
    for entry in t["show_rate_by_weekday"].as_array().unwrap() {
        let expected = if entry["weekday"] == weekday.as_str() {
            json!({"weekday": weekday, "tours": 3, "shows": 2, "rate": 0.6667})
        } else {
            json!({"weekday": entry["weekday"], "tours": 0, "shows": 0, "rate": null})
        };
        assert_eq!(entry, &expected);
    }
    let hours = t["show_rate_by_hour"].as_array().unwrap();
    assert_eq!(hours[10], json!({"hour": 10, "tours": 1, "shows": 1, "rate": 1.0}), "A");
    assert_eq!(hours[11], json!({"hour": 11, "tours": 1, "shows": 0, "rate": 0.0}), "B");
    assert_eq!(hours[14], json!({"hour": 14, "tours": 1, "shows": 1, "rate": 1.0}), "D");
    assert_eq!(hours.iter().map(|h| h["tours"].as_u64().unwrap()).sum::<u64>(), 3);

    // The day boundary is the property's: yesterday alone holds E's booking, today alone the rest.
    let (only_yesterday, _) = figures(&stack, yesterday, yesterday, now).await;
    assert_eq!(only_yesterday["total_bookings"], 1);
    let (only_today, _) = figures(&stack, today, today, now).await;
    assert_eq!(only_today["total_bookings"], 5 + n);
    assert_eq!(only_today["double_booking_refusals"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_period_the_api_refuses_is_named_and_a_property_we_do_not_serve_is_not_found() {
    let stack = Stack::start().await;
    let deps = AnalyticsDeps {
        properties: &stack.store,
        rollups: &stack.store,
    };
    let refused = AnalyticsQuery::parse(Some(DEMO_PROPERTY), Some("2026-01-01"), Some("2026-12-31")).unwrap_err();
    assert_eq!(refused.field, "to");
    assert_eq!(
        AnalyticsQuery::parse(None, None, None).unwrap_err().field,
        "property_id"
    );
    assert_eq!(
        AnalyticsQuery::parse(Some(DEMO_PROPERTY), Some("yesterday"), None)
            .unwrap_err()
            .field,
        "from"
    );
    let unknown = AnalyticsQuery::parse(Some("no-such-property"), None, None).unwrap();
    assert!(matches!(
        tour_metrics(&deps, &unknown, Utc::now()).await,
        Err(AppError::NotFound(_))
    ));
    // No tours: zeros and nulls, never an error (the default period is the last 30 days).
    let empty = AnalyticsQuery::parse(Some(DEMO_PROPERTY), None, None).unwrap();
    let metrics = tour_metrics(&deps, &empty, Utc::now()).await.unwrap();
    assert_eq!((metrics.total_bookings, metrics.completion_rate), (0, None));
    assert_eq!(metrics.to - metrics.from, Duration::days(29));
}

/// The value of the one `metric` line among `lines`.
fn metric_value(lines: &[String], metric: &str) -> f64 {
    let values: Vec<f64> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| l[metric].as_f64())
        .collect();
    assert_eq!(values.len(), 1, "one {metric} in {lines:?}");
    values[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_owed_resman_write_is_reported_until_resman_takes_it() {
    use tour_core::app::sync::requeue_owed_syncs;
    let stack = Stack::start().await;
    let booked = Utc::now();
    stack.book_while_resman_is_down(1, "10:00").await;
    // Twenty minutes on, ResMan still down: the booking's write has waited that long (the alarm's line is 15).
    let later = booked + Duration::minutes(20);
    let (_, lines) = capture(requeue_owed_syncs(&stack.store, &stack.queue, later)).await;
    let waited = metric_value(&lines, "OldestPendingSyncSeconds");
    assert!((1195.0..1260.0).contains(&waited), "{waited}");
    // ResMan is back and the queue delivers it: nothing waits any more.
    stack.faults(json!({})).await;
    stack.drain(10).await;
    let (_, lines) = capture(requeue_owed_syncs(&stack.store, &stack.queue, later)).await;
    assert_eq!(metric_value(&lines, "OldestPendingSyncSeconds"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_saved_over_a_stage_the_poller_just_wrote_is_stale_and_never_undoes_it() {
    use tour_core::domain::resman::ProspectStage;
    use tour_core::ports::{ChangeExtras, ChangeWrite, Locks};
    let stack = Stack::start().await;
    let id = book(&stack, 1, "10:00", TourType::InPerson).await;
    let before = stack.tour(&id).await;
    // The poller records the prospect's new stage between a change's read and its write.
    stack
        .store
        .record_prospect_stage(&before.booking_id, ProspectStage::Applicant)
        .await
        .unwrap();
    let mut after = before.clone();
    after.status = TourStatus::Confirmed;
    after.version += 1;
    let save = |before: TourRecord, after: TourRecord| {
        let stack = &stack;
        async move {
            stack
                .store
                .save_change(
                    &stack.property,
                    &before,
                    &after,
                    Locks::Take,
                    ChangeExtras::default(),
                    Utc::now(),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(save(before, after).await, ChangeWrite::Stale);
    assert_eq!(stack.tour(&id).await.prospect_stage, Some(ProspectStage::Applicant));
    // Read again and decided again (as the use cases do on Stale), the change keeps the stage.
    let before = stack.tour(&id).await;
    let mut after = before.clone();
    after.status = TourStatus::Confirmed;
    after.version += 1;
    assert_eq!(save(before, after).await, ChangeWrite::Saved);
    let saved = stack.tour(&id).await;
    assert_eq!(
        (saved.status, saved.prospect_stage),
        (TourStatus::Confirmed, Some(ProspectStage::Applicant))
    );
}
