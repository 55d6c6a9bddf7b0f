//! `book-tour`: `POST /api/resman/tours/book`. Wiring only: the rules live in `shared::app::booking`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::resman::HttpResMan;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::booking::{BookingDeps, book_tour, parse_booking_body};
use shared::app::reach::InReach;
use shared::app::sync::Attempts;
use shared::config::{self, ColdStart};
use shared::domain::access::Action;
use shared::domain::booking::BookingId;
use shared::http::response::{error_response, raw_json};
use shared::http::{Route, check, serve};
use std::time::Duration;

struct Deps {
    store: DynamoStore,
    resman: HttpResMan,
    queue: SqsSyncQueue,
    keys: shared::adapters::secrets::RotatingSecret,
    attempts: Attempts,
}

const ROUTE: Route = Route {
    method: Method::POST,
    allow: "POST",
    action: Action::Book,
};

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    let caller = match check(&deps.keys, &request, &ROUTE).await {
        Ok(caller) => caller,
        Err(refusal) => return *refusal,
    };
    // Only the properties of the companies the key may touch; any other reads as unknown.
    let reach = InReach::new(&deps.store, &caller.accounts);
    let command = match parse_booking_body(request.body().as_ref()) {
        Ok(command) => command,
        Err(err) => return error_response(&err),
    };
    let idempotency_key = request.headers().get("idempotency-key").and_then(|v| v.to_str().ok());
    let app_deps = BookingDeps {
        properties: &reach,
        calendar: &deps.store,
        tours: &deps.store,
        holds: &deps.store,
        resman: &deps.resman,
        queue: &deps.queue,
        attempts: deps.attempts,
        clock: &chrono::Utc::now,
    };
    let booking_id = BookingId::from_uuid(uuid::Uuid::new_v4());
    match book_tour(&app_deps, &command, idempotency_key, booking_id, chrono::Utc::now()).await {
        Ok(booked) => raw_json(booked.status, booked.body, None),
        Err(err) => error_response(&err),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let mut resman_settings = config::resman(&cold.secrets).await?;
    // Three attempts must fit the API's 30-second budget: 8 s each by default, with short back-off between.
    resman_settings.timeout = config::optional_seconds("BOOKING_RESMAN_TIMEOUT_SECONDS", 8)?;
    let deps = Deps {
        store: cold.store()?,
        resman: config::resman_client(&cold.secrets, resman_settings)?,
        queue: cold.sync_queue()?,
        keys: config::api_keys(&cold.secrets).await?,
        attempts: Attempts {
            count: 3,
            backoff: Duration::from_millis(250),
        },
    };
    serve(&deps, handle).await
}
