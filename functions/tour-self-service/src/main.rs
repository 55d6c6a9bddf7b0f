//! `tour-self-service`: the pages behind the signed links in a prospect's and the staff's emails (`/tour...`). No API
//! key: the signed token is the credential. Wiring only: the routes live in `tour_edge::http::page`, the rules in
//! `tour_core::app::self_service`.

use lambda_http::{Body, Request, Response};
use tour_aws::{dynamo::DynamoStore, sqs::SqsSyncQueue};
use tour_core::app::{lifecycle::UpdateDeps, self_service::SelfServiceDeps};
use tour_core::domain::link::LinkKey;
use tour_edge::{Error, config, http::page, serve_http};

async fn handle((store, queue, key): &(DynamoStore, SqsSyncQueue, LinkKey), request: Request) -> Response<Body> {
    let app = SelfServiceDeps {
        update: UpdateDeps::over(store, queue),
        ratings: store,
        staff_ratings: store,
        messages: store,
        key,
    };
    page::respond(&app, &request, chrono::Utc::now()).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let key = config::link_key(&cold.secrets).await?;
    serve_http(&(cold.store()?, cold.sync_queue()?, key), handle).await
}
