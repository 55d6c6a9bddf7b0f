//! `tour-text-replies`: the prospects' replies to our texts, as End User Messaging SMS publishes them to the
//! inbound SNS topic; each applied once. Wiring only: the rules live in `tour_core::app::replies`.
//!
//! A record that is not a two-way message is dropped (no retry makes it one); a store that cannot be reached fails
//! the invocation, so Lambda tries the event again (the replies it applied are marked and not applied twice), and
//! after its retries the event waits in the dead-letter queue.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tour_aws::dynamo::DynamoStore;
use tour_aws::sqs::SqsSyncQueue;
use tour_core::app::lifecycle::UpdateDeps;
use tour_core::app::replies::{InboundText, ReplyDeps, ReplyOutcome, take_reply};
use tour_core::domain::Phone;
use tour_edge::{Error, config, serve_events};

/// The two-way message in one SNS record (`Sns.Message`, a JSON text), as the service documents it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TwoWay {
    origination_number: String,
    message_body: String,
    inbound_message_id: String,
    #[serde(default)]
    previous_published_message_id: Option<String>,
}

/// The replies of an SNS event, each read or refused (never with its words or number in the reason).
fn inbound_texts(event: &Value) -> Vec<Result<InboundText, &'static str>> {
    let records = event["Records"].as_array().map(Vec::as_slice).unwrap_or_default();
    records
        .iter()
        .map(|record| {
            let message = record["Sns"]["Message"].as_str().ok_or("no Sns.Message")?;
            let two_way: TwoWay = serde_json::from_str(message).map_err(|_| "not a two-way message")?;
            let from = Phone::parse(&two_way.origination_number).map_err(|_| "originationNumber is not a number")?;
            Ok(InboundText {
                from,
                body: two_way.message_body,
                inbound_id: two_way.inbound_message_id,
                previous: two_way.previous_published_message_id.filter(|p| !p.is_empty()),
            })
        })
        .collect()
}

async fn handle((store, queue): &(DynamoStore, SqsSyncQueue), event: LambdaEvent<Value>) -> Result<Value, Error> {
    let deps = ReplyDeps {
        update: UpdateDeps {
            properties: store,
            calendar: store,
            tours: store,
            queue,
        },
        messages: store,
        consents: store,
        text_log: store,
    };
    let (mut applied, mut dropped) = (0, 0);
    for inbound in inbound_texts(&event.payload) {
        match inbound {
            Ok(inbound) => match take_reply(&deps, &inbound, chrono::Utc::now()).await? {
                ReplyOutcome::Applied(_) => applied += 1,
                ReplyOutcome::Duplicate | ReplyOutcome::Unplaced => dropped += 1,
            },
            Err(reason) => {
                tracing::warn!(reason, "an SNS record that is no reply; dropped");
                dropped += 1;
            }
        }
    }
    Ok(json!({ "applied": applied, "dropped": dropped }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = config::ColdStart::begin().await;
    serve_events(&(cold.store()?, cold.sync_queue()?), handle).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message: Value) -> Value {
        json!({"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": message.to_string()}})
    }

    #[test]
    fn each_record_is_read_as_the_service_publishes_a_reply_and_anything_else_is_refused() {
        let event = json!({"Records": [
            record(json!({
                "originationNumber": "+15125550101", "destinationNumber": "+17375550100",
                "messageKeyword": "KEYWORD_123456789012", "messageBody": "C",
                "inboundMessageId": "in-1", "previousPublishedMessageId": "text-1"
            })),
            record(json!({"originationNumber": "+15125550101", "messageBody": "C", "inboundMessageId": "in-2"})),
            record(json!({"eventType": "TEXT_DELIVERED"})),
            record(json!({"originationNumber": "nobody", "messageBody": "C", "inboundMessageId": "in-3"})),
            json!({"Sns": {}}),
        ]});
        let read = inbound_texts(&event);
        let first = read[0].as_ref().unwrap();
        assert_eq!(
            (
                first.from.expose(),
                first.body.as_str(),
                first.inbound_id.as_str(),
                first.previous.as_deref()
            ),
            ("+15125550101", "C", "in-1", Some("text-1"))
        );
        assert_eq!(read[1].as_ref().unwrap().previous, None);
        assert_eq!(read[2].as_ref().unwrap_err(), &"not a two-way message");
        assert_eq!(read[3].as_ref().unwrap_err(), &"originationNumber is not a number");
        assert_eq!(read[4].as_ref().unwrap_err(), &"no Sns.Message");
        assert!(inbound_texts(&json!({})).is_empty());
    }
}
