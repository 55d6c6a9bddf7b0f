//! Daily rollups: each tour's share of its property's figures, as counters of the property's local days, so that a
//! month's figures read about 30 day items rather than every tour of the month.
//!
//! A tour's share is a pure function of the tour as it stands, with its messages and ratings ([`tour_share`]). The
//! rollups are kept from the table's change stream: a record of any of a tour's items has the tour read as it now
//! stands (one consistent query of its partition), and its share replaces the share last applied for it ([`apply`]),
//! kept beside it. A record delivered twice, late, or out of order therefore changes nothing that is not so: what
//! is applied is always the tour's current share, whatever the record carried. (A record's own image would not do:
//! some writes, such as ResMan's answer or the prospect's stage, change the tour without a new version.) The day
//! counters are then the sum of every tour's current share, which a recount ([`recount`], [`differences`]) checks
//! from the tours themselves.
//!
//! The same two cohorts as [`super::analytics`]: a booking counts on the local date it was made (`bookings.*`,
//! `booking_time.*`, `staff_response.*`), a tour on the local date of its start (`tours.*`, `shows.*`). A booking
//! that ResMan refused counts as a booking (and a failed one), never as a tour.

use super::analytics::{AttentionItem, MessageFact, lead_time};
use super::lifecycle::TourStatus;
use super::link::StaffRating;
use super::notify::{Audience, DeliveryStatus, MessageKind};
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
    /// A share from counters read back (zero counters left out).
    pub fn from_days(days: impl IntoIterator<Item = (NaiveDate, DayCounters)>) -> Share {
        let mut share = Share::default();
        for (date, day) in days {
            for (name, by) in day {
                share.count(date, name, by);
            }
        }
        share
    }

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

/// Where a tour stands on the dashboard's attention list, as kept beside the rollups: `flagged` when something
/// whatever the time calls for staff (ResMan has not taken it, a message failed, the two sides disagree), and
/// `scheduled` while it is scheduled (not confirmed) and open, so that the list can name those starting within a
/// day of when it is read. Each is the tour's attention item (`reasons` empty for `scheduled`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flags {
    pub flagged: Option<AttentionItem>,
    pub scheduled: Option<AttentionItem>,
}

/// The share last applied for one tour, its flags, and how many times one was applied (the store's condition: two
/// consumers that read the same `Applied` cannot both replace it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub applications: u64,
    pub share: Share,
    #[serde(default)]
    pub flags: Flags,
}

/// Applying a tour's current share and flags over what was applied for it (`None`: nothing yet): the change to add
/// to the day counters and what is applied afterwards; `None` when both are what was applied already (a record
/// delivered twice, late, or about an item that moves no figure), which writes nothing.
pub fn apply(applied: Option<&Applied>, share: Share, flags: Flags) -> Option<(Share, Applied)> {
    let empty = Applied::default();
    let before = applied.unwrap_or(&empty);
    if before.share == share && before.flags == flags && applied.is_some() {
        return None;
    }
    Some((
        share.since(&before.share),
        Applied {
            applications: before.applications + 1,
            share,
            flags,
        },
    ))
}

/// A tour's flags (see [`Flags`]) in the property's zone `zone`.
pub fn tour_flags(zone: Tz, parts: &TourParts) -> Flags {
    use super::analytics::Attention;
    let tour = &parts.tour;
    if tour.status == TourStatus::Released {
        return Flags::default();
    }
    let mut reasons = Vec::new();
    match tour.sync_status {
        SyncStatus::Pending => reasons.push(Attention::SyncPending),
        SyncStatus::Failed => reasons.push(Attention::SyncFailed),
        SyncStatus::Synced | SyncStatus::Rejected => {}
    }
    if parts.messages.iter().any(|m| m.status == DeliveryStatus::Failed) {
        reasons.push(Attention::MessageFailed);
    }
    if tour.disagreement.is_some() {
        reasons.push(Attention::ResmanDisagrees);
    }
    let item = |reasons: Vec<Attention>| AttentionItem {
        booking_id: tour.booking_id.to_string(),
        appointment_id: tour.resman_appointment_id.as_ref().map(|a| a.to_string()),
        tour_type: tour.tour_type,
        start: tour.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        local_start: tour.start.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string(),
        status: tour.status,
        sync_status: tour.sync_status,
        reasons,
    };
    Flags {
        flagged: (!reasons.is_empty()).then(|| item(reasons)),
        scheduled: (tour.status == TourStatus::Scheduled).then(|| item(Vec::new())),
    }
}

