//! `recount PROPERTY_ID [FROM [TO]] [--repair]`: recounts a property's figures over a period of its local dates from
//! its tours (each read as it stands, as the rollups' consumer reads it) and compares them with the daily rollups,
//! printing every counter that differs. FROM and TO are dates (`2026-12-01`); the default is the 30 days up to today.
//! Exit status 0 when there is no difference, 1 when there is one.
//!
//! `--repair` first brings the rollups up to date with each of the period's tours (as if each tour's latest stream
//! record arrived again), which is also how tours booked before the rollups existed are counted. It is safe beside
//! the running consumer. `make recount PROPERTY=... [FROM=... TO=...] [REPAIR=1]` runs it against the local stack.

use std::process::ExitCode;
use tour_aws::dynamo::DynamoStore;
use tour_core::app::rollups::{RecountDeps, RollupDeps, recount, roll_up};
use tour_core::domain::analytics::{Period, parse_date};
use tour_core::ports::{AnalyticsStore, PropertyStore};
use tour_edge::config::ColdStart;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("recount: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repair = args.iter().any(|a| a == "--repair");
    let plain: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let (property, from, to) = match plain.as_slice() {
        [property] => (*property, None, None),
        [property, from] => (*property, Some(*from), None),
        [property, from, to] => (*property, Some(*from), Some(*to)),
        _ => {
            eprintln!(
                "usage: recount PROPERTY_ID [FROM [TO]] [--repair]   (dates YYYY-MM-DD; the functions' environment must be set)"
            );
            return Ok(ExitCode::from(2));
        }
    };
    let cold = ColdStart::begin().await;
    let store: DynamoStore = cold.store()?;
    let id = tour_core::domain::ResManPropertyId::parse(property)?;
    let Some(found) = store.property(&id).await? else {
        eprintln!("recount: no property {id}");
        return Ok(ExitCode::from(2));
    };
    let today = chrono::Utc::now().with_timezone(&found.time_zone).date_naive();
    let period = Period::with_defaults(parse_date("from", from)?, parse_date("to", to)?, today)?;
    if repair {
        let facts = store.facts(&id, period.window(found.time_zone)).await?;
        let tours: Vec<_> = facts
            .tours_by_start
            .iter()
            .chain(&facts.tours_by_booking)
            .map(|t| t.booking_id.clone())
            .collect();
        let deps = RollupDeps {
            rollups: &store,
            properties: &store,
        };
        let report = roll_up(&deps, &tours, &facts.refusals).await?;
        println!(
            "Brought the rollups up to date with {} tours ({} changed a figure or a flag) and {} refusals not counted \
             before.",
            report.tours, report.changed, report.refusals
        );
    }
    let deps = RecountDeps {
        rollups: &store,
        properties: &store,
        analytics: &store,
    };
    let differences = recount(&deps, &id, &period).await?;
    let days = period.dates().count();
    if differences.is_empty() {
        println!(
            "{}, {} to {} ({days} days): the rollups match a recount from the tours, 0 differences.",
            found.name,
            period.from(),
            period.to()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}, {} to {} ({days} days): {} counters differ (rollup, recount):",
        found.name,
        period.from(),
        period.to(),
        differences.len()
    );
    for d in &differences {
        println!("  {} {}: {} against {}", d.date, d.counter, d.rollup, d.recount);
    }
    println!("Run again with --repair to bring the rollups up to date from the tours.");
    Ok(ExitCode::FAILURE)
}
