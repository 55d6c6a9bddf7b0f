//! `load-properties FILE...`: validates property configurations and stores them in the table named by
//! `TABLE_NAME` (AWS, or moto through `AWS_ENDPOINT_URL`). How operators add or change a property; `make up` loads
//! the demo properties with it. Nothing is written unless every file is valid and every ResMan account the properties
//! name has its credentials secret.

use shared::adapters::dynamo::DynamoStore;
use shared::adapters::resman::AccountKeys;
use shared::domain::property::parse_properties;
use shared::ports::PropertyStore;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!(
            "usage: load-properties FILE.json [FILE.json ...]   (TABLE_NAME and the AWS environment must be set)"
        );
        return ExitCode::from(2);
    }
    let mut properties = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("{file}: cannot be read: {e}");
                return ExitCode::FAILURE;
            }
        };
        match parse_properties(&text) {
            Ok(mut found) => properties.append(&mut found),
            Err(invalid) => {
                eprintln!("{file}: {invalid}");
                return ExitCode::FAILURE;
            }
        }
    }
    let Ok(table) = shared::config::required("TABLE_NAME") else {
        eprintln!("TABLE_NAME is not set");
        return ExitCode::from(2);
    };
    let sdk = shared::config::aws().await;
    // A property of another ResMan account needs that account's credentials first: check them all before
    // writing anything.
    let secrets = shared::adapters::secrets::SecretsManager::new(&sdk);
    let accounts = match shared::config::resman_accounts(&secrets) {
        Ok(accounts) => accounts,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for property in &properties {
        if let Some(account) = property.account
            && let Err(e) = accounts.credentials(account).await
        {
            eprintln!(
                "{}: {e}. Create the secret {} first (JSON {{\"account_id\": {account}, \"api_key\": \"...\"}}); nothing was loaded.",
                property.id,
                accounts.secret_name(account)
            );
            return ExitCode::FAILURE;
        }
    }
    let store = DynamoStore::new(&sdk, table);
    for property in &properties {
        if let Err(e) = store.save_property(property).await {
            eprintln!("{}: could not be stored: {e}", property.id);
            return ExitCode::FAILURE;
        }
        let account = property.account.map_or_else(
            || "the default ResMan account".to_owned(),
            |a| format!("ResMan account {a}"),
        );
        println!(
            "loaded {} ({}, {}, {account})",
            property.name,
            property.id,
            property.time_zone.name()
        );
    }
    ExitCode::SUCCESS
}
