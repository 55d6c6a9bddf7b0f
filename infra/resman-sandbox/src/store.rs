//! The sandbox's copy of ResMan's data: prospects, their events and so the agents' calendars.
//!
//! Every write is all-or-nothing: a MITS post is applied to a copy and committed only when every prospect
//! and event in it was accepted, so a refused overlap leaves nothing behind (as the contract requires).
//! Appointments are the `Appointment` and `Show` events; an appointment that is not `Cancelled` blocks its
//! agent for `[start, start + duration)`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::seed::PropertySeed;

/// Length of an appointment whose comments do not say `<N> min` [assumed].
pub(crate) const DEFAULT_DURATION_MINUTES: u32 = 30;

/// ResMan's appointment statuses, as words on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum AppointmentStatus {
    Scheduled,
    Confirmed,
    Completed,
    Cancelled,
    #[serde(rename = "No Show")]
    NoShow,
}

impl AppointmentStatus {
    pub(crate) fn parse(word: &str) -> Option<Self> {
        match word.trim() {
            "Scheduled" => Some(Self::Scheduled),
            "Confirmed" => Some(Self::Confirmed),
            "Completed" => Some(Self::Completed),
            "Cancelled" => Some(Self::Cancelled),
            "No Show" => Some(Self::NoShow),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::Confirmed => "Confirmed",
            Self::Completed => "Completed",
            Self::Cancelled => "Cancelled",
            Self::NoShow => "No Show",
        }
    }
}

/// A `Cancel` event makes a prospect `Lost`: the real ResMan's only "cancel", and the reason our adapter
/// must never send one for a tour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum ProspectStatus {
    Active,
    Lost,
}

/// How far the prospect has come, as MITS's `Customer Type` words it; staff move it in the portal (the sandbox's
/// control API stands in for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CustomerType {
    Prospect,
    Applicant,
    Resident,
}

