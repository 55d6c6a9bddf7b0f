//! The MITS 4.0 `LeadManagement` document and ResMan's XML envelope, as serde types for quick-xml.
//! Element order in the structs is the order on the wire.

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LeadManagement {
    #[serde(rename = "Prospects", default)]
    pub prospects: Prospects,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Prospects {
    #[serde(rename = "Prospect", default)]
    pub prospect: Vec<Prospect>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Prospect {
    #[serde(rename = "Customers", default)]
    pub customers: Customers,
    #[serde(rename = "CustomerPreferences", default, skip_serializing_if = "Option::is_none")]
    pub customer_preferences: Option<CustomerPreferences>,
    #[serde(rename = "Events", default)]
    pub events: Events,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Customers {
    #[serde(rename = "Customer", default)]
    pub customer: Vec<Customer>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Customer {
    #[serde(rename = "@Type", default)]
    pub customer_type: String,
    #[serde(rename = "Identification", default)]
    pub identification: Vec<Identification>,
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(rename = "Phone", default)]
    pub phone: Vec<Phone>,
    #[serde(rename = "Email", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Identification {
    #[serde(rename = "@IDType")]
    pub id_type: String,
    #[serde(rename = "@IDValue")]
    pub id_value: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Name {
    #[serde(rename = "FirstName", default)]
    pub first_name: Option<String>,
    #[serde(rename = "LastName", default)]
    pub last_name: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Phone {
    #[serde(rename = "@PhoneType", default)]
    pub phone_type: String,
    #[serde(rename = "PhoneNumber", default)]
    pub phone_number: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CustomerPreferences {
    #[serde(rename = "Comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Events {
    #[serde(rename = "Event", default)]
    pub event: Vec<Event>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "@EventType", default)]
    pub event_type: String,
    #[serde(rename = "@EventDate", default, skip_serializing_if = "Option::is_none")]
    pub event_date: Option<String>,
    #[serde(rename = "EventID", default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<IdValue>,
    #[serde(rename = "Agent", default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    #[serde(rename = "FirstContact", default, skip_serializing_if = "Option::is_none")]
    pub first_contact: Option<bool>,
    #[serde(rename = "TransactionSource", default, skip_serializing_if = "Option::is_none")]
    pub transaction_source: Option<String>,
    #[serde(rename = "EventReasons", default, skip_serializing_if = "Option::is_none")]
    pub event_reasons: Option<String>,
    #[serde(rename = "Comments", default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct IdValue {
    #[serde(rename = "@IDValue")]
    pub id_value: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Agent {
    #[serde(rename = "AgentID", default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<IdValue>,
}

/// `<ResMan><MethodName/><Status/><ErrorDescription/>…<Response>…</Response></ResMan>`.
#[derive(Debug, Deserialize)]
pub struct XmlEnvelope {
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "ErrorDescription", default)]
    pub error_description: Option<String>,
    #[serde(rename = "Response", default)]
    pub response: Option<XmlResponse>,
}

#[derive(Debug, Default, Deserialize)]
pub struct XmlResponse {
    #[serde(rename = "LeadManagement", default)]
    pub lead_management: Option<LeadManagement>,
}

impl LeadManagement {
    pub fn to_xml(&self) -> Result<String, quick_xml::SeError> {
        quick_xml::se::to_string_with_root("LeadManagement", self)
    }
}

impl Customer {
    pub fn id_of(&self, id_type: &str) -> Option<&str> {
        self.identification
            .iter()
            .find(|i| i.id_type.eq_ignore_ascii_case(id_type))
            .map(|i| i.id_value.as_str())
            .filter(|v| !v.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_guest_card_serialises_in_mits_order_with_attributes() {
        let doc = LeadManagement {
            prospects: Prospects {
                prospect: vec![Prospect {
                    customers: Customers {
                        customer: vec![Customer {
                            customer_type: "prospect".into(),
                            name: Some(Name {
                                first_name: Some("Ana".into()),
                                last_name: Some("Lopez & Co".into()),
                            }),
                            email: Some("ana@example.com".into()),
                            ..Default::default()
                        }],
                    },
                    customer_preferences: None,
                    events: Events {
                        event: vec![Event {
                            event_type: "Appointment".into(),
                            event_date: Some("2026-12-01T16:00:00".into()),
                            agent: Some(Agent {
                                agent_id: Some(IdValue { id_value: "E1".into() }),
                            }),
                            ..Default::default()
                        }],
                    },
                }],
            },
        };
        let xml = doc.to_xml().unwrap();
        assert!(
            xml.starts_with("<LeadManagement><Prospects><Prospect><Customers><Customer Type=\"prospect\">"),
            "{xml}"
        );
        assert!(xml.contains("<LastName>Lopez &amp; Co</LastName>"), "{xml}");
        assert!(xml.contains("<Event EventType=\"Appointment\" EventDate=\"2026-12-01T16:00:00\"><Agent><AgentID IDValue=\"E1\"/></Agent></Event>"), "{xml}");
        assert!(!xml.contains("Identification"), "a new prospect carries no ids: {xml}");
    }

    #[test]
    fn an_envelope_with_identifications_and_events_parses() {
        let xml = r#"<?xml version="1.0"?><ResMan><MethodName>SearchProspects</MethodName><Status>Success</Status>
            <ErrorDescription/><AccountID>400</AccountID><PropertyID>P</PropertyID><Response><LeadManagement><Prospects>
            <Prospect><Customers><Customer Type="prospect"><Identification IDType="ProspectID" IDValue="PR1"/>
            <Identification IDType="PersonID" IDValue="PE1"/><Name><FirstName>Ana</FirstName><LastName>Lopez</LastName></Name>
            <Phone PhoneType="cell"><PhoneNumber>+15125550100</PhoneNumber></Phone><Email>ana@example.com</Email></Customer></Customers>
            <Events><Event EventType="Appointment" EventDate="2026-12-01T16:00:00"><EventID IDValue="EV1"/>
            <Agent><AgentID IDValue="E1"/></Agent><EventReasons>Confirmed</EventReasons><Comments>x</Comments></Event>
            <Event EventType="Other" EventDate="2026-12-01T17:00:00"><EventID IDValue="EV2"/></Event></Events></Prospect>
            </Prospects></LeadManagement></Response></ResMan>"#;
        let env: XmlEnvelope = quick_xml::de::from_str(xml).unwrap();
        assert_eq!(env.status, "Success");
        let lm = env.response.unwrap().lead_management.unwrap();
        let p = &lm.prospects.prospect[0];
        assert_eq!(p.customers.customer[0].id_of("ProspectID"), Some("PR1"));
        assert_eq!(p.customers.customer[0].id_of("personid"), Some("PE1"));
        assert_eq!(p.events.event.len(), 2);
        assert_eq!(p.events.event[0].event_reasons.as_deref(), Some("Confirmed"));
    }
}
