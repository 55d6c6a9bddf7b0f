//! Tour analytics: the figures a leasing manager reads (bookings, outcomes, conversion, how fast staff react) and the
//! product's own success criteria, as pure functions over the records kept for the purpose.
//!
//! **Days are the property's.** A period is a range of the property's local dates; a tour counts on the local date of
//! its start, a booking on the local date it was made. Two cohorts, because the questions differ:
//! - *bookings made in the period* (`created_at`): `total_bookings`, booking time, booking success, confirmation
//!   delivery, staff response, `daily_bookings`, `tour_type_distribution`, double-booking refusals;
//! - *tours taking place in the period* (`start`): confirmed, completed, cancelled and no-show tours, completion and
//!   no-show rates, staff utilisation, satisfaction, the funnel, conversion and the show rates.
//!
//! Completion rate: completed tours over the tours *due* (not cancelled, and either given an outcome or past their
//! end). No-show rate: no-shows over the tours given an outcome (completed or no-show).
//!
//! A booking that ResMan refused (`released`) counts as a booking made (and a failed one), never as a tour.
//! A cancelled tour counts as cancelled and nowhere else: it is not due, not a show and not a no-show.

use super::InvalidField;
use super::TourType;
use super::lifecycle::{Outcome, TourStatus};
use super::notify::{DeliveryStatus, MessageKind};
use super::property::Property;
use super::resman::ProspectStage;
use super::slots::day_window;
use super::time::UtcWindow;
use super::{
    ids::BookingId,
    record::{SyncStatus, TourRecord},
};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The longest period one request may ask for (a quarter): what the dashboard shows at most, and what keeps a
/// request's reads bounded.
pub const MAX_PERIOD_DAYS: i64 = 92;
/// The default period: the last 30 days, today included.
pub const DEFAULT_PERIOD_DAYS: i64 = 30;
/// The most tours the attention list names (the oldest problems first).
pub const MAX_ATTENTION: usize = 200;

/// A range of the property's local dates, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

/// A date of the query string (`from`, `to`), `YYYY-MM-DD`.
pub fn parse_date(field: &'static str, raw: Option<&str>) -> Result<Option<NaiveDate>, InvalidField> {
    raw.map(|raw| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| InvalidField::new(field, "must be a date YYYY-MM-DD"))
    })
    .transpose()
}

impl Period {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, InvalidField> {
        if to < from {
            return Err(InvalidField::new("to", "must not be before from"));
        }
        if (to - from).num_days() + 1 > MAX_PERIOD_DAYS {
            return Err(InvalidField::new(
                "to",
                format!("the period may span at most {MAX_PERIOD_DAYS} days"),
            ));
        }
        Ok(Self { from, to })
    }

    /// From the query string's `from` and `to`; a missing `to` is `today` (the property's), a missing `from` the
    /// 30 days up to `to`.
    pub fn with_defaults(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Self, InvalidField> {
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - Duration::days(DEFAULT_PERIOD_DAYS - 1));
        Self::new(from, to)
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }

    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }

    /// The instants of the period in the property's zone: from the start of `from` to the end of `to`.
    pub fn window(&self, zone: Tz) -> UtcWindow {
        let start = day_window(zone, self.from).start();
        let end = day_window(zone, self.to).end();
        UtcWindow::new(start, end).unwrap_or_else(|_| unreachable!("a period ends after it starts"))
    }

    pub(crate) fn holds(&self, zone: Tz, at: DateTime<Utc>) -> bool {
        let date = at.with_timezone(&zone).date_naive();
        self.from <= date && date <= self.to
    }
}

/// A message a booking owed, and how its delivery ended (or stands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFact {
    pub booking_id: BookingId,
    pub kind: MessageKind,
    pub status: DeliveryStatus,
    /// A sent text's receipt: delivered to the phone, or not; `None` until it comes (and for emails).
    pub receipt: Option<bool>,
}

/// What the analytics read for a property and a window of instants (its period). The store may return more (its
/// partitions are months): the figures keep what falls in the period.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Tours whose start falls in the window.
    pub tours_by_start: Vec<TourRecord>,
    /// Tours (bookings) made in the window.
    pub tours_by_booking: Vec<TourRecord>,
    /// The prospects' ratings (1 to 5) of the tours taking place in the window.
    pub ratings: Vec<(BookingId, u8)>,
    /// The leasing team's ratings of those tours' bookings.
    pub staff_ratings: Vec<(BookingId, crate::domain::link::StaffRating)>,
    /// The messages owed by the bookings made in the window.
    pub messages: Vec<MessageFact>,
    /// When a booking was refused because its slot was taken (a double booking prevented).
    pub refusals: Vec<super::rollup::RefusalRef>,
}

/// Why a tour is on the attention list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attention {
    /// ResMan has not taken the booking (or its latest change) yet.
    SyncPending,
    /// ResMan never took it after every retry: staff must enter it by hand.
    SyncFailed,
    /// Within a day of the tour and staff have not confirmed it.
    Unconfirmed,
    /// A message to the prospect or staff failed for good.
    MessageFailed,
    /// ResMan and our tour record different outcomes (completed, no-show) and no rule decides: staff say which holds.
    ResmanDisagrees,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AttentionItem {
    pub booking_id: String,
    pub appointment_id: Option<String>,
    pub tour_type: TourType,
    pub start: String,
    /// The start on the property's clock, `YYYY-MM-DDTHH:MM`.
    pub local_start: String,
    pub status: TourStatus,
    pub sync_status: SyncStatus,
    pub reasons: Vec<Attention>,
}

/// `GET /api/resman/tours/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TourMetrics {
    pub property_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    pub total_bookings: u64,
    pub confirmed_tours: u64,
    pub completed_tours: u64,
    pub cancelled_tours: u64,
    pub no_show_tours: u64,
    /// Seconds from the booking request to the tour in ResMan: mean, median and 95th percentile. The mean is the
    /// brief's `number`: 0 when no booking reached ResMan (then the percentiles are `None`).
    pub average_booking_time: f64,
    pub booking_time_p50: Option<f64>,
    pub booking_time_p95: Option<f64>,
    /// The brief's `number`: 0 when the period offers no agent minutes.
    pub staff_utilization: f64,
    pub booking_success_rate: Option<f64>,
    pub confirmation_delivery_rate: Option<f64>,
    pub completion_rate: Option<f64>,
    pub no_show_rate: Option<f64>,
    /// Seconds from the booking to staff's confirmation, median.
    pub staff_response_time_median: Option<f64>,
    pub satisfaction_score: Option<f64>,
    pub satisfaction_count: u64,
    /// The leasing team's answers to "was this booking useful?" (1 to 5) for the period's tours: the share of 4s and
    /// 5s (the brief's goal: above 90%, [`STAFF_SATISFACTION_GOAL`]), how many answered, and what went wrong, by
    /// reason.
    pub staff_satisfaction: Option<f64>,
    pub staff_rating_count: u64,
    pub staff_satisfaction_goal: f64,
    pub staff_went_wrong: BTreeMap<&'static str, u64>,
    pub double_booking_refusals: u64,
    /// Tours whose recorded outcome is `interested`, `not_interested` or `follow_up_needed`.
    pub interested_tours: u64,
    pub not_interested_tours: u64,
    pub follow_up_tours: u64,
    /// Completed tours with an outcome recorded / completed tours: how often the tour-to-outcome step is done.
    pub outcome_rate: Option<f64>,
    pub needs_attention: Vec<AttentionItem>,
    /// The texts of the period's bookings, and what their prospects answered.
    pub texts: TextFigures,
}

