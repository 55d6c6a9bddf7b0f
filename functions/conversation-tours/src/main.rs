//! `conversation-tours`: `GET /api/resman/tours?conversation_id=`, the conversation context the chatbot reads
//! back (each tour's time, agent, status and sync state). Wiring only: the rules live in `shared::app::booking`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::app::booking::conversation_tours;
use shared::app::reach::InReach;
use shared::config::{TableReader, table_reader};
use shared::domain::access::Action;
use shared::domain::booking::ConversationId;
use shared::http::response::error_response;
use shared::http::{Route, answer, check, serve};

const ROUTE: Route = Route {
    method: Method::GET,
    allow: "GET",
    action: Action::ReadConversation,
};

async fn handle(deps: &TableReader, request: Request) -> Response<Body> {
    let caller = match check(&deps.keys, &request, &ROUTE).await {
        Ok(caller) => caller,
        Err(refusal) => return *refusal,
    };
    // Only the properties of the companies the key may touch; any other reads as unknown.
    let reach = InReach::new(&deps.store, &caller.accounts);
    let params = request.query_string_parameters();
    let conversation = match params.first("conversation_id").map(ConversationId::parse) {
        Some(Ok(id)) => id,
        Some(Err(invalid)) => return error_response(&invalid.into()),
        None => return error_response(&shared::domain::InvalidField::new("conversation_id", "is required").into()),
    };
    answer(conversation_tours(&reach, &deps.store, &conversation).await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    serve(&table_reader().await?, handle).await
}
