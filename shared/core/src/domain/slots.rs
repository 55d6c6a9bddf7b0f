//! Free tour slots: pure functions of a property's configuration, the busy time we know of, and `now`.
//!
//! Rules:
//! - Slots start every `slot_step_minutes` from each opening time (local) and must end by closing time.
//! - A slot is taken by **overlap**, not by equal start times: an agent's tour blocks every candidate whose
//!   interval, widened by the property's buffers, overlaps the tour's interval widened the same way. So a
//!   45-minute tour at 10:00 blocks a 30-minute one at 10:30, and with a 15-minute buffer after, one at 10:45 too.
//! - Self-guided tours need no agent: at most `self_guided_capacity` may overlap (buffers do not apply: nobody
//!   has to walk back to the office).
//! - A slot starts at least `minimum_notice_minutes` after `now`; a date lies from today (local) to today +
//!   `booking_horizon_days`.
//! - Clock changes: a local time that does not exist (spring forward) is skipped; a local time that happens twice
//!   (fall back) is read as its earlier instant, so no slot is offered twice. Durations are real elapsed minutes.
//! - The agent offered is the free one with the fewest tours that day, then the first in configuration order,
//!   so tours spread fairly.

use super::property::Property;
use super::{AgentId, HoldToken, InvalidField, TourType, UtcWindow};
use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Time already taken: a tour (ours, one held by a booking in flight, or one read from ResMan), or a slot hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// `None` for a self-guided tour.
    pub agent: Option<AgentId>,
    pub window: UtcWindow,
    /// Set when the time is only held for a conversation, until an instant (see `domain::hold`).
    pub held: Option<Held>,
}

/// Whose hold a busy time is, and until when it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub token: HoldToken,
    pub until: DateTime<Utc>,
}

/// The busy time in force at `now`: holds that have lapsed are dropped (they lapse by comparison, not by a sweep),
/// and so is the caller's own hold (`own`), which must not stand in its own way.
pub fn in_force(busy: Vec<Busy>, now: DateTime<Utc>, own: Option<&HoldToken>) -> Vec<Busy> {
    busy.into_iter()
        .filter(|b| b.held.as_ref().is_none_or(|h| now < h.until && Some(&h.token) != own))
        .collect()
}

/// When the first hold among `busy` that is still in force lapses: an answer computed from `busy` holds until then.
pub fn next_lapse(busy: &[Busy], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    busy.iter()
        .filter_map(|b| b.held.as_ref().map(|h| h.until))
        .filter(|until| *until > now)
        .min()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Tz>,
    pub duration_minutes: u32,
    /// The agent who would give it (`None` for self-guided).
    pub agent: Option<AgentId>,
    /// Every agent free for it, best first; booking picks from these when the first was taken meanwhile.
    pub free_agents: Vec<AgentId>,
}

impl Slot {
    pub fn window(&self) -> UtcWindow {
        let start = self.start.with_timezone(&Utc);
        // A slot always has a positive duration (validated configuration), so the window is valid.
        UtcWindow::starting_at(start, Duration::minutes(self.duration_minutes.into()))
            .unwrap_or_else(|_| unreachable!("slot durations are positive"))
    }
}

/// An instant for a local wall-clock time: `None` in a spring-forward gap; the earlier of two at fall back.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// Like `resolve_local`, but a bound in a gap becomes the first instant after the gap (closing time stays real).
fn resolve_bound(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    (0..=180)
        .find_map(|minutes| resolve_local(tz, local + Duration::minutes(minutes)))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

/// The UTC window of a whole local date.
pub fn day_window(tz: Tz, date: NaiveDate) -> UtcWindow {
    let start = resolve_bound(tz, date.and_time(chrono::NaiveTime::MIN));
    let end = resolve_bound(tz, (date + Duration::days(1)).and_time(chrono::NaiveTime::MIN));
    UtcWindow::new(start, end).unwrap_or_else(|_| unreachable!("a day always ends after it starts"))
}

/// The property's local date at an instant.
pub fn local_date(property: &Property, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&property.time_zone).date_naive()
}

/// The last date that may be booked.
pub fn horizon_end(property: &Property, now: DateTime<Utc>) -> NaiveDate {
    local_date(property, now) + Duration::days(property.booking_horizon_days.into())
}

