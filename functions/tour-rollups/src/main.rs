//! `tour-rollups`: the table's change stream (DynamoDB Streams, keys only) kept as the figures' daily rollups. Each
//! tour a batch's records name is read as it now stands and its share of the figures replaces the one applied for it
//! (`tour_core::app::rollups`), so a record delivered twice, late or out of order changes nothing. Wiring only.
//!
//! A store that cannot be reached fails the invocation: the event source mapping retries the batch (halved each
//! time), which is safe, since applying a tour again changes nothing. A batch that still fails after its retries is
//! reported to the dead-letter queue; an operator repairs what it missed with the recount (`recount --repair`).

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tour_aws::dynamo::DynamoStore;
use tour_core::app::rollups::{RollupDeps, roll_up};
use tour_core::domain::BookingId;
use tour_core::domain::rollup::RefusalRef;
use tour_edge::{Error, serve_events};

/// The refusals of taken slots a batch's records name (`REFUSAL#<property>` items).
fn refusals_named(event: &Value) -> Vec<RefusalRef> {
    let records = event["Records"].as_array().map(Vec::as_slice).unwrap_or_default();
    records
        .iter()
        .filter_map(|record| {
            let keys = &record["dynamodb"]["Keys"];
            RefusalRef::from_keys(keys["pk"]["S"].as_str()?, keys["sk"]["S"].as_str()?)
        })
        .collect()
}

/// The tours a batch's records name (`Keys.pk` = `TOUR#<id>`), whatever item of the tour each record is about; the
/// rollups' own items (`ROLLUP`) name none, so that applying a share does not come back as a record to apply.
fn tours_named(event: &Value) -> Vec<BookingId> {
    let records = event["Records"].as_array().map(Vec::as_slice).unwrap_or_default();
    records
        .iter()
        .filter(|record| record["dynamodb"]["Keys"]["sk"]["S"].as_str() != Some("ROLLUP"))
        .filter_map(|record| record["dynamodb"]["Keys"]["pk"]["S"].as_str())
        .filter_map(|pk| pk.strip_prefix("TOUR#"))
        .filter_map(|id| BookingId::parse(id).ok())
        .collect()
}

async fn handle(store: &DynamoStore, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let tours = tours_named(&event.payload);
    let deps = RollupDeps {
        rollups: store,
        properties: store,
    };
    let report = roll_up(&deps, &tours, &refusals_named(&event.payload)).await?;
    tracing::info!(
        tours = report.tours,
        changed = report.changed,
        refusals = report.refusals,
        "rollups up to date with the batch's tours"
    );
    Ok(json!({ "tours": report.tours, "changed": report.changed, "refusals": report.refusals }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cold = tour_edge::config::ColdStart::begin().await;
    serve_events(&cold.store()?, handle).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pk: &str, sk: &str) -> Value {
        json!({
            "eventID": "1", "eventName": "MODIFY", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}, "SequenceNumber": "100", "StreamViewType": "KEYS_ONLY"}
        })
    }

    #[test]
    fn a_batch_names_the_tours_of_its_records_and_never_the_rollups_own_items() {
        let tour = "tour_0123456789abcdef0123456789abcdef";
        let event = json!({"Records": [
            record(&format!("TOUR#{tour}"), "TOUR"),
            record(&format!("TOUR#{tour}"), "MSG#confirmation#v1"),
            record(&format!("TOUR#{tour}"), "ROLLUP"),
            record("ROLLUP#5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01", "DAY#2026-12-08"),
            record("TOUR#not-a-booking-id", "TOUR"),
        ]});
        let named = tours_named(&event);
        assert_eq!(named.len(), 2, "{named:?}");
        assert!(named.iter().all(|id| id.as_str() == tour));
        assert!(tours_named(&json!({})).is_empty());
        let refusal = record(
            "REFUSAL#5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01",
            "2026-12-01T04:30:00.000Z#0a1b2c3d4e5f60718293a4b5",
        );
        let refusals = refusals_named(&json!({"Records": [refusal, record(&format!("TOUR#{tour}"), "TOUR")]}));
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].at.to_rfc3339(), "2026-12-01T04:30:00+00:00");
        assert!(tours_named(&json!({"Records": [record("REFUSAL#x", "y")]})).is_empty());
    }
}
