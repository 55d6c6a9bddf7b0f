//! The ResMan partner surface: `POST /{Area}/{Method}`, form-encoded, answered in ResMan's envelope.
//!
//! Order of checks, as a gateway in front of an application would have it: unknown method (404), then
//! injected faults, then credentials, then the property, then the method itself. Every request is
//! recorded in the request log, without its ApiKey or Xml.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::Credentials;
use crate::app::{App, RequestRecord};
use crate::envelope::{EmployeeOut, Envelope, Format, Payload, PropertyOut, ProspectSourceOut};
use crate::faults::FaultAction;
use crate::mits::{self, LeadManagement, Prospects};
use crate::store::{Criterion, PostError, rfc3339};

const INVALID_CREDENTIALS: &str = "Invalid IntegrationPartnerID, ApiKey or AccountID";
const PROPERTY_NOT_FOUND: &str = "Property not found";

/// Widest `SearchProspects` modified window ResMan answers [limit assumed].
const MAX_MODIFIED_WINDOW: Duration = Duration::days(7);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    GetProperties,
    GetEmployees,
    GetProspectSources,
    SearchProspects,
    PostLeadManagement,
}

impl Method {
    fn from_path(area: &str, method: &str) -> Option<Self> {
        match (area, method) {
            ("Account", "GetProperties") => Some(Self::GetProperties),
            ("Leasing", "GetEmployees") => Some(Self::GetEmployees),
            ("Leasing", "GetProspectSources") => Some(Self::GetProspectSources),
            ("MITS", "SearchProspects") => Some(Self::SearchProspects),
            ("MITS", "PostLeadManagement4_0") => Some(Self::PostLeadManagement),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::GetProperties => "GetProperties",
            Self::GetEmployees => "GetEmployees",
            Self::GetProspectSources => "GetProspectSources",
            Self::SearchProspects => "SearchProspects",
            Self::PostLeadManagement => "PostLeadManagement4_0",
        }
    }

    fn is_mits(self) -> bool {
        matches!(self, Self::SearchProspects | Self::PostLeadManagement)
    }
}

/// Form fields from the body and the query string; the body wins when both have a field.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        let mut fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body)?;
        if let Some(query) = query {
            fields.extend(serde_urlencoded::from_str::<Vec<(String, String)>>(query)?);
        }
        Ok(Self(fields))
    }

    /// A field's value; blank counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, value)| key == name && !value.trim().is_empty())
            .map(|(_, value)| value.as_str())
    }

    fn account_id(&self) -> Option<i64> {
        self.get("AccountID")?.trim().parse().ok()
    }

    /// The partner's id, a known account and that account's own key: a key of another account is refused.
    fn has_credentials_of(&self, partner: &Credentials, accounts: &std::collections::BTreeMap<i64, String>) -> bool {
        self.get("IntegrationPartnerID") == Some(partner.integration_partner_id.as_str())
            && self
                .account_id()
                .and_then(|account| accounts.get(&account))
                .is_some_and(|key| self.get("ApiKey") == Some(key.as_str()))
    }
}

/// A finished answer, before it becomes an HTTP response.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn envelope(status: StatusCode, envelope: &Envelope, format: Format) -> Self {
        match envelope.render(format) {
            Ok(body) => Self {
                status,
                content_type: format.content_type(),
                body,
            },
            Err(error) => {
                tracing::error!(error = %error, method = %envelope.method_name, "cannot render envelope");
                Self::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }

    fn text(status: StatusCode, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
        }
    }

    /// What a load balancer in front of ResMan answers: HTML, not the envelope.
    fn gateway(status: StatusCode) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            body: format!(
                "<html><body><h1>{} {}</h1></body></html>",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error")
            ),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        response
    }
}

/// What a method produced: an envelope (and, for a post, the events it touched) or, for too wide a
/// search window, ResMan's bare 502.
enum Answer {
    Envelope {
        envelope: Envelope,
        event_ids: Option<Vec<Uuid>>,
    },
    BufferOverflow,
}

impl Answer {
    fn envelope(envelope: Envelope) -> Self {
        Self::Envelope {
            envelope,
            event_ids: None,
        }
    }

    fn into_reply(self, record: &mut RequestRecord, format: Format) -> Reply {
        match self {
            Self::Envelope { envelope, event_ids } => {
                record.status = Some(envelope.status());
                record.event_ids = event_ids;
                Reply::envelope(StatusCode::OK, &envelope, format)
            }
            Self::BufferOverflow => Reply::text(
                StatusCode::BAD_GATEWAY,
                "Error: buffer overflow. Narrow the ModifiedStartDateTime/ModifiedEndDateTime window.",
            ),
        }
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("application/json"))
}

pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    Path((area, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    let requested = if wants_json(&headers) {
        Format::Json
    } else {
        Format::Xml
    };
    let form = Form::parse(query.as_deref(), &body);
    let property_id = form.as_ref().ok().and_then(|f| f.get("PropertyID")).map(str::to_owned);
    let account_id = form.as_ref().ok().and_then(Form::account_id);
    let mut record = RequestRecord {
        at: rfc3339(now),
        at_ms: now.timestamp_millis(),
        area: area.clone(),
        method: method.clone(),
        property_id: property_id.clone(),
        account_id,
        http_status: StatusCode::OK.as_u16(),
        fault: None,
        status: None,
        event_ids: None,
    };

    let Some(kind) = Method::from_path(&area, &method) else {
        let envelope = Envelope::error(
            &method,
            account_id,
            property_id,
            format!("Unknown method {area}/{method}"),
        );
        record.status = Some(envelope.status());
        let reply = Reply::envelope(StatusCode::NOT_FOUND, &envelope, requested);
        return finish(&app, record, reply);
    };
    let format = if kind.is_mits() { Format::Xml } else { requested };

    let account = account_id.unwrap_or(app.credentials.account_id);
    let decision = app.lock().faults.decide(&area, &method, account, &mut rand::rng());
    if !decision.latency.is_zero() {
        record.fault = Some("latency");
        app.sleep(decision.latency).await;
    }
    if let Some(action) = &decision.action {
        record.fault = Some(action.name());
    }
    let reply = match decision.action {
        Some(FaultAction::Hang) => {
            record.http_status = StatusCode::GATEWAY_TIMEOUT.as_u16();
            // Logged before the sleep: the client gives up long before it ends.
            log_request(&app, record);
            app.sleep(app.hang_duration).await;
            return Reply::gateway(StatusCode::GATEWAY_TIMEOUT).into_response();
        }
        Some(FaultAction::HttpError(code)) => {
            Reply::gateway(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY))
        }
        Some(FaultAction::StatusError(message)) => {
            let envelope = Envelope::error(kind.name(), account_id, property_id, message);
            Answer::envelope(envelope).into_reply(&mut record, format)
        }
        Some(FaultAction::AppliedThen503) => {
            // The write happens and is recorded as it went; only the answer is lost.
            execute(&app, kind, form, now).into_reply(&mut record, format);
            Reply::gateway(StatusCode::SERVICE_UNAVAILABLE)
        }
        None => execute(&app, kind, form, now).into_reply(&mut record, format),
    };
    finish(&app, record, reply)
}

/// Anything that is not `/{Area}/{Method}` or a control route.
pub(crate) async fn unknown_path(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let method = uri.path().rsplit('/').next().unwrap_or_default();
    let envelope = Envelope::error(method, None, None, format!("Unknown method {}", uri.path()));
    let format = if wants_json(&headers) {
        Format::Json
    } else {
        Format::Xml
    };
    Reply::envelope(StatusCode::NOT_FOUND, &envelope, format).into_response()
}

fn finish(app: &App, mut record: RequestRecord, reply: Reply) -> Response {
    record.http_status = reply.status.as_u16();
    log_request(app, record);
    reply.into_response()
}

fn log_request(app: &App, record: RequestRecord) {
    tracing::info!(
        area = %record.area,
        method = %record.method,
        property_id = record.property_id.as_deref().unwrap_or("-"),
        http_status = record.http_status,
        fault = record.fault.unwrap_or("-"),
        status = record.status.unwrap_or("-"),
        "resman request"
    );
    app.lock().record_request(record);
}

