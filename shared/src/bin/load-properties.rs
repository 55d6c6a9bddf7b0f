//! `load-properties FILE...`: validates property configurations and stores them in the table named by
//! `TABLE_NAME` (AWS, or moto through `AWS_ENDPOINT_URL`). How operators add or change a property; `make up` loads
//! the demo properties with it. Nothing is written unless every file is valid.

use shared::adapters::dynamo::DynamoStore;
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
    let store = DynamoStore::new(&shared::config::aws().await, table);
    for property in &properties {
        if let Err(e) = store.save_property(property).await {
            eprintln!("{}: could not be stored: {e}", property.id);
            return ExitCode::FAILURE;
        }
        println!(
            "loaded {} ({}, {})",
            property.name,
            property.id,
            property.time_zone.name()
        );
    }
    ExitCode::SUCCESS
}
