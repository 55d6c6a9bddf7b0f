//! Daily rollups: each tour's share of its property's figures, as counters of the property's local days, so that a
//! month's figures read about 30 day items rather than every tour of the month.
//!
//! A tour's share is a pure function of the tour as it stands ([`tour_share`]). The rollups are kept from the
//! table's change stream: each new version of a tour replaces the share last applied for it ([`apply`]), kept beside
//! it with the version it came from, so a record delivered twice, or after a later one, changes nothing. The day
//! counters are then the sum of every tour's latest share, which a recount ([`recount`], [`differences`]) checks
//! from the tours themselves.
//!
//! The same two cohorts as [`super::analytics`]: a booking counts on the local date it was made (`bookings.*`,
//! `booking_time.*`, `staff_response.*`), a tour on the local date of its start (`tours.*`, `shows.*`). A booking
//! that ResMan refused counts as a booking (and a failed one), never as a tour.

use super::analytics::lead_time;
use super::lifecycle::TourStatus;
use super::record::{SyncStatus, TourRecord};
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The counters of one local day: name to count. Sums are counts too (milliseconds, minutes).
pub type DayCounters = BTreeMap<String, i64>;

/// Upper bounds (seconds) of the histogram buckets for durations (booking time, staff response): a percentile read
/// from them is the bound of the bucket it falls in. The last bucket has no bound.
pub const SECONDS_BUCKETS: [i64; 16] = [
    1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1_800, 3_600, 7_200, 21_600, 86_400, 259_200,
];

/// A share of a property's figures: counters by local date. Zero counters are never kept, so two shares that count
/// the same are equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share(BTreeMap<NaiveDate, DayCounters>);

impl Share {
    pub fn days(&self) -> &BTreeMap<NaiveDate, DayCounters> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The counter `name` of `date` (0 when not counted).
    pub fn get(&self, date: NaiveDate, name: &str) -> i64 {
        self.0.get(&date).and_then(|day| day.get(name)).copied().unwrap_or(0)
    }

    fn count(&mut self, date: NaiveDate, name: impl Into<String>, by: i64) {
        if by == 0 {
            return;
        }
        let day = self.0.entry(date).or_default();
        let name = name.into();
        let now = day.get(&name).copied().unwrap_or(0) + by;
        if now == 0 {
            day.remove(&name);
            if day.is_empty() {
                self.0.remove(&date);
            }
        } else {
            day.insert(name, now);
        }
    }

    /// Adds `other`, counter by counter.
    pub fn add(&mut self, other: &Share) {
        for (date, day) in &other.0 {
            for (name, by) in day {
                self.count(*date, name.clone(), *by);
            }
        }
    }

    /// What turns `before` into `self`: `self - before`, counter by counter.
    pub fn since(&self, before: &Share) -> Share {
        let mut change = self.clone();
        for (date, day) in &before.0 {
            for (name, by) in day {
                change.count(*date, name.clone(), -by);
            }
        }
        change
    }
}

/// The share last applied for one tour, and the version it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub version: u64,
    pub share: Share,
}

/// Applying a tour's image at `version`, whose share is `share`, over what was applied for it: the change to add to
/// the day counters and what is applied afterwards; `None` when the image is no newer than what was applied (a
/// record delivered twice, or after a later one), which changes nothing.
pub fn apply(applied: Option<&Applied>, version: u64, share: Share) -> Option<(Share, Applied)> {
    let before = match applied {
        Some(applied) if applied.version >= version => return None,
        Some(applied) => &applied.share,
        None => &Share::default(),
    };
    Some((share.since(before), Applied { version, share }))
}

/// The index of the bucket of [`SECONDS_BUCKETS`] that `seconds` falls in.
pub fn seconds_bucket(seconds: f64) -> usize {
    SECONDS_BUCKETS
        .iter()
        .position(|bound| seconds <= *bound as f64)
        .unwrap_or(SECONDS_BUCKETS.len())
}

fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}

/// When staff (or ResMan for them) first confirmed the tour.
fn first_confirmed(tour: &TourRecord) -> Option<DateTime<Utc>> {
    tour.history
        .iter()
        .find(|change| change.status == TourStatus::Confirmed)
        .map(|change| change.at)
}

