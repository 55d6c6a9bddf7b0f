//! A tour booking: the chatbot's request made into a command that can only hold valid values, the record we keep,
//! and the slot locks that make a double-booking impossible.

use super::property::{GRANULE_MINUTES, Property};
use super::resman::ProspectContact;
use super::slots::{self, resolve_local};
use super::{
    AgentId, AppointmentId, Email, HoldToken, InvalidField, PersonName, Phone, ResManPropertyId, TourType, UtcWindow,
    limits,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The chatbot's conversation: opaque, up to 128 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let id = raw.trim();
        if id.is_empty() {
            return Err(InvalidField::new("conversation_id", "must not be empty"));
        }
        if id.chars().count() > limits::ID_CHARS || id.chars().any(|c| c.is_control() || c == '#') {
            return Err(InvalidField::new(
                "conversation_id",
                format!("must be at most {} printable characters without '#'", limits::ID_CHARS),
            ));
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Our id for a booking (also the reference written into ResMan's comments).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BookingId(String);

impl BookingId {
    /// A new id from 16 random bytes (the caller supplies the randomness, as it supplies the time).
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(format!("tour_{}", uuid.simple()))
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let ok = raw
            .strip_prefix("tour_")
            .is_some_and(|hex| hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidField::new("appointment_id", "is not a booking id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The marker our ResMan posts carry, so a retry after a lost answer can find what was already written.
    pub fn resman_reference(&self) -> String {
        format!("[tour-ref:{}]", self.0)
    }
}

impl std::fmt::Display for BookingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The seed's `BookTourRequest`, as it comes off the wire (every field optional so each missing one is named).
#[derive(Debug, Default, Deserialize)]
pub struct BookTourRequest {
    pub conversation_id: Option<String>,
    pub tour_data: Option<TourData>,
    /// The token of the conversation's slot hold, when it holds the time asked for.
    pub hold_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TourData {
    pub prospect_name: Option<String>,
    pub prospect_email: Option<String>,
    pub prospect_phone: Option<String>,
    pub tour_type: Option<String>,
    pub preferred_date: Option<String>,
    pub preferred_time: Option<String>,
    pub property_id: Option<String>,
    pub unit_preferences: Option<TextList>,
    pub special_requests: Option<String>,
}

/// A field the brief types `string[]` (`unit_preferences`): a list of strings, or one string from older clients.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TextList {
    One(String),
    Many(Vec<String>),
}

/// At most this many unit preferences, each at most `MAX_PREFERENCE_CHARS` long.
pub const MAX_PREFERENCES: usize = super::limits::UNIT_PREFERENCES;
pub const MAX_PREFERENCE_CHARS: usize = super::limits::UNIT_PREFERENCE_CHARS;

/// The largest booking body accepted.
pub const MAX_BODY_BYTES: usize = super::limits::BOOK_BODY_BYTES;

type JsonObject = serde_json::Map<String, serde_json::Value>;

fn text_list_field(object: &JsonObject, name: &str, field: &'static str) -> Result<Option<TextList>, InvalidField> {
    let wrong = || InvalidField::new(field, "must be a list of strings (or one string)");
    match object.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(TextList::One(text.clone()))),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| Some(TextList::Many(items))),
        Some(_) => Err(wrong()),
    }
}

/// A request body as a JSON object, at most `max` bytes: anything else is refused naming `body`.
pub(crate) fn json_object(body: &[u8], max: usize) -> Result<JsonObject, InvalidField> {
    if body.len() > max {
        return Err(InvalidField::new("body", format!("must be at most {max} bytes")));
    }
    match serde_json::from_slice(body).map_err(|_| InvalidField::new("body", "is not valid JSON"))? {
        serde_json::Value::Object(object) => Ok(object),
        _ => Err(InvalidField::new("body", "must be a JSON object")),
    }
}

/// The stored key an `Idempotency-Key` header stands for (one namespace for every endpoint: one key, one request):
/// 1 to 255 printable characters, kept as their digest.
pub fn idempotency_key_of(header: &str) -> Result<String, InvalidField> {
    let key = header.trim();
    if key.is_empty() || key.chars().count() > limits::IDEMPOTENCY_KEY_CHARS || key.chars().any(|c| c.is_control()) {
        return Err(InvalidField::new(
            "Idempotency-Key",
            format!("must be 1 to {} printable characters", limits::IDEMPOTENCY_KEY_CHARS),
        ));
    }
    Ok(format!("key:{}", hex::encode(Sha256::digest(key.as_bytes()))))
}

pub(crate) fn text_field(object: &JsonObject, name: &str, field: &'static str) -> Result<Option<String>, InvalidField> {
    match object.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(InvalidField::new(field, "must be a string")),
    }
}

impl BookTourRequest {
    /// Reads the raw body (its size is checked first, by the caller): not JSON, or a field of the wrong JSON type,
    /// is named.
    pub fn from_body(body: &[u8]) -> Result<Self, InvalidField> {
        let object = json_object(body, MAX_BODY_BYTES)?;
        let object = &object;
        let tour_data = match object.get("tour_data") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(data)) => Some(TourData {
                prospect_name: text_field(data, "prospect_name", "tour_data.prospect_name")?,
                prospect_email: text_field(data, "prospect_email", "tour_data.prospect_email")?,
                prospect_phone: text_field(data, "prospect_phone", "tour_data.prospect_phone")?,
                tour_type: text_field(data, "tour_type", "tour_data.tour_type")?,
                preferred_date: text_field(data, "preferred_date", "tour_data.preferred_date")?,
                preferred_time: text_field(data, "preferred_time", "tour_data.preferred_time")?,
                property_id: text_field(data, "property_id", "tour_data.property_id")?,
                unit_preferences: text_list_field(data, "unit_preferences", "tour_data.unit_preferences")?,
                special_requests: text_field(data, "special_requests", "tour_data.special_requests")?,
            }),
            Some(_) => return Err(InvalidField::new("tour_data", "must be an object")),
        };
        Ok(Self {
            conversation_id: text_field(object, "conversation_id", "conversation_id")?,
            tour_data,
            hold_token: text_field(object, "hold_token", "hold_token")?,
        })
    }
}

