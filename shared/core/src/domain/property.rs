//! A property's tour configuration: where it is, when it is open, which tours it offers and who gives them.
//! Loaded from a JSON file by an operator command, validated here, stored in DynamoDB as the same JSON.

use super::{AgentId, Email, InvalidField, ProspectSourceId, ResManPropertyId, TourType};
use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Every minute count (durations, step, buffers) is a multiple of this, so that slot locks of this size cover an
/// interval exactly and two intervals overlap exactly when they share a lock.
pub const GRANULE_MINUTES: u32 = 5;

/// Opening hours of one day: sorted, non-overlapping `[open, close)` ranges (empty = closed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayHours(Vec<(NaiveTime, NaiveTime)>);

impl DayHours {
    pub fn ranges(&self) -> &[(NaiveTime, NaiveTime)] {
        &self.0
    }

    fn parse(field: &'static str, raw: &[[String; 2]]) -> Result<Self, InvalidField> {
        let mut ranges = raw
            .iter()
            .map(|[open, close]| {
                let open = hhmm(field, open)?;
                let close = hhmm(field, close)?;
                if open >= close {
                    return Err(InvalidField::new(field, "each range must close after it opens"));
                }
                Ok((open, close))
            })
            .collect::<Result<Vec<_>, _>>()?;
        ranges.sort();
        if ranges.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err(InvalidField::new(field, "ranges of one day must not overlap"));
        }
        Ok(Self(ranges))
    }
}

fn hhmm(field: &'static str, raw: &str) -> Result<NaiveTime, InvalidField> {
    NaiveTime::parse_from_str(raw.trim(), "%H:%M")
        .map_err(|_| InvalidField::new(field, format!("'{raw}' is not a time HH:MM")))
}

/// How one tour type is given at this property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourTypeConfig {
    pub duration_minutes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_link: Option<String>,
    pub instructions: String,
}