/// Texts, for the bookings made in the period: how many went and reached the phone, and, of the tours whose
/// prospect was texted, how many answered and how many confirmed they would come.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextFigures {
    /// Texts handed to the service.
    pub sent: u64,
    /// Of those, reported delivered by the phone network.
    pub delivered: u64,
    /// Refused at once, or reported undelivered.
    pub failed: u64,
    /// `delivered` over those with a receipt or a failure; `None` when none.
    pub delivery_rate: Option<f64>,
    /// Tours whose prospect got at least one text.
    pub texted_tours: u64,
    /// Of those, tours whose prospect replied in a way that acted on the tour (`C` or `CANCEL`).
    pub replied_tours: u64,
    pub reply_rate: Option<f64>,
    /// Of those, tours whose prospect confirmed they would come (`C`).
    pub attendance_confirmed_tours: u64,
    pub attendance_confirmation_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyCount {
    pub date: NaiveDate,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Funnel {
    pub booked: u64,
    pub confirmed: u64,
    pub completed: u64,
    pub applied: u64,
    pub leased: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekdayShows {
    pub weekday: &'static str,
    pub tours: u64,
    pub shows: u64,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourShows {
    pub hour: u32,
    pub tours: u64,
    pub shows: u64,
    pub rate: Option<f64>,
}

/// Shows among the tours of one segment (how far ahead they were booked, whether staff confirmed them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentShows {
    pub segment: &'static str,
    pub tours: u64,
    pub shows: u64,
    pub rate: Option<f64>,
}

/// How far ahead a tour was booked, by the property's calendar: the same day, 1 or 2 days ahead, or 3 or more.
pub fn lead_time(zone: Tz, booked: DateTime<Utc>, start: DateTime<Utc>) -> &'static str {
    let days = (start.with_timezone(&zone).date_naive() - booked.with_timezone(&zone).date_naive()).num_days();
    match days {
        ..=0 => "same_day",
        1 | 2 => "one_to_two_days",
        _ => "three_days_or_more",
    }
}

/// `GET /api/resman/tours/trends`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TourTrends {
    pub property_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    pub daily_bookings: Vec<DailyCount>,
    pub tour_type_distribution: BTreeMap<&'static str, u64>,
    /// Tour to lease (the brief's single conversion figure, a `number`: 0 when no tour was completed, then
    /// `tour_to_lease_rate` is `None`); the two steps follow.
    pub conversion_rate: f64,
    pub tour_to_application_rate: Option<f64>,
    pub tour_to_lease_rate: Option<f64>,
    pub funnel: Funnel,
    pub show_rate_by_weekday: Vec<WeekdayShows>,
    pub show_rate_by_hour: Vec<HourShows>,
    /// By how far ahead the tour was booked: `same_day`, `one_to_two_days`, `three_days_or_more`.
    pub show_rate_by_lead_time: Vec<SegmentShows>,
    /// By whether staff confirmed the tour: `confirmed`, `unconfirmed`.
    pub show_rate_by_confirmation: Vec<SegmentShows>,
    /// By whether the prospect confirmed by text that they would come (`prospect_confirmed`, `not_prospect_confirmed`).
    pub show_rate_by_prospect_confirmation: Vec<SegmentShows>,
    /// By whether a reminder reached the prospect (`reminded`: a reminder email sent, or a reminder text sent and
    /// not reported undelivered; `not_reminded`).
    pub show_rate_by_reminder: Vec<SegmentShows>,
}

/// The brief's success criterion: staff satisfaction above 90%.
pub const STAFF_SATISFACTION_GOAL: f64 = 0.9;

/// A share, rounded to 4 decimals; `None` when nothing was counted.
fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round(part as f64 / whole as f64, 4))
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(round(sorted[rank.min(sorted.len()) - 1], 3))
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| round(values.iter().sum::<f64>() / values.len() as f64, 3))
}

fn count<T>(items: impl IntoIterator<Item = T>) -> u64 {
    items.into_iter().count() as u64
}

/// When staff (or ResMan for them) first confirmed the tour.
fn first_confirmed(tour: &TourRecord) -> Option<DateTime<Utc>> {
    tour.history
        .iter()
        .find(|change| change.status == TourStatus::Confirmed)
        .map(|change| change.at)
}

fn was_confirmed(tour: &TourRecord) -> bool {
    tour.status == TourStatus::Confirmed || first_confirmed(tour).is_some()
}

/// The two cohorts of a period, each once per booking (a store may return an item twice across its pages).
struct Cohorts<'a> {
    zone: Tz,
    /// Bookings made in the period, ResMan's refusals included.
    booked: Vec<&'a TourRecord>,
    /// Tours taking place in the period (a refused booking never became one).
    touring: Vec<&'a TourRecord>,
}

impl<'a> Cohorts<'a> {
    fn of(property: &Property, period: &Period, facts: &'a Facts) -> Self {
        let zone = property.time_zone;
        let mut seen = BTreeSet::new();
        let booked = facts
            .tours_by_booking
            .iter()
            .filter(|t| t.property_id == property.id && period.holds(zone, t.created_at))
            .filter(|t| seen.insert(&t.booking_id))
            .collect();
        let mut seen = BTreeSet::new();
        let touring = facts
            .tours_by_start
            .iter()
            .filter(|t| t.property_id == property.id && period.holds(zone, t.start))
            .filter(|t| t.status != TourStatus::Released)
            .filter(|t| seen.insert(&t.booking_id))
            .collect();
        Self { zone, booked, touring }
    }

    fn with_status(&self, status: TourStatus) -> u64 {
        count(self.touring.iter().filter(|t| t.status == status))
    }
}

/// The tours taking place in the period (by their start on the property's calendar), each once; a booking ResMan
/// refused is never one.
pub fn touring<'a>(property: &Property, period: &Period, facts: &'a Facts) -> Vec<&'a TourRecord> {
    Cohorts::of(property, period, facts).touring
}

/// Minutes the property's agents offer over the period: the office hours of each date, for every agent who gives
/// in-person or virtual tours (self-guided tours take no agent).
fn offered_agent_minutes(property: &Property, period: &Period) -> i64 {
    let agents = property
        .agents
        .iter()
        .filter(|a| a.tour_types.iter().any(TourType::needs_agent))
        .count() as i64;
    let office: i64 = period
        .dates()
        .map(|date| {
            property
                .hours_on(date)
                .ranges()
                .iter()
                .map(|(open, close)| (*close - *open).num_minutes())
                .sum::<i64>()
        })
        .sum();
    agents * office
}

fn attention_list(property: &Property, cohorts: &Cohorts<'_>, facts: &Facts, now: DateTime<Utc>) -> Vec<AttentionItem> {
    let failed_messages: BTreeSet<&BookingId> = facts
        .messages
        .iter()
        .filter(|m| m.status == DeliveryStatus::Failed)
        .map(|m| &m.booking_id)
        .collect();
    let mut tours: BTreeMap<&BookingId, &TourRecord> = BTreeMap::new();
    for tour in cohorts.booked.iter().chain(&cohorts.touring) {
        if tour.status != TourStatus::Released {
            tours.insert(&tour.booking_id, tour);
        }
    }
    let mut items: Vec<AttentionItem> = tours
        .into_values()
        .filter_map(|tour| {
            let mut reasons = Vec::new();
            match tour.sync_status {
                SyncStatus::Pending => reasons.push(Attention::SyncPending),
                SyncStatus::Failed => reasons.push(Attention::SyncFailed),
                SyncStatus::Synced | SyncStatus::Rejected => {}
            }
            if tour.status == TourStatus::Scheduled && tour.start > now && tour.start <= now + Duration::hours(24) {
                reasons.push(Attention::Unconfirmed);
            }
            if failed_messages.contains(&tour.booking_id) {
                reasons.push(Attention::MessageFailed);
            }
            if tour.disagreement.is_some() {
                reasons.push(Attention::ResmanDisagrees);
            }
            (!reasons.is_empty()).then(|| AttentionItem {
                booking_id: tour.booking_id.to_string(),
                appointment_id: tour.resman_appointment_id.as_ref().map(|a| a.to_string()),
                tour_type: tour.tour_type,
                start: tour.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                local_start: tour
                    .start
                    .with_timezone(&property.time_zone)
                    .format("%Y-%m-%dT%H:%M")
                    .to_string(),
                status: tour.status,
                sync_status: tour.sync_status,
                reasons,
            })
        })
        .collect();
    items.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.booking_id.cmp(&b.booking_id)));
    items.truncate(MAX_ATTENTION);
    items
}

