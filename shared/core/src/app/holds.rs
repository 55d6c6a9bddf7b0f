//! Holding an offered slot across chat turns (`POST /api/resman/tours/holds`): the rules are in `domain::hold`.

use super::AppError;
use super::availability::{SlotView, busy_around_date, load_property, reach_of_dates, slot_view};
use super::availability::{alternatives, candidates};
use crate::domain::hold::{HoldCommand, HoldMinutes, HoldPlace, HoldsPerHour, SlotHold, choose_place};
use crate::domain::property::Property;
use crate::domain::slots::{self, Busy, Slot};
use crate::domain::{HoldToken, InvalidField, TourType, UtcWindow};
use crate::domain::{booking::slot_at, record::Holder};
use crate::ports::{CalendarStore, HoldStore, HoldWrite, PropertyStore, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub struct HoldDeps<'a> {
    pub properties: &'a dyn PropertyStore,
    pub calendar: &'a dyn CalendarStore,
    pub holds: &'a dyn HoldStore,
    pub minutes: HoldMinutes,
    /// How many live holds the calling key may keep at a property in one hour.
    pub bound: HoldsPerHour,
    /// The calling key's name: its holds count against its bound.
    pub key: &'a str,
}

/// The answer to a hold request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    /// What the booking presents (`hold_token`) to get the slot.
    pub hold_token: String,
    pub conversation_id: String,
    pub property_id: String,
    pub tour_type: TourType,
    /// The slot held, as availability offers it.
    pub slot: SlotView,
    /// When the hold lapses by itself, in the property's zone (RFC 3339).
    pub held_until: String,
}

fn view(property: &Property, hold: &SlotHold) -> HoldView {
    let slot = Slot {
        start: hold.start.with_timezone(&property.time_zone),
        duration_minutes: u32::try_from((hold.end - hold.start).num_minutes()).unwrap_or(0),
        agent: hold.holder.agent().cloned(),
        free_agents: Vec::new(),
    };
    HoldView {
        hold_token: hold.token.to_string(),
        conversation_id: hold.conversation_id.as_str().to_owned(),
        property_id: property.id.to_string(),
        tour_type: hold.tour_type,
        slot: slot_view(property, hold.tour_type, &slot),
        held_until: hold.held_until.with_timezone(&property.time_zone).to_rfc3339(),
    }
}

/// Reads a hold request's raw body: over the limit is `TooLarge` (413), anything else wrong names its field (400).
pub fn parse_hold_body(body: &[u8]) -> Result<HoldCommand, AppError> {
    if body.len() > crate::domain::limits::HOLD_BODY_BYTES {
        return Err(AppError::TooLarge(crate::domain::limits::HOLD_BODY_BYTES));
    }
    Ok(HoldCommand::from_body(body)?)
}

/// Who may be held for the slot: every free agent (fairest first) or seat, or only the agent asked for.
fn holders_for(
    property: &Property,
    command: &HoldCommand,
    window: &UtcWindow,
    busy: &[Busy],
) -> Result<Vec<Holder>, AppError> {
    let free = candidates(property, command.tour_type, window, busy);
    let Some(agent) = &command.staff_member_id else {
        return Ok(free);
    };
    if !command.tour_type.needs_agent() {
        return Err(InvalidField::new("staff_member_id", "a self-guided tour has no staff member").into());
    }
    if !property.agents_for(command.tour_type).any(|a| &a.id == agent) {
        return Err(InvalidField::new("staff_member_id", "is not an agent who gives this tour type here").into());
    }
    Ok(free.into_iter().filter(|h| h.agent() == Some(agent)).collect())
}

/// Holds the slot asked for, for the conversation, until `now` plus the configured minutes: replacing the
/// conversation's previous hold, or answering with it when it already holds that slot. `token` is the new hold's
/// (random, made by the caller). A slot nobody can give is refused with the nearest free times; a key past its bound
/// at the property and hour is told when to come back (`TooManyHolds`, 429).
pub async fn place_hold(
    deps: &HoldDeps<'_>,
    command: &HoldCommand,
    token: HoldToken,
    now: DateTime<Utc>,
) -> Result<HoldView, AppError> {
    // The store compares whole seconds.
    let held_until = DateTime::from_timestamp((now + deps.minutes.duration()).timestamp(), 0).unwrap_or(now);
    // Another request of the same conversation may replace the hold between the read and the write, and another of
    // the same key take the place chosen: read again. Each lost race is another request's win, so after as many
    // rounds as there are places the key's hour is full (and answered so) or the hold is placed.
    for _ in 0..3 + usize::from(deps.bound.get()) {
        let (property, busy, previous) = tokio::join!(
            load_property(deps.properties, &command.property_id),
            busy_around_date(deps.calendar, &command.property_id, command.date, now),
            deps.holds.hold(&command.conversation_id),
        );
        let (property, previous) = (property?, previous?);
        property
            .tour_type(command.tour_type)
            .map_err(|e| InvalidField::new("tour_type", e.reason))?;
        let window = slot_at(
            &property,
            command.tour_type,
            command.date.and_time(command.time),
            now,
            ("date", "time"),
        )?;
        if let Some(previous) = previous
            .as_ref()
            .filter(|p| p.is_live(now) && p.answers(&property.id, &window, command))
        {
            return Ok(view(&property, previous));
        }
        let hour = HoldPlace::hour_of(window.start());
        let own = previous.as_ref().map(|p| &p.token);
        let taken = deps.holds.places(&property.id, deps.key, hour).await?;
        let number = match choose_place(deps.bound, &taken, own, &token, now) {
            Ok(number) => number,
            Err(wait) => {
                crate::metrics::count(crate::metrics::Metric::HoldLimitRefusals);
                tracing::warn!(property_id = %property.id, key = deps.key, "a key's holds at one hour reached the bound");
                return Err(AppError::TooManyHolds {
                    bound: deps.bound.get(),
                    retry_after: u32::try_from(wait.num_seconds()).unwrap_or(u32::MAX),
                });
            }
        };
        let place = HoldPlace {
            key: deps.key.to_owned(),
            hour,
            number,
        };
        let reach = reach_of_dates(&property, command.date, command.date)?;
        // The conversation's previous hold gives way to its new one.
        let busy: Vec<Busy> = slots::in_force(busy?, now, previous.as_ref().map(|p| &p.token))
            .into_iter()
            .filter(|b| b.window.overlaps(&reach))
            .collect();
        let mut raced = false;
        for holder in holders_for(&property, command, &window, &busy)? {
            let hold = SlotHold {
                token: token.clone(),
                conversation_id: command.conversation_id.clone(),
                property_id: property.id.clone(),
                tour_type: command.tour_type,
                holder,
                start: window.start(),
                end: window.end(),
                held_until,
                place: Some(place.clone()),
            };
            match deps.holds.place_hold(&property, &hold, previous.as_ref(), now).await? {
                HoldWrite::Placed => {
                    tracing::info!(property_id = %property.id, conversation_id = command.conversation_id.as_str(), "slot held");
                    return Ok(view(&property, &hold));
                }
                // That agent (or seat) was taken a moment ago: the next may still be free.
                HoldWrite::SlotTaken => continue,
                HoldWrite::Raced => {
                    raced = true;
                    break;
                }
            }
        }
        if !raced {
            return Err(AppError::SlotTaken {
                alternatives: alternatives(deps.calendar, &property, command.tour_type, &window, now).await?,
                field: "time",
            });
        }
    }
    Err(StoreError::Unavailable("the conversation's hold kept changing".into()).into())
}
