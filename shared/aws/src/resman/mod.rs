//! The one adapter to ResMan's partner API (v1 "Interfaces"): `POST {base}/{Area}/{Method}`, form-encoded, with
//! the four credential fields on every call. JSON methods ask for JSON; the MITS methods answer MITS XML.
//!
//! Guarantees:
//! - Credentials travel only in the form body; they are never logged and never part of an error message.
//! - One HTTP attempt per call: retry policy belongs to the caller, who knows whether a write may have applied
//!   (see [`ResManError`]). The one exception is a change window that ResMan finds too wide (HTTP 502 "buffer
//!   overflow"): it is split in halves and the halves read in turn.
//! - Times go to ResMan in UTC as `YYYY-MM-DDTHH:MM:SS` (no offset), the way ResMan reads them.

mod mits;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tour_core::domain::ids::PersonId;
use tour_core::domain::resman::{
    Employee, NotePost, PostedTour, Prospect, ProspectEvent, ProspectLookup, ProspectRef, ProspectSource,
    ProspectTourPost, TourEventStatus,
};
use tour_core::domain::resman::{ResManAccountId, ResManSite};
use tour_core::domain::{AgentId, AppointmentId, ProspectId, ProspectSourceId, UtcWindow};
use tour_core::metrics::Metric;
use tour_core::ports::{ResManError, ResManGateway};

const RESMAN_TIME: &str = "%Y-%m-%dT%H:%M:%S";

/// The integration's credentials. `Debug` hides the key.
#[derive(Clone, Deserialize)]
pub struct ResManCredentials {
    pub integration_partner_id: String,
    pub api_key: String,
    pub account_id: i64,
}

impl std::fmt::Debug for ResManCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResManCredentials")
            .field("integration_partner_id", &self.integration_partner_id)
            .field("api_key", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// One account's credentials as our integration holds them: its `AccountID` and, when the customer gave us a key
/// of its own, that key (else the partner key is used). `Debug` hides the key.
#[derive(Clone, Deserialize)]
pub struct AccountCredentials {
    pub account_id: u64,
    #[serde(default)]
    pub api_key: Option<String>,
}

impl std::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("account_id", &self.account_id)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where each account's credentials come from (one secret per account, read when first needed and held a short
/// while): see `adapters::secrets::AccountSecrets`.
#[async_trait]
pub trait AccountKeys: Send + Sync {
    /// The account's credentials; an account we hold none for is an error that names it (and no other account's
    /// credentials are ever used instead).
    async fn credentials(&self, account: ResManAccountId) -> Result<AccountCredentials, AccountKeyError>;
}

/// Why an account's credentials could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountKeyError {
    #[error("no credentials for ResMan account {account}: {reason}")]
    Missing { account: ResManAccountId, reason: String },
    #[error("the credentials of ResMan account {account} could not be read: {reason}")]
    Unavailable { account: ResManAccountId, reason: String },
}

impl From<AccountKeyError> for ResManError {
    fn from(e: AccountKeyError) -> Self {
        match e {
            // Our configuration, not ResMan's answer: final until an operator adds the secret.
            AccountKeyError::Missing { .. } => ResManError::Rejected {
                description: e.to_string(),
            },
            AccountKeyError::Unavailable { .. } => ResManError::Unreachable(e.to_string()),
        }
    }
}

/// Where and how to reach ResMan.
#[derive(Debug, Clone)]
pub struct ResManSettings {
    pub base_url: String,
    pub credentials: ResManCredentials,
    /// Public clients use 30 s; the booking path uses less to stay inside its request budget.
    pub timeout: Duration,
    /// The MITS `EventType` of a tour: `Appointment` by default; the real value may be `Show` **[assumed]**.
    pub tour_event_type: String,
}

impl ResManSettings {
    pub fn new(base_url: impl Into<String>, credentials: ResManCredentials) -> Self {
        Self {
            base_url: base_url.into(),
            credentials,
            timeout: Duration::from_secs(30),
            tour_event_type: "Appointment".to_owned(),
        }
    }
}

pub struct HttpResMan {
    client: reqwest::Client,
    settings: ResManSettings,
    /// The other accounts' credentials; without, only properties of the default account can be reached.
    accounts: Option<std::sync::Arc<dyn AccountKeys>>,
    /// Asked before every request, when set (the poll workers pace each account).
    pacer: Option<std::sync::Arc<dyn tour_core::ports::CallPacer>>,
}

/// What one HTTP exchange gave, before the envelope is read.
enum Reply {
    Body(String),
    WindowTooWide,
}

