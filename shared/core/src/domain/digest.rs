//! The leasing team's weekly digest: each Monday from 8 am on the property's clock, the week before in figures
//! (tours booked, held, missed and cancelled, and the team's own satisfaction against the brief's 90%), and the
//! week's tours the team has not rated yet, each with the one-click "was this booking useful?" links. Pure: the
//! caller passes the facts and `now`; sending it once per property and week is `app::digest`'s.

use super::analytics::{Facts, Period, TourMetrics, metrics, touring};
use super::property::Property;
use super::record::TourRecord;
use super::slots::resolve_local;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

/// The local hour on Monday from which the week before's digest is due.
pub const DIGEST_HOUR: u32 = 8;
/// How many unrated tours one digest lists (the rest are counted): an email a person reads to the end.
pub const LISTED: usize = 25;

/// The week a digest covers: Monday to Sunday on the property's calendar, named by its ISO week (`2026-W49`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestWeek {
    monday: NaiveDate,
}

impl DigestWeek {
    /// The week holding `date`.
    pub fn of(date: NaiveDate) -> Self {
        Self {
            monday: date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        }
    }

    /// An ISO week's name, `YYYY-Www`.
    pub fn parse(raw: &str) -> Result<Self, super::InvalidField> {
        let invalid = || super::InvalidField::new("week", "must be an ISO week, such as 2026-W49");
        let (year, week) = raw.trim().split_once("-W").ok_or_else(invalid)?;
        let monday = NaiveDate::from_isoywd_opt(
            year.parse().map_err(|_| invalid())?,
            week.parse().map_err(|_| invalid())?,
            chrono::Weekday::Mon,
        )
        .ok_or_else(invalid)?;
        Ok(Self { monday })
    }

    /// The week whose digest is due at `now` on the property's clock: the week before, from Monday 8 am; none before
    /// that (the week before's went out the Monday before).
    pub fn due(zone: Tz, now: DateTime<Utc>) -> Option<Self> {
        let this = Self::of(now.with_timezone(&zone).date_naive());
        let opens = resolve_local(zone, this.monday.and_hms_opt(DIGEST_HOUR, 0, 0)?)?;
        (now >= opens).then(|| Self {
            monday: this.monday - Duration::days(7),
        })
    }

    pub fn label(&self) -> String {
        let week = self.monday.iso_week();
        format!("{}-W{:02}", week.year(), week.week())
    }

    pub fn period(&self) -> Period {
        Period::new(self.monday, self.monday + Duration::days(6)).unwrap_or_else(|_| unreachable!("seven days"))
    }

    /// "30 November to 6 December 2026".
    pub fn in_words(&self) -> String {
        let sunday = self.monday + Duration::days(6);
        format!("{} to {}", self.monday.format("%-d %B"), sunday.format("%-d %B %Y"))
    }
}

/// What a week's digest says.
#[derive(Debug, Clone)]
pub struct Digest {
    pub week: DigestWeek,
    pub figures: TourMetrics,
    /// The week's tours the team has not rated, in time order, at most [`LISTED`]. As the analytics read them: their
    /// prospects' names are kept apart (the caller reads those for the tours listed).
    pub to_rate: Vec<TourRecord>,
    /// How many more are unrated.
    pub more_to_rate: usize,
}