/// A tour's share of its property's figures, in the property's zone `zone`.
pub fn tour_share(zone: Tz, tour: &TourRecord) -> Share {
    let mut share = Share::default();
    let booked = tour.created_at.with_timezone(&zone).date_naive();
    share.count(booked, "bookings", 1);
    share.count(booked, format!("bookings.type.{}", tour.tour_type.as_str()), 1);
    match tour.in_resman_at {
        Some(at) => {
            let ms = millis(tour.created_at, at);
            share.count(booked, "bookings.in_resman", 1);
            share.count(booked, "booking_time.ms", ms);
            share.count(booked, format!("booking_time.b{}", seconds_bucket(ms as f64 / 1e3)), 1);
        }
        None if matches!(tour.sync_status, SyncStatus::Failed | SyncStatus::Rejected) => {
            share.count(booked, "bookings.failed", 1);
        }
        None => {}
    }
    let confirmed_at = first_confirmed(tour);
    if let Some(at) = confirmed_at {
        let seconds = millis(tour.created_at, at) as f64 / 1e3;
        share.count(booked, format!("staff_response.b{}", seconds_bucket(seconds)), 1);
    }
    if tour.status == TourStatus::Released {
        return share;
    }

    let start = tour.start.with_timezone(&zone);
    let day = start.date_naive();
    share.count(day, "tours", 1);
    share.count(day, format!("tours.status.{}", tour.status.as_str()), 1);
    let was_confirmed = tour.status == TourStatus::Confirmed || confirmed_at.is_some();
    if was_confirmed {
        share.count(day, "tours.confirmed", 1);
    }
    if let Some(outcome) = tour.outcome {
        share.count(day, format!("tours.outcome.{}", outcome.as_str()), 1);
    }
    if tour.tour_type.needs_agent() && tour.status.holds_time() {
        share.count(day, "tours.agent_minutes", (tour.end - tour.start).num_minutes());
    }
    if tour.status.is_open() {
        // Due once its end has passed: the hour (local) it has ended by.
        let end = tour.end.with_timezone(&zone);
        let by = if end.date_naive() > day {
            24
        } else {
            end.hour() + u32::from(end.minute() > 0 || end.second() > 0)
        };
        share.count(day, format!("tours.open.ended_by.h{by:02}"), 1);
    }
    match tour.status {
        TourStatus::Completed => {
            let stage = tour.prospect_stage.unwrap_or_default();
            if tour.outcome.is_some() {
                share.count(day, "tours.completed_with_outcome", 1);
            }
            if stage >= super::resman::ProspectStage::Applicant {
                share.count(day, "tours.applied", 1);
            }
            if stage == super::resman::ProspectStage::Resident {
                share.count(day, "tours.leased", 1);
            }
        }
        TourStatus::NoShow => {}
        _ => return share,
    }
    // Shows among the tours with an outcome, by segment (the weekday is the date's own).
    let showed = i64::from(tour.status == TourStatus::Completed);
    let segments = [
        "all".to_owned(),
        format!("hour.{:02}", start.hour()),
        format!("lead.{}", lead_time(zone, tour.created_at, tour.start)),
        format!(
            "confirmation.{}",
            if was_confirmed { "confirmed" } else { "unconfirmed" }
        ),
        format!(
            "prospect.{}",
            if tour.prospect_confirmed_at.is_some() {
                "prospect_confirmed"
            } else {
                "not_prospect_confirmed"
            }
        ),
    ];
    for segment in segments {
        share.count(day, format!("shows.{segment}.tours"), 1);
        share.count(day, format!("shows.{segment}.shows"), showed);
    }
    share
}

/// The day counters that `shares` add up to: what the rollups must hold once every tour's latest version is applied.
pub fn recount<'a>(shares: impl IntoIterator<Item = &'a Share>) -> Share {
    let mut total = Share::default();
    for share in shares {
        total.add(share);
    }
    total
}

/// One counter where the rollups and a recount disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub date: NaiveDate,
    pub counter: String,
    pub rollup: i64,
    pub recount: i64,
}

