//! The messages a tour owes its prospect and the leasing staff, decided from the change that made them (pure), and
//! the words they are written in: times in the property's zone, with the zone named.

use super::lifecycle::Outcome;
use super::property::Property;
use super::{ids::BookingId, lifecycle::TourStatus, record::TourRecord};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// One kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The booking: what, when, where, with the calendar invite.
    Confirmation,
    /// Staff confirmed the tour.
    Confirmed,
    /// The tour moved: the updated invite (same `UID`, higher `SEQUENCE`).
    Rescheduled,
    /// The tour is off: the invite cancelled (`METHOD:CANCEL`).
    Cancelled,
    /// After a completed tour: thanks and the next steps.
    ThankYou,
    /// After a missed tour: an invitation to book again.
    Rebook,
    /// A booking accepted as pending that ResMan then refused: we could not book it (the invite withdrawn).
    NotBooked,
    /// The first reminder (the property's longer lead, 24 hours by default).
    Reminder,
    /// The last reminder (the shorter lead, 2 hours by default).
    LastReminder,
    /// Staff: a new tour.
    StaffNew,
    /// Staff: a tour moved.
    StaffMoved,
    /// Staff: a tour cancelled.
    StaffCancelled,
    /// The same three alerts as JSON to the property's staff webhook (a chat channel), when it has one.
    WebhookNew,
    WebhookMoved,
    WebhookCancelled,
    /// Staff: ResMan and our tour record different outcomes, and staff must say which holds.
    StaffDisagrees,
    /// `outcome: follow_up_needed`: the prospect hears that the guide will be in touch.
    FollowUp,
    /// `outcome: interested`, where the property has an `apply_url`: the application link.
    ApplyInvite,
    /// Staff: the same outcome opens a follow-up for the tour's agent, with the prospect's context.
    StaffFollowUp,
    WebhookFollowUp,
}

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Prospect,
    /// The assigned agent and the property's staff addresses.
    Staff,
    /// The property's staff webhook.
    StaffWebhook,
}

impl MessageKind {
    pub const ALL: [MessageKind; 20] = [
        Self::Confirmation,
        Self::Confirmed,
        Self::Rescheduled,
        Self::Cancelled,
        Self::ThankYou,
        Self::Rebook,
        Self::NotBooked,
        Self::Reminder,
        Self::LastReminder,
        Self::StaffNew,
        Self::StaffMoved,
        Self::StaffCancelled,
        Self::WebhookNew,
        Self::WebhookMoved,
        Self::WebhookCancelled,
        Self::StaffDisagrees,
        Self::FollowUp,
        Self::ApplyInvite,
        Self::StaffFollowUp,
        Self::WebhookFollowUp,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Confirmed => "confirmed",
            Self::Rescheduled => "rescheduled",
            Self::Cancelled => "cancelled",
            Self::ThankYou => "thank_you",
            Self::Rebook => "rebook",
            Self::NotBooked => "not_booked",
            Self::Reminder => "reminder",
            Self::LastReminder => "last_reminder",
            Self::StaffNew => "staff_new",
            Self::StaffMoved => "staff_moved",
            Self::StaffCancelled => "staff_cancelled",
            Self::WebhookNew => "webhook_new",
            Self::WebhookMoved => "webhook_moved",
            Self::WebhookCancelled => "webhook_cancelled",
            Self::StaffDisagrees => "staff_disagrees",
            Self::FollowUp => "follow_up",
            Self::ApplyInvite => "apply_invite",
            Self::StaffFollowUp => "staff_follow_up",
            Self::WebhookFollowUp => "webhook_follow_up",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn audience(&self) -> Audience {
        match self {
            Self::StaffNew | Self::StaffMoved | Self::StaffCancelled | Self::StaffDisagrees | Self::StaffFollowUp => {
                Audience::Staff
            }
            Self::WebhookNew | Self::WebhookMoved | Self::WebhookCancelled | Self::WebhookFollowUp => {
                Audience::StaffWebhook
            }
            _ => Audience::Prospect,
        }
    }

    /// A staff alert's twin for the staff webhook.
    pub fn webhook_twin(&self) -> Option<Self> {
        match self {
            Self::StaffNew => Some(Self::WebhookNew),
            Self::StaffMoved => Some(Self::WebhookMoved),
            Self::StaffCancelled => Some(Self::WebhookCancelled),
            Self::StaffFollowUp => Some(Self::WebhookFollowUp),
            _ => None,
        }
    }

    /// The staff alert a webhook message carries (`staff_new`, ...): the same words as the email's.
    pub fn alert(&self) -> Self {
        match self {
            Self::WebhookNew => Self::StaffNew,
            Self::WebhookMoved => Self::StaffMoved,
            Self::WebhookCancelled => Self::StaffCancelled,
            Self::WebhookFollowUp => Self::StaffFollowUp,
            other => *other,
        }
    }

    /// The calendar invite the message carries, by its `METHOD`.
    pub fn invite_method(&self) -> Option<&'static str> {
        match self {
            Self::Confirmation | Self::Confirmed | Self::Rescheduled => Some("REQUEST"),
            Self::Cancelled | Self::NotBooked => Some("CANCEL"),
            _ => None,
        }
    }

