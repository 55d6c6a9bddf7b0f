//! `tour-metrics`: `GET /api/resman/tours/metrics` and `GET /api/resman/tours/trends` (`?property_id&from&to`), a
//! property's figures over a period of its local dates, and `GET /api/resman/tours/properties`, the properties its
//! key reaches (the dashboard's picker). Wiring only: the rules live in `shared::domain::analytics`
//! and `shared::app::analytics`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::app::analytics::{AnalyticsDeps, AnalyticsQuery, properties_in_reach, tour_metrics, tour_trends};
use shared::app::reach::InReach;
use shared::config::{TableReader, table_reader};
use shared::domain::access::Action;
use shared::http::response::error_response;
use shared::http::{Route, answer, check, serve};

const ROUTE: Route = Route {
    method: Method::GET,
    allow: "GET",
    action: Action::ReadFigures,
};

async fn handle(deps: &TableReader, request: Request) -> Response<Body> {
    let caller = match check(&deps.keys, &request, &ROUTE).await {
        Ok(caller) => caller,
        Err(refusal) => return *refusal,
    };
    // Only the properties of the companies the key may touch; any other reads as unknown.
    let reach = InReach::new(&deps.store, &caller.accounts);
    let path = request.uri().path().trim_end_matches('/').to_owned();
    if path.ends_with("/properties") {
        return answer(properties_in_reach(&reach).await);
    }
    let params = request.query_string_parameters();
    let query = match AnalyticsQuery::parse(params.first("property_id"), params.first("from"), params.first("to")) {
        Ok(query) => query,
        Err(invalid) => return error_response(&invalid.into()),
    };
    let app_deps = AnalyticsDeps {
        properties: &reach,
        analytics: &deps.store,
    };
    let now = chrono::Utc::now();
    // One function, two routes: the path's last segment says which figures.
    if path.ends_with("/trends") {
        answer(tour_trends(&app_deps, &query, now).await)
    } else {
        answer(tour_metrics(&app_deps, &query, now).await)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(&table_reader().await?, handle).await
}
