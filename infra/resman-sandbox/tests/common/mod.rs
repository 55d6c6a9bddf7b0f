//! Helpers for the HTTP tests: start a sandbox on a free port, call it like a ResMan client would, and
//! read its XML with test-side types (deliberately not the crate's own, so a shape mistake on the server
//! cannot be mirrored here).

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use resman_sandbox::{RunningSandbox, SandboxConfig};
use serde::Deserialize;
use serde_json::Value;

pub const MAPLE: &str = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01";
pub const SAGUARO: &str = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f02";
pub const ALEX: &str = "a1e0c3b2-0001-4c6a-9d1e-000000000001";
pub const JORDAN: &str = "a1e0c3b2-0002-4c6a-9d1e-000000000002";
pub const CHATBOT: &str = "b7d3e8f0-0001-4d2c-8a5b-000000000001";
pub const SAGUARO_CHATBOT: &str = "b7d3e8f0-0011-4d2c-8a5b-000000000011";
pub const RILEY: &str = "a1e0c3b2-0011-4c6a-9d1e-000000000011";

pub const PARTNER: &str = "domiq-sandbox";
pub const API_KEY: &str = "sandbox-api-key";
pub const ACCOUNT: &str = "400";

/// Short enough that a hang test takes about a second.
pub const TEST_HANG: Duration = Duration::from_millis(1500);

pub struct Sandbox {
    pub running: RunningSandbox,
    pub base: String,
    pub client: reqwest::Client,
}

pub fn test_config() -> SandboxConfig {
    let mut config = SandboxConfig::demo();
    config.hang_duration = TEST_HANG;
    config
}

impl Sandbox {
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    pub async fn start_with(config: SandboxConfig) -> Self {
        let running = resman_sandbox::start(config, "127.0.0.1:0".parse().expect("address"))
            .await
            .expect("sandbox starts");
        let base = running.base_url();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Self { running, base, client }
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }

    /// A ResMan call with the demo credentials in the form body; `accept_json` picks the envelope.
    pub async fn call(
        &self,
        area: &str,
        method: &str,
        fields: &[(&str, &str)],
        accept_json: bool,
    ) -> reqwest::Response {
        let mut form = vec![
            ("IntegrationPartnerID", PARTNER),
            ("ApiKey", API_KEY),
            ("AccountID", ACCOUNT),
        ];
        form.extend_from_slice(fields);
        self.call_raw(area, method, &form, accept_json).await
    }

    /// A ResMan call with exactly these form fields.
    pub async fn call_raw(
        &self,
        area: &str,
        method: &str,
        form: &[(&str, &str)],
        accept_json: bool,
    ) -> reqwest::Response {
        let accept = if accept_json {
            "application/json"
        } else {
            "application/xml"
        };
        self.client
            .post(format!("{}/{area}/{method}", self.base))
            .header("Accept", accept)
            .form(form)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn call_json(&self, area: &str, method: &str, fields: &[(&str, &str)]) -> Value {
        let response = self.call(area, method, fields, true).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON body")
    }

    pub async fn call_xml(&self, area: &str, method: &str, fields: &[(&str, &str)]) -> ResMan {
        let response = self.call(area, method, fields, false).await;
        assert_eq!(response.status(), 200);
        parse_resman(&response.text().await.expect("body"))
    }

    pub async fn post_lead(&self, property: &str, xml: &str) -> ResMan {
        self.call_xml(
            "MITS",
            "PostLeadManagement4_0",
            &[("PropertyID", property), ("Xml", xml)],
        )
        .await
    }

    pub async fn search(&self, property: &str, criteria: &[(&str, &str)]) -> ResMan {
        let mut fields = vec![("PropertyID", property)];
        fields.extend_from_slice(criteria);
        self.call_xml("MITS", "SearchProspects", &fields).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.expect("sent");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(&body).send().await.expect("sent")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.expect("sent")
    }

    pub async fn set_faults(&self, faults: Value) {
        let response = self.post_json("/_sandbox/faults", faults).await;
        assert_eq!(response.status(), 200, "faults accepted");
    }

    pub async fn appointments(&self) -> Vec<Value> {
        match self.get_json("/_sandbox/appointments").await {
            Value::Array(list) => list,
            other => panic!("appointments is not a list: {other}"),
        }
    }

    /// Books a tour through MITS as our adapter would and returns the echo.
    pub async fn book_tour(&self, email: &str, agent: &str, event_date: &str, minutes: u32) -> ResMan {
        self.post_lead(MAPLE, &tour_card(email, agent, event_date, minutes))
            .await
    }
}

/// A new guest card with one appointment, as the adapter posts it.
pub fn tour_card(email: &str, agent: &str, event_date: &str, minutes: u32) -> String {
    format!(
        r#"<LeadManagement>
  <Prospects>
    <Prospect>
      <Customers>
        <Customer Type="prospect">
          <Name><FirstName>Ana</FirstName><LastName>Lopez</LastName></Name>
          <Phone PhoneType="cell"><PhoneNumber>+15125550100</PhoneNumber></Phone>
          <Email>{email}</Email>
        </Customer>
      </Customers>
      <CustomerPreferences><Comment>2 bedroom, ground floor</Comment></CustomerPreferences>
      <Events>
        <Event EventType="Appointment" EventDate="{event_date}">
          <Agent><AgentID IDValue="{agent}"/></Agent>
          <FirstContact>true</FirstContact>
          <TransactionSource>{CHATBOT}</TransactionSource>
          <Comments>In-Person Tour, {minutes} min. Notes &amp; requests [tour-ref:abc]</Comments>
        </Event>
      </Events>
    </Prospect>
  </Prospects>
</LeadManagement>"#
    )
}

/// An update of one event of an existing prospect: a move and/or a status.
pub fn event_update(prospect_id: &str, event_id: &str, event_date: Option<&str>, reasons: Option<&str>) -> String {
    let date = event_date.map(|d| format!(r#" EventDate="{d}""#)).unwrap_or_default();
    let reasons = reasons
        .map(|r| format!("<EventReasons>{r}</EventReasons>"))
        .unwrap_or_default();
    format!(
        r#"<LeadManagement><Prospects><Prospect>
  <Customers><Customer Type="prospect"><Identification IDType="ProspectID" IDValue="{prospect_id}"/></Customer></Customers>
  <Events><Event EventType="Appointment"{date}><EventID IDValue="{event_id}"/>{reasons}</Event></Events>
</Prospect></Prospects></LeadManagement>"#
    )
}

// Test-side view of ResMan's XML envelope.

#[derive(Debug, Deserialize)]
pub struct ResMan {
    #[serde(rename = "MethodName")]
    pub method_name: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "ErrorDescription", default)]
    pub error_description: Option<String>,
    #[serde(rename = "AccountID", default)]
    pub account_id: Option<String>,
    #[serde(rename = "PropertyID", default)]
    pub property_id: Option<String>,
    #[serde(rename = "Response", default)]
    pub response: Response,
}

#[derive(Debug, Default, Deserialize)]
pub struct Response {
    #[serde(rename = "Employees", default)]
    pub employees: Option<Employees>,
    #[serde(rename = "LeadManagement", default)]
    pub lead_management: Option<LeadManagement>,
}

#[derive(Debug, Deserialize)]
pub struct Employees {
    #[serde(rename = "Employee", default)]
    pub items: Vec<Employee>,
}

#[derive(Debug, Deserialize)]
pub struct Employee {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "FirstName")]
    pub first_name: String,
    #[serde(rename = "IsLeasing")]
    pub is_leasing: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct LeadManagement {
    #[serde(rename = "Prospects", default)]
    pub prospects: Prospects,
}

