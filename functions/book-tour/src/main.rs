//! `book-tour`: `POST /api/resman/tours/book`. Wiring only: the rules live in `tour_core::app::booking`.

use lambda_http::{Request, http::Method};
use tour_aws::{resman::HttpResMan, sqs::SqsSyncQueue};
use tour_core::app::booking::{BookingDeps, book_tour, parse_booking_body};
use tour_core::app::sync::Attempts;
use tour_core::domain::{BookingId, access::Action, access::Credential};
use tour_edge::http::{Route, idempotency_key, response::done};
use tour_edge::{Answer, Api, Error, config, serve_api};

async fn handle(api: &Api<(HttpResMan, SqsSyncQueue)>, caller: Credential, request: Request) -> Answer {
    let command = parse_booking_body(request.body().as_ref())?;
    let (key, id) = (idempotency_key(&request), BookingId::from_uuid(uuid::Uuid::new_v4()));
    let deps = BookingDeps {
        properties: &api.reach(&caller),
        calendar: &api.store,
        tours: &api.store,
        holds: &api.store,
        resman: &api.with.0,
        queue: &api.with.1,
        attempts: Attempts::WITHIN_A_REQUEST,
        clock: &chrono::Utc::now,
    };
    let booked = book_tour(&deps, &command, key, id, chrono::Utc::now()).await?;
    Ok(done(booked.outcome, booked.body))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let mut settings = cold.resman_settings().await?;
    settings.timeout = config::optional_seconds("BOOKING_RESMAN_TIMEOUT_SECONDS", 8)?;
    let api = cold.api((cold.resman(settings)?, cold.sync_queue()?)).await?;
    serve_api(&api, Route::new(Method::POST, "POST", Action::Book), handle).await
}
