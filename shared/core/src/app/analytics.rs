//! The analytics endpoints' use case: a property's figures over a period of its local dates, read from the daily
//! rollups the table's change stream keeps (`app::rollups`): the property, then the period's day counters with its
//! flagged tours (one query), and for the attention list the scheduled tours of the next day (one query, beside
//! it). Three requests whatever the number of tours, for a month or a quarter.

use super::AppError;
use super::availability::load_property;
use crate::domain::analytics::{self, AttentionItem, Period, TourMetrics, TourTrends};
use crate::domain::rollup::Share;
use crate::domain::slots::local_date;
use crate::domain::{InvalidField, ResManPropertyId};
use crate::ports::{PropertyStore, Rollups};
use chrono::{DateTime, Duration, NaiveDate, Utc};

pub struct AnalyticsDeps<'a> {
    pub properties: &'a dyn PropertyStore,
    pub rollups: &'a dyn Rollups,
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

/// What the figures read: the property, the period, its day counters and flagged tours, and (when `attention` is
/// wanted) the scheduled tours of the next day, read beside the period.
struct Read {
    property: crate::domain::property::Property,
    period: Period,
    counters: Share,
    attention: Vec<AttentionItem>,
}

async fn read(
    deps: &AnalyticsDeps<'_>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
    attention: bool,
) -> Result<Read, AppError> {
    let property = load_property(deps.properties, &query.property_id).await?;
    let period = Period::with_defaults(query.from, query.to, local_date(&property, now))?;
    let days = deps.rollups.period(&property.id, period.from(), period.to());
    let upcoming = async {
        if attention {
            deps.rollups
                .scheduled_between(&property.id, now, now + Duration::hours(24))
                .await
        } else {
            Ok(Vec::new())
        }
    };
    let ((counters, flagged), upcoming) = tokio::try_join!(days, upcoming)?;
    Ok(Read {
        attention: analytics::attention_of(&period, flagged, upcoming),
        property,
        period,
        counters,
    })
}

/// `GET /api/resman/tours/metrics`.
pub async fn tour_metrics(
    deps: &AnalyticsDeps<'_>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
) -> Result<TourMetrics, AppError> {
    let read = read(deps, query, now, true).await?;
    Ok(analytics::metrics_of_days(
        &read.property,
        &read.period,
        &read.counters,
        read.attention,
        now,
    ))
}

/// `GET /api/resman/tours/trends`.
pub async fn tour_trends(
    deps: &AnalyticsDeps<'_>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
) -> Result<TourTrends, AppError> {
    let read = read(deps, query, now, false).await?;
    Ok(analytics::trends_of_days(&read.property, &read.period, &read.counters))
}

/// `GET /api/resman/tours/summary`: the dashboard's one call, the metrics and the trends of the same period from the
/// same reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TourSummary {
    pub metrics: TourMetrics,
    pub trends: TourTrends,
}

pub async fn tour_summary(
    deps: &AnalyticsDeps<'_>,
    query: &AnalyticsQuery,
    now: DateTime<Utc>,
) -> Result<TourSummary, AppError> {
    let read = read(deps, query, now, true).await?;
    Ok(TourSummary {
        trends: analytics::trends_of_days(&read.property, &read.period, &read.counters),
        metrics: analytics::metrics_of_days(&read.property, &read.period, &read.counters, read.attention, now),
    })
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
