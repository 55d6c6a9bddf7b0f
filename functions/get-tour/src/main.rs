//! `get-tour`: `GET /api/resman/tours/{appointment_id}`, one tour as it now stands, with its version and history;
//! by our id (`tour_...`) or by ResMan's appointment id. Wiring only: the rules live in `tour_core::app::booking`.

use lambda_http::Request;
use lambda_http::http::Method;
use tour_core::app::booking::tour_view;
use tour_core::domain::access::{Action, Credential};
use tour_edge::http::{Route, answer, appointment_id};
use tour_edge::{Answer, Api, Error, serve_api};

async fn handle(api: &Api, caller: Credential, request: Request) -> Answer {
    let id = appointment_id(&request)?;
    Ok(answer(
        tour_view(&api.reach(&caller), &api.store, &api.store, &api.store, &id).await,
    ))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let api = tour_edge::config::ColdStart::begin().await.api(()).await?;
    serve_api(&api, Route::new(Method::GET, "GET, PUT", Action::ReadTour), handle).await
}
