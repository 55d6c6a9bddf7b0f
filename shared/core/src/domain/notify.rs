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
    /// The same prospect messages by text, to a prospect who agreed to texts at a property that texts
    /// ([`MessageKind::text_twin`]): the booking, each reminder (instead of its email), the move and the cancellation.
    TextConfirmation,
    TextReminder,
    TextLastReminder,
    TextMoved,
    TextCancelled,
    /// A booking ResMan refused ([`MessageKind::NotBooked`]), by text to a prospect who was texted its confirmation.
    TextNotBooked,
    /// The answers to a prospect's reply ([`super::texts::Reply`]): their attendance noted (`C`), a link to pick
    /// another time (`R`), the one text after `CANCEL` (the tour is off, and so are texts) or after a revocation
    /// (`STOP`...), the answer to `HELP`, and to `START`.
    TextAttending,
    TextNewTime,
    TextCancelledAndStopped,
    TextStopped,
    TextHelp,
    TextRestarted,
    /// Staff: a prospect who was asked by text to confirm has not, 3 hours before the tour.
    StaffUnconfirmed,
    /// Staff: the prospect texted words no keyword answers (`prospect_reply`): a person should answer. And its twin
    /// for the staff webhook.
    StaffReply,
    WebhookReply,
}

/// What a text needs of the prospect's consent ([`MessageKind::consent_needed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentNeeded {
    Granted,
    JustRevoked,
    NotErased,
}

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Prospect,
    /// The assigned agent and the property's staff addresses.
    Staff,
    /// The property's staff webhook.
    StaffWebhook,
    /// The prospect's phone, by text (only with their consent, checked when it is sent).
    Text,
}

