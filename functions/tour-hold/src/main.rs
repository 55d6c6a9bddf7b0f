//! `tour-hold`: `POST /api/resman/tours/holds`. Wiring only: the rules live in `shared::domain::hold` and
//! `shared::app::holds`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::adapters::dynamo::DynamoStore;
use shared::app::holds::{HoldDeps, parse_hold_body, place_hold};
use shared::app::reach::InReach;
use shared::config::{self, ColdStart};
use shared::domain::HoldToken;
use shared::domain::access::Action;
use shared::domain::hold::{HoldMinutes, HoldsPerHour};
use shared::http::response::error_response;
use shared::http::{Route, check, json, serve};

struct Deps {
    store: DynamoStore,
    keys: shared::adapters::secrets::RotatingSecret,
    minutes: HoldMinutes,
    bound: HoldsPerHour,
}

const ROUTE: Route = Route {
    method: Method::POST,
    allow: "POST",
    action: Action::Hold,
};

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    let caller = match check(&deps.keys, &request, &ROUTE).await {
        Ok(caller) => caller,
        Err(refusal) => return *refusal,
    };
    // Only the properties of the companies the key may touch; any other reads as unknown.
    let reach = InReach::new(&deps.store, &caller.accounts);
    let command = match parse_hold_body(request.body().as_ref()) {
        Ok(command) => command,
        Err(err) => return error_response(&err),
    };
    let app_deps = HoldDeps {
        properties: &reach,
        calendar: &deps.store,
        holds: &deps.store,
        minutes: deps.minutes,
        bound: deps.bound,
        key: &caller.name,
    };
    let token = match HoldToken::parse(&uuid::Uuid::new_v4().to_string()) {
        Ok(token) => token,
        Err(invalid) => return error_response(&invalid.into()),
    };
    match place_hold(&app_deps, &command, token, chrono::Utc::now()).await {
        Ok(view) => json(StatusCode::CREATED, &view),
        Err(err) => error_response(&err),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let minutes = HoldMinutes::new(config::optional_number("SLOT_HOLD_MINUTES", 5)?).map_err(|e| {
        config::ConfigError::Invalid {
            name: "SLOT_HOLD_MINUTES",
            reason: e.reason,
        }
    })?;
    let bound = HoldsPerHour::new(config::optional_number(
        "HOLDS_PER_KEY_HOUR",
        u32::from(HoldsPerHour::default().get()),
    )?)
    .map_err(|e| config::ConfigError::Invalid {
        name: "HOLDS_PER_KEY_HOUR",
        reason: e.reason,
    })?;
    let deps = Deps {
        store: cold.store()?,
        keys: config::api_keys(&cold.secrets).await?,
        minutes,
        bound,
    };
    serve(&deps, handle).await
}
