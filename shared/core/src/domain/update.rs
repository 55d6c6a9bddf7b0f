//! A change to a booked tour: the chatbot's `UpdateTourRequest` made into a command, and the one pure function that
//! turns a tour and an edit (from the chatbot or from ResMan) into the tour's next version.

use super::lifecycle::{Change, ChangeSource, Decision, IllegalChange, Outcome, TourChange, TourStatus, decide};
use super::record::{Holder, TourRecord};
use super::{InvalidField, UtcWindow};
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

/// The largest update body accepted.
pub const MAX_UPDATE_BYTES: usize = super::limits::UPDATE_BODY_BYTES;
pub const MAX_STAFF_NOTES_CHARS: usize = super::limits::STAFF_NOTES_CHARS;

/// The new time asked for: an instant (RFC 3339 with an offset) or the property's local wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedTime {
    At(DateTime<Utc>),
    Local(NaiveDateTime),
}

impl RequestedTime {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let raw = raw.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
            return Ok(Self::At(at.with_timezone(&Utc)));
        }
        ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
            .map(Self::Local)
            .ok_or_else(|| {
                InvalidField::new(
                    "rescheduled_datetime",
                    "must be an RFC 3339 date-time with an offset, or the property's local YYYY-MM-DDTHH:MM",
                )
            })
    }

    /// The wall time at the property.
    pub fn local(&self, zone: Tz) -> NaiveDateTime {
        match self {
            Self::At(at) => at.with_timezone(&zone).naive_local(),
            Self::Local(local) => *local,
        }
    }
}

/// A valid `UpdateTourRequest`: at least one of its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateTourCommand {
    pub status: Option<Change>,
    pub reschedule: Option<RequestedTime>,
    pub staff_notes: Option<String>,
    pub outcome: Option<Outcome>,
    /// The body's digest: the same idempotency key with another body is another request.
    pub fingerprint: String,
}

const FIELDS: [&str; 4] = ["status", "rescheduled_datetime", "staff_notes", "outcome"];

fn text(
    object: &serde_json::Map<String, serde_json::Value>,
    name: &'static str,
) -> Result<Option<String>, InvalidField> {
    super::fields::text_field(object, name, name)
}

/// The chatbot's status words: `confirmed`, `cancelled`, `completed`, `no_show`.
fn status_change(raw: &str) -> Result<Change, InvalidField> {
    let wrong = || InvalidField::new("status", "must be one of confirmed, cancelled, completed, no_show");
    let status = match raw.trim().to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
        "confirmed" => TourStatus::Confirmed,
        "cancelled" | "canceled" => TourStatus::Cancelled,
        "completed" => TourStatus::Completed,
        "no_show" | "noshow" => TourStatus::NoShow,
        _ => return Err(wrong()),
    };
    Change::asking_for(status).ok_or_else(wrong)
}

impl UpdateTourCommand {
    /// Reads the raw body: not a JSON object, an unknown field, a field of the wrong type or value, or nothing to
    /// change, is a refusal naming the field.
    pub fn from_body(body: &[u8]) -> Result<Self, InvalidField> {
        let object = super::fields::json_object(body, MAX_UPDATE_BYTES)?;
        let object = &object;
        if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            // The field's name is the caller's, so it is not a `&'static str`: the reason carries it.
            return Err(InvalidField::new(
                "body",
                format!("has an unknown field {unknown:?} (expected {})", FIELDS.join(", ")),
            ));
        }
        let status = text(object, "status")?.as_deref().map(status_change).transpose()?;
        let reschedule = text(object, "rescheduled_datetime")?
            .as_deref()
            .map(RequestedTime::parse)
            .transpose()?;
        let staff_notes = text(object, "staff_notes")?
            .as_deref()
            .map(|raw| super::fields::checked_text(raw, "staff_notes", MAX_STAFF_NOTES_CHARS).map(str::to_owned))
            .transpose()?;
        let outcome = text(object, "outcome")?
            .as_deref()
            .map(|raw| {
                Outcome::parse(raw).ok_or_else(|| {
                    InvalidField::new("outcome", "must be one of interested, not_interested, follow_up_needed")
                })
            })
            .transpose()?;
        if status.is_none() && reschedule.is_none() && staff_notes.is_none() && outcome.is_none() {
            return Err(InvalidField::new(
                "body",
                "must give at least one of status, rescheduled_datetime, staff_notes, outcome",
            ));
        }
        if reschedule.is_some() && status.as_ref().is_some_and(|s| *s != Change::Confirm) {
            return Err(InvalidField::new(
                "status",
                "can only be confirmed when rescheduled_datetime is given (a moved tour is open)",
            ));
        }
        let canonical = serde_json::to_string(object).unwrap_or_default();
        Ok(Self {
            status,
            reschedule,
            staff_notes,
            outcome,
            fingerprint: hex::encode(Sha256::digest(canonical.as_bytes())),
        })
    }
}

