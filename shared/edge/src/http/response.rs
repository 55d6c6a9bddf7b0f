//! Renders outcomes, errors and values as HTTP responses. Which status and body an error gets is decided once, in
//! [`ErrorBody::of`], and which status an outcome gets in [`done`]; a 5xx body never carries the cause, which goes to the log instead (errors hold ids and
//! reasons, never request bodies or personal data).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;
use tour_core::app::AppError;
use tour_core::ports::{Outcome, ResManError};

/// An error that arises at the edge itself (method, API key) rather than in a use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A 405 for a path that takes only the methods `allow` lists (`"GET, PUT"`), with the `Allow` header RFC 9110
    /// requires of a 405.
    pub fn method_not_allowed(allow: &str) -> Response<Body> {
        let mut response = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this path takes {allow}"),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(allow) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        response
    }

    pub fn into_response(self) -> Response<Body> {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            error["field"] = serde_json::json!(field);
        }
        json(self.status, &serde_json::json!({ "error": error }))
    }
}

/// A response with a JSON text body as is (a saved answer replayed, or a mapped error).
pub fn raw_json(status: u16, body: String, retry_after: Option<u32>) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// An error as the caller sees it: status, `{"error": {...}}` body, and a `Retry-After` in seconds when useful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody(pub u16, pub String, pub Option<u32>);

impl ErrorBody {
    pub fn of(err: &AppError) -> Self {
        let (status, code, message, field, retry) = match err {
            AppError::Invalid(f) => (400, "invalid_request", f.to_string(), Some(f.field), None),
            AppError::NotFound(f) => (404, "not_found", f.to_string(), Some(f.field), None),
            AppError::TooLarge(limit) => (
                413,
                "body_too_large",
                format!("the body must be at most {limit} bytes"),
                Some("body"),
                None,
            ),
            AppError::BadSignature(why) => (401, "unauthorized", why.to_string(), None, None),
            AppError::Forbidden(why) => (403, "forbidden", (*why).to_owned(), None, None),
            AppError::SlotTaken { field, .. } => (
                409,
                "slot_taken",
                "that time was just taken; here are the nearest free times".to_owned(),
                Some(*field),
                None,
            ),
            AppError::Illegal { change, field } => (409, "illegal_transition", change.to_string(), Some(*field), None),
            AppError::Link(problem) => (
                if *problem == tour_core::domain::link::LinkProblem::Forged {
                    403
                } else {
                    410
                },
                "link_refused",
                problem.to_string(),
                Some("t"),
                None,
            ),
            AppError::KeyReused => (
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request".to_owned(),
                Some("Idempotency-Key"),
                None,
            ),
            AppError::TooManyHolds { bound, retry_after } => (
                429,
                "too_many_holds",
                format!(
                    "this key already holds {bound} times in that hour at this property; a place frees in \
                     {retry_after} s, or book without a hold"
                ),
                None,
                Some(*retry_after),
            ),
            AppError::InProgress => (
                409,
                "request_in_progress",
                "the first request with this Idempotency-Key is still being processed; retry shortly".to_owned(),
                None,
                Some(2),
            ),
            AppError::Store(_) => (
                503,
                "temporarily_unavailable",
                "please try again shortly".to_owned(),
                None,
                Some(2),
            ),
            AppError::ResMan(ResManError::Rejected { description }) => (
                422,
                "resman_refused",
                format!("ResMan refused it: {description}"),
                None,
                None,
            ),
            AppError::ResMan(_) => (
                503,
                "resman_unavailable",
                "ResMan is not answering; please try again shortly".to_owned(),
                None,
                Some(5),
            ),
            AppError::Internal(_) => (500, "internal", "internal error".to_owned(), None, None),
        };
        let mut error = json!({ "code": code, "message": message });
        if let Some(field) = field {
            error["field"] = json!(field);
        }
        if let AppError::SlotTaken { alternatives, .. } = err {
            error["alternatives"] = json!(alternatives);
        }
        if let AppError::Illegal { change, .. } = err {
            error["current_status"] = json!(change.current);
        }
        Self(status, json!({ "error": error }).to_string(), retry)
    }
}

/// A finished request as the caller gets it: 201 for a booking ResMan has, 202 for one that stands while ResMan is
/// owed it (the chatbot says "requested"), 200 for a change of a tour.
pub fn done(outcome: Outcome, body: String) -> Response<Body> {
    let status = match outcome {
        Outcome::Booked => StatusCode::CREATED,
        Outcome::Pending => StatusCode::ACCEPTED,
        Outcome::Updated => StatusCode::OK,
    };
    raw_json(status.as_u16(), body, None)
}

/// Maps a use case's error for the caller, logging its cause when it is ours or a dependency's (5xx).
pub fn error_response(err: &AppError) -> Response<Body> {
    let ErrorBody(status, body, retry_after) = ErrorBody::of(err);
    if status >= 500 {
        tracing::error!(error = %err, "request failed");
    } else {
        tracing::info!(status, "request refused");
    }
    raw_json(status, body, retry_after)
}