/// The figures of `GET /api/resman/tours/metrics` for a property and period, at `now`.
pub fn metrics(property: &Property, period: &Period, facts: &Facts, now: DateTime<Utc>) -> TourMetrics {
    let cohorts = Cohorts::of(property, period, facts);
    let booked_ids: BTreeSet<&BookingId> = cohorts.booked.iter().map(|t| &t.booking_id).collect();
    let touring_ids: BTreeSet<&BookingId> = cohorts.touring.iter().map(|t| &t.booking_id).collect();

    let mut booking_times: Vec<f64> = cohorts
        .booked
        .iter()
        .filter_map(|t| t.in_resman_at.map(|at| seconds(t.created_at, at)))
        .collect();
    booking_times.sort_by(f64::total_cmp);

    // Decided bookings only: one still on its way to ResMan is neither a success nor a failure yet.
    let succeeded = count(cohorts.booked.iter().filter(|t| t.in_resman_at.is_some()));
    let failed =
        count(cohorts.booked.iter().filter(|t| {
            t.in_resman_at.is_none() && matches!(t.sync_status, SyncStatus::Failed | SyncStatus::Rejected)
        }));

    let confirmations = facts
        .messages
        .iter()
        .filter(|m| m.kind == MessageKind::Confirmation && booked_ids.contains(&m.booking_id));
    let (delivered, undelivered) = confirmations.fold((0, 0), |(sent, failed), m| match m.status {
        DeliveryStatus::Sent => (sent + 1, failed),
        DeliveryStatus::Failed => (sent, failed + 1),
        DeliveryStatus::Pending | DeliveryStatus::Superseded => (sent, failed),
    });

    let completed = cohorts.with_status(TourStatus::Completed);
    let no_shows = cohorts.with_status(TourStatus::NoShow);
    // Due: tours not called off whose outcome is recorded or whose time has passed (an open one of those is a tour
    // nobody recorded as held: it counts against completion).
    let due = count(cohorts.touring.iter().filter(|t| match t.status {
        TourStatus::Completed | TourStatus::NoShow => true,
        TourStatus::Scheduled | TourStatus::Confirmed => t.end <= now,
        TourStatus::Cancelled | TourStatus::Released => false,
    }));

    let mut responses: Vec<f64> = cohorts
        .booked
        .iter()
        .filter_map(|t| first_confirmed(t).map(|at| seconds(t.created_at, at)))
        .collect();
    responses.sort_by(f64::total_cmp);

    let scores: Vec<f64> = facts
        .ratings
        .iter()
        .filter(|(id, _)| touring_ids.contains(id))
        .map(|(_, score)| f64::from(*score))
        .collect();

    // One answer per booking (a store may return an item twice across its pages).
    let mut seen = BTreeSet::new();
    let staff_ratings: Vec<&crate::domain::link::StaffRating> = facts
        .staff_ratings
        .iter()
        .filter(|(id, _)| touring_ids.contains(id) && seen.insert(id))
        .map(|(_, rating)| rating)
        .collect();
    let mut staff_went_wrong = BTreeMap::new();
    for issue in staff_ratings.iter().flat_map(|r| &r.went_wrong) {
        *staff_went_wrong.entry(issue.as_str()).or_insert(0) += 1;
    }

    let agent_minutes: i64 = cohorts
        .touring
        .iter()
        .filter(|t| t.tour_type.needs_agent() && t.status.holds_time())
        .map(|t| (t.end - t.start).num_minutes())
        .sum();
    let offered = offered_agent_minutes(property, period);
    let with_outcome = |outcome: Outcome| count(cohorts.touring.iter().filter(|t| t.outcome == Some(outcome)));

    TourMetrics {
        property_id: property.id.to_string(),
        from: period.from,
        to: period.to,
        time_zone: property.time_zone.name().to_owned(),
        total_bookings: cohorts.booked.len() as u64,
        confirmed_tours: count(cohorts.touring.iter().filter(|t| was_confirmed(t))),
        completed_tours: completed,
        cancelled_tours: cohorts.with_status(TourStatus::Cancelled),
        no_show_tours: no_shows,
        average_booking_time: mean(&booking_times).unwrap_or(0.0),
        booking_time_p50: percentile(&booking_times, 50.0),
        booking_time_p95: percentile(&booking_times, 95.0),
        staff_utilization: if offered > 0 {
            round(agent_minutes as f64 / offered as f64, 4)
        } else {
            0.0
        },
        booking_success_rate: rate(succeeded, succeeded + failed),
        confirmation_delivery_rate: rate(delivered, delivered + undelivered),
        completion_rate: rate(completed, due),
        no_show_rate: rate(no_shows, completed + no_shows),
        staff_response_time_median: percentile(&responses, 50.0),
        satisfaction_score: mean(&scores).map(|m| round(m, 2)),
        satisfaction_count: scores.len() as u64,
        staff_satisfaction: rate(
            count(staff_ratings.iter().filter(|r| r.satisfied())),
            staff_ratings.len() as u64,
        ),
        staff_rating_count: staff_ratings.len() as u64,
        staff_satisfaction_goal: STAFF_SATISFACTION_GOAL,
        staff_went_wrong,
        double_booking_refusals: count(facts.refusals.iter().filter(|r| period.holds(cohorts.zone, r.at))),
        interested_tours: with_outcome(Outcome::Interested),
        not_interested_tours: with_outcome(Outcome::NotInterested),
        follow_up_tours: with_outcome(Outcome::FollowUpNeeded),
        outcome_rate: rate(
            count(
                cohorts
                    .touring
                    .iter()
                    .filter(|t| t.status == TourStatus::Completed && t.outcome.is_some()),
            ),
            completed,
        ),
        needs_attention: attention_list(property, &cohorts, facts, now),
        texts: text_figures(&cohorts, facts),
    }
}

fn text_figures(cohorts: &Cohorts<'_>, facts: &Facts) -> TextFigures {
    // The texts of the period's bookings only (the store may return more: its partitions are months).
    let booked: BTreeSet<&BookingId> = cohorts.booked.iter().map(|t| &t.booking_id).collect();
    let texts: Vec<&MessageFact> = facts
        .messages
        .iter()
        .filter(|m| m.kind.audience() == crate::domain::notify::Audience::Text && booked.contains(&m.booking_id))
        .collect();
    let sent: Vec<&&MessageFact> = texts.iter().filter(|m| m.status == DeliveryStatus::Sent).collect();
    let delivered = count(sent.iter().filter(|m| m.receipt == Some(true)));
    let failed = count(texts.iter().filter(|m| m.status == DeliveryStatus::Failed))
        + count(sent.iter().filter(|m| m.receipt == Some(false)));
    let texted: BTreeSet<&BookingId> = sent.iter().map(|m| &m.booking_id).collect();
    let texted_tours: Vec<&&TourRecord> = cohorts
        .booked
        .iter()
        .filter(|t| texted.contains(&t.booking_id))
        .collect();
    let replied = count(texted_tours.iter().filter(|t| {
        t.history
            .iter()
            .any(|c| c.source == crate::domain::lifecycle::ChangeSource::ProspectText)
    }));
    let confirmed = count(texted_tours.iter().filter(|t| t.prospect_confirmed_at.is_some()));
    let whole = texted_tours.len() as u64;
    TextFigures {
        sent: sent.len() as u64,
        delivered,
        failed,
        delivery_rate: rate(delivered, delivered + failed),
        texted_tours: whole,
        replied_tours: replied,
        reply_rate: rate(replied, whole),
        attendance_confirmed_tours: confirmed,
        attendance_confirmation_rate: rate(confirmed, whole),
    }
}

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Mon, "Monday"),
    (Weekday::Tue, "Tuesday"),
    (Weekday::Wed, "Wednesday"),
    (Weekday::Thu, "Thursday"),
    (Weekday::Fri, "Friday"),
    (Weekday::Sat, "Saturday"),
    (Weekday::Sun, "Sunday"),
];

