//! `api-keys`: how operators issue, list and revoke API keys, in the secret that `API_KEYS_SECRET_ARN` names. Each
//! key has a name, a role (`chatbot`, `manager`, `operator`) and the ResMan accounts (management companies) it may
//! touch. A new key is printed once and kept only as its SHA-256: nothing can show it again. The functions read the
//! secret again within `SECRET_REFRESH_SECONDS`; a revoked key still works for `SecretGraceSeconds` (the rotation
//! grace), as any key removed from the secret does.
//!
//! ```text
//! api-keys list
//! api-keys issue NAME ROLE ACCOUNTS      ACCOUNTS: * or AccountIDs and `default`, comma-separated (401,default)
//! api-keys revoke NAME
//! ```
//! `make key-list`, `make key-issue NAME=... ROLE=manager ACCOUNT=401`, `make key-revoke NAME=...` run it against the
//! local stack.

use std::process::ExitCode;
use tour_aws::secrets::SecretsManager;
use tour_core::domain::access::{Accounts, KeyFile, Role};

const USAGE: &str = "usage: api-keys list | api-keys issue NAME ROLE ACCOUNTS | api-keys revoke NAME
  ROLE: chatbot, manager or operator; ACCOUNTS: * or AccountIDs and `default`, comma-separated (401,default)";

fn role(word: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(word.trim().to_lowercase()))
        .map_err(|_| format!("the role {word:?} is not chatbot, manager or operator"))
}

/// A new key: 244 random bits (two version-4 UUIDs, 122 random bits each), in URL-safe hex after a `tbk_` prefix.
fn new_key() -> String {
    format!("tbk_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

async fn run(args: &[String]) -> Result<(), String> {
    let arn = tour_edge::config::required("API_KEYS_SECRET_ARN").map_err(|e| e.to_string())?;
    let secrets = SecretsManager::new(&tour_edge::config::aws().await);
    let raw = secrets.string(&arn).await.map_err(|e| e.to_string())?;
    let mut file = KeyFile::parse(&raw).map_err(|e| format!("the keys' secret: {e}"))?;
    let save = async |file: &KeyFile| {
        secrets
            .put_string(&arn, &file.to_json())
            .await
            .map_err(|e| e.to_string())
    };
    match args {
        [command] if command == "list" => {
            for key in file.keys() {
                println!("{:<32} {:<9} {}", key.name, key.role.as_str(), key.accounts);
            }
        }
        [command, name, role_word, accounts] if command == "issue" => {
            let (role, accounts) = (role(role_word)?, Accounts::parse_list(accounts)?);
            let key = new_key();
            file.issue(name, role, accounts.clone(), &key)?;
            save(&file).await?;
            println!("Issued {name:?}: {} for {accounts}.", role.as_str());
            println!("The key, shown this once (keep it where its holder keeps secrets):");
            println!("{key}");
        }
        [command, name] if command == "revoke" => {
            file.revoke(name)?;
            save(&file).await?;
            println!("Revoked {name:?}: refused once the functions read the secret again and its grace has passed.");
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("api-keys: {e}");
            ExitCode::FAILURE
        }
    }
}