/// A valid booking request. Its date and time are the property's local time.
#[derive(Debug, Clone)]
pub struct BookTourCommand {
    pub conversation_id: ConversationId,
    pub property_id: ResManPropertyId,
    pub contact: ProspectContact,
    pub tour_type: TourType,
    pub date: NaiveDate,
    pub time: NaiveTime,
    pub unit_preferences: Option<String>,
    pub special_requests: Option<String>,
    /// The conversation's slot hold for this time, if it holds one. Not part of the fingerprint: it says how the
    /// slot is had, not what is booked.
    pub hold_token: Option<HoldToken>,
}

/// Field names as the chatbot sees them (inside `tour_data`).
fn in_tour_data(e: InvalidField) -> InvalidField {
    let field = match e.field {
        "prospect_name" => "tour_data.prospect_name",
        "prospect_email" => "tour_data.prospect_email",
        "prospect_phone" => "tour_data.prospect_phone",
        "tour_type" => "tour_data.tour_type",
        "property_id" => "tour_data.property_id",
        other => other,
    };
    InvalidField {
        field,
        reason: e.reason,
    }
}

/// A field that must be there and not blank.
pub(crate) fn required<'a>(value: &'a Option<String>, field: &'static str) -> Result<&'a str, InvalidField> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| InvalidField::new(field, "is required"))
}