fn execute(app: &App, kind: Method, form: Result<Form, serde_urlencoded::de::Error>, now: DateTime<Utc>) -> Answer {
    let form = match form {
        Ok(form) => form,
        Err(error) => {
            return Answer::envelope(Envelope::error(
                kind.name(),
                None,
                None,
                format!("Invalid form body: {error}"),
            ));
        }
    };
    let property_id = form.get("PropertyID").map(str::to_owned);
    let envelope = |outcome: Result<Payload, String>| Envelope {
        method_name: kind.name().to_owned(),
        account_id: form.account_id(),
        property_id: property_id.clone(),
        outcome,
    };
    let mut state = app.lock();
    if !form.has_credentials_of(&app.credentials, &state.accounts) {
        return Answer::envelope(envelope(Err(INVALID_CREDENTIALS.to_owned())));
    }
    // A property of another account is not found: an account sees only its own properties.
    let account = form.account_id();
    let own_account = app.credentials.account_id;
    let in_account =
        |p: &crate::seed::PropertySeed| p.account_id.unwrap_or(own_account) == account.unwrap_or(own_account);
    let property = property_id
        .as_deref()
        .and_then(|id| state.store.property(id))
        .filter(|p| in_account(p))
        .cloned()
        .ok_or_else(|| PROPERTY_NOT_FOUND.to_owned());
    match kind {
        Method::GetProperties => {
            let properties = state
                .store
                .properties()
                .iter()
                .filter(|p| in_account(p))
                .map(PropertyOut::from);
            Answer::envelope(envelope(Ok(Payload::Properties(properties.collect()))))
        }
        Method::GetEmployees => {
            Answer::envelope(envelope(property.map(|property| {
                Payload::Employees(property.employees.iter().map(EmployeeOut::from).collect())
            })))
        }
        Method::GetProspectSources => Answer::envelope(envelope(property.map(|property| {
            Payload::ProspectSources(property.prospect_sources.iter().map(ProspectSourceOut::from).collect())
        }))),
        Method::SearchProspects => match (property, criterion(&form)) {
            (Err(not_found), _) => Answer::envelope(envelope(Err(not_found))),
            (Ok(_), Err(SearchError::WindowTooWide)) => Answer::BufferOverflow,
            (Ok(_), Err(error)) => Answer::envelope(envelope(Err(error.to_string()))),
            (Ok(property), Ok(criterion)) => {
                let found = state.store.search(property.property_id, &criterion);
                let document = lead_management(found.iter().map(|p| mits::prospect_xml(p, &p.events)));
                Answer::envelope(envelope(Ok(document)))
            }
        },
        Method::PostLeadManagement => {
            let posted = property.and_then(|property| {
                form.get("Xml")
                    .ok_or_else(|| PostError::InvalidXml("the Xml field is required".to_owned()))
                    .and_then(mits::parse_post)
                    .and_then(|posts| state.store.post(property.property_id, posts, now))
                    .map_err(|error| error.to_string())
            });
            match posted {
                Ok(posted) => {
                    let event_ids = posted.iter().flat_map(|p| p.event_ids.clone()).collect();
                    // The echo shows each prospect with the events this post created or updated.
                    let document = lead_management(posted.iter().map(|p| {
                        let events = p
                            .event_ids
                            .iter()
                            .filter_map(|id| p.prospect.events.iter().find(|e| e.id == *id));
                        mits::prospect_xml(&p.prospect, events)
                    }));
                    Answer::Envelope {
                        envelope: envelope(Ok(document)),
                        event_ids: Some(event_ids),
                    }
                }
                Err(description) => Answer::Envelope {
                    envelope: envelope(Err(description)),
                    event_ids: Some(Vec::new()),
                },
            }
        }
    }
}

fn lead_management(prospects: impl Iterator<Item = mits::ProspectXml>) -> Payload {
    Payload::LeadManagement(LeadManagement {
        prospects: Prospects {
            items: prospects.collect(),
        },
    })
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum SearchError {
    #[error(
        "A search criterion is required: ProspectID, Email, Phone, FirstName and LastName, or ModifiedStartDateTime and ModifiedEndDateTime"
    )]
    NoCriterion,
    #[error("Only one search criterion may be given, got {0}")]
    SeveralCriteria(String),
    #[error("FirstName and LastName must be given together")]
    HalfName,
    #[error("ModifiedStartDateTime and ModifiedEndDateTime must be given together")]
    HalfWindow,
    #[error("Invalid {field} {value:?}: expected YYYY-MM-DDTHH:MM:SS in UTC")]
    InvalidDate { field: &'static str, value: String },
    #[error("buffer overflow")]
    WindowTooWide,
}