/// A leasing agent as this property's configuration knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub id: AgentId,
    pub name: String,
    pub tour_types: BTreeSet<TourType>,
    /// Where the agent's staff alerts go (besides the property's staff addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The file and storage shape; `Property::from_file` validates it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyFile {
    pub property_id: String,
    /// The ResMan account (management company) the property belongs to; absent, the integration's default account.
    /// Its credentials live in their own secret (see docs/operations/onboarding.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resman_account_id: Option<u64>,
    pub name: String,
    pub time_zone: String,
    pub address: String,
    pub prospect_source_id: String,
    pub office_hours: BTreeMap<String, Vec<[String; 2]>>,
    #[serde(default)]
    pub exceptions: Vec<ExceptionFile>,
    pub slot_step_minutes: u32,
    #[serde(default)]
    pub buffer_before_minutes: u32,
    #[serde(default)]
    pub buffer_after_minutes: u32,
    pub minimum_notice_minutes: u32,
    pub booking_horizon_days: u32,
    #[serde(default)]
    pub self_guided_capacity: u32,
    #[serde(default)]
    pub staff_notification_emails: Vec<String>,
    /// How many hours before a tour its reminders leave: one or two values (default 24 and 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_hours: Option<Vec<u32>>,
    /// Where a prospect applies (`https://`), offered in the thank-you after a tour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_url: Option<String>,
    /// The leasing office's contact, printed in every prospect email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_email: Option<String>,
    /// A chat channel's incoming webhook (`https://`) that receives every staff alert as JSON, besides the email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_webhook_url: Option<String>,
    /// Whether a cancellation also marks the ResMan appointment itself `Cancelled` (`EventReasons`), besides the
    /// `Other` note the contract describes. Off by default: unverified against real ResMan, which may answer
    /// `Status=Error` to that word. Off, the appointment stays on ResMan's calendar until staff cancel it there
    /// (their alert says so), and its agent's time stays busy for us until then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resman_cancel_word: bool,
    /// Whether the property texts prospects who agreed to texts (their confirmation, reminders, move and cancel
    /// notices, by AWS End User Messaging SMS from the deployment's phone pool). Off by default: a property's number
    /// must be registered for 10DLC first. Without the prospect's consent no text is sent, whatever this says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub texts: bool,
    /// Whether a prospect's `C` reply also confirms the tour: a scheduled tour becomes `confirmed`, as staff's
    /// confirmation would make it, and ResMan is written `Confirmed`. Off by default: confirming stays staff's word,
    /// and the prospect's is noted beside it (`prospect_confirmed_at`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub text_confirms_tour: bool,
    /// The property's own versions of email templates, by file name (`confirmation.txt`, `base.html`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    pub agents: Vec<AgentConfig>,
    pub tour_types: BTreeMap<TourType, TourTypeConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionFile {
    pub date: String,
    /// Empty: closed all day.
    #[serde(default)]
    pub hours: Vec<[String; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A validated property configuration.
#[derive(Debug, Clone)]
pub struct Property {
    pub id: ResManPropertyId,
    /// Its ResMan account (`None`: the integration's default one).
    pub account: Option<super::resman::ResManAccountId>,
    pub name: String,
    pub time_zone: Tz,
    pub address: String,
    pub prospect_source: ProspectSourceId,
    weekly: [DayHours; 7],
    exceptions: BTreeMap<NaiveDate, DayHours>,
    pub slot_step_minutes: u32,
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    pub minimum_notice_minutes: u32,
    pub booking_horizon_days: u32,
    pub self_guided_capacity: u32,
    pub staff_notification_emails: Vec<Email>,
    pub office_phone: Option<String>,
    pub office_email: Option<Email>,
    /// Hours before a tour its reminders leave, longest first (one or two).
    pub reminder_hours: Vec<u32>,
    pub apply_url: Option<String>,
    pub staff_webhook_url: Option<String>,
    /// See [`PropertyFile::resman_cancel_word`].
    pub resman_cancel_word: bool,
    /// See [`PropertyFile::texts`].
    pub texts: bool,
    /// See [`PropertyFile::text_confirms_tour`].
    pub text_confirms_tour: bool,
    pub templates: BTreeMap<String, String>,
    pub agents: Vec<AgentConfig>,
    pub tour_types: BTreeMap<TourType, TourTypeConfig>,
    source: PropertyFile,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

fn granular(field: &'static str, minutes: u32, allow_zero: bool) -> Result<u32, InvalidField> {
    if (minutes == 0 && !allow_zero) || !minutes.is_multiple_of(GRANULE_MINUTES) || minutes > 24 * 60 {
        return Err(InvalidField::new(
            field,
            format!(
                "must be a {}multiple of {GRANULE_MINUTES} minutes up to a day",
                if allow_zero { "" } else { "positive " }
            ),
        ));
    }
    Ok(minutes)
}

fn https_address(field: &'static str, url: Option<&str>) -> Result<(), InvalidField> {
    if url.is_some_and(|u| !u.starts_with("https://") || u.chars().any(char::is_whitespace)) {
        return Err(InvalidField::new(field, "must be an https:// address"));
    }
    Ok(())
}

impl Property {
    pub fn from_file(file: PropertyFile) -> Result<Self, InvalidField> {
        let id = ResManPropertyId::parse(&file.property_id)?;
        if file.name.trim().is_empty() {
            return Err(InvalidField::new("name", "must not be empty"));
        }
        let time_zone: Tz = file
            .time_zone
            .parse()
            .map_err(|_| InvalidField::new("time_zone", format!("'{}' is not an IANA time zone", file.time_zone)))?;
        let prospect_source = ProspectSourceId::parse(&file.prospect_source_id)?;
        for day in file.office_hours.keys() {
            if !WEEKDAYS.iter().any(|(name, _)| name == day) {
                return Err(InvalidField::new(
                    "office_hours",
                    format!("'{day}' is not a day (mon..sun)"),
                ));
            }
        }
        let weekly = WEEKDAYS.map(|(name, _)| file.office_hours.get(name).map(|r| DayHours::parse("office_hours", r)));
        let weekly = weekly
            .into_iter()
            .map(|d| d.unwrap_or(Ok(DayHours::default())))
            .collect::<Result<Vec<_>, _>>()?;
        let weekly: [DayHours; 7] = weekly
            .try_into()
            .map_err(|_| InvalidField::new("office_hours", "needs seven days"))?;
        let mut exceptions = BTreeMap::new();
        for e in &file.exceptions {
            let date = NaiveDate::parse_from_str(&e.date, "%Y-%m-%d")
                .map_err(|_| InvalidField::new("exceptions", format!("'{}' is not a date YYYY-MM-DD", e.date)))?;
            if exceptions
                .insert(date, DayHours::parse("exceptions", &e.hours)?)
                .is_some()
            {
                return Err(InvalidField::new("exceptions", format!("{date} is listed twice")));
            }
        }
        let slot_step_minutes = granular("slot_step_minutes", file.slot_step_minutes, false)?;
        let buffer_before_minutes = granular("buffer_before_minutes", file.buffer_before_minutes, true)?;
        let buffer_after_minutes = granular("buffer_after_minutes", file.buffer_after_minutes, true)?;
        if !(1..=365).contains(&file.booking_horizon_days) {
            return Err(InvalidField::new("booking_horizon_days", "must be from 1 to 365"));
        }
        if file.tour_types.is_empty() {
            return Err(InvalidField::new("tour_types", "must offer at least one tour type"));
        }
        for (tour_type, config) in &file.tour_types {
            granular("tour_types.duration_minutes", config.duration_minutes, false)?;
            if tour_type.needs_agent() && !file.agents.iter().any(|a| a.tour_types.contains(tour_type)) {
                return Err(InvalidField::new(
                    "agents",
                    format!("no agent gives {} tours", tour_type.as_str()),
                ));
            }
            if *tour_type == TourType::Virtual
                && config
                    .virtual_link
                    .as_deref()
                    .is_none_or(|l| !l.starts_with("https://"))
            {
                return Err(InvalidField::new(
                    "tour_types.virtual.virtual_link",
                    "must be an https:// link",
                ));
            }
        }
        if file.tour_types.contains_key(&TourType::SelfGuided) && file.self_guided_capacity == 0 {
            return Err(InvalidField::new(
                "self_guided_capacity",
                "must be at least 1 when self-guided tours are offered",
            ));
        }
        let mut seen = BTreeSet::new();
        for agent in &file.agents {
            if !seen.insert(agent.id.clone()) {
                return Err(InvalidField::new(
                    "agents",
                    format!("agent {} is listed twice", agent.id),
                ));
            }
            if let Some(t) = agent
                .tour_types
                .iter()
                .find(|t| !file.tour_types.contains_key(t) || !t.needs_agent())
            {
                return Err(InvalidField::new(
                    "agents",
                    format!("agent {} gives {}, which no agent can give here", agent.id, t.as_str()),
                ));
            }
        }
        let staff_notification_emails = file
            .staff_notification_emails
            .iter()
            .map(|e| Email::parse(e).map_err(|err| InvalidField::new("staff_notification_emails", err.reason)))
            .collect::<Result<Vec<_>, _>>()?;
        let office_email = file
            .office_email
            .as_deref()
            .map(|e| Email::parse(e).map_err(|err| InvalidField::new("office_email", err.reason)))
            .transpose()?;
        let mut reminder_hours = file.reminder_hours.clone().unwrap_or_else(|| vec![24, 2]);
        reminder_hours.sort_unstable_by(|a, b| b.cmp(a));
        reminder_hours.dedup();
        if reminder_hours.len() > 2 || reminder_hours.iter().any(|h| !(1..=168).contains(h)) {
            return Err(InvalidField::new(
                "reminder_hours",
                "must list one or two numbers of hours from 1 to 168",
            ));
        }
        https_address("apply_url", file.apply_url.as_deref())?;
        https_address("staff_webhook_url", file.staff_webhook_url.as_deref())?;
        for (name, source) in &file.templates {
            super::email::Templates::check_override(name, source)?;
        }
        for agent in &file.agents {
            if let Some(email) = &agent.email {
                Email::parse(email)
                    .map_err(|err| InvalidField::new("agents", format!("agent {}: {}", agent.id, err.reason)))?;
            }
        }
        Ok(Self {
            id,
            account: file.resman_account_id.map(super::resman::ResManAccountId),
            name: file.name.trim().to_owned(),
            time_zone,
            address: file.address.clone(),
            prospect_source,
            weekly,
            exceptions,
            slot_step_minutes,
            buffer_before_minutes,
            buffer_after_minutes,
            minimum_notice_minutes: file.minimum_notice_minutes,
            booking_horizon_days: file.booking_horizon_days,
            self_guided_capacity: file.self_guided_capacity,
            staff_notification_emails,
            office_phone: file.office_phone.clone().filter(|p| !p.trim().is_empty()),
            office_email,
            reminder_hours,
            apply_url: file.apply_url.clone(),
            staff_webhook_url: file.staff_webhook_url.clone(),
            resman_cancel_word: file.resman_cancel_word,
            texts: file.texts,
            text_confirms_tour: file.text_confirms_tour,
            templates: file.templates.clone(),
            agents: file.agents.clone(),
            tour_types: file.tour_types.clone(),
            source: file,
        })
    }

    /// Where ResMan calls about this property go.
    pub fn site(&self) -> super::resman::ResManSite {
        super::resman::ResManSite::new(self.account, self.id.clone())
    }

    /// The shape it was loaded from, for storage.
    pub fn to_file(&self) -> &PropertyFile {
        &self.source
    }

    /// Opening hours on a local date: the exception for that date if any, else the weekday's.
    pub fn hours_on(&self, date: NaiveDate) -> &DayHours {
        self.exceptions.get(&date).unwrap_or_else(|| {
            let i = WEEKDAYS
                .iter()
                .position(|(_, d)| *d == chrono::Datelike::weekday(&date))
                .unwrap_or(0);
            &self.weekly[i]
        })
    }

    /// The note of a date with hours of its own (`"Christmas Eve"`), as the operators wrote it.
    pub fn note_on(&self, date: NaiveDate) -> Option<&str> {
        let date = date.to_string();
        let exception = self.source.exceptions.iter().find(|e| e.date == date)?;
        exception.note.as_deref()
    }

    pub fn tour_type(&self, tour_type: TourType) -> Result<&TourTypeConfig, InvalidField> {
        self.tour_types.get(&tour_type).ok_or_else(|| {
            InvalidField::new(
                "tour_type",
                format!("{} tours are not offered at this property", tour_type.as_str()),
            )
        })
    }

    /// Agents who give this tour type, in configuration order.
    pub fn agents_for(&self, tour_type: TourType) -> impl Iterator<Item = &AgentConfig> {
        self.agents.iter().filter(move |a| a.tour_types.contains(&tour_type))
    }

    pub fn agent(&self, id: &AgentId) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| &a.id == id)
    }

    /// The name of the agent who gives the tour (none for a self-guided tour, or an agent no longer listed).
    pub fn guide_of(&self, tour: &super::record::TourRecord) -> Option<String> {
        tour.holder.agent().and_then(|a| self.agent(a)).map(|a| a.name.clone())
    }

    /// The agent a person names, by employee id or by name (any case): ResMan's notices may send either.
    pub fn agent_named(&self, id_or_name: &str) -> Option<&AgentConfig> {
        let wanted = id_or_name.trim();
        self.agents
            .iter()
            .find(|a| a.id.as_str() == wanted)
            .or_else(|| self.agents.iter().find(|a| a.name.trim().eq_ignore_ascii_case(wanted)))
    }
}

/// Reads a file of one property or a JSON array of them.
pub fn parse_properties(json: &str) -> Result<Vec<Property>, InvalidField> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| InvalidField::new("file", format!("is not JSON: {e}")))?;
    let files: Vec<PropertyFile> = match value {
        serde_json::Value::Array(_) => serde_json::from_value(value),
        _ => serde_json::from_value(value).map(|one| vec![one]),
    }
    .map_err(|e| InvalidField::new("file", format!("is not a property configuration: {e}")))?;
    files.into_iter().map(Property::from_file).collect()
}

