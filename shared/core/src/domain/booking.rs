//! A tour booking: the chatbot's request made into a command that can only hold valid values, and where the time it
//! asks for stands against the property's rules. What we keep of a booking is in [`super::record`].

use super::consent::SmsConsent;
use super::fields::{JsonObject, checked_text, idempotency_key_of, json_object, required, text_field};
use super::property::Property;
use super::resman::ProspectContact;
use super::slots::{self, resolve_local};
use super::{
    ConversationId, Email, HoldToken, InvalidField, PersonName, Phone, ResManPropertyId, TourType, UtcWindow, limits,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The seed's `BookTourRequest`, as it comes off the wire (every field optional so each missing one is named).
#[derive(Debug, Default, Deserialize)]
pub struct BookTourRequest {
    pub conversation_id: Option<String>,
    pub tour_data: Option<TourData>,
    /// The token of the conversation's slot hold, when it holds the time asked for.
    pub hold_token: Option<String>,
    /// The prospect's agreement to texts, when they gave it in the conversation.
    #[serde(skip)]
    pub sms_consent: Option<SmsConsent>,
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
            sms_consent: SmsConsent::from_body(object)?,
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
    /// The prospect's agreement to texts. Not part of the fingerprint either: it is about the prospect's number, not
    /// the tour.
    pub sms_consent: Option<SmsConsent>,
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

fn free_text(value: &Option<String>, field: &'static str, max: usize) -> Result<Option<String>, InvalidField> {
    let Some(raw) = value.as_deref() else {
        return Ok(None);
    };
    let text = checked_text(raw, field, max)?;
    Ok((!text.is_empty()).then(|| text.to_owned()))
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
            sms_consent: request.sms_consent.clone(),
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
}
