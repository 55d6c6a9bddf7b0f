//! The dashboard's files: the page (rendered once per request with the API's address, escaped by minijinja as HTML),
//! its script and style, the vendored Chart.js, and the content security policy they are served under.

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use tour_edge::http::ApiError;

const INDEX: &str = include_str!("../page/index.html");
const SCRIPT: &str = include_str!("../page/dashboard.js");
const STYLE: &str = include_str!("../page/dashboard.css");
const CHART_JS: &str = include_str!("../vendor/chart.umd.min.js");

/// The page, with `api_base` in its `api-base` meta tag.
fn index(api_base: &str) -> Result<String, minijinja::Error> {
    let mut pages = minijinja::Environment::new();
    pages.add_template("index.html", INDEX)?;
    pages
        .get_template("index.html")?
        .render(minijinja::context! { api_base })
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

/// One of the page's own assets, by name, with its content type.
fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "dashboard.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
        "dashboard.css" => Some((STYLE, "text/css; charset=utf-8")),
        "chart.umd.min.js" => Some((CHART_JS, "text/javascript; charset=utf-8")),
        _ => None,
    }
}

/// A file of the dashboard, under its policy.
fn file(api_base: &str, body: String, content_type: &str, cache: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .header("content-security-policy", policy(api_base))
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .body(Body::Text(body))
        .unwrap_or_else(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "").into_response())
}

/// A request for the dashboard: the page at `…/dashboard`, its assets under `…/dashboard/assets/`, GET only.
pub fn respond(api_base: &str, request: &Request) -> Response<Body> {
    let (path, not_found) = (
        request.uri().path(),
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such page"),
    );
    if request.method() != Method::GET {
        ApiError::method_not_allowed("GET")
    } else if path.ends_with("/dashboard/") {
        // The page's asset links are relative to `…/dashboard`: send a trailing slash there.
        let to = path.trim_end_matches('/');
        let moved = Response::builder()
            .status(StatusCode::PERMANENT_REDIRECT)
            .header(header::LOCATION, to);
        moved.body(Body::Empty).unwrap_or_else(|_| not_found.into_response())
    } else if path.ends_with("/dashboard") {
        match index(api_base) {
            Ok(html) => file(api_base, html, "text/html; charset=utf-8", "no-store"),
            Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "").into_response(),
        }
    } else {
        match path.rsplit_once("/dashboard/assets/").and_then(|(_, name)| asset(name)) {
            Some((body, content_type)) => file(api_base, body.to_owned(), content_type, "public, max-age=300"),
            None => not_found.into_response(),
        }
    }
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
        let page = index("\"><script>'").unwrap();
        assert!(page.contains(r#"content="&quot;&gt;&lt;script&gt;&#x27;""#), "{page}");
        assert!(!page.contains("<script>'"));
        // minijinja escapes `/` too; the browser decodes the attribute back to the address.
        let page = index("http://127.0.0.1:9000").unwrap();
        assert!(page.contains(r#"content="http:&#x2f;&#x2f;127.0.0.1:9000""#), "{page}");
    }

    #[test]
    fn only_the_pages_own_assets_are_served() {
        assert!(asset("chart.umd.min.js").is_some_and(|(body, _)| body.contains("Chart")));
        assert!(asset("../Cargo.toml").is_none());
    }

    fn get(path: &str) -> Response<Body> {
        let request = lambda_http::http::Request::builder()
            .uri(path)
            .body(Body::Empty)
            .unwrap();
        respond("", &request)
    }

    #[test]
    fn the_page_its_assets_and_nothing_else_are_served() {
        let page = get("/dashboard");
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(get("/dashboard/assets/dashboard.js").status(), 200);
        assert_eq!(get("/dashboard/assets/../Cargo.toml").status(), 404);
        let moved = get("/dashboard/");
        assert_eq!(
            (moved.status().as_u16(), moved.headers()["location"].to_str().unwrap()),
            (308, "/dashboard")
        );
    }
}
