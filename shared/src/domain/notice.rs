//! A change ResMan (or a relay) tells us about: a leasing agent moved, confirmed or cancelled a tour.
//! Webhook body, the brief's `TourUpdateWebhook`: `{"event_id","appointment_id","status","updated_fields",
//! "staff_member","timestamp"}`, where `updated_fields` is an object of the new values (`{"status": "Confirmed",
//! "scheduled_at": "..."}`) and `staff_member` a person's name or an employee id. A list of the changed fields'
//! names is accepted too (the sandbox sends one). `property_id` and `scheduled_at` are used when present
//! **[assumed]**; a `scheduled_at` among the updated fields counts as the new time.

use super::lifecycle::ResManWord;
use super::resman::TourEventStatus;
use super::{AppointmentId, InvalidField, ResManPropertyId};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The largest notice accepted: a ResMan change notice is a few hundred bytes, so 64 KiB is plenty. A larger body is
/// refused (413) before it is hashed.
pub const MAX_NOTICE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNotice {
    pub event_id: String,
    pub appointment_id: AppointmentId,
    /// The status for the busy-time mirror (a word we do not know reads as `Scheduled`: the time stays busy).
    pub status: TourEventStatus,
    /// The status exactly as ResMan worded it, for our own tours.
    pub word: ResManWord,
    /// The names of the fields that changed.
    pub updated_fields: Vec<String>,
    /// As sent: an employee id or a person's name, resolved against the property's agents when applied.
    pub staff_member: Option<String>,
    pub property_id: Option<ResManPropertyId>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub sent_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Wire {
    event_id: Option<String>,
    appointment_id: Option<String>,
    status: Option<String>,
    #[serde(default)]
    updated_fields: serde_json::Value,
    staff_member: Option<String>,
    timestamp: Option<String>,
    property_id: Option<String>,
    scheduled_at: Option<String>,
}

/// The changed fields' names, and the new time when it is among them: from the brief's object of new values, or
/// from a list of names.
fn updated_fields(value: &serde_json::Value) -> Result<(Vec<String>, Option<DateTime<Utc>>), InvalidField> {
    match value {
        serde_json::Value::Null => Ok((Vec::new(), None)),
        serde_json::Value::Object(values) => {
            let scheduled_at = match values.get("scheduled_at") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(raw)) => Some(rfc3339("updated_fields.scheduled_at", raw)?),
                Some(_) => {
                    return Err(InvalidField::new(
                        "updated_fields.scheduled_at",
                        "must be an RFC 3339 date-time",
                    ));
                }
            };
            Ok((values.keys().cloned().collect(), scheduled_at))
        }
        serde_json::Value::Array(names) => names
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|names| (names, None))
            .ok_or_else(|| InvalidField::new("updated_fields", "must be an object of new values")),
        _ => Err(InvalidField::new("updated_fields", "must be an object of new values")),
    }
}

fn rfc3339(field: &'static str, raw: &str) -> Result<DateTime<Utc>, InvalidField> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| InvalidField::new(field, "must be an RFC 3339 date-time"))
}

