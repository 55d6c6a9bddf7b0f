//! A change ResMan (or a relay) tells us about: a leasing agent moved, confirmed or cancelled a tour.
//! Webhook body, the brief's `TourUpdateWebhook`: `{"appointment_id","status","updated_fields","staff_member",
//! "timestamp"}`, where `updated_fields` is an object of the new values (`{"status": "Confirmed",
//! "scheduled_at": "...", "staff_notes": "..."}`) and `staff_member` a person's name or an employee id. A list of
//! the changed fields' names is accepted too (the sandbox sends one). `event_id`, `property_id` and
//! `scheduled_at` are used when present **[assumed]**; a `scheduled_at` among the updated fields counts as the new
//! time, and `staff_notes` (among them, or beside them as the brief's handler reads it) are staff's notes.
//!
//! A notice without `event_id` (the brief's shape) is known by a digest of what it says: its appointment, status,
//! updated fields and timestamp. So a relay's retry of it is kept once, and a different notice is a new one.

use super::lifecycle::ResManWord;
use super::resman::TourEventStatus;
use super::{AppointmentId, InvalidField, ResManPropertyId};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The largest notice accepted: a ResMan change notice is a few hundred bytes, so 64 KiB is plenty. A larger body is
/// refused (413) before it is hashed.
pub const MAX_NOTICE_BYTES: usize = 64 * 1024;

/// The most of a notice's other updated fields kept in the tour's history, as JSON: a notice is small, and a tour's
/// record must stay far below DynamoDB's 400 KB item limit however many notices it gets.
pub const MAX_RECEIVED_BYTES: usize = 2 * 1024;

/// The updated fields that are read into the notice itself rather than kept as received.
const READ_FIELDS: [&str; 3] = ["status", "scheduled_at", "staff_notes"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNotice {
    /// As sent, or `sha256:<digest of the content>` for a notice sent without one.
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
    /// Staff's notes on the tour, when the notice carries them (an empty text clears them).
    pub staff_notes: Option<String>,
    /// The other updated fields with their values, as received (at most [`MAX_RECEIVED_BYTES`] of JSON: past that,
    /// each value over 64 characters is cut to its first 64 and marked `…`).
    pub received: BTreeMap<String, serde_json::Value>,
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
    staff_notes: Option<serde_json::Value>,
}

/// A notice's identity when it has no `event_id`: a digest of its appointment, status word, updated fields and
/// timestamp, as sent (an object's keys in order, so the same content always digests alike).
fn content_id(appointment_id: &str, status: &str, updated_fields: &serde_json::Value, timestamp: &str) -> String {
    let canonical = serde_json::json!([appointment_id, status, canonical(updated_fields), timestamp]).to_string();
    format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes())))
}

/// The value with every object's keys sorted, whatever map order serde_json was built with.
fn canonical(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, serde_json::Value> = map.iter().map(|(k, v)| (k, canonical(v))).collect();
            serde_json::Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Staff's notes as sent, checked as the update API checks them.
fn notes_of(value: Option<&serde_json::Value>, field: &'static str) -> Result<Option<String>, InvalidField> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(raw)) => Ok(Some(
            super::fields::checked_text(raw, field, super::update::MAX_STAFF_NOTES_CHARS)?.to_owned(),
        )),
        Some(_) => Err(InvalidField::new(field, "must be text")),
    }
}