    /// Whether the message still fits a tour as it now stands: a confirmation or a reminder of a tour cancelled
    /// (or a hold ResMan refused) since it was owed is never sent; the cancellation itself is.
    pub fn fits(&self, tour: &TourRecord) -> bool {
        self.unfit_because(tour).is_none()
    }

    /// Why the message no longer fits the tour as it now stands (see [`MessageKind::fits`]), in words for the
    /// delivery record; `None` when it fits.
    pub fn unfit_because(&self, tour: &TourRecord) -> Option<String> {
        // A prospect who said they are not interested hears nothing more about the tour, but for the invite's
        // withdrawal (their calendar must not keep a tour that is off).
        if tour.outcome == Some(Outcome::NotInterested)
            && self.audience() == Audience::Prospect
            && !matches!(self, Self::Cancelled | Self::NotBooked)
        {
            return Some("the prospect is not interested".into());
        }
        let fits = match self {
            Self::Cancelled => tour.status == TourStatus::Cancelled,
            // Staff alerted of a new tour hear that it is off, whether cancelled or refused by ResMan.
            Self::StaffCancelled | Self::WebhookCancelled => {
                tour.status == TourStatus::Cancelled || tour.sync_status == super::record::SyncStatus::Rejected
            }
            Self::NotBooked => tour.sync_status == super::record::SyncStatus::Rejected,
            Self::ThankYou => tour.status == TourStatus::Completed,
            Self::Rebook => tour.status == TourStatus::NoShow,
            Self::StaffDisagrees => tour.disagreement.is_some(),
            Self::Confirmation
            | Self::Confirmed
            | Self::Rescheduled
            | Self::Reminder
            | Self::LastReminder
            | Self::StaffNew
            | Self::StaffMoved
            | Self::WebhookNew
            | Self::WebhookMoved => tour.status.is_open() && tour.sync_status != super::record::SyncStatus::Rejected,
            Self::FollowUp | Self::StaffFollowUp | Self::WebhookFollowUp => {
                tour.outcome == Some(Outcome::FollowUpNeeded)
            }
            Self::ApplyInvite => tour.outcome == Some(Outcome::Interested),
        };
        (!fits).then(|| match tour.outcome {
            Some(outcome) if !matches!(tour.status, TourStatus::Cancelled) && self.follows_an_outcome() => {
                format!("the outcome is {} now", outcome.as_str())
            }
            _ => format!("the tour is {} now", tour.status.as_str()),
        })
    }

