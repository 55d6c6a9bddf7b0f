//! A tour's life as one pure state machine: `scheduled -> confirmed -> completed | no_show`, `cancelled` from any
//! open state, and a move that keeps the tour's identity. Whichever side asks (the chatbot, ResMan's webhook, the
//! poller), a change is decided here, so both sides follow the same rules.

use super::UtcWindow;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a tour stands. `Released` is a hold that never became a tour (ResMan refused it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TourStatus {
    Scheduled,
    Confirmed,
    Completed,
    NoShow,
    Cancelled,
    Released,
}

impl TourStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Confirmed => "confirmed",
            Self::Completed => "completed",
            Self::NoShow => "no_show",
            Self::Cancelled => "cancelled",
            Self::Released => "released",
        }
    }

    /// A tour still to happen: it can be confirmed, moved, cancelled, completed or missed.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Scheduled | Self::Confirmed)
    }

    /// Whether the tour keeps its agent's time: a cancelled or released one gives it back.
    pub fn holds_time(&self) -> bool {
        !matches!(self, Self::Cancelled | Self::Released)
    }
}

/// Who made a change to a tour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// The chatbot, through our API.
    Chatbot,
    /// ResMan's webhook (or its relay).
    ResmanWebhook,
    /// The poller reading ResMan's changes.
    ResmanPoll,
    /// Leasing staff through our API.
    StaffApi,
    /// The prospect, through a signed link in one of their emails (the self-service page).
    ProspectLink,
    /// The prospect, by a reply to one of our texts (`C` confirms attendance, `CANCEL` cancels).
    ProspectText,
}

/// One entry of a tour's history: the tour as a change left it, stamped with the version that change made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourChange {
    pub version: u64,
    pub at: DateTime<Utc>,
    pub source: ChangeSource,
    pub status: TourStatus,
    pub start: DateTime<Utc>,
    pub agent: Option<super::AgentId>,
    /// A crossing change this one won over (`domain::reconcile`): who made it, what it set and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrode: Option<super::reconcile::Overridden>,
    /// The other fields a ResMan notice updated, as received (`domain::notice`); removed when the prospect's data
    /// is erased, since staff may write anything there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// How the prospect left the tour, as staff or the chatbot record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Interested,
    NotInterested,
    FollowUpNeeded,
}

impl Outcome {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
            "interested" => Some(Self::Interested),
            "not_interested" => Some(Self::NotInterested),
            "follow_up_needed" => Some(Self::FollowUpNeeded),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Interested => "interested",
            Self::NotInterested => "not_interested",
            Self::FollowUpNeeded => "follow_up_needed",
        }
    }
}

/// A change asked of a tour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Confirm,
    Complete,
    NoShow,
    Cancel,
    /// To a new time (its agent, if it changes, is the caller's business: the state machine rules on the time).
    Move {
        to: UtcWindow,
    },
}

impl Change {
    /// What the change is called, for a refusal's message.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Complete => "complete",
            Self::NoShow => "mark as a no-show",
            Self::Cancel => "cancel",
            Self::Move { .. } => "reschedule",
        }
    }

    /// The change a status word asks for (`confirmed`, `cancelled`, `completed`, `no_show`, as the chatbot sends
    /// them); `scheduled` is not a change anyone can ask for.
    pub fn asking_for(status: TourStatus) -> Option<Change> {
        match status {
            TourStatus::Confirmed => Some(Self::Confirm),
            TourStatus::Completed => Some(Self::Complete),
            TourStatus::NoShow => Some(Self::NoShow),
            TourStatus::Cancelled => Some(Self::Cancel),
            TourStatus::Scheduled | TourStatus::Released => None,
        }
    }
}

/// What a legal change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The tour moves to this status (and, for a move, to the new time); its version goes up by one.
    Apply(TourStatus),
    /// Asked again for what already holds (a retry, a redelivered notice): nothing to write.
    AlreadySo,
}

/// A change the tour's state does not allow, naming the state: a 409 to the chatbot, a logged refusal for ResMan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {change} a tour that is {}{reason}", current.as_str())]
pub struct IllegalChange {
    pub current: TourStatus,
    pub change: &'static str,
    /// More than the state, when there is more to say (" into the past").
    pub reason: &'static str,
}

