//! The daily rollups of the figures ([`crate::domain::rollup`]): brought up to date with the tours a batch of the
//! table's change stream names, and recounted from the tours to prove them.

use super::AppError;
use crate::domain::analytics::Period;
use crate::domain::rollup::{Difference, RefusalRef, Share, apply, differences, refusal_share, tour_flags, tour_share};
use crate::domain::{BookingId, ResManPropertyId};
use crate::ports::{AnalyticsStore, PropertyStore, Rollups};
use chrono_tz::Tz;
use std::collections::{BTreeSet, HashMap};

/// How many times a tour's share is read and applied again when another consumer applied one meanwhile.
const TRIES: usize = 5;

#[derive(Clone, Copy)]
pub struct RollupDeps<'a> {
    pub rollups: &'a dyn Rollups,
    pub properties: &'a dyn PropertyStore,
}

/// What one batch did: the tours it named (each once) and how many of them moved a figure or a flag, and the
/// refusals counted (a refusal counted before is not counted again).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RollupReport {
    pub tours: usize,
    pub changed: usize,
    pub refusals: usize,
}

/// The zones of the properties met so far (a batch's tours are mostly of a few properties).
#[derive(Default)]
struct Zones(HashMap<ResManPropertyId, Option<Tz>>);

impl Zones {
    async fn of(&mut self, properties: &dyn PropertyStore, id: &ResManPropertyId) -> Result<Option<Tz>, AppError> {
        if let Some(zone) = self.0.get(id) {
            return Ok(*zone);
        }
        let zone = properties.property(id).await?.map(|p| p.time_zone);
        self.0.insert(id.clone(), zone);
        Ok(zone)
    }
}

/// Brings the rollups up to date with each tour named (the tours of a stream batch's records, whatever each record
/// carried): each tour is read as it now stands and its share and flags replace those applied for it. A tour no
/// longer there (its retention ended) keeps the share applied for it. And counts each refusal named, once. Safe to
/// run twice, late, or beside another consumer.
pub async fn roll_up(
    deps: &RollupDeps<'_>,
    tours: &[BookingId],
    refusals: &[RefusalRef],
) -> Result<RollupReport, AppError> {
    let mut zones = Zones::default();
    let mut report = RollupReport::default();
    let named: BTreeSet<&BookingId> = tours.iter().collect();
    for booking in named {
        report.tours += 1;
        if roll_up_one(deps, &mut zones, booking).await? {
            report.changed += 1;
        }
    }
    let refused: BTreeSet<&RefusalRef> = refusals.iter().collect();
    for refusal in refused {
        let Some(zone) = zones.of(deps.properties, &refusal.property).await? else {
            continue;
        };
        if deps
            .rollups
            .count_refusal(refusal, &refusal_share(zone, refusal.at))
            .await?
        {
            report.refusals += 1;
        }
    }
    Ok(report)
}

async fn roll_up_one(deps: &RollupDeps<'_>, zones: &mut Zones, booking: &BookingId) -> Result<bool, AppError> {
    for _ in 0..TRIES {
        let Some((parts, applied)) = deps.rollups.tour_for_rollup(booking).await? else {
            return Ok(false);
        };
        let Some(zone) = zones.of(deps.properties, &parts.tour.property_id).await? else {
            tracing::warn!(booking_id = %booking, "a tour of a property we no longer have: its figures are left as they were");
            return Ok(false);
        };
        let Some((change, after)) = apply(applied.as_ref(), tour_share(zone, &parts), tour_flags(zone, &parts)) else {
            return Ok(false);
        };
        if deps
            .rollups
            .apply_share(&parts, applied.as_ref(), &change, &after)
            .await?
        {
            return Ok(true);
        }
    }
    Err(AppError::Internal(format!(
        "the rollup of {booking} kept being applied by another consumer"
    )))
}

#[derive(Clone, Copy)]
pub struct RecountDeps<'a> {
    pub rollups: &'a dyn Rollups,
    pub properties: &'a dyn PropertyStore,
    pub analytics: &'a dyn AnalyticsStore,
}

/// A property's period recounted from its tours (each read as it stands, as the consumer reads it), against its
/// rollups: every counter of the period's dates that differs. Empty when the rollups are right.
pub async fn recount(
    deps: &RecountDeps<'_>,
    property_id: &ResManPropertyId,
    period: &Period,
) -> Result<Vec<Difference>, AppError> {
    let property = super::availability::load_property(deps.properties, property_id).await?;
    let facts = deps
        .analytics
        .facts(property_id, period.window(property.time_zone))
        .await?;
    let tours: BTreeSet<&BookingId> = facts
        .tours_by_start
        .iter()
        .chain(&facts.tours_by_booking)
        .map(|t| &t.booking_id)
        .collect();
    let mut shares = Vec::with_capacity(tours.len());
    for booking in tours {
        if let Some((parts, _)) = deps.rollups.tour_for_rollup(booking).await? {
            shares.push(tour_share(property.time_zone, &parts));
        }
    }
    shares.extend(facts.refusals.iter().map(|r| refusal_share(property.time_zone, r.at)));
    let recounted = crate::domain::rollup::recount(&shares);
    let (rollups, _): (Share, _) = deps.rollups.period(property_id, period.from(), period.to()).await?;
    Ok(differences(&rollups, &recounted, period.dates()))
}
