//! `send-digest PROPERTY_ID [WEEK]`: sends a property's weekly digest to its leasing team now: the week's figures
//! and a "was this booking useful?" rating link for each tour the team has not rated. WEEK is an ISO week
//! (`2026-W49`), `this` (the week so far; the default) or `last`. The scheduler sends the week before's digest by
//! itself every Monday from 8 am on the property's clock, once; this command is for a resend after a fix, or a look
//! at the week so far, and records nothing, so Monday's digest still goes. `make send-digest PROPERTY=... [WEEK=...]`
//! runs it against the local stack.

use std::process::ExitCode;
use tour_aws::dynamo::DynamoStore;
use tour_aws::ses::SesMailer;
use tour_core::app::digest::{DigestDeps, send_digest_now};
use tour_core::domain::digest::DigestWeek;
use tour_core::domain::email::Templates;
use tour_core::ports::PropertyStore;
use tour_edge::config::{self, ColdStart};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("send-digest: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (property, week) = match args.as_slice() {
        [property] => (property, "this"),
        [property, week] => (property, week.as_str()),
        _ => {
            eprintln!(
                "usage: send-digest PROPERTY_ID [WEEK]   (WEEK: 2026-W49, this or last; the functions' environment must be set)"
            );
            return Ok(ExitCode::from(2));
        }
    };
    let cold = ColdStart::begin().await;
    let store: DynamoStore = cold.store()?;
    let id = tour_core::domain::ResManPropertyId::parse(property)?;
    let Some(property) = store.property(&id).await? else {
        eprintln!("send-digest: no property {id}");
        return Ok(ExitCode::from(2));
    };
    let now = chrono::Utc::now();
    let today = now.with_timezone(&property.time_zone).date_naive();
    let week = match week {
        "this" => DigestWeek::of(today),
        "last" => DigestWeek::of(today - chrono::Duration::days(7)),
        raw => DigestWeek::parse(raw)?,
    };
    let mailer = SesMailer::new(
        &cold.sdk,
        config::required("SENDER_EMAIL")?,
        config::required("SES_CONFIGURATION_SET").ok(),
        config::optional_seconds("SES_TIMEOUT_SECONDS", 5)?,
    );
    let templates = Templates::defaults()?;
    let links = config::links(&cold.secrets).await?;
    let deps = DigestDeps {
        properties: &store,
        tours: &store,
        analytics: &store,
        digests: &store,
        mailer: &mailer,
        templates: &templates,
        links: &links,
    };
    match send_digest_now(&deps, &property, week, now).await? {
        Ok(to) => {
            println!(
                "Sent the digest of {} for {} ({}) to {}.",
                property.name,
                week.in_words(),
                week.label(),
                to.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(because) => {
            println!("Not sent: {because}.");
            Ok(ExitCode::FAILURE)
        }
    }
}