/// Rules on one change of a tour that is `current`, now at `window`.
pub fn decide(
    current: TourStatus,
    window: &UtcWindow,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Decision, IllegalChange> {
    let refuse = |reason| IllegalChange {
        current,
        change: change.name(),
        reason,
    };
    let target = match change {
        Change::Confirm => TourStatus::Confirmed,
        Change::Complete => TourStatus::Completed,
        Change::NoShow => TourStatus::NoShow,
        Change::Cancel => TourStatus::Cancelled,
        Change::Move { to } => {
            if !current.is_open() {
                return Err(refuse(""));
            }
            if to.start() <= now {
                return Err(refuse(" into the past"));
            }
            // A new time wants a fresh confirmation from staff.
            return Ok(if to == window {
                Decision::AlreadySo
            } else {
                Decision::Apply(TourStatus::Scheduled)
            });
        }
    };
    if current == target {
        return Ok(Decision::AlreadySo);
    }
    let legal = match target {
        TourStatus::Confirmed => current == TourStatus::Scheduled,
        // Staff may record the outcome without having confirmed first.
        TourStatus::Completed | TourStatus::NoShow | TourStatus::Cancelled => current.is_open(),
        TourStatus::Scheduled | TourStatus::Released => false,
    };
    if legal {
        Ok(Decision::Apply(target))
    } else {
        Err(refuse(""))
    }
}

/// A tour's state as ResMan words it (`EventReasons`), with a word we do not know kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResManWord {
    Known(TourStatus),
    /// Not one of ResMan's words we know: kept as written and reported, never guessed at.
    Unknown(String),
}

impl ResManWord {
    /// Reads `Scheduled`, `Confirmed`, `Completed`, `Cancelled` (or `Canceled`), `No Show` (any case, spaces,
    /// hyphens); a missing word is a tour just scheduled.
    pub fn read(word: Option<&str>) -> Self {
        let Some(raw) = word.map(str::trim).filter(|w| !w.is_empty()) else {
            return Self::Known(TourStatus::Scheduled);
        };
        let folded: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect();
        match folded.as_str() {
            "scheduled" => Self::Known(TourStatus::Scheduled),
            "confirmed" => Self::Known(TourStatus::Confirmed),
            "completed" => Self::Known(TourStatus::Completed),
            "cancelled" | "canceled" => Self::Known(TourStatus::Cancelled),
            "noshow" => Self::Known(TourStatus::NoShow),
            _ => Self::Unknown(raw.to_owned()),
        }
    }

