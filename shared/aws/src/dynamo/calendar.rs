//! Busy time, the ResMan mirror, the poll checkpoint, the availability cache and property configurations.
//!
//! Items (single table):
//! - `PROPERTY` / `<property id>`: a property's configuration as JSON.
//! - `BUSY#<property>#<YYYY-MM>` / `<start UTC>#<kind>#<ref>`: one busy interval (`agent` absent for self-guided);
//!   the month partition and start-ordered sort key make a window one or two `Query` calls.
//! - `MIRROR#<appointment id>` / `MIRROR`: a ResMan appointment as last seen, with the key of its busy item and a
//!   `version` for compare-and-set.
//! - `GEN#<property>#<local date>` / `GEN`: the availability generation of a date, bumped by every change of busy
//!   time on that date in the same transaction as the change.
//! - `AVAIL#<property>#<local date>` / `<tour type>`: a cached answer stamped with the generation it was computed
//!   under; served only while that is still the date's generation and `expires_at` has not passed.
//! - `POLL#<property>` / `CHECKPOINT`: where the change poller stopped.

use super::{DynamoStore, Item, corrupt, key, n, s, unavailable};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use std::collections::BTreeSet;
use tour_core::domain::calendar::MirroredAppointment;
use tour_core::domain::property::{Property, PropertyFile};
use tour_core::domain::resman::TourEventStatus;
use tour_core::domain::slots::{Busy, Held, local_date};
use tour_core::domain::{AgentId, AppointmentId, HoldToken, ResManPropertyId, TourType, UtcWindow};
use tour_core::ports::{AvailabilityCache, CalendarStore, DayRead, MirrorOutcome, PropertyStore, StoreError};

const UTC_KEY: &str = "%Y-%m-%dT%H:%M:%SZ";
/// Busy items outlive their tour by this much, then TTL removes them.
const BUSY_RETENTION: Duration = Duration::days(2);
/// The longest tour we expect; a window query starts this much earlier to catch tours already under way.
const LONGEST_TOUR: Duration = Duration::hours(12);

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is missing")))
}

fn opt_text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn number(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text(item, name)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a time")))
}

pub(crate) fn busy_pk(property: &ResManPropertyId, start: DateTime<Utc>) -> String {
    format!("BUSY#{property}#{:04}-{:02}", start.year(), start.month())
}

pub(crate) fn busy_sk(start: DateTime<Utc>, kind: &str, reference: &str) -> String {
    format!("{}#{kind}#{reference}", start.format(UTC_KEY))
}

