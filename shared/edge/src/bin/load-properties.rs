//! `load-properties FILE...`: how operators add or change customers, with no deploy. Each file holds either property
//! configurations (one object or an array; stored in the table named by `TABLE_NAME`) or ResMan accounts
//! (`{"resman_accounts": [{"account_id": 401, "api_key": "..."}]}`; each stored in its own Secrets Manager secret,
//! `RESMAN_ACCOUNT_SECRET_PREFIX` + the id). `make up` loads the demo properties with it. Nothing is written unless
//! every file is valid and every ResMan account the properties name has its credentials (already, or in these files).
//! Keys are never printed.

use std::process::ExitCode;
use tour_aws::dynamo::DynamoStore;
use tour_aws::resman::{AccountCredentials, AccountKeys};
use tour_core::domain::property::{Property, parse_properties};
use tour_core::ports::PropertyStore;

/// A file of ResMan accounts.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    resman_accounts: Vec<AccountCredentials>,
}

/// What a file holds.
enum Loaded {
    Properties(Vec<Property>),
    Accounts(Vec<AccountCredentials>),
}

fn read(file: &str) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: cannot be read: {e}"))?;
    let is_accounts =
        serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("resman_accounts").is_some());
    if is_accounts {
        // Only the kind of error: serde's message could quote a key.
        let accounts: AccountsFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{file}: not a list of accounts {{\"account_id\": <number>, \"api_key\": \"...\"}} (line {})",
                e.line()
            )
        })?;
        if let Some(bad) = accounts.resman_accounts.iter().find(|a| a.account_id == 0) {
            return Err(format!(
                "{file}: account_id {} is not a ResMan AccountID",
                bad.account_id
            ));
        }
        return Ok(Loaded::Accounts(accounts.resman_accounts));
    }
    parse_properties(&text)
        .map(Loaded::Properties)
        .map_err(|invalid| format!("{file}: {invalid}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!(
            "usage: load-properties FILE.json [FILE.json ...]   (TABLE_NAME and the AWS environment must be set)"
        );
        return ExitCode::from(2);
    }
    let (mut properties, mut accounts) = (Vec::new(), Vec::new());
    for file in &files {
        match read(file) {
            Ok(Loaded::Properties(mut found)) => properties.append(&mut found),
            Ok(Loaded::Accounts(mut found)) => accounts.append(&mut found),
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::FAILURE;
            }
        }
    }
    let Ok(table) = tour_edge::config::required("TABLE_NAME") else {
        eprintln!("TABLE_NAME is not set");
        return ExitCode::from(2);
    };
    let sdk = tour_edge::config::aws().await;
    // A property of another ResMan account needs that account's credentials: check them all before writing anything.
    let secrets = tour_aws::secrets::SecretsManager::new(&sdk);
    let keys = match tour_edge::config::resman_accounts(&secrets) {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for property in &properties {
        let Some(account) = property.account else {
            continue;
        };
        if accounts.iter().any(|a| a.account_id == account.0) {
            continue;
        }
        if let Err(e) = keys.credentials(account).await {
            eprintln!(
                "{}: {e}. Load the account first (a file {{\"resman_accounts\": [{{\"account_id\": {account}, \"api_key\": \"...\"}}]}}, or create the secret {}); nothing was loaded.",
                property.id,
                keys.secret_name(account)
            );
            return ExitCode::FAILURE;
        }
    }
    for account in &accounts {
        let id = tour_core::domain::resman::ResManAccountId(account.account_id);
        let name = keys.secret_name(id);
        let value = match account.api_key.as_deref() {
            Some(key) => serde_json::json!({ "account_id": account.account_id, "api_key": key }),
            None => serde_json::json!({ "account_id": account.account_id }),
        };
        if let Err(e) = secrets.put_string(&name, &value.to_string()).await {
            eprintln!("ResMan account {id}: its credentials could not be stored: {e}");
            return ExitCode::FAILURE;
        }
        println!("stored the credentials of ResMan account {id} in the secret {name}");
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