impl CustomerType {
    pub(crate) fn parse(word: &str) -> Option<Self> {
        match word.trim().to_ascii_lowercase().as_str() {
            "prospect" => Some(Self::Prospect),
            "applicant" => Some(Self::Applicant),
            "resident" => Some(Self::Resident),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Prospect => "prospect",
            Self::Applicant => "applicant",
            Self::Resident => "resident",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Phone {
    pub kind: Option<String>,
    pub number: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prospect {
    pub id: Uuid,
    pub person_id: Uuid,
    pub property_id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<Phone>,
    pub preferences: Option<String>,
    pub status: ProspectStatus,
    pub customer_type: CustomerType,
    /// Set from the real clock on every change to the prospect or its events; `SearchProspects` filters on it.
    pub modified: DateTime<Utc>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub id: Uuid,
    pub event_type: String,
    pub date: DateTime<Utc>,
    pub agent_id: Option<Uuid>,
    pub first_contact: Option<String>,
    pub transaction_source: Option<Uuid>,
    pub status: Option<AppointmentStatus>,
    pub comments: Option<String>,
    /// What a leasing agent typed in the portal; kept apart from `comments` so that the duration and our
    /// `[tour-ref:…]` marker in the original comments survive staff edits.
    pub staff_notes: Option<String>,
    pub duration_minutes: u32,
}

pub(crate) fn is_appointment_type(event_type: &str) -> bool {
    matches!(event_type, "Appointment" | "Show")
}

impl Event {
    pub(crate) fn is_appointment(&self) -> bool {
        is_appointment_type(&self.event_type)
    }

    fn end(&self) -> DateTime<Utc> {
        self.date + Duration::minutes(i64::from(self.duration_minutes))
    }

    /// Whether this event holds its agent's time.
    fn blocks_calendar(&self) -> bool {
        self.is_appointment() && self.agent_id.is_some() && self.status != Some(AppointmentStatus::Cancelled)
    }

    fn overlaps(&self, other: &Event) -> bool {
        self.date < other.end() && other.date < self.end()
    }
}

/// The first `<N> min` (also `mins`, `minute`, `minutes`, any case) in an event's comments.
pub(crate) fn duration_from_comments(comments: &str) -> Option<u32> {
    let mut rest = comments;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let from_digits = &rest[start..];
        let digits_len = from_digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(from_digits.len());
        let (digits, after) = from_digits.split_at(digits_len);
        let unit_text = after.trim_start();
        let unit_len = unit_text.find(|c: char| !c.is_alphabetic()).unwrap_or(unit_text.len());
        let unit = unit_text[..unit_len].to_ascii_lowercase();
        if matches!(unit.as_str(), "min" | "mins" | "minute" | "minutes")
            && let Ok(minutes) = digits.parse::<u32>()
            && minutes > 0
        {
            return Some(minutes);
        }
        rest = after;
    }
    None
}

/// Who a MITS post is about: nobody yet (create) or an existing prospect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ProspectRef {
    ProspectId(String),
    PersonId(String),
}

/// One `Prospect` of a MITS post, with its formats already checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ProspectPost {
    pub prospect_ref: Option<ProspectRef>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<Phone>,
    pub preferences: Option<String>,
    pub events: Vec<EventPost>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct EventPost {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub agent_id: Option<String>,
    pub first_contact: Option<String>,
    pub transaction_source: Option<String>,
    pub status: Option<AppointmentStatus>,
    pub comments: Option<String>,
}

/// Refusals of `PostLeadManagement4_0`; the text is the `ErrorDescription`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum PostError {
    #[error("Invalid Xml: {0}")]
    InvalidXml(String),
    #[error("Prospect not found")]
    ProspectNotFound,
    #[error("Event not found")]
    EventNotFound,
    #[error("Transaction Source could not be found")]
    TransactionSourceNotFound,
    #[error("Agent not found")]
    AgentNotFound,
    #[error("Agent is not available at that time")]
    AgentUnavailable,
    #[error("EventType is required on a new event")]
    MissingEventType,
    #[error("EventDate is required on a new {0} event")]
    MissingEventDate(String),
    #[error("Invalid EventDate {0:?}: expected YYYY-MM-DDTHH:MM:SS in UTC without an offset")]
    InvalidEventDate(String),
    #[error("Invalid EventReasons {0:?}: expected Scheduled, Confirmed, Completed, Cancelled or No Show")]
    InvalidEventReasons(String),
}

/// What a post did to one prospect: its state afterwards and the events the post touched, in post order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PostedProspect {
    pub prospect: Prospect,
    pub event_ids: Vec<Uuid>,
}

/// One search criterion of `SearchProspects`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Criterion {
    ProspectId(String),
    Email(String),
    Phone(String),
    Name { first: String, last: String },
    Modified { start: DateTime<Utc>, end: DateTime<Utc> },
}

/// An appointment as the control surface shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct AppointmentView {
    pub appointment_id: Uuid,
    pub prospect_id: Uuid,
    pub property_id: Uuid,
    pub agent_id: Option<Uuid>,
    pub scheduled_at: String,
    pub duration_minutes: u32,
    pub status: Option<AppointmentStatus>,
    pub comments: Option<String>,
    pub staff_notes: Option<String>,
    pub event_type: String,
    pub prospect_status: ProspectStatus,
}

/// A booking made "in the portal", bypassing MITS.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DirectBooking {
    pub property_id: Uuid,
    pub agent_id: Uuid,
    pub start: DateTime<Utc>,
    pub duration_minutes: u32,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: Option<String>,
    pub comments: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BookError {
    #[error("property not found")]
    PropertyNotFound,
    #[error("agent is not an employee of that property")]
    AgentNotFound,
    #[error("agent is not available at that time")]
    AgentUnavailable,
}

/// What a leasing agent changes on an appointment in the portal.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct StaffChange {
    pub status: Option<AppointmentStatus>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub staff_notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StaffChangeOutcome {
    pub appointment: AppointmentView,
    /// Among `status`, `scheduled_at`, `staff_notes`: only what actually changed.
    pub updated_fields: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StaffChangeError {
    #[error("appointment not found")]
    NotFound,
    #[error("agent is not available at that time")]
    AgentUnavailable,
}

/// UTC instant as RFC 3339 with a `Z`, the control surface's and the webhook's time format.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    properties: Vec<PropertySeed>,
    prospects: Vec<Prospect>,
}

