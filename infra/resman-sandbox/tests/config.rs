//! Library configuration and lifecycle: extra property files, validation, start and shutdown.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use resman_sandbox::{SandboxConfig, SeedError};
use serde_json::{Value, json};

const TUCSON: &str = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f03";

/// A JSON file in the temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn with(content: &Value) -> Self {
        let path = std::env::temp_dir().join(format!("sandbox-props-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, content.to_string()).expect("write temp file");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tucson(time_zone: &str) -> Value {
    json!([{
        "property_id": TUCSON,
        "name": "Ocotillo Commons",
        "street_address": "1 Speedway Blvd",
        "city": "Tucson",
        "state": "AZ",
        "zip": "85719",
        "time_zone": time_zone,
        "office_hours": [{"day": "mon", "open": "09:00", "close": "17:00"}],
        "employees": [{"id": "a1e0c3b2-0021-4c6a-9d1e-000000000021", "first_name": "Dana",
                       "last_name": "Ortiz", "email": "dana.ortiz@ocotillo.example"}],
        "prospect_sources": [{"id": "b7d3e8f0-0021-4d2c-8a5b-000000000021", "name": "DomIQ Chatbot"}]
    }])
}

#[tokio::test]
async fn load_properties_adds_properties_that_the_api_then_serves() {
    let file = TempFile::with(&tucson("America/Phoenix"));
    let mut config = test_config();
    config.load_properties(&file.0).expect("loads");
    assert_eq!(config.properties.len(), 3);
    let sandbox = Sandbox::start_with(config).await;
    let properties = sandbox.call_json("Account", "GetProperties", &[]).await;
    assert_eq!(properties["Properties"][2]["PropertyID"], TUCSON);
    let employees = sandbox
        .call_json("Leasing", "GetEmployees", &[("PropertyID", TUCSON)])
        .await;
    assert_eq!(employees["Employees"][0]["FirstName"], "Dana");
    assert_eq!(employees["Employees"][0]["IsLeasing"], true, "leasing unless said");
    sandbox.shutdown().await;
}

#[test]
fn load_properties_refuses_an_unknown_time_zone_and_leaves_the_config_as_it_was() {
    let file = TempFile::with(&tucson("Arizona/Tucson"));
    let mut config = SandboxConfig::demo();
    let error = config.load_properties(&file.0).expect_err("refused");
    assert!(matches!(error, SeedError::InvalidTimeZone { .. }), "{error}");
    assert!(error.to_string().contains(TUCSON), "{error}");
    assert_eq!(config.properties.len(), 2);
}

#[test]
fn load_properties_refuses_a_property_that_is_already_configured() {
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seed.json");
    let mut config = SandboxConfig::demo();
    let error = config.load_properties(&seed).expect_err("refused");
    assert!(
        matches!(error, SeedError::DuplicateId { kind: "property", .. }),
        "{error}"
    );
}

#[test]
fn load_properties_reports_a_missing_file() {
    let mut config = SandboxConfig::demo();
    let error = config
        .load_properties(std::path::Path::new("/nonexistent/props.json"))
        .expect_err("refused");
    assert!(matches!(error, SeedError::Read { .. }), "{error}");
}

#[tokio::test]
async fn start_refuses_a_hand_made_config_with_duplicate_properties() {
    let mut config = SandboxConfig::demo();
    config.properties.push(config.properties[0].clone());
    let error = resman_sandbox::start(config, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn base_url_is_loopback_http_on_the_bound_port() {
    let sandbox = Sandbox::start().await;
    assert_ne!(sandbox.running.addr.port(), 0);
    assert_eq!(
        sandbox.running.base_url(),
        format!("http://127.0.0.1:{}", sandbox.running.addr.port())
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_hanging_request() {
    let mut config = test_config();
    config.hang_duration = Duration::from_secs(60);
    let sandbox = Sandbox::start_with(config).await;
    sandbox.set_faults(json!({"hang_rate": 1.0})).await;
    let hanging = sandbox
        .client
        .post(sandbox.url("/Account/GetProperties"))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(hanging.expect_err("times out").is_timeout());
    let started = Instant::now();
    sandbox.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}