impl HttpResMan {
    pub fn new(settings: ResManSettings) -> Result<Self, ResManError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent("tour-booking/0.1 (DomIQ)")
            .build()
            .map_err(|e| ResManError::Unreachable(format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            settings,
            accounts: None,
            pacer: None,
        })
    }

    /// Every request first waits for `pacer`.
    pub fn with_pacer(mut self, pacer: std::sync::Arc<dyn tour_core::ports::CallPacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// With the credentials of every other account.
    pub fn with_accounts(mut self, accounts: std::sync::Arc<dyn AccountKeys>) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// The `AccountID` and key a call about `site` carries: its account's, never another's.
    async fn credentials_for(&self, site: &ResManSite) -> Result<(String, String), ResManError> {
        let partner = &self.settings.credentials;
        let Some(account) = site.account else {
            return Ok((partner.account_id.to_string(), partner.api_key.clone()));
        };
        let Some(accounts) = &self.accounts else {
            return Err(AccountKeyError::Missing {
                account,
                reason: "no account credentials are configured".into(),
            }
            .into());
        };
        let held = accounts.credentials(account).await?;
        if held.account_id != account.0 {
            return Err(AccountKeyError::Missing {
                account,
                reason: format!("its secret names account {}", held.account_id),
            }
            .into());
        }
        Ok((
            account.to_string(),
            held.api_key.unwrap_or_else(|| partner.api_key.clone()),
        ))
    }

    async fn call(
        &self,
        path: &str,
        site: &ResManSite,
        fields: &[(&str, &str)],
        json: bool,
    ) -> Result<Reply, ResManError> {
        let (account, api_key) = self.credentials_for(site).await?;
        if let Some(pacer) = &self.pacer {
            pacer.before_call(site).await?;
        }
        let mut form: Vec<(&str, &str)> = vec![
            (
                "IntegrationPartnerID",
                &self.settings.credentials.integration_partner_id,
            ),
            ("ApiKey", &api_key),
            ("AccountID", &account),
            ("PropertyID", site.property.as_str()),
        ];
        form.extend_from_slice(fields);
        let url = format!("{}/{path}", self.settings.base_url.trim_end_matches('/'));
        let accept = if json { "application/json" } else { "application/xml" };
        tracing::debug!(
            method = path,
            account_id = %account,
            property_id = site.property.as_str(),
            "calling ResMan"
        );
        let started = std::time::Instant::now();
        let response = self
            .client
            .post(&url)
            .header(reqwest::header::ACCEPT, accept)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport_error(&e));
        let read = match response {
            Ok(response) => {
                let status = response.status();
                response
                    .text()
                    .await
                    .map(|body| (status, body))
                    .map_err(|e| self.transport_error(&e))
            }
            Err(e) => Err(e),
        };
        // ResMan's own time (after any pacing wait), answered or not.
        tour_core::metrics::record(Metric::ResManLatency, started.elapsed().as_secs_f64() * 1000.0);
        let (status, body) = read?;
        if status.as_u16() == 502 && body.to_ascii_lowercase().contains("buffer overflow") {
            return Ok(Reply::WindowTooWide);
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ResManError::Server {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(ResManError::Rejected {
                description: format!("HTTP {} from {path}", status.as_u16()),
            });
        }
        Ok(Reply::Body(body))
    }

    fn transport_error(&self, e: &reqwest::Error) -> ResManError {
        if e.is_timeout() {
            ResManError::Timeout(self.settings.timeout)
        } else if e.is_connect() {
            ResManError::Unreachable(without_url(e))
        } else {
            // The request went out and the answer broke off: as unknown as a timeout.
            ResManError::Malformed(format!(
                "the connection broke before the answer arrived: {}",
                without_url(e)
            ))
        }
    }

    async fn json_call<T: for<'de> Deserialize<'de> + Default>(
        &self,
        path: &str,
        site: &ResManSite,
    ) -> Result<T, ResManError> {
        counted(match self.call(path, site, &[], true).await {
            Ok(Reply::Body(body)) => read_json_envelope(&body),
            Ok(Reply::WindowTooWide) => Err(ResManError::Server { status: 502 }),
            Err(e) => Err(e),
        })
    }

    async fn mits_call(
        &self,
        path: &str,
        site: &ResManSite,
        fields: &[(&str, &str)],
    ) -> Result<Option<mits::LeadManagement>, ResManError> {
        counted(match self.call(path, site, fields, false).await {
            Ok(Reply::Body(body)) => read_xml_envelope(&body).map(Some),
            Ok(Reply::WindowTooWide) => Ok(None),
            Err(e) => Err(e),
        })
    }

    async fn search(&self, site: &ResManSite, fields: &[(&str, &str)]) -> Result<Vec<Prospect>, ResManError> {
        let lm = self
            .mits_call("MITS/SearchProspects", site, fields)
            .await?
            .ok_or(ResManError::Server { status: 502 })?;
        lm.prospects.prospect.iter().map(to_prospect).collect()
    }

    async fn post(&self, site: &ResManSite, doc: &mits::LeadManagement) -> Result<mits::Prospect, ResManError> {
        let xml = doc.to_xml().map_err(|e| ResManError::Rejected {
            description: format!("could not write MITS XML: {e}"),
        })?;
        let lm = self
            .mits_call("MITS/PostLeadManagement4_0", site, &[("Xml", &xml)])
            .await?
            .ok_or(ResManError::Server { status: 502 })?;
        lm.prospects
            .prospect
            .into_iter()
            .next()
            .ok_or_else(|| ResManError::Malformed("the answer echoed no prospect".into()))
    }
}

