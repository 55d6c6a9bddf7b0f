//! "Which tour times are free?" — answered from the property's configuration and every busy time we know,
//! through a cache that a change of that date makes stale at once.

use super::AppError;
use crate::domain::property::Property;
use crate::domain::record::Holder;
use crate::domain::slots::{self, Busy, Slot};
use crate::domain::{InvalidField, ResManPropertyId, TourType, UtcWindow};
use crate::ports::{AvailabilityCache, CalendarStore, PropertyStore};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use crate::domain::slots::SlotView;

/// A valid availability question.
#[derive(Debug, Clone)]
pub struct AvailabilityQuery {
    pub property_id: ResManPropertyId,
    pub date: NaiveDate,
    /// Optional, as in the brief: without it, every type the property offers.
    pub tour_type: Option<TourType>,
}

impl AvailabilityQuery {
    /// From the query string's raw values; each missing or malformed one is named. An empty `tour_type` is none.
    pub fn parse(property_id: Option<&str>, date: Option<&str>, tour_type: Option<&str>) -> Result<Self, InvalidField> {
        let property_id =
            ResManPropertyId::parse(property_id.ok_or_else(|| InvalidField::new("property_id", "is required"))?)?;
        let date = date.ok_or_else(|| InvalidField::new("date", "is required"))?;
        let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
            .map_err(|_| InvalidField::new("date", "must be a date YYYY-MM-DD"))?;
        let tour_type = tour_type
            .filter(|t| !t.trim().is_empty())
            .map(TourType::parse)
            .transpose()?;
        Ok(Self {
            property_id,
            date,
            tour_type,
        })
    }
}

/// The seed's `AvailabilityResponse`, with the question echoed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityView {
    pub property_id: String,
    pub date: String,
    /// The type asked for, or `null` when the answer holds every type the property offers.
    pub tour_type: Option<String>,
    pub time_zone: String,
    pub available_slots: Vec<SlotView>,
    pub next_available_date: Option<String>,
    /// The office that day, so the chatbot can say why a day has no times without knowing the property's rules.
    #[serde(default)]
    pub office: OfficeDay,
}

/// The office on the asked date: its hours (local `HH:MM` pairs, none when it is closed), the note of a date with
/// hours of its own (`"Christmas Eve"`, `"Thanksgiving"`), and how much notice a tour needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficeDay {
    pub hours: Vec<[String; 2]>,
    pub note: Option<String>,
    pub minimum_notice_minutes: u32,
}

impl OfficeDay {
    pub fn of(property: &Property, date: NaiveDate) -> Self {
        let hhmm = |t: chrono::NaiveTime| t.format("%H:%M").to_string();
        Self {
            hours: property
                .hours_on(date)
                .ranges()
                .iter()
                .map(|&(open, close)| [hhmm(open), hhmm(close)])
                .collect(),
            note: property.note_on(date).map(str::to_owned),
            minimum_notice_minutes: property.minimum_notice_minutes,
        }
    }
}

/// Where the answer came from (for logs and metrics only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Computed,
}

pub struct AvailabilityDeps<'a> {
    pub calendar: &'a dyn CalendarStore,
    pub cache: &'a dyn AvailabilityCache,
    pub cache_ttl: Duration,
    /// The accounts the caller's key reaches: a property outside them is answered as unknown.
    pub reach: &'a crate::domain::access::Accounts,
}

pub async fn load_property(properties: &dyn PropertyStore, id: &ResManPropertyId) -> Result<Property, AppError> {
    properties.property(id).await?.ok_or_else(no_such_property)
}

/// A tour's property. A tour whose property is unknown (or out of the key's reach) is answered as no such tour, so a
/// tour id cannot be probed through its property.
pub async fn load_tours_property(
    properties: &dyn PropertyStore,
    tour: &crate::domain::record::TourRecord,
) -> Result<Property, AppError> {
    properties
        .property(&tour.property_id)
        .await?
        .ok_or_else(|| AppError::NotFound(crate::domain::InvalidField::new("appointment_id", "no such tour")))
}

