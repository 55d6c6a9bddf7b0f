//! `update-tour`: `PUT /api/resman/tours/{appointment_id}`, the brief's `UpdateTourRequest`: confirm, move, cancel,
//! complete or mark a no-show, add staff notes or the outcome; by our id (`tour_...`) or ResMan's appointment id.
//! Answers the tour as it now stands; ResMan and the chatbot's callback are written afterwards from the outbox, so
//! the answer never waits on them. Wiring only: the rules live in `tour_core::app::lifecycle`.

use lambda_http::Request;
use lambda_http::http::Method;
use tour_aws::sqs::SqsSyncQueue;
use tour_core::app::lifecycle::{UpdateDeps, parse_update_body, update_tour};
use tour_core::domain::access::{Action, Credential};
use tour_core::ports::Outcome;
use tour_edge::http::{Route, appointment_id, idempotency_key, response::done};
use tour_edge::{Answer, Api, Error, serve_api};

async fn handle(api: &Api<SqsSyncQueue>, caller: Credential, request: Request) -> Answer {
    let id = appointment_id(&request)?;
    let command = parse_update_body(request.body().as_ref())?;
    let reach = api.reach(&caller);
    let deps = UpdateDeps {
        properties: &reach,
        calendar: &api.store,
        tours: &api.store,
        queue: &api.with,
    };
    let updated = update_tour(&deps, &id, &command, idempotency_key(&request), chrono::Utc::now()).await?;
    Ok(done(Outcome::Updated, updated.body))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = tour_edge::config::ColdStart::begin().await;
    let api = cold.api(cold.sync_queue()?).await?;
    serve_api(&api, Route::new(Method::PUT, "GET, PUT", Action::ChangeTour), handle).await
}