/// reqwest's messages name the URL; ours is no secret, but keep messages short and stable.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "ResMan");
    }
    text
}

#[derive(Deserialize)]
struct JsonEnvelope<T> {
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "ErrorDescription", default)]
    error_description: Option<String>,
    #[serde(flatten)]
    payload: T,
}

fn read_json_envelope<T: for<'de> Deserialize<'de> + Default>(body: &str) -> Result<T, ResManError> {
    let env: JsonEnvelope<serde_json::Value> =
        serde_json::from_str(body).map_err(|e| ResManError::Malformed(format!("not ResMan JSON: {e}")))?;
    check_status(&env.status, env.error_description)?;
    serde_json::from_value(env.payload).map_err(|e| ResManError::Malformed(format!("unexpected ResMan JSON: {e}")))
}

fn read_xml_envelope(body: &str) -> Result<mits::LeadManagement, ResManError> {
    let env: mits::XmlEnvelope =
        quick_xml::de::from_str(body).map_err(|e| ResManError::Malformed(format!("not ResMan XML: {e}")))?;
    check_status(&env.status, env.error_description)?;
    Ok(env.response.and_then(|r| r.lead_management).unwrap_or_default())
}

fn check_status(status: &str, description: Option<String>) -> Result<(), ResManError> {
    if status.eq_ignore_ascii_case("Success") {
        return Ok(());
    }
    let description = description.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| {
        if status.is_empty() {
            "ResMan answered without a status".to_owned()
        } else {
            format!("ResMan answered {status}")
        }
    });
    if status.is_empty() {
        return Err(ResManError::Malformed(description));
    }
    Err(ResManError::Rejected { description })
}

#[derive(Deserialize, Default)]
struct EmployeesPayload {
    #[serde(rename = "Employees", default)]
    employees: Vec<JsonEmployee>,
}

#[derive(Deserialize)]
struct JsonEmployee {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "FirstName", default)]
    first_name: String,
    #[serde(rename = "LastName", default)]
    last_name: String,
    #[serde(rename = "Email", default)]
    email: Option<String>,
    #[serde(rename = "IsLeasing", default)]
    is_leasing: bool,
}

#[derive(Deserialize, Default)]
struct SourcesPayload {
    #[serde(rename = "ProspectSources", default)]
    sources: Vec<JsonSource>,
}

#[derive(Deserialize)]
struct JsonSource {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
}

fn malformed_id(e: tour_core::domain::InvalidField) -> ResManError {
    ResManError::Malformed(format!("ResMan sent an unusable {e}"))
}

fn ceil_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    if t.timestamp_subsec_nanos() == 0 {
        t
    } else {
        DateTime::from_timestamp(t.timestamp() + 1, 0).unwrap_or(t)
    }
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    NaiveDateTime::parse_from_str(raw, RESMAN_TIME)
        .map(|t| t.and_utc())
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(raw).ok().map(|t| t.with_timezone(&Utc)))
}

fn to_prospect(p: &mits::Prospect) -> Result<Prospect, ResManError> {
    let customer = p
        .customers
        .customer
        .first()
        .ok_or_else(|| ResManError::Malformed("a prospect without a customer".into()))?;
    let reference = reference_of(customer)?;
    let events = p
        .events
        .event
        .iter()
        .map(|e| {
            Ok(ProspectEvent {
                id: e
                    .event_id
                    .as_ref()
                    .map(|id| AppointmentId::parse(&id.id_value))
                    .transpose()
                    .map_err(malformed_id)?,
                event_type: e.event_type.clone(),
                at: e.event_date.as_deref().and_then(parse_time),
                agent: e
                    .agent
                    .as_ref()
                    .and_then(|a| a.agent_id.as_ref())
                    .map(|a| AgentId::parse(&a.id_value))
                    .transpose()
                    .map_err(malformed_id)?,
                status: TourEventStatus::from_resman(e.event_reasons.as_deref()),
                reason: e.event_reasons.clone(),
                comments: e.comments.clone(),
            })
        })
        .collect::<Result<Vec<_>, ResManError>>()?;
    Ok(Prospect {
        reference,
        stage: tour_core::domain::resman::ProspectStage::from_resman(Some(&customer.customer_type)),
        first_name: customer.name.as_ref().and_then(|n| n.first_name.clone()),
        last_name: customer.name.as_ref().and_then(|n| n.last_name.clone()),
        email: customer.email.clone(),
        phone: customer.phone.iter().find_map(|ph| ph.phone_number.clone()),
        events,
    })
}