/// Whether `date` may be asked about now.
pub fn check_date(property: &Property, date: NaiveDate, now: DateTime<Utc>) -> Result<(), InvalidField> {
    if date < local_date(property, now) {
        return Err(InvalidField::new("date", "is in the past"));
    }
    if date > horizon_end(property, now) {
        return Err(InvalidField::new(
            "date",
            format!(
                "is beyond the booking horizon of {} days",
                property.booking_horizon_days
            ),
        ));
    }
    Ok(())
}

fn widened(property: &Property, window: &UtcWindow) -> UtcWindow {
    let before = Duration::minutes(property.buffer_before_minutes.into());
    let after = Duration::minutes(property.buffer_after_minutes.into());
    UtcWindow::new(window.start() - before, window.end() + after).unwrap_or(*window)
}

/// Whether `agent` is free for `window` given `busy`.
pub fn agent_is_free(property: &Property, agent: &AgentId, window: &UtcWindow, busy: &[Busy]) -> bool {
    let wanted = widened(property, window);
    !busy
        .iter()
        .filter(|b| b.agent.as_ref() == Some(agent))
        .any(|b| widened(property, &b.window).overlaps(&wanted))
}

/// How many self-guided tours overlap `window`.
pub fn self_guided_overlaps(window: &UtcWindow, busy: &[Busy]) -> usize {
    busy.iter()
        .filter(|b| b.agent.is_none() && b.window.overlaps(window))
        .count()
}

/// The agents free for `window`, fairest first: fewest tours that local day, then configuration order.
pub fn free_agents(property: &Property, tour_type: TourType, window: &UtcWindow, busy: &[Busy]) -> Vec<AgentId> {
    let day = day_window(property.time_zone, local_date(property, window.start()));
    let mut free: Vec<(usize, usize, AgentId)> = property
        .agents_for(tour_type)
        .enumerate()
        .filter(|(_, a)| agent_is_free(property, &a.id, window, busy))
        .map(|(order, a)| {
            let load = busy
                .iter()
                .filter(|b| b.agent.as_ref() == Some(&a.id) && b.window.overlaps(&day))
                .count();
            (load, order, a.id.clone())
        })
        .collect();
    free.sort();
    free.into_iter().map(|(_, _, id)| id).collect()
}

/// The free slots of a tour type on a local date.
pub fn free_slots(
    property: &Property,
    tour_type: TourType,
    date: NaiveDate,
    busy: &[Busy],
    now: DateTime<Utc>,
) -> Result<Vec<Slot>, InvalidField> {
    let config = property.tour_type(tour_type)?;
    check_date(property, date, now)?;
    let tz = property.time_zone;
    let duration = Duration::minutes(config.duration_minutes.into());
    let step = Duration::minutes(property.slot_step_minutes.into());
    let earliest = now + Duration::minutes(property.minimum_notice_minutes.into());
    let mut slots: Vec<Slot> = Vec::new();
    for (open, close) in property.hours_on(date).ranges() {
        let closing = resolve_bound(tz, date.and_time(*close));
        let mut local = date.and_time(*open);
        while local < date.and_time(*close) {
            let candidate = resolve_local(tz, local);
            local += step;
            let Some(start) = candidate else { continue };
            if start + duration > closing {
                break;
            }
            if start < earliest || slots.last().is_some_and(|s| s.start.with_timezone(&Utc) >= start) {
                continue;
            }
            let window =
                UtcWindow::starting_at(start, duration).map_err(|e| InvalidField::new("tour_type", e.reason))?;
            let (agent, free_agents) = if tour_type.needs_agent() {
                let free = free_agents(property, tour_type, &window, busy);
                match free.first() {
                    Some(first) => (Some(first.clone()), free),
                    None => continue,
                }
            } else {
                if self_guided_overlaps(&window, busy) >= property.self_guided_capacity as usize {
                    continue;
                }
                (None, Vec::new())
            };
            slots.push(Slot {
                start: start.with_timezone(&tz),
                duration_minutes: config.duration_minutes,
                agent,
                free_agents,
            });
        }
    }
    Ok(slots)
}

/// The first date after `date`, up to the horizon, that has a free slot; `busy` must cover those dates.
pub fn next_available_date(
    property: &Property,
    tour_type: TourType,
    date: NaiveDate,
    busy: &[Busy],
    now: DateTime<Utc>,
) -> Option<NaiveDate> {
    let last = horizon_end(property, now);
    let first = (date + Duration::days(1)).max(local_date(property, now));
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .find(|d| free_slots(property, tour_type, *d, busy, now).is_ok_and(|s| !s.is_empty()))
}