impl MessageKind {
    pub const ALL: [MessageKind; 35] = [
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
        Self::TextConfirmation,
        Self::TextReminder,
        Self::TextLastReminder,
        Self::TextMoved,
        Self::TextCancelled,
        Self::TextNotBooked,
        Self::TextAttending,
        Self::TextNewTime,
        Self::TextCancelledAndStopped,
        Self::TextStopped,
        Self::TextHelp,
        Self::TextRestarted,
        Self::StaffUnconfirmed,
        Self::StaffReply,
        Self::WebhookReply,
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
            Self::TextConfirmation => "text_confirmation",
            Self::TextReminder => "text_reminder",
            Self::TextLastReminder => "text_last_reminder",
            Self::TextMoved => "text_moved",
            Self::TextCancelled => "text_cancelled",
            Self::TextNotBooked => "text_not_booked",
            Self::TextAttending => "text_attending",
            Self::TextNewTime => "text_new_time",
            Self::TextCancelledAndStopped => "text_cancelled_and_stopped",
            Self::TextStopped => "text_stopped",
            Self::TextHelp => "text_help",
            Self::TextRestarted => "text_restarted",
            Self::StaffUnconfirmed => "staff_unconfirmed",
            Self::StaffReply => "staff_reply",
            Self::WebhookReply => "webhook_reply",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn audience(&self) -> Audience {
        match self {
            Self::StaffNew
            | Self::StaffMoved
            | Self::StaffCancelled
            | Self::StaffDisagrees
            | Self::StaffFollowUp
            | Self::StaffUnconfirmed
            | Self::StaffReply => Audience::Staff,
            Self::WebhookNew
            | Self::WebhookMoved
            | Self::WebhookCancelled
            | Self::WebhookFollowUp
            | Self::WebhookReply => Audience::StaffWebhook,
            Self::TextConfirmation
            | Self::TextReminder
            | Self::TextLastReminder
            | Self::TextMoved
            | Self::TextCancelled
            | Self::TextNotBooked
            | Self::TextAttending
            | Self::TextNewTime
            | Self::TextCancelledAndStopped
            | Self::TextStopped
            | Self::TextHelp
            | Self::TextRestarted => Audience::Text,
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
            Self::StaffReply => Some(Self::WebhookReply),
            _ => None,
        }
    }

    /// A prospect message's twin by text.
    pub fn text_twin(&self) -> Option<Self> {
        match self {
            Self::Confirmation => Some(Self::TextConfirmation),
            Self::Reminder => Some(Self::TextReminder),
            Self::LastReminder => Some(Self::TextLastReminder),
            Self::Rescheduled => Some(Self::TextMoved),
            Self::Cancelled => Some(Self::TextCancelled),
            Self::NotBooked => Some(Self::TextNotBooked),
            _ => None,
        }
    }

    /// The email a text stands beside (or, for a reminder, in place of).
    pub fn email_twin(&self) -> Option<Self> {
        Self::ALL.into_iter().find(|email| email.text_twin() == Some(*self))
    }

    /// The email owed when this text fails for good: a reminder's, which went by text instead of email. The other
    /// texts stand beside their email, which went anyway.
    pub fn fallback(&self) -> Option<Self> {
        match self {
            Self::TextReminder | Self::TextLastReminder => self.email_twin(),
            _ => None,
        }
    }

    /// What a text says ([`super::texts::wording`]).
    pub fn text_kind(&self) -> Option<super::texts::TextKind> {
        use super::texts::TextKind;
        match self {
            Self::TextConfirmation => Some(TextKind::Confirmation),
            Self::TextReminder => Some(TextKind::Reminder),
            Self::TextLastReminder => Some(TextKind::LastReminder),
            Self::TextMoved => Some(TextKind::Moved),
            Self::TextCancelled => Some(TextKind::Cancelled),
            Self::TextNotBooked => Some(TextKind::NotBooked),
            Self::TextAttending => Some(TextKind::Attending),
            Self::TextNewTime => Some(TextKind::NewTime),
            Self::TextCancelledAndStopped => Some(TextKind::CancelledAndStopped),
            Self::TextStopped => Some(TextKind::Stopped),
            Self::TextHelp => Some(TextKind::Help),
            Self::TextRestarted => Some(TextKind::Restarted),
            _ => None,
        }
    }

    /// What the prospect's consent must be for the text to go: granted for any text about the tour; for the one
    /// text after a revocation, revoked (that text says so); for the answer to `HELP`, anything but erased.
    pub fn consent_needed(&self) -> ConsentNeeded {
        match self {
            Self::TextStopped | Self::TextCancelledAndStopped => ConsentNeeded::JustRevoked,
            Self::TextHelp => ConsentNeeded::NotErased,
            _ => ConsentNeeded::Granted,
        }
    }

    /// Whether it is a reminder (set with the tour's time, dropped when the tour moves or ends), rather than a
    /// text waiting out quiet hours.
    pub fn is_reminder(&self) -> bool {
        matches!(self, Self::Reminder | Self::LastReminder | Self::StaffUnconfirmed)
    }

    /// The staff alert a webhook message carries (`staff_new`, ...): the same words as the email's.
    pub fn alert(&self) -> Self {
        match self {
            Self::WebhookNew => Self::StaffNew,
            Self::WebhookMoved => Self::StaffMoved,
            Self::WebhookCancelled => Self::StaffCancelled,
            Self::WebhookFollowUp => Self::StaffFollowUp,
            Self::WebhookReply => Self::StaffReply,
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
        if let Some(email) = self.email_twin() {
            return email.unfit_because(tour);
        }
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
            Self::TextAttending | Self::TextNewTime => tour.status.is_open(),
            Self::StaffUnconfirmed => tour.status.is_open() && tour.prospect_confirmed_at.is_none(),
            Self::StaffReply | Self::WebhookReply => tour.prospect_reply.is_some(),
            Self::TextCancelledAndStopped => tour.status == TourStatus::Cancelled,
            // About texts, not the tour.
            Self::TextStopped | Self::TextHelp | Self::TextRestarted => true,
            // Answered by the twin above.
            Self::TextConfirmation
            | Self::TextReminder
            | Self::TextLastReminder
            | Self::TextMoved
            | Self::TextCancelled
            | Self::TextNotBooked => true,
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
    /// For a sent text: what the phone network finally said of it (its delivery receipt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<TextReceipt>,
}

/// A sent text's delivery receipt: reached the phone, or not (with the network's reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextReceipt {
    pub delivered: bool,
    pub at: DateTime<Utc>,
    /// The service's event type when it failed (`TEXT_CARRIER_UNREACHABLE`, `TEXT_BLOCKED`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
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
    if texts(property, after) {
        let twins: Vec<MessageKind> = owed.iter().filter_map(MessageKind::text_twin).collect();
        owed.extend(twins);
    }
    owed
}

/// Whether a tour's prospect may be texted at all: the property texts and the tour has a number. Their consent is
/// read when each text is sent (it can be revoked at any moment, by a reply).
pub fn texts(property: &Property, tour: &TourRecord) -> bool {
    property.texts && super::Phone::parse(&tour.prospect_phone).is_ok()
}

/// Splits what a change owes into what goes now and the texts that wait out quiet hours
/// ([`super::texts::deliver_at`]), which wait as reminders due when they may go. `at` is when the change was made
/// (for a booking, its `created_at`, so the booking and its later queueing split alike).
pub fn now_or_later(
    property: &Property,
    tour: &TourRecord,
    owed: Vec<MessageKind>,
    at: DateTime<Utc>,
) -> (Vec<MessageKind>, Vec<ReminderDue>) {
    let mut later = Vec::new();
    let now = owed
        .into_iter()
        .filter(|kind| {
            if kind.audience() != Audience::Text {
                return true;
            }
            let due = super::texts::deliver_at(property.time_zone, at, tour.start);
            if due > at {
                later.push(ReminderDue {
                    kind: *kind,
                    hours_before: 0,
                    due,
                });
            }
            due <= at
        })
        .collect();
    (now, later)
}

/// What a booking accepted as pending owes when ResMan then refuses it (at `at`): the prospect hears that it could
/// not be booked (the invite withdrawn, in case the confirmation went out first), and staff that it is off. A
/// prospect who may be texted hears it by text too, outside quiet hours: by day their confirmation text went at
/// once; in quiet hours it is still waiting, finds the booking refused and is never sent, so the email is enough.
pub fn owed_on_refusal(property: &Property, tour: &TourRecord, at: DateTime<Utc>) -> Vec<MessageKind> {
    let mut owed = vec![MessageKind::NotBooked, MessageKind::StaffCancelled];
    if property.staff_webhook_url.is_some() {
        owed.push(MessageKind::WebhookCancelled);
    }
    if texts(property, tour) && super::texts::deliver_at(property.time_zone, at, tour.start) <= at {
        owed.push(MessageKind::TextNotBooked);
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
/// `LastReminder`), counted in real elapsed hours (UTC arithmetic), so a clock change in between moves none. A
/// reminder due in quiet hours in the property's zone (`zone`) waits until they end, unless that would leave it
/// useless ([`super::texts::deliver_at`]): it may go by text, and an email at 6 am is no better.
pub fn reminders_for(start: DateTime<Utc>, hours: &[u32], zone: Tz) -> Vec<ReminderDue> {
    hours
        .iter()
        .zip([MessageKind::Reminder, MessageKind::LastReminder])
        .map(|(h, kind)| ReminderDue {
            kind,
            hours_before: *h,
            due: super::texts::deliver_at(zone, start - chrono::Duration::hours((*h).into()), start),
        })
        .collect()
}

/// How long before a tour staff hear that its prospect, asked by text, has not confirmed.
pub const UNCONFIRMED_ALERT_HOURS: i64 = 3;

/// The check, 3 hours before a tour starting at `start`, that its prospect confirmed (set beside the reminders of a
/// tour whose prospect may be texted; dropped with them).
pub fn attendance_check(start: DateTime<Utc>) -> ReminderDue {
    ReminderDue {
        kind: MessageKind::StaffUnconfirmed,
        hours_before: UNCONFIRMED_ALERT_HOURS as u32,
        due: start - chrono::Duration::hours(UNCONFIRMED_ALERT_HOURS),
    }
}

/// The reminders a tour should now have waiting: none for a tour that no longer holds its time or is no longer
/// open, and none already due when it is set (a tour booked 90 minutes ahead gets no 24-hour reminder, nor a
/// 2-hour one: its confirmation has just gone out).
pub fn reminders_owed(tour: &TourRecord, hours: &[u32], zone: Tz, now: DateTime<Utc>) -> Vec<ReminderDue> {
    if !tour.status.is_open() {
        return Vec::new();
    }
    reminders_for(tour.start, hours, zone)
        .into_iter()
        .filter(|r| r.due > now)
        .collect()
}

/// Everything a tour at `start` may have waiting for its time: its reminders and the attendance check (the drop list
/// of a change: deleting one that was never set is harmless).
pub fn waiting_for(property: &Property, start: DateTime<Utc>) -> Vec<ReminderDue> {
    let mut waiting = reminders_for(start, &property.reminder_hours, property.time_zone);
    waiting.push(attendance_check(start));
    waiting
}

/// What a tour should now have waiting: its reminders ([`reminders_owed`]) and, when its prospect may be texted
/// (and so is asked to confirm), the attendance check, if still ahead.
pub fn waiting_owed(property: &Property, tour: &TourRecord, now: DateTime<Utc>) -> Vec<ReminderDue> {
    let mut waiting = reminders_owed(tour, &property.reminder_hours, property.time_zone, now);
    let check = attendance_check(tour.start);
    if tour.status.is_open() && texts(property, tour) && check.due > now {
        waiting.push(check);
    }
    waiting
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
        let [day, soon] = reminders_for(start, &[24, 2], chrono_tz::America::Chicago)
            .try_into()
            .unwrap();
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
    fn a_reminder_due_in_quiet_hours_waits_for_8_am_unless_the_tour_starts_too_soon_after() {
        let chicago = chrono_tz::America::Chicago;
        let at = |d: u32, h: u32, m: u32| december_in_chicago(d, h, m);
        // A 9:00 tour: the 2-hour reminder (7:00) waits for 8:00; the day-before one (9:00) goes when due.
        let [day, soon] = reminders_for(at(10, 9, 0), &[24, 2], chicago).try_into().unwrap();
        assert_eq!(day.due, at(9, 9, 0));
        assert_eq!(soon.due, at(10, 8, 0));
        // An 8:15 tour: 8:00 would be too late to be of use, so its 6:15 reminder goes at 6:15.
        let [_, soon] = reminders_for(at(10, 8, 15), &[24, 2], chicago).try_into().unwrap();
        assert_eq!(soon.due, at(10, 6, 15));
    }

    /// A moment of December 2026 on Chicago's clock.
    fn december_in_chicago(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        chrono_tz::America::Chicago
            .with_ymd_and_hms(2026, 12, day, hour, minute, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn texting() -> Property {
        let mut json = crate::domain::property::tests::demo_json();
        json["texts"] = true.into();
        Property::from_file(serde_json::from_value(json).unwrap()).unwrap()
    }

    #[test]
    fn a_texting_property_owes_a_text_beside_each_prospect_email_that_has_one_and_none_without_a_number() {
        use MessageKind::*;
        let before = tour(TourStatus::Scheduled);
        assert_eq!(
            owed(&texting(), None, &before, false),
            [Confirmation, StaffNew, TextConfirmation]
        );
        assert_eq!(
            owed(&demo(), None, &before, false),
            [Confirmation, StaffNew],
            "the property does not text"
        );
        let moved = TourRecord {
            start: before.start + Duration::hours(2),
            end: before.end + Duration::hours(2),
            ..before.clone()
        };
        assert_eq!(
            owed(&texting(), Some(&before), &moved, true),
            [Rescheduled, TextMoved],
            "a move staff made in ResMan: the prospect hears by both"
        );
        let cancelled = TourRecord {
            status: TourStatus::Cancelled,
            ..before.clone()
        };
        assert_eq!(
            owed(&texting(), Some(&before), &cancelled, false),
            [Cancelled, StaffCancelled, TextCancelled]
        );
        let completed = TourRecord {
            status: TourStatus::Completed,
            ..before.clone()
        };
        assert_eq!(
            owed(&texting(), Some(&before), &completed, false),
            [ThankYou],
            "no text twin"
        );
        let no_number = TourRecord {
            prospect_phone: String::new(),
            ..before.clone()
        };
        assert_eq!(owed(&texting(), None, &no_number, false), [Confirmation, StaffNew]);
        // A text fits the tour exactly when its email does; only a reminder's text falls back to its email.
        assert!(!TextConfirmation.fits(&cancelled) && TextCancelled.fits(&cancelled));
        assert_eq!(TextReminder.fallback(), Some(Reminder));
        assert_eq!(TextLastReminder.fallback(), Some(LastReminder));
        assert_eq!(TextConfirmation.fallback(), None, "the confirmation email went anyway");
        assert_eq!(TextMoved.email_twin(), Some(Rescheduled));
        for kind in MessageKind::ALL {
            assert_eq!(
                kind.audience() == Audience::Text,
                kind.text_kind().is_some(),
                "{kind:?}"
            );
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn a_prospect_who_may_be_texted_gets_an_attendance_check_3_hours_before_and_a_move_drops_it() {
        let t = tour(TourStatus::Scheduled);
        let now = t.start - Duration::hours(30);
        let kinds = |p: &Property, t: &TourRecord| waiting_owed(p, t, now).iter().map(|r| r.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(&texting(), &t),
            [
                MessageKind::Reminder,
                MessageKind::LastReminder,
                MessageKind::StaffUnconfirmed
            ]
        );
        assert_eq!(
            kinds(&demo(), &t),
            [MessageKind::Reminder, MessageKind::LastReminder],
            "a property that does not text asks no one"
        );
        let check = waiting_owed(&texting(), &t, now).pop().unwrap();
        assert_eq!(check.due, t.start - Duration::hours(3));
        assert!(
            waiting_for(&demo(), t.start).contains(&check),
            "dropped with the tour's old time, wherever set"
        );
        let confirmed = TourRecord {
            prospect_confirmed_at: Some(now),
            ..t.clone()
        };
        assert!(!MessageKind::StaffUnconfirmed.fits(&confirmed) && MessageKind::StaffUnconfirmed.fits(&t));
    }

    #[test]
    fn a_refused_booking_is_told_by_text_by_day_and_by_email_alone_in_quiet_hours() {
        use MessageKind::*;
        let at = |d: u32, h: u32, m: u32| december_in_chicago(d, h, m);
        let mut t = tour(TourStatus::Scheduled);
        t.start = at(11, 14, 0);
        t.end = at(11, 14, 30);
        assert_eq!(
            owed_on_refusal(&texting(), &t, at(10, 12, 0)),
            [NotBooked, StaffCancelled, TextNotBooked]
        );
        // At 10 pm its confirmation text is still waiting for 8 am, and will find the booking refused.
        assert_eq!(
            owed_on_refusal(&texting(), &t, at(10, 22, 0)),
            [NotBooked, StaffCancelled]
        );
        assert_eq!(owed_on_refusal(&demo(), &t, at(10, 12, 0)), [NotBooked, StaffCancelled]);
        t.prospect_phone = String::new();
        assert_eq!(
            owed_on_refusal(&texting(), &t, at(10, 12, 0)),
            [NotBooked, StaffCancelled]
        );
        let mut refused = t.clone();
        refused.sync_status = crate::domain::record::SyncStatus::Rejected;
        assert!(TextNotBooked.fits(&refused) && !TextNotBooked.fits(&t));
        assert!(
            !TextConfirmation.fits(&refused),
            "the waiting confirmation text is never sent"
        );
    }

    #[test]
    fn a_text_owed_in_quiet_hours_waits_for_8_am_as_a_reminder_and_an_urgent_one_goes_now() {
        use MessageKind::*;
        let at = |d: u32, h: u32, m: u32| december_in_chicago(d, h, m);
        let mut t = tour(TourStatus::Scheduled);
        t.start = at(11, 14, 0);
        t.end = at(11, 14, 30);
        let owes = || vec![Confirmation, StaffNew, TextConfirmation];
        // Booked at 10 pm for tomorrow 2 pm: the email now, the text at 8 am.
        let (now, later) = now_or_later(&texting(), &t, owes(), at(10, 22, 0));
        assert_eq!(now, [Confirmation, StaffNew]);
        assert_eq!(
            later,
            [ReminderDue {
                kind: TextConfirmation,
                hours_before: 0,
                due: at(11, 8, 0)
            }]
        );
        // Booked at noon: all now.
        assert_eq!(now_or_later(&texting(), &t, owes(), at(10, 12, 0)), (owes(), vec![]));
        // Booked at 10 pm for 10:45 pm: the text is of no use at 8 am, so it goes now.
        t.start = at(10, 22, 45);
        assert_eq!(now_or_later(&texting(), &t, owes(), at(10, 22, 0)).0, owes());
    }

    #[test]
    fn a_tour_booked_ninety_minutes_ahead_gets_no_reminder_and_a_closed_tour_none() {
        let mut t = tour(TourStatus::Scheduled);
        let now = t.start - Duration::minutes(90);
        assert!(reminders_owed(&t, &[24, 2], chrono_tz::UTC, now).is_empty());
        let earlier = t.start - Duration::hours(30);
        assert_eq!(reminders_owed(&t, &[24, 2], chrono_tz::UTC, earlier).len(), 2);
        assert_eq!(
            reminders_owed(&t, &[24, 2], chrono_tz::UTC, t.start - Duration::hours(5)).len(),
            1,
            "the 2-hour one only"
        );
        t.status = TourStatus::Cancelled;
        assert!(reminders_owed(&t, &[24, 2], chrono_tz::UTC, earlier).is_empty());
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
        let mut sources: Vec<String> = [Chatbot, ResmanWebhook, ResmanPoll, StaffApi, ProspectLink, ProspectText]
            .iter()
            .map(|s| serde_json::to_value(s).unwrap().as_str().unwrap().to_owned())
            .collect();
        sources.sort();
        assert_eq!(listed("\n        source:"), sources);
    }
}
