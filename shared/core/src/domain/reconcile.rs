//! Two writers, one truth. The chatbot changes a tour through our API (ours, written to ResMan later by the outbox);
//! leasing staff change it in ResMan (theirs, reaching us by webhook or poll). When the two cross, one rule decides
//! each field, whichever side's news arrives first:
//!
//! - **A cancellation wins over a confirmation**, whoever made either and in whatever order: a tour someone called
//!   off is not kept on the calendar because someone else confirmed it.
//! - Otherwise **the later human action wins**, for the status and for the time and agent alike (a move by staff
//!   wins over the chatbot's older move, and the chatbot's later move over staff's older one). A staff change we
//!   only find by reading ResMan counts from when we read it; on a tie (within the second, as ResMan's clock tells
//!   only seconds) ResMan, the calendar of record, wins.
//! - **No rule decides** between two different outcomes (one side says the tour took place, the other that the
//!   prospect never came): those are facts, not changes of mind, and staff must say which holds.

use super::AgentId;
use super::lifecycle::{ChangeSource, TourStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A tour's status, time and agent: what one side holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub status: TourStatus,
    pub start: DateTime<Utc>,
    pub agent: Option<AgentId>,
}

/// What one side holds, and when a person last set its status, and its time and agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stance {
    pub holding: Holding,
    /// For ours, when our history last changed the status; for theirs, the staff action (a webhook's timestamp) or,
    /// found by reading ResMan, when we read it.
    pub status_at: DateTime<Utc>,
    /// The same for the time and agent.
    pub time_at: DateTime<Utc>,
}

/// Which side a field of the settled tour came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Our tour: the chatbot's (or a prospect's, or our API's) change.
    Ours,
    /// ResMan: a staff change.
    Theirs,
}

/// The tour both sides are to hold, each field with the side it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub holding: Holding,
    pub status_from: Side,
    /// The side the time and agent came from.
    pub time_from: Side,
}

impl Settled {
    /// Whether anything of ours lost (then our change is recorded as overridden).
    pub fn overrides_ours(&self, ours: &Holding) -> bool {
        (self.status_from == Side::Theirs && self.holding.status != ours.status)
            || (self.time_from == Side::Theirs
                && (self.holding.start, &self.holding.agent) != (ours.start, &ours.agent))
    }

    /// Whether anything of theirs lost (then ResMan must be written, and the staff change is recorded as overridden).
    pub fn overrides_theirs(&self, theirs: &Holding) -> bool {
        self.holding != *theirs
    }
}

/// How the crossing of two changes ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    Settled(Settled),
    /// No rule decides (the two sides recorded different outcomes): staff must look.
    Undecided,
}

/// Decides the tour both sides are to hold when ours and theirs differ (see the module's rules).
pub fn reconcile(ours: &Stance, theirs: &Stance) -> Reconciled {
    use TourStatus::{Cancelled, Completed, NoShow};
    // ResMan's clock (a webhook's timestamp) tells whole seconds: within one second, the calendar of record wins.
    let later = |ours: DateTime<Utc>, theirs: DateTime<Utc>| {
        if theirs.timestamp() >= ours.timestamp() {
            Side::Theirs
        } else {
            Side::Ours
        }
    };
    let pick = |side: Side| match side {
        Side::Ours => &ours.holding,
        Side::Theirs => &theirs.holding,
    };
    let (a, b) = (ours.holding.status, theirs.holding.status);
    let status_from = if a == b {
        Side::Theirs
    } else if matches!((a, b), (Completed, NoShow) | (NoShow, Completed)) {
        return Reconciled::Undecided;
    } else if a == Cancelled && b.is_open() {
        Side::Ours
    } else if b == Cancelled && a.is_open() {
        Side::Theirs
    } else {
        later(ours.status_at, theirs.status_at)
    };
    let same_time = (ours.holding.start, &ours.holding.agent) == (theirs.holding.start, &theirs.holding.agent);
    let time_from = if same_time {
        Side::Theirs
    } else {
        later(ours.time_at, theirs.time_at)
    };
    Reconciled::Settled(Settled {
        holding: Holding {
            status: pick(status_from).status,
            start: pick(time_from).start,
            agent: pick(time_from).agent.clone(),
        },
        status_from,
        time_from,
    })
}

/// A change that lost to a crossing one: who made it, what it set and when, kept in the tour's history beside the
/// change that won.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overridden {
    pub source: ChangeSource,
    pub status: TourStatus,
    pub start: DateTime<Utc>,
    pub agent: Option<AgentId>,
    pub at: DateTime<Utc>,
}

/// A tour on which the two sides disagree and no rule decides: both sides' statuses, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disagreement {
    pub ours: TourStatus,
    pub theirs: TourStatus,
    pub since: DateTime<Utc>,
    /// Who reported ResMan's side (the webhook or the poller).
    pub reported_by: ChangeSource,
}

#[cfg(test)]
mod tests {
    use super::*;
    use TourStatus::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn stance(status: TourStatus, hour: i64, agent: &str, minute: i64) -> Stance {
        Stance {
            holding: Holding {
                status,
                start: at(60 * hour),
                agent: Some(AgentId::parse(agent).unwrap()),
            },
            status_at: at(minute),
            time_at: at(minute),
        }
    }

    fn settled(ours: &Stance, theirs: &Stance) -> Settled {
        match reconcile(ours, theirs) {
            Reconciled::Settled(s) => s,
            Reconciled::Undecided => panic!("undecided"),
        }
    }

