//! Every sample in `events/` parses as the event its function receives, and its content passes our own parsers:
//! a sample that drifted from the code would mislead whoever invokes it.

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use integration_tests::workspace_root;
use tour_core::app::availability::AvailabilityQuery;
use tour_core::app::booking::parse_booking_body;
use tour_core::domain::notice::ChangeNotice;

fn read(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("events").join(name)).unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

fn http(name: &str) -> ApiGatewayV2httpRequest {
    serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("events/{name} is not an HTTP API event: {e}"))
}

#[test]
fn the_availability_sample_is_a_valid_question_with_an_api_key() {
    let event = http("tour-availability.json");
    assert!(event.headers.contains_key("x-api-key"));
    let q = &event.query_string_parameters;
    AvailabilityQuery::parse(q.first("property_id"), q.first("date"), q.first("tour_type")).unwrap();
}

#[test]
fn the_booking_sample_is_a_valid_booking_with_an_idempotency_key() {
    let event = http("book-tour.json");
    assert!(event.headers.contains_key("idempotency-key") && event.headers.contains_key("x-api-key"));
    parse_booking_body(event.body.as_deref().unwrap_or_default().as_bytes()).unwrap();
}

#[test]
fn the_hold_sample_is_a_valid_hold_request_with_an_api_key() {
    let event = http("tour-hold.json");
    assert!(event.headers.contains_key("x-api-key"));
    let command = tour_core::app::holds::parse_hold_body(event.body.as_deref().unwrap_or_default().as_bytes()).unwrap();
    assert_eq!(command.conversation_id.as_str(), "conv-sample-1");
}

#[test]
fn the_conversation_sample_names_a_conversation() {
    let event = http("conversation-tours.json");
    let id = event.query_string_parameters.first("conversation_id").unwrap();
    tour_core::domain::ConversationId::parse(id).unwrap();
}

#[test]
fn the_tour_sample_names_a_booking_in_its_path() {
    let event = http("get-tour.json");
    assert!(event.headers.contains_key("x-api-key"));
    let id = event.path_parameters.get("appointment_id").unwrap();
    assert_eq!(
        event.raw_path.as_deref(),
        Some(format!("/api/resman/tours/{id}").as_str())
    );
    tour_core::domain::BookingId::parse(id).unwrap();
}

#[test]
fn the_update_sample_changes_a_booking_named_in_its_path() {
    let event = http("update-tour.json");
    assert!(event.headers.contains_key("x-api-key") && event.headers.contains_key("idempotency-key"));
    let id = event.path_parameters.get("appointment_id").unwrap();
    tour_core::domain::BookingId::parse(id).unwrap();
    let command =
        tour_core::domain::update::UpdateTourCommand::from_body(event.body.as_deref().unwrap_or_default().as_bytes())
            .unwrap();
    assert_eq!(command.status, Some(tour_core::domain::lifecycle::Change::Confirm));
}

#[test]
fn the_webhook_samples_carry_a_signature_and_a_valid_notice() {
    for name in [
        "tour-webhook-confirmed.json",
        "tour-webhook-rescheduled.json",
        "tour-webhook-cancelled.json",
        "tour-webhook-bad-signature.json",
    ] {
        let event = http(name);
        assert!(event.headers.contains_key("x-resman-signature"), "{name}");
        ChangeNotice::parse(event.body.as_deref().unwrap_or_default().as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_worker_and_poller_samples_are_an_sqs_batch_and_a_schedule_tick() {
    let batch: SqsEvent = serde_json::from_str(&read("tour-sync-worker.json")).unwrap();
    assert_eq!(batch.records.len(), 2);
    assert!(
        batch
            .records
            .iter()
            .all(|r| r.attributes.contains_key("ApproximateReceiveCount"))
    );
    let tick: EventBridgeEvent<serde_json::Value> = serde_json::from_str(&read("resman-change-poller.json")).unwrap();
    assert_eq!(tick.detail_type, "Scheduled Event");
}
