//! The prospect's self-service page as HTML: one template (`shared/edge/templates/pages/self_service.html`), no script,
//! and headers that keep the token in the address from leaking (`Referrer-Policy: no-referrer`, `no-store`) and the
//! page from being framed or fed other content (a strict `Content-Security-Policy`).

use super::response::ErrorBody;
use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Response};
use tour_core::app::AppError;
use tour_core::app::self_service::{
    Action, Page, SelfServiceDeps, act, manage_page, rate, staff_page, staff_rate, staff_went_wrong,
};
use tour_core::domain::InvalidField;

/// The largest form the page sends (a token, an action and a time): anything bigger is not ours.
pub const MAX_FORM_BYTES: usize = tour_core::domain::limits::FORM_BYTES;

const TEMPLATE: &str = include_str!("../../templates/pages/self_service.html");

/// The page's template, parsed once per cold start (the first page rendered), not on every request.
static PAGES: std::sync::LazyLock<Result<minijinja::Environment<'static>, String>> = std::sync::LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    env.add_template("page.html", TEMPLATE).map_err(|e| e.to_string())?;
    Ok(env)
});

fn html(status: u16, context: minijinja::Value) -> Response<Body> {
    let body = PAGES
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|env| {
            env.get_template("page.html")
                .and_then(|t| t.render(context))
                .map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the self-service page did not render");
            "<!doctype html><title>Sorry</title><p>Something went wrong on our side. Please call the leasing office.</p>"
                .to_owned()
        });
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .body(Body::Text(body))
        .unwrap_or_default()
}

/// A page of the use case, with its status.
pub fn page(page: &Page) -> Response<Body> {
    html(status_of(page), minijinja::Value::from(minijinja::value::Serde(page)))
}

/// A page's status: 409 when the time picked was just taken, 403 for a forged link, 410 for one that no longer allows
/// what it was used for, 200 otherwise.
fn status_of(page: &Page) -> u16 {
    match page {
        Page::Manage { .. }
        | Page::Moved { .. }
        | Page::Cancelled { .. }
        | Page::Rated { .. }
        | Page::StaffRated { .. }
        | Page::Staff { .. } => 200,
        Page::Taken { .. } => 409,
        Page::Refused { reason, .. } if *reason == tour_core::domain::link::LinkProblem::Forged.as_str() => 403,
        Page::Refused { .. } => 410,
    }
}

/// An error as a page: what a person can do about it, never the internals.
pub fn error_page(err: &AppError) -> Response<Body> {
    let ErrorBody(status, _, _) = ErrorBody::of(err);
    if status >= 500 {
        tracing::error!(error = %err, "self-service request failed");
    }
    let (title, message) = match err {
        AppError::Invalid(field) => ("That did not work", format!("{field}.")),
        AppError::TooLarge(_) => ("That did not work", "The form was too large.".to_owned()),
        AppError::Illegal { change, .. } => ("That did not work", format!("{change}.")),
        _ if status >= 500 => (
            "Please try again in a moment",
            "We could not reach our booking system just now. Nothing was changed.".to_owned(),
        ),
        _ => ("That did not work", "Please call the leasing office.".to_owned()),
    };
    html(
        status,
        minijinja::context! { page => "error", title => title, message => message },
    )
}

/// A method the route does not take: 405 with `Allow`.
pub fn method_not_allowed(allowed: &[Method]) -> Response<Body> {
    let mut response = html(
        405,
        minijinja::context! { page => "error", title => "Not here", message => "This page does not take that request." },
    );
    let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    if let Ok(value) = allow.parse() {
        response.headers_mut().insert("allow", value);
    }
    response
}

/// Which page a path asks for: `/tour` (and anything else), `/tour/rate`, `/tour/staff`, `/tour/staff-rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Manage,
    Rate,
    Staff,
    StaffRate,
}

impl Route {
    pub fn of(path: &str) -> Self {
        let path = path.trim_end_matches('/');
        if path.ends_with("/rate") {
            Self::Rate
        } else if path.ends_with("/staff") {
            Self::Staff
        } else if path.ends_with("/staff-rate") {
            Self::StaffRate
        } else {
            Self::Manage
        }
    }
}

/// The form's fields (`application/x-www-form-urlencoded`).
pub fn form(body: &[u8]) -> Result<Vec<(String, String)>, AppError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(AppError::TooLarge(MAX_FORM_BYTES));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|_| AppError::Invalid(tour_core::domain::InvalidField::new("body", "is not a form")))
}

/// The token a request carries: the form's `t`, else the address's.
pub fn token<'a>(fields: &'a [(String, String)], query: Option<&'a str>) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.as_str())
        .or(query)
        .filter(|t| !t.trim().is_empty())
}

/// The form's action, as the use case takes it.
pub fn action(fields: &[(String, String)]) -> Result<Action, AppError> {
    Ok(Action::from_form(fields)?)
}

