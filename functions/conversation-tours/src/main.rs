//! `conversation-tours`: `GET /api/resman/tours?conversation_id=`, the conversation context the chatbot reads
//! back (each tour's time, agent, status and sync state). Wiring only: the rules live in `tour_core::app::booking`.

use lambda_http::http::Method;
use lambda_http::{Request, RequestExt};
use tour_core::app::booking::conversation_tours;
use tour_core::domain::{ConversationId, InvalidField, access::Action, access::Credential};
use tour_edge::http::{Route, answer};
use tour_edge::{Answer, Api, Error, serve_api};

async fn handle(api: &Api, caller: Credential, request: Request) -> Answer {
    let params = request.query_string_parameters();
    let id = params
        .first("conversation_id")
        .ok_or(InvalidField::new("conversation_id", "is required"))?;
    let conversation = ConversationId::parse(id)?;
    Ok(answer(
        conversation_tours(&api.reach(&caller), &api.store, &conversation).await,
    ))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let api = tour_edge::config::ColdStart::begin().await.api(()).await?;
    serve_api(&api, Route::new(Method::GET, "GET", Action::ReadConversation), handle).await
}