/// A refusal of a taken slot as the table keeps it: its property, its item's sort key (which makes it once), and
/// when it was refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefusalRef {
    pub property: crate::domain::ResManPropertyId,
    pub key: String,
    pub at: DateTime<Utc>,
}

impl RefusalRef {
    /// From its item's keys: `REFUSAL#<property>` / `<instant, RFC 3339>#<digest>`; `None` for any other item.
    pub fn from_keys(pk: &str, sk: &str) -> Option<Self> {
        let property = crate::domain::ResManPropertyId::parse(pk.strip_prefix("REFUSAL#")?).ok()?;
        let (at, _) = sk.split_once('#')?;
        let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
        Some(Self {
            property,
            key: sk.to_owned(),
            at,
        })
    }
}

/// A refusal of a taken slot (a double booking prevented), counted once on its local date.
pub fn refusal_share(zone: Tz, at: DateTime<Utc>) -> Share {
    let mut share = Share::default();
    share.count(at.with_timezone(&zone).date_naive(), "refusals", 1);
    share
}

/// A tour as it now stands, with what the figures count of its own items: the messages it owes and its ratings.
#[derive(Debug, Clone)]
pub struct TourParts {
    pub tour: TourRecord,
    pub messages: Vec<MessageFact>,
    /// The prospect's rating (1 to 5).
    pub rating: Option<u8>,
    pub staff_rating: Option<StaffRating>,
}

/// Whether a reminder reached the prospect: a reminder email sent, or a reminder text sent and not reported
/// undelivered.
pub fn reminded(messages: &[MessageFact]) -> bool {
    messages.iter().any(|m| {
        matches!(
            m.kind,
            MessageKind::Reminder
                | MessageKind::LastReminder
                | MessageKind::TextReminder
                | MessageKind::TextLastReminder
        ) && m.status == DeliveryStatus::Sent
            && m.receipt != Some(false)
    })
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
pub fn tour_share(zone: Tz, parts: &TourParts) -> Share {
    let tour = &parts.tour;
    let mut share = Share::default();
    let booked = tour.created_at.with_timezone(&zone).date_naive();
    message_counts(&mut share, booked, tour, &parts.messages);
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
    if let Some(score) = parts.rating {
        share.count(day, "ratings.count", 1);
        share.count(day, "ratings.sum", i64::from(score));
    }
    if let Some(rating) = &parts.staff_rating {
        share.count(day, "staff_ratings.count", 1);
        share.count(day, "staff_ratings.satisfied", i64::from(rating.satisfied()));
        for issue in &rating.went_wrong {
            share.count(day, format!("staff_ratings.went_wrong.{}", issue.as_str()), 1);
        }
    }
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
        format!(
            "reminder.{}",
            if reminded(&parts.messages) {
                "reminded"
            } else {
                "not_reminded"
            }
        ),
    ];
    for segment in segments {
        share.count(day, format!("shows.{segment}.tours"), 1);
        share.count(day, format!("shows.{segment}.shows"), showed);
    }
    share
}

