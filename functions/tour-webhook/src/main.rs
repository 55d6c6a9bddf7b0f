//! `tour-webhook`: ResMan's (or a relay's) signed change notices, through a function URL.
//! Wiring only: the rules live in `shared::app::webhook`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::changes::FeedDeps;
use shared::app::webhook::{NoticeOutcome, WebhookDeps, receive_change_notice};
use shared::config::{self, ColdStart};
use shared::http::response::error_response;
use shared::http::{ApiError, json, serve};

struct Deps {
    store: DynamoStore,
    queue: SqsSyncQueue,
    relays: shared::adapters::secrets::RotatingSecret,
}

/// The function URL's paths that take notices: its root, and the brief's `/api/resman/webhooks/tour-update`.
fn is_webhook_path(path: &str) -> bool {
    matches!(path.trim_end_matches('/'), "" | "/api/resman/webhooks/tour-update")
}

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    if !is_webhook_path(request.uri().path()) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "notices go to / or /api/resman/webhooks/tour-update",
        )
        .with_field("path")
        .into_response();
    }
    if request.method() != lambda_http::http::Method::POST {
        return ApiError::method_not_allowed("POST");
    }
    let signature = request
        .headers()
        .get("x-resman-signature")
        .and_then(|v| v.to_str().ok());
    let body: &[u8] = request.body().as_ref();
    let now = chrono::Utc::now();
    let ring = deps.relays.ring(now).await;
    let relays = shared::domain::access::Relay::from_values(ring.accepted(now));
    let app_deps = WebhookDeps {
        inbox: &deps.store,
        feed: FeedDeps {
            properties: &deps.store,
            calendar: &deps.store,
            tours: &deps.store,
            queue: &deps.queue,
        },
        relays: &relays,
    };
    match receive_change_notice(&app_deps, signature, body, now).await {
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
    let cold = ColdStart::begin().await;
    let deps = Deps {
        store: cold.store()?,
        queue: cold.sync_queue()?,
        relays: config::webhook_relays(&cold.secrets).await?,
    };
    serve(&deps, handle).await
}

#[cfg(test)]
mod tests {
    use super::is_webhook_path;

    #[test]
    fn notices_are_taken_at_the_root_and_at_the_briefs_path_only() {
        for path in [
            "/",
            "",
            "/api/resman/webhooks/tour-update",
            "/api/resman/webhooks/tour-update/",
        ] {
            assert!(is_webhook_path(path), "{path}");
        }
        for path in ["/api/resman/webhooks", "/hook", "/api/resman/webhooks/tour-update/x"] {
            assert!(!is_webhook_path(path), "{path}");
        }
    }
}
