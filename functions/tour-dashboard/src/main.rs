//! `tour-dashboard`: `GET /dashboard`, the staff dashboard page, and `GET /dashboard/assets/{file}`, its script, style
//! and the vendored Chart.js. The page is static: it asks the manager for the API key and calls the metrics API with
//! it, so this function holds no secret and reads no table. Served by a function on the same API (rather than from
//! a bucket) so the page and the API share one origin, one deployment and the local stack's routes.

mod site;

use lambda_http::{Body, Request, Response};
use tour_edge::{Error, serve_http};

async fn handle(api_base: &str, request: Request) -> Response<Body> {
    site::respond(api_base, &request)
}

/// `METRICS_API_BASE`: where the page finds the metrics API; empty in AWS (the same API, so the same origin), the
/// local function's address under the local stack.
#[tokio::main]
async fn main() -> Result<(), Error> {
    tour_edge::telemetry::init();
    let api_base = std::env::var("METRICS_API_BASE").unwrap_or_default();
    serve_http(api_base.as_str(), handle).await
}
