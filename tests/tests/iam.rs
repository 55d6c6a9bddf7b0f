//! The template's policies against what the use cases really call: through the local IAM gate, signed as the
//! function that makes them (as the local stack runs the functions), a booking and a tour read need nothing outside
//! `book-tour`'s and `get-tour`'s roles, and a role without the single-tour read is refused as AWS refuses it.

use integration_tests::stack::*;
use integration_tests::*;
use std::time::Duration;
use tour_aws::dynamo::DynamoStore;
use tour_aws::sqs::SqsSyncQueue;
use tour_core::app::booking::book_tour;
use tour_core::domain::BookingId;
use tour_core::ports::Outcome;
use tour_core::ports::{MessageStore, TourReads};

async fn denials(gate: &str) -> Vec<serde_json::Value> {
    reqwest::get(format!("{gate}/_iam/denials"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_and_its_read_back_stay_inside_book_tour_s_and_get_tour_s_policies() {
    let sandbox = sandbox().await;
    let aws = LocalAws::start(&[("ResManBaseUrl", &sandbox.base_url())], &[]);
    load_demo_properties(&aws.store().await).await;
    let gate = aws.iam_gate().await;
    let table = aws.var("TABLE_NAME");

    // book-tour's calls: the booking transaction, its reads, the sync and notification queues.
    let as_book_tour = aws.sdk_as(&gate, "LOCALBookTour").await;
    let store = DynamoStore::new(&as_book_tour, table);
    let queue = SqsSyncQueue::new(&as_book_tour, aws.var("SYNC_QUEUE_URL")).with_messages(aws.var("NOTIFY_QUEUE_URL"));
    let resman = resman_for(&sandbox, Duration::from_secs(2));
    let deps = booking_deps(&store, &resman, &queue, Duration::from_millis(20));
    let property = {
        use tour_core::ports::PropertyStore;
        let id = tour_core::domain::ResManPropertyId::parse(DEMO_PROPERTY).unwrap();
        store.property(&id).await.unwrap().unwrap()
    };
    let id = BookingId::from_uuid(uuid::Uuid::new_v4());
    let booked = book_tour(
        &deps,
        &command(&property, 1, "10:00"),
        None,
        id.clone(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(booked.outcome, Outcome::Booked, "{}", booked.body);

    // get-tour's read: the tour with its personal data, and the tour with its messages.
    let as_get_tour = DynamoStore::new(&aws.sdk_as(&gate, "LOCALGetTour").await, table);
    assert!(as_get_tour.tour(&id).await.unwrap().is_some());
    assert!(as_get_tour.tour_with_messages(&id).await.unwrap().is_some());
    assert_eq!(denials(&gate).await, Vec::<serde_json::Value>::new());

    // conversation-tours may read a conversation's tours by the index, but not a tour by its key.
    let as_conversation_tours = DynamoStore::new(&aws.sdk_as(&gate, "LOCALConversationTours").await, table);
    let refused = as_conversation_tours.tour(&id).await.unwrap_err().to_string();
    assert!(refused.contains("AccessDeniedException"), "{refused}");
    assert_eq!(
        denials(&gate).await,
        vec![serde_json::json!({
            "function": "conversation-tours",
            "action": "dynamodb:BatchGetItem",
            "resource": format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}"),
        })]
    );
}