/// The updated fields not read into the notice, with their values, kept within [`MAX_RECEIVED_BYTES`].
fn received_of(value: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    let serde_json::Value::Object(values) = value else {
        return BTreeMap::new();
    };
    let mut kept: BTreeMap<String, serde_json::Value> = values
        .iter()
        .filter(|(name, _)| !READ_FIELDS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let size = |kept: &BTreeMap<String, serde_json::Value>| serde_json::to_string(kept).map_or(usize::MAX, |s| s.len());
    if size(&kept) > MAX_RECEIVED_BYTES {
        for value in kept.values_mut() {
            let text = match &*value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.chars().count() > 64 {
                *value = serde_json::Value::String(format!("{}…", text.chars().take(64).collect::<String>()));
            }
        }
    }
    while size(&kept) > MAX_RECEIVED_BYTES {
        // Still too much (very many fields): the last ones by name are dropped.
        kept.pop_last();
    }
    kept
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
        let given_id = wire.event_id.clone().filter(|v| !v.trim().is_empty());
        if given_id
            .as_ref()
            .is_some_and(|id| id.chars().count() > super::limits::ID_CHARS)
        {
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
            wire.timestamp
                .as_deref()
                .ok_or_else(|| InvalidField::new("timestamp", "is required"))?,
        )?;
        let (updated_fields, new_time) = updated_fields(&wire.updated_fields)?;
        let staff_notes = match wire.updated_fields.get("staff_notes") {
            Some(inner) => notes_of(Some(inner), "updated_fields.staff_notes")?,
            None => notes_of(wire.staff_notes.as_ref(), "staff_notes")?,
        };
        let event_id = match given_id {
            Some(id) => id.trim().to_owned(),
            None => content_id(
                appointment_id.as_str(),
                &status_word,
                &wire.updated_fields,
                wire.timestamp.as_deref().unwrap_or_default(),
            ),
        };
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
            event_id,
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
            staff_notes,
            received: received_of(&wire.updated_fields),
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
    fn the_briefs_shape_without_an_event_id_is_known_by_its_content_and_carries_staff_notes() {
        let brief = br#"{"appointment_id":"A-1","status":"Confirmed",
            "updated_fields":{"status":"Confirmed","staff_notes":" Prefers the 2nd floor ","unit":"B12"},
            "staff_member":"Alex Rivera","timestamp":"2026-12-01T16:00:00Z"}"#;
        let n = ChangeNotice::parse(brief).unwrap();
        assert_eq!(n.staff_notes.as_deref(), Some("Prefers the 2nd floor"));
        assert_eq!(
            n.received,
            BTreeMap::from([("unit".to_owned(), serde_json::json!("B12"))])
        );
        assert!(n.event_id.starts_with("sha256:"), "{}", n.event_id);
        // The same content, keys in another order and spaced otherwise: the same notice (a relay's retry).
        let retry = br#"{"timestamp":"2026-12-01T16:00:00Z","updated_fields":{"unit":"B12","staff_notes":" Prefers the 2nd floor ","status":"Confirmed"},"status":"Confirmed","appointment_id":"A-1","staff_member":"Alex Rivera"}"#;
        assert_eq!(ChangeNotice::parse(retry).unwrap().event_id, n.event_id);
        // Any difference in what it says is another notice.
        for other in [
            br#"{"appointment_id":"A-1","status":"Cancelled","updated_fields":{"status":"Confirmed","staff_notes":" Prefers the 2nd floor ","unit":"B12"},"timestamp":"2026-12-01T16:00:00Z"}"#.as_slice(),
            br#"{"appointment_id":"A-1","status":"Confirmed","updated_fields":{"status":"Confirmed","staff_notes":"Prefers the 3rd floor","unit":"B12"},"timestamp":"2026-12-01T16:00:00Z"}"#,
            br#"{"appointment_id":"A-1","status":"Confirmed","updated_fields":{"status":"Confirmed","staff_notes":" Prefers the 2nd floor ","unit":"B12"},"timestamp":"2026-12-01T16:00:01Z"}"#,
            br#"{"appointment_id":"A-2","status":"Confirmed","updated_fields":{"status":"Confirmed","staff_notes":" Prefers the 2nd floor ","unit":"B12"},"timestamp":"2026-12-01T16:00:00Z"}"#,
        ] {
            assert_ne!(ChangeNotice::parse(other).unwrap().event_id, n.event_id);
        }
        // The brief's handler reads staff_notes beside the fields: taken there too; and a given event_id is kept.
        let beside = br#"{"event_id":"e-9","appointment_id":"A-1","status":"Confirmed","updated_fields":{},"staff_notes":"Called back","timestamp":"2026-12-01T16:00:00Z"}"#;
        let n = ChangeNotice::parse(beside).unwrap();
        assert_eq!(
            (n.event_id.as_str(), n.staff_notes.as_deref()),
            ("e-9", Some("Called back"))
        );
    }

    #[test]
    fn other_fields_are_kept_as_received_within_their_bound() {
        let long = "x".repeat(MAX_RECEIVED_BYTES);
        let body = serde_json::json!({
            "appointment_id": "A-1", "status": "Confirmed", "timestamp": "2026-12-01T16:00:00Z",
            "updated_fields": {"status": "Confirmed", "scheduled_at": "2026-12-01T21:00:00Z", "unit": "B12",
                               "comment": long, "count": 3}
        });
        let n = ChangeNotice::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(n.received.keys().collect::<Vec<_>>(), ["comment", "count", "unit"]);
        assert_eq!(n.received["unit"], "B12");
        assert_eq!(n.received["count"], 3);
        let comment = n.received["comment"].as_str().unwrap();
        assert_eq!(comment.chars().count(), 65, "cut to 64 characters and marked");
        assert!(serde_json::to_string(&n.received).unwrap().len() <= MAX_RECEIVED_BYTES);
        let many: serde_json::Map<String, serde_json::Value> = (0..400)
            .map(|i| (format!("field_{i:03}"), serde_json::json!("value")))
            .collect();
        let body = serde_json::json!({"appointment_id": "A-1", "status": "Confirmed",
                                      "timestamp": "2026-12-01T16:00:00Z", "updated_fields": many});
        let n = ChangeNotice::parse(body.to_string().as_bytes()).unwrap();
        assert!(serde_json::to_string(&n.received).unwrap().len() <= MAX_RECEIVED_BYTES);
        assert!(n.received.contains_key("field_000"), "the first by name are kept");
    }

    #[test]
    fn each_missing_or_bad_field_is_named() {
        let cases: [(&[u8], &str); 9] = [
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","updated_fields":3}"#, "updated_fields"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","updated_fields":[1]}"#, "updated_fields"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","updated_fields":{"scheduled_at":"soon"}}"#, "updated_fields.scheduled_at"),
            (b"not json", "body"),
            (br#"{"appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","updated_fields":{"staff_notes":7}}"#, "updated_fields.staff_notes"),
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
