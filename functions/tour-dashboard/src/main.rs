//! `tour-dashboard`: `GET /dashboard`, the staff dashboard page, and `GET /dashboard/assets/{file}`, its script, style
//! and the vendored Chart.js. The page is static: it asks the manager for the API key and calls the metrics API with
//! it, so this function holds no secret and reads no table. Served by a function on the same API (rather than from
//! a bucket) so the page and the API share one origin, one deployment and the local stack's routes.

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Error, Request, Response};
use shared::http::ApiError;
use shared::http::serve;

const INDEX: &str = include_str!("../page/index.html");
const SCRIPT: &str = include_str!("../page/dashboard.js");
const STYLE: &str = include_str!("../page/dashboard.css");
const CHART_JS: &str = include_str!("../vendor/chart.umd.min.js");

/// Where the page finds the metrics API: empty in AWS (the same API, so the same origin), the local function's
/// address under the local stack.
struct Deps {
    api_base: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

/// The origin of an absolute base (`scheme://host[:port]`), which the page's policy lets it call.
fn origin(base: &str) -> Option<&str> {
    let (scheme, rest) = base.split_once("://")?;
    let host_len = rest.find('/').unwrap_or(rest.len());
    Some(&base[..scheme.len() + 3 + host_len])
}

fn policy(api_base: &str) -> String {
    let connect = origin(api_base).map_or_else(|| "'self'".to_owned(), |o| format!("'self' {o}"));
    format!(
        "default-src 'self'; connect-src {connect}; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
}

fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "dashboard.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
        "dashboard.css" => Some((STYLE, "text/css; charset=utf-8")),
        "chart.umd.min.js" => Some((CHART_JS, "text/javascript; charset=utf-8")),
        _ => None,
    }
}

fn page(deps: &Deps, body: String, content_type: &str, cache: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .header("content-security-policy", policy(&deps.api_base))
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .body(Body::Text(body))
        .unwrap_or_else(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "").into_response())
}

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    if request.method() != Method::GET {
        return ApiError::method_not_allowed("GET");
    }
    let path = request.uri().path();
    if path.ends_with("/dashboard/") {
        // The page's asset links are relative to `…/dashboard`: send a trailing slash there.
        return Response::builder()
            .status(StatusCode::PERMANENT_REDIRECT)
            .header(header::LOCATION, path.trim_end_matches('/'))
            .body(Body::Empty)
            .unwrap_or_else(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such page").into_response());
    }
    if path.ends_with("/dashboard") {
        let html = INDEX.replace("{{API_BASE}}", &escape(&deps.api_base));
        return page(deps, html, "text/html; charset=utf-8", "no-store");
    }
    let name = path.rsplit_once("/dashboard/assets/").map(|(_, name)| name);
    match name.and_then(asset) {
        Some((body, content_type)) => page(deps, body.to_owned(), content_type, "public, max-age=300"),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such page").into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let deps = Deps {
        api_base: std::env::var("METRICS_API_BASE").unwrap_or_default(),
    };
    serve(&deps, handle).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_lets_the_page_call_only_its_own_origin_and_the_apis() {
        assert_eq!(
            origin("http://127.0.0.1:9000/lambda-url/tour-metrics"),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(origin(""), None);
        assert!(policy("").contains("connect-src 'self';"));
        assert!(policy("https://api.example/x").contains("connect-src 'self' https://api.example;"));
        assert!(policy("").contains("script-src 'self';"));
    }

    #[test]
    fn the_api_base_is_escaped_into_the_page() {
        assert!(INDEX.contains("{{API_BASE}}"), "the page must carry the placeholder");
        assert_eq!(escape("\"><script>'"), "&quot;&gt;&lt;script&gt;&#39;");
    }

    #[test]
    fn only_the_pages_own_assets_are_served() {
        assert!(asset("chart.umd.min.js").is_some_and(|(body, _)| body.contains("Chart")));
        assert!(asset("../Cargo.toml").is_none());
    }
}