/// What one edit asks of a tour, whoever asks: a move (to a window and a holder), a status change, notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    pub moved_to: Option<(UtcWindow, Holder)>,
    pub change: Option<Change>,
    pub staff_notes: Option<String>,
    pub outcome: Option<Outcome>,
    /// A ResMan status word we do not know: kept on the tour, the status left as it is.
    pub unknown_word: Option<String>,
}

/// The tour after `edit`, as version `version + 1` with a history entry stamped `at` (the moment the change
/// describes); `None` when the edit changes nothing (a retry, a redelivered report). A move is decided before the
/// status, so "move and confirm" confirms at the new time. `now` is when a move must start after (ResMan's own
/// moves may record the past, so its reports pass `None`).
pub fn edited(
    tour: &TourRecord,
    edit: &Edit,
    source: ChangeSource,
    at: DateTime<Utc>,
    now: Option<DateTime<Utc>>,
) -> Result<Option<TourRecord>, IllegalChange> {
    let mut next = tour.clone();
    let mut changed = false;
    if let Some((window, holder)) = &edit.moved_to {
        let to = Change::Move { to: *window };
        match decide(
            next.status,
            &next.window(),
            &to,
            now.unwrap_or(DateTime::<Utc>::MIN_UTC),
        )? {
            Decision::Apply(status) => {
                next.start = window.start();
                next.end = window.end();
                next.status = status;
                changed = true;
            }
            Decision::AlreadySo => {}
        }
        if next.holder != *holder {
            // Another agent at the same time: the tour stays as it stands otherwise.
            next.holder = holder.clone();
            changed = true;
        }
    }
    // A tour whose two sides recorded different outcomes: staff say which holds, and ResMan is then written to match.
    // The other side's outcome stays on record as overridden.
    let mut overrode = None;
    let settles = tour.disagreement.as_ref().and_then(|d| {
        [d.ours, d.theirs]
            .into_iter()
            .find(|status| edit.change.is_some() && Change::asking_for(*status) == edit.change)
            .map(|status| (status, d))
    });
    if let Some((status, d)) = settles {
        let (lost, lost_source, lost_at) = if status == d.ours {
            (d.theirs, d.reported_by, d.since)
        } else {
            let ours = tour.history.last();
            (
                d.ours,
                ours.map_or(ChangeSource::Chatbot, |c| c.source),
                ours.map_or(tour.created_at, |c| c.at),
            )
        };
        overrode = Some(crate::domain::reconcile::Overridden {
            source: lost_source,
            status: lost,
            start: tour.start,
            agent: tour.holder.agent().cloned(),
            at: lost_at,
        });
        next.status = status;
        next.disagreement = None;
        changed = true;
    } else if let Some(change) = &edit.change {
        match decide(
            next.status,
            &next.window(),
            change,
            now.unwrap_or(DateTime::<Utc>::MIN_UTC),
        )? {
            Decision::Apply(status) => {
                next.status = status;
                changed = true;
            }
            Decision::AlreadySo => {}
        }
    }
    if let Some(notes) = &edit.staff_notes
        && next.staff_notes.as_ref() != Some(notes)
    {
        next.staff_notes = Some(notes.clone());
        changed = true;
    }
    if let Some(outcome) = edit.outcome
        && next.outcome != Some(outcome)
    {
        next.outcome = Some(outcome);
        changed = true;
    }
    if next.resman_word != edit.unknown_word && (edit.unknown_word.is_some() || source != ChangeSource::Chatbot) {
        next.resman_word = edit.unknown_word.clone();
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    next.version = tour.version + 1;
    next.history.push(TourChange {
        version: next.version,
        at,
        source,
        status: next.status,
        start: next.start,
        agent: next.holder.agent().cloned(),
        overrode,
        received: None,
    });
    Ok(Some(next))
}

/// The tour after a crossing of our change and ResMan's (`theirs`, reported by `source` as of `at`) settled as
/// `settled`: version + 1 at the settled status, time and agent, its history entry naming the change that lost.
/// `None` when there is nothing to record (the tour holds it already and ResMan's change lost nothing).
pub fn settled(
    tour: &TourRecord,
    settled: &crate::domain::reconcile::Settled,
    theirs: &crate::domain::reconcile::Holding,
    source: ChangeSource,
    at: DateTime<Utc>,
) -> Option<TourRecord> {
    use crate::domain::reconcile::Overridden;
    let ours = tour.stance();
    let ours_lost = settled.overrides_ours(&ours.holding);
    let theirs_lost = settled.overrides_theirs(theirs);
    if !ours_lost && !theirs_lost {
        return None;
    }
    let mut next = tour.clone();
    next.status = settled.holding.status;
    next.end = settled.holding.start + (tour.end - tour.start);
    next.start = settled.holding.start;
    if let (Holder::Agent(_), Some(agent)) = (&tour.holder, &settled.holding.agent) {
        next.holder = Holder::Agent(agent.clone());
    }
    let our_source = tour.history.last().map_or(ChangeSource::Chatbot, |c| c.source);
    let overrode = if ours_lost {
        Overridden {
            source: our_source,
            status: ours.holding.status,
            start: ours.holding.start,
            agent: ours.holding.agent.clone(),
            at: ours.status_at.max(ours.time_at),
        }
    } else {
        Overridden {
            source,
            status: theirs.status,
            start: theirs.start,
            agent: theirs.agent.clone(),
            at,
        }
    };
    next.version = tour.version + 1;
    next.history.push(TourChange {
        version: next.version,
        at,
        source: if ours_lost { source } else { our_source },
        status: next.status,
        start: next.start,
        agent: next.holder.agent().cloned(),
        overrode: Some(overrode),
        received: None,
    });
    Some(next)
}

#[cfg(any(test, feature = "testing"))]
#[cfg_attr(not(test), allow(unused_imports, dead_code))]
pub mod tests {
    use super::*;
    use crate::domain::{AgentId, ResManPropertyId, TourType};
    use crate::domain::{
        ids::{BookingId, ConversationId},
        record::SyncStatus,
    };
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap()
    }

    pub fn tour(status: TourStatus) -> TourRecord {
        let start = now() + Duration::days(1);
        TourRecord {
            booking_id: BookingId::from_uuid(uuid::Uuid::nil()),
            conversation_id: ConversationId::parse("c").unwrap(),
            property_id: ResManPropertyId::parse("P-1").unwrap(),
            tour_type: TourType::InPerson,
            holder: Holder::Agent(AgentId::parse("A").unwrap()),
            start,
            end: start + Duration::minutes(45),
            status,
            sync_status: SyncStatus::Synced,
            resman_appointment_id: None,
            resman_prospect_id: None,
            prospect_name: "Ana Lopez".into(),
            prospect_email: "ana@example.com".into(),
            prospect_phone: "+15125550100".into(),
            unit_preferences: None,
            special_requests: None,
            idempotency_key: "k".into(),
            created_at: now(),
            last_error: None,
            version: 1,
            history: Vec::new(),
            resman_version: 1,
            resman_synced_at: None,
            callback_version: 1,
            staff_notes: None,
            outcome: None,
            resman_word: None,
            in_resman_at: None,
            prospect_stage: None,
            resman_seen: None,
            disagreement: None,
            prospect_confirmed_at: None,
            prospect_reply: None,
        }
    }

    fn parse(body: &str) -> Result<UpdateTourCommand, InvalidField> {
        UpdateTourCommand::from_body(body.as_bytes())
    }

    #[test]
    fn the_request_parses_each_field_and_names_what_is_wrong() {
        let c = parse(r#"{"status":"no_show","staff_notes":" late ","outcome":"follow_up_needed"}"#).unwrap();
        assert_eq!(c.status, Some(Change::NoShow));
        assert_eq!(c.staff_notes.as_deref(), Some("late"));
        assert_eq!(c.outcome, Some(Outcome::FollowUpNeeded));
        let moved = parse(r#"{"rescheduled_datetime":"2026-12-02T14:00"}"#).unwrap();
        assert!(matches!(moved.reschedule, Some(RequestedTime::Local(_))));
        let instant = parse(r#"{"rescheduled_datetime":"2026-12-02T14:00:00-06:00"}"#).unwrap();
        assert_eq!(
            instant.reschedule,
            Some(RequestedTime::At(Utc.with_ymd_and_hms(2026, 12, 2, 20, 0, 0).unwrap()))
        );
        for (body, field) in [
            ("{}", "body"),
            ("[]", "body"),
            ("nope", "body"),
            (r#"{"status":"confirmed","colour":"red"}"#, "body"),
            (r#"{"status":"scheduled"}"#, "status"),
            (r#"{"status":7}"#, "status"),
            (r#"{"rescheduled_datetime":"tomorrow"}"#, "rescheduled_datetime"),
            (r#"{"outcome":"maybe"}"#, "outcome"),
            (
                r#"{"rescheduled_datetime":"2026-12-02T14:00","status":"cancelled"}"#,
                "status",
            ),
        ] {
            assert_eq!(parse(body).unwrap_err().field, field, "{body}");
        }
        assert!(parse(r#"{"colour":"red"}"#).unwrap_err().reason.contains("colour"));
        let long = format!(r#"{{"staff_notes":"{}"}}"#, "x".repeat(MAX_STAFF_NOTES_CHARS + 1));
        assert_eq!(parse(&long).unwrap_err().field, "staff_notes");
        assert_ne!(
            parse(r#"{"status":"confirmed"}"#).unwrap().fingerprint,
            parse(r#"{"status":"cancelled"}"#).unwrap().fingerprint
        );
    }

    #[test]
    fn an_edit_makes_the_next_version_with_its_history_entry() {
        let t = tour(TourStatus::Scheduled);
        let confirm = Edit {
            change: Some(Change::Confirm),
            ..Default::default()
        };
        let next = edited(&t, &confirm, ChangeSource::Chatbot, now(), Some(now()))
            .unwrap()
            .unwrap();
        assert_eq!((next.status, next.version), (TourStatus::Confirmed, 2));
        let entry = next.history.last().unwrap();
        assert_eq!(
            (entry.version, entry.source, entry.status),
            (2, ChangeSource::Chatbot, TourStatus::Confirmed)
        );
        assert_eq!(
            edited(&next, &confirm, ChangeSource::ResmanPoll, now(), None).unwrap(),
            None,
            "asked again: nothing to write"
        );
    }

    #[test]
    fn a_move_reopens_the_tour_and_a_confirmation_with_it_confirms_at_the_new_time() {
        let t = tour(TourStatus::Confirmed);
        let to = UtcWindow::starting_at(t.start + Duration::hours(2), Duration::minutes(45)).unwrap();
        let b = Holder::Agent(AgentId::parse("B").unwrap());
        let moved = Edit {
            moved_to: Some((to, b.clone())),
            ..Default::default()
        };
        let next = edited(&t, &moved, ChangeSource::Chatbot, now(), Some(now()))
            .unwrap()
            .unwrap();
        assert_eq!(
            (next.status, next.start, &next.holder),
            (TourStatus::Scheduled, to.start(), &b)
        );
        let and_confirm = Edit {
            change: Some(Change::Confirm),
            ..moved
        };
        let next = edited(&t, &and_confirm, ChangeSource::Chatbot, now(), Some(now()))
            .unwrap()
            .unwrap();
        assert_eq!(
            (next.status, next.version, next.history.len()),
            (TourStatus::Confirmed, 2, 1)
        );
    }

    #[test]
    fn illegal_edits_name_the_current_status_and_resman_may_record_the_past() {
        let done = tour(TourStatus::Completed);
        let confirm = Edit {
            change: Some(Change::Confirm),
            ..Default::default()
        };
        let refused = edited(&done, &confirm, ChangeSource::Chatbot, now(), Some(now())).unwrap_err();
        assert_eq!(refused.current, TourStatus::Completed);
        let t = tour(TourStatus::Scheduled);
        let past = UtcWindow::starting_at(now() - Duration::hours(3), Duration::minutes(45)).unwrap();
        let back = Edit {
            moved_to: Some((past, t.holder.clone())),
            ..Default::default()
        };
        assert!(edited(&t, &back, ChangeSource::Chatbot, now(), Some(now())).is_err());
        assert!(
            edited(&t, &back, ChangeSource::ResmanPoll, now(), None)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn an_unknown_resman_word_is_kept_and_leaves_the_status() {
        let t = tour(TourStatus::Scheduled);
        let odd = Edit {
            unknown_word: Some("Rained Out".into()),
            ..Default::default()
        };
        let next = edited(&t, &odd, ChangeSource::ResmanWebhook, now(), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (next.status, next.resman_word.as_deref()),
            (TourStatus::Scheduled, Some("Rained Out"))
        );
    }

    #[test]
    fn the_notes_limit_counts_characters_as_sent_as_the_description_does() {
        let notes = |text: String| {
            UpdateTourCommand::from_body(serde_json::json!({ "staff_notes": text }).to_string().as_bytes())
        };
        assert!(notes("*".repeat(2000)).is_ok());
        assert!(
            notes("\u{1F600}".repeat(2000)).is_ok(),
            "one character each, however many bytes"
        );
        assert_eq!(
            notes(format!("\t{}", "*".repeat(2000))).unwrap_err().field,
            "staff_notes",
            "2001 as sent"
        );
    }
}