/// Counts a failed call by its class (envelope refusals included), for the operators.
fn counted<T>(result: Result<T, ResManError>) -> Result<T, ResManError> {
    if let Err(e) = &result {
        tour_core::metrics::count_by(Metric::ResManErrors, "ErrorClass", e.class());
    }
    result
}

fn reference_of(customer: &mits::Customer) -> Result<ProspectRef, ResManError> {
    let prospect_id = customer
        .id_of("ProspectID")
        .ok_or_else(|| ResManError::Malformed("a prospect without a ProspectID".into()))?;
    Ok(ProspectRef {
        prospect_id: ProspectId::parse(prospect_id).map_err(malformed_id)?,
        person_id: customer
            .id_of("PersonID")
            .map(PersonId::parse)
            .transpose()
            .map_err(malformed_id)?,
    })
}

fn identifications(reference: Option<&ProspectRef>) -> Vec<mits::Identification> {
    let Some(reference) = reference else {
        return Vec::new();
    };
    let mut ids = vec![mits::Identification {
        id_type: "ProspectID".into(),
        id_value: reference.prospect_id.to_string(),
    }];
    if let Some(person) = &reference.person_id {
        ids.push(mits::Identification {
            id_type: "PersonID".into(),
            id_value: person.to_string(),
        });
    }
    ids
}

fn agent(id: &AgentId) -> mits::Agent {
    mits::Agent {
        agent_id: Some(mits::IdValue {
            id_value: id.to_string(),
        }),
    }
}

fn single_prospect(customer: mits::Customer, preferences: Option<String>, event: mits::Event) -> mits::LeadManagement {
    mits::LeadManagement {
        prospects: mits::Prospects {
            prospect: vec![mits::Prospect {
                customers: mits::Customers {
                    customer: vec![customer],
                },
                customer_preferences: preferences.map(|comment| mits::CustomerPreferences { comment: Some(comment) }),
                events: mits::Events { event: vec![event] },
            }],
        },
    }
}

/// The id ResMan gave the event we posted: the one event of the echo, or the one with our date and type.
fn echoed_event_id(echo: &mits::Prospect, event_type: &str, date: &str) -> Result<AppointmentId, ResManError> {
    let events = &echo.events.event;
    let chosen = if events.len() == 1 {
        events.first()
    } else {
        events
            .iter()
            .rev()
            .find(|e| e.event_type.eq_ignore_ascii_case(event_type) && e.event_date.as_deref() == Some(date))
    };
    let id = chosen
        .and_then(|e| e.event_id.as_ref())
        .ok_or_else(|| ResManError::Malformed("the answer gave the event no EventID".into()))?;
    AppointmentId::parse(&id.id_value).map_err(malformed_id)
}

#[async_trait]
impl ResManGateway for HttpResMan {
    async fn employees(&self, site: &ResManSite) -> Result<Vec<Employee>, ResManError> {
        let payload: EmployeesPayload = self.json_call("Leasing/GetEmployees", site).await?;
        payload
            .employees
            .into_iter()
            .map(|e| {
                Ok(Employee {
                    id: AgentId::parse(&e.id).map_err(malformed_id)?,
                    first_name: e.first_name,
                    last_name: e.last_name,
                    email: e.email,
                    is_leasing: e.is_leasing,
                })
            })
            .collect()
    }

    async fn prospect_sources(&self, site: &ResManSite) -> Result<Vec<ProspectSource>, ResManError> {
        let payload: SourcesPayload = self.json_call("Leasing/GetProspectSources", site).await?;
        payload
            .sources
            .into_iter()
            .map(|s| {
                Ok(ProspectSource {
                    id: ProspectSourceId::parse(&s.id).map_err(malformed_id)?,
                    name: s.name,
                })
            })
            .collect()
    }

