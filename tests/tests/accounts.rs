//! Many customers: each property is reached with its own ResMan account's credentials, read from that account's
//! own secret (moto's Secrets Manager), against the sandbox holding several accounts.

use integration_tests::customers::{ACCOUNT_SECRET_PREFIX, generate};
use integration_tests::*;
use shared::adapters::resman::AccountKeys;
use shared::adapters::secrets::{AccountSecrets, SecretsManager};
use shared::domain::ResManPropertyId;
use shared::domain::resman::{ResManAccountId, ResManSite};
use shared::ports::{ResManError, ResManGateway};
use std::sync::Arc;
use std::time::Duration;

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
    let requests: Vec<serde_json::Value> = reqwest::get(format!("{}/_sandbox/requests", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let requests: Vec<serde_json::Value> = reqwest::get(format!("{}/_sandbox/requests", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(requests.is_empty(), "no call went out: {requests:?}");
}
