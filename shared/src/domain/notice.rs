//! A change ResMan (or a relay) tells us about: a leasing agent moved, confirmed or cancelled a tour.
//! Webhook body: `{"event_id","appointment_id","status","updated_fields","staff_member","timestamp"}`; the sandbox
//! also sends `property_id` and `scheduled_at`, which are used when present **[assumed]**.

use super::resman::TourEventStatus;
use super::{AgentId, AppointmentId, InvalidField, ResManPropertyId};
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNotice {
    pub event_id: String,
    pub appointment_id: AppointmentId,
    pub status: TourEventStatus,
    pub updated_fields: Vec<String>,
    pub staff_member: Option<AgentId>,
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
    updated_fields: Vec<String>,
    staff_member: Option<String>,
    timestamp: Option<String>,
    property_id: Option<String>,
    scheduled_at: Option<String>,
}

fn rfc3339(field: &'static str, raw: &str) -> Result<DateTime<Utc>, InvalidField> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| InvalidField::new(field, "must be an RFC 3339 date-time"))
}

const KNOWN_STATUSES: [&str; 6] = [
    "scheduled",
    "confirmed",
    "completed",
    "cancelled",
    "canceled",
    "no show",
];

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
        if event_id.len() > 128 {
            return Err(InvalidField::new("event_id", "must be at most 128 characters"));
        }
        let appointment_id = AppointmentId::parse(
            &wire
                .appointment_id
                .ok_or_else(|| InvalidField::new("appointment_id", "is required"))?,
        )
        .map_err(|e| InvalidField::new("appointment_id", e.reason))?;
        let status_word = wire.status.ok_or_else(|| InvalidField::new("status", "is required"))?;
        if !KNOWN_STATUSES.contains(&status_word.trim().to_ascii_lowercase().as_str()) {
            return Err(InvalidField::new(
                "status",
                "must be Scheduled, Confirmed, Completed, Cancelled or No Show",
            ));
        }
        let sent_at = rfc3339(
            "timestamp",
            &wire
                .timestamp
                .ok_or_else(|| InvalidField::new("timestamp", "is required"))?,
        )?;
        Ok(Self {
            event_id: event_id.trim().to_owned(),
            appointment_id,
            status: TourEventStatus::from_resman(Some(&status_word)),
            updated_fields: wire.updated_fields,
            staff_member: wire
                .staff_member
                .as_deref()
                .map(AgentId::parse)
                .transpose()
                .map_err(|e| InvalidField::new("staff_member", e.reason))?,
            property_id: wire.property_id.as_deref().map(ResManPropertyId::parse).transpose()?,
            scheduled_at: wire
                .scheduled_at
                .as_deref()
                .map(|s| rfc3339("scheduled_at", s))
                .transpose()?,
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
        assert_eq!(n.scheduled_at.unwrap().to_rfc3339(), "2026-12-01T16:00:00+00:00");
        assert_eq!(n.property_id.unwrap().as_str(), "P-1");
    }

    #[test]
    fn each_missing_or_bad_field_is_named() {
        let cases: [(&[u8], &str); 6] = [
            (b"not json", "body"),
            (br#"{"appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z"}"#, "event_id"),
            (br#"{"event_id":"e","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z"}"#, "appointment_id"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Maybe","timestamp":"2026-12-01T16:00:00Z"}"#, "status"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"yesterday"}"#, "timestamp"),
            (br#"{"event_id":"e","appointment_id":"A","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z","scheduled_at":"noon"}"#, "scheduled_at"),
        ];
        for (body, field) in cases {
            assert_eq!(ChangeNotice::parse(body).unwrap_err().field, field);
        }
    }
}
