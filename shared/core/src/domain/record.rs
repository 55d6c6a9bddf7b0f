//! What we keep of a tour: its record (the prospect, the time, who holds it, its state on our side and in ResMan,
//! and its history), who holds its time, and the slot locks that make a double booking impossible.

use super::ids::{BookingId, ConversationId};
use super::lifecycle::TourStatus;
use super::property::{GRANULE_MINUTES, Property};
use super::resman::ProspectContact;
use super::{AgentId, AppointmentId, Email, InvalidField, PersonName, Phone, ResManPropertyId, TourType, UtcWindow};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Who is held for a tour: an agent, or a self-guided seat (`0..capacity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Holder {
    Agent(AgentId),
    SelfGuidedSeat(u32),
}

impl Holder {
    pub fn lock_name(&self) -> String {
        match self {
            Self::Agent(agent) => agent.to_string(),
            Self::SelfGuidedSeat(seat) => format!("SG-{seat}"),
        }
    }

    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            Self::Agent(agent) => Some(agent),
            Self::SelfGuidedSeat(_) => None,
        }
    }
}

/// The instants of every granule a tour holds: its interval widened by the property's buffers (for agent tours),
/// cut into `GRANULE_MINUTES` pieces. Two tours of one holder overlap exactly when they share a granule.
pub fn lock_granules(property: &Property, holder: &Holder, window: &UtcWindow) -> Vec<DateTime<Utc>> {
    let (before, after) = match holder {
        Holder::Agent(_) => (property.buffer_before_minutes, property.buffer_after_minutes),
        Holder::SelfGuidedSeat(_) => (0, 0),
    };
    let step = Duration::minutes(GRANULE_MINUTES.into());
    let start = window.start() - Duration::minutes(before.into());
    let end = window.end() + Duration::minutes(after.into());
    // Tours start on the grid, so `start` is on a granule boundary; align anyway, down, for safety.
    let seconds = start.timestamp();
    let aligned = seconds - seconds.rem_euclid(step.num_seconds());
    let mut t = DateTime::from_timestamp(aligned, 0).unwrap_or(start);
    let mut granules = Vec::new();
    while t < end {
        granules.push(t);
        t += step;
    }
    granules
}

/// Whether the booking has reached ResMan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Booked here; on its way to ResMan (retried from the queue).
    Pending,
    /// In ResMan, with its appointment id.
    Synced,
    /// ResMan never took it after every retry: staff must look at it (the slot stays held).
    Failed,
    /// ResMan refused it; the slot was released.
    Rejected,
}

/// What we keep of a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourRecord {
    pub booking_id: BookingId,
    pub conversation_id: ConversationId,
    pub property_id: ResManPropertyId,
    pub tour_type: TourType,
    pub holder: Holder,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: TourStatus,
    pub sync_status: SyncStatus,
    pub resman_appointment_id: Option<AppointmentId>,
    pub resman_prospect_id: Option<String>,
    /// Personal data: kept for the ResMan write and the emails, never logged; stored apart from the tour and
    /// removed a configured time after it (or on request), after which these read as empty.
    #[serde(default)]
    pub prospect_name: String,
    #[serde(default)]
    pub prospect_email: String,
    #[serde(default)]
    pub prospect_phone: String,
    #[serde(default)]
    pub unit_preferences: Option<String>,
    #[serde(default)]
    pub special_requests: Option<String>,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Raised by one with every accepted change; records written before versions existed read as 1.
    #[serde(default = "first_version")]
    pub version: u64,
    /// Every change, oldest first, from the booking on.
    #[serde(default)]
    pub history: Vec<super::lifecycle::TourChange>,
    /// The version ResMan holds: 0 until the booking reached it. Below `version`, a ResMan write is owed.
    #[serde(default)]
    pub resman_version: u64,
    /// When ResMan last took a version of ours: a report from ResMan describing an earlier moment is stale.
    #[serde(default)]
    pub resman_synced_at: Option<DateTime<Utc>>,
    /// The version the chatbot's callback last carried (when callbacks are configured).
    #[serde(default)]
    pub callback_version: u64,
    #[serde(default)]
    pub staff_notes: Option<String>,
    #[serde(default)]
    pub outcome: Option<super::lifecycle::Outcome>,
    /// A status word from ResMan we do not know, kept as written (the status stays what it was).
    #[serde(default)]
    pub resman_word: Option<String>,
    /// When the booking first reached ResMan (its appointment created): the end of the booking time the analytics
    /// measure from `created_at`. Never moves once set.
    #[serde(default)]
    pub in_resman_at: Option<DateTime<Utc>>,
    /// How far the prospect came after the tour, as ResMan's change feed last said (`None`: not heard yet).
    #[serde(default)]
    pub prospect_stage: Option<super::resman::ProspectStage>,
    /// What ResMan holds of the tour as far as we know: what it last reported, or what we last wrote to it. A report
    /// (or a read before a write) that differs is a staff change.
    #[serde(default)]
    pub resman_seen: Option<super::reconcile::Holding>,
    /// The two sides disagree and no rule decides: staff must say which holds (the dashboard lists it).
    #[serde(default)]
    pub disagreement: Option<super::reconcile::Disagreement>,
    /// When the prospect confirmed they will come (a `C` reply to a text), beside staff's `confirmed` status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prospect_confirmed_at: Option<DateTime<Utc>>,
    /// Personal data: the prospect's latest text that no keyword answers, for a person or the chatbot to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prospect_reply: Option<ProspectReply>,
}

/// A prospect's own words by text (personal data: kept with the tour's personal data, erased with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProspectReply {
    pub at: DateTime<Utc>,
    pub words: String,
}

/// The most of a reply kept: a text's own limit (ten parts).
pub const REPLY_CHARS: usize = 1_600;

fn first_version() -> u64 {
    1
}

impl TourRecord {
    /// The tour once its prospect texted words no keyword answers (kept, at most [`REPLY_CHARS`]), as the next
    /// version: its callback carries them to the chatbot and staff are alerted.
    pub fn replied_by_text(&self, at: DateTime<Utc>, words: &str) -> TourRecord {
        let mut next = self.clone();
        next.prospect_reply = Some(ProspectReply {
            at,
            words: words.trim().chars().take(REPLY_CHARS).collect(),
        });
        next.next_version_by_text(at, false);
        next
    }

    /// The next version, made by the prospect's text. Unless it changed what ResMan keeps (`for_resman`: its status),
    /// it changes nothing there (time, agent, status, notes), so a tour ResMan was up to date with stays so: no
    /// ResMan write is owed for it, only the chatbot's callback.
    fn next_version_by_text(&mut self, at: DateTime<Utc>, for_resman: bool) {
        let resman_up_to_date = !self.owes_resman() && !for_resman;
        self.version += 1;
        if resman_up_to_date {
            self.resman_version = self.version;
        }
        self.history.push(super::lifecycle::TourChange {
            version: self.version,
            at,
            source: super::lifecycle::ChangeSource::ProspectText,
            status: self.status,
            start: self.start,
            agent: self.holder.agent().cloned(),
            overrode: None,
            received: None,
        });
    }

    /// The tour once its prospect confirmed they will come (by a reply to a text at `at`), as the next version;
    /// `None` when that changes nothing (confirmed already) or the tour no longer lies ahead. Where the property lets
    /// the prospect's word confirm the tour (`confirms_tour`), a scheduled tour also becomes `confirmed`, and ResMan
    /// is owed that write.
    pub fn attended_by_prospect(&self, at: DateTime<Utc>, confirms_tour: bool) -> Option<TourRecord> {
        if self.prospect_confirmed_at.is_some() || !self.status.is_open() || self.end <= at {
            return None;
        }
        let mut next = self.clone();
        next.prospect_confirmed_at = Some(at);
        let confirms = confirms_tour && self.status == super::lifecycle::TourStatus::Scheduled;
        if confirms {
            next.status = super::lifecycle::TourStatus::Confirmed;
        }
        next.next_version_by_text(at, confirms);
        Some(next)
    }
}

impl TourRecord {
    /// The version ResMan holds (a booking synced before versions were counted holds its first).
    pub fn resman_holds(&self) -> u64 {
        if self.resman_version == 0 && self.sync_status == SyncStatus::Synced {
            1
        } else {
            self.resman_version
        }
    }

    /// Where ResMan keeps the tour, once it is there: its appointment and its prospect.
    pub fn in_resman(&self) -> Option<(AppointmentId, super::ProspectId)> {
        let prospect = self
            .resman_prospect_id
            .as_deref()
            .and_then(|p| super::ProspectId::parse(p).ok())?;
        Some((self.resman_appointment_id.clone()?, prospect))
    }

    /// The tour's status, time and agent.
    pub fn holding(&self) -> super::reconcile::Holding {
        super::reconcile::Holding {
            status: self.status,
            start: self.start,
            agent: self.holder.agent().cloned(),
        }
    }

    /// What ResMan holds as far as we know (see `resman_seen`; for a record from before it, the version ResMan took,
    /// from the history). `None`: not known.
    pub fn held_in_resman(&self) -> Option<super::reconcile::Holding> {
        if let Some(seen) = &self.resman_seen {
            return Some(seen.clone());
        }
        if self.resman_version == self.version {
            return Some(self.holding());
        }
        self.history
            .iter()
            .find(|c| c.version == self.resman_version)
            .map(|c| super::reconcile::Holding {
                status: c.status,
                start: c.start,
                agent: c.agent.clone(),
            })
    }

    /// Our side of a crossing: the tour as it stands, with when its history last changed the status, and the time or
    /// agent.
    pub fn stance(&self) -> super::reconcile::Stance {
        let mut status_at = self.created_at;
        let mut time_at = self.created_at;
        let mut before: Option<&super::lifecycle::TourChange> = None;
        for change in &self.history {
            if before.is_none_or(|b| b.status != change.status) {
                status_at = change.at;
            }
            if before.is_none_or(|b| (b.start, &b.agent) != (change.start, &change.agent)) {
                time_at = change.at;
            }
            before = Some(change);
        }
        super::reconcile::Stance {
            holding: self.holding(),
            status_at,
            time_at,
        }
    }

    /// Whether the chatbot has yet to hear of this version (its callback, when one is configured).
    pub fn owes_callback(&self) -> bool {
        self.callback_version < self.version
    }

    /// Whether ResMan still lacks this tour's current version.
    pub fn owes_resman(&self) -> bool {
        !matches!(self.status, TourStatus::Released)
            && self.sync_status != SyncStatus::Rejected
            && self.resman_holds() < self.version
    }

    /// The latest moment this record describes: its last change, or when ResMan took our last write. A report from
    /// ResMan about an earlier moment is stale.
    pub fn settled_at(&self) -> DateTime<Utc> {
        let changed = self.history.last().map_or(self.created_at, |c| c.at);
        self.resman_synced_at.map_or(changed, |synced| synced.max(changed))
    }

    pub fn window(&self) -> UtcWindow {
        UtcWindow::new(self.start, self.end).unwrap_or_else(|_| unreachable!("a stored tour has a positive length"))
    }

    pub fn contact(&self) -> Result<ProspectContact, InvalidField> {
        Ok(ProspectContact {
            name: PersonName::parse(&self.prospect_name)?,
            email: Email::parse(&self.prospect_email)?,
            phone: Some(Phone::parse(&self.prospect_phone)?),
        })
    }

    /// The `Comments` of the ResMan tour event: tour type, length, the prospect's notes and our reference.
    pub fn resman_comments(&self) -> String {
        let minutes = (self.end - self.start).num_minutes();
        let mut text = format!(
            "{}, {minutes} min. Booked by the DomIQ chatbot.",
            self.tour_type.resman_name()
        );
        if let Some(units) = &self.unit_preferences {
            text.push_str(&format!(" Unit preferences: {units}."));
        }
        if let Some(requests) = &self.special_requests {
            text.push_str(&format!(" Special requests: {requests}."));
        }
        text.push(' ');
        text.push_str(&self.booking_id.resman_reference());
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        crate::domain::property::tests::monday_morning()
    }

    #[test]
    fn locks_cover_the_tour_and_its_buffers_in_granules() {
        let mut json = crate::domain::property::tests::demo_json();
        json["buffer_after_minutes"] = 15.into();
        let p = Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
        let start = crate::domain::slots::resolve_local(
            p.time_zone,
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
                .unwrap()
                .and_hms_opt(10, 0, 0)
                .unwrap(),
        )
        .unwrap();
        let window = UtcWindow::starting_at(start, Duration::minutes(45)).unwrap();
        let agent = lock_granules(&p, &Holder::Agent(AgentId::parse("A").unwrap()), &window);
        assert_eq!(agent.len(), 12, "45 minutes + 15 after = 60 minutes = 12 granules");
        assert_eq!(agent[0], start);
        let seat = lock_granules(&p, &Holder::SelfGuidedSeat(0), &window);
        assert_eq!(seat.len(), 9, "no buffers for a self-guided seat");
    }

    #[test]
    fn resman_comments_carry_the_length_the_notes_and_our_reference() {
        let id = BookingId::from_uuid(uuid::Uuid::nil());
        assert_eq!(BookingId::parse(id.as_str()).unwrap(), id);
        assert!(BookingId::parse("tour_xyz").is_err());
        let record = TourRecord {
            booking_id: id.clone(),
            tour_type: TourType::Virtual,
            start: now(),
            end: now() + Duration::minutes(30),
            unit_preferences: Some("2 bedrooms".into()),
            ..crate::domain::update::tests::tour(TourStatus::Scheduled)
        };
        let comments = record.resman_comments();
        assert!(comments.starts_with("Virtual Tour, 30 min."));
        assert!(comments.contains("Unit preferences: 2 bedrooms."));
        assert!(comments.ends_with(&format!("[tour-ref:{id}]")));
        assert_eq!(
            crate::domain::calendar::duration_from_comments(Some(&comments), 45),
            Duration::minutes(30)
        );
    }

    #[test]
    fn a_prospects_text_owes_resman_nothing_when_it_was_up_to_date_and_leaves_a_tour_behind_still_behind() {
        let synced = crate::domain::update::tests::tour(crate::domain::lifecycle::TourStatus::Scheduled);
        assert!(!synced.owes_resman());
        let at = synced.start - Duration::hours(5);
        let replied = synced.replied_by_text(at, "is parking free?");
        assert_eq!(replied.version, synced.version + 1);
        assert!(!replied.owes_resman() && replied.owes_callback());
        let behind = TourRecord {
            version: 3,
            resman_version: 2,
            ..synced
        };
        let confirmed = behind.attended_by_prospect(at, false).unwrap();
        assert_eq!(
            (confirmed.version, confirmed.resman_version),
            (4, 2),
            "the owed write is still owed"
        );
    }

    #[test]
    fn a_prospects_c_confirms_the_tour_itself_only_where_the_property_says_so_and_then_owes_resman_the_write() {
        use crate::domain::lifecycle::{ChangeSource, TourStatus};
        let synced = crate::domain::update::tests::tour(TourStatus::Scheduled);
        let at = synced.start - Duration::hours(5);
        let noted = synced.attended_by_prospect(at, false).unwrap();
        assert_eq!(noted.status, TourStatus::Scheduled);
        assert!(!noted.owes_resman());
        let confirmed = synced.attended_by_prospect(at, true).unwrap();
        assert_eq!(confirmed.status, TourStatus::Confirmed);
        assert_eq!(confirmed.prospect_confirmed_at, Some(at));
        assert!(confirmed.owes_resman() && confirmed.owes_callback());
        let last = confirmed.history.last().unwrap();
        assert_eq!(
            (last.source, last.status),
            (ChangeSource::ProspectText, TourStatus::Confirmed)
        );
        // Staff's confirmation already stands: the prospect's is noted beside it, and ResMan has nothing to learn.
        let by_staff = TourRecord {
            status: TourStatus::Confirmed,
            ..synced
        };
        let noted = by_staff.attended_by_prospect(at, true).unwrap();
        assert!(!noted.owes_resman());
    }
}
