//! A slot held across chat turns: the prospect picks a time in one turn and confirms in the next, and meanwhile
//! nobody else is offered that time or can book it.
//!
//! Rules:
//! - A hold is one offered slot (property, tour type, start, and the agent or self-guided seat who would give it),
//!   held for the configured few minutes under a random token.
//! - A conversation holds at most one slot: a new hold replaces the conversation's previous one, and asking again
//!   for the slot it already holds answers with the same hold (so a retried request holds once).
//! - A booking of the conversation that presents the token gets the held slot. Once the conversation books, its
//!   hold is gone.
//! - A hold lapses by itself at `held_until`: every check compares that instant with `now` (the store's conditions
//!   too), so nothing has to sweep it away. TTL only tidies the items up later.
//! - One API key keeps at most [`HoldsPerHour`] live holds at one property in one hour of its calendar (the hour the
//!   held slot starts in): each hold takes one of that many places ([`HoldPlace`]). Conversation ids are the
//!   caller's to choose, so the bound is the key's, not the conversation's: a key cannot fill a property's days
//!   with holds under made-up conversations. Past it the key is told when the first place frees
//!   ([`choose_place`]).

use super::{AgentId, HoldToken, InvalidField, ResManPropertyId, TourType, UtcWindow};
use super::{
    fields::{json_object, text_field},
    ids::ConversationId,
    record::Holder,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// How long a hold lasts: 1 to [`MAX_HOLD_MINUTES`] minutes, set per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldMinutes(u32);

/// Longer than a chat turn needs; a longer hold would keep times from other prospects.
pub const MAX_HOLD_MINUTES: u32 = 15;

impl HoldMinutes {
    pub fn new(minutes: u32) -> Result<Self, InvalidField> {
        if (1..=MAX_HOLD_MINUTES).contains(&minutes) {
            Ok(Self(minutes))
        } else {
            Err(InvalidField::new(
                "SLOT_HOLD_MINUTES",
                format!("must be 1 to {MAX_HOLD_MINUTES} minutes"),
            ))
        }
    }

    pub fn duration(self) -> Duration {
        Duration::minutes(self.0.into())
    }
}

impl Default for HoldMinutes {
    fn default() -> Self {
        Self(5)
    }
}

/// How many live holds one key may keep at one property in one hour: 1 to [`MAX_HOLDS_PER_HOUR`], set per
/// deployment (`HOLDS_PER_KEY_HOUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldsPerHour(u8);

/// More than any hour's slots at a property with a handful of agents and seats.
pub const MAX_HOLDS_PER_HOUR: u32 = 50;

impl HoldsPerHour {
    pub fn new(count: u32) -> Result<Self, InvalidField> {
        match u8::try_from(count) {
            Ok(count) if (1..=MAX_HOLDS_PER_HOUR).contains(&u32::from(count)) => Ok(Self(count)),
            _ => Err(InvalidField::new(
                "HOLDS_PER_KEY_HOUR",
                format!("must be 1 to {MAX_HOLDS_PER_HOUR} holds"),
            )),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for HoldsPerHour {
    /// A few: as many prospects of one property as are likely to be choosing the same hour at once.
    fn default() -> Self {
        Self(4)
    }
}

/// The place a hold takes among its key's [`HoldsPerHour`] at its property and hour.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HoldPlace {
    /// The name of the API key that placed the hold.
    pub key: String,
    /// The hour (UTC, on the hour) the held slot starts in.
    pub hour: DateTime<Utc>,
    pub number: u8,
}

impl HoldPlace {
    /// The hour a slot starting at `start` counts against.
    pub fn hour_of(start: DateTime<Utc>) -> DateTime<Utc> {
        DateTime::from_timestamp(start.timestamp().div_euclid(3600) * 3600, 0).unwrap_or(start)
    }
}

/// A place as the store holds it: the hold that took it last and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceTaken {
    pub number: u8,
    pub token: HoldToken,
    pub held_until: DateTime<Utc>,
}

/// Which place a new hold takes, given the places of its key, property and hour as read: the one its conversation's
/// previous hold (`own`) has, else a free one (never taken, or its hold lapsed), picked by the new hold's token so
/// that holds placed at once spread over the free places. With none free, how long until the first frees (at least
/// one second).
pub fn choose_place(
    bound: HoldsPerHour,
    taken: &[PlaceTaken],
    own: Option<&HoldToken>,
    token: &HoldToken,
    now: DateTime<Utc>,
) -> Result<u8, Duration> {
    let live = |number: u8| taken.iter().find(|p| p.number == number && now < p.held_until);
    if let Some(mine) = taken
        .iter()
        .find(|p| Some(&p.token) == own && now < p.held_until && p.number < bound.0)
    {
        return Ok(mine.number);
    }
    let free: Vec<u8> = (0..bound.0).filter(|n| live(*n).is_none()).collect();
    if free.is_empty() {
        let first = taken
            .iter()
            .filter(|p| p.number < bound.0)
            .map(|p| p.held_until)
            .min()
            .unwrap_or(now);
        return Err((first - now).max(Duration::seconds(1)));
    }
    let spread = token
        .as_str()
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    Ok(free[spread % free.len()])
}

/// A valid hold request. Its date and time are the property's local time, as in a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldCommand {
    pub conversation_id: ConversationId,
    pub property_id: ResManPropertyId,
    pub tour_type: TourType,
    pub date: NaiveDate,
    pub time: NaiveTime,
    /// The agent offered with the slot (`staff_member_id` in the availability answer), when the prospect chose one.
    pub staff_member_id: Option<AgentId>,
}

fn required(value: Option<String>, field: &'static str) -> Result<String, InvalidField> {
    super::fields::required(&value, field).map(str::to_owned)
}

/// An id as sent: at most [`super::limits::ID_CHARS`] characters counted before trimming, as the description's
/// `maxLength` counts them.
fn id_text(value: String, field: &'static str) -> Result<String, InvalidField> {
    super::fields::checked_text(&value, field, super::limits::ID_CHARS).map(str::to_owned)
}

/// Moves a parser's refusal to the field's name in this request.
fn named(field: &'static str) -> impl Fn(InvalidField) -> InvalidField {
    move |e| InvalidField::new(field, e.reason)
}

impl HoldCommand {
    /// Reads a raw body (at most [`super::limits::HOLD_BODY_BYTES`]); each missing or malformed field is named.
    pub fn from_body(body: &[u8]) -> Result<Self, InvalidField> {
        let object = json_object(body, super::limits::HOLD_BODY_BYTES)?;
        let field = |name: &'static str| text_field(&object, name, name);
        let conversation_id = ConversationId::parse(&id_text(
            required(field("conversation_id")?, "conversation_id")?,
            "conversation_id",
        )?)?;
        let property_id = ResManPropertyId::parse(&id_text(
            required(field("property_id")?, "property_id")?,
            "property_id",
        )?)
        .map_err(named("property_id"))?;
        let tour_type = TourType::parse(&required(field("tour_type")?, "tour_type")?).map_err(named("tour_type"))?;
        let date = NaiveDate::parse_from_str(required(field("date")?, "date")?.trim(), "%Y-%m-%d")
            .map_err(|_| InvalidField::new("date", "must be a date YYYY-MM-DD"))?;
        let time = NaiveTime::parse_from_str(required(field("time")?, "time")?.trim(), "%H:%M")
            .map_err(|_| InvalidField::new("time", "must be a time HH:MM (24-hour, the property's local time)"))?;
        let staff_member_id = field("staff_member_id")?
            .map(|v| id_text(v, "staff_member_id"))
            .transpose()?
            .filter(|v| !v.is_empty())
            .map(|v| AgentId::parse(&v).map_err(named("staff_member_id")))
            .transpose()?;
        Ok(Self {
            conversation_id,
            property_id,
            tour_type,
            date,
            time,
            staff_member_id,
        })
    }
}

/// A slot held for a conversation until `held_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotHold {
    pub token: HoldToken,
    pub conversation_id: ConversationId,
    pub property_id: ResManPropertyId,
    pub tour_type: TourType,
    pub holder: Holder,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub held_until: DateTime<Utc>,
    /// The place the hold takes among its key's at its property and hour (none for holds placed before the bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<HoldPlace>,
}

