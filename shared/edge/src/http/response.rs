//! Renders errors and values as HTTP responses. Which status and body an error gets is decided once, in
//! `app::ErrorBody::of`; a 5xx body never carries the cause, which goes to the log instead (errors hold ids and
//! reasons, never request bodies or personal data).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use tour_core::app::{AppError, ErrorBody};

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
    use tour_core::ports::{ResManError, StoreError};

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
        let alt = tour_core::app::availability::SlotView {
            time: "2026-12-01T10:15:00-06:00".into(),
            staff_member: "Alex Rivera".into(),
            staff_member_id: Some("A".into()),
            duration: 45,
            tour_type: tour_core::domain::TourType::InPerson,
        };
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
        assert_eq!(error_response(&AppError::TooLarge(16384)).status(), 413);
    }
}