#[cfg(any(test, feature = "testing"))]
#[cfg_attr(not(test), allow(unused_imports, dead_code))]
pub mod tests {
    use super::*;

    pub fn demo_json() -> serde_json::Value {
        serde_json::json!({
            "property_id": "P-1",
            "name": "Maple Grove Apartments",
            "time_zone": "America/Chicago",
            "address": "1200 Riverside Dr, Austin, TX 78741",
            "prospect_source_id": "S-1",
            "office_hours": {
                "mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]], "wed": [["09:00", "18:00"]],
                "thu": [["09:00", "18:00"]], "fri": [["09:00", "18:00"]], "sat": [["10:00", "17:00"]]
            },
            "exceptions": [{"date": "2026-12-25", "hours": []}, {"date": "2026-12-24", "hours": [["09:00", "12:00"]]}],
            "slot_step_minutes": 15,
            "buffer_before_minutes": 0,
            "buffer_after_minutes": 0,
            "minimum_notice_minutes": 60,
            "booking_horizon_days": 30,
            "self_guided_capacity": 2,
            "staff_notification_emails": ["leasing@maplegrove.example"],
            "agents": [
                {"id": "A", "name": "Alex Rivera", "tour_types": ["in_person", "virtual"]},
                {"id": "B", "name": "Jordan Lee", "tour_types": ["in_person"]}
            ],
            "tour_types": {
                "in_person": {"duration_minutes": 45, "location": "Leasing office", "instructions": "Park in visitor spots."},
                "virtual": {"duration_minutes": 30, "virtual_link": "https://meet.example/maple", "instructions": "Join the link."},
                "self_guided": {"duration_minutes": 30, "location": "Front gate", "instructions": "Code by text."}
            }
        })
    }