fn no_such_property() -> AppError {
    AppError::NotFound(InvalidField::new("property_id", "no such property"))
}

/// The stretch of time that local dates `from..=to` can see busy: from the evening before (a tour running past
/// midnight) to the last date's end.
pub fn reach_of_dates(property: &Property, from: NaiveDate, to: NaiveDate) -> Result<UtcWindow, AppError> {
    let start = slots::day_window(property.time_zone, from).start() - Duration::hours(12);
    let end = slots::day_window(property.time_zone, to).end();
    UtcWindow::new(start, end).map_err(|e| AppError::Invalid(InvalidField::new("date", e.reason)))
}

/// Busy time in force at `now` touching local dates `from..=to` (and the evening before, for anything running past
/// midnight).
pub async fn busy_for_dates(
    calendar: &dyn CalendarStore,
    property: &Property,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<Busy>, AppError> {
    let busy = calendar
        .busy_in(&property.id, reach_of_dates(property, from, to)?)
        .await?;
    Ok(slots::in_force(busy, now, None))
}

/// Busy time touching a local date in whatever zone the property turns out to be in (UTC-12 to UTC+14), so it can
/// be read at the same time as the property's configuration. [`reach_of_dates`] narrows it once the zone is known.
/// Only what is in force at `now` is kept.
pub async fn busy_around_date(
    calendar: &dyn CalendarStore,
    property: &ResManPropertyId,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<Busy>, AppError> {
    let midnight = date.and_time(chrono::NaiveTime::MIN).and_utc();
    let window = UtcWindow::new(
        midnight - Duration::hours(14) - Duration::hours(12),
        midnight + Duration::days(1) + Duration::hours(12),
    )
    .map_err(|e| AppError::Invalid(InvalidField::new("date", e.reason)))?;
    Ok(slots::in_force(calendar.busy_in(property, window).await?, now, None))
}

pub fn slot_view(property: &Property, tour_type: TourType, slot: &Slot) -> SlotView {
    let agent = slot.agent.as_ref().and_then(|id| property.agent(id));
    SlotView {
        time: slot.start.to_rfc3339(),
        staff_member: agent
            .map(|a| a.name.clone())
            .unwrap_or_else(|| "Self-guided".to_owned()),
        staff_member_id: slot.agent.as_ref().map(|a| a.to_string()),
        duration: slot.duration_minutes,
        tour_type,
    }
}

/// The free slots of the date for the type asked for; without one, for every type the property offers, in time
/// order (each slot says its type), with the earliest next available date of any type when none is free.
pub async fn availability(
    deps: &AvailabilityDeps<'_>,
    query: &AvailabilityQuery,
    now: DateTime<Utc>,
) -> Result<(AvailabilityView, Source), AppError> {
    if let Some(tour_type) = query.tour_type {
        return availability_of(deps, query, tour_type, now).await;
    }
    let of = |tour_type| availability_of(deps, query, tour_type, now);
    let (in_person, virtual_, self_guided) =
        tokio::join!(of(TourType::InPerson), of(TourType::Virtual), of(TourType::SelfGuided));
    let mut views = Vec::new();
    let mut source = Source::Cache;
    for answer in [in_person, virtual_, self_guided] {
        match answer {
            Ok((view, from)) => {
                if from == Source::Computed {
                    source = Source::Computed;
                }
                views.push(view);
            }
            // A type this property does not offer is simply not in the answer.
            Err(AppError::Invalid(f)) if f.field == "tour_type" => {}
            Err(e) => return Err(e),
        }
    }
    let Some(first) = views.first().cloned() else {
        return Err(InvalidField::new("tour_type", "this property offers no tour type").into());
    };
    let mut slots: Vec<SlotView> = views.iter().flat_map(|v| v.available_slots.clone()).collect();
    slots.sort_by_key(|s| (DateTime::parse_from_rfc3339(&s.time).ok(), s.tour_type));
    let next_available_date = if slots.is_empty() {
        views.iter().filter_map(|v| v.next_available_date.clone()).min()
    } else {
        None
    };
    Ok((
        AvailabilityView {
            tour_type: None,
            available_slots: slots,
            next_available_date,
            ..first
        },
        source,
    ))
}

async fn availability_of(
    deps: &AvailabilityDeps<'_>,
    query: &AvailabilityQuery,
    tour_type: TourType,
    now: DateTime<Utc>,
) -> Result<(AvailabilityView, Source), AppError> {
    // One consistent read: the property, the date's generation and the cached answer.
    let day = deps
        .cache
        .read_day(&query.property_id, query.date, tour_type, now)
        .await?;
    let property = day
        .property
        .filter(|p| super::reach::reaches(deps.reach, p))
        .ok_or_else(no_such_property)?;
    property.tour_type(tour_type)?;
    slots::check_date(&property, query.date, now)?;

    if let Some(body) = day.fresh
        && let Ok(mut view) = serde_json::from_str::<AvailabilityView>(&body)
    {
        // The office's day is the property's as it now stands, whatever the cached answer was computed with.
        view.office = OfficeDay::of(&property, query.date);
        // Minimum notice moves on between computations: never serve a slot that has become too soon.
        let earliest = now + Duration::minutes(property.minimum_notice_minutes.into());
        let still_bookable = view
            .available_slots
            .iter()
            .all(|s| DateTime::parse_from_rfc3339(&s.time).is_ok_and(|t| t.with_timezone(&Utc) >= earliest));
        if still_bookable {
            return Ok((view, Source::Cache));
        }
    }

    let busy = busy_for_dates(deps.calendar, &property, query.date, query.date, now).await?;
    let free = slots::free_slots(&property, tour_type, query.date, &busy, now)?;
    let next_available_date = if free.is_empty() {
        let last = slots::horizon_end(&property, now);
        let later = busy_for_dates(deps.calendar, &property, query.date, last, now).await?;
        slots::next_available_date(&property, tour_type, query.date, &later, now).map(|d| d.to_string())
    } else {
        None
    };
    let view = AvailabilityView {
        property_id: property.id.to_string(),
        date: query.date.to_string(),
        tour_type: Some(tour_type.as_str().to_owned()),
        time_zone: property.time_zone.name().to_owned(),
        available_slots: free.iter().map(|s| slot_view(&property, tour_type, s)).collect(),
        next_available_date,
        office: OfficeDay::of(&property, query.date),
    };
    // A day with no slot depends on later dates too (its next available date), so only full answers are cached.
    if !view.available_slots.is_empty()
        && let Ok(body) = serde_json::to_string(&view)
    {
        // A slot hold lapses without a write: the answer is good only until the first hold it left out lapses.
        let expires =
            slots::next_lapse(&busy, now).map_or(now + deps.cache_ttl, |lapse| lapse.min(now + deps.cache_ttl));
        if let Err(e) = deps
            .cache
            .write(&property.id, query.date, tour_type, day.generation, &body, expires)
            .await
        {
            tracing::warn!(error = %e, "could not cache availability");
        }
    }
    Ok((view, Source::Computed))
}

/// Up to three free slots nearest the one asked for, that day or the following days within the horizon.
pub async fn alternatives(
    calendar: &dyn CalendarStore,
    property: &Property,
    tour_type: TourType,
    wanted: &UtcWindow,
    now: DateTime<Utc>,
) -> Result<Vec<SlotView>, AppError> {
    Ok(nearest_free(calendar, property, tour_type, wanted, now, 3)
        .await?
        .iter()
        .map(|s| slot_view(property, tour_type, s))
        .collect())
}

/// Up to `limit` free slots nearest `wanted`, from its day to a week later within the horizon, in time order.
pub async fn nearest_free(
    calendar: &dyn CalendarStore,
    property: &Property,
    tour_type: TourType,
    wanted: &UtcWindow,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<slots::Slot>, AppError> {
    let date = slots::local_date(property, wanted.start());
    let last = (date + Duration::days(7)).min(slots::horizon_end(property, now));
    let busy = busy_for_dates(calendar, property, date, last, now).await?;
    let mut found: Vec<slots::Slot> = Vec::new();
    for day in date.iter_days().take_while(|d| *d <= last) {
        found.extend(slots::free_slots(property, tour_type, day, &busy, now).unwrap_or_default());
        if found.len() >= limit && day > date {
            break;
        }
    }
    // The nearest to the time asked for, then listed in time order, as a person would read them.
    found.sort_by_key(|s| (s.start.with_timezone(&Utc) - wanted.start()).num_seconds().abs());
    found.truncate(limit);
    found.sort_by_key(|s| s.start);
    Ok(found)
}

/// The holders to try for a tour, fairest first: free agents for agent tours, seats for self-guided ones.
pub(crate) fn candidates(property: &Property, tour_type: TourType, window: &UtcWindow, busy: &[Busy]) -> Vec<Holder> {
    if tour_type.needs_agent() {
        slots::free_agents(property, tour_type, window, busy)
            .into_iter()
            .map(Holder::Agent)
            .collect()
    } else if slots::self_guided_overlaps(window, busy) < property.self_guided_capacity as usize {
        (0..property.self_guided_capacity).map(Holder::SelfGuidedSeat).collect()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::MemoryStore;
    use crate::domain::calendar::MirroredAppointment;
    use crate::domain::property::tests::demo;
    use crate::domain::resman::TourEventStatus;
    use crate::domain::slots::resolve_local;
    use crate::domain::{AgentId, AppointmentId};
    use crate::ports::CalendarStore;

    fn query(date: &str, tour_type: &str) -> AvailabilityQuery {
        AvailabilityQuery::parse(Some("P-1"), Some(date), Some(tour_type)).unwrap()
    }

    fn now() -> DateTime<Utc> {
        crate::domain::property::tests::monday_morning()
    }

    fn deps(store: &MemoryStore) -> AvailabilityDeps<'_> {
        AvailabilityDeps {
            calendar: store,
            cache: store,
            cache_ttl: Duration::seconds(60),
            reach: &crate::domain::access::EVERY_ACCOUNT,
        }
    }

    fn staff_tour(id: &str, agent: &str, local: &str, as_of: DateTime<Utc>) -> MirroredAppointment {
        let start = resolve_local(
            chrono_tz::America::Chicago,
            chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap(),
        )
        .unwrap();
        MirroredAppointment {
            appointment_id: AppointmentId::parse(id).unwrap(),
            agent: Some(AgentId::parse(agent).unwrap()),
            window: UtcWindow::starting_at(start, Duration::minutes(45)).unwrap(),
            status: TourEventStatus::Scheduled,
            as_of,
        }
    }

    fn times(view: &AvailabilityView) -> Vec<String> {
        view.available_slots.iter().map(|s| s.time.clone()).collect()
    }

    #[tokio::test]
    async fn without_a_tour_type_every_offered_type_is_answered_in_time_order_each_slot_saying_its_type() {
        let store = MemoryStore::with_property(demo());
        let every = AvailabilityQuery::parse(Some("P-1"), Some("2026-12-01"), None).unwrap();
        let (view, _) = availability(&deps(&store), &every, now()).await.unwrap();
        assert_eq!(view.tour_type, None);
        let times: Vec<_> = view
            .available_slots
            .iter()
            .map(|s| DateTime::parse_from_rfc3339(&s.time).unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
        for tour_type in TourType::ALL {
            let (one, _) = availability(&deps(&store), &query("2026-12-01", tour_type.as_str()), now())
                .await
                .unwrap();
            assert_eq!(one.tour_type.as_deref(), Some(tour_type.as_str()));
            assert!(!one.available_slots.is_empty());
            let mine: Vec<_> = view
                .available_slots
                .iter()
                .filter(|s| s.tour_type == tour_type)
                .cloned()
                .collect();
            assert_eq!(mine, one.available_slots, "{tour_type:?}: as its own answer gives them");
        }
        // A closed day: no slot of any type, and the earliest next date of any type.
        let closed = AvailabilityQuery::parse(Some("P-1"), Some("2026-12-25"), Some(" ")).unwrap();
        assert_eq!(closed.tour_type, None, "an empty tour_type is none");
        let (view, _) = availability(&deps(&store), &closed, now()).await.unwrap();
        assert!(view.available_slots.is_empty());
        assert_eq!(view.next_available_date.as_deref(), Some("2026-12-26"));
        assert_eq!(
            AvailabilityQuery::parse(Some("P-1"), Some("2026-12-01"), Some("walk"))
                .unwrap_err()
                .field,
            "tour_type"
        );
    }

    #[tokio::test]
    async fn the_second_ask_is_served_from_the_cache() {
        let store = MemoryStore::with_property(demo());
        let (first, source) = availability(&deps(&store), &query("2026-12-01", "in_person"), now())
            .await
            .unwrap();
        assert_eq!(source, Source::Computed);
        assert_eq!(first.available_slots[0].time, "2026-12-01T09:00:00-06:00");
        assert_eq!(first.available_slots[0].staff_member, "Alex Rivera");
        assert_eq!(first.time_zone, "America/Chicago");
        let (second, source) = availability(&deps(&store), &query("2026-12-01", "in_person"), now())
            .await
            .unwrap();
        assert_eq!((second, source), (first, Source::Cache));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cache_hit_is_one_store_call_and_a_miss_adds_only_the_busy_time_and_the_cache_write() {
        let trip = std::time::Duration::from_millis(10);
        let store = MemoryStore {
            trips: crate::app::fakes::Trips::with_delay(trip),
            ..MemoryStore::with_property(demo())
        };
        let (deps, query) = (deps(&store), query("2026-12-01", "in_person"));
        let ask = || availability(&deps, &query, now());
        let started = tokio::time::Instant::now();
        assert_eq!(ask().await.unwrap().1, Source::Computed);
        assert_eq!(
            store.trips.count(),
            3,
            "miss: property, generation and cache in one read; busy time; cache write"
        );
        assert_eq!(started.elapsed(), trip * 3);

        let started = tokio::time::Instant::now();
        assert_eq!(ask().await.unwrap().1, Source::Cache);
        assert_eq!(store.trips.count(), 4, "hit: one read");
        assert_eq!(started.elapsed(), trip);
    }

    #[tokio::test]
    async fn a_cached_answer_is_replaced_after_a_change_on_that_date() {
        let store = MemoryStore::with_property(demo());
        availability(&deps(&store), &query("2026-12-01", "virtual"), now())
            .await
            .unwrap();
        // Alex, the only virtual-tour agent, is booked in ResMan at 10:00 for 45 minutes.
        store
            .apply_mirror(&demo(), &staff_tour("R-1", "A", "2026-12-01 10:00", now()))
            .await
            .unwrap();
        let (after, source) = availability(&deps(&store), &query("2026-12-01", "virtual"), now())
            .await
            .unwrap();
        assert_eq!(source, Source::Computed, "the change made the cached answer stale");
        assert!(!times(&after).contains(&"2026-12-01T10:00:00-06:00".to_owned()));
        assert!(!times(&after).contains(&"2026-12-01T10:30:00-06:00".to_owned()));
    }

    #[tokio::test]
    async fn a_change_on_another_date_keeps_the_cache() {
        let store = MemoryStore::with_property(demo());
        availability(&deps(&store), &query("2026-12-01", "virtual"), now())
            .await
            .unwrap();
        store
            .apply_mirror(&demo(), &staff_tour("R-2", "A", "2026-12-02 10:00", now()))
            .await
            .unwrap();
        let (_, source) = availability(&deps(&store), &query("2026-12-01", "virtual"), now())
            .await
            .unwrap();
        assert_eq!(source, Source::Cache);
    }

    #[tokio::test]
    async fn a_cached_slot_that_has_become_too_soon_is_never_served() {
        let store = MemoryStore::with_property(demo());
        availability(&deps(&store), &query("2026-12-01", "in_person"), now())
            .await
            .unwrap();
        let later = resolve_local(
            chrono_tz::America::Chicago,
            NaiveDate::from_ymd_opt(2026, 12, 1)
                .unwrap()
                .and_hms_opt(8, 30, 0)
                .unwrap(),
        )
        .unwrap();
        let d = AvailabilityDeps {
            cache_ttl: Duration::days(2),
            reach: &crate::domain::access::EVERY_ACCOUNT,
            ..deps(&store)
        };
        let (view, source) = availability(&d, &query("2026-12-01", "in_person"), later)
            .await
            .unwrap();
        assert_eq!(source, Source::Computed);
        assert_eq!(view.available_slots[0].time, "2026-12-01T09:30:00-06:00");
    }

    #[tokio::test]
    async fn the_answer_says_the_offices_hours_and_note_that_day_cached_or_not() {
        let mut json = crate::domain::property::tests::demo_json();
        json["exceptions"][1]["note"] = "Christmas Eve".into();
        let property = Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
        let store = MemoryStore::with_property(property);
        let ask = async |date| {
            availability(&deps(&store), &query(date, "in_person"), now())
                .await
                .unwrap()
        };
        let (eve, _) = ask("2026-12-24").await;
        let office = OfficeDay {
            hours: vec![["09:00".into(), "12:00".into()]],
            note: Some("Christmas Eve".into()),
            minimum_notice_minutes: 60,
        };
        assert_eq!(eve.office, office);
        let (again, source) = ask("2026-12-24").await;
        assert_eq!((source, again.office), (Source::Cache, office));
        let (christmas, _) = ask("2026-12-25").await;
        assert!(christmas.office.hours.is_empty(), "closed all day");
        let (tuesday, _) = ask("2026-12-01").await;
        assert_eq!(tuesday.office.hours, vec![["09:00".to_owned(), "18:00".to_owned()]]);
        assert_eq!(tuesday.office.note, None);
    }

    #[tokio::test]
    async fn a_full_day_points_to_the_next_available_date() {
        let store = MemoryStore::with_property(demo());
        let (view, _) = availability(&deps(&store), &query("2026-12-25", "in_person"), now())
            .await
            .unwrap();
        assert!(view.available_slots.is_empty());
        assert_eq!(view.next_available_date.as_deref(), Some("2026-12-26"));
    }

    #[tokio::test]
    async fn an_unknown_property_is_not_found_and_bad_questions_name_their_field() {
        let store = MemoryStore::with_property(demo());
        let unknown = AvailabilityQuery::parse(Some("NOPE"), Some("2026-12-01"), Some("in_person")).unwrap();
        assert!(
            matches!(availability(&deps(&store), &unknown, now()).await, Err(AppError::NotFound(f)) if f.field == "property_id")
        );
        let past = availability(&deps(&store), &query("2026-11-01", "in_person"), now()).await;
        assert!(matches!(past, Err(AppError::Invalid(f)) if f.field == "date"));
        assert_eq!(
            AvailabilityQuery::parse(None, Some("2026-12-01"), Some("virtual"))
                .unwrap_err()
                .field,
            "property_id"
        );
        assert_eq!(
            AvailabilityQuery::parse(Some("P-1"), Some("12/01/2026"), Some("virtual"))
                .unwrap_err()
                .field,
            "date"
        );
        assert_eq!(
            AvailabilityQuery::parse(Some("P-1"), Some("2026-12-01"), Some("drone"))
                .unwrap_err()
                .field,
            "tour_type"
        );
        assert!(
            AvailabilityQuery::parse(Some("P-1"), Some("2026-12-01"), None).is_ok(),
            "tour_type is optional, as in the brief"
        );
    }
}