/// Exactly one criterion, or an error saying what is wrong.
fn criterion(form: &Form) -> Result<Criterion, SearchError> {
    let present = |names: &[&str]| names.iter().any(|n| form.get(n).is_some());
    let groups = [
        ("ProspectID", present(&["ProspectID"])),
        ("Email", present(&["Email"])),
        ("Phone", present(&["Phone"])),
        ("FirstName+LastName", present(&["FirstName", "LastName"])),
        (
            "ModifiedStartDateTime+ModifiedEndDateTime",
            present(&["ModifiedStartDateTime", "ModifiedEndDateTime"]),
        ),
    ];
    let given: Vec<&str> = groups
        .iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| *name)
        .collect();
    match given.as_slice() {
        [] => Err(SearchError::NoCriterion),
        [_] => Ok(()),
        several => Err(SearchError::SeveralCriteria(several.join(", "))),
    }?;
    if let Some(id) = form.get("ProspectID") {
        return Ok(Criterion::ProspectId(id.to_owned()));
    }
    if let Some(email) = form.get("Email") {
        return Ok(Criterion::Email(email.to_owned()));
    }
    if let Some(phone) = form.get("Phone") {
        return Ok(Criterion::Phone(phone.to_owned()));
    }
    if present(&["FirstName", "LastName"]) {
        return match (form.get("FirstName"), form.get("LastName")) {
            (Some(first), Some(last)) => Ok(Criterion::Name {
                first: first.to_owned(),
                last: last.to_owned(),
            }),
            _ => Err(SearchError::HalfName),
        };
    }
    let date = |field: &'static str| -> Result<DateTime<Utc>, SearchError> {
        let value = form.get(field).ok_or(SearchError::HalfWindow)?;
        mits::parse_utc(value).ok_or_else(|| SearchError::InvalidDate {
            field,
            value: value.to_owned(),
        })
    };
    let start = date("ModifiedStartDateTime")?;
    let end = date("ModifiedEndDateTime")?;
    if end - start > MAX_MODIFIED_WINDOW {
        return Err(SearchError::WindowTooWide);
    }
    Ok(Criterion::Modified { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> Form {
        Form(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn exactly_one_search_criterion_is_required() {
        assert_eq!(criterion(&form(&[])), Err(SearchError::NoCriterion));
        assert!(matches!(
            criterion(&form(&[("Email", "a@b.c"), ("Phone", "1")])),
            Err(SearchError::SeveralCriteria(_))
        ));
        assert_eq!(criterion(&form(&[("FirstName", "Ana")])), Err(SearchError::HalfName));
        assert_eq!(
            criterion(&form(&[("ModifiedEndDateTime", "2026-12-01T00:00:00")])),
            Err(SearchError::HalfWindow)
        );
        assert_eq!(
            criterion(&form(&[("Email", "a@b.c")])),
            Ok(Criterion::Email("a@b.c".to_owned()))
        );
    }

    #[test]
    fn a_window_of_exactly_seven_days_is_allowed_and_one_second_more_overflows() {
        let window = |end: &str| {
            criterion(&form(&[
                ("ModifiedStartDateTime", "2026-12-01T00:00:00"),
                ("ModifiedEndDateTime", end),
            ]))
        };
        assert!(matches!(window("2026-12-08T00:00:00"), Ok(Criterion::Modified { .. })));
        assert_eq!(window("2026-12-08T00:00:01"), Err(SearchError::WindowTooWide));
        assert!(matches!(
            window("2026-12-08"),
            Err(SearchError::InvalidDate {
                field: "ModifiedEndDateTime",
                ..
            })
        ));
    }

    #[test]
    fn body_fields_win_over_query_fields() {
        let form = Form::parse(Some("PropertyID=from-query&ApiKey=k"), b"PropertyID=from-body").expect("parses");
        assert_eq!(form.get("PropertyID"), Some("from-body"));
        assert_eq!(form.get("ApiKey"), Some("k"));
    }

    #[test]
    fn credentials_must_all_match_and_a_key_opens_only_its_own_account() {
        let expected = Credentials::demo();
        let accounts =
            std::collections::BTreeMap::from([(400, "sandbox-api-key".to_owned()), (401, "key-of-401".to_owned())]);
        let good = [
            ("IntegrationPartnerID", "domiq-sandbox"),
            ("ApiKey", "sandbox-api-key"),
            ("AccountID", "400"),
        ];
        assert!(form(&good).has_credentials_of(&expected, &accounts));
        for wrong in 0..good.len() {
            let mut fields = good;
            fields[wrong].1 = "401";
            assert!(!form(&fields).has_credentials_of(&expected, &accounts), "{fields:?}");
        }
        let other = [
            ("IntegrationPartnerID", "domiq-sandbox"),
            ("ApiKey", "key-of-401"),
            ("AccountID", "401"),
        ];
        assert!(form(&other).has_credentials_of(&expected, &accounts));
        let crossed = [
            ("IntegrationPartnerID", "domiq-sandbox"),
            ("ApiKey", "key-of-401"),
            ("AccountID", "400"),
        ];
        assert!(
            !form(&crossed).has_credentials_of(&expected, &accounts),
            "401's key does not open 400"
        );
    }
}
