//! MITS 4.0 `LeadManagement` documents, read and written with quick-xml.
//!
//! One set of types serves both directions: what a caller posts and what the sandbox echoes or returns
//! from a search have the same shape. Reading is two passes: a pull-parser pass that checks the document
//! is well formed and rooted at `LeadManagement`, then serde for the shape (unknown elements are ignored,
//! as a lenient server would).

use chrono::{DateTime, NaiveDateTime, Utc};
use quick_xml::events::Event as XmlEvent;
use serde::{Deserialize, Serialize};

use crate::store::{AppointmentStatus, Event, EventPost, Phone, PostError, Prospect, ProspectPost, ProspectRef};

/// `EventDate`, `ModifiedStartDateTime` and `ModifiedEndDateTime`: UTC, no offset.
pub(crate) const DATE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LeadManagement {
    #[serde(rename = "Prospects", default)]
    pub prospects: Prospects,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Prospects {
    #[serde(rename = "Prospect", default)]
    pub items: Vec<ProspectXml>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProspectXml {
    #[serde(rename = "Customers", default)]
    pub customers: Customers,
    #[serde(rename = "CustomerPreferences", default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<CustomerPreferences>,
    #[serde(rename = "Events", default)]
    pub events: Events,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Customers {
    #[serde(rename = "Customer", default)]
    pub items: Vec<Customer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Customer {
    #[serde(rename = "@Type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(rename = "Identification", default)]
    pub identification: Vec<Identification>,
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(rename = "Phone", default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneXml>,
    #[serde(rename = "Email", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Identification {
    #[serde(rename = "@IDType", default)]
    pub id_type: String,
    #[serde(rename = "@IDValue", default)]
    pub id_value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Name {
    #[serde(rename = "FirstName", default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(rename = "LastName", default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PhoneXml {
    #[serde(rename = "@PhoneType", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(rename = "PhoneNumber", default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CustomerPreferences {
    #[serde(rename = "Comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Events {
    #[serde(rename = "Event", default)]
    pub items: Vec<EventXml>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EventXml {
    #[serde(rename = "@EventType", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(rename = "@EventDate", default, skip_serializing_if = "Option::is_none")]
    pub event_date: Option<String>,
    #[serde(rename = "EventID", default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<IdValue>,
    #[serde(rename = "Agent", default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    #[serde(rename = "FirstContact", default, skip_serializing_if = "Option::is_none")]
    pub first_contact: Option<String>,
    #[serde(rename = "TransactionSource", default, skip_serializing_if = "Option::is_none")]
    pub transaction_source: Option<String>,
    #[serde(rename = "EventReasons", default, skip_serializing_if = "Option::is_none")]
    pub event_reasons: Option<String>,
    #[serde(rename = "Comments", default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct IdValue {
    #[serde(rename = "@IDValue", default)]
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Agent {
    #[serde(rename = "AgentID", default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<IdValue>,
}

/// Parses the `Xml` form field of `PostLeadManagement4_0` into checked posts.
pub(crate) fn parse_post(xml: &str) -> Result<Vec<ProspectPost>, PostError> {
    check_well_formed(xml)?;
    let document: LeadManagement = quick_xml::de::from_str(xml).map_err(|e| PostError::InvalidXml(e.to_string()))?;
    if document.prospects.items.is_empty() {
        return Err(PostError::InvalidXml(
            "LeadManagement has no Prospects/Prospect".to_owned(),
        ));
    }
    document.prospects.items.into_iter().map(prospect_post).collect()
}

/// The serde pass does not notice a second root or a wrong root name, so walk the events once first.
fn check_well_formed(xml: &str) -> Result<(), PostError> {
    let invalid = |message: String| PostError::InvalidXml(message);
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| invalid(format!("{e} at byte {}", reader.error_position())))?;
        match event {
            XmlEvent::Start(ref start) | XmlEvent::Empty(ref start) if depth == 0 => {
                roots += 1;
                if roots > 1 {
                    return Err(invalid("more than one root element".to_owned()));
                }
                let name = start.local_name();
                if name.as_ref() != "LeadManagement" {
                    return Err(invalid(format!(
                        "root element is <{}>, expected <LeadManagement>",
                        name.as_ref()
                    )));
                }
                if matches!(event, XmlEvent::Start(_)) {
                    depth += 1;
                }
            }
            XmlEvent::Start(_) => depth += 1,
            XmlEvent::End(_) => depth = depth.saturating_sub(1),
            XmlEvent::Text(text) if depth == 0 && !text.xml10_content().trim().is_empty() => {
                return Err(invalid("text outside the root element".to_owned()));
            }
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if roots == 0 {
        return Err(invalid("no root element".to_owned()));
    }
    Ok(())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn prospect_post(prospect: ProspectXml) -> Result<ProspectPost, PostError> {
    // Co-applicants (further Customer elements) are out of scope; the first customer is the prospect.
    let customer = prospect
        .customers
        .items
        .into_iter()
        .next()
        .ok_or_else(|| PostError::InvalidXml("Prospect has no Customers/Customer".to_owned()))?;
    let id_of = |wanted: &str| {
        customer
            .identification
            .iter()
            .find(|i| i.id_type.eq_ignore_ascii_case(wanted) && !i.id_value.trim().is_empty())
            .map(|i| i.id_value.clone())
    };
    let prospect_ref = id_of("ProspectID")
        .map(ProspectRef::ProspectId)
        .or_else(|| id_of("PersonID").map(ProspectRef::PersonId));
    let name = customer.name.unwrap_or_default();
    let phone = customer.phone.and_then(|p| {
        non_empty(p.number).map(|number| Phone {
            kind: non_empty(p.kind),
            number,
        })
    });
    let events = prospect
        .events
        .items
        .into_iter()
        .map(event_post)
        .collect::<Result<_, _>>()?;
    Ok(ProspectPost {
        prospect_ref,
        first_name: non_empty(name.first),
        last_name: non_empty(name.last),
        email: non_empty(customer.email),
        phone,
        preferences: prospect.preferences.and_then(|p| non_empty(p.comment)),
        events,
    })
}

fn event_post(event: EventXml) -> Result<EventPost, PostError> {
    let date = non_empty(event.event_date)
        .map(|raw| parse_utc(&raw).ok_or(PostError::InvalidEventDate(raw)))
        .transpose()?;
    let status = non_empty(event.event_reasons)
        .map(|raw| AppointmentStatus::parse(&raw).ok_or(PostError::InvalidEventReasons(raw)))
        .transpose()?;
    Ok(EventPost {
        event_id: event.event_id.and_then(|id| non_empty(Some(id.value))),
        event_type: non_empty(event.event_type),
        date,
        agent_id: event
            .agent
            .and_then(|a| a.agent_id)
            .and_then(|id| non_empty(Some(id.value))),
        first_contact: non_empty(event.first_contact),
        transaction_source: non_empty(event.transaction_source),
        status,
        comments: non_empty(event.comments),
    })
}

/// Strictly `YYYY-MM-DDTHH:MM:SS`, read as UTC: an offset or a missing seconds field is refused, so an
/// adapter that sends local time with an offset finds out here rather than in production.
pub(crate) fn parse_utc(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if raw.len() != 19 {
        return None;
    }
    NaiveDateTime::parse_from_str(raw, DATE_TIME_FORMAT)
        .ok()
        .map(|naive| naive.and_utc())
}

pub(crate) fn format_utc(at: DateTime<Utc>) -> String {
    at.format(DATE_TIME_FORMAT).to_string()
}

/// A prospect as ResMan shows it: identification, contact details and the chosen events.
pub(crate) fn prospect_xml<'a>(prospect: &Prospect, events: impl IntoIterator<Item = &'a Event>) -> ProspectXml {
    let identification = vec![
        Identification {
            id_type: "ProspectID".to_owned(),
            id_value: prospect.id.to_string(),
        },
        Identification {
            id_type: "PersonID".to_owned(),
            id_value: prospect.person_id.to_string(),
        },
    ];
    let name = (prospect.first_name.is_some() || prospect.last_name.is_some()).then(|| Name {
        first: prospect.first_name.clone(),
        last: prospect.last_name.clone(),
    });
    ProspectXml {
        customers: Customers {
            items: vec![Customer {
                kind: Some(prospect.customer_type.as_str().to_owned()),
                identification,
                name,
                phone: prospect.phone.as_ref().map(|p| PhoneXml {
                    kind: p.kind.clone(),
                    number: Some(p.number.clone()),
                }),
                email: prospect.email.clone(),
            }],
        },
        preferences: prospect.preferences.as_ref().map(|c| CustomerPreferences {
            comment: Some(c.clone()),
        }),
        events: Events {
            items: events.into_iter().map(event_xml).collect(),
        },
    }
}

fn event_xml(event: &Event) -> EventXml {
    // Staff notes have no MITS element of their own; a reader of the feed sees them after the comments.
    let comments = match (&event.comments, &event.staff_notes) {
        (Some(c), Some(n)) => Some(format!("{c}\nStaff notes: {n}")),
        (None, Some(n)) => Some(format!("Staff notes: {n}")),
        (c, None) => c.clone(),
    };
    EventXml {
        event_type: Some(event.event_type.clone()),
        event_date: Some(format_utc(event.date)),
        event_id: Some(IdValue {
            value: event.id.to_string(),
        }),
        agent: event.agent_id.map(|id| Agent {
            agent_id: Some(IdValue { value: id.to_string() }),
        }),
        first_contact: event.first_contact.clone(),
        transaction_source: event.transaction_source.map(|s| s.to_string()),
        event_reasons: event.status.map(|s| s.as_str().to_owned()),
        comments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST_CARD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<LeadManagement>
  <Prospects>
    <Prospect>
      <Customers>
        <Customer Type="prospect">
          <Name><FirstName>Ana</FirstName><LastName>Lopez</LastName></Name>
          <Phone PhoneType="cell"><PhoneNumber>+15125550100</PhoneNumber></Phone>
          <Email>ana@example.com</Email>
        </Customer>
      </Customers>
      <CustomerPreferences><Comment>2 bedroom &amp; ground floor</Comment></CustomerPreferences>
      <Events>
        <Event EventType="Appointment" EventDate="2026-12-01T16:00:00">
          <Agent><AgentID IDValue="a1e0c3b2-0001-4c6a-9d1e-000000000001"/></Agent>
          <FirstContact>true</FirstContact>
          <TransactionSource>b7d3e8f0-0001-4d2c-8a5b-000000000001</TransactionSource>
          <Comments>In-Person Tour, 45 min. [tour-ref:abc]</Comments>
        </Event>
      </Events>
    </Prospect>
  </Prospects>
</LeadManagement>"#;

    #[test]
    fn a_guest_card_without_identification_parses_as_a_create() {
        let posts = parse_post(GUEST_CARD).expect("parses");
        assert_eq!(posts.len(), 1);
        let post = &posts[0];
        assert_eq!(post.prospect_ref, None);
        assert_eq!(post.first_name.as_deref(), Some("Ana"));
        assert_eq!(post.preferences.as_deref(), Some("2 bedroom & ground floor"));
        assert_eq!(post.phone.as_ref().map(|p| p.number.as_str()), Some("+15125550100"));
        let event = &post.events[0];
        assert_eq!(event.event_type.as_deref(), Some("Appointment"));
        assert_eq!(event.date.map(format_utc).as_deref(), Some("2026-12-01T16:00:00"));
        assert_eq!(event.agent_id.as_deref(), Some("a1e0c3b2-0001-4c6a-9d1e-000000000001"));
        assert_eq!(event.status, None);
    }

    #[test]
    fn identification_and_event_id_make_an_update() {
        let xml = GUEST_CARD
            .replace(
                r#"<Customer Type="prospect">"#,
                r#"<Customer Type="prospect"><Identification IDType="ProspectID" IDValue="p-1"/><Identification IDType="PersonID" IDValue="q-2"/>"#,
            )
            .replace("<Agent>", r#"<EventID IDValue="e-3"/><EventReasons>No Show</EventReasons><Agent>"#);
        let posts = parse_post(&xml).expect("parses");
        assert_eq!(posts[0].prospect_ref, Some(ProspectRef::ProspectId("p-1".to_owned())));
        assert_eq!(posts[0].events[0].event_id.as_deref(), Some("e-3"));
        assert_eq!(posts[0].events[0].status, Some(AppointmentStatus::NoShow));
    }

    #[test]
    fn malformed_xml_is_invalid_xml() {
        for xml in [
            "<LeadManagement><Prospects></LeadManagement>",
            "<LeadManagement>",
            "not xml at all",
            "<LeadManagement/><LeadManagement/>",
            "<Other><Prospects/></Other>",
        ] {
            assert!(
                matches!(parse_post(xml), Err(PostError::InvalidXml(_))),
                "{xml} should be invalid"
            );
        }
    }

    #[test]
    fn event_dates_with_an_offset_or_without_seconds_are_refused() {
        for date in [
            "2026-12-01T16:00:00Z",
            "2026-12-01T16:00:00-06:00",
            "2026-12-01T16:00",
            "2026-12-01 16:00:00",
        ] {
            let xml = GUEST_CARD.replace("2026-12-01T16:00:00", date);
            assert_eq!(
                parse_post(&xml),
                Err(PostError::InvalidEventDate(date.to_owned())),
                "{date}"
            );
        }
    }

    #[test]
    fn unknown_event_reasons_are_refused() {
        let xml = GUEST_CARD.replace("<Comments>", "<EventReasons>Maybe</EventReasons><Comments>");
        assert_eq!(
            parse_post(&xml),
            Err(PostError::InvalidEventReasons("Maybe".to_owned()))
        );
    }
}
