//! The change-notice webhook's edge: which paths take notices, and how a notice's outcome is answered.

use super::response::{ApiError, error_response, json};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use tour_core::app::AppError;
use tour_core::app::webhook::NoticeOutcome;

/// The function URL's paths that take notices: its root, and the brief's `/api/resman/webhooks/tour-update`.
pub const NOTICE_PATHS: &[&str] = &["", "/api/resman/webhooks/tour-update"];

fn takes_notices(paths: &[&str], path: &str) -> bool {
    paths.contains(&path.trim_end_matches('/'))
}

/// A 404 for a path that takes no notices, a 405 for any method but `POST`; `None` for a notice to read.
pub fn refuse_elsewhere(request: &Request, paths: &[&str]) -> Option<Response<Body>> {
    if !takes_notices(paths, request.uri().path()) {
        let refusal = ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "notices go to / or /api/resman/webhooks/tour-update",
        );
        return Some(refusal.with_field("path").into_response());
    }
    (request.method() != Method::POST).then(|| ApiError::method_not_allowed("POST"))
}

/// The notice's `X-ResMan-Signature` header, when it has one.
pub fn signature(request: &Request) -> Option<&str> {
    request
        .headers()
        .get("x-resman-signature")
        .and_then(|v| v.to_str().ok())
}

/// `{"status": "accepted"}` for a new notice, `{"status": "duplicate"}` for one already taken (both 200, so the
/// sender stops retrying), or the mapped error.
pub fn answer_notice(outcome: Result<NoticeOutcome, AppError>) -> Response<Body> {
    match outcome {
        Ok(NoticeOutcome::Accepted(notice, effect)) => {
            let status = notice.status.as_resman();
            tracing::info!(appointment_id = %notice.appointment_id, status, effect = ?effect, "change notice accepted");
            json(StatusCode::OK, &serde_json::json!({ "status": "accepted" }))
        }
        Ok(NoticeOutcome::Duplicate) => json(StatusCode::OK, &serde_json::json!({ "status": "duplicate" })),
        Err(err) => error_response(&err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_taken_at_the_root_and_at_the_briefs_path_only() {
        for path in [
            "/",
            "",
            "/api/resman/webhooks/tour-update",
            "/api/resman/webhooks/tour-update/",
        ] {
            assert!(takes_notices(NOTICE_PATHS, path), "{path}");
        }
        for path in ["/api/resman/webhooks", "/hook", "/api/resman/webhooks/tour-update/x"] {
            assert!(!takes_notices(NOTICE_PATHS, path), "{path}");
        }
    }

    fn request(method: Method, path: &str) -> Request {
        lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::Empty)
            .unwrap()
    }

    #[test]
    fn elsewhere_is_a_404_naming_the_path_and_another_method_a_405() {
        let refused = refuse_elsewhere(&request(Method::POST, "/hook"), NOTICE_PATHS).unwrap();
        assert_eq!(refused.status(), 404);
        let refused = refuse_elsewhere(&request(Method::GET, "/"), NOTICE_PATHS).unwrap();
        assert_eq!(
            (refused.status().as_u16(), refused.headers()["allow"].to_str().unwrap()),
            (405, "POST")
        );
        assert!(refuse_elsewhere(&request(Method::POST, "/api/resman/webhooks/tour-update"), NOTICE_PATHS).is_none());
    }
}
