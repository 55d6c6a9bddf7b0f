//! `tour-text-events`: what End User Messaging SMS reports, from its two SNS topics: the prospects' replies to our
//! texts (each applied once, `tour_core::app::replies`), and each text's final delivery event (the text marked
//! delivered or failed once, `tour_core::app::notify::take_receipt`). Wiring only.
//!
//! A record that is neither is dropped (no retry makes it one); a store that cannot be reached fails the invocation,
//! so Lambda tries the event again (replies and receipts applied are not applied twice), and after its retries the
//! event waits in the dead-letter queue.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tour_aws::dynamo::DynamoStore;
use tour_aws::sqs::SqsSyncQueue;
use tour_core::app::lifecycle::UpdateDeps;
use tour_core::app::notify::{Receipt, take_receipt};
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

/// A text's delivery event (`Sns.Message`), as the configuration set's event destination publishes it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryEvent {
    event_type: String,
    message_id: String,
    #[serde(default)]
    is_final: bool,
    event_timestamp: i64,
    #[serde(default)]
    context: std::collections::BTreeMap<String, String>,
}

/// What one SNS record says.
#[derive(Debug)]
enum Said {
    Reply(InboundText),
    Receipt(Receipt),
    /// A delivery event on the way (queued, pending): only the final one counts.
    NotFinal,
}

/// The final events that mean the text reached the phone (`TEXT_SUCCESSFUL`: the carrier took it and gives no
/// handset receipt).
const DELIVERED: [&str; 2] = ["TEXT_DELIVERED", "TEXT_SUCCESSFUL"];

/// The records of an SNS event, each read or refused (never with its words or number in the reason).
fn read_records(event: &Value) -> Vec<Result<Said, &'static str>> {
    let records = event["Records"].as_array().map(Vec::as_slice).unwrap_or_default();
    records
        .iter()
        .map(|record| {
            let message = record["Sns"]["Message"].as_str().ok_or("no Sns.Message")?;
            let fields: Value = serde_json::from_str(message).map_err(|_| "Sns.Message is not JSON")?;
            if fields.get("eventType").is_some() {
                let event: DeliveryEvent = serde_json::from_value(fields).map_err(|_| "not a delivery event")?;
                if !event.is_final {
                    return Ok(Said::NotFinal);
                }
                let message = Receipt::message_of(&event.context).ok_or("a delivery event of no text of ours")?;
                let delivered = DELIVERED.contains(&event.event_type.as_str());
                return Ok(Said::Receipt(Receipt {
                    message,
                    provider_message_id: event.message_id,
                    delivered,
                    failure: (!delivered).then_some(event.event_type),
                    at: chrono::DateTime::from_timestamp_millis(event.event_timestamp).ok_or("eventTimestamp")?,
                }));
            }
            let two_way: TwoWay = serde_json::from_value(fields).map_err(|_| "not a two-way message")?;
            let from = Phone::parse(&two_way.origination_number).map_err(|_| "originationNumber is not a number")?;
            Ok(Said::Reply(InboundText {
                from,
                body: two_way.message_body,
                inbound_id: two_way.inbound_message_id,
                previous: two_way.previous_published_message_id.filter(|p| !p.is_empty()),
            }))
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
    for said in read_records(&event.payload) {
        let now = chrono::Utc::now();
        let took = match said {
            Ok(Said::Reply(inbound)) => matches!(take_reply(&deps, &inbound, now).await?, ReplyOutcome::Applied(_)),
            Ok(Said::Receipt(receipt)) => take_receipt(store, queue, &receipt, now).await?,
            Ok(Said::NotFinal) => false,
            Err(reason) => {
                tracing::warn!(reason, "an SNS record that is neither a reply nor a receipt; dropped");
                false
            }
        };
        if took {
            applied += 1;
        } else {
            dropped += 1;
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

    fn reply<'a>(said: &'a Result<Said, &'static str>) -> &'a InboundText {
        match said {
            Ok(Said::Reply(inbound)) => inbound,
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn a_final_delivery_event_is_a_receipt_for_the_text_its_context_names_and_a_passing_one_is_ignored() {
        let event = |event_type: &str, final_: bool, context: Value| {
            record(json!({
                "eventType": event_type, "eventVersion": "1.0", "eventTimestamp": 1_796_680_000_000_i64,
                "isFinal": final_, "messageId": "text-1", "messageStatus": "DELIVERED", "context": context
            }))
        };
        let ours = json!({"booking_id": "tour_0123456789abcdef0123456789abcdef", "message": "text_reminder#v2"});
        let read = read_records(&json!({"Records": [
            event("TEXT_DELIVERED", true, ours.clone()),
            event("TEXT_CARRIER_UNREACHABLE", true, ours.clone()),
            event("TEXT_QUEUED", false, ours),
            event("TEXT_DELIVERED", true, json!({})),
        ]}));
        let Ok(Said::Receipt(delivered)) = &read[0] else {
            panic!("{:?}", read[0])
        };
        assert!(delivered.delivered && delivered.failure.is_none());
        assert_eq!(delivered.message.key(), "text_reminder#v2");
        assert_eq!(delivered.provider_message_id, "text-1");
        let Ok(Said::Receipt(failed)) = &read[1] else {
            panic!("{:?}", read[1])
        };
        assert_eq!(
            (failed.delivered, failed.failure.as_deref()),
            (false, Some("TEXT_CARRIER_UNREACHABLE"))
        );
        assert!(matches!(read[2], Ok(Said::NotFinal)));
        assert_eq!(read[3].as_ref().unwrap_err(), &"a delivery event of no text of ours");
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
        let read = read_records(&event);
        let first = reply(&read[0]);
        assert_eq!(
            (
                first.from.expose(),
                first.body.as_str(),
                first.inbound_id.as_str(),
                first.previous.as_deref()
            ),
            ("+15125550101", "C", "in-1", Some("text-1"))
        );
        assert_eq!(reply(&read[1]).previous, None);
        assert_eq!(read[2].as_ref().unwrap_err(), &"not a delivery event");
        assert_eq!(read[3].as_ref().unwrap_err(), &"originationNumber is not a number");
        assert_eq!(read[4].as_ref().unwrap_err(), &"no Sns.Message");
        assert!(read_records(&json!({})).is_empty());
    }
}