/// The figures of `GET /api/resman/tours/trends` for a property and period.
pub fn trends(property: &Property, period: &Period, facts: &Facts) -> TourTrends {
    let cohorts = Cohorts::of(property, period, facts);
    let zone = cohorts.zone;
    let mut messages: BTreeMap<&BookingId, Vec<MessageFact>> = BTreeMap::new();
    for message in &facts.messages {
        messages.entry(&message.booking_id).or_default().push(message.clone());
    }
    let reminded = |t: &TourRecord| messages.get(&t.booking_id).is_some_and(|m| super::rollup::reminded(m));

    let mut per_day: BTreeMap<NaiveDate, u64> = period.dates().map(|d| (d, 0)).collect();
    let mut per_type: BTreeMap<&'static str, u64> = TourType::ALL.iter().map(|t| (t.as_str(), 0)).collect();
    for tour in &cohorts.booked {
        *per_day
            .entry(tour.created_at.with_timezone(&zone).date_naive())
            .or_default() += 1;
        *per_type.entry(tour.tour_type.as_str()).or_default() += 1;
    }

    let completed: Vec<&&TourRecord> = cohorts
        .touring
        .iter()
        .filter(|t| t.status == TourStatus::Completed)
        .collect();
    let stage = |t: &TourRecord| t.prospect_stage.unwrap_or_default();
    let applied = count(completed.iter().filter(|t| stage(t) >= ProspectStage::Applicant));
    let leased = count(completed.iter().filter(|t| stage(t) == ProspectStage::Resident));
    let done = completed.len() as u64;

    // Shows among the tours with an outcome (completed or missed), by the local weekday and hour of their start.
    let with_outcome: Vec<&&TourRecord> = cohorts
        .touring
        .iter()
        .filter(|t| matches!(t.status, TourStatus::Completed | TourStatus::NoShow))
        .collect();
    let tally_tours = |keep: &dyn Fn(&TourRecord) -> bool| {
        let tours = count(with_outcome.iter().filter(|t| keep(t)));
        let shows = count(
            with_outcome
                .iter()
                .filter(|t| t.status == TourStatus::Completed && keep(t)),
        );
        (tours, shows)
    };
    let tally = |keep: &dyn Fn(&DateTime<Tz>) -> bool| tally_tours(&|t| keep(&t.start.with_timezone(&zone)));
    let segments = |names: &[&'static str], of: &dyn Fn(&TourRecord) -> &'static str| {
        names
            .iter()
            .map(|name| {
                let (tours, shows) = tally_tours(&|t| of(t) == *name);
                SegmentShows {
                    segment: name,
                    tours,
                    shows,
                    rate: rate(shows, tours),
                }
            })
            .collect()
    };

    TourTrends {
        property_id: property.id.to_string(),
        from: period.from,
        to: period.to,
        time_zone: zone.name().to_owned(),
        daily_bookings: per_day
            .into_iter()
            .map(|(date, count)| DailyCount { date, count })
            .collect(),
        tour_type_distribution: per_type,
        conversion_rate: rate(leased, done).unwrap_or(0.0),
        tour_to_application_rate: rate(applied, done),
        tour_to_lease_rate: rate(leased, done),
        funnel: Funnel {
            booked: cohorts.touring.len() as u64,
            confirmed: count(cohorts.touring.iter().filter(|t| was_confirmed(t))),
            completed: done,
            applied,
            leased,
        },
        show_rate_by_weekday: WEEKDAYS
            .iter()
            .map(|(day, name)| {
                let (tours, shows) = tally(&|at| at.weekday() == *day);
                WeekdayShows {
                    weekday: name,
                    tours,
                    shows,
                    rate: rate(shows, tours),
                }
            })
            .collect(),
        show_rate_by_hour: (0..24)
            .map(|hour| {
                let (tours, shows) = tally(&|at| at.hour() == hour);
                HourShows {
                    hour,
                    tours,
                    shows,
                    rate: rate(shows, tours),
                }
            })
            .collect(),
        show_rate_by_lead_time: segments(&["same_day", "one_to_two_days", "three_days_or_more"], &|t| {
            lead_time(zone, t.created_at, t.start)
        }),
        show_rate_by_confirmation: segments(&["confirmed", "unconfirmed"], &|t| {
            if was_confirmed(t) { "confirmed" } else { "unconfirmed" }
        }),
        show_rate_by_prospect_confirmation: segments(&["prospect_confirmed", "not_prospect_confirmed"], &|t| {
            if t.prospect_confirmed_at.is_some() {
                "prospect_confirmed"
            } else {
                "not_prospect_confirmed"
            }
        }),
        show_rate_by_reminder: segments(&["reminded", "not_reminded"], &|t| {
            if reminded(t) { "reminded" } else { "not_reminded" }
        }),
    }
}

/// A period's day counters ([`super::rollup`]), summed the ways the figures need them.
struct Days<'a> {
    counters: &'a super::rollup::Share,
    period: &'a Period,
}

impl Days<'_> {
    /// The counter summed over the period's dates.
    fn sum(&self, name: &str) -> u64 {
        let total: i64 = self.period.dates().map(|date| self.counters.get(date, name)).sum();
        u64::try_from(total).unwrap_or(0)
    }

    /// The counter summed over the period's dates that `keep` keeps.
    fn sum_on(&self, name: &str, keep: &dyn Fn(NaiveDate) -> bool) -> u64 {
        let total: i64 = self
            .period
            .dates()
            .filter(|date| keep(*date))
            .map(|date| self.counters.get(date, name))
            .sum();
        u64::try_from(total).unwrap_or(0)
    }

    /// A duration's nearest-rank percentile from its histogram (`<prefix>.b<i>`): the upper bound of the bucket the
    /// rank falls in (the largest bound for the last, unbounded bucket).
    fn percentile(&self, prefix: &str, p: f64) -> Option<f64> {
        use super::rollup::SECONDS_BUCKETS;
        let counts: Vec<u64> = (0..=SECONDS_BUCKETS.len())
            .map(|i| self.sum(&format!("{prefix}.b{i}")))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let bound = SECONDS_BUCKETS[i.min(SECONDS_BUCKETS.len() - 1)];
                return Some(bound as f64);
            }
        }
        None
    }

    /// Tours and shows of one segment (`shows.<segment>.tours`, `.shows`).
    fn shows(&self, segment: &str, keep: &dyn Fn(NaiveDate) -> bool) -> (u64, u64) {
        (
            self.sum_on(&format!("shows.{segment}.tours"), keep),
            self.sum_on(&format!("shows.{segment}.shows"), keep),
        )
    }

    fn segments(&self, kind: &str, names: &[&'static str]) -> Vec<SegmentShows> {
        names
            .iter()
            .map(|name| {
                let (tours, shows) = self.shows(&format!("{kind}.{name}"), &|_| true);
                SegmentShows {
                    segment: name,
                    tours,
                    shows,
                    rate: rate(shows, tours),
                }
            })
            .collect()
    }
}

/// The open tours of the period's dates whose end has passed at `now` (the property's clock): every one of an
/// earlier date, and those of today that ended by the hour now begun.
fn ended_open_tours(days: &Days<'_>, zone: Tz, now: DateTime<Utc>) -> u64 {
    let local = now.with_timezone(&zone);
    let today = local.date_naive();
    (0..=24u32)
        .map(|hour| {
            let name = format!("tours.open.ended_by.h{hour:02}");
            let earlier = days.sum_on(&name, &|date| date < today);
            let today_ended = if hour <= local.hour() {
                days.sum_on(&name, &|date| date == today)
            } else {
                0
            };
            earlier + today_ended
        })
        .sum()
}