/// A request to the self-service page, routed to its use case and shown: `GET` of each page with its link's token
/// (`t`), `POST` of the prospect's form (`/tour`) and of the staff's "what went wrong" (`/tour/staff-rate`).
pub async fn respond(app: &SelfServiceDeps<'_>, request: &lambda_http::Request, now: DateTime<Utc>) -> Response<Body> {
    use lambda_http::RequestExt;
    let query = request.query_string_parameters();
    let route = Route::of(request.raw_http_path());
    let missing =
        || error_page(&InvalidField::new("t", "the link is incomplete; open it from your email again").into());
    let shown = match (request.method().clone(), route) {
        (Method::GET, route) => {
            let Some(token) = token(&[], query.first("t")) else {
                return missing();
            };
            let score = query.first("score").unwrap_or_default();
            match route {
                Route::Manage => manage_page(app, token, now).await,
                Route::Rate => rate(app, token, score, now).await,
                Route::Staff => staff_page(app, token, now).await,
                Route::StaffRate => staff_rate(app, token, score, now).await,
            }
        }
        (Method::POST, route @ (Route::Manage | Route::StaffRate)) => {
            let fields = match form(request.body().as_ref()) {
                Ok(fields) => fields,
                Err(e) => return error_page(&e),
            };
            let Some(token) = token(&fields, query.first("t")) else {
                return missing();
            };
            if route == Route::StaffRate {
                staff_went_wrong(app, token, &fields, now).await
            } else {
                match action(&fields) {
                    Ok(action) => act(app, token, &action, now).await,
                    Err(e) => Err(e),
                }
            }
        }
        (_, Route::Manage | Route::StaffRate) => return method_not_allowed(&[Method::GET, Method::POST]),
        (_, _) => return method_not_allowed(&[Method::GET]),
    };
    match shown {
        Ok(shown) => page(&shown),
        Err(e) => error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tour_core::app::self_service::{TimeChoice, TourSummary};

    fn text(response: &Response<Body>) -> &str {
        match response.body() {
            Body::Text(t) => t,
            other => panic!("{other:?}"),
        }
    }

    fn summary() -> TourSummary {
        TourSummary {
            property: "Maple <Grove>".into(),
            address: "1 Main St".into(),
            office_phone: Some("+1 512 555 0100".into()),
            office_email: None,
            when: "Tuesday, December 1, 2:00 PM Central Time".into(),
            kind: "in-person tour",
            guide: Some("Sam".into()),
            status: "scheduled",
        }
    }

    #[test]
    fn the_manage_page_offers_each_time_and_both_buttons_escaped_and_unframeable() {
        let p = Page::Manage {
            tour: summary(),
            times: vec![TimeChoice {
                start: "2026-12-01T21:00:00+00:00".into(),
                when: "Tuesday, December 1, 3:00 PM Central Time".into(),
                guide: None,
            }],
            token: "tok.en".into(),
        };
        let response = page(&p);
        assert_eq!(response.status(), 200);
        let body = text(&response);
        assert!(body.contains("value=\"2026-12-01T21:00:00+00:00\""), "{body}");
        assert!(body.contains("Move my tour") && body.contains("Cancel my tour"));
        assert!(
            body.contains("Maple &lt;Grove&gt;") && !body.contains("<Grove>"),
            "escaped"
        );
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        assert!(
            response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(!body.contains("<script"), "no script");
    }

    #[test]
    fn refusals_and_errors_are_pages_with_their_status() {
        let refused = page(&Page::Refused {
            reason: "used",
            message: "this link was used already".into(),
            tour: None,
        });
        assert_eq!(refused.status(), 410);
        assert!(text(&refused).contains("data-reason=\"used\""));
        let forged = page(&Page::Refused {
            reason: "forged",
            message: "this link is not ours".into(),
            tour: None,
        });
        assert_eq!(forged.status(), 403);
        let taken = page(&Page::Taken {
            tour: summary(),
            times: Vec::new(),
            token: "tok.en".into(),
        });
        assert_eq!(taken.status(), 409);
        let bad = error_page(&AppError::Invalid(tour_core::domain::InvalidField::new(
            "start",
            "is not one of the times offered",
        )));
        assert_eq!(bad.status(), 400);
        assert!(text(&bad).contains("start: is not one of the times offered"));
        let down = error_page(&AppError::Store(tour_core::ports::StoreError::Unavailable(
            "timeout".into(),
        )));
        assert_eq!(down.status(), 503);
        assert!(!text(&down).contains("timeout"), "no internals");
        let wrong = method_not_allowed(&[Method::GET, Method::POST]);
        assert_eq!(
            (wrong.status().as_u16(), wrong.headers()["allow"].to_str().unwrap()),
            (405, "GET, POST")
        );
    }

    #[test]
    fn a_form_gives_its_fields_and_the_token_comes_from_it_or_the_address() {
        let fields = form(b"t=abc.def&action=move&start=2026-12-01T21%3A00%3A00%2B00%3A00").unwrap();
        assert_eq!(token(&fields, Some("other")), Some("abc.def"));
        assert_eq!(token(&[], Some("q")), Some("q"));
        assert_eq!(token(&[], Some(" ")), None);
        assert!(matches!(action(&fields).unwrap(), Action::Move { .. }));
        assert!(matches!(
            form(&vec![b'a'; MAX_FORM_BYTES + 1]),
            Err(AppError::TooLarge(_))
        ));
        assert_eq!(Route::of("/tour"), Route::Manage);
        assert_eq!(Route::of("/tour/rate/"), Route::Rate);
        assert_eq!(Route::of("/tour/staff"), Route::Staff);
        assert_eq!(Route::of("/tour/staff-rate"), Route::StaffRate);
    }
}