impl ChangeNotice {
    pub fn parse(body: &[u8]) -> Result<Self, InvalidField> {
        let wire: Wire = serde_json::from_slice(body).map_err(|e| {
            InvalidField::new(
                "body",
                format!("is not the expected JSON object ({})", e.classify() as u8),
            )
        })?;
        let event_id = wire
            .event_id
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| InvalidField::new("event_id", "is required"))?;
        if event_id.chars().count() > super::limits::ID_CHARS {
            return Err(InvalidField::new(
                "event_id",
                format!("must be at most {} characters", super::limits::ID_CHARS),
            ));
        }
        let appointment_id = AppointmentId::parse(
            &wire
                .appointment_id
                .ok_or_else(|| InvalidField::new("appointment_id", "is required"))?,
        )
        .map_err(|e| InvalidField::new("appointment_id", e.reason))?;
        let status_word = wire
            .status
            .filter(|w| !w.trim().is_empty())
            .ok_or_else(|| InvalidField::new("status", "is required"))?;
        if status_word.chars().count() > 64 || status_word.chars().any(char::is_control) {
            return Err(InvalidField::new("status", "must be a word of at most 64 characters"));
        }
        // A word we do not know is kept (and reported) rather than refused: ResMan's words are its own.
        let word = ResManWord::read(Some(&status_word));
        let sent_at = rfc3339(
            "timestamp",
            &wire
                .timestamp
                .ok_or_else(|| InvalidField::new("timestamp", "is required"))?,
        )?;
        let (updated_fields, new_time) = updated_fields(&wire.updated_fields)?;
        let staff_member = wire.staff_member.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        if staff_member
            .as_ref()
            .is_some_and(|s| s.chars().count() > super::limits::ID_CHARS)
        {
            return Err(InvalidField::new(
                "staff_member",
                format!("must be at most {} characters", super::limits::ID_CHARS),
            ));
        }
        Ok(Self {
            event_id: event_id.trim().to_owned(),
            appointment_id,
            status: TourEventStatus::from_resman(Some(&status_word)),
            word,
            updated_fields,
            staff_member,
            property_id: wire.property_id.as_deref().map(ResManPropertyId::parse).transpose()?,
            scheduled_at: wire
                .scheduled_at
                .as_deref()
                .map(|s| rfc3339("scheduled_at", s))
                .transpose()?
                .or(new_time),
            sent_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_notice_parses() {
        let body = br#"{"event_id":"e-1","appointment_id":"A-1","status":"No Show","updated_fields":["status"],
            "staff_member":"a1e0","timestamp":"2026-12-01T16:00:00Z","property_id":"P-1","scheduled_at":"2026-12-01T10:00:00-06:00"}"#;
        let n = ChangeNotice::parse(body).unwrap();
        assert_eq!(n.status, TourEventStatus::NoShow);
        assert_eq!(n.word, ResManWord::Known(crate::domain::lifecycle::TourStatus::NoShow));
        assert_eq!(n.scheduled_at.unwrap().to_rfc3339(), "2026-12-01T16:00:00+00:00");
        assert_eq!(n.property_id.unwrap().as_str(), "P-1");
    }

    #[test]
    fn the_briefs_shape_parses_with_the_new_values_and_a_staff_name() {
        let body = br#"{"event_id":"e-2","appointment_id":"A-1","status":"Confirmed",
            "updated_fields":{"status":"Confirmed","scheduled_at":"2026-12-01T21:00:00Z","staff_notes":"moved"},
            "staff_member":"Alex Rivera","timestamp":"2026-12-01T16:00:00Z"}"#;
        let n = ChangeNotice::parse(body).unwrap();
        assert_eq!(n.status, TourEventStatus::Confirmed);
        assert_eq!(n.updated_fields, ["scheduled_at", "staff_notes", "status"]);
        assert_eq!(n.scheduled_at.unwrap().to_rfc3339(), "2026-12-01T21:00:00+00:00");
        assert_eq!(n.staff_member.as_deref(), Some("Alex Rivera"));
    }

    #[test]
    fn each_missing_or_bad_field_is_named() {
        let cases: [(&[u8], &str); 9] = [
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","updated_fields":3}"#, "updated_fields"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","updated_fields":[1]}"#, "updated_fields"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","updated_fields":{"scheduled_at":"soon"}}"#, "updated_fields.scheduled_at"),
            (b"not json", "body"),
            (br#"{"appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z"}"#, "event_id"),
            (br#"{"event_id":"e","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z"}"#, "appointment_id"),
            (br#"{"event_id":"e","appointment_id":"A","status":" ","timestamp":"2026-12-01T16:00:00Z"}"#, "status"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"yesterday"}"#, "timestamp"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","scheduled_at":"noon"}"#, "scheduled_at"),
        ];
        for (body, field) in cases {
            assert_eq!(ChangeNotice::parse(body).unwrap_err().field, field);
        }
        let odd = br#"{"event_id":"e","appointment_id":"A","status":"Rained Out","timestamp":"2026-12-01T16:00:00Z"}"#;
        let n = ChangeNotice::parse(odd).unwrap();
        assert_eq!(n.word, ResManWord::Unknown("Rained Out".into()), "kept verbatim");
        assert_eq!(n.status, TourEventStatus::Scheduled, "the mirror keeps the time busy");
    }
}