/// A free slot as the caller sees it (in an availability answer, or among a taken slot's alternatives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotView {
    /// RFC 3339 with the property's UTC offset.
    pub time: String,
    /// The agent's name, or "Self-guided".
    pub staff_member: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_member_id: Option<String>,
    /// Minutes.
    pub duration: u32,
    /// The slot's tour type: an answer for every type mixes them.
    pub tour_type: TourType,
}

/// A slot as an answer shows it, for tests: 10:15 on 1 December 2026, Central, with Alex.
#[cfg(any(test, feature = "testing"))]
pub fn sample_slot_view() -> SlotView {
    SlotView {
        time: "2026-12-01T10:15:00-06:00".into(),
        staff_member: "Alex Rivera".into(),
        staff_member_id: Some("A".into()),
        duration: 45,
        tour_type: TourType::InPerson,
    }
}

#[cfg(test)]
mod tests {
    use super::super::property::tests::{demo, demo_json};
    use super::super::property::{Property, PropertyFile};
    use super::*;
    use proptest::prelude::*;

    fn agent(id: &str) -> AgentId {
        AgentId::parse(id).unwrap()
    }

    fn property_with(change: impl FnOnce(&mut serde_json::Value)) -> Property {
        let mut json = demo_json();
        change(&mut json);
        Property::from_file(serde_json::from_value::<PropertyFile>(json).unwrap()).unwrap()
    }

