//! The control surface under `/_sandbox/`: JSON in and out, for tests and the local stack. The real
//! ResMan has nothing like it.
//!
//! Errors are `{"error": {"code", "message", "field"}}`, the house error shape.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::app::{App, RequestRecord};
use crate::faults::Faults;
use crate::store::{
    AppointmentStatus, AppointmentView, BookError, CustomerType, DirectBooking, StaffChange, StaffChangeError, rfc3339,
};
use crate::webhook::{self, Delivery, StaffChangeNotice, WebhookTarget};

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/_sandbox/health", get(health))
        .route(
            "/_sandbox/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/_sandbox/appointments", get(list_appointments).post(book_appointment))
        .route("/_sandbox/appointments/{event_id}/staff-change", post(staff_change))
        .route(
            "/_sandbox/prospects/{prospect_id}/customer-type",
            post(set_customer_type),
        )
        .route("/_sandbox/webhooks", get(list_deliveries))
        .route("/_sandbox/webhook", post(set_webhook).delete(remove_webhook))
        .route("/_sandbox/requests", get(list_requests).delete(clear_requests))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/accounts", get(list_accounts).post(add_accounts))
}

/// A refusal of the control surface, rendered as the house error body.
#[derive(Debug)]
struct ControlError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ControlError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    fn on(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_field", message).on(field)
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "field": self.field}});
        (self.status, Json(body)).into_response()
    }
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))
}

fn parse_uuid(field: &'static str, value: &str) -> Result<Uuid, ControlError> {
    Uuid::parse_str(value.trim()).map_err(|_| ControlError::invalid(field, format!("{field} must be a GUID")))
}

fn parse_instant(field: &'static str, value: &str) -> Result<DateTime<Utc>, ControlError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| ControlError::invalid(field, format!("{field} must be an RFC 3339 date-time")))
}

fn parse_status(value: &str) -> Result<AppointmentStatus, ControlError> {
    AppointmentStatus::parse(value).ok_or_else(|| {
        ControlError::invalid(
            "status",
            "status must be Scheduled, Confirmed, Completed, Cancelled or No Show",
        )
    })
}

fn agent_unavailable() -> ControlError {
    ControlError::new(
        StatusCode::CONFLICT,
        "agent_unavailable",
        "Agent is not available at that time",
    )
    .on("scheduled_at")
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn get_faults(State(app): State<Arc<App>>) -> Json<Faults> {
    Json(app.lock().faults.clone())
}

/// Replaces the whole fault setting (fields left out go back to their defaults).
async fn set_faults(State(app): State<Arc<App>>, body: Bytes) -> Result<Json<Faults>, ControlError> {
    let faults = Faults::parse(&body).map_err(|e| ControlError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_faults",
        message: e.message,
        field: e.field,
    })?;
    tracing::info!(?faults, "faults set");
    app.lock().faults = faults.clone();
    Ok(Json(faults))
}

async fn clear_faults(State(app): State<Arc<App>>) -> Json<Faults> {
    let faults = Faults::default();
    app.lock().faults = faults.clone();
    Json(faults)
}

#[derive(Deserialize)]
struct AppointmentsQuery {
    property_id: Option<String>,
}

