//! The analytics endpoints' use case: a property's figures over a period of its local dates, read by key (see
//! `adapters/dynamo/analytics.rs`) and computed by the pure rules of `domain::analytics`.

use super::AppError;
use super::availability::load_property;
use crate::domain::analytics::{self, Period, TourMetrics, TourTrends};
use crate::domain::slots::local_date;
use crate::domain::{InvalidField, ResManPropertyId};
use crate::ports::{AnalyticsStore, PropertyStore};
use chrono::{DateTime, NaiveDate, Utc};

pub struct AnalyticsDeps<'a> {
    pub properties: &'a dyn PropertyStore,
    pub analytics: &'a dyn AnalyticsStore,
}

/// `?property_id&from&to`: the period's defaults and span are settled once the property (and so its today) is known.
#[derive(Debug, Clone)]
pub struct AnalyticsQuery {
    pub property_id: ResManPropertyId,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl AnalyticsQuery {
    pub fn parse(property_id: Option<&str>, from: Option<&str>, to: Option<&str>) -> Result<Self, InvalidField> {
        let property_id =
            ResManPropertyId::parse(property_id.ok_or_else(|| InvalidField::new("property_id", "is required"))?)?;
        let from = analytics::parse_date("from", from)?;
        let to = analytics::parse_date("to", to)?;
        if let (Some(from), Some(to)) = (from, to) {
            // Both given: the span is known now, and named even for a property we do not serve.
            Period::new(from, to)?;
        }
        Ok(Self { property_id, from, to })
    }
}

async fn read(
    deps: &AnalyticsDeps<'_>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
) -> Result<(crate::domain::property::Property, Period, analytics::Facts), AppError> {
    let property = load_property(deps.properties, &query.property_id).await?;
    let period = Period::with_defaults(query.from, query.to, local_date(&property, now))?;
    let facts = deps
        .analytics
        .facts(&property.id, period.window(property.time_zone))
        .await?;
    Ok((property, period, facts))
}

/// `GET /api/resman/tours/metrics`.
pub async fn tour_metrics(
    deps: &AnalyticsDeps<'_>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
) -> Result<TourMetrics, AppError> {
    let (property, period, facts) = read(deps, query, now).await?;
    Ok(analytics::metrics(&property, &period, &facts, now))
}

/// `GET /api/resman/tours/trends`.
pub async fn tour_trends(
    deps: &AnalyticsDeps<'_>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
) -> Result<TourTrends, AppError> {
    let (property, period, facts) = read(deps, query, now).await?;
    Ok(analytics::trends(&property, &period, &facts))
}

/// One property, as the dashboard's picker lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PropertyEntry {
    pub property_id: String,
    pub name: String,
    pub time_zone: String,
}

/// `GET /api/resman/tours/properties`: the properties the caller's key reaches, by name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PropertiesView {
    pub properties: Vec<PropertyEntry>,
}

/// The properties in `properties` (a key's reach), sorted by name.
pub async fn properties_in_reach(properties: &dyn PropertyStore) -> Result<PropertiesView, AppError> {
    let mut entries: Vec<PropertyEntry> = properties
        .properties()
        .await?
        .into_iter()
        .map(|p| PropertyEntry {
            property_id: p.id.to_string(),
            name: p.name,
            time_zone: p.time_zone.name().to_owned(),
        })
        .collect();
    entries.sort_by(|a, b| (&a.name, &a.property_id).cmp(&(&b.name, &b.property_id)));
    Ok(PropertiesView { properties: entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_lists_only_the_properties_of_its_companies() {
        use crate::app::reach::InReach;
        use crate::domain::access::{AccountRef, Accounts};
        let store = crate::app::fakes::MemoryStore::with_property(crate::domain::property::tests::demo());
        let all = properties_in_reach(&InReach::new(&store, &Accounts::All))
            .await
            .unwrap();
        assert_eq!(all.properties.len(), 1);
        assert_eq!(all.properties[0].time_zone, "America/Chicago");
        let riverside = Accounts::Only([AccountRef::Id(crate::domain::resman::ResManAccountId(401))].into());
        let theirs = properties_in_reach(&InReach::new(&store, &riverside)).await.unwrap();
        assert!(theirs.properties.is_empty());
    }
}
