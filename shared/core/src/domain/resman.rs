//! What we know of ResMan's records, in our terms. The wire shapes live in the ResMan adapter.

use super::ids::PersonId;
use super::{AgentId, AppointmentId, Email, PersonName, Phone, ProspectId, ProspectSourceId};
use chrono::{DateTime, Utc};

/// A ResMan account: one management company (our customer), ResMan's `AccountID`. Our integration reaches each
/// account with its own credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ResManAccountId(pub u64);

impl std::fmt::Display for ResManAccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a ResMan call goes: the property, and the account it belongs to (`None`: the integration's default
/// account, the one in the partner credentials).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResManSite {
    pub account: Option<ResManAccountId>,
    pub property: super::ResManPropertyId,
}

impl ResManSite {
    pub fn new(account: Option<ResManAccountId>, property: super::ResManPropertyId) -> Self {
        Self { account, property }
    }
}

/// A ResMan employee; `is_leasing` tells who gives tours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    pub id: AgentId,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub is_leasing: bool,
}

/// A lead source; a new guest card must name one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProspectSource {
    pub id: ProspectSourceId,
    pub name: String,
}

/// Where ResMan keeps a prospect: the ids its `Identification` elements carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProspectRef {
    pub prospect_id: ProspectId,
    pub person_id: Option<PersonId>,
}

/// The state of a tour as ResMan words it (`EventReasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TourEventStatus {
    Scheduled,
    Confirmed,
    Completed,
    Cancelled,
    NoShow,
}

impl TourEventStatus {
    pub fn as_resman(&self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::Confirmed => "Confirmed",
            Self::Completed => "Completed",
            Self::Cancelled => "Cancelled",
            Self::NoShow => "No Show",
        }
    }

    /// Reads ResMan's word; an unknown or missing reason is a scheduled tour.
    pub fn from_resman(word: Option<&str>) -> Self {
        match word.map(str::trim).unwrap_or_default().to_ascii_lowercase().as_str() {
            "confirmed" => Self::Confirmed,
            "completed" => Self::Completed,
            "cancelled" | "canceled" => Self::Cancelled,
            "no show" | "noshow" | "no-show" => Self::NoShow,
            _ => Self::Scheduled,
        }
    }

    /// Whether the tour still takes up its agent's time.
    pub fn holds_time(&self) -> bool {
        !matches!(self, Self::Cancelled)
    }
}

/// An event on a prospect as ResMan returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProspectEvent {
    pub id: Option<AppointmentId>,
    pub event_type: String,
    pub at: Option<DateTime<Utc>>,
    pub agent: Option<AgentId>,
    pub status: TourEventStatus,
    /// `EventReasons` exactly as ResMan wrote it (`status` reads an unknown word as `Scheduled`).
    pub reason: Option<String>,
    pub comments: Option<String>,
}

/// How far a prospect has come, as ResMan's MITS `Customer Type` says (`prospect`, `applicant`, `approved
/// applicant`, `future resident`, `resident`...): what the conversion figures count. Ordered: a later stage implies the
/// earlier ones (a resident applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProspectStage {
    #[default]
    Prospect,
    Applicant,
    Resident,
}

impl ProspectStage {
    /// Reads ResMan's word; an unknown or missing one is a prospect (the least it can be).
    pub fn from_resman(word: Option<&str>) -> Self {
        let word = word.unwrap_or_default().to_ascii_lowercase();
        if word.contains("resident") || word.contains("lease") {
            Self::Resident
        } else if word.contains("applicant") {
            Self::Applicant
        } else {
            Self::Prospect
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Prospect => "prospect",
            Self::Applicant => "applicant",
            Self::Resident => "resident",
        }
    }
}

/// A prospect as ResMan returns it from a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prospect {
    pub reference: ProspectRef,
    /// Their stage (`Customer Type`): what a tour led to.
    pub stage: ProspectStage,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub events: Vec<ProspectEvent>,
}

impl Prospect {
    /// The tour events (appointments), whichever word ResMan used for them.
    pub fn tours<'a>(&'a self, tour_event_type: &'a str) -> impl Iterator<Item = &'a ProspectEvent> + 'a {
        self.events.iter().filter(move |e| {
            e.event_type.eq_ignore_ascii_case(tour_event_type) || e.event_type.eq_ignore_ascii_case("Show")
        })
    }
}

/// How to find a prospect before creating one (a re-post is not idempotent in ResMan).
#[derive(Debug, Clone)]
pub enum ProspectLookup {
    Email(Email),
    Phone(Phone),
    Id(ProspectId),
}

/// The prospect's contact details on a guest card.
#[derive(Debug, Clone)]
pub struct ProspectContact {
    pub name: PersonName,
    pub email: Email,
    pub phone: Option<Phone>,
}

/// A tour event to post: new (no `appointment_id`) or a change of an existing one. A tour without an agent
/// (self-guided) is posted as an `Other` event, so it takes no agent's time in ResMan **[assumed]**.
#[derive(Debug, Clone)]
pub struct TourEventPost {
    pub appointment_id: Option<AppointmentId>,
    pub start: DateTime<Utc>,
    pub agent: Option<AgentId>,
    pub source: ProspectSourceId,
    pub status: Option<TourEventStatus>,
    pub first_contact: bool,
    pub comments: String,
}

/// A guest card post: create the prospect (no `existing`) or add to one, with one tour event.
#[derive(Debug, Clone)]
pub struct ProspectTourPost {
    pub existing: Option<ProspectRef>,
    pub contact: ProspectContact,
    pub preferences: Option<String>,
    pub tour: TourEventPost,
}

/// What ResMan answered to a tour post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedTour {
    pub prospect: ProspectRef,
    pub appointment_id: AppointmentId,
}

/// A note (an `Other` event) on an existing prospect; how we record a cancellation without marking the lead lost.
#[derive(Debug, Clone)]
pub struct NotePost {
    pub prospect: ProspectRef,
    pub at: DateTime<Utc>,
    pub agent: Option<AgentId>,
    pub comments: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resman_statuses_read_back_as_written() {
        for s in [
            TourEventStatus::Scheduled,
            TourEventStatus::Confirmed,
            TourEventStatus::Completed,
            TourEventStatus::Cancelled,
            TourEventStatus::NoShow,
        ] {
            assert_eq!(TourEventStatus::from_resman(Some(s.as_resman())), s);
        }
        assert_eq!(TourEventStatus::from_resman(None), TourEventStatus::Scheduled);
        assert!(!TourEventStatus::Cancelled.holds_time());
        assert!(TourEventStatus::NoShow.holds_time());
    }
}
