//! ResMan's answer envelope, in JSON or XML.
//!
//! JSON: `{"MethodName", "Status", "ErrorDescription", "AccountID", "PropertyID", <payload fields>}`.
//! XML: `<ResMan><MethodName/><Status/><ErrorDescription/><AccountID/><PropertyID/><Response>…</Response></ResMan>`.
//! Business errors are HTTP 200 with `Status` = `Error`; the HTTP status is the caller's business.

use serde::Serialize;

use crate::mits::LeadManagement;
use crate::seed::{EmployeeSeed, PropertySeed, ProspectSourceSeed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Xml,
}

impl Format {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json; charset=utf-8",
            Self::Xml => "application/xml; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PropertyOut {
    #[serde(rename = "PropertyID")]
    pub property_id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "StreetAddress")]
    pub street_address: String,
    #[serde(rename = "City")]
    pub city: String,
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "Zip")]
    pub zip: String,
    #[serde(rename = "TimeZone")]
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmployeeOut {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "FirstName")]
    pub first_name: String,
    #[serde(rename = "LastName")]
    pub last_name: String,
    #[serde(rename = "Email")]
    pub email: String,
    #[serde(rename = "IsLeasing")]
    pub is_leasing: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProspectSourceOut {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
}

impl From<&PropertySeed> for PropertyOut {
    fn from(p: &PropertySeed) -> Self {
        Self {
            property_id: p.property_id.to_string(),
            name: p.name.clone(),
            street_address: p.street_address.clone(),
            city: p.city.clone(),
            state: p.state.clone(),
            zip: p.zip.clone(),
            time_zone: p.time_zone.clone(),
        }
    }
}

impl From<&EmployeeSeed> for EmployeeOut {
    fn from(e: &EmployeeSeed) -> Self {
        Self {
            id: e.id.to_string(),
            first_name: e.first_name.clone(),
            last_name: e.last_name.clone(),
            email: e.email.clone(),
            is_leasing: e.is_leasing,
        }
    }
}

impl From<&ProspectSourceSeed> for ProspectSourceOut {
    fn from(s: &ProspectSourceSeed) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name.clone(),
        }
    }
}

/// The method-specific part of a successful answer.
#[derive(Debug, Clone, Serialize)]
pub(crate) enum Payload {
    Properties(Vec<PropertyOut>),
    Employees(Vec<EmployeeOut>),
    ProspectSources(Vec<ProspectSourceOut>),
    LeadManagement(LeadManagement),
}

/// Everything an envelope says.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub method_name: String,
    pub account_id: Option<i64>,
    pub property_id: Option<String>,
    pub outcome: Result<Payload, String>,
}

#[derive(Serialize)]
struct JsonEnvelope<'a> {
    #[serde(rename = "MethodName")]
    method_name: &'a str,
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "ErrorDescription")]
    error_description: Option<&'a str>,
    #[serde(rename = "AccountID")]
    account_id: Option<i64>,
    #[serde(rename = "PropertyID")]
    property_id: Option<&'a str>,
    #[serde(flatten)]
    payload: Option<&'a Payload>,
}

#[derive(Serialize)]
struct XmlEnvelope<'a> {
    #[serde(rename = "MethodName")]
    method_name: &'a str,
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "ErrorDescription")]
    error_description: Option<&'a str>,
    #[serde(rename = "AccountID")]
    account_id: Option<i64>,
    #[serde(rename = "PropertyID")]
    property_id: Option<&'a str>,
    #[serde(rename = "Response")]
    response: XmlResponse<'a>,
}

/// In XML a list is a wrapper element holding one element per item (`<Employees><Employee>…`).
#[derive(Serialize, Default)]
struct XmlResponse<'a> {
    #[serde(rename = "Properties", skip_serializing_if = "Option::is_none")]
    properties: Option<PropertiesXml<'a>>,
    #[serde(rename = "Employees", skip_serializing_if = "Option::is_none")]
    employees: Option<EmployeesXml<'a>>,
    #[serde(rename = "ProspectSources", skip_serializing_if = "Option::is_none")]
    prospect_sources: Option<ProspectSourcesXml<'a>>,
    #[serde(rename = "LeadManagement", skip_serializing_if = "Option::is_none")]
    lead_management: Option<&'a LeadManagement>,
}

#[derive(Serialize)]
struct PropertiesXml<'a> {
    #[serde(rename = "Property")]
    items: &'a [PropertyOut],
}

#[derive(Serialize)]
struct EmployeesXml<'a> {
    #[serde(rename = "Employee")]
    items: &'a [EmployeeOut],
}