impl Store {
    pub(crate) fn new(properties: Vec<PropertySeed>) -> Self {
        Self {
            properties,
            prospects: Vec::new(),
        }
    }

    pub(crate) fn properties(&self) -> &[PropertySeed] {
        &self.properties
    }

    /// Looks a property up by the `PropertyID` a caller sent; anything that is not a known GUID is unknown.
    pub(crate) fn property(&self, property_id: &str) -> Option<&PropertySeed> {
        let id = Uuid::parse_str(property_id.trim()).ok()?;
        self.properties.iter().find(|p| p.property_id == id)
    }

    /// Adds properties, checked together with those already here; all or none.
    pub(crate) fn add_properties(&mut self, more: Vec<PropertySeed>) -> Result<(), crate::seed::SeedError> {
        let mut all = self.properties.clone();
        all.extend(more);
        crate::seed::validate(&all)?;
        self.properties = all;
        Ok(())
    }

    /// Back to the seed: no prospects, so no appointments.
    pub(crate) fn reset(&mut self) {
        self.prospects.clear();
    }

    /// Applies a MITS post for one property, all or nothing.
    pub(crate) fn post(
        &mut self,
        property_id: Uuid,
        posts: Vec<ProspectPost>,
        now: DateTime<Utc>,
    ) -> Result<Vec<PostedProspect>, PostError> {
        let property = self
            .properties
            .iter()
            .find(|p| p.property_id == property_id)
            .ok_or(PostError::ProspectNotFound)?;
        let mut work = self.prospects.clone();
        let mut posted = Vec::with_capacity(posts.len());
        for post in posts {
            let index = match &post.prospect_ref {
                None => create_prospect(&mut work, property, &post, now)?,
                Some(reference) => find_prospect(&work, property_id, reference)?,
            };
            let prospect = &mut work[index];
            overwrite(&mut prospect.first_name, post.first_name);
            overwrite(&mut prospect.last_name, post.last_name);
            overwrite(&mut prospect.email, post.email);
            overwrite(&mut prospect.phone, post.phone);
            overwrite(&mut prospect.preferences, post.preferences);
            prospect.modified = now;
            let mut event_ids = Vec::with_capacity(post.events.len());
            for event in post.events {
                event_ids.push(apply_event(&mut work, index, property, event, now)?);
            }
            posted.push((index, event_ids));
        }
        let posted = posted
            .into_iter()
            .map(|(index, event_ids)| PostedProspect {
                prospect: work[index].clone(),
                event_ids,
            })
            .collect();
        self.prospects = work;
        Ok(posted)
    }

    /// The prospects of one property that match, each with all its events.
    pub(crate) fn search(&self, property_id: Uuid, criterion: &Criterion) -> Vec<Prospect> {
        self.prospects
            .iter()
            .filter(|p| p.property_id == property_id && matches_criterion(p, criterion))
            .cloned()
            .collect()
    }

    pub(crate) fn appointments(&self, property_id: Option<Uuid>) -> Vec<AppointmentView> {
        self.prospects
            .iter()
            .filter(|p| property_id.is_none_or(|id| p.property_id == id))
            .flat_map(|p| p.events.iter().filter(|e| e.is_appointment()).map(move |e| view(p, e)))
            .collect()
    }