fn free_text(value: &Option<String>, field: &'static str, max: usize) -> Result<Option<String>, InvalidField> {
    let Some(raw) = value.as_deref() else {
        return Ok(None);
    };
    let text = checked_text(raw, field, max)?;
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Free text as sent, at most `max` characters counted as JSON Schema counts them (before trimming, so the
/// description's `maxLength` is exactly the limit), with no control character but newline; trimmed.
pub(crate) fn checked_text<'a>(raw: &'a str, field: &'static str, max: usize) -> Result<&'a str, InvalidField> {
    if raw.chars().count() > max {
        return Err(InvalidField::new(field, format!("must be at most {max} characters")));
    }
    let text = raw.trim();
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(InvalidField::new(field, "must not hold control characters"));
    }
    Ok(text)
}

/// Unit preferences as one line for ResMan's comments and guest card ("2 bedrooms; ground floor"): each entry
/// checked like free text, blank ones dropped.
fn preferences(value: &Option<TextList>) -> Result<Option<String>, InvalidField> {
    const FIELD: &str = "tour_data.unit_preferences";
    let entries = match value {
        None => return Ok(None),
        Some(TextList::One(text)) => return free_text(&Some(text.clone()), FIELD, limits::UNIT_PREFERENCES_TEXT_CHARS),
        Some(TextList::Many(entries)) => entries,
    };
    if entries.len() > MAX_PREFERENCES {
        return Err(InvalidField::new(
            FIELD,
            format!("must list at most {MAX_PREFERENCES} preferences"),
        ));
    }
    let mut kept = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let checked = free_text(&Some(entry.clone()), FIELD, MAX_PREFERENCE_CHARS)
            .map_err(|e| InvalidField::new(FIELD, format!("preference {} {}", n + 1, e.reason)))?;
        kept.extend(checked);
    }
    Ok(Some(kept.join("; ")).filter(|line| !line.is_empty()))
}

impl BookTourCommand {
    pub fn parse(request: &BookTourRequest) -> Result<Self, InvalidField> {
        let conversation_id = ConversationId::parse(required(&request.conversation_id, "conversation_id")?)?;
        let data = request
            .tour_data
            .as_ref()
            .ok_or_else(|| InvalidField::new("tour_data", "is required"))?;
        let name =
            PersonName::parse(required(&data.prospect_name, "tour_data.prospect_name")?).map_err(in_tour_data)?;
        let email = Email::parse(required(&data.prospect_email, "tour_data.prospect_email")?).map_err(in_tour_data)?;
        let phone = Phone::parse(required(&data.prospect_phone, "tour_data.prospect_phone")?).map_err(in_tour_data)?;
        let tour_type = TourType::parse(required(&data.tour_type, "tour_data.tour_type")?).map_err(in_tour_data)?;
        let date = NaiveDate::parse_from_str(
            required(&data.preferred_date, "tour_data.preferred_date")?.trim(),
            "%Y-%m-%d",
        )
        .map_err(|_| InvalidField::new("tour_data.preferred_date", "must be a date YYYY-MM-DD"))?;
        let time = NaiveTime::parse_from_str(
            required(&data.preferred_time, "tour_data.preferred_time")?.trim(),
            "%H:%M",
        )
        .map_err(|_| {
            InvalidField::new(
                "tour_data.preferred_time",
                "must be a time HH:MM (24-hour, the property's local time)",
            )
        })?;
        let property_id =
            ResManPropertyId::parse(required(&data.property_id, "tour_data.property_id")?).map_err(in_tour_data)?;
        Ok(Self {
            conversation_id,
            property_id,
            contact: ProspectContact {
                name,
                email,
                phone: Some(phone),
            },
            tour_type,
            date,
            time,
            unit_preferences: preferences(&data.unit_preferences)?,
            special_requests: free_text(
                &data.special_requests,
                "tour_data.special_requests",
                limits::SPECIAL_REQUESTS_CHARS,
            )?,
            hold_token: request
                .hold_token
                .as_deref()
                .map(|t| checked_text(t, "hold_token", limits::ID_CHARS))
                .transpose()?
                .filter(|t| !t.is_empty())
                .map(HoldToken::parse)
                .transpose()?,
        })
    }

