//! The HTTP edge: the API key check, reading requests, and the one mapping from errors to JSON responses.

pub mod notice;
pub mod page;
pub mod response;

pub use response::{ApiError, answer, json};

use response::error_response;
use tour_core::domain::access::{Action, Credential, Credentials};

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// What a function serves: its method (a 405 lists every method of the path in `allow`, `"GET, PUT"`: API Gateway
/// routes the path's other methods to one of its functions, which answers for all) and what a request does.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub allow: &'static str,
    pub action: Action,
}

impl Route {
    pub const fn new(method: Method, allow: &'static str, action: Action) -> Self {
        Self { method, allow, action }
    }
}

/// The request's `Idempotency-Key` header, when it has one.
pub fn idempotency_key(request: &Request) -> Option<&str> {
    request.headers().get("idempotency-key").and_then(|v| v.to_str().ok())
}

/// The gate every API endpoint passes first: its `x-api-key` (401), then the request's method (405), then whether
/// the key's role may do this (403, counted). The key it was, to check the property or tour against its accounts.
/// (The refusal is boxed: a response is large, and the pass is the common case.)
pub fn gate(keys: &Credentials, request: &Request, route: &Route) -> Result<Credential, Box<Response<Body>>> {
    let presented = request.headers().get("x-api-key").map(|v| v.as_bytes());
    let Some(key) = keys.identify(presented) else {
        let message = if presented.is_some() {
            "the x-api-key header is not a valid key"
        } else {
            "the x-api-key header is missing"
        };
        return Err(Box::new(
            ApiError::unauthorized(message).with_field("x-api-key").into_response(),
        ));
    };
    if request.method() != route.method {
        return Err(Box::new(ApiError::method_not_allowed(route.allow)));
    }
    if !key.role.may(route.action) {
        tour_core::metrics::count(tour_core::metrics::Metric::AccessRefusals);
        tracing::warn!(key = %key.name, role = key.role.as_str(), action = ?route.action, "refused: not for this key's role");
        let forbidden = tour_core::app::AppError::Forbidden("this key's role may not do this");
        return Err(Box::new(error_response(&forbidden)));
    }
    Ok(key.clone())
}

/// [`gate`] with the keys a rotating secret accepts now (read again from Secrets Manager when due).
pub async fn check(
    keys: &tour_aws::secrets::RotatingSecret,
    request: &Request,
    route: &Route,
) -> Result<Credential, Box<Response<Body>>> {
    let now = chrono::Utc::now();
    let ring = keys.ring(now).await;
    gate(&Credential::from_values(ring.accepted(now)), request, route)
}

/// The route's `{appointment_id}`: API Gateway's path parameter, or else the path's last segment (locally,
/// `cargo lambda watch` has no routes and hands the function its path).
pub fn appointment_id(request: &Request) -> Result<String, tour_core::app::AppError> {
    use lambda_http::RequestExt;
    request
        .path_parameters()
        .first("appointment_id")
        .map(str::to_owned)
        .or_else(|| {
            request
                .raw_http_path()
                .strip_prefix("/api/resman/tours/")
                .filter(|rest| !rest.is_empty())
                .map(str::to_owned)
        })
        .ok_or_else(|| tour_core::domain::InvalidField::new("appointment_id", "is required").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tour_core::domain::access::{Accounts, Role};

    const CHATBOT: &str = "chatbot-key-0123456789";
    const MANAGER: &str = "manager-key-0123456789";

    fn keys() -> Credentials {
        let values: Vec<Vec<u8>> = [
            Credential::issue("chatbot", Role::Chatbot, Accounts::All, CHATBOT),
            Credential::issue("manager", Role::Manager, Accounts::All, MANAGER),
        ]
        .into_iter()
        .map(|k| k.unwrap().to_value())
        .collect();
        Credential::from_values(values.iter().map(Vec::as_slice))
    }

    fn route(action: Action) -> Route {
        Route {
            method: Method::GET,
            allow: "GET, PUT",
            action,
        }
    }

    fn request(method: Method, key: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method(method)
            .uri("/api/resman/tours/availability");
        if let Some(key) = key {
            builder = builder.header("x-api-key", key);
        }
        builder.body(Body::Empty).unwrap()
    }

    fn error_of(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str::<serde_json::Value>(text).unwrap()["error"].clone(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_wrong_key_is_a_401_naming_the_header() {
        for key in [None, Some("wrong-key-0123456789"), Some("")] {
            let refusal = gate(&keys(), &request(Method::GET, key), &route(Action::ReadTour)).unwrap_err();
            assert_eq!(refusal.status(), 401);
            assert_eq!(error_of(&refusal)["field"], "x-api-key");
        }
    }

    #[test]
    fn the_right_key_passes_and_a_wrong_method_is_a_405_listing_the_paths_methods() {
        let key = Some(CHATBOT);
        let passed = gate(&keys(), &request(Method::GET, key), &route(Action::ReadTour)).unwrap();
        assert_eq!(passed.name, "chatbot");
        let refusal = gate(&keys(), &request(Method::DELETE, key), &route(Action::ReadTour)).unwrap_err();
        assert_eq!(refusal.status(), 405);
        assert_eq!(
            refusal.headers()["allow"],
            "GET, PUT",
            "RFC 9110: a 405 says which methods the path takes"
        );
    }

    #[test]
    fn the_key_is_checked_before_the_method_so_strangers_learn_nothing() {
        let refusal = gate(&keys(), &request(Method::DELETE, None), &route(Action::ReadTour)).unwrap_err();
        assert_eq!(refusal.status(), 401);
    }

    #[tokio::test]
    async fn a_role_that_may_not_do_it_gets_a_403_and_is_counted() {
        let manager = request(Method::GET, Some(MANAGER));
        let (refused, lines) =
            tour_core::metrics::capture(async { gate(&keys(), &manager, &route(Action::Book)) }).await;
        let refusal = refused.unwrap_err();
        assert_eq!(refusal.status(), 403);
        assert_eq!(error_of(&refusal)["code"], "forbidden");
        assert_eq!(tour_core::metrics::names(&lines), vec!["AccessRefusals"]);
        assert!(gate(&keys(), &manager, &route(Action::ReadFigures)).is_ok());
    }
}