/// What a booking's messages count, on its booking day: its confirmation email's delivery, and its texts (sent,
/// delivered, failed) with whether its prospect was texted, replied and confirmed they would come.
fn message_counts(share: &mut Share, booked: NaiveDate, tour: &TourRecord, messages: &[MessageFact]) {
    let mut texted = false;
    for message in messages {
        match (message.kind, message.status) {
            (MessageKind::Confirmation, DeliveryStatus::Sent) => share.count(booked, "confirmation.sent", 1),
            (MessageKind::Confirmation, DeliveryStatus::Failed) => share.count(booked, "confirmation.failed", 1),
            (kind, DeliveryStatus::Sent) if kind.audience() == Audience::Text => {
                texted = true;
                share.count(booked, "texts.sent", 1);
                match message.receipt {
                    Some(true) => share.count(booked, "texts.delivered", 1),
                    Some(false) => share.count(booked, "texts.failed", 1),
                    None => {}
                }
            }
            (kind, DeliveryStatus::Failed) if kind.audience() == Audience::Text => {
                share.count(booked, "texts.failed", 1);
            }
            _ => {}
        }
    }
    if texted {
        share.count(booked, "texts.tours", 1);
        let replied = tour
            .history
            .iter()
            .any(|c| c.source == super::lifecycle::ChangeSource::ProspectText);
        share.count(booked, "texts.replied_tours", i64::from(replied));
        share.count(
            booked,
            "texts.confirmed_tours",
            i64::from(tour.prospect_confirmed_at.is_some()),
        );
    }
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

    fn share_of(tour: &TourRecord) -> Share {
        tour_share(
            Chicago,
            &TourParts {
                tour: tour.clone(),
                messages: Vec::new(),
                rating: None,
                staff_rating: None,
            },
        )
    }

    fn message(kind: MessageKind, status: DeliveryStatus, receipt: Option<bool>) -> MessageFact {
        MessageFact {
            booking_id: tour().booking_id,
            kind,
            status,
            receipt,
        }
    }

    #[test]
    fn a_booking_counts_on_its_booking_day_and_its_tour_on_its_start_day() {
        let share = share_of(&tour());
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
        let share = share_of(&done);
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
        let share = share_of(&missed);
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
        let share = share_of(&refused);
        assert_eq!(share.get(date("2026-12-01"), "bookings.failed"), 1);
        assert!(!share.days().contains_key(&date("2026-12-03")));
    }

    #[test]
    fn the_current_share_replaces_the_one_applied_before_it_and_the_same_share_again_writes_nothing() {
        let first = tour();
        let mut moved = first.clone();
        moved.version = 2;
        moved.start = chicago("2026-12-04 10:00");
        moved.end = moved.start + Duration::minutes(45);
        let (change, applied) = apply(None, share_of(&first), Flags::default()).unwrap();
        assert_eq!(change, share_of(&first));
        assert_eq!(applied.applications, 1);
        let (change, applied) = apply(Some(&applied), share_of(&moved), Flags::default()).unwrap();
        assert_eq!(change.get(date("2026-12-03"), "tours"), -1);
        assert_eq!(change.get(date("2026-12-04"), "tours"), 1);
        assert_eq!(
            change.get(date("2026-12-01"), "bookings"),
            0,
            "the booking stays where it was"
        );
        assert_eq!(applied.applications, 2);
        assert_eq!(
            apply(Some(&applied), share_of(&moved), Flags::default()),
            None,
            "delivered twice, or late"
        );
    }

    #[test]
    fn a_bookings_messages_and_a_tours_ratings_count_with_it() {
        use crate::domain::link::{StaffIssue, StaffRating};
        let mut done = tour();
        done.status = TourStatus::Completed;
        let parts = TourParts {
            tour: done,
            messages: vec![
                message(MessageKind::Confirmation, DeliveryStatus::Sent, None),
                message(MessageKind::TextConfirmation, DeliveryStatus::Sent, Some(true)),
                message(MessageKind::TextReminder, DeliveryStatus::Sent, Some(false)),
                message(MessageKind::LastReminder, DeliveryStatus::Superseded, None),
            ],
            rating: Some(4),
            staff_rating: Some(StaffRating {
                score: crate::domain::link::Score::parse("2").unwrap(),
                at: chicago("2026-12-03 16:00"),
                went_wrong: vec![StaffIssue::ALL[0]],
            }),
        };
        let share = tour_share(Chicago, &parts);
        let (booked, day) = (date("2026-12-01"), date("2026-12-03"));
        assert_eq!(share.get(booked, "confirmation.sent"), 1);
        assert_eq!(share.get(booked, "texts.sent"), 2);
        assert_eq!(share.get(booked, "texts.delivered"), 1);
        assert_eq!(share.get(booked, "texts.failed"), 1);
        assert_eq!(share.get(booked, "texts.tours"), 1);
        assert_eq!(share.get(day, "ratings.sum"), 4);
        assert_eq!(share.get(day, "staff_ratings.count"), 1);
        assert_eq!(share.get(day, "staff_ratings.satisfied"), 0);
        assert_eq!(
            share.get(
                day,
                &format!("staff_ratings.went_wrong.{}", StaffIssue::ALL[0].as_str())
            ),
            1
        );
        // Its only reminder text never reached the phone, and the last reminder was not sent.
        assert_eq!(share.get(day, "shows.reminder.not_reminded.shows"), 1);
        let mut reached = parts.clone();
        reached.messages[2].receipt = Some(true);
        assert_eq!(
            tour_share(Chicago, &reached).get(day, "shows.reminder.reminded.shows"),
            1
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
        /// The stream's worst: the tours change while their records arrive, some twice, in any order (a dropped
        /// batch replayed after later ones), and each record has its tour read as it then stands. Once every record
        /// is processed, the counters are the recount of the tours as they stand, and the recount finds 0
        /// differences.
        #[test]
        fn counters_end_as_the_recount_whatever_the_deliveries_order_and_repeats(
            lives in proptest::collection::vec(proptest::collection::vec(0u8..12, 1..6), 1..8),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..80),
        ) {
            // Every write, in order: (tour, its state after the write).
            let mut writes = Vec::new();
            for (n, life) in lives.iter().enumerate() {
                let mut tour = tour();
                tour.start += Duration::hours(n as i64);
                tour.end = tour.start + Duration::minutes(45);
                writes.push((n, tour.clone()));
                for (i, step) in life.iter().enumerate() {
                    tour = version_of(&tour, *step, i as u64 + 2);
                    writes.push((n, tour.clone()));
                }
            }
            let mut current: BTreeMap<usize, TourRecord> = BTreeMap::new();
            let mut pending: Vec<usize> = Vec::new();
            let mut applied: BTreeMap<usize, Applied> = BTreeMap::new();
            let mut counters = Share::default();
            let mut process = |n: usize, current: &BTreeMap<usize, TourRecord>| {
                if let Some((change, now)) = apply(applied.get(&n), share_of(&current[&n]), Flags::default()) {
                    counters.add(&change);
                    applied.insert(n, now);
                }
            };
            // Each pick delivers a pending record (any of them, and it may stay to come again), between writes.
            let mut picks = picks.into_iter();
            for (n, tour) in writes {
                current.insert(n, tour);
                pending.push(n);
                if let Some(pick) = picks.next() {
                    let i = pick.index(pending.len());
                    let n = if i % 2 == 0 { pending.remove(i) } else { pending[i] };
                    process(n, &current);
                }
            }
            for pick in picks {
                if !pending.is_empty() {
                    process(pending[pick.index(pending.len())], &current);
                }
            }
            for n in pending {
                process(n, &current);
            }
            let shares: Vec<Share> = current.values().map(share_of).collect();
            let recounted = recount(&shares);
            prop_assert_eq!(&counters, &recounted);
            let dates = date("2026-11-25").iter_days().take(30);
            prop_assert!(differences(&counters, &recounted, dates).is_empty());
        }
    }

    #[test]
    fn the_recount_names_each_counter_the_rollups_got_wrong() {
        let share = share_of(&tour());
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