impl SlotHold {
    pub fn window(&self) -> UtcWindow {
        UtcWindow::new(self.start, self.end).unwrap_or_else(|_| unreachable!("a hold is made from a valid window"))
    }

    /// Whether the hold still holds at `now`: up to, not including, `held_until`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.held_until
    }

    /// Whether the hold is for this tour: same property, tour type and time.
    pub fn is_for(&self, property: &ResManPropertyId, tour_type: TourType, window: &UtcWindow) -> bool {
        &self.property_id == property && self.tour_type == tour_type && &self.window() == window
    }

    /// Whether a new hold request asks for what this hold already holds (then it is answered with this one).
    pub fn answers(&self, property: &ResManPropertyId, window: &UtcWindow, command: &HoldCommand) -> bool {
        self.is_for(property, command.tour_type, window)
            && command
                .staff_member_id
                .as_ref()
                .is_none_or(|agent| self.holder.agent() == Some(agent))
    }
}

/// The conversation's hold that a booking presents: the conversation's own hold, when the token is its token and the
/// booking is at the hold's property. The booking then consumes it: the held slot is the booking's when the hold
/// [`gives`](SlotHold::gives) it, and whatever else the hold held is freed with the booking. Any other token gives no
/// priority, and the booking is booked as any other.
pub fn presented<'a>(
    hold: Option<&'a SlotHold>,
    token: Option<&HoldToken>,
    property: &ResManPropertyId,
) -> Option<&'a SlotHold> {
    hold.filter(|h| Some(&h.token) == token && &h.property_id == property)
}