    fn chicago(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
        resolve_local(chrono_tz::America::Chicago, date.and_hms_opt(h, m, 0).unwrap()).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Tuesday 1 December 2026; "now" is the Monday before, early, so notice never interferes unless meant to.
    fn tuesday() -> NaiveDate {
        day(2026, 12, 1)
    }

    fn monday_morning() -> DateTime<Utc> {
        super::super::property::tests::monday_morning()
    }

    fn busy(agent_id: Option<&str>, start: DateTime<Utc>, minutes: i64) -> Busy {
        Busy {
            agent: agent_id.map(agent),
            window: UtcWindow::starting_at(start, Duration::minutes(minutes)).unwrap(),
            held: None,
        }
    }

    fn held(agent_id: &str, start: DateTime<Utc>, token: &str, until: DateTime<Utc>) -> Busy {
        Busy {
            held: Some(Held {
                token: HoldToken::parse(token).unwrap(),
                until,
            }),
            ..busy(Some(agent_id), start, 45)
        }
    }

    #[test]
    fn a_hold_blocks_its_slot_until_it_lapses_and_never_blocks_its_own_conversation() {
        let property = demo();
        let ten = chicago(tuesday(), 10, 0);
        let now = monday_morning();
        let until = now + Duration::minutes(5);
        // Both agents held at 10:00: the slot is gone while the holds stand.
        let busy = vec![held("A", ten, "h1", until), held("B", ten, "h2", until)];
        let offered = |busy: Vec<Busy>, at: DateTime<Utc>| {
            local_times(&free_slots(&property, TourType::InPerson, tuesday(), &busy, at).unwrap())
        };
        assert!(!offered(in_force(busy.clone(), now, None), now).contains(&"10:00".to_owned()));
        // The holder's own hold does not keep the time from it.
        let own = HoldToken::parse("h1").unwrap();
        assert!(offered(in_force(busy.clone(), now, Some(&own)), now).contains(&"10:00".to_owned()));
        // At the instant the holds lapse, the time is free again: no sweep needed.
        assert!(offered(in_force(busy.clone(), until, None), until).contains(&"10:00".to_owned()));
        // A tour is never dropped.
        let tours = vec![busy_at("A", ten), busy_at("B", ten)];
        assert_eq!(in_force(tours.clone(), until, Some(&own)), tours);
        assert_eq!(next_lapse(&busy, now), Some(until));
        assert_eq!(next_lapse(&busy, until), None);
        assert_eq!(next_lapse(&tours, now), None);
    }

    fn busy_at(agent_id: &str, start: DateTime<Utc>) -> Busy {
        busy(Some(agent_id), start, 45)
    }

    fn local_times(slots: &[Slot]) -> Vec<String> {
        slots.iter().map(|s| s.start.format("%H:%M").to_string()).collect()
    }

    fn agent_of(slots: &[Slot], hhmm: &str) -> Option<String> {
        slots
            .iter()
            .find(|s| s.start.format("%H:%M").to_string() == hhmm)
            .and_then(|s| s.agent.as_ref().map(|a| a.to_string()))
    }

    #[test]
    fn an_open_day_offers_every_step_that_ends_by_closing() {
        let slots = free_slots(&demo(), TourType::InPerson, tuesday(), &[], monday_morning()).unwrap();
        let times = local_times(&slots);
        assert_eq!(times.first().map(String::as_str), Some("09:00"));
        assert_eq!(
            times.last().map(String::as_str),
            Some("17:15"),
            "a 45-minute tour must end by 18:00"
        );
        assert_eq!(slots.len(), 34);
        assert_eq!(slots[0].start.to_rfc3339(), "2026-12-01T09:00:00-06:00");
        assert_eq!(slots[0].duration_minutes, 45);
    }

    #[test]
    fn a_45_minute_tour_at_10_blocks_a_30_minute_tour_at_10_30_for_that_agent() {
        let p = property_with(|j| j["agents"][1]["tour_types"] = serde_json::json!(["in_person"]));
        let taken = [busy(Some("A"), chicago(tuesday(), 10, 0), 45)];
        let virtual_slots = free_slots(&p, TourType::Virtual, tuesday(), &taken, monday_morning()).unwrap();
        let times = local_times(&virtual_slots);
        for blocked in ["09:45", "10:00", "10:15", "10:30"] {
            assert!(
                !times.contains(&blocked.to_owned()),
                "{blocked} overlaps the 10:00-10:45 tour"
            );
        }
        assert!(times.contains(&"09:30".to_owned()) && times.contains(&"10:45".to_owned()));
    }

    #[test]
    fn a_taken_agent_is_replaced_by_a_free_one_and_the_slot_goes_only_when_all_are_taken() {
        let p = demo();
        let at_ten = chicago(tuesday(), 10, 0);
        let one = [busy(Some("A"), at_ten, 45)];
        let slots = free_slots(&p, TourType::InPerson, tuesday(), &one, monday_morning()).unwrap();
        assert_eq!(agent_of(&slots, "10:00").as_deref(), Some("B"));
        let both = [busy(Some("A"), at_ten, 45), busy(Some("B"), at_ten, 45)];
        let slots = free_slots(&p, TourType::InPerson, tuesday(), &both, monday_morning()).unwrap();
        assert!(agent_of(&slots, "10:00").is_none() && !local_times(&slots).contains(&"10:00".to_owned()));
    }

    #[test]
    fn buffers_keep_room_before_and_after_each_tour() {
        let p = property_with(|j| {
            j["buffer_before_minutes"] = 15.into();
            j["buffer_after_minutes"] = 15.into();
            j["agents"] = serde_json::json!([{"id": "A", "name": "Alex", "tour_types": ["in_person", "virtual"]}]);
        });
        // A 10:00-10:45 tour needs 10:45-11:00 after it and the next tour 15 minutes before it starts.
        let taken = [busy(Some("A"), chicago(tuesday(), 10, 0), 45)];
        let times = local_times(&free_slots(&p, TourType::Virtual, tuesday(), &taken, monday_morning()).unwrap());
        assert!(
            !times.contains(&"11:00".to_owned()),
            "11:00 leaves no buffer after plus before"
        );
        assert!(times.contains(&"11:15".to_owned()));
        assert!(
            !times.contains(&"09:30".to_owned()),
            "09:30-10:00 leaves no room for the buffers"
        );
        assert!(
            times.contains(&"09:00".to_owned()),
            "09:00-09:30, then 15 + 15 minutes, then 10:00"
        );
    }

    #[test]
    fn minimum_notice_hides_slots_too_soon() {
        let now = chicago(tuesday(), 10, 5);
        let times = local_times(&free_slots(&demo(), TourType::InPerson, tuesday(), &[], now).unwrap());
        assert_eq!(
            times.first().map(String::as_str),
            Some("11:15"),
            "60 minutes' notice from 10:05"
        );
    }

    #[test]
    fn dates_in_the_past_or_past_the_horizon_are_refused_naming_the_date() {
        let p = demo();
        let now = monday_morning();
        assert_eq!(
            free_slots(&p, TourType::InPerson, day(2026, 11, 29), &[], now)
                .unwrap_err()
                .field,
            "date"
        );
        assert!(free_slots(&p, TourType::InPerson, day(2026, 12, 30), &[], now).is_ok());
        let err = free_slots(&p, TourType::InPerson, day(2026, 12, 31), &[], now).unwrap_err();
        assert_eq!(err.field, "date");
        assert!(err.reason.contains("horizon"));
    }

    #[test]
    fn holidays_and_short_days_follow_their_exceptions() {
        let p = demo();
        assert!(
            free_slots(&p, TourType::InPerson, day(2026, 12, 25), &[], monday_morning())
                .unwrap()
                .is_empty()
        );
        let eve = local_times(&free_slots(&p, TourType::InPerson, day(2026, 12, 24), &[], monday_morning()).unwrap());
        assert_eq!(eve.last().map(String::as_str), Some("11:15"));
    }

    #[test]
    fn agents_who_do_not_give_a_tour_type_are_never_offered_for_it() {
        let slots = free_slots(&demo(), TourType::Virtual, tuesday(), &[], monday_morning()).unwrap();
        assert!(!slots.is_empty());
        assert!(
            slots
                .iter()
                .all(|s| s.agent.as_ref().map(|a| a.as_str()) == Some("A") && s.free_agents.len() == 1)
        );
    }

    #[test]
    fn an_unoffered_tour_type_is_refused_naming_the_tour_type() {
        let p = property_with(|j| {
            j["tour_types"].as_object_mut().unwrap().remove("virtual");
            j["agents"][0]["tour_types"] = serde_json::json!(["in_person"]);
        });
        assert_eq!(
            free_slots(&p, TourType::Virtual, tuesday(), &[], monday_morning())
                .unwrap_err()
                .field,
            "tour_type"
        );
    }

    #[test]
    fn self_guided_tours_are_limited_by_capacity_not_agents() {
        let p = demo();
        let at_ten = chicago(tuesday(), 10, 0);
        let one = [busy(None, at_ten, 30)];
        let times = local_times(&free_slots(&p, TourType::SelfGuided, tuesday(), &one, monday_morning()).unwrap());
        assert!(times.contains(&"10:00".to_owned()), "capacity 2, one taken");
        let two = [busy(None, at_ten, 30), busy(None, chicago(tuesday(), 10, 15), 30)];
        let slots = free_slots(&p, TourType::SelfGuided, tuesday(), &two, monday_morning()).unwrap();
        assert!(!local_times(&slots).contains(&"10:15".to_owned()));
        assert!(slots.iter().all(|s| s.agent.is_none()));
        // An agent's busy time does not limit self-guided tours.
        let agents_busy = [busy(Some("A"), at_ten, 45), busy(Some("B"), at_ten, 45)];
        let times =
            local_times(&free_slots(&p, TourType::SelfGuided, tuesday(), &agents_busy, monday_morning()).unwrap());
        assert!(times.contains(&"10:00".to_owned()));
    }

    #[test]
    fn tours_spread_to_the_agent_with_fewer_tours_that_day() {
        let p = demo();
        let taken = [
            busy(Some("A"), chicago(tuesday(), 9, 0), 45),
            busy(Some("A"), chicago(tuesday(), 14, 0), 45),
        ];
        let slots = free_slots(&p, TourType::InPerson, tuesday(), &taken, monday_morning()).unwrap();
        assert_eq!(agent_of(&slots, "11:00").as_deref(), Some("B"));
        assert_eq!(
            slots
                .iter()
                .find(|s| s.start.format("%H:%M").to_string() == "11:00")
                .unwrap()
                .free_agents
                .len(),
            2
        );
    }

    fn night_owl(zone: &str) -> Property {
        property_with(|j| {
            j["time_zone"] = zone.into();
            let night = serde_json::json!([["00:00", "05:00"]]);
            j["office_hours"] = serde_json::json!({"sun": night, "mon": night, "tue": night, "wed": night, "thu": night, "fri": night, "sat": night});
            j["slot_step_minutes"] = 30.into();
            j["tour_types"]["in_person"]["duration_minutes"] = 30.into();
            j["exceptions"] = serde_json::json!([]);
        })
    }

    #[test]
    fn on_the_spring_forward_day_no_slot_falls_in_the_missing_hour() {
        // 14 March 2027, America/Chicago: 02:00 jumps to 03:00.
        let p = night_owl("America/Chicago");
        let date = day(2027, 3, 14);
        let now = chicago(day(2027, 3, 13), 12, 0);
        let slots = free_slots(&p, TourType::InPerson, date, &[], now).unwrap();
        let times = local_times(&slots);
        assert_eq!(
            times,
            ["00:00", "00:30", "01:00", "01:30", "03:00", "03:30", "04:00", "04:30"]
        );
        assert_eq!(slots[3].start.to_rfc3339(), "2027-03-14T01:30:00-06:00");
        assert_eq!(slots[4].start.to_rfc3339(), "2027-03-14T03:00:00-05:00");
        // 01:30 CST + 30 minutes is 03:00 CDT: the real elapsed time, not wall-clock arithmetic.
        assert_eq!(slots[3].window().end(), slots[4].window().start());
    }

    #[test]
    fn on_the_fall_back_day_the_repeated_hour_is_offered_once_at_its_earlier_instant() {
        // 1 November 2026, America/Chicago: 02:00 CDT falls back to 01:00 CST.
        let p = night_owl("America/Chicago");
        let date = day(2026, 11, 1);
        let now = chicago(day(2026, 10, 31), 12, 0);
        let slots = free_slots(&p, TourType::InPerson, date, &[], now).unwrap();
        let instants: Vec<String> = slots.iter().map(|s| s.start.to_rfc3339()).collect();
        assert_eq!(
            instants[2], "2026-11-01T01:00:00-05:00",
            "01:00 is read as its first (CDT) instant"
        );
        assert_eq!(instants[3], "2026-11-01T01:30:00-05:00");
        assert_eq!(instants[4], "2026-11-01T02:00:00-06:00");
        assert_eq!(
            slots.len(),
            10,
            "ten half-hours from 00:00 to 05:00 local, none counted twice"
        );
        let mut unique = instants.clone();
        unique.dedup();
        assert_eq!(unique.len(), instants.len());
        // A tour booked at 01:00 CDT blocks that instant, and the CST 01:00 is never offered as a second one.
        let taken = [
            busy(Some("A"), slots[2].window().start(), 30),
            busy(Some("B"), slots[2].window().start(), 30),
        ];
        let after = local_times(&free_slots(&p, TourType::InPerson, date, &taken, now).unwrap());
        assert_eq!(after.iter().filter(|t| *t == "01:00").count(), 0);
    }

    #[test]
    fn a_zone_without_daylight_saving_keeps_its_offset_on_those_days() {
        let p = night_owl("America/Phoenix");
        let now = resolve_local(
            chrono_tz::America::Phoenix,
            day(2027, 3, 13).and_hms_opt(12, 0, 0).unwrap(),
        )
        .unwrap();
        let slots = free_slots(&p, TourType::InPerson, day(2027, 3, 14), &[], now).unwrap();
        assert_eq!(slots.len(), 10);
        assert!(slots.iter().all(|s| s.start.to_rfc3339().ends_with("-07:00")));
    }

    #[test]
    fn the_next_available_date_skips_closed_and_full_days() {
        let p = demo();
        // Christmas is closed, the 26th a Saturday with hours.
        assert_eq!(
            next_available_date(&p, TourType::InPerson, day(2026, 12, 24), &[], monday_morning()),
            Some(day(2026, 12, 26))
        );
        // Nothing after the horizon's last date.
        assert_eq!(
            next_available_date(&p, TourType::InPerson, day(2026, 12, 30), &[], monday_morning()),
            None
        );
    }

    proptest! {
        #[test]
        fn no_offered_slot_overlaps_busy_time_of_its_agent(
            tours in proptest::collection::vec((0usize..2, 0i64..(9 * 12), 1i64..13), 0..12),
            buffer in 0u32..4,
            tour_type_pick in 0usize..2,
        ) {
            let p = property_with(|j| {
                j["buffer_before_minutes"] = (buffer * 5).into();
                j["buffer_after_minutes"] = (buffer * 5).into();
            });
            let agents = ["A", "B"];
            let open = chicago(tuesday(), 9, 0);
            let busy: Vec<Busy> = tours
                .iter()
                .map(|(a, start, len)| busy(Some(agents[*a]), open + Duration::minutes(start * 5), len * 5))
                .collect();
            let tour_type = [TourType::InPerson, TourType::Virtual][tour_type_pick];
            let slots = free_slots(&p, tour_type, tuesday(), &busy, monday_morning()).unwrap();
            let pad = Duration::minutes((buffer * 5).into());
            for slot in &slots {
                let w = slot.window();
                prop_assert!(w.start() >= open && w.end() <= chicago(tuesday(), 18, 0));
                for a in &slot.free_agents {
                    prop_assert!(p.agent(a).is_some_and(|c| c.tour_types.contains(&tour_type)));
                    for b in busy.iter().filter(|b| b.agent.as_ref() == Some(a)) {
                        let gap_ok = w.end() + pad <= b.window.start() - pad || b.window.end() + pad <= w.start() - pad;
                        prop_assert!(gap_ok, "slot {:?} for {a} overlaps {:?}", w, b.window);
                    }
                }
            }
        }
    }
}
