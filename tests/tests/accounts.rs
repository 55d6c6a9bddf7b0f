//! Many customers: each property is reached with its own ResMan account's credentials, read from that account's
//! own secret (moto's Secrets Manager), against the sandbox holding several accounts.

use integration_tests::customers::{ACCOUNT_SECRET_PREFIX, generate};
use integration_tests::*;
use std::sync::Arc;
use std::time::Duration;
use tour_aws::resman::AccountKeys;
use tour_aws::secrets::{AccountSecrets, SecretsManager};
use tour_core::domain::ResManPropertyId;
use tour_core::domain::resman::{ResManAccountId, ResManSite};
use tour_core::ports::Outcome;
use tour_core::ports::{ResManError, ResManGateway};

#[tokio::test]
async fn each_property_is_reached_with_its_own_accounts_credentials_and_never_another_accounts() {
    let aws = LocalAws::start(&[], &[]);
    let sdk = aws.sdk().await;
    let store = aws.store().await;
    let sandbox = sandbox().await;
    let customers = generate(3, 2);
    customers.load_into_sandbox(&sandbox.base_url()).await;
    customers
        .onboard(&aws_sdk_secretsmanager::Client::new(&sdk), &store)
        .await;
    let accounts = AccountSecrets::new(
        SecretsManager::new(&sdk),
        ACCOUNT_SECRET_PREFIX,
        Duration::from_secs(300),
    );
    let resman = resman_for(&sandbox, Duration::from_secs(5)).with_accounts(Arc::new(accounts));

    for property in &customers.properties {
        let staff = resman
            .employees(&property.site())
            .await
            .expect("its own account reaches it");
        assert_eq!(staff.len(), 3, "{}", property.id);
    }
    // The demo property of the default account is still reached with the partner credentials.
    let demo = ResManSite::new(None, ResManPropertyId::parse(DEMO_PROPERTY).unwrap());
    assert!(!resman.employees(&demo).await.unwrap().is_empty());

    // ResMan saw every call under the account of the property it was about, with that account's key.
    let requests = sandbox_requests(&sandbox).await;
    assert_eq!(requests.len(), customers.properties.len() + 1);
    for request in &requests {
        let property = request["property_id"].as_str().unwrap();
        let expected = customers
            .properties
            .iter()
            .find(|p| p.id.as_str() == property)
            .map_or(400, |p| p.account.unwrap().0);
        assert_eq!(request["account_id"], expected, "{request}");
        assert_eq!(request["status"], "Success", "{request}");
    }

    // Another account's property is not found with this account's credentials.
    let first = &customers.properties[0];
    let crossed = ResManSite::new(Some(ResManAccountId(customers.accounts[1].0)), first.id.clone());
    let err = resman.employees(&crossed).await.unwrap_err();
    assert!(matches!(&err, ResManError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn an_account_without_a_secret_is_named_with_the_secret_to_create_and_nothing_reaches_resman() {
    let aws = LocalAws::start(&[], &[]);
    let sdk = aws.sdk().await;
    let sandbox = sandbox().await;
    let accounts = AccountSecrets::new(
        SecretsManager::new(&sdk),
        ACCOUNT_SECRET_PREFIX,
        Duration::from_secs(300),
    );
    let missing = ResManAccountId(777);
    let err = accounts.credentials(missing).await.unwrap_err();
    assert!(
        err.to_string().contains("ResMan account 777") && err.to_string().contains("tour-booking/resman/accounts/777"),
        "{err}"
    );
    let resman = resman_for(&sandbox, Duration::from_secs(5)).with_accounts(Arc::new(accounts));
    let site = ResManSite::new(Some(missing), ResManPropertyId::parse(DEMO_PROPERTY).unwrap());
    assert!(matches!(
        resman.employees(&site).await,
        Err(ResManError::Rejected { .. })
    ));
    let requests = sandbox_requests(&sandbox).await;
    assert!(requests.is_empty(), "no call went out: {requests:?}");
}

/// The sandbox's request log.
async fn sandbox_requests(sandbox: &RunningSandbox) -> Vec<serde_json::Value> {
    reqwest::get(format!("{}/_sandbox/requests", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The sandbox's request log: (account, epoch milliseconds) of each ResMan call.
async fn calls_by_account(sandbox: &RunningSandbox) -> std::collections::BTreeMap<i64, Vec<i64>> {
    let requests = sandbox_requests(sandbox).await;
    let mut by_account: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for request in requests {
        by_account
            .entry(request["account_id"].as_i64().unwrap())
            .or_default()
            .push(request["at_ms"].as_i64().unwrap());
    }
    for times in by_account.values_mut() {
        times.sort_unstable();
    }
    by_account
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poll_workers_running_at_once_never_call_an_account_faster_than_its_rate() {
    use integration_tests::stack::Stack;
    use tour_core::app::changes::{FeedDeps, PollSettings, process_poll_batch};
    use tour_core::app::pacing::AccountPacer;
    use tour_core::domain::rate::Rate;
    use tour_core::ports::QueuedMessage;

    let stack = Stack::start().await;
    let sdk = stack.aws.sdk().await;
    let customers = generate(2, 30);
    customers.load_into_sandbox(&stack.sandbox.base_url()).await;
    customers
        .onboard(&aws_sdk_secretsmanager::Client::new(&sdk), &stack.store)
        .await;
    let cap = 5;
    let pacer = AccountPacer {
        limiter: Arc::new(stack.aws.store().await),
        rate: Rate::at_most_per_second(cap).unwrap(),
        patience: chrono::Duration::seconds(60),
        clock: chrono::Utc::now,
    };
    let accounts = AccountSecrets::new(
        SecretsManager::new(&sdk),
        ACCOUNT_SECRET_PREFIX,
        Duration::from_secs(300),
    );
    let resman = Arc::new(
        resman_for(&stack.sandbox, Duration::from_secs(5))
            .with_accounts(Arc::new(accounts))
            .with_pacer(Arc::new(pacer)),
    );
    let settings = PollSettings {
        backfill: chrono::Duration::hours(1),
        ..PollSettings::default()
    };
    // Six workers at once, as six Lambda instances would take six batches of ten.
    let messages: Vec<QueuedMessage> = customers
        .properties
        .iter()
        .map(|p| QueuedMessage {
            id: p.id.to_string(),
            body: serde_json::json!({ "property_id": p.id.as_str() }).to_string(),
            receive_count: 1,
        })
        .collect();
    let mut workers = tokio::task::JoinSet::new();
    for batch in messages.chunks(10) {
        let (stack, resman, settings, batch) = (
            Arc::clone(&stack),
            Arc::clone(&resman),
            settings.clone(),
            batch.to_vec(),
        );
        workers.spawn(async move {
            let feed = FeedDeps {
                properties: &stack.store,
                calendar: &stack.store,
                tours: &stack.store,
                queue: &stack.queue,
            };
            process_poll_batch(
                &feed,
                resman.as_ref(),
                &settings,
                &batch,
                Duration::from_secs(30),
                &invocation(60),
                &chrono::Utc::now,
            )
            .await
        });
    }
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    while let Some(batch) = workers.join_next().await {
        failed.extend(batch.unwrap());
    }
    let calls = calls_by_account(&stack.sandbox).await;
    assert!(
        failed.is_empty(),
        "every property was polled: {} failed after {:?}; calls {:?}",
        failed.len(),
        started.elapsed(),
        calls.values().map(Vec::len).collect::<Vec<_>>()
    );

    for (account, _) in &customers.accounts {
        let times = &calls[&(*account as i64)];
        assert_eq!(times.len(), 30, "one window per property of account {account}");
        // However the calls fell, no second held more than the cap.
        for (i, first) in times.iter().enumerate() {
            let within = times[i..].iter().take_while(|t| **t - *first < 1000).count();
            assert!(
                within <= cap as usize,
                "account {account}: {within} calls within a second"
            );
        }
        // And the calls were paced, not merely lucky: after the first, 29 calls at 3.2 a second take nine seconds.
        assert!(
            times[times.len() - 1] - times[0] >= 8_500,
            "account {account}: paced over {} ms",
            times[times.len() - 1] - times[0]
        );
    }
}

#[tokio::test]
async fn a_sync_batch_for_two_companies_ends_in_time_and_one_companys_hung_resman_holds_back_no_other_write() {
    use integration_tests::stack::{Stack, command, response};
    use tour_core::app::booking::book_tour;
    use tour_core::app::sync::{WorkerDeps, process_batch};
    use tour_core::domain::{ids::BookingId, record::SyncStatus};
    use tour_core::ports::TourReads;

    let stack = Stack::start().await;
    let sdk = stack.aws.sdk().await;
    let customers = generate(1, 1);
    customers.load_into_sandbox(&stack.sandbox.base_url()).await;
    customers
        .onboard(&aws_sdk_secretsmanager::Client::new(&sdk), &stack.store)
        .await;
    let other = &customers.properties[0];
    let accounts = AccountSecrets::new(
        SecretsManager::new(&sdk),
        ACCOUNT_SECRET_PREFIX,
        Duration::from_secs(300),
    );
    let resman = resman_for(&stack.sandbox, Duration::from_secs(3)).with_accounts(Arc::new(accounts));
    // Ten bookings accepted while ResMan is down, all queued: five at the demo company's property (account 400),
    // five at another company's.
    stack.faults(serde_json::json!({"http_error_rate": 1.0})).await;
    let booking = booking_deps(&stack.store, &resman, &stack.queue, Duration::from_millis(20));
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for (n, time) in ["10:00", "11:00", "13:00", "14:00", "15:00"].iter().enumerate() {
        for (property, ids, offset) in [(&stack.property, &mut ours, 0), (other, &mut theirs, 100)] {
            let id = BookingId::from_uuid(uuid::Uuid::new_v4());
            let c = command(property, n + offset, time);
            let booked = book_tour(&booking, &c, None, id, chrono::Utc::now()).await.unwrap();
            assert_eq!(booked.outcome, Outcome::Pending, "{}", booked.body);
            ids.push(BookingId::parse(response(&booked)["appointment_id"].as_str().unwrap()).unwrap());
        }
    }
    let mut batch = Vec::new();
    while batch.len() < 10 {
        let received = stack.receive_sync_batch().await;
        assert!(!received.is_empty(), "ten messages were queued; got {}", batch.len());
        batch.extend(received);
    }
    // One of the demo company's messages is on its last receive.
    let last = batch
        .iter_mut()
        .find(|m| m.body.contains(ours[0].as_str()))
        .expect("the first booking's message");
    last.receive_count = 5;

    // Now the demo company's ResMan hangs on every call; the other company's answers.
    stack
        .faults(serde_json::json!({"hang_rate": 1.0, "accounts": [400]}))
        .await;
    let deps = WorkerDeps {
        resman: &resman,
        ..stack.worker()
    };
    let timeout = Duration::from_secs(10);
    let started = std::time::Instant::now();
    let failed = process_batch(&deps, &batch, Duration::from_secs(30), invocation(timeout.as_secs())).await;
    let took = started.elapsed();
    assert!(took < timeout, "the batch ran {took:?}, past its {timeout:?}");

    for id in &theirs {
        let tour = stack.store.tour(id).await.unwrap().unwrap();
        assert_eq!(
            tour.sync_status,
            SyncStatus::Synced,
            "{id}: the other company's write went through"
        );
    }
    let failed_bodies: Vec<&str> = batch
        .iter()
        .filter(|m| failed.iter().any(|f| f.id == m.id))
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(failed_bodies.len(), 5, "{failed_bodies:?}");
    assert!(
        ours.iter()
            .all(|id| failed_bodies.iter().any(|b| b.contains(id.as_str()))),
        "the hung company's five go back to the queue: {failed_bodies:?}"
    );
    let marked = stack.store.tour(&ours[0]).await.unwrap().unwrap();
    assert_eq!(
        marked.sync_status,
        SyncStatus::Failed,
        "its last receive marked it failed for staff"
    );
    for id in &ours[1..] {
        let tour = stack.store.tour(id).await.unwrap().unwrap();
        assert_eq!(tour.sync_status, SyncStatus::Pending, "{id}: still owed, it comes back");
    }
}