    #[test]
    fn a_staff_no_show_after_the_chatbots_confirm_wins() {
        // The cross of the issue: the chatbot confirmed (owed to ResMan), then an agent marked a no-show.
        let ours = stance(Confirmed, 2, "A", 0);
        let theirs = stance(NoShow, 2, "A", 5);
        let s = settled(&ours, &theirs);
        assert_eq!((s.holding.status, s.status_from), (NoShow, Side::Theirs));
        assert!(s.overrides_ours(&ours.holding));
        assert!(
            !s.overrides_theirs(&theirs.holding),
            "ResMan already holds it: nothing to write"
        );
    }

    #[test]
    fn a_cancellation_wins_over_a_confirmation_in_either_order_and_from_either_side() {
        for (o, t) in [(0, 5), (5, 0)] {
            let s = settled(&stance(Cancelled, 2, "A", o), &stance(Confirmed, 2, "A", t));
            assert_eq!((s.holding.status, s.status_from), (Cancelled, Side::Ours));
            let s = settled(&stance(Confirmed, 2, "A", o), &stance(Cancelled, 2, "A", t));
            assert_eq!((s.holding.status, s.status_from), (Cancelled, Side::Theirs));
            let s = settled(&stance(Scheduled, 2, "A", o), &stance(Cancelled, 2, "A", t));
            assert_eq!(s.holding.status, Cancelled);
        }
    }

    #[test]
    fn a_later_move_wins_whoever_made_it() {
        let staff_later = settled(&stance(Scheduled, 3, "A", 0), &stance(Scheduled, 4, "B", 5));
        assert_eq!(
            (staff_later.holding.start, staff_later.time_from),
            (at(240), Side::Theirs)
        );
        assert_eq!(staff_later.holding.agent, Some(AgentId::parse("B").unwrap()));
        let ours_later = settled(&stance(Scheduled, 3, "A", 5), &stance(Scheduled, 4, "B", 0));
        assert_eq!((ours_later.holding.start, ours_later.time_from), (at(180), Side::Ours));
        assert!(ours_later.overrides_theirs(&stance(Scheduled, 4, "B", 0).holding));
    }

    #[test]
    fn status_and_time_are_decided_apart() {
        // Staff moved the tour; the chatbot then cancelled it: cancelled, at the time staff chose.
        let s = settled(&stance(Cancelled, 2, "A", 5), &stance(Scheduled, 4, "A", 0));
        assert_eq!((s.holding.status, s.holding.start), (Cancelled, at(120)));
        let s = settled(&stance(Cancelled, 2, "A", 0), &stance(Scheduled, 4, "A", 5));
        assert_eq!((s.holding.status, s.holding.start), (Cancelled, at(240)));
    }

    #[test]
    fn each_field_counts_from_when_it_was_set() {
        // The chatbot confirmed at :00 and moved the tour at :09; staff marked it completed at :05. The status is
        // staff's (later than our confirm), the time ours (later than staff's).
        let ours = Stance {
            status_at: at(0),
            time_at: at(9),
            ..stance(Confirmed, 3, "A", 0)
        };
        let s = settled(&ours, &stance(Completed, 2, "A", 5));
        assert_eq!((s.status_from, s.time_from), (Side::Theirs, Side::Ours));
        assert_eq!((s.holding.status, s.holding.start), (Completed, at(180)));
    }

    #[test]
    fn a_tie_goes_to_resman_and_two_outcomes_are_left_to_staff() {
        let s = settled(&stance(Confirmed, 2, "A", 3), &stance(Completed, 2, "A", 3));
        assert_eq!(s.holding.status, Completed);
        assert_eq!(
            reconcile(&stance(Completed, 2, "A", 0), &stance(NoShow, 2, "A", 5)),
            Reconciled::Undecided
        );
    }

    fn status() -> impl Strategy<Value = TourStatus> {
        prop_oneof![
            Just(Scheduled),
            Just(Confirmed),
            Just(Completed),
            Just(NoShow),
            Just(Cancelled)
        ]
    }

    fn any_stance() -> impl Strategy<Value = Stance> {
        (status(), 0i64..4, prop_oneof![Just("A"), Just("B")], 0i64..10)
            .prop_map(|(s, hour, agent, minute)| stance(s, hour, agent, minute))
    }

    proptest! {
        /// Whatever crosses, every field of the result is one side's, a cancellation is never lost to a
        /// confirmation, and deciding again from the result changes nothing.
        #[test]
        fn the_rule_settles_on_one_sides_fields_and_is_stable(ours in any_stance(), theirs in any_stance()) {
            let Reconciled::Settled(s) = reconcile(&ours, &theirs) else {
                prop_assert!(matches!((ours.holding.status, theirs.holding.status), (Completed, NoShow) | (NoShow, Completed)));
                return Ok(());
            };
            prop_assert!(s.holding.status == ours.holding.status || s.holding.status == theirs.holding.status);
            let pair = (s.holding.start, s.holding.agent.clone());
            prop_assert!(pair == (ours.holding.start, ours.holding.agent.clone()) || pair == (theirs.holding.start, theirs.holding.agent.clone()));
            let statuses = [ours.holding.status, theirs.holding.status];
            if statuses.contains(&Cancelled) && statuses.iter().any(|s| s.is_open()) {
                prop_assert_eq!(s.holding.status, Cancelled);
            }
            let again = Stance {
                holding: s.holding.clone(),
                status_at: ours.status_at.max(theirs.status_at),
                time_at: ours.time_at.max(theirs.time_at),
            };
            let Reconciled::Settled(twice) = reconcile(&again, &theirs) else {
                return Err(TestCaseError::fail("the result is decided again"));
            };
            prop_assert_eq!(twice.holding.status, s.holding.status);
        }
    }
}