/// The figures of `GET /api/resman/tours/metrics` from the period's daily rollups (`counters`: the day counters of
/// the period's dates), at `now`, with the attention list read beside them. The same figures as [`metrics`] over
/// the tours, but for the percentiles of durations, which are the upper bounds of their histogram buckets.
pub fn metrics_of_days(
    property: &Property,
    period: &Period,
    counters: &super::rollup::Share,
    needs_attention: Vec<AttentionItem>,
    now: DateTime<Utc>,
) -> TourMetrics {
    let days = Days { counters, period };
    let zone = property.time_zone;
    let in_resman = days.sum("bookings.in_resman");
    let completed = days.sum("tours.status.completed");
    let no_shows = days.sum("tours.status.no_show");
    let due = completed + no_shows + ended_open_tours(&days, zone, now);
    let offered = offered_agent_minutes(property, period);
    let ratings = days.sum("ratings.count");
    let staff_ratings = days.sum("staff_ratings.count");
    let mut staff_went_wrong = BTreeMap::new();
    for issue in crate::domain::link::StaffIssue::ALL {
        let count = days.sum(&format!("staff_ratings.went_wrong.{}", issue.as_str()));
        if count > 0 {
            staff_went_wrong.insert(issue.as_str(), count);
        }
    }
    let texts = {
        let delivered = days.sum("texts.delivered");
        let failed = days.sum("texts.failed");
        let whole = days.sum("texts.tours");
        let replied = days.sum("texts.replied_tours");
        let confirmed = days.sum("texts.confirmed_tours");
        TextFigures {
            sent: days.sum("texts.sent"),
            delivered,
            failed,
            delivery_rate: rate(delivered, delivered + failed),
            texted_tours: whole,
            replied_tours: replied,
            reply_rate: rate(replied, whole),
            attendance_confirmed_tours: confirmed,
            attendance_confirmation_rate: rate(confirmed, whole),
        }
    };
    let sent = days.sum("confirmation.sent");
    TourMetrics {
        property_id: property.id.to_string(),
        from: period.from,
        to: period.to,
        time_zone: zone.name().to_owned(),
        total_bookings: days.sum("bookings"),
        confirmed_tours: days.sum("tours.confirmed"),
        completed_tours: completed,
        cancelled_tours: days.sum("tours.status.cancelled"),
        no_show_tours: no_shows,
        average_booking_time: if in_resman > 0 {
            round(days.sum("booking_time.ms") as f64 / 1000.0 / in_resman as f64, 3)
        } else {
            0.0
        },
        booking_time_p50: days.percentile("booking_time", 50.0),
        booking_time_p95: days.percentile("booking_time", 95.0),
        staff_utilization: if offered > 0 {
            round(days.sum("tours.agent_minutes") as f64 / offered as f64, 4)
        } else {
            0.0
        },
        booking_success_rate: rate(in_resman, in_resman + days.sum("bookings.failed")),
        confirmation_delivery_rate: rate(sent, sent + days.sum("confirmation.failed")),
        completion_rate: rate(completed, due),
        no_show_rate: rate(no_shows, completed + no_shows),
        staff_response_time_median: days.percentile("staff_response", 50.0),
        // Rounded as the mean of the tours is (to 3, then to 2).
        satisfaction_score: (ratings > 0).then(|| round(round(days.sum("ratings.sum") as f64 / ratings as f64, 3), 2)),
        satisfaction_count: ratings,
        staff_satisfaction: rate(days.sum("staff_ratings.satisfied"), staff_ratings),
        staff_rating_count: staff_ratings,
        staff_satisfaction_goal: STAFF_SATISFACTION_GOAL,
        staff_went_wrong,
        double_booking_refusals: days.sum("refusals"),
        interested_tours: days.sum("tours.outcome.interested"),
        not_interested_tours: days.sum("tours.outcome.not_interested"),
        follow_up_tours: days.sum("tours.outcome.follow_up_needed"),
        outcome_rate: rate(days.sum("tours.completed_with_outcome"), completed),
        needs_attention,
        texts,
    }
}

/// The attention list from what the rollups keep: the tours flagged whatever the time (read with the period's
/// counters), and the scheduled tours starting within the next day (`upcoming`, read as such), which staff have not
/// confirmed. Only tours starting on the period's dates; each once, its reasons in order; the first
/// [`MAX_ATTENTION`] by start.
pub fn attention_of(period: &Period, flagged: Vec<AttentionItem>, upcoming: Vec<AttentionItem>) -> Vec<AttentionItem> {
    let in_period = |item: &AttentionItem| {
        NaiveDate::parse_from_str(item.local_start.get(..10).unwrap_or_default(), "%Y-%m-%d")
            .is_ok_and(|date| period.from <= date && date <= period.to)
    };
    let mut items: BTreeMap<String, AttentionItem> = flagged
        .into_iter()
        .filter(|item| in_period(item))
        .map(|item| (item.booking_id.clone(), item))
        .collect();
    for item in upcoming.into_iter().filter(|item| in_period(item)) {
        items
            .entry(item.booking_id.clone())
            .or_insert(item)
            .reasons
            .push(Attention::Unconfirmed);
    }
    let mut items: Vec<AttentionItem> = items
        .into_values()
        .map(|mut item| {
            item.reasons.sort();
            item.reasons.dedup();
            item
        })
        .collect();
    items.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.booking_id.cmp(&b.booking_id)));
    items.truncate(MAX_ATTENTION);
    items
}

/// The figures of `GET /api/resman/tours/trends` from the period's daily rollups: the same as [`trends`] over the
/// tours.
pub fn trends_of_days(property: &Property, period: &Period, counters: &super::rollup::Share) -> TourTrends {
    let days = Days { counters, period };
    let completed = days.sum("tours.status.completed");
    let applied = days.sum("tours.applied");
    let leased = days.sum("tours.leased");
    TourTrends {
        property_id: property.id.to_string(),
        from: period.from,
        to: period.to,
        time_zone: property.time_zone.name().to_owned(),
        daily_bookings: period
            .dates()
            .map(|date| DailyCount {
                date,
                count: u64::try_from(counters.get(date, "bookings")).unwrap_or(0),
            })
            .collect(),
        tour_type_distribution: TourType::ALL
            .iter()
            .map(|t| (t.as_str(), days.sum(&format!("bookings.type.{}", t.as_str()))))
            .collect(),
        conversion_rate: rate(leased, completed).unwrap_or(0.0),
        tour_to_application_rate: rate(applied, completed),
        tour_to_lease_rate: rate(leased, completed),
        funnel: Funnel {
            booked: days.sum("tours"),
            confirmed: days.sum("tours.confirmed"),
            completed,
            applied,
            leased,
        },
        show_rate_by_weekday: WEEKDAYS
            .iter()
            .map(|(day, name)| {
                let (tours, shows) = days.shows("all", &|date| date.weekday() == *day);
                WeekdayShows {
                    weekday: name,
                    tours,
                    shows,
                    rate: rate(shows, tours),
                }
            })
            .collect(),
        show_rate_by_hour: (0..24)
            .map(|hour| {
                let (tours, shows) = days.shows(&format!("hour.{hour:02}"), &|_| true);
                HourShows {
                    hour,
                    tours,
                    shows,
                    rate: rate(shows, tours),
                }
            })
            .collect(),
        show_rate_by_lead_time: days.segments("lead", &["same_day", "one_to_two_days", "three_days_or_more"]),
        show_rate_by_confirmation: days.segments("confirmation", &["confirmed", "unconfirmed"]),
        show_rate_by_prospect_confirmation: days
            .segments("prospect", &["prospect_confirmed", "not_prospect_confirmed"]),
        show_rate_by_reminder: days.segments("reminder", &["reminded", "not_reminded"]),
    }
}

#[cfg(any(test, feature = "testing"))]
#[cfg_attr(not(test), allow(unused_imports, dead_code))]
pub mod tests {
    use super::*;
    use crate::domain::lifecycle::{ChangeSource, TourChange};
    use crate::domain::property::tests::demo;
    use crate::domain::slots::resolve_local;
    use chrono::NaiveDateTime;

    pub fn chicago(local: &str) -> DateTime<Utc> {
        let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
        resolve_local(chrono_tz::America::Chicago, local).unwrap()
    }

    pub fn date(raw: &str) -> NaiveDate {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
    }

    /// A 45-minute in-person tour of the demo property, booked at `booked` (Chicago) for `start` (Chicago).
    pub fn tour(n: u128, booked: &str, start: &str, status: TourStatus) -> TourRecord {
        let start = chicago(start);
        let created_at = chicago(booked);
        TourRecord {
            booking_id: BookingId::from_uuid(uuid::Uuid::from_u128(n)),
            start,
            end: start + Duration::minutes(45),
            idempotency_key: format!("k{n}"),
            created_at,
            in_resman_at: Some(created_at + Duration::seconds(2)),
            ..crate::domain::update::tests::tour(status)
        }
    }

    fn confirmed(mut tour: TourRecord, at: &str) -> TourRecord {
        tour.history.push(TourChange {
            version: 2,
            at: chicago(at),
            source: ChangeSource::StaffApi,
            status: TourStatus::Confirmed,
            start: tour.start,
            agent: None,
            overrode: None,
            received: None,
        });
        tour
    }

    pub fn facts(tours: Vec<TourRecord>) -> Facts {
        Facts {
            tours_by_start: tours.clone(),
            tours_by_booking: tours,
            ..Facts::default()
        }
    }

    #[test]
    fn a_period_is_the_propertys_dates_and_is_bounded() {
        let period = Period::with_defaults(None, None, date("2026-11-30")).unwrap();
        assert_eq!((period.from(), period.to()), (date("2026-11-01"), date("2026-11-30")));
        assert_eq!(
            period.window(chrono_tz::America::Chicago).start(),
            chicago("2026-11-01 00:00")
        );
        assert_eq!(
            Period::new(date("2026-12-02"), date("2026-12-01")).unwrap_err().field,
            "to"
        );
        assert_eq!(
            Period::new(date("2026-01-01"), date("2026-12-01")).unwrap_err().field,
            "to"
        );
        assert_eq!(parse_date("from", Some("12/01/2026")).unwrap_err().field, "from");
    }