    async fn find_prospects(&self, site: &ResManSite, lookup: &ProspectLookup) -> Result<Vec<Prospect>, ResManError> {
        let field = match lookup {
            ProspectLookup::Email(email) => ("Email", email.expose()),
            ProspectLookup::Phone(phone) => ("Phone", phone.expose()),
            ProspectLookup::Id(id) => ("ProspectID", id.as_str()),
        };
        self.search(site, &[field]).await
    }

    async fn post_tour(&self, site: &ResManSite, post: &ProspectTourPost) -> Result<PostedTour, ResManError> {
        let date = post.tour.start.format(RESMAN_TIME).to_string();
        let customer = mits::Customer {
            customer_type: "prospect".into(),
            identification: identifications(post.existing.as_ref()),
            name: Some(mits::Name {
                first_name: Some(post.contact.name.first().to_owned()),
                last_name: Some(post.contact.name.last().to_owned()),
            }),
            phone: post
                .contact
                .phone
                .iter()
                .map(|p| mits::Phone {
                    phone_type: "cell".into(),
                    phone_number: Some(p.expose().to_owned()),
                })
                .collect(),
            email: Some(post.contact.email.expose().to_owned()),
        };
        let event_type = match post.tour.agent {
            Some(_) => self.settings.tour_event_type.clone(),
            None => "Other".to_owned(),
        };
        let event = mits::Event {
            event_type: event_type.clone(),
            event_date: Some(date.clone()),
            event_id: post.tour.appointment_id.as_ref().map(|id| mits::IdValue {
                id_value: id.to_string(),
            }),
            agent: post.tour.agent.as_ref().map(agent),
            // An update leaves the event's first-contact flag as ResMan has it.
            first_contact: post.tour.appointment_id.is_none().then_some(post.tour.first_contact),
            transaction_source: Some(post.tour.source.to_string()),
            event_reasons: post.tour.status.map(|s| s.as_resman().to_owned()),
            comments: Some(post.tour.comments.clone()),
        };
        let echo = self
            .post(site, &single_prospect(customer, post.preferences.clone(), event))
            .await?;
        let customer = echo
            .customers
            .customer
            .first()
            .ok_or_else(|| ResManError::Malformed("the answer echoed no customer".into()))?;
        let prospect = reference_of(customer)?;
        let appointment_id = match &post.tour.appointment_id {
            Some(id) => id.clone(),
            None => echoed_event_id(&echo, &event_type, &date)?,
        };
        Ok(PostedTour {
            prospect,
            appointment_id,
        })
    }

    async fn add_note(&self, site: &ResManSite, note: &NotePost) -> Result<AppointmentId, ResManError> {
        let date = note.at.format(RESMAN_TIME).to_string();
        let customer = mits::Customer {
            customer_type: "prospect".into(),
            identification: identifications(Some(&note.prospect)),
            ..Default::default()
        };
        let event = mits::Event {
            event_type: "Other".into(),
            event_date: Some(date.clone()),
            agent: note.agent.as_ref().map(agent),
            comments: Some(note.comments.clone()),
            ..Default::default()
        };
        let echo = self.post(site, &single_prospect(customer, None, event)).await?;
        echoed_event_id(&echo, "Other", &date)
    }

    async fn changed_prospects(&self, site: &ResManSite, window: UtcWindow) -> Result<Vec<Prospect>, ResManError> {
        // Earliest first; a window ResMan refuses as too wide is replaced by its two halves.
        let mut pending = vec![window];
        let mut found: BTreeMap<ProspectId, Prospect> = BTreeMap::new();
        while let Some(w) = pending.pop() {
            // ResMan reads whole seconds with an exclusive end: round the end up, so the last partial second is
            // read now rather than only by the next window (reading a little more is harmless: applying is
            // idempotent).
            let start = w.start().format(RESMAN_TIME).to_string();
            let end = ceil_to_second(w.end()).format(RESMAN_TIME).to_string();
            let fields = [
                ("ModifiedStartDateTime", start.as_str()),
                ("ModifiedEndDateTime", end.as_str()),
            ];
            match self.mits_call("MITS/SearchProspects", site, &fields).await? {
                Some(lm) => {
                    for p in &lm.prospects.prospect {
                        let prospect = to_prospect(p)?;
                        found.insert(prospect.reference.prospect_id.clone(), prospect);
                    }
                }
                None => {
                    let (first, second) = w.halves().ok_or(ResManError::Server { status: 502 })?;
                    tracing::info!(
                        window_seconds = w.length().num_seconds(),
                        "ResMan found the change window too wide; splitting it"
                    );
                    pending.push(second);
                    pending.push(first);
                }
            }
        }
        Ok(found.into_values().collect())
    }
}