async fn list_appointments(
    State(app): State<Arc<App>>,
    Query(query): Query<AppointmentsQuery>,
) -> Result<Json<Vec<AppointmentView>>, ControlError> {
    let property_id = query
        .property_id
        .as_deref()
        .map(|id| parse_uuid("property_id", id))
        .transpose()?;
    Ok(Json(app.lock().store.appointments(property_id)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookBody {
    property_id: String,
    agent_id: String,
    scheduled_at: String,
    /// [assumed] 30 when left out, like a MITS appointment whose comments give no duration.
    #[serde(default)]
    duration_minutes: Option<u32>,
    prospect: ProspectBody,
    #[serde(default)]
    comments: Option<String>,
    /// When staff made the booking (RFC 3339, not in the future; now when left out): the change feed
    /// (`SearchProspects` by modified time) shows it from then, so a backfill can be tested over weeks of bookings.
    #[serde(default)]
    booked_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProspectBody {
    first_name: String,
    last_name: String,
    email: String,
    #[serde(default)]
    phone: Option<String>,
}

const MAX_DURATION_MINUTES: u32 = 24 * 60;

async fn book_appointment(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<(StatusCode, Json<AppointmentView>), ControlError> {
    let (booking, booked_at) = booking(&body, Utc::now())?;
    let booked = app.lock().store.book_direct(booking, booked_at);
    match booked {
        Ok(appointment) => Ok((StatusCode::CREATED, Json(appointment))),
        Err(BookError::PropertyNotFound) => {
            Err(ControlError::new(StatusCode::NOT_FOUND, "property_not_found", "property not found").on("property_id"))
        }
        Err(BookError::AgentNotFound) => Err(ControlError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "agent_not_found",
            "agent is not an employee of that property",
        )
        .on("agent_id")),
        Err(BookError::AgentUnavailable) => Err(agent_unavailable()),
    }
}

/// The booking, and when staff made it.
fn booking(body: &[u8], now: DateTime<Utc>) -> Result<(DirectBooking, DateTime<Utc>), ControlError> {
    let body: BookBody = parse_body(body)?;
    let booked_at = match body.booked_at.as_deref() {
        None => now,
        Some(at) => match parse_instant("booked_at", at)? {
            at if at > now => {
                return Err(ControlError::invalid(
                    "booked_at",
                    "booked_at must not be in the future",
                ));
            }
            at => at,
        },
    };
    let duration_minutes = body.duration_minutes.unwrap_or(crate::store::DEFAULT_DURATION_MINUTES);
    if !(1..=MAX_DURATION_MINUTES).contains(&duration_minutes) {
        return Err(ControlError::invalid(
            "duration_minutes",
            "duration_minutes must be between 1 and 1440",
        ));
    }
    let booking = DirectBooking {
        property_id: parse_uuid("property_id", &body.property_id)?,
        agent_id: parse_uuid("agent_id", &body.agent_id)?,
        start: parse_instant("scheduled_at", &body.scheduled_at)?,
        duration_minutes,
        first_name: body.prospect.first_name,
        last_name: body.prospect.last_name,
        email: body.prospect.email,
        phone: body.prospect.phone,
        comments: body.comments,
    };
    Ok((booking, booked_at))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffChangeBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    scheduled_at: Option<String>,
    #[serde(default)]
    staff_notes: Option<String>,
}

fn staff_change_of(body: &[u8]) -> Result<StaffChange, ControlError> {
    let body: StaffChangeBody = parse_body(body)?;
    if body.status.is_none() && body.scheduled_at.is_none() && body.staff_notes.is_none() {
        return Err(ControlError::new(
            StatusCode::BAD_REQUEST,
            "nothing_to_change",
            "give at least one of status, scheduled_at, staff_notes",
        ));
    }
    Ok(StaffChange {
        status: body.status.as_deref().map(parse_status).transpose()?,
        scheduled_at: body
            .scheduled_at
            .as_deref()
            .map(|at| parse_instant("scheduled_at", at))
            .transpose()?,
        staff_notes: body.staff_notes,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerTypeBody {
    customer_type: String,
}

/// Moves a prospect to applicant or resident, as staff do in the portal when an application or a lease comes in.
async fn set_customer_type(
    State(app): State<Arc<App>>,
    Path(prospect_id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ControlError> {
    let not_found = || ControlError::new(StatusCode::NOT_FOUND, "prospect_not_found", "no prospect has that id");
    let prospect_id = Uuid::parse_str(prospect_id.trim()).map_err(|_| not_found())?;
    let body: CustomerTypeBody = parse_body(&body)?;
    let kind = CustomerType::parse(&body.customer_type).ok_or_else(|| {
        ControlError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "customer_type must be prospect, applicant or resident",
        )
        .on("customer_type")
    })?;
    if !app.lock().store.set_customer_type(prospect_id, kind, Utc::now()) {
        return Err(not_found());
    }
    Ok(Json(
        json!({"prospect_id": prospect_id, "customer_type": kind.as_str()}),
    ))
}

#[derive(Serialize)]
struct StaffChangeReply {
    appointment: AppointmentView,
    updated_fields: Vec<&'static str>,
    /// The `event_id` of the webhook sent for this change; `null` when none was sent.
    webhook_event_id: Option<Uuid>,
}

fn appointment_not_found() -> ControlError {
    ControlError::new(
        StatusCode::NOT_FOUND,
        "appointment_not_found",
        "no appointment has that event id",
    )
}

/// Changes an appointment as a leasing agent would in the portal, then (if a target is set and
/// something changed) sends the signed webhook from a spawned task.
async fn staff_change(
    State(app): State<Arc<App>>,
    Path(event_id): Path<String>,
    body: Bytes,
) -> Result<Json<StaffChangeReply>, ControlError> {
    let appointment_id = Uuid::parse_str(event_id.trim()).map_err(|_| appointment_not_found())?;
    let change = staff_change_of(&body)?;
    let now = Utc::now();
    let mut state = app.lock();
    let outcome = state
        .store
        .staff_change(appointment_id, change, now)
        .map_err(|e| match e {
            StaffChangeError::NotFound => appointment_not_found(),
            StaffChangeError::AgentUnavailable => agent_unavailable(),
        })?;
    let target = state.webhook.clone().filter(|_| !outcome.updated_fields.is_empty());
    let mut webhook_event_id = None;
    if let Some(target) = target {
        let appointment = &outcome.appointment;
        let notice = StaffChangeNotice {
            event_id: Uuid::new_v4(),
            appointment_id: appointment.appointment_id,
            status: appointment.status.map(AppointmentStatus::as_str),
            updated_fields: outcome.updated_fields.clone(),
            staff_member: appointment.agent_id,
            timestamp: rfc3339(now),
            property_id: appointment.property_id,
            scheduled_at: appointment.scheduled_at.clone(),
        };
        match serde_json::to_string(&notice) {
            Ok(body) => {
                state.record_delivery(Delivery {
                    event_id: notice.event_id,
                    url: target.url.clone(),
                    status_code: None,
                    error: None,
                    body: body.clone(),
                    pending: true,
                });
                webhook_event_id = Some(notice.event_id);
                tokio::spawn(deliver(
                    Arc::clone(&app),
                    target,
                    notice.event_id,
                    body,
                    now.timestamp(),
                ));
            }
            Err(e) => tracing::error!(error = %e, "cannot serialise webhook body"),
        }
    }
    drop(state);
    Ok(Json(StaffChangeReply {
        appointment: outcome.appointment,
        updated_fields: outcome.updated_fields,
        webhook_event_id,
    }))
}

async fn deliver(app: Arc<App>, target: WebhookTarget, event_id: Uuid, body: String, timestamp: i64) {
    let outcome = webhook::send(&app.http, &target, body, timestamp).await;
    match &outcome {
        Ok(status) => tracing::info!(%event_id, status, "webhook delivered"),
        Err(e) => tracing::warn!(%event_id, error = %e, "webhook delivery failed"),
    }
    let mut state = app.lock();
    // A reset while the request was in flight has dropped the record; nothing to update then.
    if let Some(delivery) = state.deliveries.iter_mut().find(|d| d.event_id == event_id) {
        delivery.pending = false;
        match outcome {
            Ok(status) => delivery.status_code = Some(status),
            Err(e) => delivery.error = Some(e),
        }
    }
}

async fn list_deliveries(State(app): State<Arc<App>>) -> Json<Vec<Delivery>> {
    Json(app.lock().deliveries.iter().cloned().collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
    secret: String,
}

#[derive(Serialize)]
struct WebhookReply {
    url: Option<String>,
}

async fn set_webhook(State(app): State<Arc<App>>, body: Bytes) -> Result<Json<WebhookReply>, ControlError> {
    let body: WebhookBody = parse_body(&body)?;
    let url_ok = reqwest::Url::parse(&body.url).is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
    if !url_ok {
        return Err(ControlError::invalid(
            "url",
            "url must be an absolute http or https URL",
        ));
    }
    if body.secret.is_empty() {
        return Err(ControlError::invalid("secret", "secret must not be empty"));
    }
    tracing::info!(url = %body.url, "webhook target set");
    let url = body.url.clone();
    app.lock().webhook = Some(WebhookTarget {
        url: body.url,
        secret: body.secret,
    });
    Ok(Json(WebhookReply { url: Some(url) }))
}

async fn remove_webhook(State(app): State<Arc<App>>) -> Json<WebhookReply> {
    app.lock().webhook = None;
    Json(WebhookReply { url: None })
}

async fn list_requests(State(app): State<Arc<App>>) -> Json<Vec<RequestRecord>> {
    Json(app.lock().requests.iter().cloned().collect())
}

async fn clear_requests(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let mut state = app.lock();
    let cleared = state.requests.len();
    state.requests.clear();
    Json(json!({"cleared": cleared}))
}

/// Accounts and properties added at run time (a generated customer base for a scale run), checked together with
/// those already there. They are configuration: a reset keeps them.
#[derive(serde::Deserialize)]
struct AccountsLoad {
    #[serde(default)]
    accounts: Vec<crate::AccountSeed>,
    #[serde(default)]
    properties: Vec<crate::seed::PropertySeed>,
}

async fn add_accounts(
    State(app): State<Arc<App>>,
    body: Result<Json<AccountsLoad>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let Json(load) = body.map_err(|e| ControlError::invalid("body", e.body_text()))?;
    let mut state = app.lock();
    for property in &load.properties {
        let account = property.account_id.unwrap_or(app.credentials.account_id);
        if !state.accounts.contains_key(&account) && !load.accounts.iter().any(|a| a.account_id == account) {
            return Err(ControlError::invalid(
                "properties",
                format!(
                    "property {} names account {account}, which is not loaded",
                    property.property_id
                ),
            ));
        }
    }
    state
        .store
        .add_properties(load.properties.clone())
        .map_err(|e| ControlError::invalid("properties", e.to_string()))?;
    for account in &load.accounts {
        state.accounts.insert(account.account_id, account.api_key.clone());
    }
    Ok(Json(
        json!({"accounts": state.accounts.len(), "properties": state.store.properties().len()}),
    ))
}

async fn list_accounts(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let state = app.lock();
    let own = app.credentials.account_id;
    let accounts: Vec<serde_json::Value> = state
        .accounts
        .keys()
        .map(|account| {
            let properties = state
                .store
                .properties()
                .iter()
                .filter(|p| p.account_id.unwrap_or(own) == *account)
                .count();
            json!({"account_id": account, "properties": properties})
        })
        .collect();
    Json(json!(accounts))
}

async fn reset(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    app.lock().reset();
    tracing::info!("sandbox reset to its seed");
    Json(json!({"status": "reset"}))
}
