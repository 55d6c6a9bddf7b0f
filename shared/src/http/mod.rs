//! The HTTP edge: the API key check, reading requests, and the one mapping from errors to JSON responses.

pub mod auth;
pub mod page;
pub mod response;

pub use response::{ApiError, answer, json};

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// The gate every chatbot endpoint passes first: its `x-api-key`, then the request's method, which must be `method`
/// (the one this function serves); a 405 lists every method of the path in `allow` (`"GET, PUT"`: API Gateway
/// routes the path's other methods to one of its functions, which answers for all).
/// Returns the refusal to send, or `None` to go on.
pub fn gate(keys: &auth::ApiKeys, request: &Request, method: Method, allow: &str) -> Option<Response<Body>> {
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
        return Some(ApiError::method_not_allowed(allow));
    }
    None
}

/// [`gate`] with the keys a rotating secret accepts now (read again from Secrets Manager when due).
pub async fn check(
    keys: &crate::adapters::secrets::RotatingSecret,
    request: &Request,
    method: Method,
    allow: &str,
) -> Option<Response<Body>> {
    let now = chrono::Utc::now();
    gate(
        &auth::ApiKeys::accepted_by(&keys.ring(now).await, now),
        request,
        method,
        allow,
    )
}

/// A request handler of an HTTP function: `async fn handle(deps: &Deps, request: Request) -> Response<Body>`.
/// (A trait rather than a plain `Fn` bound, so the answer's future may borrow the dependencies.)
pub trait Handler<'a, D: ?Sized + 'a> {
    type Answer: std::future::Future<Output = Response<Body>> + Send + 'a;
    fn call(&self, deps: &'a D, request: Request) -> Self::Answer;
}

impl<'a, D: ?Sized + 'a, F, A> Handler<'a, D> for F
where
    F: Fn(&'a D, Request) -> A,
    A: std::future::Future<Output = Response<Body>> + Send + 'a,
{
    type Answer = A;
    fn call(&self, deps: &'a D, request: Request) -> A {
        self(deps, request)
    }
}

/// Serves the function's requests with `handle` and the dependencies built at cold start, until the runtime stops:
/// the end of every HTTP function's `main`.
pub async fn serve<D, H>(deps: &D, handle: H) -> Result<(), lambda_http::Error>
where
    D: Sync + ?Sized,
    H: for<'a> Handler<'a, D> + Sync,
{
    let handle = &handle;
    lambda_http::run(lambda_http::service_fn(move |request: Request| async move {
        Ok::<_, lambda_http::Error>(handle.call(deps, request).await)
    }))
    .await
}

/// The route's `{appointment_id}`: API Gateway's path parameter, or else the path's last segment (locally,
/// `cargo lambda watch` has no routes and hands the function its path).
pub fn appointment_id(request: &Request) -> Option<String> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> auth::ApiKeys {
        auth::ApiKeys::new(vec!["chatbot-key-0123456789".into()]).unwrap()
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

    fn field_of(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str::<serde_json::Value>(text).unwrap()["error"]["field"].clone(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_wrong_key_is_a_401_naming_the_header() {
        for key in [None, Some("wrong-key-0123456789"), Some("")] {
            let refusal = gate(&keys(), &request(Method::GET, key), Method::GET, "GET").expect("refused");
            assert_eq!(refusal.status(), 401);
            assert_eq!(field_of(&refusal), "x-api-key");
        }
    }

    #[test]
    fn the_right_key_passes_and_a_wrong_method_is_a_405_listing_the_paths_methods() {
        let key = Some("chatbot-key-0123456789");
        assert!(gate(&keys(), &request(Method::GET, key), Method::GET, "GET, PUT").is_none());
        let refusal = gate(&keys(), &request(Method::DELETE, key), Method::GET, "GET, PUT").unwrap();
        assert_eq!(refusal.status(), 405);
        assert_eq!(
            refusal.headers()["allow"],
            "GET, PUT",
            "RFC 9110: a 405 says which methods the path takes"
        );
    }

    #[test]
    fn the_key_is_checked_before_the_method_so_strangers_learn_nothing() {
        let refusal = gate(&keys(), &request(Method::DELETE, None), Method::GET, "GET").unwrap();
        assert_eq!(refusal.status(), 401);
    }
}
