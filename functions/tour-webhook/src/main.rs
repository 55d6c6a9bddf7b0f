//! `tour-webhook`: ResMan's (or a relay's) signed change notices, through a function URL, at its root or the brief's
//! `/api/resman/webhooks/tour-update`. Wiring only: the rules live in `tour_core::app::webhook`.

use lambda_http::{Body, Request, Response};
use tour_aws::{dynamo::DynamoStore, secrets::RotatingSecret, sqs::SqsSyncQueue};
use tour_core::app::{changes::FeedDeps, webhook::WebhookDeps, webhook::receive_change_notice};
use tour_core::domain::access::Relay;
use tour_edge::http::notice::{NOTICE_PATHS, answer_notice, refuse_elsewhere, signature};
use tour_edge::{Error, config, serve_http};

async fn handle(
    (store, queue, relays): &(DynamoStore, SqsSyncQueue, RotatingSecret),
    request: Request,
) -> Response<Body> {
    if let Some(refusal) = refuse_elsewhere(&request, NOTICE_PATHS) {
        return refusal;
    }
    let now = chrono::Utc::now();
    let relays = Relay::from_values(relays.ring(now).await.accepted(now));
    let deps = WebhookDeps {
        inbox: store,
        feed: FeedDeps::over(store, queue),
        relays: &relays,
    };
    answer_notice(receive_change_notice(&deps, signature(&request), request.body().as_ref(), now).await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    let relays = config::webhook_relays(&cold.secrets).await?;
    serve_http(&(cold.store()?, cold.sync_queue()?, relays), handle).await
}