    /// A digest of everything that makes this request what it is: the same idempotency key with a different
    /// digest is a different request.
    pub fn fingerprint(&self) -> String {
        let canonical = [
            self.conversation_id.as_str(),
            self.property_id.as_str(),
            self.contact.name.first(),
            self.contact.name.last(),
            self.contact.email.expose(),
            self.contact.phone.as_ref().map(Phone::expose).unwrap_or(""),
            self.tour_type.as_str(),
            &self.date.to_string(),
            &self.time.format("%H:%M").to_string(),
            self.unit_preferences.as_deref().unwrap_or(""),
            self.special_requests.as_deref().unwrap_or(""),
        ]
        .join("\u{1f}");
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The idempotency key: the caller's `Idempotency-Key`, or else the conversation and the slot, so a chatbot
    /// that retries without a key still books once.
    pub fn idempotency_key(&self, header: Option<&str>) -> Result<String, InvalidField> {
        match header.map(str::trim) {
            Some(key) => idempotency_key_of(key),
            None => Ok(format!(
                "conv:{}",
                hex::encode(Sha256::digest(
                    format!(
                        "{}\u{1f}{}\u{1f}{}T{}\u{1f}{}",
                        self.conversation_id.as_str(),
                        self.property_id,
                        self.date,
                        self.time,
                        self.tour_type.as_str()
                    )
                    .as_bytes()
                ))
            )),
        }
    }
}

/// Where a requested time stands against the property's rules (before any busy time is considered).
pub fn requested_slot(
    property: &Property,
    command: &BookTourCommand,
    now: DateTime<Utc>,
) -> Result<UtcWindow, InvalidField> {
    property.tour_type(command.tour_type).map_err(in_tour_data)?;
    slot_at(
        property,
        command.tour_type,
        command.date.and_time(command.time),
        now,
        ("tour_data.preferred_date", "tour_data.preferred_time"),
    )
}

/// A tour of `tour_type` starting at the property's local `at`, if the property's rules allow one then: on the
/// date's horizon, on the time grid, inside office hours, with the notice the property needs. `fields` names the
/// date's and the time's fields in a refusal.
pub fn slot_at(
    property: &Property,
    tour_type: TourType,
    at: chrono::NaiveDateTime,
    now: DateTime<Utc>,
    (date_field, field): (&'static str, &'static str),
) -> Result<UtcWindow, InvalidField> {
    let config = property
        .tour_type(tour_type)
        .map_err(|e| InvalidField::new(field, e.reason))?;
    slots::check_date(property, at.date(), now).map_err(|e| InvalidField::new(date_field, e.reason))?;
    let start = resolve_local(property.time_zone, at)
        .ok_or_else(|| InvalidField::new(field, "does not exist on that date (the clocks change)"))?;
    let window = UtcWindow::starting_at(start, Duration::minutes(config.duration_minutes.into()))
        .map_err(|e| InvalidField::new(field, e.reason))?;
    if start < now {
        return Err(InvalidField::new(field, "is in the past"));
    }
    if start < now + Duration::minutes(property.minimum_notice_minutes.into()) {
        return Err(InvalidField::new(
            field,
            format!(
                "is too soon: tours need {} minutes' notice",
                property.minimum_notice_minutes
            ),
        ));
    }
    // Every slot the day offers when nobody is busy: a time not among them is outside office hours or off the grid.
    let offered =
        slots::free_slots(property, tour_type, at.date(), &[], now).map_err(|e| InvalidField::new(field, e.reason))?;
    if !offered.iter().any(|s| s.start.with_timezone(&Utc) == start) {
        let reason = if at.minute().is_multiple_of(property.slot_step_minutes) && at.second() == 0 {
            "is outside office hours for a tour of that length"
        } else {
            "is not a tour start time (tours start on the property's time grid)"
        };
        return Err(InvalidField::new(field, reason));
    }
    Ok(window)
}

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

/// The tour's own state: its life is decided in [`super::lifecycle`].
pub use super::lifecycle::TourStatus;

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
}

