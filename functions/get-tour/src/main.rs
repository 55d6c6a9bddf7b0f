//! `get-tour`: `GET /api/resman/tours/{appointment_id}`, one tour as it now stands, with its version and history;
//! by our id (`tour_...`) or by ResMan's appointment id. Wiring only: the rules live in `shared::app::booking`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use shared::app::booking::tour_view;
use shared::app::reach::InReach;
use shared::config::{TableReader, table_reader};
use shared::domain::access::Action;
use shared::http::response::error_response;
use shared::http::{Route, answer, appointment_id, check, serve};

const ROUTE: Route = Route {
    method: Method::GET,
    allow: "GET, PUT",
    action: Action::ReadTour,
};

async fn handle(deps: &TableReader, request: Request) -> Response<Body> {
    let caller = match check(&deps.keys, &request, &ROUTE).await {
        Ok(caller) => caller,
        Err(refusal) => return *refusal,
    };
    // Only the properties of the companies the key may touch; any other reads as unknown.
    let reach = InReach::new(&deps.store, &caller.accounts);
    let Some(id) = appointment_id(&request) else {
        return error_response(&shared::domain::InvalidField::new("appointment_id", "is required").into());
    };
    answer(tour_view(&reach, &deps.store, &deps.store, &id).await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(&table_reader().await?, handle).await
}