#[derive(Serialize)]
struct ProspectSourcesXml<'a> {
    #[serde(rename = "ProspectSource")]
    items: &'a [ProspectSourceOut],
}

/// Rendering failed; only possible through a bug in the payload types.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    #[error("cannot render JSON envelope")]
    Json(#[from] serde_json::Error),
    #[error("cannot render XML envelope")]
    Xml(#[from] quick_xml::SeError),
}

impl Envelope {
    pub(crate) fn error(
        method_name: &str,
        account_id: Option<i64>,
        property_id: Option<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            method_name: method_name.to_owned(),
            account_id,
            property_id,
            outcome: Err(description.into()),
        }
    }

    pub(crate) fn status(&self) -> &'static str {
        if self.outcome.is_ok() { "Success" } else { "Error" }
    }

    pub(crate) fn render(&self, format: Format) -> Result<String, RenderError> {
        let (payload, error_description) = match &self.outcome {
            Ok(payload) => (Some(payload), None),
            Err(description) => (None, Some(description.as_str())),
        };
        match format {
            Format::Json => Ok(serde_json::to_string(&JsonEnvelope {
                method_name: &self.method_name,
                status: self.status(),
                error_description,
                account_id: self.account_id,
                property_id: self.property_id.as_deref(),
                payload,
            })?),
            Format::Xml => {
                let mut response = XmlResponse::default();
                match payload {
                    Some(Payload::Properties(items)) => {
                        response.properties = Some(PropertiesXml { items });
                    }
                    Some(Payload::Employees(items)) => {
                        response.employees = Some(EmployeesXml { items });
                    }
                    Some(Payload::ProspectSources(items)) => {
                        response.prospect_sources = Some(ProspectSourcesXml { items });
                    }
                    Some(Payload::LeadManagement(document)) => {
                        response.lead_management = Some(document);
                    }
                    None => {}
                }
                let body = quick_xml::se::to_string_with_root(
                    "ResMan",
                    &XmlEnvelope {
                        method_name: &self.method_name,
                        status: self.status(),
                        error_description,
                        account_id: self.account_id,
                        property_id: self.property_id.as_deref(),
                        response,
                    },
                )?;
                Ok(format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{body}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn employees() -> Envelope {
        Envelope {
            method_name: "GetEmployees".to_owned(),
            account_id: Some(400),
            property_id: Some("p-1".to_owned()),
            outcome: Ok(Payload::Employees(vec![EmployeeOut {
                id: "e-1".to_owned(),
                first_name: "Alex".to_owned(),
                last_name: "Rivera".to_owned(),
                email: "alex@example.com".to_owned(),
                is_leasing: true,
            }])),
        }
    }

    #[test]
    fn json_envelope_puts_the_payload_beside_the_status_fields() {
        let json: serde_json::Value =
            serde_json::from_str(&employees().render(Format::Json).expect("renders")).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "MethodName": "GetEmployees",
                "Status": "Success",
                "ErrorDescription": null,
                "AccountID": 400,
                "PropertyID": "p-1",
                "Employees": [{"ID": "e-1", "FirstName": "Alex", "LastName": "Rivera",
                               "Email": "alex@example.com", "IsLeasing": true}]
            })
        );
    }

    #[test]
    fn xml_envelope_wraps_list_items_in_their_own_elements() {
        let xml = employees().render(Format::Xml).expect("renders");
        assert!(xml.contains("<ResMan><MethodName>GetEmployees</MethodName><Status>Success</Status><ErrorDescription/><AccountID>400</AccountID><PropertyID>p-1</PropertyID><Response><Employees><Employee><ID>e-1</ID>"), "{xml}");
        assert!(
            xml.contains("<IsLeasing>true</IsLeasing></Employee></Employees></Response></ResMan>"),
            "{xml}"
        );
    }

    #[test]
    fn errors_carry_the_description_and_no_payload() {
        let envelope = Envelope::error("GetEmployees", None, None, "Property not found & gone");
        let json: serde_json::Value =
            serde_json::from_str(&envelope.render(Format::Json).expect("renders")).expect("json");
        assert_eq!(json["Status"], "Error");
        assert_eq!(json["ErrorDescription"], "Property not found & gone");
        assert!(json.get("Employees").is_none());
        let xml = envelope.render(Format::Xml).expect("renders");
        assert!(
            xml.contains("<ErrorDescription>Property not found &amp; gone</ErrorDescription>"),
            "{xml}"
        );
        assert!(xml.contains("<Response/>"), "{xml}");
    }
}
