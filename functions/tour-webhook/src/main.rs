//! `tour-webhook`: ResMan's (or a relay's) signed change notices, through a function URL.
//! Wiring only: the rules live in `shared::app::webhook`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::secrets::SecretsManager;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::changes::FeedDeps;
use shared::app::webhook::{NoticeOutcome, WebhookDeps, receive_change_notice};
use shared::http::response::error_response;
use shared::http::{ApiError, json};
use shared::{config, telemetry};

struct Deps {
    store: DynamoStore,
    queue: SqsSyncQueue,
    secret: Vec<u8>,
}

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    if request.method() != lambda_http::http::Method::POST {
        return ApiError::method_not_allowed(&lambda_http::http::Method::POST);
    }
    let signature = request
        .headers()
        .get("x-resman-signature")
        .and_then(|v| v.to_str().ok());
    let body: &[u8] = request.body().as_ref();
    let app_deps = WebhookDeps {
        inbox: &deps.store,
        feed: FeedDeps {
            properties: &deps.store,
            calendar: &deps.store,
            tours: &deps.store,
            queue: &deps.queue,
        },
        secret: &deps.secret,
    };
    match receive_change_notice(&app_deps, signature, body, chrono::Utc::now()).await {
        Ok(NoticeOutcome::Accepted(notice, effect)) => {
            tracing::info!(appointment_id = %notice.appointment_id, status = notice.status.as_resman(), effect = ?effect, "change notice accepted");
            json(StatusCode::OK, &serde_json::json!({ "status": "accepted" }))
        }
        Ok(NoticeOutcome::Duplicate) => json(StatusCode::OK, &serde_json::json!({ "status": "duplicate" })),
        Err(err) => error_response(&err),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = config::aws().await;
    let secrets = SecretsManager::new(&sdk);
    let deps = Deps {
        store: DynamoStore::new(&sdk, config::required("TABLE_NAME")?),
        queue: SqsSyncQueue::new(&sdk, config::required("SYNC_QUEUE_URL")?),
        secret: config::webhook_secret(&secrets).await?,
    };
    let deps = &deps;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handle(deps, request).await)
    }))
    .await
}