/// A use case's result as the caller gets it: 200 with the value, or the mapped error.
pub fn answer<T: Serialize>(result: Result<T, AppError>) -> Response<Body> {
    match result {
        Ok(value) => json(StatusCode::OK, &value),
        Err(err) => error_response(&err),
    }
}

/// A JSON response. Serialising our own types cannot fail; if it ever did, the caller gets a bare 500.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => raw_json(status.as_u16(), text, None),
        Err(_) => raw_json(
            500,
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_owned(),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tour_core::domain::InvalidField;
    use tour_core::ports::StoreError;

    fn body_of(r: &Response<Body>) -> serde_json::Value {
        match r.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn invalid_input_is_a_400_naming_the_field() {
        let r = error_response(&AppError::Invalid(InvalidField::new(
            "tour_data.prospect_email",
            "must contain '@'",
        )));
        assert_eq!(r.status(), 400);
        let b = body_of(&r);
        assert_eq!(b["error"]["field"], "tour_data.prospect_email");
        assert_eq!(b["error"]["code"], "invalid_request");
        assert_eq!(r.headers()["content-type"], "application/json");
    }

    #[test]
    fn dependency_failures_are_503_with_retry_after_and_no_cause_in_the_body() {
        let r = error_response(&AppError::Store(StoreError::Unavailable("secret detail".into())));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "2");
        assert!(!body_of(&r).to_string().contains("secret detail"));
        let r = error_response(&AppError::Internal("a panic detail".into()));
        assert_eq!(r.status(), 500);
        assert!(!body_of(&r).to_string().contains("panic detail"));
    }

    #[test]
    fn a_resman_refusal_is_a_422_saying_why() {
        let r = error_response(&AppError::ResMan(ResManError::Rejected {
            description: "Transaction Source could not be found".into(),
        }));
        assert_eq!(r.status(), 422);
        assert!(
            body_of(&r)["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Transaction Source")
        );
    }

    #[test]
    fn a_taken_slot_is_a_409_with_alternatives_and_in_progress_says_when_to_retry() {
        let alt = tour_core::domain::slots::sample_slot_view();
        let r = error_response(&AppError::SlotTaken {
            alternatives: vec![alt],
            field: "tour_data.preferred_time",
        });
        assert_eq!(r.status(), 409);
        assert_eq!(
            body_of(&r)["error"]["alternatives"][0]["time"],
            "2026-12-01T10:15:00-06:00"
        );
        let r = error_response(&AppError::InProgress);
        assert_eq!(
            (r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()),
            (409, "2")
        );
        assert_eq!(error_response(&AppError::KeyReused).status(), 422);
        let r = error_response(&AppError::TooLarge(16384));
        assert_eq!(
            (r.status().as_u16(), body_of(&r)["error"]["field"].as_str()),
            (413, Some("body"))
        );
    }

    #[test]
    fn too_many_holds_is_a_429_saying_when_a_place_frees() {
        let r = error_response(&AppError::TooManyHolds {
            bound: 2,
            retry_after: 300,
        });
        assert_eq!(
            (r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()),
            (429, "300")
        );
        assert_eq!(body_of(&r)["error"]["code"], "too_many_holds");
    }

    #[test]
    fn an_illegal_change_is_a_409_naming_the_current_status() {
        let change = tour_core::domain::lifecycle::IllegalChange {
            current: tour_core::domain::lifecycle::TourStatus::Cancelled,
            change: "complete",
            reason: "",
        };
        let r = error_response(&AppError::Illegal {
            change,
            field: "status",
        });
        let body = body_of(&r);
        assert_eq!(
            (
                r.status().as_u16(),
                body["error"]["current_status"].as_str(),
                body["error"]["field"].as_str()
            ),
            (409, Some("cancelled"), Some("status"))
        );
        assert!(body["error"]["message"].as_str().unwrap().contains("cancelled"));
    }

    #[test]
    fn each_outcome_gets_its_status_and_the_body_as_is() {
        let body = r#"{"appointment_id":"tour_1"}"#;
        for (outcome, status) in [(Outcome::Booked, 201), (Outcome::Pending, 202), (Outcome::Updated, 200)] {
            let r = done(outcome, body.to_owned());
            assert_eq!(r.status().as_u16(), status, "{outcome:?}");
            assert_eq!(body_of(&r)["appointment_id"], "tour_1");
        }
    }

    #[test]
    fn a_saved_refusal_is_answered_as_the_first_refusal_was() {
        let slot = tour_core::domain::slots::sample_slot_view();
        let first = AppError::SlotTaken {
            alternatives: vec![slot.clone()],
            field: "tour_data.preferred_time",
        };
        let replayed = AppError::from(tour_core::ports::Refusal::SlotTaken {
            alternatives: vec![slot],
        });
        assert_eq!(ErrorBody::of(&replayed), ErrorBody::of(&first));
        let first = AppError::ResMan(ResManError::Rejected {
            description: "no such source".into(),
        });
        let replayed = AppError::from(tour_core::ports::Refusal::ResManRejected {
            description: "no such source".into(),
        });
        assert_eq!(ErrorBody::of(&replayed), ErrorBody::of(&first));
    }
}
