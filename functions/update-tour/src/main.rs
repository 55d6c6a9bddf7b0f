//! `update-tour`: `PUT /api/resman/tours/{appointment_id}`, the brief's `UpdateTourRequest`: confirm, move, cancel,
//! complete or mark a no-show, add staff notes or the outcome; by our id (`tour_...`) or ResMan's appointment id.
//! Answers the tour as it now stands; ResMan and the chatbot's callback are written afterwards from the outbox, so
//! the answer never waits on them. Wiring only: the rules live in `shared::app::lifecycle`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::AppError;
use shared::app::lifecycle::{UpdateDeps, update_tour};
use shared::app::reach::InReach;
use shared::config::{self, ColdStart};
use shared::domain::InvalidField;
use shared::domain::access::Action;
use shared::domain::update::{MAX_UPDATE_BYTES, UpdateTourCommand};
use shared::http::response::{error_response, raw_json};
use shared::http::{Route, appointment_id, check, serve};

struct Deps {
    store: DynamoStore,
    queue: SqsSyncQueue,
    keys: shared::adapters::secrets::RotatingSecret,
}

const ROUTE: Route = Route {
    method: Method::PUT,
    allow: "GET, PUT",
    action: Action::ChangeTour,
};

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    let caller = match check(&deps.keys, &request, &ROUTE).await {
        Ok(caller) => caller,
        Err(refusal) => return *refusal,
    };
    // Only the properties of the companies the key may touch; any other reads as unknown.
    let reach = InReach::new(&deps.store, &caller.accounts);
    let Some(id) = appointment_id(&request) else {
        return error_response(&InvalidField::new("appointment_id", "is required").into());
    };
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_UPDATE_BYTES {
        return error_response(&AppError::TooLarge(MAX_UPDATE_BYTES));
    }
    let command = match UpdateTourCommand::from_body(body) {
        Ok(command) => command,
        Err(invalid) => return error_response(&invalid.into()),
    };
    let idempotency_key = request.headers().get("idempotency-key").and_then(|v| v.to_str().ok());
    let app_deps = UpdateDeps {
        properties: &reach,
        calendar: &deps.store,
        tours: &deps.store,
        queue: &deps.queue,
    };
    match update_tour(&app_deps, &id, &command, idempotency_key, chrono::Utc::now()).await {
        Ok(updated) => raw_json(updated.status, updated.body, None),
        Err(err) => error_response(&err),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let deps = Deps {
        store: cold.store()?,
        queue: cold.sync_queue()?,
        keys: config::api_keys(&cold.secrets).await?,
    };
    serve(&deps, handle).await
}
