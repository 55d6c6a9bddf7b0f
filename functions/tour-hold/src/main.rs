//! `tour-hold`: `POST /api/resman/tours/holds`. Wiring only: the rules live in `tour_core::domain::hold` and
//! `tour_core::app::holds`.

use lambda_http::{Request, http::Method, http::StatusCode};
use tour_core::app::holds::{HoldDeps, parse_hold_body, place_hold};
use tour_core::domain::access::{Action, Credential};
use tour_core::domain::{HoldToken, hold::HoldMinutes, hold::HoldsPerHour};
use tour_edge::http::{Route, json};
use tour_edge::{Answer, Api, Error, config, serve_api};

async fn handle(api: &Api<(HoldMinutes, HoldsPerHour)>, caller: Credential, request: Request) -> Answer {
    let command = parse_hold_body(request.body().as_ref())?;
    let deps = HoldDeps {
        properties: &api.reach(&caller),
        calendar: &api.store,
        holds: &api.store,
        minutes: api.with.0,
        bound: api.with.1,
        key: &caller.name,
    };
    let token = HoldToken::parse(&uuid::Uuid::new_v4().to_string())?;
    let held = place_hold(&deps, &command, token, chrono::Utc::now()).await?;
    Ok(json(StatusCode::CREATED, &held))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let minutes = config::checked("SLOT_HOLD_MINUTES", 5, HoldMinutes::new)?;
    let default_bound = HoldsPerHour::default().get().into();
    let bound = config::checked("HOLDS_PER_KEY_HOUR", default_bound, HoldsPerHour::new)?;
    let api = cold.api((minutes, bound)).await?;
    serve_api(&api, Route::new(Method::POST, "POST", Action::Hold), handle).await
}