#[derive(Debug, Default, Deserialize)]
pub struct Prospects {
    #[serde(rename = "Prospect", default)]
    pub items: Vec<Prospect>,
}

#[derive(Debug, Deserialize)]
pub struct Prospect {
    #[serde(rename = "Customers")]
    pub customers: Customers,
    #[serde(rename = "Events", default)]
    pub events: Events,
}

#[derive(Debug, Deserialize)]
pub struct Customers {
    #[serde(rename = "Customer")]
    pub items: Vec<Customer>,
}

#[derive(Debug, Deserialize)]
pub struct Customer {
    #[serde(rename = "Identification", default)]
    pub identification: Vec<Identification>,
    #[serde(rename = "Email", default)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Identification {
    #[serde(rename = "@IDType")]
    pub id_type: String,
    #[serde(rename = "@IDValue")]
    pub id_value: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Events {
    #[serde(rename = "Event", default)]
    pub items: Vec<Event>,
}

#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(rename = "@EventType")]
    pub event_type: String,
    #[serde(rename = "@EventDate")]
    pub event_date: String,
    #[serde(rename = "EventID")]
    pub event_id: IdValue,
    #[serde(rename = "Agent", default)]
    pub agent: Option<Agent>,
    #[serde(rename = "EventReasons", default)]
    pub event_reasons: Option<String>,
    #[serde(rename = "Comments", default)]
    pub comments: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct IdValue {
    #[serde(rename = "@IDValue")]
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct Agent {
    #[serde(rename = "AgentID")]
    pub agent_id: IdValue,
}

pub fn parse_resman(xml: &str) -> ResMan {
    quick_xml::de::from_str(xml).unwrap_or_else(|e| panic!("not a ResMan envelope ({e}): {xml}"))
}

impl ResMan {
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.status, "Success", "ErrorDescription: {:?}", self.error_description);
        self
    }

    pub fn prospects(&self) -> &[Prospect] {
        self.response
            .lead_management
            .as_ref()
            .map(|lm| lm.prospects.items.as_slice())
            .unwrap_or_default()
    }

    /// The only prospect of a post's echo or a search.
    pub fn prospect(&self) -> &Prospect {
        let prospects = self.prospects();
        assert_eq!(prospects.len(), 1, "exactly one prospect expected");
        &prospects[0]
    }
}

impl Prospect {
    pub fn id(&self, id_type: &str) -> String {
        self.customers.items[0]
            .identification
            .iter()
            .find(|i| i.id_type == id_type)
            .map(|i| i.id_value.clone())
            .unwrap_or_else(|| panic!("no {id_type} Identification"))
    }

    pub fn prospect_id(&self) -> String {
        self.id("ProspectID")
    }

    pub fn event(&self) -> &Event {
        assert_eq!(self.events.items.len(), 1, "exactly one event expected");
        &self.events.items[0]
    }
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, ResMan's wire format for instants.
pub fn resman_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}