/// The digest of `week` from its facts; none for a week without a booking or a tour (nothing to say).
pub fn digest(property: &Property, week: DigestWeek, facts: &Facts, now: DateTime<Utc>) -> Option<Digest> {
    let period = week.period();
    let figures = metrics(property, &period, facts, now);
    let mut tours = touring(property, &period, facts);
    if tours.is_empty() && figures.total_bookings == 0 {
        return None;
    }
    tours.retain(|t| !facts.staff_ratings.iter().any(|(id, _)| *id == t.booking_id));
    tours.sort_by_key(|t| (t.start, t.booking_id.clone()));
    let more_to_rate = tours.len().saturating_sub(LISTED);
    tours.truncate(LISTED);
    Some(Digest {
        week,
        figures,
        to_rate: tours.into_iter().cloned().collect(),
        more_to_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analytics::tests::{chicago, date, facts, tour};
    use crate::domain::link::{Score, StaffRating};
    use crate::domain::property::tests::demo;
    use crate::domain::{ids::BookingId, lifecycle::TourStatus};

    #[test]
    fn the_week_before_is_due_from_monday_8_am_on_the_propertys_clock() {
        let zone = chrono_tz::America::Chicago;
        // Monday 7 December 2026, 7:59 and 8:00 in Chicago.
        assert_eq!(DigestWeek::due(zone, chicago("2026-12-07 07:59")), None);
        let due = DigestWeek::due(zone, chicago("2026-12-07 08:00")).unwrap();
        assert_eq!(due.label(), "2026-W49");
        assert_eq!(
            (due.period().from(), due.period().to()),
            (date("2026-11-30"), date("2026-12-06"))
        );
        assert_eq!(due.in_words(), "30 November to 6 December 2026");
        // Any later time that week: the same week is due (a missed tick is caught up; it is sent once).
        assert_eq!(DigestWeek::due(zone, chicago("2026-12-13 23:59")), Some(due));
        // Sunday night in Chicago is Monday morning in UTC: still the week before last's.
        assert_eq!(
            DigestWeek::due(zone, chicago("2026-12-06 23:00")).unwrap().label(),
            "2026-W48"
        );
        assert_eq!(DigestWeek::parse("2026-W49").unwrap(), due);
        assert_eq!(DigestWeek::of(date("2026-12-06")), due);
        for bad in ["2026-49", "2026-W54", "x-W1", ""] {
            assert_eq!(DigestWeek::parse(bad).unwrap_err().field, "week", "{bad}");
        }
        // The ISO year, not the calendar year: 28 December 2026 to 3 January 2027 is 2026-W53.
        assert_eq!(DigestWeek::of(date("2027-01-02")).label(), "2026-W53");
    }

    #[test]
    fn a_digest_counts_the_week_and_lists_the_tours_not_yet_rated_in_time_order() {
        let property = demo();
        let week = DigestWeek::parse("2026-W49").unwrap();
        let mut tours: Vec<_> = (1..=30u128)
            .map(|n| {
                let start = format!("2026-12-0{} {}:00", 1 + n % 5, 9 + n % 8);
                tour(n, "2026-11-30 09:00", &start, TourStatus::Completed)
            })
            .collect();
        tours.push(tour(31, "2026-11-30 09:00", "2026-12-08 10:00", TourStatus::Scheduled));
        let mut facts = facts(tours);
        facts.staff_ratings = vec![(
            BookingId::from_uuid(uuid::Uuid::from_u128(7)),
            StaffRating {
                score: Score::try_from(5).unwrap(),
                at: chicago("2026-12-02 12:00"),
                went_wrong: Vec::new(),
            },
        )];
        let d = digest(&property, week, &facts, chicago("2026-12-07 09:00")).unwrap();
        assert_eq!(d.figures.completed_tours, 30, "the tour of the 8th is next week's");
        assert_eq!(
            (d.figures.staff_rating_count, d.figures.staff_satisfaction),
            (1, Some(1.0))
        );
        assert_eq!((d.to_rate.len(), d.more_to_rate), (LISTED, 29 - LISTED));
        assert!(d.to_rate.windows(2).all(|w| w[0].start <= w[1].start));
        assert!(
            d.to_rate
                .iter()
                .all(|t| t.booking_id != BookingId::from_uuid(uuid::Uuid::from_u128(7)))
        );
        // A quiet week says nothing.
        let quiet = DigestWeek::parse("2026-W47").unwrap();
        assert!(digest(&property, quiet, &facts, chicago("2026-12-07 09:00")).is_none());
    }
}