    /// ResMan's word for a status of ours: the appointment's `EventReasons` when we write a change. A cancellation
    /// is the appointment's reason `Cancelled` (which frees the agent in ResMan's calendar) plus a note; never a
    /// `Cancel` event, which would mark the prospect lost. A released hold never reached ResMan: no word.
    pub fn write(status: TourStatus) -> Option<super::resman::TourEventStatus> {
        use super::resman::TourEventStatus as E;
        match status {
            TourStatus::Scheduled => Some(E::Scheduled),
            TourStatus::Confirmed => Some(E::Confirmed),
            TourStatus::Completed => Some(E::Completed),
            TourStatus::NoShow => Some(E::NoShow),
            TourStatus::Cancelled => Some(E::Cancelled),
            TourStatus::Released => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    const ALL: [TourStatus; 6] = [
        TourStatus::Scheduled,
        TourStatus::Confirmed,
        TourStatus::Completed,
        TourStatus::NoShow,
        TourStatus::Cancelled,
        TourStatus::Released,
    ];

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap()
    }

    fn at(hours_from_now: i64) -> UtcWindow {
        UtcWindow::starting_at(now() + Duration::hours(hours_from_now), Duration::minutes(45)).unwrap()
    }

    fn status_changes() -> [Change; 4] {
        [Change::Confirm, Change::Complete, Change::NoShow, Change::Cancel]
    }

    /// The whole table of status changes: from each state, each change, what happens.
    #[test]
    fn every_status_change_from_every_state_is_decided_as_the_table_says() {
        use Decision::{AlreadySo, Apply};
        use TourStatus::*;
        let expected: [(TourStatus, [Option<Decision>; 4]); 6] = [
            // from          confirm                complete              no-show            cancel
            (
                Scheduled,
                [
                    Some(Apply(Confirmed)),
                    Some(Apply(Completed)),
                    Some(Apply(NoShow)),
                    Some(Apply(Cancelled)),
                ],
            ),
            (
                Confirmed,
                [
                    Some(AlreadySo),
                    Some(Apply(Completed)),
                    Some(Apply(NoShow)),
                    Some(Apply(Cancelled)),
                ],
            ),
            (Completed, [None, Some(AlreadySo), None, None]),
            (NoShow, [None, None, Some(AlreadySo), None]),
            (Cancelled, [None, None, None, Some(AlreadySo)]),
            (Released, [None, None, None, None]),
        ];
        for (from, row) in expected {
            for (change, want) in status_changes().iter().zip(row) {
                let got = decide(from, &at(24), change, now()).ok();
                assert_eq!(got, want, "{} from {}", change.name(), from.as_str());
            }
        }
    }

    #[test]
    fn a_refusal_names_the_current_status() {
        let refused = decide(TourStatus::Cancelled, &at(24), &Change::Complete, now()).unwrap_err();
        assert_eq!(refused.to_string(), "cannot complete a tour that is cancelled");
        let refused = decide(TourStatus::Completed, &at(-24), &Change::Confirm, now()).unwrap_err();
        assert_eq!(refused.current, TourStatus::Completed);
    }

    #[test]
    fn an_open_tour_moves_to_a_future_time_and_wants_confirming_again() {
        for from in [TourStatus::Scheduled, TourStatus::Confirmed] {
            assert_eq!(
                decide(from, &at(24), &Change::Move { to: at(48) }, now()),
                Ok(Decision::Apply(TourStatus::Scheduled))
            );
            assert_eq!(
                decide(from, &at(24), &Change::Move { to: at(24) }, now()),
                Ok(Decision::AlreadySo),
                "moving to where it is changes nothing"
            );
        }
    }

    #[test]
    fn a_move_into_the_past_or_of_a_closed_tour_is_refused() {
        let past = decide(TourStatus::Scheduled, &at(24), &Change::Move { to: at(-1) }, now()).unwrap_err();
        assert_eq!(
            past.to_string(),
            "cannot reschedule a tour that is scheduled into the past"
        );
        let now_exactly = UtcWindow::starting_at(now(), Duration::minutes(45)).unwrap();
        assert!(decide(TourStatus::Scheduled, &at(24), &Change::Move { to: now_exactly }, now()).is_err());
        for closed in [
            TourStatus::Completed,
            TourStatus::NoShow,
            TourStatus::Cancelled,
            TourStatus::Released,
        ] {
            assert!(decide(closed, &at(24), &Change::Move { to: at(48) }, now()).is_err());
        }
    }

    #[test]
    fn only_the_four_words_the_chatbot_may_send_are_changes() {
        assert_eq!(Change::asking_for(TourStatus::Confirmed), Some(Change::Confirm));
        assert_eq!(Change::asking_for(TourStatus::NoShow), Some(Change::NoShow));
        assert_eq!(Change::asking_for(TourStatus::Scheduled), None);
        assert_eq!(Change::asking_for(TourStatus::Released), None);
    }

    #[test]
    fn resman_words_map_to_our_states_and_an_unknown_word_is_kept_verbatim() {
        let cases = [
            (Some("Scheduled"), ResManWord::Known(TourStatus::Scheduled)),
            (Some("Confirmed"), ResManWord::Known(TourStatus::Confirmed)),
            (Some(" completed "), ResManWord::Known(TourStatus::Completed)),
            (Some("Cancelled"), ResManWord::Known(TourStatus::Cancelled)),
            (Some("Canceled"), ResManWord::Known(TourStatus::Cancelled)),
            (Some("No Show"), ResManWord::Known(TourStatus::NoShow)),
            (Some("no-show"), ResManWord::Known(TourStatus::NoShow)),
            (Some("NoShow"), ResManWord::Known(TourStatus::NoShow)),
            (None, ResManWord::Known(TourStatus::Scheduled)),
            (Some("  "), ResManWord::Known(TourStatus::Scheduled)),
            (
                Some("Rescheduled by Resident"),
                ResManWord::Unknown("Rescheduled by Resident".into()),
            ),
        ];
        for (word, want) in cases {
            assert_eq!(ResManWord::read(word), want, "{word:?}");
        }
    }

    #[test]
    fn our_states_are_written_in_resmans_words_and_read_back_the_same() {
        for status in ALL {
            match ResManWord::write(status) {
                Some(word) => assert_eq!(ResManWord::read(Some(word.as_resman())), ResManWord::Known(status)),
                None => assert_eq!(status, TourStatus::Released),
            }
        }
    }

    fn any_status() -> impl Strategy<Value = TourStatus> {
        proptest::sample::select(ALL.to_vec())
    }

    fn any_change() -> impl Strategy<Value = Change> {
        prop_oneof![
            Just(Change::Confirm),
            Just(Change::Complete),
            Just(Change::NoShow),
            Just(Change::Cancel),
            (-48i64..96).prop_map(|h| Change::Move { to: at(h) }),
        ]
    }

    proptest! {
        /// Whatever order changes come in: a closed tour never reopens, a released one never changes, and asking
        /// for what already holds never writes.
        #[test]
        fn a_closed_tour_never_reopens(start in any_status(), changes in proptest::collection::vec(any_change(), 1..20)) {
            let mut status = start;
            let mut window = at(24);
            for change in &changes {
                let was_open = status.is_open();
                if let Ok(Decision::Apply(next)) = decide(status, &window, change, now()) {
                    prop_assert!(was_open, "{} changed a closed tour ({})", change.name(), status.as_str());
                    let moved = matches!(change, Change::Move { to } if *to != window);
                    prop_assert!(next != status || moved, "an applied change changes the status or the time");
                    status = next;
                    if let Change::Move { to } = change {
                        window = *to;
                    }
                }
                prop_assert!(status != TourStatus::Released || start == TourStatus::Released);
            }
        }
    }
}
