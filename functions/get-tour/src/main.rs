//! `get-tour`: `GET /api/resman/tours/{appointment_id}`, one tour as it now stands, with its version and history;
//! by our id (`tour_...`) or by ResMan's appointment id. Wiring only: the rules live in `shared::app::booking`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use shared::app::booking::tour_view;
use shared::config::{TableReader, table_reader};
use shared::http::response::error_response;
use shared::http::{answer, appointment_id, check, serve};

async fn handle(deps: &TableReader, request: Request) -> Response<Body> {
    if let Some(refusal) = check(&deps.keys, &request, Method::GET, "GET, PUT").await {
        return refusal;
    }
    let Some(id) = appointment_id(&request) else {
        return error_response(&shared::domain::InvalidField::new("appointment_id", "is required").into());
    };
    answer(tour_view(&deps.store, &deps.store, &deps.store, &id).await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(&table_reader().await?, handle).await
}
