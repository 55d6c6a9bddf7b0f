//! A generated customer base: ResMan accounts (management companies), each with properties and leasing staff. It is
//! loaded on both sides as an operator would onboard it: the accounts and properties into the ResMan sandbox (ResMan's
//! side), each account's credentials into its own secret, and each property's configuration into our table.

use serde_json::{Value, json};
use tour_core::domain::property::Property;
use uuid::Uuid;

/// Where the accounts' secrets go (the functions' default `RESMAN_ACCOUNT_SECRET_PREFIX`).
pub const ACCOUNT_SECRET_PREFIX: &str = "tour-booking/resman/accounts/";

/// The first generated account's `AccountID`; the sandbox's own (default) account is 400.
pub const FIRST_ACCOUNT: u64 = 1001;

pub struct Customers {
    /// Each account's id and key.
    pub accounts: Vec<(u64, String)>,
    /// Our configuration of every property, in account order.
    pub properties: Vec<Property>,
    /// The sandbox's load: `{"accounts": [...], "properties": [...]}`.
    sandbox_load: Value,
}

fn id(kind: u32, n: usize) -> Uuid {
    Uuid::from_u128((u128::from(kind) << 96) | n as u128)
}

/// `accounts` accounts of `per_account` properties each; every property has three leasing agents and one lead
/// source, opens 08:00 to 20:00 every day, in America/Chicago.
pub fn generate(accounts: usize, per_account: usize) -> Customers {
    let mut sandbox_accounts = Vec::new();
    let mut sandbox_properties = Vec::new();
    let mut properties = Vec::new();
    let mut keys = Vec::new();
    for a in 0..accounts {
        let account = FIRST_ACCOUNT + a as u64;
        let key = format!("generated-key-of-{account}");
        sandbox_accounts.push(json!({"account_id": account, "api_key": key}));
        keys.push((account, key));
        for p in 0..per_account {
            let n = a * per_account + p;
            let property_id = id(0x5c, n);
            let source = id(0x50, n);
            let agents: Vec<(Uuid, String)> = (0..3)
                .map(|s| (id(0xa6, n * 3 + s), format!("Agent{s} Property{n}")))
                .collect();
            let days = [
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            ];
            sandbox_properties.push(json!({
                "property_id": property_id,
                "name": format!("Generated Property {n}"),
                "street_address": format!("{n} Generated St"),
                "city": "Austin", "state": "TX", "zip": "78741",
                "time_zone": "America/Chicago",
                "office_hours": days.iter().map(|d| json!({"day": d, "open": "08:00", "close": "20:00"})).collect::<Vec<_>>(),
                "employees": agents.iter().map(|(id, name)| {
                    let (first, last) = name.split_once(' ').unwrap_or((name, "Agent"));
                    json!({"id": id, "first_name": first, "last_name": last, "email": format!("{id}@generated.example"), "is_leasing": true})
                }).collect::<Vec<_>>(),
                "prospect_sources": [{"id": source, "name": "DomIQ chatbot"}],
                "account_id": account,
            }));
            let hours: serde_json::Map<String, Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .map(|d| ((*d).to_owned(), json!([["08:00", "20:00"]])))
                .collect();
            let config = json!({
                "property_id": property_id.to_string(),
                "resman_account_id": account,
                "name": format!("Generated Property {n}"),
                "time_zone": "America/Chicago",
                "address": format!("{n} Generated St, Austin, TX 78741"),
                "prospect_source_id": source.to_string(),
                "office_hours": hours,
                "slot_step_minutes": 15,
                "buffer_after_minutes": 15,
                "minimum_notice_minutes": 60,
                "booking_horizon_days": 30,
                "self_guided_capacity": 2,
                "staff_notification_emails": [format!("leasing{n}@generated.example")],
                "agents": agents.iter().map(|(id, name)| json!({"id": id.to_string(), "name": name, "tour_types": ["in_person", "virtual"]})).collect::<Vec<_>>(),
                "tour_types": {
                    "in_person": {"duration_minutes": 45, "instructions": "Ask at the front desk."},
                    "virtual": {"duration_minutes": 30, "virtual_link": "https://meet.generated.example/tour", "instructions": "Open the link."}
                }
            });
            let parsed = tour_core::domain::property::parse_properties(&config.to_string())
                .expect("a generated property is valid")
                .remove(0);
            properties.push(parsed);
        }
    }
    Customers {
        accounts: keys,
        properties,
        sandbox_load: json!({"accounts": sandbox_accounts, "properties": sandbox_properties}),
    }
}

impl Customers {
    /// Loads ResMan's side into the sandbox at `sandbox_url`.
    pub async fn load_into_sandbox(&self, sandbox_url: &str) {
        let answer = reqwest::Client::new()
            .post(format!("{sandbox_url}/_sandbox/accounts"))
            .json(&self.sandbox_load)
            .send()
            .await
            .expect("the sandbox answers");
        assert!(
            answer.status().is_success(),
            "the sandbox refused the accounts: {}",
            answer.status()
        );
    }

    /// Tours the properties' staff already have in ResMan: `per_property` at each property, booked at the front desk
    /// (the sandbox's staff booking), on the days ahead. Returns how many were booked.
    pub async fn book_existing_tours(&self, sandbox_url: &str, per_property: usize) -> usize {
        use futures::StreamExt;
        let client = reqwest::Client::new();
        let today = chrono::Utc::now().date_naive();
        let mut bookings = Vec::new();
        for (n, property) in self.properties.iter().enumerate() {
            for k in 0..per_property {
                let agent = &property.agents[k % property.agents.len()];
                let day = today + chrono::Duration::days(1 + (k as i64 % 7));
                // 14:00 UTC onwards, an hour apart: 08:00 Chicago time and later, inside office hours.
                let start = day.and_hms_opt(14 + (k as u32 % 6), 0, 0).unwrap().and_utc();
                bookings.push(
                    client
                        .post(format!("{sandbox_url}/_sandbox/appointments"))
                        .json(&json!({
                            "property_id": property.id.as_str(), "agent_id": agent.id.as_str(),
                            "scheduled_at": start.to_rfc3339(), "duration_minutes": 45,
                            "prospect": {"first_name": "Existing", "last_name": format!("Prospect{n}x{k}"),
                                         "email": format!("existing{n}x{k}@generated.example")},
                        }))
                        .send(),
                );
            }
        }
        futures::stream::iter(bookings)
            .buffer_unordered(16)
            .filter(|answer| std::future::ready(answer.as_ref().is_ok_and(|a| a.status().is_success())))
            .count()
            .await
    }

    /// Our side: each account's secret, then each property's configuration.
    pub async fn onboard(&self, secrets: &aws_sdk_secretsmanager::Client, store: &tour_aws::dynamo::DynamoStore) {
        use tour_core::ports::PropertyStore;
        for (account, key) in &self.accounts {
            secrets
                .create_secret()
                .name(format!("{ACCOUNT_SECRET_PREFIX}{account}"))
                .secret_string(json!({"account_id": account, "api_key": key}).to_string())
                .send()
                .await
                .expect("the account's secret is created");
        }
        for property in &self.properties {
            store.save_property(property).await.expect("property stored");
        }
    }
}