/// Every counter where `rollups` differ from `recounted`, for the dates of `dates` (those the recount covered).
pub fn differences(rollups: &Share, recounted: &Share, dates: impl Iterator<Item = NaiveDate>) -> Vec<Difference> {
    let mut found = Vec::new();
    for date in dates {
        let empty = DayCounters::new();
        let ours = rollups.0.get(&date).unwrap_or(&empty);
        let theirs = recounted.0.get(&date).unwrap_or(&empty);
        let names: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        for name in names {
            let (rollup, recount) = (
                ours.get(name).copied().unwrap_or(0),
                theirs.get(name).copied().unwrap_or(0),
            );
            if rollup != recount {
                found.push(Difference {
                    date,
                    counter: name.clone(),
                    rollup,
                    recount,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analytics::tests::chicago;
    use crate::domain::lifecycle::Outcome;
    use chrono::Duration;
    use chrono_tz::America::Chicago;
    use proptest::prelude::*;

    fn date(raw: &str) -> NaiveDate {
        raw.parse().unwrap()
    }

    /// A tour booked on 1 December at 9 am, in ResMan 4 s later, for 3 December at 2 pm (Chicago).
    fn tour() -> TourRecord {
        let mut tour = crate::domain::update::tests::tour(TourStatus::Scheduled);
        tour.created_at = chicago("2026-12-01 09:00");
        tour.in_resman_at = Some(tour.created_at + Duration::seconds(4));
        tour.start = chicago("2026-12-03 14:00");
        tour.end = tour.start + Duration::minutes(45);
        tour.history.clear();
        tour
    }

    #[test]
    fn a_booking_counts_on_its_booking_day_and_its_tour_on_its_start_day() {
        let share = tour_share(Chicago, &tour());
        let (booked, touring) = (date("2026-12-01"), date("2026-12-03"));
        assert_eq!(share.get(booked, "bookings"), 1);
        assert_eq!(share.get(booked, "bookings.in_resman"), 1);
        assert_eq!(share.get(booked, "booking_time.ms"), 4_000);
        assert_eq!(share.get(booked, &format!("booking_time.b{}", seconds_bucket(4.0))), 1);
        assert_eq!(share.get(touring, "tours"), 1);
        assert_eq!(share.get(touring, "tours.status.scheduled"), 1);
        assert_eq!(share.get(touring, "tours.open.ended_by.h15"), 1, "2:45 pm: due by 3 pm");
        assert_eq!(share.get(touring, "bookings"), 0);
        assert_eq!(share.get(touring, "shows.all.tours"), 0, "no outcome yet");
    }

    #[test]
    fn a_completed_tour_counts_as_a_show_in_each_of_its_segments_and_a_no_show_as_a_tour_only() {
        let mut done = tour();
        done.status = TourStatus::Completed;
        done.outcome = Some(Outcome::Interested);
        let day = date("2026-12-03");
        let share = tour_share(Chicago, &done);
        for segment in [
            "all",
            "hour.14",
            "lead.one_to_two_days",
            "confirmation.unconfirmed",
            "prospect.not_prospect_confirmed",
        ] {
            assert_eq!(share.get(day, &format!("shows.{segment}.tours")), 1, "{segment}");
            assert_eq!(share.get(day, &format!("shows.{segment}.shows")), 1, "{segment}");
        }
        assert_eq!(share.get(day, "tours.outcome.interested"), 1);
        assert_eq!(share.get(day, "tours.completed_with_outcome"), 1);
        assert_eq!(share.get(day, "tours.open.ended_by.h15"), 0, "no longer open");
        let mut missed = tour();
        missed.status = TourStatus::NoShow;
        let share = tour_share(Chicago, &missed);
        assert_eq!(share.get(day, "shows.all.tours"), 1);
        assert!(
            !share.days()[&day].contains_key("shows.all.shows"),
            "zero counters are not kept"
        );
    }

    #[test]
    fn a_booking_resman_refused_counts_as_a_failed_booking_and_never_as_a_tour() {
        let mut refused = tour();
        refused.in_resman_at = None;
        refused.sync_status = SyncStatus::Rejected;
        refused.status = TourStatus::Released;
        let share = tour_share(Chicago, &refused);
        assert_eq!(share.get(date("2026-12-01"), "bookings.failed"), 1);
        assert!(!share.days().contains_key(&date("2026-12-03")));
    }

    #[test]
    fn a_version_replaces_the_share_applied_before_it_and_an_older_or_repeated_one_changes_nothing() {
        let first = tour();
        let mut moved = first.clone();
        moved.version = 2;
        moved.start = chicago("2026-12-04 10:00");
        moved.end = moved.start + Duration::minutes(45);
        let (change, applied) = apply(None, 1, tour_share(Chicago, &first)).unwrap();
        assert_eq!(change, tour_share(Chicago, &first));
        let (change, applied) = apply(Some(&applied), 2, tour_share(Chicago, &moved)).unwrap();
        assert_eq!(change.get(date("2026-12-03"), "tours"), -1);
        assert_eq!(change.get(date("2026-12-04"), "tours"), 1);
        assert_eq!(
            change.get(date("2026-12-01"), "bookings"),
            0,
            "the booking stays where it was"
        );
        assert_eq!(
            apply(Some(&applied), 2, tour_share(Chicago, &moved)),
            None,
            "delivered twice"
        );
        assert_eq!(
            apply(Some(&applied), 1, tour_share(Chicago, &first)),
            None,
            "delivered late"
        );
    }

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        assert_eq!(seconds_bucket(0.2), 0);
        assert_eq!(seconds_bucket(1.0), 0);
        assert_eq!(seconds_bucket(1.5), 1);
        assert_eq!(seconds_bucket(4.0), 2);
        assert_eq!(seconds_bucket(1e9), SECONDS_BUCKETS.len());
    }

    /// One version of a tour's life: what a change may make of it.
    fn version_of(tour: &TourRecord, step: u8, version: u64) -> TourRecord {
        let mut next = tour.clone();
        next.version = version;
        match step % 6 {
            0 => {
                next.start += Duration::days(i64::from(step % 3) + 1);
                next.end = next.start + Duration::minutes(45);
            }
            1 => next.status = TourStatus::Confirmed,
            2 => next.status = TourStatus::Completed,
            3 => next.status = TourStatus::NoShow,
            4 => next.status = TourStatus::Cancelled,
            _ => next.outcome = Some(Outcome::FollowUpNeeded),
        }
        next
    }

    proptest! {
        /// The stream's worst: every version of every tour delivered at least once, some twice, in any order (a
        /// dropped batch replayed after later ones brings old versions last). The counters always end as the
        /// recount of the tours' latest versions, and the recount finds 0 differences.
        #[test]
        fn counters_end_as_the_recount_whatever_the_deliveries_order_and_repeats(
            lives in proptest::collection::vec(proptest::collection::vec(0u8..12, 1..6), 1..8),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 0..60),
            repeats in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let mut records = Vec::new();
            let mut latest = Vec::new();
            for (n, life) in lives.iter().enumerate() {
                let mut tour = tour();
                tour.start += Duration::hours(n as i64);
                tour.end = tour.start + Duration::minutes(45);
                records.push((n, tour.clone()));
                for (i, step) in life.iter().enumerate() {
                    tour = version_of(&tour, *step, i as u64 + 2);
                    records.push((n, tour.clone()));
                }
                latest.push(tour);
            }
            for index in &repeats {
                let again = records[index.index(records.len())].clone();
                records.push(again);
            }
            let all = records.len();
            for (i, index) in order.iter().enumerate() {
                records.swap(i % all, index.index(all));
            }
            let mut applied: BTreeMap<usize, Applied> = BTreeMap::new();
            let mut counters = Share::default();
            for (n, tour) in &records {
                if let Some((change, now)) = apply(applied.get(n), tour.version, tour_share(Chicago, tour)) {
                    counters.add(&change);
                    applied.insert(*n, now);
                }
            }
            let shares: Vec<Share> = latest.iter().map(|t| tour_share(Chicago, t)).collect();
            let recounted = recount(&shares);
            prop_assert_eq!(&counters, &recounted);
            let dates = date("2026-11-25").iter_days().take(30);
            prop_assert!(differences(&counters, &recounted, dates).is_empty());
        }
    }

    #[test]
    fn the_recount_names_each_counter_the_rollups_got_wrong() {
        let share = tour_share(Chicago, &tour());
        let mut rollups = share.clone();
        rollups.count(date("2026-12-03"), "tours", 1);
        let found = differences(&rollups, &share, date("2026-12-01").iter_days().take(3));
        assert_eq!(
            found,
            [Difference {
                date: date("2026-12-03"),
                counter: "tours".into(),
                rollup: 2,
                recount: 1,
            }]
        );
    }
}
