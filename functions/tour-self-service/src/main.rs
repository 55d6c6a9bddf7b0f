//! `tour-self-service`: the page behind the signed links in a prospect's emails. `GET /tour?t=<token>` shows the
//! tour and the free times near it; `POST /tour` (the page's form) moves or cancels it through the chatbot's use
//! case; `GET /tour/rate?t=<token>&score=<1..5>` records the rating of a tour that took place, once;
//! `GET /tour/staff?t=<token>` is the leasing team's read-only view of the tour (the link in a staff alert);
//! `GET /tour/staff-rate?t=<token>&score=<1..5>` records the leasing team's rating of the booking, once, and
//! `POST /tour/staff-rate` what went wrong. No API key:
//! the signed token is the credential. Wiring only: the rules live in `shared::app::self_service`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsSyncQueue;
use shared::app::lifecycle::UpdateDeps;
use shared::app::self_service::{SelfServiceDeps, act, manage_page, rate, staff_page, staff_rate, staff_went_wrong};
use shared::config::{self, ColdStart};
use shared::domain::InvalidField;
use shared::domain::link::LinkKey;
use shared::http::page::{self, error_page, method_not_allowed};
use shared::http::serve;

struct Deps {
    store: DynamoStore,
    queue: SqsSyncQueue,
    key: LinkKey,
}

async fn handle(deps: &Deps, request: Request) -> Response<Body> {
    let app = SelfServiceDeps {
        update: UpdateDeps {
            properties: &deps.store,
            calendar: &deps.store,
            tours: &deps.store,
            queue: &deps.queue,
        },
        ratings: &deps.store,
        staff_ratings: &deps.store,
        messages: &deps.store,
        key: &deps.key,
    };
    let query = request.query_string_parameters();
    let route = page::Route::of(request.raw_http_path());
    let now = chrono::Utc::now();
    let missing =
        || error_page(&InvalidField::new("t", "the link is incomplete; open it from your email again").into());
    let shown = match (request.method().clone(), route) {
        (Method::GET, route) => {
            let Some(token) = page::token(&[], query.first("t")) else {
                return missing();
            };
            match route {
                page::Route::Manage => manage_page(&app, token, now).await,
                page::Route::Rate => rate(&app, token, query.first("score").unwrap_or_default(), now).await,
                page::Route::Staff => staff_page(&app, token, now).await,
                page::Route::StaffRate => staff_rate(&app, token, query.first("score").unwrap_or_default(), now).await,
            }
        }
        (Method::POST, route @ (page::Route::Manage | page::Route::StaffRate)) => {
            let fields = match page::form(request.body().as_ref()) {
                Ok(fields) => fields,
                Err(e) => return error_page(&e),
            };
            let Some(token) = page::token(&fields, query.first("t")) else {
                return missing();
            };
            if route == page::Route::StaffRate {
                staff_went_wrong(&app, token, &fields, now).await
            } else {
                match page::action(&fields) {
                    Ok(action) => act(&app, token, &action, now).await,
                    Err(e) => Err(e),
                }
            }
        }
        (_, page::Route::Manage | page::Route::StaffRate) => {
            return method_not_allowed(&[Method::GET, Method::POST]);
        }
        (_, _) => return method_not_allowed(&[Method::GET]),
    };
    match shown {
        Ok(shown) => page::page(&shown),
        Err(e) => error_page(&e),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = ColdStart::begin().await;
    let deps = Deps {
        store: cold.store()?,
        queue: cold.sync_queue()?,
        key: config::link_key(&cold.secrets).await?,
    };
    serve(&deps, handle).await
}
