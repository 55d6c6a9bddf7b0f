//! The one mapping from `AppError` to an HTTP status and a JSON body:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`. A 5xx body never carries the cause; the cause
//! chain goes to the log (without personal data: errors hold ids and reasons, not request bodies).

use crate::app::AppError;
use crate::ports::ResManError;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_seconds: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn into_response(self) -> Response<Body> {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        let mut response = json(self.status, &json!({ "error": error }));
        if let Some(seconds) = self.retry_after_seconds
            && let Ok(value) = seconds.to_string().parse()
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

impl From<&AppError> for ApiError {
    fn from(err: &AppError) -> Self {
        match err {
            AppError::Invalid(invalid) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                invalid.to_string(),
            )
            .with_field(invalid.field),
            AppError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", what.to_string())
                    .with_field(what.field)
            }
            AppError::BadSignature(why) => ApiError::unauthorized(&why.to_string()),
            AppError::Store(_) => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "please try again shortly",
                );
                e.retry_after_seconds = Some(2);
                e
            }
            AppError::ResMan(ResManError::Rejected { description }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "resman_refused",
                format!("ResMan refused it: {description}"),
            ),
            AppError::ResMan(_) => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "resman_unavailable",
                    "ResMan is not answering; please try again shortly",
                );
                e.retry_after_seconds = Some(5);
                e
            }
        }
    }
}

/// Maps an error for the caller, logging its cause when it is ours or a dependency's (5xx).
pub fn error_response(err: &AppError) -> Response<Body> {
    let api = ApiError::from(err);
    if api.status.is_server_error() {
        tracing::error!(error = %err, "request failed");
    } else {
        tracing::info!(
            code = api.code,
            field = api.field.as_deref(),
            "request refused"
        );
    }
    api.into_response()
}

/// A JSON response. Serialising our own types cannot fail; if it ever did, the caller gets a bare 500.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let (status, text) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_owned(),
        ),
    };
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InvalidField;

    fn body_of(r: &Response<Body>) -> serde_json::Value {
        match r.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn invalid_input_is_a_400_naming_the_field() {
        let r = error_response(&AppError::Invalid(InvalidField::new(
            "prospect_email",
            "must contain '@'",
        )));
        assert_eq!(r.status(), 400);
        let b = body_of(&r);
        assert_eq!(b["error"]["field"], "prospect_email");
        assert_eq!(b["error"]["code"], "invalid_request");
        assert_eq!(r.headers()["content-type"], "application/json");
    }

    #[test]
    fn dependency_failures_are_503_with_retry_after_and_no_cause_in_the_body() {
        let r = error_response(&AppError::Store(crate::ports::StoreError::Unavailable(
            "secret detail".into(),
        )));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "2");
        assert!(!body_of(&r).to_string().contains("secret detail"));
    }

    #[test]
    fn a_resman_refusal_is_a_422_saying_why() {
        let r = error_response(&AppError::ResMan(ResManError::Rejected {
            description: "Agent is not available at that time".into(),
        }));
        assert_eq!(r.status(), 422);
        assert!(
            body_of(&r)["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Agent is not available")
        );
    }
}