impl SlotHold {
    /// Whether the hold gives a booking of `tour_type` at `window` its slot at `now`: it is for that time and live.
    pub fn gives(&self, tour_type: TourType, window: &UtcWindow, now: DateTime<Utc>) -> bool {
        self.is_for(&self.property_id, tour_type, window) && self.is_live(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
            .and_utc()
    }

    fn hold() -> SlotHold {
        SlotHold {
            token: HoldToken::parse("tok-1").unwrap(),
            conversation_id: ConversationId::parse("conv-1").unwrap(),
            property_id: ResManPropertyId::parse("p1").unwrap(),
            tour_type: TourType::InPerson,
            holder: Holder::Agent(AgentId::parse("a1").unwrap()),
            start: at(15, 0),
            end: at(15, 45),
            held_until: at(10, 5),
            place: None,
        }
    }

    fn taken(number: u8, token: &str, held_until: DateTime<Utc>) -> PlaceTaken {
        PlaceTaken {
            number,
            token: HoldToken::parse(token).unwrap(),
            held_until,
        }
    }

    #[test]
    fn a_key_takes_a_free_place_its_conversations_own_or_is_told_when_the_first_frees() {
        let bound = HoldsPerHour::new(2).unwrap();
        let now = at(10, 0);
        let new = HoldToken::parse("new").unwrap();
        assert!(
            matches!(choose_place(bound, &[], None, &new, now), Ok(0 | 1)),
            "no place taken: any"
        );
        let one = [taken(0, "a", at(10, 3))];
        assert_eq!(choose_place(bound, &one, None, &new, now), Ok(1));
        let full = [taken(0, "a", at(10, 3)), taken(1, "b", at(10, 2))];
        assert_eq!(
            choose_place(bound, &full, None, &new, now),
            Err(Duration::minutes(2)),
            "the first place frees at 10:02"
        );
        let b = HoldToken::parse("b").unwrap();
        assert_eq!(
            choose_place(bound, &full, Some(&b), &new, now),
            Ok(1),
            "the conversation's own previous hold gives its place to its new one"
        );
        assert_eq!(
            choose_place(bound, &full, None, &new, at(10, 2)),
            Ok(1),
            "a lapsed hold's place is free at its instant"
        );
        let lapsing = [
            taken(0, "a", at(10, 3)),
            taken(1, "b", at(10, 0) + Duration::milliseconds(300)),
        ];
        assert_eq!(
            choose_place(bound, &lapsing, None, &new, now),
            Err(Duration::seconds(1)),
            "never told to come back in less than a second"
        );
        let narrower = HoldsPerHour::new(1).unwrap();
        assert!(
            choose_place(narrower, &one, None, &new, now).is_err(),
            "places beyond a lowered bound do not count as free"
        );
    }

    #[test]
    fn holds_at_once_spread_over_the_free_places_and_a_slot_counts_against_its_hour() {
        let bound = HoldsPerHour::new(4).unwrap();
        let chosen: std::collections::BTreeSet<u8> = (0..40)
            .filter_map(|i| {
                choose_place(
                    bound,
                    &[],
                    None,
                    &HoldToken::parse(&format!("tok-{i}")).unwrap(),
                    at(10, 0),
                )
                .ok()
            })
            .collect();
        assert!(chosen.len() > 1, "tokens spread over places: {chosen:?}");
        assert_eq!(HoldPlace::hour_of(at(15, 45)), at(15, 0));
        assert_eq!(HoldPlace::hour_of(at(15, 0)), at(15, 0));
    }

    #[test]
    fn the_bound_is_one_to_fifty_and_a_few_by_default() {
        assert!(HoldsPerHour::new(0).is_err());
        assert!(HoldsPerHour::new(51).is_err());
        assert!(HoldsPerHour::new(300).is_err());
        assert_eq!(HoldsPerHour::new(50).unwrap().get(), 50);
        assert_eq!(HoldsPerHour::default().get(), 4);
    }

    #[test]
    fn a_hold_lapses_at_its_instant_by_comparison_alone() {
        let h = hold();
        assert!(h.is_live(at(10, 4)));
        assert!(!h.is_live(at(10, 5)), "held_until itself is already lapsed");
        assert!(!h.is_live(at(11, 0)));
    }

    #[test]
    fn only_the_conversations_token_at_its_property_is_presented_and_only_a_live_hold_of_the_time_gives_it() {
        let h = hold();
        let p = ResManPropertyId::parse("p1").unwrap();
        let token = h.token.clone();
        assert!(presented(Some(&h), Some(&token), &p).is_some());
        let other = HoldToken::parse("tok-2").unwrap();
        assert!(presented(Some(&h), Some(&other), &p).is_none());
        assert!(presented(Some(&h), None, &p).is_none());
        assert!(presented(None, Some(&token), &p).is_none());
        assert!(presented(Some(&h), Some(&token), &ResManPropertyId::parse("p2").unwrap()).is_none());
        let window = h.window();
        let now = at(10, 0);
        assert!(h.gives(TourType::InPerson, &window, now));
        let later = UtcWindow::new(at(16, 0), at(16, 45)).unwrap();
        assert!(!h.gives(TourType::InPerson, &later, now));
        assert!(!h.gives(TourType::Virtual, &window, now));
        assert!(
            !h.gives(TourType::InPerson, &window, at(10, 5)),
            "a lapsed hold gives nothing"
        );
    }

    #[test]
    fn asking_again_for_the_held_slot_is_answered_by_the_hold() {
        let h = hold();
        let p = ResManPropertyId::parse("p1").unwrap();
        let mut command = HoldCommand {
            conversation_id: h.conversation_id.clone(),
            property_id: p.clone(),
            tour_type: TourType::InPerson,
            date: at(15, 0).date_naive(),
            time: at(15, 0).time(),
            staff_member_id: None,
        };
        assert!(h.answers(&p, &h.window(), &command));
        command.staff_member_id = Some(AgentId::parse("a1").unwrap());
        assert!(h.answers(&p, &h.window(), &command));
        command.staff_member_id = Some(AgentId::parse("a2").unwrap());
        assert!(!h.answers(&p, &h.window(), &command), "another agent is another hold");
    }

    #[test]
    fn a_hold_request_names_each_bad_field() {
        let ok = br#"{"conversation_id":"c1","property_id":"p1","tour_type":"in_person","date":"2026-12-03","time":"15:00"}"#;
        let command = HoldCommand::from_body(ok).unwrap();
        assert_eq!(command.time, NaiveTime::from_hms_opt(15, 0, 0).unwrap());
        assert_eq!(command.staff_member_id, None);
        let cases: [(&str, &str); 8] = [
            (
                r#"{"property_id":"p1","tour_type":"in_person","date":"2026-12-03","time":"15:00"}"#,
                "conversation_id",
            ),
            (
                r#"{"conversation_id":"c1","tour_type":"in_person","date":"2026-12-03","time":"15:00"}"#,
                "property_id",
            ),
            (
                r#"{"conversation_id":"c1","property_id":"p1","tour_type":"walk","date":"2026-12-03","time":"15:00"}"#,
                "tour_type",
            ),
            (
                r#"{"conversation_id":"c1","property_id":"p1","tour_type":"in_person","date":"3 Dec","time":"15:00"}"#,
                "date",
            ),
            (
                r#"{"conversation_id":"c1","property_id":"p1","tour_type":"in_person","date":"2026-12-03","time":"3pm"}"#,
                "time",
            ),
            (
                r#"{"conversation_id":"c1","property_id":"p1","tour_type":"in_person","date":"2026-12-03","time":15}"#,
                "time",
            ),
            (
                r#"{"conversation_id":"c1","property_id":"p 1","tour_type":"in_person","date":"2026-12-03","time":"15:00"}"#,
                "property_id",
            ),
            (
                r#"{"conversation_id":"c1","property_id":"p1","tour_type":"in_person","date":"2026-12-03","time":"15:00","staff_member_id":"<a>"}"#,
                "staff_member_id",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(
                HoldCommand::from_body(body.as_bytes()).unwrap_err().field,
                field,
                "{body}"
            );
        }
        assert_eq!(HoldCommand::from_body(b"[]").unwrap_err().field, "body");
    }

    #[test]
    fn hold_minutes_stay_a_few_minutes() {
        assert!(HoldMinutes::new(0).is_err());
        assert!(HoldMinutes::new(16).is_err());
        assert_eq!(HoldMinutes::new(15).unwrap().duration(), Duration::minutes(15));
        assert_eq!(HoldMinutes::default().duration(), Duration::minutes(5));
    }
}