    /// A staff booking: always a new prospect with one `Appointment`, overlap checked like any other.
    pub(crate) fn book_direct(
        &mut self,
        booking: DirectBooking,
        now: DateTime<Utc>,
    ) -> Result<AppointmentView, BookError> {
        let property = self
            .properties
            .iter()
            .find(|p| p.property_id == booking.property_id)
            .ok_or(BookError::PropertyNotFound)?;
        if property.employee(booking.agent_id).is_none() {
            return Err(BookError::AgentNotFound);
        }
        // Readers of MITS learn a duration only from the comments, so make sure they state it.
        let comments = match booking.comments {
            Some(c) if duration_from_comments(&c).is_some() => c,
            Some(c) if !c.trim().is_empty() => format!("{c} ({} min)", booking.duration_minutes),
            _ => format!("{} min", booking.duration_minutes),
        };
        let event = Event {
            id: Uuid::new_v4(),
            event_type: "Appointment".to_owned(),
            date: booking.start,
            agent_id: Some(booking.agent_id),
            first_contact: None,
            transaction_source: None,
            status: Some(AppointmentStatus::Scheduled),
            comments: Some(comments),
            staff_notes: None,
            duration_minutes: booking.duration_minutes,
        };
        if agent_is_busy(&self.prospects, &event) {
            return Err(BookError::AgentUnavailable);
        }
        let prospect = Prospect {
            id: Uuid::new_v4(),
            person_id: Uuid::new_v4(),
            property_id: booking.property_id,
            first_name: Some(booking.first_name),
            last_name: Some(booking.last_name),
            email: Some(booking.email),
            phone: booking.phone.map(|number| Phone {
                kind: Some("cell".to_owned()),
                number,
            }),
            preferences: None,
            status: ProspectStatus::Active,
            customer_type: CustomerType::Prospect,
            modified: now,
            events: vec![event],
        };
        let appointment = view(&prospect, &prospect.events[0]);
        self.prospects.push(prospect);
        Ok(appointment)
    }