/// A busy item to write in a transaction.
pub(crate) fn busy_put(
    table: &str,
    property: &ResManPropertyId,
    agent: Option<&AgentId>,
    window: &UtcWindow,
    kind: &str,
    reference: &str,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(busy_item(property, agent, window, kind, reference)))
        .build()
        .map_err(corrupt("busy item"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A busy item: one interval of an agent (or a self-guided seat when `agent` is `None`).
pub(crate) fn busy_item(
    property: &ResManPropertyId,
    agent: Option<&AgentId>,
    window: &UtcWindow,
    kind: &str,
    reference: &str,
) -> Item {
    let mut item = key(
        busy_pk(property, window.start()),
        &busy_sk(window.start(), kind, reference),
    );
    item.insert("start".into(), s(window.start().to_rfc3339()));
    item.insert("end".into(), s(window.end().to_rfc3339()));
    item.insert("expires_at".into(), n((window.end() + BUSY_RETENTION).timestamp()));
    if let Some(agent) = agent {
        item.insert("agent".into(), s(agent.as_str()));
    }
    item
}

/// The local dates a window touches.
pub(crate) fn dates_of(property: &Property, window: &UtcWindow) -> BTreeSet<NaiveDate> {
    let first = local_date(property, window.start());
    let last = local_date(property, window.end() - Duration::seconds(1));
    first.iter_days().take_while(|d| *d <= last).collect()
}

/// Bumps the availability generation of each date (one transaction item per date).
pub(crate) fn generation_bumps(
    table: &str,
    property: &ResManPropertyId,
    dates: &BTreeSet<NaiveDate>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    dates
        .iter()
        .map(|date| {
            let update = Update::builder()
                .table_name(table)
                .set_key(Some(key(format!("GEN#{property}#{date}"), "GEN")))
                .update_expression("ADD generation :one")
                .expression_attribute_values(":one", n(1))
                .build()
                .map_err(corrupt("generation update"))?;
            Ok(TransactWriteItem::builder().update(update).build())
        })
        .collect()
}

/// Whether a failed transaction failed only on a condition (someone else won), not on the service.
pub(crate) fn lost_a_condition(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Vec<Option<String>>> {
    match err {
        SdkError::ServiceError(e) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(cancel) => Some(
                cancel
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}

fn mirror_from(item: &Item) -> Result<(ResManPropertyId, MirroredAppointment, u64), StoreError> {
    let property = ResManPropertyId::parse(text(item, "property_id")?).map_err(corrupt("property_id"))?;
    let window = UtcWindow::new(time(item, "start")?, time(item, "end")?).map_err(corrupt("window"))?;
    let appointment = MirroredAppointment {
        appointment_id: AppointmentId::parse(text(item, "appointment_id")?).map_err(corrupt("appointment_id"))?,
        agent: opt_text(item, "agent")
            .map(AgentId::parse)
            .transpose()
            .map_err(corrupt("agent"))?,
        window,
        status: TourEventStatus::from_resman(opt_text(item, "status")),
        as_of: time(item, "as_of")?,
    };
    Ok((property, appointment, number(item, "version")))
}

impl DynamoStore {
    async fn mirror_record(
        &self,
        appointment: &AppointmentId,
    ) -> Result<Option<(ResManPropertyId, MirroredAppointment, u64)>, StoreError> {
        self.get(key(format!("MIRROR#{appointment}"), "MIRROR"))
            .await?
            .as_ref()
            .map(mirror_from)
            .transpose()
    }

    async fn try_apply_mirror(
        &self,
        property: &Property,
        new: &MirroredAppointment,
    ) -> Result<Option<MirrorOutcome>, StoreError> {
        let old = self.mirror_record(&new.appointment_id).await?;
        if let Some((_, old, _)) = &old
            && (tour_core::domain::calendar::is_older(new.as_of, old.as_of) || !new.differs_from(old))
        {
            return Ok(Some(MirrorOutcome::Unchanged));
        }
        let reference = new.appointment_id.as_str();
        let mut items = Vec::new();
        let mut dates = BTreeSet::new();
        let new_key = (
            busy_pk(&property.id, new.window.start()),
            busy_sk(new.window.start(), "MIRROR", reference),
        );
        if let Some((old_property, old, _)) = &old
            && old.holds_time()
        {
            let old_key = (
                busy_pk(old_property, old.window.start()),
                busy_sk(old.window.start(), "MIRROR", reference),
            );
            let replaced_in_place = new.holds_time() && old_key == new_key && old_property == &property.id;
            if !replaced_in_place {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(old_key.0, &old_key.1)))
                    .build()
                    .map_err(corrupt("busy delete"))?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
            dates.extend(dates_of(property, &old.window));
        }
        if new.holds_time() {
            items.push(busy_put(
                &self.table,
                &property.id,
                new.agent.as_ref(),
                &new.window,
                "MIRROR",
                reference,
            )?);
            dates.extend(dates_of(property, &new.window));
        }
        items.extend(generation_bumps(&self.table, &property.id, &dates)?);
        let version = old.as_ref().map(|(_, _, v)| *v).unwrap_or(0);
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("MIRROR#{reference}")))
            .item("sk", s("MIRROR"))
            .item("property_id", s(property.id.as_str()))
            .item("appointment_id", s(reference))
            .item("start", s(new.window.start().to_rfc3339()))
            .item("end", s(new.window.end().to_rfc3339()))
            .item("status", s(new.status.as_resman()))
            .item("as_of", s(new.as_of.to_rfc3339()))
            .item("version", n(i64::try_from(version + 1).unwrap_or(i64::MAX)))
            .item("expires_at", n((new.window.end() + Duration::days(30)).timestamp()));
        if let Some(agent) = &new.agent {
            put = put.item("agent", s(agent.as_str()));
        }
        put = if old.is_some() {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", n(i64::try_from(version).unwrap_or(i64::MAX)))
        } else {
            put.condition_expression("attribute_not_exists(pk)")
        };
        items.push(
            TransactWriteItem::builder()
                .put(put.build().map_err(corrupt("mirror put"))?)
                .build(),
        );
        match self.transact(items).await {
            Ok(_) => Ok(Some(MirrorOutcome::Changed)),
            Err(e) if lost_a_condition(&e).is_some() => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl DynamoStore {
    /// The busy intervals of one month partition that start from `from` on and overlap `window`.
    async fn busy_of_month(
        &self,
        month: String,
        from: DateTime<Utc>,
        window: UtcWindow,
    ) -> Result<Vec<Busy>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(month.clone()))
                    .expression_attribute_values(":from", s(from.format(UTC_KEY).to_string()))
                    .expression_attribute_values(":to", s(format!("{}~", window.end().format(UTC_KEY))))
            })
            .await?;
        let mut busy = Vec::new();
        for item in &items {
            let interval = UtcWindow::new(time(item, "start")?, time(item, "end")?).map_err(corrupt("busy window"))?;
            if interval.overlaps(&window) {
                let agent = opt_text(item, "agent")
                    .map(AgentId::parse)
                    .transpose()
                    .map_err(corrupt("agent"))?;
                let held = match (opt_text(item, "hold_token"), item.get("held_until")) {
                    (Some(token), Some(_)) => Some(Held {
                        token: HoldToken::parse(token).map_err(corrupt("hold_token"))?,
                        until: DateTime::from_timestamp(
                            i64::try_from(number(item, "held_until")).unwrap_or(i64::MAX),
                            0,
                        )
                        .ok_or_else(|| StoreError::Corrupt("held_until is not a time".into()))?,
                    }),
                    _ => None,
                };
                busy.push(Busy {
                    agent,
                    window: interval,
                    held,
                });
            }
        }
        Ok(busy)
    }
}

#[async_trait]
impl CalendarStore for DynamoStore {
    async fn busy_in(&self, property: &ResManPropertyId, window: UtcWindow) -> Result<Vec<Busy>, StoreError> {
        let from = window.start() - LONGEST_TOUR;
        // Every month partition from the earliest possible start to the window's end, read at the same time.
        let mut months = Vec::new();
        let (mut year, mut month) = (from.year(), from.month());
        while (year, month) <= (window.end().year(), window.end().month()) {
            months.push(format!("BUSY#{property}#{year:04}-{month:02}"));
            (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        }
        let reads = months.into_iter().map(|month| self.busy_of_month(month, from, window));
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn mirrored(
        &self,
        appointment: &AppointmentId,
    ) -> Result<Option<(ResManPropertyId, MirroredAppointment)>, StoreError> {
        Ok(self.mirror_record(appointment).await?.map(|(p, m, _)| (p, m)))
    }

    async fn apply_mirror(
        &self,
        property: &Property,
        appointment: &MirroredAppointment,
    ) -> Result<MirrorOutcome, StoreError> {
        // A lost compare-and-set means the webhook and the poller raced: read again and decide again.
        for _ in 0..5 {
            if let Some(outcome) = self.try_apply_mirror(property, appointment).await? {
                return Ok(outcome);
            }
        }
        Err(StoreError::Unavailable(
            "the mirror record kept changing under us".into(),
        ))
    }

    async fn poll_checkpoint(&self, property: &ResManPropertyId) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.get(key(format!("POLL#{property}"), "CHECKPOINT"))
            .await?
            .as_ref()
            .map(|item| time(item, "until"))
            .transpose()
    }

    async fn advance_checkpoint(
        &self,
        property: &ResManPropertyId,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("POLL#{property}")))
            .item("sk", s("CHECKPOINT"))
            .item("until", s(to.to_rfc3339()));
        put = match from {
            Some(from) => put
                .condition_expression("#u = :from")
                .expression_attribute_names("#u", "until")
                .expression_attribute_values(":from", s(from.to_rfc3339())),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl PropertyStore for DynamoStore {
    async fn property(&self, id: &ResManPropertyId) -> Result<Option<Property>, StoreError> {
        let Some(item) = self.get(key("PROPERTY".into(), id.as_str())).await? else {
            return Ok(None);
        };
        property_from(&item).map(Some)
    }

    async fn properties(&self) -> Result<Vec<Property>, StoreError> {
        let mut all = Vec::new();
        let mut start_key = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s("PROPERTY"))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                all.push(property_from(item)?);
            }
            start_key = out.last_evaluated_key;
            if start_key.is_none() {
                return Ok(all);
            }
        }
    }

    async fn save_property(&self, property: &Property) -> Result<(), StoreError> {
        let body = serde_json::to_string(property.to_file()).map_err(corrupt("property"))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("PROPERTY"))
            .item("sk", s(property.id.as_str()))
            .item("config", s(body))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

fn property_from(item: &Item) -> Result<Property, StoreError> {
    let file: PropertyFile = serde_json::from_str(text(item, "config")?).map_err(corrupt("property config"))?;
    Property::from_file(file).map_err(corrupt("property config"))
}

#[async_trait]
impl AvailabilityCache for DynamoStore {
    async fn read_day(
        &self,
        property: &ResManPropertyId,
        date: NaiveDate,
        tour_type: TourType,
        now: DateTime<Utc>,
    ) -> Result<DayRead, StoreError> {
        let items = self
            .get_many(vec![
                key("PROPERTY".into(), property.as_str()),
                key(format!("GEN#{property}#{date}"), "GEN"),
                key(format!("AVAIL#{property}#{date}"), tour_type.as_str()),
            ])
            .await?;
        let of = |prefix: &str| {
            items
                .iter()
                .find(|i| opt_text(i, "pk").is_some_and(|pk| pk.starts_with(prefix)))
        };
        let generation = of("GEN#").map(|i| number(i, "generation")).unwrap_or(0);
        let fresh = of("AVAIL#")
            .filter(|i| {
                number(i, "generation") == generation
                    && number(i, "expires_at") > u64::try_from(now.timestamp()).unwrap_or(0)
            })
            .and_then(|i| opt_text(i, "body").map(str::to_owned));
        Ok(DayRead {
            property: of("PROPERTY").map(property_from).transpose()?,
            generation,
            fresh,
        })
    }

    async fn write(
        &self,
        property: &ResManPropertyId,
        date: NaiveDate,
        tour_type: TourType,
        generation: u64,
        body: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("AVAIL#{property}#{date}")))
            .item("sk", s(tour_type.as_str()))
            .item("generation", n(i64::try_from(generation).unwrap_or(i64::MAX)))
            .item("body", s(body))
            .item("expires_at", n(expires_at.timestamp()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn invalidate(&self, property: &ResManPropertyId, dates: &[NaiveDate]) -> Result<(), StoreError> {
        let dates: BTreeSet<NaiveDate> = dates.iter().copied().collect();
        for bump in generation_bumps(&self.table, property, &dates)? {
            if let Some(update) = bump.update {
                self.client
                    .update_item()
                    .table_name(update.table_name)
                    .set_key(Some(update.key))
                    .update_expression(update.update_expression)
                    .set_expression_attribute_values(update.expression_attribute_values)
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }
}
