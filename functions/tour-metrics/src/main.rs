//! `tour-metrics`: `GET /api/resman/tours/metrics`, `GET /api/resman/tours/trends` and both at once,
//! `GET /api/resman/tours/summary` (`?property_id&from&to`), a property's figures over a period of its local dates,
//! read from the daily rollups; and `GET /api/resman/tours/properties`, the properties its key reaches (the
//! dashboard's picker). Wiring only: the rules live in `tour_core::app::analytics`.

use lambda_http::http::Method;
use lambda_http::{Request, RequestExt};
use tour_core::app::analytics::{
    AnalyticsDeps, AnalyticsQuery, properties_in_reach, tour_metrics, tour_summary, tour_trends,
};
use tour_core::domain::access::{Action, Credential};
use tour_edge::http::{Route, answer};
use tour_edge::{Answer, Api, Error, serve_api};

async fn handle(api: &Api, caller: Credential, request: Request) -> Answer {
    let reach = api.reach(&caller);
    // One function, four routes: the path's last segment says which.
    let path = request.uri().path().trim_end_matches('/').to_owned();
    if path.ends_with("/properties") {
        return Ok(answer(properties_in_reach(&reach).await));
    }
    let params = request.query_string_parameters();
    let query = AnalyticsQuery::parse(params.first("property_id"), params.first("from"), params.first("to"))?;
    let (deps, now) = (
        AnalyticsDeps {
            properties: &reach,
            rollups: &api.store,
        },
        chrono::Utc::now(),
    );
    Ok(if path.ends_with("/trends") {
        answer(tour_trends(&deps, &query, now).await)
    } else if path.ends_with("/summary") {
        answer(tour_summary(&deps, &query, now).await)
    } else {
        answer(tour_metrics(&deps, &query, now).await)
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let api = tour_edge::config::ColdStart::begin().await.api(()).await?;
    serve_api(&api, Route::new(Method::GET, "GET", Action::ReadFigures), handle).await
}
