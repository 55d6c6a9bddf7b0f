//! The HTTP edge: the API key check, reading requests, and the one mapping from errors to JSON responses.

pub mod auth;
pub mod response;

pub use response::{ApiError, json};

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

/// The gate every chatbot endpoint passes first: the request's method, then its `x-api-key`.
/// Returns the refusal to send, or `None` to go on.
pub fn gate(keys: &auth::ApiKeys, request: &Request, method: Method) -> Option<Response<Body>> {
    let presented = request.headers().get("x-api-key").map(|v| v.as_bytes());
    if !keys.accepts(presented) {
        let message = if presented.is_some() {
            "the x-api-key header is not a valid key"
        } else {
            "the x-api-key header is missing"
        };
        return Some(ApiError::unauthorized(message).with_field("x-api-key").into_response());
    }
    if request.method() != method {
        return Some(
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("use {method}"),
            )
            .into_response(),
        );
    }
    None
}
