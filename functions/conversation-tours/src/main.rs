//! `conversation-tours`: `GET /api/resman/tours?conversation_id=`, the conversation context the chatbot reads
//! back (each tour's time, agent, status and sync state). Wiring only: the rules live in `shared::app::booking`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::secrets::SecretsManager;
use shared::app::booking::conversation_tours;
use shared::domain::booking::ConversationId;
use shared::http::auth::ApiKeys;
use shared::http::response::error_response;
use shared::http::{gate, json};
use shared::{config, telemetry};

struct Deps {
    store: DynamoStore,
    keys: ApiKeys,
}

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    if let Some(refusal) = gate(&deps.keys, &request, Method::GET) {
        return refusal;
    }
    let params = request.query_string_parameters();
    let conversation = match params.first("conversation_id").map(ConversationId::parse) {
        Some(Ok(id)) => id,
        Some(Err(invalid)) => return error_response(&invalid.into()),
        None => return error_response(&shared::domain::InvalidField::new("conversation_id", "is required").into()),
    };
    match conversation_tours(&deps.store, &deps.store, &conversation).await {
        Ok(view) => json(StatusCode::OK, &view),
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
        keys: config::api_keys(&secrets).await?,
    };
    let deps = &deps;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(handle(deps, request).await)
    }))
    .await
}