fn first_version() -> u64 {
    1
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

    /// Whether ResMan still lacks this tour's current version.
    /// Whether the chatbot has yet to hear of this version (its callback, when one is configured).
    pub fn owes_callback(&self) -> bool {
        self.callback_version < self.version
    }

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
    use super::super::property::tests::demo;
    use super::*;
    use serde_json::json;

    fn request(change: impl FnOnce(&mut serde_json::Value)) -> BookTourRequest {
        let mut body = json!({
            "conversation_id": "conv-1",
            "tour_data": {
                "prospect_name": "Ana Lopez", "prospect_email": "ana@example.com", "prospect_phone": "(512) 555-0100",
                "tour_type": "in_person", "preferred_date": "2026-12-01", "preferred_time": "10:00", "property_id": "P-1",
                "unit_preferences": "2 bedrooms", "special_requests": "wheelchair access"
            }
        });
        change(&mut body);
        serde_json::from_value(body).unwrap()
    }

    fn now() -> DateTime<Utc> {
        super::super::property::tests::monday_morning()
    }

    #[test]
    fn the_body_must_be_a_json_object_with_string_fields() {
        assert_eq!(BookTourRequest::from_body(b"not json").unwrap_err().field, "body");
        assert_eq!(BookTourRequest::from_body(b"[1]").unwrap_err().field, "body");
        let wrong_type = br#"{"conversation_id":"c","tour_data":{"prospect_email":42}}"#;
        assert_eq!(
            BookTourRequest::from_body(wrong_type).unwrap_err().field,
            "tour_data.prospect_email"
        );
        assert_eq!(
            BookTourRequest::from_body(br#"{"tour_data":"x"}"#).unwrap_err().field,
            "tour_data"
        );
        let ok = BookTourRequest::from_body(br#"{"conversation_id":"c","tour_data":{"tour_type":"virtual"}}"#).unwrap();
        assert_eq!(ok.tour_data.unwrap().tour_type.as_deref(), Some("virtual"));
    }

    #[test]
    fn a_complete_request_parses_into_a_command() {
        let c = BookTourCommand::parse(&request(|_| {})).unwrap();
        assert_eq!(c.contact.phone.as_ref().unwrap().expose(), "+15125550100");
        assert_eq!(c.tour_type, TourType::InPerson);
        assert_eq!(c.time, NaiveTime::from_hms_opt(10, 0, 0).unwrap());
    }

    type Change = Box<dyn FnOnce(&mut serde_json::Value)>;

    #[test]
    fn every_missing_or_malformed_field_is_named() {
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|b| b["conversation_id"] = json!(null)), "conversation_id"),
            (Box::new(|b| b["tour_data"] = json!(null)), "tour_data"),
            (
                Box::new(|b| b["tour_data"]["prospect_name"] = json!("")),
                "tour_data.prospect_name",
            ),
            (
                Box::new(|b| b["tour_data"]["prospect_email"] = json!("ana-at-example")),
                "tour_data.prospect_email",
            ),
            (
                Box::new(|b| b["tour_data"]["prospect_phone"] = json!("555")),
                "tour_data.prospect_phone",
            ),
            (
                Box::new(|b| b["tour_data"]["prospect_phone"] = json!(null)),
                "tour_data.prospect_phone",
            ),
            (
                Box::new(|b| b["tour_data"]["tour_type"] = json!("helicopter")),
                "tour_data.tour_type",
            ),
            (
                Box::new(|b| b["tour_data"]["preferred_date"] = json!("1/12/2026")),
                "tour_data.preferred_date",
            ),
            (
                Box::new(|b| b["tour_data"]["preferred_time"] = json!("10am")),
                "tour_data.preferred_time",
            ),
            (
                Box::new(|b| b["tour_data"]["property_id"] = json!(null)),
                "tour_data.property_id",
            ),
            (
                Box::new(|b| b["tour_data"]["special_requests"] = json!("x".repeat(1001))),
                "tour_data.special_requests",
            ),
            (
                Box::new(|b| b["tour_data"]["unit_preferences"] = json!(vec!["a"; MAX_PREFERENCES + 1])),
                "tour_data.unit_preferences",
            ),
            (
                Box::new(|b| b["tour_data"]["unit_preferences"] = json!(["ok", "y".repeat(MAX_PREFERENCE_CHARS + 1)])),
                "tour_data.unit_preferences",
            ),
            (
                Box::new(|b| b["tour_data"]["unit_preferences"] = json!(["ok", "bad\u{7}"])),
                "tour_data.unit_preferences",
            ),
        ];
        for (change, field) in cases {
            assert_eq!(BookTourCommand::parse(&request(change)).unwrap_err().field, field);
        }
    }

    #[test]
    fn unit_preferences_come_as_the_briefs_list_or_as_one_string() {
        let listed = request(|b| b["tour_data"]["unit_preferences"] = json!(["2 bedrooms", " ", "ground floor"]));
        let command = BookTourCommand::parse(&listed).unwrap();
        assert_eq!(command.unit_preferences.as_deref(), Some("2 bedrooms; ground floor"));
        let one = BookTourCommand::parse(&request(|_| {})).unwrap();
        assert_eq!(one.unit_preferences.as_deref(), Some("2 bedrooms"));
        let none = BookTourCommand::parse(&request(|b| b["tour_data"]["unit_preferences"] = json!([]))).unwrap();
        assert_eq!(none.unit_preferences, None);
        let body = br#"{"conversation_id":"c","tour_data":{"unit_preferences":["2 bedrooms", 3]}}"#;
        assert_eq!(
            BookTourRequest::from_body(body).unwrap_err().field,
            "tour_data.unit_preferences"
        );
        let third = request(|b| b["tour_data"]["unit_preferences"] = json!(["a", "b", "c\u{1}"]));
        assert!(
            BookTourCommand::parse(&third)
                .unwrap_err()
                .reason
                .starts_with("preference 3 ")
        );
    }

    #[test]
    fn the_requested_time_must_be_bookable() {
        let p = demo();
        let at = |date: &str, time: &str| {
            let c = BookTourCommand::parse(&request(|b| {
                b["tour_data"]["preferred_date"] = json!(date);
                b["tour_data"]["preferred_time"] = json!(time);
            }))
            .unwrap();
            requested_slot(&p, &c, now())
        };
        assert!(at("2026-12-01", "10:00").is_ok());
        let err = at("2026-12-01", "17:30").unwrap_err();
        assert_eq!(err.field, "tour_data.preferred_time");
        assert!(err.reason.contains("office hours"), "{}", err.reason);
        assert!(at("2026-12-01", "10:07").unwrap_err().reason.contains("time grid"));
        assert!(at("2026-12-01", "07:00").unwrap_err().reason.contains("office hours"));
        assert_eq!(at("2026-11-29", "10:00").unwrap_err().field, "tour_data.preferred_date");
        assert!(at("2026-11-30", "06:30").unwrap_err().reason.contains("too soon"));
        assert!(at("2026-11-30", "05:00").unwrap_err().reason.contains("past"));
        assert_eq!(at("2026-12-25", "10:00").unwrap_err().field, "tour_data.preferred_time");
    }

    #[test]
    fn an_explicit_key_wins_and_without_one_the_conversation_and_slot_are_the_key() {
        let c = BookTourCommand::parse(&request(|_| {})).unwrap();
        let other_time =
            BookTourCommand::parse(&request(|b| b["tour_data"]["preferred_time"] = json!("11:00"))).unwrap();
        assert_eq!(c.idempotency_key(None).unwrap(), c.idempotency_key(None).unwrap());
        assert_ne!(
            c.idempotency_key(None).unwrap(),
            other_time.idempotency_key(None).unwrap()
        );
        assert_ne!(
            c.idempotency_key(Some("abc")).unwrap(),
            c.idempotency_key(None).unwrap()
        );
        assert_eq!(c.idempotency_key(Some(" ")).unwrap_err().field, "Idempotency-Key");
        assert_ne!(c.fingerprint(), other_time.fingerprint());
    }

    #[test]
    fn locks_cover_the_tour_and_its_buffers_in_granules() {
        let mut json = super::super::property::tests::demo_json();
        json["buffer_after_minutes"] = 15.into();
        let p = Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
        let start = resolve_local(
            p.time_zone,
            NaiveDate::from_ymd_opt(2026, 12, 1)
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
            super::super::calendar::duration_from_comments(Some(&comments), 45),
            Duration::minutes(30)
        );
    }
}
