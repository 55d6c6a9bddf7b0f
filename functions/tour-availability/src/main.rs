//! `tour-availability`: `GET /api/resman/tours/availability?property_id&date&tour_type`.
//! Wiring only: the rules live in `tour_core::app::availability`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Request, RequestExt};
use tour_core::app::availability::{AvailabilityDeps, AvailabilityQuery, Source, availability};
use tour_core::domain::access::{Action, Credential};
use tour_edge::http::{Route, json};
use tour_edge::{Answer, Api, Error, config, serve_api};

const ROUTE: Route = Route::new(Method::GET, "GET", Action::ReadAvailability);

async fn handle(api: &Api<chrono::Duration>, caller: Credential, request: Request) -> Answer {
    let params = request.query_string_parameters();
    let param = |name| params.first(name);
    let query = AvailabilityQuery::parse(param("property_id"), param("date"), param("tour_type"))?;
    let deps = AvailabilityDeps {
        calendar: &api.store,
        cache: &api.store,
        cache_ttl: api.with,
        reach: &caller.accounts,
    };
    let (view, source) = availability(&deps, &query, chrono::Utc::now()).await?;
    let (cache_hit, slots) = (source == Source::Cache, view.available_slots.len());
    tracing::info!(property_id = %query.property_id, date = %query.date, cache_hit, slots, "availability");
    Ok(json(StatusCode::OK, &view))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let ttl = chrono::Duration::from_std(config::optional_seconds("AVAILABILITY_CACHE_TTL_SECONDS", 60)?)?;
    serve_api(&cold.api(ttl).await?, ROUTE, handle).await
}