    /// Whether an outcome (`PUT` with `outcome`) owes the message.
    fn follows_an_outcome(&self) -> bool {
        matches!(
            self,
            Self::FollowUp | Self::ApplyInvite | Self::StaffFollowUp | Self::WebhookFollowUp
        )
    }
}

/// One message a tour owes: its kind, and the version of the tour whose change made it owed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRef {
    pub booking_id: BookingId,
    pub kind: MessageKind,
    pub version: u64,
}

impl MessageRef {
    /// `<kind>#v<version>`: unique per tour, so writing it twice is one message.
    pub fn key(&self) -> String {
        format!("{}#v{}", self.kind.as_str(), self.version)
    }

    pub fn parse(booking_id: BookingId, key: &str) -> Option<Self> {
        let (kind, version) = key.split_once("#v")?;
        Some(Self {
            booking_id,
            kind: MessageKind::parse(kind)?,
            version: version.parse().ok()?,
        })
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    /// Every try failed: the message sits in the dead-letter queue for an operator.
    Failed,
    /// The tour changed so the message no longer fits (a confirmation of a tour cancelled since): not sent.
    Superseded,
}

/// A message's delivery record, as the tour read shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub message: MessageKind,
    pub version: u64,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// SES's message id, once sent.
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    /// The calendar invitation it carried when sent, as `METHOD:SEQUENCE` (`REQUEST:2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
    /// Why it was not sent, when superseded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_because: Option<String>,
}

/// The invitation a prospect's message carries when sent for `tour` as it now stands: its `METHOD` and the tour's
/// version as `SEQUENCE` (the `UID` is the tour's for its whole life), as `METHOD:SEQUENCE`.
pub fn invitation(kind: MessageKind, tour: &TourRecord) -> Option<String> {
    kind.invite_method()
        .filter(|_| kind.audience() == Audience::Prospect)
        .map(|method| format!("{method}:{}", tour.version))
}

/// Why sending `message` now would only repeat a message already sent: another of the tour's messages reached the
/// prospect with the very invitation this one would carry (same UID, SEQUENCE and METHOD, to the same person), so
/// the prospect's calendar and inbox already hold it. Two changes moments apart (a booking, and staff confirming it a
/// second later) otherwise send two emails with one invitation.
pub fn repeats(message: &MessageRef, tour: &TourRecord, deliveries: &[Delivery]) -> Option<String> {
    let mine = invitation(message.kind, tour)?;
    deliveries
        .iter()
        .filter(|d| (d.message, d.version) != (message.kind, message.version))
        .find(|d| d.status == DeliveryStatus::Sent && d.invite.as_deref() == Some(mine.as_str()))
        .map(|d| {
            format!(
                "repeats the invitation ({mine}) the {} message already gave the prospect",
                d.message.as_str()
            )
        })
}

/// The messages a change owes: `before` is `None` for a new booking. The prospect hears of every change of their
/// tour; staff are alerted of a new, moved or cancelled tour when it did not come from ResMan (where staff made it),
/// by email and, when the property has one, on its staff webhook.
pub fn owed(
    property: &Property,
    before: Option<&TourRecord>,
    after: &TourRecord,
    from_resman: bool,
) -> Vec<MessageKind> {
    let mut owed = changed(before, after);
    owed.extend(outcome_owes(property, before, after));
    if from_resman {
        owed.retain(|k| k.audience() == Audience::Prospect);
    }
    if property.staff_webhook_url.is_some() {
        let twins: Vec<MessageKind> = owed.iter().filter_map(MessageKind::webhook_twin).collect();
        owed.extend(twins);
    }
    owed
}

/// What a booking accepted as pending owes when ResMan then refuses it: the prospect hears that it could not be
/// booked (the invite withdrawn, in case the confirmation went out first), and staff that it is off.
pub fn owed_on_refusal(property: &Property) -> Vec<MessageKind> {
    let mut owed = vec![MessageKind::NotBooked, MessageKind::StaffCancelled];
    if property.staff_webhook_url.is_some() {
        owed.push(MessageKind::WebhookCancelled);
    }
    owed
}