    /// Monday 30 November 2026, 06:00 in Chicago: "now" for tests of the demo property, before office hours.
    pub fn monday_morning() -> chrono::DateTime<chrono::Utc> {
        let local = NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(6, 0, 0))
            .unwrap();
        crate::domain::slots::resolve_local(chrono_tz::America::Chicago, local).unwrap()
    }

    pub fn demo() -> Property {
        Property::from_file(serde_json::from_value(demo_json()).unwrap()).unwrap()
    }

    fn refused(change: impl FnOnce(&mut serde_json::Value)) -> InvalidField {
        let mut json = demo_json();
        change(&mut json);
        match serde_json::from_value::<PropertyFile>(json) {
            Ok(file) => Property::from_file(file).unwrap_err(),
            Err(e) => InvalidField::new("file", e.to_string()),
        }
    }

    #[test]
    fn the_demo_configuration_loads() {
        let p = demo();
        assert_eq!(p.time_zone, chrono_tz::America::Chicago);
        assert_eq!(p.agents_for(TourType::Virtual).count(), 1);
        assert_eq!(p.agents_for(TourType::InPerson).count(), 2);
    }

    #[test]
    fn exceptions_replace_the_weekday_hours() {
        let p = demo();
        let christmas = NaiveDate::from_ymd_opt(2026, 12, 25).unwrap();
        let eve = NaiveDate::from_ymd_opt(2026, 12, 24).unwrap();
        let sunday = NaiveDate::from_ymd_opt(2026, 12, 27).unwrap();
        assert!(p.hours_on(christmas).ranges().is_empty());
        assert_eq!(
            p.hours_on(eve).ranges()[0].1,
            NaiveTime::from_hms_opt(12, 0, 0).unwrap()
        );
        assert!(p.hours_on(sunday).ranges().is_empty());
    }

    #[test]
    fn each_bad_setting_is_refused_naming_it() {
        assert_eq!(refused(|j| j["time_zone"] = "Mars/Olympus".into()).field, "time_zone");
        assert_eq!(
            refused(|j| j["office_hours"]["mon"] = serde_json::json!([["18:00", "09:00"]])).field,
            "office_hours"
        );
        assert_eq!(
            refused(|j| j["office_hours"]["mon"] = serde_json::json!([["09:00", "13:00"], ["12:00", "14:00"]])).field,
            "office_hours"
        );
        assert_eq!(
            refused(|j| j["office_hours"]["funday"] = serde_json::json!([])).field,
            "office_hours"
        );
        assert_eq!(
            refused(|j| j["slot_step_minutes"] = 7.into()).field,
            "slot_step_minutes"
        );
        assert_eq!(
            refused(|j| j["booking_horizon_days"] = 0.into()).field,
            "booking_horizon_days"
        );
        assert_eq!(
            refused(|j| j["self_guided_capacity"] = 0.into()).field,
            "self_guided_capacity"
        );
        assert_eq!(
            refused(|j| j["agents"][0]["tour_types"] = serde_json::json!(["in_person"])).field,
            "agents"
        );
        assert_eq!(
            refused(|j| j["tour_types"]["virtual"]["virtual_link"] = "http://x".into()).field,
            "tour_types.virtual.virtual_link"
        );
        assert_eq!(
            refused(|j| j["exceptions"][0]["date"] = "25/12/2026".into()).field,
            "exceptions"
        );
        assert_eq!(
            refused(|j| j["staff_notification_emails"] = serde_json::json!(["nope"])).field,
            "staff_notification_emails"
        );
        assert_eq!(refused(|j| j["surprise"] = 1.into()).field, "file");
    }

    #[test]
    fn a_file_may_hold_one_property_or_many() {
        assert_eq!(parse_properties(&demo_json().to_string()).unwrap().len(), 1);
        let two = serde_json::Value::Array(vec![demo_json(), demo_json()]);
        assert_eq!(parse_properties(&two.to_string()).unwrap().len(), 2);
        assert_eq!(parse_properties("{").unwrap_err().field, "file");
    }
}
