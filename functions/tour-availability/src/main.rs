//! `tour-availability`: `GET /api/resman/tours/availability?property_id&date&tour_type`.
//! Wiring only: the rules live in `shared::app::availability`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::adapters::dynamo::DynamoStore;
use shared::app::availability::{AvailabilityDeps, AvailabilityQuery, Source, availability};
use shared::config::{self, ColdStart};
use shared::domain::access::Action;
use shared::http::response::error_response;
use shared::http::{Route, check, json, serve};

struct Deps {
    store: DynamoStore,
    keys: shared::adapters::secrets::RotatingSecret,
    cache_ttl: chrono::Duration,
}

const ROUTE: Route = Route {
    method: Method::GET,
    allow: "GET",
    action: Action::ReadAvailability,
};

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    let caller = match check(&deps.keys, &request, &ROUTE).await {
        Ok(caller) => caller,
        Err(refusal) => return *refusal,
    };
    let params = request.query_string_parameters();
    let query = match AvailabilityQuery::parse(
        params.first("property_id"),
        params.first("date"),
        params.first("tour_type"),
    ) {
        Ok(query) => query,
        Err(invalid) => return error_response(&invalid.into()),
    };
    let app_deps = AvailabilityDeps {
        calendar: &deps.store,
        cache: &deps.store,
        cache_ttl: deps.cache_ttl,
        reach: &caller.accounts,
    };
    match availability(&app_deps, &query, chrono::Utc::now()).await {
        Ok((view, source)) => {
            tracing::info!(property_id = %query.property_id, date = %query.date, cache_hit = source == Source::Cache, slots = view.available_slots.len(), "availability");
            json(StatusCode::OK, &view)
        }
        Err(err) => error_response(&err),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let ttl = config::optional_seconds("AVAILABILITY_CACHE_TTL_SECONDS", 60)?;
    let deps = Deps {
        store: cold.store()?,
        keys: config::api_keys(&cold.secrets).await?,
        cache_ttl: chrono::Duration::from_std(ttl)?,
    };
    serve(&deps, handle).await
}