    #[test]
    fn a_tour_late_in_the_evening_counts_on_the_propertys_date_not_utcs() {
        let property = demo();
        // 23:30 in Chicago on 1 December is 05:30 UTC on 2 December.
        let late = tour(1, "2026-12-01 23:30", "2026-12-01 23:30", TourStatus::Scheduled);
        let one_day = Period::new(date("2026-12-01"), date("2026-12-01")).unwrap();
        let next_day = Period::new(date("2026-12-02"), date("2026-12-02")).unwrap();
        let facts = facts(vec![late]);
        let now = chicago("2026-11-30 09:00");
        assert_eq!(metrics(&property, &one_day, &facts, now).total_bookings, 1);
        assert_eq!(metrics(&property, &next_day, &facts, now).total_bookings, 0);
        assert_eq!(trends(&property, &one_day, &facts).daily_bookings[0].count, 1);
    }

    #[test]
    fn recorded_outcomes_are_counted_and_the_tour_to_outcome_rate_is_over_completed_tours() {
        let property = demo();
        let period = Period::new(date("2026-12-01"), date("2026-12-07")).unwrap();
        let with = |n, status, outcome| {
            let mut t = tour(n, "2026-12-01 09:00", "2026-12-02 10:00", status);
            t.outcome = outcome;
            t
        };
        let tours = vec![
            with(1, TourStatus::Completed, Some(Outcome::Interested)),
            with(2, TourStatus::Completed, Some(Outcome::FollowUpNeeded)),
            with(3, TourStatus::Completed, Some(Outcome::Interested)),
            with(4, TourStatus::Completed, None),
            with(5, TourStatus::NoShow, Some(Outcome::NotInterested)),
        ];
        let m = metrics(&property, &period, &facts(tours), chicago("2026-12-10 09:00"));
        assert_eq!(
            (m.interested_tours, m.not_interested_tours, m.follow_up_tours),
            (2, 1, 1)
        );
        assert_eq!(
            m.outcome_rate,
            Some(0.75),
            "three of the four completed tours have an outcome"
        );
        let none = metrics(&property, &period, &facts(Vec::new()), chicago("2026-12-10 09:00"));
        assert_eq!((none.follow_up_tours, none.outcome_rate), (0, None));
    }

    #[test]
    fn staff_satisfaction_is_the_share_of_fours_and_fives_among_the_periods_answers_once_per_booking() {
        use crate::domain::link::{Score, StaffIssue, StaffRating};
        let property = demo();
        let period = Period::new(date("2026-12-01"), date("2026-12-07")).unwrap();
        let tours = (1..=6)
            .map(|n| tour(n, "2026-12-01 09:00", "2026-12-02 10:00", TourStatus::Completed))
            .collect();
        let mut facts = facts(tours);
        let rated = |n: u128, score: u8, went_wrong: Vec<StaffIssue>| {
            (
                BookingId::from_uuid(uuid::Uuid::from_u128(n)),
                StaffRating {
                    score: Score::try_from(score).unwrap(),
                    at: chicago("2026-12-02 12:00"),
                    went_wrong,
                },
            )
        };
        facts.staff_ratings = vec![
            rated(1, 5, Vec::new()),
            rated(2, 4, Vec::new()),
            rated(3, 5, Vec::new()),
            rated(4, 2, vec![StaffIssue::WrongTime, StaffIssue::MissingDetails]),
            // The same booking read twice, and a booking outside the period (tour 9 is not among them).
            rated(4, 2, vec![StaffIssue::WrongTime, StaffIssue::MissingDetails]),
            rated(9, 1, vec![StaffIssue::Other]),
        ];
        let m = metrics(&property, &period, &facts, chicago("2026-12-10 09:00"));
        assert_eq!(m.staff_rating_count, 4);
        assert_eq!(m.staff_satisfaction, Some(0.75), "three of four answers are a 4 or a 5");
        assert_eq!(m.staff_satisfaction_goal, 0.9);
        assert_eq!(
            m.staff_went_wrong.into_iter().collect::<Vec<_>>(),
            vec![("missing_details", 1), ("wrong_time", 1)]
        );
        let none = metrics(&property, &period, &Facts::default(), chicago("2026-12-10 09:00"));
        assert_eq!((none.staff_satisfaction, none.staff_rating_count), (None, 0));
    }

    #[test]
    fn outcomes_rates_and_times_follow_their_definitions() {
        let property = demo();
        let period = Period::new(date("2026-12-01"), date("2026-12-07")).unwrap();
        let now = chicago("2026-12-10 09:00");
        let mut pending = tour(5, "2026-12-02 08:00", "2026-12-04 10:00", TourStatus::Scheduled);
        pending.sync_status = SyncStatus::Pending;
        pending.in_resman_at = None;
        let mut refused = tour(6, "2026-12-02 08:00", "2026-12-04 11:00", TourStatus::Released);
        refused.sync_status = SyncStatus::Rejected;
        refused.in_resman_at = None;
        let mut slow = confirmed(
            tour(1, "2026-12-01 09:00", "2026-12-02 10:00", TourStatus::Completed),
            "2026-12-01 10:00",
        );
        slow.in_resman_at = Some(slow.created_at + Duration::seconds(10));
        let tours = vec![
            slow,
            confirmed(
                tour(2, "2026-12-01 09:00", "2026-12-03 10:00", TourStatus::NoShow),
                "2026-12-01 12:00",
            ),
            tour(3, "2026-12-01 09:00", "2026-12-03 11:00", TourStatus::Completed),
            tour(4, "2026-12-01 09:00", "2026-12-03 12:00", TourStatus::Cancelled),
            pending,
            refused,
        ];
        let mut facts = facts(tours);
        facts.ratings = vec![
            (BookingId::from_uuid(uuid::Uuid::from_u128(1)), 5),
            (BookingId::from_uuid(uuid::Uuid::from_u128(3)), 4),
        ];
        facts.refusals = [chicago("2026-12-01 10:00"), chicago("2026-11-30 10:00")]
            .into_iter()
            .map(|at| crate::domain::rollup::RefusalRef {
                property: property.id.clone(),
                key: format!("{}#0a1b", at.to_rfc3339()),
                at,
            })
            .collect();
        let m = metrics(&property, &period, &facts, now);
        assert_eq!(m.total_bookings, 6, "every booking made, the refused one included");
        assert_eq!((m.completed_tours, m.no_show_tours, m.cancelled_tours), (2, 1, 1));
        assert_eq!(m.confirmed_tours, 2);
        // Booking times of the four that reached ResMan: 2, 2, 2 and 10 seconds.
        assert_eq!(m.average_booking_time, 4.0);
        assert_eq!((m.booking_time_p50, m.booking_time_p95), (Some(2.0), Some(10.0)));
        // Four reached ResMan, one was refused; the pending one is not decided yet.
        assert_eq!(m.booking_success_rate, Some(0.8));
        // Due: completed twice, missed once, the pending one (its time passed) once; the cancelled one is not.
        assert_eq!(m.completion_rate, Some(0.5));
        assert_eq!(m.no_show_rate, Some(0.3333));
        // Confirmed one hour and three hours after booking: the median of two is the lower (nearest rank).
        assert_eq!(m.staff_response_time_median, Some(3600.0));
        assert_eq!((m.satisfaction_score, m.satisfaction_count), (Some(4.5), 2));
        assert_eq!(
            m.double_booking_refusals, 1,
            "the refusal of 30 November is outside the period"
        );
        // Two agents give agent tours, 9 hours a weekday and 7 on Saturday: 2 x (5 x 540 + 420 + 0) minutes offered;
        // booked: four 45-minute tours that keep their time (the cancelled and refused ones do not).
        assert_eq!(m.staff_utilization, round(180.0 / (2.0 * (5.0 * 540.0 + 420.0)), 4));
        assert_eq!(m.needs_attention.len(), 1);
        assert_eq!(m.needs_attention[0].reasons, vec![Attention::SyncPending]);
    }

