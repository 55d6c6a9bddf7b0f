//! ResMan's calendar as we mirror it: every tour event we read back (ours or booked by staff in ResMan) becomes
//! busy time for its agent. Changes arrive from the poller and the webhook; each carries the moment it describes
//! (`as_of`), and an older description never overwrites a newer one, so both sources can race safely.

use super::resman::{Prospect, ProspectEvent, TourEventStatus};
use super::{AgentId, AppointmentId, UtcWindow};
use chrono::{DateTime, Duration, Utc};

/// One ResMan appointment as we last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredAppointment {
    pub appointment_id: AppointmentId,
    pub agent: Option<AgentId>,
    pub window: UtcWindow,
    pub status: TourEventStatus,
    pub as_of: DateTime<Utc>,
}

impl MirroredAppointment {
    pub fn holds_time(&self) -> bool {
        self.status.holds_time()
    }

    /// Whether a newer description changes anything we keep.
    pub fn differs_from(&self, other: &MirroredAppointment) -> bool {
        self.agent != other.agent || self.window != other.window || self.status != other.status
    }
}

/// Whether a report stamped `as_of` describes an earlier moment than `than` (and so must not overwrite it). When
/// either stamp is in whole seconds (ResMan's webhook timestamps), they are compared in whole seconds and a tie
/// counts as newer: the later arrival wins, since a staff change in the same second as what we hold is news (and a
/// stale report in that second is set right by the next poll, which reads later). Precise stamps (the poller's
/// reads, our own writes) compare precisely, a tie being the same report again.
pub fn is_older(as_of: DateTime<Utc>, than: DateTime<Utc>) -> bool {
    let whole = |t: DateTime<Utc>| t.timestamp_subsec_nanos() == 0;
    if whole(as_of) || whole(than) {
        as_of.timestamp() < than.timestamp()
    } else {
        as_of <= than
    }
}

/// A tour's length in ResMan: the first "<N> min" in its comments (our posts write it), else `default_minutes`.
pub fn duration_from_comments(comments: Option<&str>, default_minutes: u32) -> Duration {
    let minutes = comments.and_then(|text| {
        let words: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
            .filter(|w| !w.is_empty())
            .collect();
        words.windows(2).find_map(|pair| match pair {
            [n, unit] if unit.to_ascii_lowercase().starts_with("min") => {
                n.parse::<u32>().ok().filter(|n| (5..=480).contains(n))
            }
            _ => None,
        })
    });
    Duration::minutes(minutes.unwrap_or(default_minutes).into())
}

/// The appointments among a prospect's events, as mirror records observed at `as_of`.
pub fn appointments_of(
    prospect: &Prospect,
    tour_event_type: &str,
    default_minutes: u32,
    as_of: DateTime<Utc>,
) -> Vec<MirroredAppointment> {
    prospect
        .tours(tour_event_type)
        .filter_map(|event: &ProspectEvent| {
            let start = event.at?;
            let window = UtcWindow::starting_at(
                start,
                duration_from_comments(event.comments.as_deref(), default_minutes),
            )
            .ok()?;
            Some(MirroredAppointment {
                appointment_id: event.id.clone()?,
                agent: event.agent.clone(),
                window,
                status: event.status,
                as_of,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_second_stamps_compare_in_whole_seconds_and_precise_ones_precisely() {
        let settled =
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 12, 0, 0).unwrap() + Duration::milliseconds(700);
        let same_second = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 12, 0, 0).unwrap();
        assert!(
            !is_older(same_second, settled),
            "a webhook in the second of our write is news"
        );
        assert!(is_older(same_second - Duration::seconds(1), settled));
        assert!(
            is_older(settled - Duration::milliseconds(200), settled),
            "a poll read before our write landed"
        );
        assert!(!is_older(settled + Duration::milliseconds(1), settled));
        assert!(
            !is_older(settled + Duration::milliseconds(1), same_second),
            "the later arrival wins a tie"
        );
    }

    #[test]
    fn the_duration_comes_from_the_comments_or_the_default() {
        assert_eq!(
            duration_from_comments(Some("In-Person Tour, 45 min. [tour-ref:x]"), 30),
            Duration::minutes(45)
        );
        assert_eq!(
            duration_from_comments(Some("Tour of 60 minutes"), 30),
            Duration::minutes(60)
        );
        assert_eq!(
            duration_from_comments(Some("unit 12, first floor"), 30),
            Duration::minutes(30)
        );
        assert_eq!(duration_from_comments(None, 45), Duration::minutes(45));
        assert_eq!(duration_from_comments(Some("9999 min"), 30), Duration::minutes(30));
    }
}