    /// Moves a prospect to `kind` (an application taken, a lease signed), as staff do in the portal: the change
    /// feed (`SearchProspects` by modified time) brings it out. `false` when there is no such prospect.
    pub(crate) fn set_customer_type(&mut self, prospect_id: Uuid, kind: CustomerType, now: DateTime<Utc>) -> bool {
        match self.prospects.iter_mut().find(|p| p.id == prospect_id) {
            Some(prospect) => {
                if prospect.customer_type != kind {
                    prospect.customer_type = kind;
                    prospect.modified = now;
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn staff_change(
        &mut self,
        appointment_id: Uuid,
        change: StaffChange,
        now: DateTime<Utc>,
    ) -> Result<StaffChangeOutcome, StaffChangeError> {
        let (p_index, e_index) = self
            .prospects
            .iter()
            .enumerate()
            .find_map(|(pi, p)| {
                p.events
                    .iter()
                    .position(|e| e.id == appointment_id && e.is_appointment())
                    .map(|ei| (pi, ei))
            })
            .ok_or(StaffChangeError::NotFound)?;
        let mut event = self.prospects[p_index].events[e_index].clone();
        let mut updated_fields = Vec::new();
        if let Some(status) = change.status
            && event.status != Some(status)
        {
            event.status = Some(status);
            updated_fields.push("status");
        }
        if let Some(start) = change.scheduled_at
            && event.date != start
        {
            event.date = start;
            updated_fields.push("scheduled_at");
        }
        if let Some(notes) = change.staff_notes
            && event.staff_notes.as_deref() != Some(notes.as_str())
        {
            event.staff_notes = Some(notes);
            updated_fields.push("staff_notes");
        }
        if !updated_fields.is_empty() {
            if agent_is_busy(&self.prospects, &event) {
                return Err(StaffChangeError::AgentUnavailable);
            }
            let prospect = &mut self.prospects[p_index];
            prospect.events[e_index] = event;
            prospect.modified = now;
        }
        let prospect = &self.prospects[p_index];
        Ok(StaffChangeOutcome {
            appointment: view(prospect, &prospect.events[e_index]),
            updated_fields,
        })
    }
}

fn overwrite<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

fn view(prospect: &Prospect, event: &Event) -> AppointmentView {
    AppointmentView {
        appointment_id: event.id,
        prospect_id: prospect.id,
        property_id: prospect.property_id,
        agent_id: event.agent_id,
        scheduled_at: rfc3339(event.date),
        duration_minutes: event.duration_minutes,
        status: event.status,
        comments: event.comments.clone(),
        staff_notes: event.staff_notes.clone(),
        event_type: event.event_type.clone(),
        prospect_status: prospect.status,
    }
}

/// Whether another live appointment of the same agent overlaps `candidate` (which is never compared
/// with itself, so a move can overlap its own old slot).
fn agent_is_busy(prospects: &[Prospect], candidate: &Event) -> bool {
    candidate.blocks_calendar()
        && prospects.iter().flat_map(|p| &p.events).any(|other| {
            other.id != candidate.id
                && other.blocks_calendar()
                && other.agent_id == candidate.agent_id
                && other.overlaps(candidate)
        })
}

fn resolve_source(property: &PropertySeed, source: &str) -> Result<Uuid, PostError> {
    Uuid::parse_str(source.trim())
        .ok()
        .filter(|id| property.has_prospect_source(*id))
        .ok_or(PostError::TransactionSourceNotFound)
}

fn resolve_agent(property: &PropertySeed, agent: &str) -> Result<Uuid, PostError> {
    Uuid::parse_str(agent.trim())
        .ok()
        .filter(|id| property.employee(*id).is_some())
        .ok_or(PostError::AgentNotFound)
}

fn create_prospect(
    work: &mut Vec<Prospect>,
    property: &PropertySeed,
    post: &ProspectPost,
    now: DateTime<Utc>,
) -> Result<usize, PostError> {
    // Like production ResMan: a new guest card needs a known lead source on its first event.
    let source = post
        .events
        .first()
        .and_then(|e| e.transaction_source.as_deref())
        .ok_or(PostError::TransactionSourceNotFound)?;
    resolve_source(property, source)?;
    work.push(Prospect {
        id: Uuid::new_v4(),
        person_id: Uuid::new_v4(),
        property_id: property.property_id,
        first_name: None,
        last_name: None,
        email: None,
        phone: None,
        preferences: None,
        status: ProspectStatus::Active,
        customer_type: CustomerType::Prospect,
        modified: now,
        events: Vec::new(),
    });
    Ok(work.len() - 1)
}

fn find_prospect(work: &[Prospect], property_id: Uuid, reference: &ProspectRef) -> Result<usize, PostError> {
    let (id, by_person) = match reference {
        ProspectRef::ProspectId(id) => (id, false),
        ProspectRef::PersonId(id) => (id, true),
    };
    let id = Uuid::parse_str(id.trim()).map_err(|_| PostError::ProspectNotFound)?;
    work.iter()
        .position(|p| p.property_id == property_id && if by_person { p.person_id == id } else { p.id == id })
        .ok_or(PostError::ProspectNotFound)
}

/// Creates or updates one event of `work[index]` and returns its id.
fn apply_event(
    work: &mut [Prospect],
    index: usize,
    property: &PropertySeed,
    post: EventPost,
    now: DateTime<Utc>,
) -> Result<Uuid, PostError> {
    let source = post
        .transaction_source
        .as_deref()
        .map(|s| resolve_source(property, s))
        .transpose()?;
    let agent = post
        .agent_id
        .as_deref()
        .map(|a| resolve_agent(property, a))
        .transpose()?;
    let existing = match &post.event_id {
        Some(id) => {
            let id = Uuid::parse_str(id.trim()).map_err(|_| PostError::EventNotFound)?;
            let position = work[index]
                .events
                .iter()
                .position(|e| e.id == id)
                .ok_or(PostError::EventNotFound)?;
            Some(position)
        }
        None => None,
    };
    let event = match existing {
        // An update keeps the event's type [assumed]; only the fields present change.
        Some(position) => {
            let mut event = work[index].events[position].clone();
            if let Some(date) = post.date {
                event.date = date;
            }
            overwrite(&mut event.agent_id, agent);
            overwrite(&mut event.status, post.status);
            overwrite(&mut event.first_contact, post.first_contact);
            overwrite(&mut event.transaction_source, source);
            if let Some(comments) = post.comments {
                event.duration_minutes = duration_from_comments(&comments).unwrap_or(DEFAULT_DURATION_MINUTES);
                event.comments = Some(comments);
            }
            event
        }
        None => {
            let event_type = post.event_type.ok_or(PostError::MissingEventType)?;
            let appointment = is_appointment_type(&event_type);
            let date = match post.date {
                Some(date) => date,
                None if appointment => return Err(PostError::MissingEventDate(event_type)),
                None => now,
            };
            if appointment && agent.is_none() {
                return Err(PostError::AgentNotFound);
            }
            let status = post.status.or(appointment.then_some(AppointmentStatus::Scheduled));
            let duration_minutes = post
                .comments
                .as_deref()
                .and_then(duration_from_comments)
                .unwrap_or(DEFAULT_DURATION_MINUTES);
            Event {
                id: Uuid::new_v4(),
                event_type,
                date,
                agent_id: agent,
                first_contact: post.first_contact,
                transaction_source: source,
                status,
                comments: post.comments,
                staff_notes: None,
                duration_minutes,
            }
        }
    };
    if agent_is_busy(work, &event) {
        return Err(PostError::AgentUnavailable);
    }
    let id = event.id;
    let prospect = &mut work[index];
    if existing.is_none() && event.event_type == "Cancel" {
        prospect.status = ProspectStatus::Lost;
    }
    match existing {
        Some(position) => prospect.events[position] = event,
        None => prospect.events.push(event),
    }
    prospect.modified = now;
    Ok(id)
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

fn matches_criterion(prospect: &Prospect, criterion: &Criterion) -> bool {
    let same_text = |stored: &Option<String>, wanted: &str| {
        stored
            .as_deref()
            .is_some_and(|s| s.trim().to_lowercase() == wanted.trim().to_lowercase())
    };
    match criterion {
        Criterion::ProspectId(id) => Uuid::parse_str(id.trim()).is_ok_and(|id| id == prospect.id),
        Criterion::Email(email) => same_text(&prospect.email, email),
        Criterion::Phone(phone) => {
            let wanted = digits(phone);
            !wanted.is_empty() && prospect.phone.as_ref().is_some_and(|p| digits(&p.number) == wanted)
        }
        Criterion::Name { first, last } => {
            same_text(&prospect.first_name, first) && same_text(&prospect.last_name, last)
        }
        Criterion::Modified { start, end } => *start <= prospect.modified && prospect.modified < *end,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::seed::{EMBEDDED_SEED, parse_properties};

    const MAPLE: &str = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01";
    const ALEX: &str = "a1e0c3b2-0001-4c6a-9d1e-000000000001";
    const JORDAN: &str = "a1e0c3b2-0002-4c6a-9d1e-000000000002";
    const CHATBOT: &str = "b7d3e8f0-0001-4d2c-8a5b-000000000001";
    const RILEY_OF_SAGUARO: &str = "a1e0c3b2-0011-4c6a-9d1e-000000000011";

    fn store() -> Store {
        Store::new(parse_properties(EMBEDDED_SEED, "embedded").expect("seed"))
    }

    fn maple() -> Uuid {
        MAPLE.parse().expect("uuid")
    }

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, hour, minute, 0)
            .single()
            .expect("valid time")
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn tour(agent: &str, start: DateTime<Utc>, minutes: u32) -> ProspectPost {
        ProspectPost {
            first_name: Some("Ana".to_owned()),
            last_name: Some("Lopez".to_owned()),
            email: Some("ana@example.com".to_owned()),
            events: vec![EventPost {
                event_type: Some("Appointment".to_owned()),
                date: Some(start),
                agent_id: Some(agent.to_owned()),
                transaction_source: Some(CHATBOT.to_owned()),
                comments: Some(format!("In-Person Tour, {minutes} min.")),
                ..EventPost::default()
            }],
            ..ProspectPost::default()
        }
    }

    fn book(store: &mut Store, agent: &str, start: DateTime<Utc>, minutes: u32) -> Result<Uuid, PostError> {
        let posted = store.post(maple(), vec![tour(agent, start, minutes)], now())?;
        Ok(posted[0].event_ids[0])
    }

    #[test]
    fn duration_is_the_first_number_followed_by_min() {
        assert_eq!(duration_from_comments("In-Person Tour, 45 min. Notes"), Some(45));
        assert_eq!(duration_from_comments("2 bedroom, 60 minutes"), Some(60));
        assert_eq!(duration_from_comments("Tour 20min then 10 min"), Some(20));
        assert_eq!(duration_from_comments("10 minimum deposit, 15 Mins"), Some(15));
        assert_eq!(duration_from_comments("0 min, 2 bedroom"), None);
        assert_eq!(duration_from_comments("no duration here"), None);
    }

    #[test]
    fn an_overlapping_appointment_for_the_same_agent_is_refused_and_nothing_is_written() {
        let mut store = store();
        book(&mut store, ALEX, at(16, 0), 45).expect("first booking");
        let before = store.appointments(None);
        let second = book(&mut store, ALEX, at(16, 30), 30);
        assert_eq!(second, Err(PostError::AgentUnavailable));
        assert_eq!(store.appointments(None), before);
        assert_eq!(
            store.search(maple(), &Criterion::Email("ana@example.com".into())).len(),
            1
        );
    }

    #[test]
    fn back_to_back_appointments_do_not_overlap() {
        let mut store = store();
        book(&mut store, ALEX, at(16, 0), 45).expect("first booking");
        book(&mut store, ALEX, at(16, 45), 30).expect("starts when the first ends");
        book(&mut store, ALEX, at(15, 30), 30).expect("ends when the first starts");
    }

    #[test]
    fn a_different_agent_can_take_the_same_time() {
        let mut store = store();
        book(&mut store, ALEX, at(16, 0), 45).expect("Alex");
        book(&mut store, JORDAN, at(16, 0), 45).expect("Jordan");
    }

    #[test]
    fn a_cancelled_appointment_frees_its_agent() {
        let mut store = store();
        let first = book(&mut store, ALEX, at(16, 0), 45).expect("first booking");
        store
            .staff_change(
                first,
                StaffChange {
                    status: Some(AppointmentStatus::Cancelled),
                    ..StaffChange::default()
                },
                now(),
            )
            .expect("cancelled");
        book(&mut store, ALEX, at(16, 0), 45).expect("slot is free again");
    }

    #[test]
    fn moving_an_appointment_is_checked_against_others_but_not_itself() {
        let mut store = store();
        let first = book(&mut store, ALEX, at(16, 0), 60).expect("first");
        book(&mut store, ALEX, at(18, 0), 30).expect("second");
        let prospect_id = store.appointments(None)[0].prospect_id.to_string();
        let mv = |start| ProspectPost {
            prospect_ref: Some(ProspectRef::ProspectId(prospect_id.clone())),
            events: vec![EventPost {
                event_id: Some(first.to_string()),
                date: Some(start),
                ..EventPost::default()
            }],
            ..ProspectPost::default()
        };
        store
            .post(maple(), vec![mv(at(16, 30))], now())
            .expect("overlaps only its old slot");
        assert_eq!(
            store.post(maple(), vec![mv(at(17, 45))], now()),
            Err(PostError::AgentUnavailable)
        );
        assert_eq!(store.appointments(None)[0].scheduled_at, "2026-12-01T16:30:00Z");
    }

    #[test]
    fn a_refusal_late_in_a_post_discards_the_earlier_prospects_of_that_post() {
        let mut store = store();
        let result = store.post(
            maple(),
            vec![tour(ALEX, at(10, 0), 30), tour(ALEX, at(10, 15), 30)],
            now(),
        );
        assert_eq!(result, Err(PostError::AgentUnavailable));
        assert!(store.appointments(None).is_empty());
    }

    #[test]
    fn a_new_prospect_needs_a_known_transaction_source() {
        let mut store = store();
        let mut post = tour(ALEX, at(16, 0), 45);
        post.events[0].transaction_source = Some(Uuid::new_v4().to_string());
        assert_eq!(
            store.post(maple(), vec![post.clone()], now()),
            Err(PostError::TransactionSourceNotFound)
        );
        post.events[0].transaction_source = None;
        assert_eq!(
            store.post(maple(), vec![post], now()),
            Err(PostError::TransactionSourceNotFound)
        );
    }

    #[test]
    fn an_agent_of_another_property_is_not_found() {
        let mut store = store();
        assert_eq!(
            book(&mut store, RILEY_OF_SAGUARO, at(16, 0), 45),
            Err(PostError::AgentNotFound)
        );
    }

    #[test]
    fn a_cancel_event_marks_the_prospect_lost() {
        let mut store = store();
        book(&mut store, ALEX, at(16, 0), 45).expect("booked");
        let prospect_id = store.appointments(None)[0].prospect_id.to_string();
        store
            .post(
                maple(),
                vec![ProspectPost {
                    prospect_ref: Some(ProspectRef::ProspectId(prospect_id)),
                    events: vec![EventPost {
                        event_type: Some("Cancel".to_owned()),
                        ..EventPost::default()
                    }],
                    ..ProspectPost::default()
                }],
                now(),
            )
            .expect("cancel accepted");
        assert_eq!(store.appointments(None)[0].prospect_status, ProspectStatus::Lost);
    }

    #[test]
    fn phone_search_compares_digits_only_and_email_ignores_case() {
        let mut store = store();
        let mut post = tour(ALEX, at(16, 0), 45);
        post.phone = Some(Phone {
            kind: Some("cell".to_owned()),
            number: "+1 (512) 555-0100".to_owned(),
        });
        store.post(maple(), vec![post], now()).expect("created");
        assert_eq!(store.search(maple(), &Criterion::Phone("+15125550100".into())).len(), 1);
        assert_eq!(store.search(maple(), &Criterion::Phone("5125550100".into())).len(), 0);
        assert_eq!(
            store.search(maple(), &Criterion::Email("ANA@Example.com".into())).len(),
            1
        );
    }

    #[test]
    fn modified_window_includes_its_start_and_excludes_its_end() {
        let mut store = store();
        store
            .post(maple(), vec![tour(ALEX, at(16, 0), 45)], now())
            .expect("created");
        let window = |start, end| Criterion::Modified { start, end };
        let later = now() + Duration::seconds(1);
        assert_eq!(store.search(maple(), &window(now(), later)).len(), 1);
        assert_eq!(
            store.search(maple(), &window(now() - Duration::hours(1), now())).len(),
            0
        );
    }

    #[test]
    fn staff_change_reports_only_fields_that_changed() {
        let mut store = store();
        let id = book(&mut store, ALEX, at(16, 0), 45).expect("booked");
        let outcome = store
            .staff_change(
                id,
                StaffChange {
                    status: Some(AppointmentStatus::Scheduled),
                    scheduled_at: Some(at(17, 0)),
                    staff_notes: Some("moved by phone".to_owned()),
                },
                now(),
            )
            .expect("changed");
        assert_eq!(outcome.updated_fields, vec!["scheduled_at", "staff_notes"]);
        assert_eq!(outcome.appointment.scheduled_at, "2026-12-01T17:00:00Z");
    }

    #[test]
    fn a_prospect_made_a_resident_is_modified_so_the_change_feed_brings_it() {
        let mut store = store();
        let id = book(&mut store, ALEX, at(16, 0), 45).expect("booked");
        let prospect = store
            .prospects
            .iter()
            .find(|p| p.events.iter().any(|e| e.id == id))
            .expect("prospect")
            .id;
        let later = now() + chrono::Duration::hours(3);
        assert!(store.set_customer_type(prospect, CustomerType::Resident, later));
        let changed = store.prospects.iter().find(|p| p.id == prospect).expect("prospect");
        assert_eq!(
            (changed.customer_type, changed.modified),
            (CustomerType::Resident, later)
        );
        assert!(!store.set_customer_type(uuid::Uuid::nil(), CustomerType::Applicant, later));
    }

    #[test]
    fn direct_bookings_state_their_duration_in_the_comments() {
        let mut store = store();
        let booking = DirectBooking {
            property_id: maple(),
            agent_id: ALEX.parse().expect("uuid"),
            start: at(16, 0),
            duration_minutes: 60,
            first_name: "Walk".to_owned(),
            last_name: "In".to_owned(),
            email: "walk@example.com".to_owned(),
            phone: None,
            comments: Some("Booked at the desk".to_owned()),
        };
        let view = store.book_direct(booking.clone(), now()).expect("booked");
        assert_eq!(view.comments.as_deref(), Some("Booked at the desk (60 min)"));
        assert_eq!(store.book_direct(booking, now()), Err(BookError::AgentUnavailable));
    }
}