    #[test]
    fn the_briefs_numbers_are_numbers_even_with_nothing_to_count() {
        let property = demo();
        let period = Period::new(date("2026-12-25"), date("2026-12-25")).unwrap();
        let m = metrics(&property, &period, &Facts::default(), chicago("2026-12-26 09:00"));
        // Christmas is closed: no agent minutes offered, no booking, no tour.
        assert_eq!((m.average_booking_time, m.staff_utilization), (0.0, 0.0));
        assert_eq!((m.booking_time_p50, m.completion_rate), (None, None));
        let t = trends(&property, &period, &Facts::default());
        assert_eq!((t.conversion_rate, t.tour_to_lease_rate), (0.0, None));
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["average_booking_time"].is_number() && json["staff_utilization"].is_number());
    }

    #[test]
    fn conversion_counts_completed_tours_whose_prospect_applied_or_leased() {
        let property = demo();
        let period = Period::new(date("2026-12-01"), date("2026-12-07")).unwrap();
        let mut leased = tour(1, "2026-12-01 09:00", "2026-12-02 10:00", TourStatus::Completed);
        leased.prospect_stage = Some(ProspectStage::Resident);
        let mut applied = tour(2, "2026-12-01 09:00", "2026-12-02 11:00", TourStatus::Completed);
        applied.prospect_stage = Some(ProspectStage::Applicant);
        let plain = tour(3, "2026-12-01 09:00", "2026-12-02 14:00", TourStatus::Completed);
        let mut missed = tour(4, "2026-12-01 09:00", "2026-12-02 14:00", TourStatus::NoShow);
        missed.prospect_stage = Some(ProspectStage::Resident);
        let t = trends(&property, &period, &facts(vec![leased, applied, plain, missed]));
        assert_eq!(t.tour_to_application_rate, Some(0.6667));
        assert_eq!(t.tour_to_lease_rate, Some(0.3333));
        assert_eq!(Some(t.conversion_rate), t.tour_to_lease_rate);
        assert_eq!(
            (t.funnel.booked, t.funnel.completed, t.funnel.applied, t.funnel.leased),
            (4, 3, 2, 1)
        );
        // 2 December 2026 is a Wednesday; the 14:00 hour had one show and one no-show.
        let wednesday = &t.show_rate_by_weekday[2];
        assert_eq!(
            (wednesday.weekday, wednesday.tours, wednesday.shows),
            ("Wednesday", 4, 3)
        );
        assert_eq!(t.show_rate_by_hour[14].rate, Some(0.5));
        assert_eq!(t.show_rate_by_hour[8].rate, None);
        // All four were booked the day before: one segment holds them all, the others none.
        let leads: Vec<(&str, u64, u64)> = t
            .show_rate_by_lead_time
            .iter()
            .map(|s| (s.segment, s.tours, s.shows))
            .collect();
        assert_eq!(
            leads,
            [
                ("same_day", 0, 0),
                ("one_to_two_days", 4, 3),
                ("three_days_or_more", 0, 0)
            ]
        );
        assert_eq!(t.show_rate_by_lead_time[0].rate, None);
        assert_eq!(t.tour_type_distribution["in_person"], 4);
        assert_eq!(t.daily_bookings.len(), 7);
    }

    #[test]
    fn text_figures_count_the_texts_and_what_the_texted_prospects_answered_and_shows_split_by_their_confirmation() {
        let property = demo();
        let period = Period::new(date("2026-12-01"), date("2026-12-31")).unwrap();
        let mut said_yes = tour(1, "2026-12-02 10:00", "2026-12-10 15:00", TourStatus::Completed);
        said_yes.prospect_confirmed_at = Some(chicago("2026-12-10 09:00"));
        said_yes.history.push(TourChange {
            version: 2,
            at: chicago("2026-12-10 09:00"),
            source: ChangeSource::ProspectText,
            status: TourStatus::Scheduled,
            start: said_yes.start,
            agent: None,
            overrode: None,
            received: None,
        });
        let silent = tour(2, "2026-12-02 10:00", "2026-12-10 16:00", TourStatus::NoShow);
        let never_texted = tour(3, "2026-12-02 10:00", "2026-12-10 17:00", TourStatus::Completed);
        let mut facts = facts(vec![said_yes.clone(), silent.clone(), never_texted]);
        let fact = |t: &TourRecord, kind, status, receipt| MessageFact {
            booking_id: t.booking_id.clone(),
            kind,
            status,
            receipt,
        };
        facts.messages = vec![
            fact(
                &said_yes,
                MessageKind::TextConfirmation,
                DeliveryStatus::Sent,
                Some(true),
            ),
            fact(&said_yes, MessageKind::TextReminder, DeliveryStatus::Sent, None),
            fact(
                &silent,
                MessageKind::TextConfirmation,
                DeliveryStatus::Sent,
                Some(false),
            ),
            fact(&silent, MessageKind::TextReminder, DeliveryStatus::Failed, None),
            fact(&silent, MessageKind::Confirmation, DeliveryStatus::Sent, None),
        ];
        let m = metrics(&property, &period, &facts, chicago("2026-12-20 09:00"));
        assert_eq!(
            m.texts,
            TextFigures {
                sent: 3,
                delivered: 1,
                failed: 2,
                delivery_rate: Some(0.3333),
                texted_tours: 2,
                replied_tours: 1,
                reply_rate: Some(0.5),
                attendance_confirmed_tours: 1,
                attendance_confirmation_rate: Some(0.5),
            }
        );
        let t = trends(&property, &period, &facts);
        let split: Vec<_> = t
            .show_rate_by_prospect_confirmation
            .iter()
            .map(|s| (s.segment, s.tours, s.shows))
            .collect();
        assert_eq!(split, [("prospect_confirmed", 1, 1), ("not_prospect_confirmed", 2, 1)]);
    }

    #[test]
    fn show_rates_by_lead_time_and_confirmation_split_the_tours_with_an_outcome() {
        let property = demo();
        let period = Period::new(date("2026-12-01"), date("2026-12-31")).unwrap();
        let tours = vec![
            // Booked that morning: shows.
            tour(1, "2026-12-10 08:00", "2026-12-10 15:00", TourStatus::Completed),
            // Booked at 11 pm the evening before (05:00 UTC the next day): one day ahead on the property's calendar.
            tour(2, "2026-12-09 23:00", "2026-12-10 10:00", TourStatus::NoShow),
            // Two days ahead, confirmed by staff: shows.
            confirmed(
                tour(3, "2026-12-08 12:00", "2026-12-10 11:00", TourStatus::Completed),
                "2026-12-09 09:00",
            ),
            // Nine days ahead, missed.
            tour(4, "2026-12-01 12:00", "2026-12-10 16:00", TourStatus::NoShow),
            // Still to come: no outcome, so in no show rate.
            tour(5, "2026-12-01 12:00", "2026-12-20 16:00", TourStatus::Scheduled),
        ];
        let t = trends(&property, &period, &facts(tours));
        let split = |segments: &[SegmentShows]| -> Vec<(&str, u64, u64, Option<f64>)> {
            segments.iter().map(|s| (s.segment, s.tours, s.shows, s.rate)).collect()
        };
        assert_eq!(
            split(&t.show_rate_by_lead_time),
            [
                ("same_day", 1, 1, Some(1.0)),
                ("one_to_two_days", 2, 1, Some(0.5)),
                ("three_days_or_more", 1, 0, Some(0.0)),
            ]
        );
        assert_eq!(
            split(&t.show_rate_by_confirmation),
            [("confirmed", 1, 1, Some(1.0)), ("unconfirmed", 3, 1, Some(0.3333))]
        );
        // The lead is counted in the property's days, whatever the hours between.
        let zone = property.time_zone;
        assert_eq!(
            lead_time(zone, chicago("2026-12-09 23:59"), chicago("2026-12-10 00:01")),
            "one_to_two_days"
        );
        assert_eq!(
            lead_time(zone, chicago("2026-12-10 00:01"), chicago("2026-12-10 23:59")),
            "same_day"
        );
        assert_eq!(
            lead_time(zone, chicago("2026-12-07 00:01"), chicago("2026-12-10 09:00")),
            "three_days_or_more"
        );
    }

    #[test]
    fn a_failed_confirmation_counts_against_delivery_and_puts_the_tour_on_the_list() {
        let property = demo();
        let period = Period::new(date("2026-12-01"), date("2026-12-07")).unwrap();
        let now = chicago("2026-12-03 09:00");
        // Tomorrow morning, not confirmed by staff: within a day of the tour.
        let soon = tour(1, "2026-12-01 09:00", "2026-12-04 08:00", TourStatus::Scheduled);
        let later = tour(2, "2026-12-01 09:00", "2026-12-06 10:00", TourStatus::Scheduled);
        let mut facts = facts(vec![soon.clone(), later.clone()]);
        facts.messages = vec![
            MessageFact {
                booking_id: soon.booking_id.clone(),
                kind: MessageKind::Confirmation,
                status: DeliveryStatus::Sent,
                receipt: None,
            },
            MessageFact {
                booking_id: later.booking_id.clone(),
                kind: MessageKind::Confirmation,
                status: DeliveryStatus::Failed,
                receipt: None,
            },
        ];
        let m = metrics(&property, &period, &facts, now);
        assert_eq!(m.confirmation_delivery_rate, Some(0.5));
        let reasons: Vec<_> = m
            .needs_attention
            .iter()
            .map(|a| (a.booking_id.clone(), a.reasons.clone()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (soon.booking_id.to_string(), vec![Attention::Unconfirmed]),
                (later.booking_id.to_string(), vec![Attention::MessageFailed]),
            ]
        );
    }

    #[cfg(test)]
    mod from_rollups {
        use super::*;
        use crate::domain::lifecycle::Outcome;
        use crate::domain::link::{Score, StaffIssue, StaffRating};
        use crate::domain::notify::{DeliveryStatus, MessageKind};
        use crate::domain::record::SyncStatus;
        use crate::domain::resman::ProspectStage;
        use crate::domain::rollup::{TourParts, recount, tour_share};
        use proptest::prelude::*;

        /// One generated tour: its record, messages and ratings, all booked inside 1 to 14 December.
        fn generated(n: u128, knobs: [u8; 12]) -> TourParts {
            let [
                booked,
                lead,
                hour,
                status,
                outcome,
                confirm,
                prospect,
                stage,
                sync,
                texts,
                rating,
                staff,
            ] = knobs;
            let statuses = [
                TourStatus::Scheduled,
                TourStatus::Confirmed,
                TourStatus::Completed,
                TourStatus::NoShow,
                TourStatus::Cancelled,
                TourStatus::Released,
            ];
            let booked_at = format!(
                "2026-12-{:02} {:02}:{:02}",
                1 + booked % 14,
                7 + booked % 12,
                (n % 60) as u8
            );
            let start_day = chicago(&booked_at).date_naive() + Duration::days(i64::from(lead % 6));
            let start = format!(
                "{start_day} {:02}:{:02}",
                9 + hour % 9,
                [0, 15, 30][usize::from(hour % 3)]
            );
            let mut t = tour(n, &booked_at, &start, statuses[usize::from(status % 6)]);
            t.in_resman_at = t.in_resman_at.map(|at| at + Duration::seconds(i64::from(sync) * 7));
            match sync % 5 {
                0 => {
                    t.in_resman_at = None;
                    t.sync_status = SyncStatus::Failed;
                }
                1 if t.status == TourStatus::Released => {
                    t.in_resman_at = None;
                    t.sync_status = SyncStatus::Rejected;
                }
                _ => {}
            }
            t.outcome = match outcome % 4 {
                0 => Some(Outcome::Interested),
                1 => Some(Outcome::FollowUpNeeded),
                2 => Some(Outcome::NotInterested),
                _ => None,
            };
            if confirm % 3 == 0 {
                let at = t.created_at + Duration::minutes(i64::from(confirm) * 13);
                t = confirmed(
                    t,
                    &at.with_timezone(&chrono_tz::America::Chicago)
                        .format("%Y-%m-%d %H:%M")
                        .to_string(),
                );
            }
            if prospect % 2 == 0 {
                t.prospect_confirmed_at = Some(t.start - Duration::hours(3));
            }
            if prospect % 3 == 0 {
                t.history.push(TourChange {
                    version: 3,
                    at: t.start - Duration::hours(2),
                    source: ChangeSource::ProspectText,
                    status: t.status,
                    start: t.start,
                    agent: None,
                    overrode: None,
                    received: None,
                });
            }
            t.prospect_stage =
                [None, Some(ProspectStage::Applicant), Some(ProspectStage::Resident)][usize::from(stage % 3)];
            let message = |kind, status, receipt| MessageFact {
                booking_id: t.booking_id.clone(),
                kind,
                status,
                receipt,
            };
            let mut messages = vec![message(
                MessageKind::Confirmation,
                [DeliveryStatus::Sent, DeliveryStatus::Failed, DeliveryStatus::Superseded][usize::from(texts % 3)],
                None,
            )];
            if texts % 2 == 0 {
                messages.push(message(
                    MessageKind::TextConfirmation,
                    DeliveryStatus::Sent,
                    [None, Some(true), Some(false)][usize::from(texts % 3)],
                ));
            }
            if texts % 5 == 1 {
                messages.push(message(MessageKind::TextReminder, DeliveryStatus::Failed, None));
            }
            if texts % 4 == 1 {
                messages.push(message(MessageKind::Reminder, DeliveryStatus::Sent, None));
            }
            TourParts {
                messages,
                rating: (rating % 3 == 0).then_some(1 + rating % 5),
                staff_rating: (staff % 3 == 0).then(|| StaffRating {
                    score: Score::parse(&(1 + staff % 5).to_string()).unwrap(),
                    at: t.end,
                    went_wrong: StaffIssue::ALL.iter().copied().take(usize::from(staff % 3)).collect(),
                }),
                tour: t,
            }
        }

        proptest! {
            /// Every figure read from the day counters is the figure computed from the tours themselves, but for
            /// the percentiles of durations, which are the upper bound of the bucket the exact value falls in.
            #[test]
            fn the_figures_from_the_rollups_are_the_figures_from_the_tours(
                knobs in proptest::collection::vec(any::<[u8; 12]>(), 0..40),
                from in 0u32..10,
                days in 1u32..20,
            ) {
                let property = demo();
                let zone = property.time_zone;
                let parts: Vec<TourParts> = knobs.iter().enumerate().map(|(n, k)| generated(n as u128 + 1, *k)).collect();
                let facts = Facts {
                    tours_by_start: parts.iter().map(|p| p.tour.clone()).collect(),
                    tours_by_booking: parts.iter().map(|p| p.tour.clone()).collect(),
                    ratings: parts.iter().filter_map(|p| p.rating.map(|r| (p.tour.booking_id.clone(), r))).collect(),
                    staff_ratings: parts
                        .iter()
                        .filter_map(|p| p.staff_rating.clone().map(|r| (p.tour.booking_id.clone(), r)))
                        .collect(),
                    messages: parts.iter().flat_map(|p| p.messages.clone()).collect(),
                    refusals: Vec::new(),
                };
                let shares: Vec<_> = parts.iter().map(|p| tour_share(zone, p)).collect();
                let counters = recount(&shares);
                let first = date("2026-12-01") + Duration::days(i64::from(from));
                let period = Period::new(first, first + Duration::days(i64::from(days) - 1)).unwrap();
                let now = chicago("2027-01-15 12:00");
                let exact = metrics(&property, &period, &facts, now);
                let rolled = metrics_of_days(&property, &period, &counters, exact.needs_attention.clone(), now);
                let bucketed = |exact: Option<f64>, rolled: Option<f64>| match (exact, rolled) {
                    (None, None) => true,
                    (Some(e), Some(r)) => {
                        let i = crate::domain::rollup::seconds_bucket(e);
                        let bounds = crate::domain::rollup::SECONDS_BUCKETS;
                        r == bounds[i.min(bounds.len() - 1)] as f64
                    }
                    _ => false,
                };
                prop_assert!(bucketed(exact.booking_time_p50, rolled.booking_time_p50));
                prop_assert!(bucketed(exact.booking_time_p95, rolled.booking_time_p95));
                prop_assert!(bucketed(exact.staff_response_time_median, rolled.staff_response_time_median));
                let mut exact_json = serde_json::to_value(&exact).unwrap();
                let mut rolled_json = serde_json::to_value(&rolled).unwrap();
                for field in ["booking_time_p50", "booking_time_p95", "staff_response_time_median"] {
                    exact_json[field] = serde_json::Value::Null;
                    rolled_json[field] = serde_json::Value::Null;
                }
                prop_assert_eq!(&rolled_json, &exact_json);
                prop_assert_eq!(trends_of_days(&property, &period, &counters), trends(&property, &period, &facts));
            }
        }
    }
}