/// What an outcome owes once the tour took place (recorded on a completed tour, or the tour completed with one
/// recorded): a follow-up opened (the prospect told, the agent alerted), or the application link where the property
/// has one. `not_interested` owes nothing: it ends the tour's messages (see [`MessageKind::unfit_because`]).
fn outcome_owes(property: &Property, before: Option<&TourRecord>, after: &TourRecord) -> Vec<MessageKind> {
    let Some(before) = before else {
        return Vec::new();
    };
    let took_place = after.status == TourStatus::Completed;
    if !took_place || (before.outcome == after.outcome && before.status == TourStatus::Completed) {
        return Vec::new();
    }
    match after.outcome {
        Some(Outcome::FollowUpNeeded) => vec![MessageKind::FollowUp, MessageKind::StaffFollowUp],
        Some(Outcome::Interested) if property.apply_url.is_some() => vec![MessageKind::ApplyInvite],
        _ => Vec::new(),
    }
}

fn changed(before: Option<&TourRecord>, after: &TourRecord) -> Vec<MessageKind> {
    let Some(before) = before else {
        return vec![MessageKind::Confirmation, MessageKind::StaffNew];
    };
    let mut owed = Vec::new();
    let moved = before.window() != after.window() || before.holder != after.holder;
    let status = (before.status != after.status).then_some(after.status);
    match status {
        Some(TourStatus::Cancelled) => owed.extend([MessageKind::Cancelled, MessageKind::StaffCancelled]),
        Some(TourStatus::Completed) => owed.push(MessageKind::ThankYou),
        Some(TourStatus::NoShow) => owed.push(MessageKind::Rebook),
        _ if moved && after.status.is_open() => owed.extend([MessageKind::Rescheduled, MessageKind::StaffMoved]),
        Some(TourStatus::Confirmed) => owed.push(MessageKind::Confirmed),
        _ => {}
    }
    owed
}

/// A reminder a tour owes: which, and when it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderDue {
    pub kind: MessageKind,
    pub hours_before: u32,
    pub due: DateTime<Utc>,
}

/// The reminders of a tour starting at `start`, `hours` before it (longest first: the first is `Reminder`, a second
/// `LastReminder`), counted in real elapsed hours (UTC arithmetic), so a clock change in between moves none.
pub fn reminders_for(start: DateTime<Utc>, hours: &[u32]) -> Vec<ReminderDue> {
    hours
        .iter()
        .zip([MessageKind::Reminder, MessageKind::LastReminder])
        .map(|(h, kind)| ReminderDue {
            kind,
            hours_before: *h,
            due: start - chrono::Duration::hours((*h).into()),
        })
        .collect()
}

/// The reminders a tour should now have waiting: none for a tour that no longer holds its time or is no longer
/// open, and none already due when it is set (a tour booked 90 minutes ahead gets no 24-hour reminder, nor a
/// 2-hour one: its confirmation has just gone out).
pub fn reminders_owed(tour: &TourRecord, hours: &[u32], now: DateTime<Utc>) -> Vec<ReminderDue> {
    if !tour.status.is_open() {
        return Vec::new();
    }
    reminders_for(tour.start, hours)
        .into_iter()
        .filter(|r| r.due > now)
        .collect()
}

/// The everyday name of a zone at a moment ("Central Time"), for US zones; the zone's abbreviation elsewhere.
pub fn zone_in_words(zone: Tz, at: DateTime<Utc>) -> String {
    let name = match zone.name() {
        "America/New_York" | "America/Detroit" | "America/Indiana/Indianapolis" | "America/Kentucky/Louisville" => {
            "Eastern Time"
        }
        "America/Chicago" | "America/Indiana/Knox" | "America/Menominee" => "Central Time",
        "America/Denver" | "America/Boise" => "Mountain Time",
        // Arizona keeps standard time all year.
        "America/Phoenix" => "Mountain Standard Time",
        "America/Los_Angeles" => "Pacific Time",
        "America/Anchorage" | "America/Juneau" => "Alaska Time",
        "Pacific/Honolulu" => "Hawaii Time",
        _ => return at.with_timezone(&zone).format("%Z").to_string(),
    };
    name.to_owned()
}

/// "in-person tour", "virtual tour", "self-guided tour".
pub fn kind_in_words(tour_type: super::TourType) -> &'static str {
    match tour_type {
        super::TourType::InPerson => "in-person tour",
        super::TourType::Virtual => "virtual tour",
        super::TourType::SelfGuided => "self-guided tour",
    }
}

/// "Tuesday, December 1, 2:00 PM Central Time": the tour's local time as a prospect reads it.
pub fn when_in_words(at: DateTime<Utc>, zone: Tz) -> String {
    let local = at.with_timezone(&zone);
    format!("{} {}", local.format("%A, %B %-d, %-I:%M %p"), zone_in_words(zone, at))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::property::tests::demo;
    use crate::domain::record::SyncStatus;
    use crate::domain::update::tests::tour;
    use chrono::{Duration, TimeZone};

    #[test]
    fn a_booking_owes_the_prospect_a_confirmation_and_staff_an_alert() {
        let t = tour(TourStatus::Scheduled);
        assert_eq!(
            owed(&demo(), None, &t, false),
            [MessageKind::Confirmation, MessageKind::StaffNew]
        );
    }

    #[test]
    fn each_change_owes_its_message_and_resmans_own_changes_alert_no_staff() {
        let before = tour(TourStatus::Scheduled);
        let with = |status: TourStatus, shift: i64| TourRecord {
            status,
            start: before.start + Duration::hours(shift),
            end: before.end + Duration::hours(shift),
            ..before.clone()
        };
        use MessageKind::*;
        assert_eq!(
            owed(&demo(), Some(&before), &with(TourStatus::Confirmed, 0), false),
            [Confirmed]
        );
        assert_eq!(
            owed(&demo(), Some(&before), &with(TourStatus::Scheduled, 2), false),
            [Rescheduled, StaffMoved]
        );
        assert_eq!(
            owed(&demo(), Some(&before), &with(TourStatus::Confirmed, 2), false),
            [Rescheduled, StaffMoved],
            "move and confirm: one invite"
        );
        assert_eq!(
            owed(&demo(), Some(&before), &with(TourStatus::Cancelled, 0), false),
            [Cancelled, StaffCancelled]
        );
        assert_eq!(
            owed(&demo(), Some(&before), &with(TourStatus::Completed, 0), false),
            [ThankYou]
        );
        assert_eq!(
            owed(&demo(), Some(&before), &with(TourStatus::NoShow, 0), false),
            [Rebook]
        );
        assert_eq!(
            owed(&demo(), Some(&before), &with(TourStatus::Cancelled, 0), true),
            [Cancelled],
            "staff know what they did"
        );
        let notes_only = TourRecord {
            staff_notes: Some("parking".into()),
            ..before.clone()
        };
        assert!(owed(&demo(), Some(&before), &notes_only, false).is_empty());
    }

    #[test]
    fn a_property_with_a_staff_webhook_owes_each_staff_alert_there_too_and_resmans_own_changes_none() {
        let mut json = crate::domain::property::tests::demo_json();
        json["staff_webhook_url"] = "https://hooks.chat.example/T1/B2".into();
        let hooked = Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
        let before = tour(TourStatus::Scheduled);
        let cancelled = TourRecord {
            status: TourStatus::Cancelled,
            ..before.clone()
        };
        use MessageKind::*;
        assert_eq!(
            owed(&hooked, None, &before, false),
            [Confirmation, StaffNew, WebhookNew]
        );
        assert_eq!(
            owed(&hooked, Some(&before), &cancelled, false),
            [Cancelled, StaffCancelled, WebhookCancelled]
        );
        assert_eq!(owed(&hooked, Some(&before), &cancelled, true), [Cancelled]);
        assert_eq!(WebhookCancelled.alert(), StaffCancelled);
        assert!(WebhookCancelled.fits(&cancelled) && !WebhookNew.fits(&cancelled));
    }

    #[test]
    fn a_message_that_no_longer_fits_the_tour_is_not_sent() {
        let cancelled = tour(TourStatus::Cancelled);
        assert!(!MessageKind::Confirmation.fits(&cancelled));
        assert!(MessageKind::Cancelled.fits(&cancelled));
        let refused = TourRecord {
            sync_status: SyncStatus::Rejected,
            ..tour(TourStatus::Scheduled)
        };
        assert!(
            !MessageKind::Confirmation.fits(&refused),
            "ResMan refused the booking: no confirmation"
        );
        assert!(!MessageKind::Confirmation.fits(&tour(TourStatus::Released)));
    }

    #[test]
    fn reminders_leave_in_real_elapsed_hours_across_a_clock_change() {
        // Sunday 1 November 2026, 10:00 in Chicago: the clocks went back at 2:00 that morning.
        let start = chrono_tz::America::Chicago
            .with_ymd_and_hms(2026, 11, 1, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let [day, soon] = reminders_for(start, &[24, 2]).try_into().unwrap();
        assert_eq!(
            (day.kind, day.due),
            (MessageKind::Reminder, start - Duration::hours(24))
        );
        assert_eq!(
            (soon.kind, soon.due),
            (MessageKind::LastReminder, start - Duration::hours(2))
        );
        let local = day.due.with_timezone(&chrono_tz::America::Chicago);
        assert_eq!(
            local.format("%a %H:%M").to_string(),
            "Sat 11:00",
            "24 real hours, so 11:00 on the wall"
        );
    }

    #[test]
    fn a_tour_booked_ninety_minutes_ahead_gets_no_reminder_and_a_closed_tour_none() {
        let mut t = tour(TourStatus::Scheduled);
        let now = t.start - Duration::minutes(90);
        assert!(reminders_owed(&t, &[24, 2], now).is_empty());
        let earlier = t.start - Duration::hours(30);
        assert_eq!(reminders_owed(&t, &[24, 2], earlier).len(), 2);
        assert_eq!(
            reminders_owed(&t, &[24, 2], t.start - Duration::hours(5)).len(),
            1,
            "the 2-hour one only"
        );
        t.status = TourStatus::Cancelled;
        assert!(reminders_owed(&t, &[24, 2], earlier).is_empty());
    }

    #[test]
    fn message_keys_read_back_and_times_read_in_the_propertys_zone_with_its_name() {
        let id = BookingId::from_uuid(uuid::Uuid::nil());
        let r = MessageRef {
            booking_id: id.clone(),
            kind: MessageKind::StaffMoved,
            version: 3,
        };
        assert_eq!(MessageRef::parse(id, &r.key()), Some(r));
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 20, 0, 0).unwrap();
        assert_eq!(
            when_in_words(at, chrono_tz::America::Chicago),
            "Tuesday, December 1, 2:00 PM Central Time"
        );
        assert_eq!(
            when_in_words(at, chrono_tz::America::Phoenix),
            "Tuesday, December 1, 1:00 PM Mountain Standard Time"
        );
        assert_eq!(
            when_in_words(at, chrono_tz::Europe::Berlin),
            "Tuesday, December 1, 9:00 PM CET"
        );
    }

    /// The words of an `enum: [...]` list in the API description, sorted.
    pub(crate) fn listed(after: &str) -> Vec<String> {
        let spec = include_str!("../../../../openapi.yaml");
        let section = spec.split(after).nth(1).expect("the section is in openapi.yaml");
        let list = section
            .split("enum: [")
            .nth(1)
            .and_then(|l| l.split(']').next())
            .unwrap();
        let mut words: Vec<String> = list.split(',').map(|w| w.trim().to_owned()).collect();
        words.sort();
        words
    }

    #[test]
    fn an_outcome_owes_its_messages_once_and_not_interested_ends_the_tours_messages() {
        let before = tour(TourStatus::Completed);
        let with = |outcome| TourRecord {
            outcome: Some(outcome),
            version: 2,
            ..before.clone()
        };
        let (follow_up, interested, not_interested) = (
            with(Outcome::FollowUpNeeded),
            with(Outcome::Interested),
            with(Outcome::NotInterested),
        );
        let mut applying = demo();
        applying.apply_url = Some("https://apply.example/maple".into());
        let mut no_link = demo();
        no_link.apply_url = None;
        use MessageKind::*;
        assert_eq!(
            owed(&no_link, Some(&before), &follow_up, false),
            [FollowUp, StaffFollowUp]
        );
        assert_eq!(owed(&applying, Some(&before), &interested, false), [ApplyInvite]);
        assert_eq!(
            owed(&no_link, Some(&before), &interested, false),
            [],
            "no application link, nothing to send"
        );
        assert_eq!(owed(&applying, Some(&before), &not_interested, false), []);
        assert_eq!(
            owed(&applying, Some(&follow_up), &follow_up, false),
            [],
            "the same outcome again owes nothing"
        );
        assert_eq!(
            owed(&applying, Some(&interested), &follow_up, false),
            [FollowUp, StaffFollowUp],
            "a new outcome owes its own"
        );
        // Recorded before the tour: nothing yet; the tour completed with it: its follow-up then.
        let ahead = tour(TourStatus::Confirmed);
        let ahead_with = TourRecord {
            outcome: Some(Outcome::FollowUpNeeded),
            ..ahead.clone()
        };
        assert_eq!(owed(&applying, Some(&ahead), &ahead_with, false), []);
        let completed = TourRecord {
            status: TourStatus::Completed,
            ..ahead_with.clone()
        };
        assert_eq!(
            owed(&applying, Some(&ahead_with), &completed, false),
            [ThankYou, FollowUp, StaffFollowUp]
        );

        // Not interested: no more prospect messages, but for the invite's withdrawal; staff still hear.
        let cancelled_too = TourRecord {
            status: TourStatus::Cancelled,
            ..not_interested.clone()
        };
        for kind in [ThankYou, Reminder, FollowUp, ApplyInvite] {
            assert_eq!(
                kind.unfit_because(&not_interested).as_deref(),
                Some("the prospect is not interested"),
                "{kind:?}"
            );
        }
        assert!(Cancelled.fits(&cancelled_too) && StaffCancelled.fits(&cancelled_too));
        // A follow-up owed before the outcome changed is not sent under the new one.
        assert_eq!(
            FollowUp.unfit_because(&interested).as_deref(),
            Some("the outcome is interested now")
        );
        assert!(FollowUp.fits(&follow_up) && StaffFollowUp.fits(&follow_up) && ApplyInvite.fits(&interested));
    }

    #[test]
    fn the_api_description_lists_every_message_and_every_change_source() {
        let mut kinds: Vec<String> = MessageKind::ALL.iter().map(|k| k.as_str().to_owned()).collect();
        kinds.sort();
        assert_eq!(listed("\n    Delivery:"), kinds);
        use crate::domain::lifecycle::ChangeSource::*;
        let mut sources: Vec<String> = [Chatbot, ResmanWebhook, ResmanPoll, StaffApi, ProspectLink]
            .iter()
            .map(|s| serde_json::to_value(s).unwrap().as_str().unwrap().to_owned())
            .collect();
        sources.sort();
        assert_eq!(listed("\n        source:"), sources);
    }
}
