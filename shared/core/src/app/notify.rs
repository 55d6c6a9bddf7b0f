//! Sending the messages tours owe, exactly once: each queue message names one owed message; the sender claims it
//! (so a redelivery while it is being sent does nothing), renders it from the tour as it now stands, sends it, and
//! records the outcome. A message the tour has outgrown (a confirmation of a tour cancelled since) is not sent. A
//! send that fails is tried again with back-off; on the queue's last receive it is marked `failed` and its queue
//! message goes to the dead-letter queue. A sweep re-queues messages whose queue message was lost.

use super::AppError;
use super::availability::load_property;
use super::sync::WorkerOutcome;
use crate::domain::BookingId;
use crate::domain::email::{RenderError, Templates, webhook_alert};
use crate::domain::link::Links;
use crate::domain::notify::{Audience, MessageRef};
use crate::domain::record::TourRecord;
use crate::ports::{
    Claim, Consents, Mailer, MessageStore, PropertyStore, SendOutcome, StaffWebhook, SyncQueue, TextError, TextSender,
};
use chrono::{DateTime, Duration, Utc};

/// What a claim outlasts the invocation that took it by: room for the clocks of two invocations to disagree.
pub const CLAIM_SLACK: Duration = Duration::seconds(30);

/// How long a claimed send is left to its sender before another may take it over: the rest of the invocation that
/// claims it (Lambda stops it at its deadline, so no send of it can outlive that), and `CLAIM_SLACK`. A redelivery
/// while the sender may still be sending finds the message busy and never sends it a second time.
pub fn claim_lease(time_left: std::time::Duration) -> Duration {
    Duration::from_std(time_left).unwrap_or(Duration::hours(1)) + CLAIM_SLACK
}

/// The lane of a notification queue message in its batch: its tour (one tour's messages go in order; different
/// tours' side by side, so one slow chat service holds back no other tour's emails).
pub fn message_lane(body: &str) -> String {
    message_of(body).map_or_else(|_| format!("unreadable:{body}"), |m| m.booking_id.to_string())
}

pub struct SenderDeps<'a> {
    pub properties: &'a dyn PropertyStore,
    pub messages: &'a dyn MessageStore,
    pub mailer: &'a dyn Mailer,
    pub staff_webhook: &'a dyn StaffWebhook,
    /// The text service, and the consents it may only be used with.
    pub texts: &'a dyn TextSender,
    pub consents: &'a dyn Consents,
    /// Where a reminder's email is queued when its text failed.
    pub queue: &'a dyn SyncQueue,
    /// Where each text went, so a reply to it finds its tour.
    pub text_log: &'a dyn crate::ports::TextLog,
    pub templates: &'a Templates,
    /// The self-service page's address and the key its links are signed with.
    pub links: &'a Links,
    /// The notification queue's `maxReceiveCount`: the receive on which a still-failing message is marked failed.
    pub max_receives: u32,
    /// The longest one send may take (the larger of the staff webhook's and SES's own timeouts): no send is started
    /// with less time left in the invocation, so none is ever cut off half done and sent again.
    pub longest_send: std::time::Duration,
}

fn message_of(body: &str) -> Result<MessageRef, AppError> {
    #[derive(serde::Deserialize)]
    struct Wire {
        booking_id: String,
        message: String,
    }
    let invalid = || crate::domain::InvalidField::new("body", "is not a notification message");
    let wire: Wire = serde_json::from_str(body).map_err(|_| invalid())?;
    let booking = BookingId::parse(&wire.booking_id)?;
    Ok(MessageRef::parse(booking, &wire.message).ok_or_else(invalid)?)
}

/// A queued message whose last try could not run in its invocation's time: it is marked failed (unless it was sent
/// meanwhile), so it reaches the dead-letter queue beside a `failed` record, as a message that failed its last try.
pub async fn give_up_message(deps: &SenderDeps<'_>, body: &str, now: DateTime<Utc>) -> Result<(), AppError> {
    let message = message_of(body)?;
    let error = "not sent in time on the last try".to_owned();
    let recorded = deps
        .messages
        .finish_message(&message, &SendOutcome::Failed { error }, now)
        .await?;
    if recorded {
        crate::metrics::count(crate::metrics::Metric::MessagesFailed);
    }
    Ok(())
}

/// One queued message, with `time_left` in the invocation: a send is started only with time for the longest one.
pub async fn send_queued_message(
    deps: &SenderDeps<'_>,
    body: &str,
    receive_count: u32,
    now: DateTime<Utc>,
    time_left: std::time::Duration,
) -> Result<WorkerOutcome, AppError> {
    let message = message_of(body)?;
    if time_left < deps.longest_send {
        tracing::info!(booking_id = %message.booking_id, message = %message.key(), "too little time left in this invocation for a send; the message goes back to the queue");
        return Ok(WorkerOutcome::Retry);
    }
    let lease = claim_lease(time_left);
    let mut claim = deps.messages.claim_message(&message, now, lease).await?;
    if claim == Claim::Failed && receive_count == 1 {
        // A delivery given up on, on a queue message's first receive: an operator redrove the dead-letter queue once
        // the cause was fixed (a given-up message only comes back on later receives of its own queue message). It is
        // tried again, from its first try.
        if deps.messages.reopen_failed(&message, now).await? {
            tracing::info!(booking_id = %message.booking_id, message = %message.key(), "a failed message was redriven; trying it again");
            claim = deps.messages.claim_message(&message, now, lease).await?;
        }
    }
    let (tour, attempt) = match claim {
        Claim::Claimed(tour, attempt) => (tour, attempt),
        Claim::Done => return Ok(WorkerOutcome::Done),
        // Given up already (a broken template, a refused address): the queue message goes on to the dead-letter
        // queue, where an operator finds it beside the tour's `failed` record.
        Claim::Failed | Claim::Busy => return Ok(WorkerOutcome::Retry),
        Claim::Missing => {
            tracing::warn!(booking_id = %message.booking_id, message = %message.key(), "no such message; dropped");
            return Ok(WorkerOutcome::Done);
        }
    };
    let finish = async |outcome: SendOutcome| deps.messages.finish_message(&message, &outcome, now).await;
    if let Some(because) = message.kind.unfit_because(&tour) {
        tracing::info!(booking_id = %message.booking_id, message = %message.key(), status = tour.status.as_str(), "the tour changed since; message not sent");
        finish(SendOutcome::Superseded { because }).await?;
        return Ok(WorkerOutcome::Done);
    }
    let invite = crate::domain::notify::invitation(message.kind, &tour);
    if invite.is_some() {
        // One tour's messages go in order (its lane), so what was sent before this one is on record by now.
        let sent = deps
            .messages
            .tour_with_messages(&message.booking_id)
            .await?
            .map(|(_, deliveries)| deliveries)
            .unwrap_or_default();
        if let Some(because) = crate::domain::notify::repeats(&message, &tour, &sent) {
            tracing::info!(booking_id = %message.booking_id, message = %message.key(), "it would repeat an invitation already sent; message not sent");
            finish(SendOutcome::Superseded { because }).await?;
            return Ok(WorkerOutcome::Done);
        }
    }
    let property = load_property(deps.properties, &tour.property_id).await?;
    if message.kind.audience() == Audience::Text {
        return send_text(deps, &message, &tour, &property, receive_count, now).await;
    }
    let email = match deps.templates.render(message.kind, &tour, &property, deps.links, now) {
        Ok(email) => email,
        Err(e @ (RenderError::Template { .. } | RenderError::NoRecipient)) => {
            // Nothing a retry changes: an operator fixes the template or the configuration.
            tracing::error!(booking_id = %message.booking_id, message = %message.key(), error = %e, "message could not be rendered");
            if finish(SendOutcome::Failed { error: e.to_string() }).await? {
                crate::metrics::count(crate::metrics::Metric::MessagesFailed);
            }
            return Ok(WorkerOutcome::Retry);
        }
    };
    let sent = match message.kind.audience() {
        Audience::StaffWebhook => {
            let body = webhook_alert(message.kind, &email, &tour, &property, deps.links);
            let event_id = format!("{}:{}", message.booking_id, message.key());
            let url = email.to.first().map(String::as_str).unwrap_or_default();
            deps.staff_webhook.post(url, &event_id, &body).await
        }
        Audience::Prospect | Audience::Staff => deps.mailer.send(&email).await,
        Audience::Text => return Err(AppError::Internal("a text is sent by send_text".into())),
    };
    match sent {
        Ok(provider_message_id) => {
            tracing::info!(booking_id = %message.booking_id, message = %message.key(), attempt, "message sent");
            finish(SendOutcome::Sent {
                provider_message_id,
                invite,
            })
            .await?;
            crate::metrics::count(crate::metrics::Metric::MessagesSent);
            Ok(WorkerOutcome::Done)
        }
        Err(e) if !e.retryable || receive_count >= deps.max_receives => {
            tracing::error!(booking_id = %message.booking_id, message = %message.key(), error = %e, "message failed for good; it goes to the dead-letter queue");
            if finish(SendOutcome::Failed { error: e.reason }).await? {
                crate::metrics::count(crate::metrics::Metric::MessagesFailed);
            }
            Ok(WorkerOutcome::Retry)
        }
        Err(e) => {
            tracing::warn!(booking_id = %message.booking_id, message = %message.key(), attempt, error = %e, "message not sent; retried");
            finish(SendOutcome::Retry { error: e.reason }).await?;
            Ok(WorkerOutcome::Retry)
        }
    }
}

/// The number a tour's prospect may be texted at now, or why they may not: the property must text, and their
/// consent is read as the text leaves (a reply may have revoked it a moment ago).
async fn may_text(
    consents: &dyn Consents,
    property: &crate::domain::property::Property,
    tour: &TourRecord,
    kind: crate::domain::notify::MessageKind,
) -> Result<Result<crate::domain::Phone, &'static str>, AppError> {
    use crate::domain::consent::ConsentState;
    use crate::domain::notify::ConsentNeeded;
    if !property.texts {
        return Ok(Err("the property does not text"));
    }
    let Ok(phone) = crate::domain::Phone::parse(&tour.prospect_phone) else {
        return Ok(Err("the tour has no number to text"));
    };
    let state = consents.consent(&tour.property_id, &phone).await?.state();
    Ok(match (kind.consent_needed(), state) {
        (_, ConsentState::OptedOut) => Err("the number was erased and is never texted"),
        (ConsentNeeded::NotErased, _)
        | (ConsentNeeded::Granted, ConsentState::Granted { .. })
        | (ConsentNeeded::JustRevoked, ConsentState::Revoked { .. }) => Ok(phone),
        (ConsentNeeded::JustRevoked, _) => Err("texts were not stopped, or were started again since"),
        (ConsentNeeded::Granted, ConsentState::None) => Err("the prospect has not agreed to texts"),
        (ConsentNeeded::Granted, ConsentState::Revoked { .. }) => Err("the prospect stopped texts"),
    })
}

/// One claimed text: sent only with the prospect's consent as it stands now. A text that fails for good (the number
/// is on the service's opt-out list, or the service refused it) is marked `failed`; a reminder then goes by email
/// instead, and an opted-out number's revocation is recorded. A throttle or an outage is retried like an email.
async fn send_text(
    deps: &SenderDeps<'_>,
    message: &MessageRef,
    tour: &TourRecord,
    property: &crate::domain::property::Property,
    receive_count: u32,
    now: DateTime<Utc>,
) -> Result<WorkerOutcome, AppError> {
    let finish = async |outcome: SendOutcome| deps.messages.finish_message(message, &outcome, now).await;
    let to = match may_text(deps.consents, property, tour, message.kind).await? {
        Ok(to) => to,
        Err(because) => {
            tracing::info!(booking_id = %message.booking_id, message = %message.key(), because, "text not sent");
            finish(SendOutcome::Superseded {
                because: because.to_owned(),
            })
            .await?;
            return Ok(WorkerOutcome::Done);
        }
    };
    let kind = message
        .kind
        .text_kind()
        .ok_or_else(|| AppError::Internal(format!("{} is not a text", message.kind.as_str())))?;
    let link = deps.links.manage(tour);
    let about = crate::domain::texts::TextAbout {
        property: &property.name,
        office_phone: property.office_phone.as_deref(),
        start: tour.start,
        zone: property.time_zone,
        link: Some(&link),
    };
    let text = crate::ports::OutgoingText {
        to,
        body: crate::domain::texts::wording(kind, &about),
        context: vec![
            ("booking_id".to_owned(), tour.booking_id.to_string()),
            ("message".to_owned(), message.key()),
        ],
    };
    let error = match deps.texts.send_text(&text).await {
        Ok(provider_message_id) => {
            tracing::info!(booking_id = %message.booking_id, message = %message.key(), "text sent");
            let sent = crate::ports::SentText {
                booking_id: tour.booking_id.clone(),
                to: text.to.clone(),
                provider_message_id: provider_message_id.clone(),
                until: tour.end + REPLIES_PLACED_FOR,
            };
            finish(SendOutcome::Sent {
                provider_message_id,
                invite: None,
            })
            .await?;
            crate::metrics::count(crate::metrics::Metric::TextsSent);
            // Sent is sent: a reply that finds no record of it is placed by the number's latest text, or not at all.
            if let Err(e) = deps.text_log.text_sent(&sent).await {
                tracing::warn!(booking_id = %message.booking_id, error = %e, "could not keep where the text went");
            }
            return Ok(WorkerOutcome::Done);
        }
        Err(TextError::Unavailable(reason)) if receive_count < deps.max_receives => {
            tracing::warn!(booking_id = %message.booking_id, message = %message.key(), error = %reason, "text not sent; retried");
            finish(SendOutcome::Retry { error: reason }).await?;
            return Ok(WorkerOutcome::Retry);
        }
        Err(error) => error,
    };
    tracing::warn!(booking_id = %message.booking_id, message = %message.key(), error = %error, "text failed for good");
    if !finish(SendOutcome::Failed {
        error: error.to_string(),
    })
    .await?
    {
        return Ok(WorkerOutcome::Done);
    }
    crate::metrics::count(crate::metrics::Metric::TextsFailed);
    if error == TextError::OptedOut {
        // The prospect texted STOP to the number (the service kept it): their revocation, on record.
        let revoked = crate::domain::consent::ConsentEvent {
            property_id: tour.property_id.clone(),
            phone: text.to.clone(),
            at: now,
            change: crate::domain::consent::ConsentChange::Revoked {
                by: "the text service's opt-out list".to_owned(),
            },
            source: crate::domain::consent::ConsentSource::OptOutList,
        };
        deps.consents.record_consent(&revoked).await?;
    }
    fall_back(deps.messages, deps.queue, message, tour, now).await?;
    // Handled: the failure is on record and its email (where it has one) is on its way; nothing for an operator to
    // redrive.
    Ok(WorkerOutcome::Done)
}

/// How long after a tour's end a reply to one of its texts still finds it (a late "CANCEL" still revokes consent).
pub const REPLIES_PLACED_FOR: Duration = Duration::days(30);

/// A failed text's email, when it stood in for one (a reminder): owed by the tour as it now stands and queued.
async fn fall_back(
    messages: &dyn MessageStore,
    queue: &dyn SyncQueue,
    message: &MessageRef,
    tour: &TourRecord,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let Some(email) = message.kind.fallback() else {
        return Ok(());
    };
    if let Some(owed) = messages.owe_message(tour, email, now).await? {
        tracing::info!(booking_id = %message.booking_id, message = %owed.key(), "the text failed; its email goes instead");
        // Written first: if the queue fails, the sweep re-queues it.
        if let Err(e) = queue.enqueue_messages(&[owed]).await {
            tracing::error!(booking_id = %message.booking_id, error = %e, "could not queue the fallback email; the sweep will");
        }
    }
    Ok(())
}

/// A sent text's delivery receipt, as the text service reports it (its context names the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message: MessageRef,
    pub provider_message_id: String,
    pub delivered: bool,
    /// The service's event type when it failed.
    pub failure: Option<String>,
    pub at: DateTime<Utc>,
}

impl Receipt {
    /// The message a receipt is about, from the context the sender gave the text (`booking_id`, `message`).
    pub fn message_of(context: &std::collections::BTreeMap<String, String>) -> Option<MessageRef> {
        let booking = BookingId::parse(context.get("booking_id")?).ok()?;
        MessageRef::parse(booking, context.get("message")?)
    }
}

/// Marks a sent text delivered or failed, once (the service may report twice); a reminder's text that did not
/// reach the phone owes the reminder's email, as a text refused at once does. `false`: nothing recorded (no such
/// sent text, or its receipt came already).
pub async fn take_receipt(
    messages: &dyn MessageStore,
    queue: &dyn SyncQueue,
    receipt: &Receipt,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let recorded = crate::domain::notify::TextReceipt {
        delivered: receipt.delivered,
        at: receipt.at,
        failure: receipt.failure.clone(),
    };
    if !messages
        .record_receipt(&receipt.message, &receipt.provider_message_id, &recorded)
        .await?
    {
        return Ok(false);
    }
    if receipt.delivered {
        crate::metrics::count(crate::metrics::Metric::TextsDelivered);
        return Ok(true);
    }
    tracing::warn!(booking_id = %receipt.message.booking_id, message = %receipt.message.key(), failure = receipt.failure.as_deref().unwrap_or("unknown"), "a text did not reach the phone");
    crate::metrics::count(crate::metrics::Metric::TextsFailed);
    if let Some((tour, _)) = messages.tour_with_messages(&receipt.message.booking_id).await? {
        fall_back(messages, queue, &receipt.message, &tour, now).await?;
    }
    Ok(true)
}

/// How long an owed message may sit pending before it is queued again: longer than the queue's whole retry
/// schedule, so only messages whose queue message was lost are re-queued.
pub const MESSAGES_REQUEUE_AFTER: Duration = Duration::hours(1);

/// A batch of the notification queue, inside the invocation's time: each message claimed, sent and recorded once
/// ([`send_queued_message`]), one tour's messages one after another and tours side by side, and a message on its last
/// receive that cannot be sent in time marked failed ([`give_up_message`]). The failures, for the partial batch
/// response.
pub async fn send_batch(
    deps: &SenderDeps<'_>,
    messages: &[crate::ports::QueuedMessage],
    retry_base: std::time::Duration,
    budget: super::budget::TimeBudget,
    clock: &(dyn Fn() -> DateTime<Utc> + Sync),
) -> Vec<crate::ports::Failed> {
    use crate::ports::QueuedMessage;
    let steps = super::sync::BatchSteps {
        last_receive: deps.max_receives,
        lane: async |m: &QueuedMessage| message_lane(&m.body),
        handle: async |m: &QueuedMessage| {
            send_queued_message(deps, &m.body, m.receive_count, clock(), budget.left()).await
        },
        give_up: async |m: &QueuedMessage| give_up_message(deps, &m.body, clock()).await,
    };
    super::sync::run_batch(messages, retry_base, budget, steps).await
}

/// The messages' sweeper, run on the poller's tick: re-queues messages owed but no longer travelling.
pub async fn requeue_unsent_messages(
    messages: &dyn MessageStore,
    queue: &dyn SyncQueue,
    now: DateTime<Utc>,
) -> Result<usize, AppError> {
    let owed = messages
        .claim_unsent_messages(now - MESSAGES_REQUEUE_AFTER, now)
        .await?;
    if !owed.is_empty() {
        queue.enqueue_messages(&owed).await?;
        tracing::warn!(
            count = owed.len(),
            "re-queued owed messages whose queue message was lost"
        );
    }
    Ok(owed.len())
}

/// What the reminder scheduler reads and writes.
#[derive(Clone, Copy)]
pub struct SchedulerDeps<'a> {
    pub tours: &'a dyn crate::ports::TourReads,
    pub reminders: &'a dyn crate::ports::ReminderStore,
    pub queue: &'a dyn SyncQueue,
    pub properties: &'a dyn PropertyStore,
    pub consents: &'a dyn Consents,
}

/// How a due reminder goes: by text to a prospect who agreed to texts at a property that texts (the email only if
/// the text fails), by email otherwise. The attendance check becomes staff's alert only for a prospect asked by
/// text who has not confirmed; `None` drops it.
async fn reminder_channel(
    properties: &dyn PropertyStore,
    consents: &dyn Consents,
    due: &crate::ports::DueReminder,
    tour: &TourRecord,
) -> Result<Option<crate::domain::notify::MessageKind>, AppError> {
    if due.kind == crate::domain::notify::MessageKind::StaffUnconfirmed {
        // Staff hear of it only when the prospect was asked by text (and could have answered).
        let property = load_property(properties, &tour.property_id).await?;
        let asked = may_text(consents, &property, tour, due.kind).await?.is_ok();
        return Ok((asked && tour.prospect_confirmed_at.is_none()).then_some(due.kind));
    }
    let Some(text) = due.kind.text_twin().filter(|_| due.kind.is_reminder()) else {
        return Ok(Some(due.kind));
    };
    let property = load_property(properties, &tour.property_id).await?;
    Ok(Some(match may_text(consents, &property, tour, text).await? {
        Ok(_) => text,
        Err(_) => due.kind,
    }))
}

/// How far back a tick looks for due reminders: a missed tick or two still sends them; older ones are too late and
/// are left to expire.
pub const REMINDER_LOOKBACK: Duration = Duration::hours(3);

/// How many reminders a tick takes before it queues them: a tick cut short leaves at most this many owed but not
/// yet queued (the sweep re-queues those after `MESSAGES_REQUEUE_AFTER`).
pub const REMINDERS_PER_SEND: usize = 10;

/// One tick of the reminder scheduler: every reminder now due becomes a message its tour owes (once, whatever
/// ticks overlap), queued for the sender, ten at a time. A tour cancelled, ended or started since gets none (its
/// reminders were dropped with the change; this is the guard for a change that raced the tick). No reminder is
/// taken with less than `budget.least` left in the invocation: the rest stay due for the next tick.
pub async fn queue_due_reminders(
    deps: &SchedulerDeps<'_>,
    now: DateTime<Utc>,
    budget: &super::budget::TimeBudget,
) -> Result<usize, AppError> {
    let SchedulerDeps {
        tours,
        reminders,
        queue,
        ..
    } = *deps;
    let mut taken = Vec::new();
    let mut queued = 0;
    for due in reminders.due_reminders(now, REMINDER_LOOKBACK).await? {
        if budget.left() < budget.least {
            tracing::info!(
                queued,
                "too little time left in this tick; the other due reminders wait for the next"
            );
            break;
        }
        // A reminder is for a tour still ahead; a text that waited out quiet hours is for the tour as it now stands
        // (whether it still fits is the sender's to say).
        let tour = tours
            .tour(&due.booking_id)
            .await?
            .filter(|t| !due.kind.is_reminder() || (t.status.is_open() && t.start > now));
        let becomes = match &tour {
            Some(tour) => reminder_channel(deps.properties, deps.consents, &due, tour)
                .await?
                .map(|kind| (tour, kind)),
            None => None,
        };
        if let Some(message) = reminders.take_reminder(&due, becomes, now).await? {
            taken.push(message);
        }
        if taken.len() == REMINDERS_PER_SEND {
            queue.enqueue_messages(&taken).await?;
            queued += taken.len();
            taken.clear();
        }
    }
    if !taken.is_empty() {
        queue.enqueue_messages(&taken).await?;
        queued += taken.len();
    }
    if queued > 0 {
        tracing::info!(count = queued, "reminders queued");
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::{FlakyMailer, MemoryMessages, MemoryStore, MemoryTexts, MemoryTours};
    use crate::domain::notify::{DeliveryStatus, MessageKind};
    use crate::domain::property::tests::{demo, monday_morning};
    use crate::domain::update::tests::tour;
    use crate::domain::{lifecycle::TourStatus, record::TourRecord};
    use chrono::Duration;

    fn demo_tour() -> TourRecord {
        let mut t = tour(TourStatus::Scheduled);
        t.holder = crate::domain::record::Holder::Agent(demo().agents[0].id.clone());
        t
    }

    fn body(t: &TourRecord, kind: MessageKind) -> String {
        serde_json::json!({"booking_id": t.booking_id.as_str(), "message": format!("{}#v{}", kind.as_str(), t.version)})
            .to_string()
    }

    /// What the sender needs beside its store and mailer: the templates, the links, the text service, and the
    /// consents and queue (a tour store's).
    struct Kit {
        templates: Templates,
        links: Links,
        texts: MemoryTexts,
        side: MemoryTours,
        log: crate::app::fakes::MemoryTextLog,
    }

    fn kit() -> Kit {
        texting_kit(MemoryTexts::default())
    }

    fn texting_kit(texts: MemoryTexts) -> Kit {
        Kit {
            templates: Templates::defaults().unwrap(),
            links: Links::new("https://tours.example/tour", crate::domain::link::tests::key()).unwrap(),
            texts,
            side: MemoryTours::default(),
            log: Default::default(),
        }
    }

    /// The sender over fakes, five receives, sends of at most 5 s.
    fn sender<'a>(
        store: &'a MemoryStore,
        messages: &'a MemoryMessages,
        mailer: &'a dyn Mailer,
        staff_webhook: &'a dyn StaffWebhook,
        kit: &'a Kit,
    ) -> SenderDeps<'a> {
        SenderDeps {
            properties: store,
            messages,
            mailer,
            staff_webhook,
            texts: &kit.texts,
            consents: &kit.side,
            queue: &kit.side,
            text_log: &kit.log,
            templates: &kit.templates,
            links: &kit.links,
            max_receives: 5,
            longest_send: std::time::Duration::from_secs(5),
        }
    }

    async fn deliver(
        store: &MemoryStore,
        messages: &MemoryMessages,
        mailer: &FlakyMailer,
        body: &str,
        receive: u32,
    ) -> WorkerOutcome {
        send_one(&kit(), store, messages, mailer, body, receive).await
    }

    /// One queued message through the sender, on its `receive`th receive, with 28 s left.
    async fn send_one(
        kit: &Kit,
        store: &MemoryStore,
        messages: &MemoryMessages,
        mailer: &FlakyMailer,
        body: &str,
        receive: u32,
    ) -> WorkerOutcome {
        let deps = sender(store, messages, mailer, mailer, kit);
        send_queued_message(
            &deps,
            body,
            receive,
            monday_morning(),
            std::time::Duration::from_secs(28),
        )
        .await
        .unwrap()
    }

    fn texting() -> crate::domain::property::Property {
        let mut json = crate::domain::property::tests::demo_json();
        json["texts"] = true.into();
        crate::domain::property::Property::from_file(serde_json::from_value(json).unwrap()).unwrap()
    }

    fn grant(t: &TourRecord, at: DateTime<Utc>) -> crate::domain::consent::ConsentEvent {
        let consent = crate::domain::consent::SmsConsent {
            words: "Text me about my tour".into(),
            agreed_at: at,
        };
        let phone = crate::domain::Phone::parse(&t.prospect_phone).unwrap();
        crate::domain::consent::ConsentEvent::granted(
            t.property_id.clone(),
            phone,
            &consent,
            t.conversation_id.clone(),
            t.booking_id.clone(),
        )
    }

    async fn deliver_with(
        kit: &Kit,
        store: &MemoryStore,
        messages: &MemoryMessages,
        body: &str,
        receive: u32,
    ) -> WorkerOutcome {
        send_one(kit, store, messages, &FlakyMailer::default(), body, receive).await
    }

    fn because(messages: &MemoryMessages, t: &TourRecord, kind: MessageKind) -> Option<String> {
        messages
            .deliveries(t, kind)
            .pop()
            .and_then(|d| d.superseded_because.or(d.last_error))
    }

    #[tokio::test]
    async fn no_text_goes_without_consent_or_after_its_revocation_and_one_with_it_names_the_tour_and_its_link() {
        use crate::ports::Consents;
        let (store, kit, t) = (MemoryStore::with_property(texting()), kit(), demo_tour());
        let messages = MemoryMessages::owing(&t, &[MessageKind::TextConfirmation]);
        let outcome = deliver_with(&kit, &store, &messages, &body(&t, MessageKind::TextConfirmation), 1).await;
        assert_eq!(outcome, WorkerOutcome::Done);
        assert!(kit.texts.sent().is_empty(), "no consent, no text");
        assert_eq!(
            messages.status(&t, MessageKind::TextConfirmation),
            DeliveryStatus::Superseded
        );
        assert_eq!(
            because(&messages, &t, MessageKind::TextConfirmation).as_deref(),
            Some("the prospect has not agreed to texts")
        );

        kit.side
            .record_consent(&grant(&t, monday_morning() - Duration::hours(1)))
            .await
            .unwrap();
        messages.add(&t, &[MessageKind::TextMoved]);
        let b = body(&t, MessageKind::TextMoved);
        let (sent, lines) = crate::metrics::capture(deliver_with(&kit, &store, &messages, &b, 1)).await;
        assert_eq!(sent, WorkerOutcome::Done);
        assert_eq!(
            deliver_with(&kit, &store, &messages, &b, 2).await,
            WorkerOutcome::Done,
            "a redelivery"
        );
        let texts = kit.texts.sent();
        assert_eq!(texts.len(), 1, "sent once");
        assert_eq!(texts[0].to.expose(), "+15125550100");
        assert!(
            texts[0].body.starts_with("Maple Grove Apartments: your tour is now "),
            "{}",
            texts[0].body
        );
        assert!(
            texts[0].body.contains("https://tours.example/tour?t="),
            "the self-service link"
        );
        assert_eq!(
            texts[0].context,
            [
                ("booking_id".to_owned(), t.booking_id.to_string()),
                ("message".to_owned(), format!("text_moved#v{}", t.version)),
            ]
        );
        assert_eq!(crate::metrics::names(&lines), vec!["TextsSent"]);
        let delivery = messages.deliveries(&t, MessageKind::TextMoved).pop().unwrap();
        assert_eq!(
            (delivery.status, delivery.provider_message_id.as_deref()),
            (DeliveryStatus::Sent, Some("text-1"))
        );

        // Revoked since: the next text is not sent.
        let mut revoked = grant(&t, monday_morning() - Duration::minutes(5));
        revoked.change = crate::domain::consent::ConsentChange::Revoked { by: "STOP".into() };
        revoked.source = crate::domain::consent::ConsentSource::TextReply;
        kit.side.record_consent(&revoked).await.unwrap();
        messages.add(&t, &[MessageKind::TextReminder]);
        deliver_with(&kit, &store, &messages, &body(&t, MessageKind::TextReminder), 1).await;
        assert_eq!(kit.texts.sent().len(), 1);
        assert_eq!(
            because(&messages, &t, MessageKind::TextReminder).as_deref(),
            Some("the prospect stopped texts")
        );
    }

    #[tokio::test]
    async fn the_one_text_after_a_revocation_goes_only_then_and_help_is_answered_to_any_number_not_erased() {
        use crate::ports::Consents;
        let (store, kit, t) = (MemoryStore::with_property(texting()), kit(), demo_tour());
        let kinds = [MessageKind::TextStopped, MessageKind::TextHelp];
        let messages = MemoryMessages::owing(&t, &kinds);
        // No consent ever given: HELP is answered; there is nothing to confirm stopping.
        for kind in kinds {
            deliver_with(&kit, &store, &messages, &body(&t, kind), 1).await;
        }
        assert_eq!(messages.status(&t, MessageKind::TextHelp), DeliveryStatus::Sent);
        assert_eq!(
            because(&messages, &t, MessageKind::TextStopped).as_deref(),
            Some("texts were not stopped, or were started again since")
        );
        // Revoked: the one text that says so goes.
        let mut revoked = grant(&t, monday_morning() - Duration::minutes(1));
        revoked.change = crate::domain::consent::ConsentChange::Revoked { by: "STOP".into() };
        kit.side.record_consent(&revoked).await.unwrap();
        let later = TourRecord {
            version: t.version + 1,
            ..t.clone()
        };
        messages.add(&later, &[MessageKind::TextStopped]);
        deliver_with(&kit, &store, &messages, &body(&later, MessageKind::TextStopped), 1).await;
        assert_eq!(kit.texts.sent().len(), 2);
        assert!(kit.texts.sent()[1].body.contains("no more texts"));
        // Erased on request: never texted, not even HELP's answer.
        kit.side
            .opted_out
            .lock()
            .unwrap()
            .insert(crate::domain::consent::phone_digest(
                &crate::domain::Phone::parse(&t.prospect_phone).unwrap(),
            ));
        messages.add(&later, &[MessageKind::TextHelp]);
        deliver_with(&kit, &store, &messages, &body(&later, MessageKind::TextHelp), 1).await;
        assert_eq!(kit.texts.sent().len(), 2);
    }

    #[tokio::test]
    async fn a_receipt_marks_its_text_once_and_a_reminder_text_that_never_arrived_sends_its_email() {
        use crate::ports::Consents;
        let (store, kit, t) = (MemoryStore::with_property(texting()), kit(), demo_tour());
        kit.side
            .record_consent(&grant(&t, monday_morning() - Duration::hours(1)))
            .await
            .unwrap();
        let messages = MemoryMessages::owing(&t, &[MessageKind::TextConfirmation, MessageKind::TextReminder]);
        for kind in [MessageKind::TextConfirmation, MessageKind::TextReminder] {
            deliver_with(&kit, &store, &messages, &body(&t, kind), 1).await;
        }
        let context = |kind: MessageKind| {
            std::collections::BTreeMap::from([
                ("booking_id".to_owned(), t.booking_id.to_string()),
                ("message".to_owned(), format!("{}#v{}", kind.as_str(), t.version)),
            ])
        };
        let receipt = |kind: MessageKind, id: &str, delivered: bool| Receipt {
            message: Receipt::message_of(&context(kind)).unwrap(),
            provider_message_id: id.into(),
            delivered,
            failure: (!delivered).then(|| "TEXT_CARRIER_UNREACHABLE".to_owned()),
            at: monday_morning(),
        };
        let take = async |r: Receipt| take_receipt(&messages, &kit.side, &r, monday_morning()).await.unwrap();
        let (first, lines) =
            crate::metrics::capture(take(receipt(MessageKind::TextConfirmation, "text-1", true))).await;
        assert!(first);
        assert_eq!(crate::metrics::names(&lines), vec!["TextsDelivered"]);
        assert!(
            !take(receipt(MessageKind::TextConfirmation, "text-1", true)).await,
            "once"
        );
        assert!(
            !take(receipt(MessageKind::TextReminder, "text-9", false)).await,
            "not the text that was sent"
        );
        let delivered = messages.deliveries(&t, MessageKind::TextConfirmation).pop().unwrap();
        assert!(delivered.receipt.unwrap().delivered);
        assert!(
            kit.side.queued_messages.lock().unwrap().is_empty(),
            "a delivered text owes nothing"
        );

        let (failed, lines) = crate::metrics::capture(take(receipt(MessageKind::TextReminder, "text-2", false))).await;
        assert!(failed);
        assert_eq!(crate::metrics::names(&lines), vec!["TextsFailed"]);
        let text = messages.deliveries(&t, MessageKind::TextReminder).pop().unwrap();
        assert_eq!(
            text.receipt.unwrap().failure.as_deref(),
            Some("TEXT_CARRIER_UNREACHABLE")
        );
        assert_eq!(
            messages.status(&t, MessageKind::Reminder),
            DeliveryStatus::Pending,
            "its email is owed"
        );
        let queued: Vec<MessageKind> = kit.side.queued_kinds();
        assert_eq!(queued, [MessageKind::Reminder]);
        assert!(Receipt::message_of(&std::collections::BTreeMap::new()).is_none());
    }

    #[tokio::test]
    async fn a_property_that_does_not_text_sends_none_even_with_consent() {
        use crate::ports::Consents;
        let (store, kit, t) = (MemoryStore::with_property(demo()), kit(), demo_tour());
        kit.side.record_consent(&grant(&t, monday_morning())).await.unwrap();
        let messages = MemoryMessages::owing(&t, &[MessageKind::TextConfirmation]);
        deliver_with(&kit, &store, &messages, &body(&t, MessageKind::TextConfirmation), 1).await;
        assert!(kit.texts.sent().is_empty());
        assert_eq!(
            because(&messages, &t, MessageKind::TextConfirmation).as_deref(),
            Some("the property does not text")
        );
    }

    #[tokio::test]
    async fn a_reminder_text_that_fails_for_good_falls_back_to_its_email_once() {
        use crate::ports::Consents;
        for failure in [
            TextError::Refused("the service said ValidationException".into()),
            TextError::OptedOut,
        ] {
            let store = MemoryStore::with_property(texting());
            let (kit, t) = (texting_kit(MemoryTexts::failing([failure.clone()])), demo_tour());
            kit.side
                .record_consent(&grant(&t, monday_morning() - Duration::hours(1)))
                .await
                .unwrap();
            let messages = MemoryMessages::owing(&t, &[MessageKind::TextReminder]);
            let b = body(&t, MessageKind::TextReminder);
            let (outcome, lines) = crate::metrics::capture(deliver_with(&kit, &store, &messages, &b, 1)).await;
            assert_eq!(
                outcome,
                WorkerOutcome::Done,
                "handled: nothing for the dead-letter queue"
            );
            assert_eq!(crate::metrics::names(&lines), vec!["TextsFailed"]);
            assert_eq!(messages.status(&t, MessageKind::TextReminder), DeliveryStatus::Failed);
            assert_eq!(
                messages.status(&t, MessageKind::Reminder),
                DeliveryStatus::Pending,
                "its email is owed"
            );
            let queued = kit.side.queued_messages.lock().unwrap().clone();
            assert_eq!(
                queued.iter().map(|m| m.kind).collect::<Vec<_>>(),
                [MessageKind::Reminder]
            );
            // A redelivery of the failed text owes nothing more.
            deliver_with(&kit, &store, &messages, &b, 2).await;
            assert_eq!(kit.side.queued_messages.lock().unwrap().len(), 1);
            // The email itself goes as any reminder does.
            let mailer = FlakyMailer::default();
            let deps = sender(&store, &messages, &mailer, &mailer, &kit);
            let email = body(&t, MessageKind::Reminder);
            send_queued_message(&deps, &email, 1, monday_morning(), std::time::Duration::from_secs(28))
                .await
                .unwrap();
            assert_eq!(mailer.sent().len(), 1);
            let state = kit
                .side
                .consent(&t.property_id, &crate::domain::Phone::parse(&t.prospect_phone).unwrap())
                .await
                .unwrap()
                .state();
            if failure == TextError::OptedOut {
                assert!(
                    matches!(state, crate::domain::consent::ConsentState::Revoked { .. }),
                    "the opt-out list's revocation is on record: {state:?}"
                );
            } else {
                assert!(matches!(state, crate::domain::consent::ConsentState::Granted { .. }));
            }
        }
    }

    #[tokio::test]
    async fn a_confirmation_text_that_fails_owes_no_second_email_and_a_throttled_text_is_tried_again() {
        use crate::ports::Consents;
        let store = MemoryStore::with_property(texting());
        let throttled = TextError::Unavailable("the service said ThrottlingException".into());
        let (kit, t) = (
            texting_kit(MemoryTexts::failing([
                throttled.clone(),
                throttled.clone(),
                TextError::Refused("no".into()),
            ])),
            demo_tour(),
        );
        kit.side
            .record_consent(&grant(&t, monday_morning() - Duration::hours(1)))
            .await
            .unwrap();
        let messages = MemoryMessages::owing(&t, &[MessageKind::TextConfirmation, MessageKind::TextMoved]);
        let b = body(&t, MessageKind::TextConfirmation);
        assert_eq!(deliver_with(&kit, &store, &messages, &b, 1).await, WorkerOutcome::Retry);
        assert_eq!(
            messages.status(&t, MessageKind::TextConfirmation),
            DeliveryStatus::Pending
        );
        assert_eq!(deliver_with(&kit, &store, &messages, &b, 2).await, WorkerOutcome::Retry);
        assert_eq!(deliver_with(&kit, &store, &messages, &b, 3).await, WorkerOutcome::Done);
        assert_eq!(
            messages.status(&t, MessageKind::TextConfirmation),
            DeliveryStatus::Failed
        );
        assert!(
            kit.side.queued_messages.lock().unwrap().is_empty(),
            "the confirmation email went anyway"
        );
        // A throttle on the queue's last receive is a failure for good.
        let kit = texting_kit(MemoryTexts::failing([throttled]));
        kit.side
            .record_consent(&grant(&t, monday_morning() - Duration::hours(1)))
            .await
            .unwrap();
        let moved = body(&t, MessageKind::TextMoved);
        assert_eq!(
            deliver_with(&kit, &store, &messages, &moved, 5).await,
            WorkerOutcome::Done
        );
        assert_eq!(messages.status(&t, MessageKind::TextMoved), DeliveryStatus::Failed);
    }

    #[tokio::test]
    async fn a_due_reminder_goes_by_text_only_to_a_prospect_who_agreed_at_a_property_that_texts() {
        use crate::ports::{Consents, DueReminder};
        let t = demo_tour();
        let due = DueReminder {
            booking_id: t.booking_id.clone(),
            kind: MessageKind::Reminder,
            due: monday_morning(),
        };
        let (texts_on, texts_off) = (
            MemoryStore::with_property(texting()),
            MemoryStore::with_property(demo()),
        );
        let consents = MemoryTours::default();
        assert_eq!(
            reminder_channel(&texts_on, &consents, &due, &t).await.unwrap(),
            Some(MessageKind::Reminder),
            "no consent"
        );
        consents.record_consent(&grant(&t, monday_morning())).await.unwrap();
        assert_eq!(
            reminder_channel(&texts_on, &consents, &due, &t).await.unwrap(),
            Some(MessageKind::TextReminder)
        );
        assert_eq!(
            reminder_channel(&texts_off, &consents, &due, &t).await.unwrap(),
            Some(MessageKind::Reminder)
        );
        let last = DueReminder {
            kind: MessageKind::LastReminder,
            ..due.clone()
        };
        assert_eq!(
            reminder_channel(&texts_on, &consents, &last, &t).await.unwrap(),
            Some(MessageKind::TextLastReminder)
        );
        let waiting = DueReminder {
            kind: MessageKind::TextConfirmation,
            ..due
        };
        assert_eq!(
            reminder_channel(&texts_on, &consents, &waiting, &t).await.unwrap(),
            Some(MessageKind::TextConfirmation),
            "a text that waited out quiet hours stays itself"
        );
        // The attendance check: staff hear only of a prospect asked by text who has not confirmed.
        let check = DueReminder {
            kind: MessageKind::StaffUnconfirmed,
            ..waiting
        };
        let unconfirmed = Some(MessageKind::StaffUnconfirmed);
        assert_eq!(
            reminder_channel(&texts_on, &consents, &check, &t).await.unwrap(),
            unconfirmed
        );
        assert_eq!(
            reminder_channel(&texts_off, &consents, &check, &t).await.unwrap(),
            None,
            "never asked"
        );
        let confirmed = TourRecord {
            prospect_confirmed_at: Some(monday_morning()),
            ..t.clone()
        };
        assert_eq!(
            reminder_channel(&texts_on, &consents, &check, &confirmed)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            reminder_channel(&texts_on, &MemoryTours::default(), &check, &t)
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_redelivered_message_sends_nothing_twice() {
        let (store, mailer) = (MemoryStore::with_property(demo()), FlakyMailer::default());
        let t = demo_tour();
        let messages = MemoryMessages::owing(&t, &[MessageKind::Confirmation]);
        let b = body(&t, MessageKind::Confirmation);
        let (first, lines) = crate::metrics::capture(deliver(&store, &messages, &mailer, &b, 1)).await;
        assert_eq!(first, WorkerOutcome::Done);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 2).await, WorkerOutcome::Done);
        assert_eq!(mailer.sent().len(), 1);
        assert_eq!(crate::metrics::names(&lines), vec!["MessagesSent"]);
        assert_eq!(messages.status(&t, MessageKind::Confirmation), DeliveryStatus::Sent);
    }

    #[tokio::test]
    async fn a_send_that_fails_twice_then_works_is_sent_once_and_one_that_never_works_ends_failed() {
        let (store, t) = (MemoryStore::with_property(demo()), demo_tour());
        let mailer = FlakyMailer::failing(2);
        let messages = MemoryMessages::owing(&t, &[MessageKind::Confirmation, MessageKind::StaffNew]);
        let b = body(&t, MessageKind::Confirmation);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 1).await, WorkerOutcome::Retry);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 2).await, WorkerOutcome::Retry);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 3).await, WorkerOutcome::Done);
        assert_eq!(mailer.sent().len(), 1);
        let down = FlakyMailer::failing(100);
        let staff = body(&t, MessageKind::StaffNew);
        for receive in 1..=5 {
            assert_eq!(
                deliver(&store, &messages, &down, &staff, receive).await,
                WorkerOutcome::Retry
            );
        }
        assert_eq!(messages.status(&t, MessageKind::StaffNew), DeliveryStatus::Failed);
        assert!(down.sent().is_empty());
    }

    #[tokio::test]
    async fn a_failed_message_redriven_once_the_cause_is_fixed_is_sent_once() {
        let (store, t) = (MemoryStore::with_property(demo()), demo_tour());
        let messages = MemoryMessages::owing(&t, &[MessageKind::Confirmation]);
        let b = body(&t, MessageKind::Confirmation);
        let down = FlakyMailer::failing(100);
        let mut failed = Vec::new();
        for receive in 1..=6 {
            let (outcome, lines) = crate::metrics::capture(deliver(&store, &messages, &down, &b, receive)).await;
            assert_eq!(outcome, WorkerOutcome::Retry);
            failed.extend(crate::metrics::names(&lines));
        }
        assert_eq!(failed, vec!["MessagesFailed"], "counted once, when given up on");
        assert_eq!(messages.status(&t, MessageKind::Confirmation), DeliveryStatus::Failed);
        // SES is fixed and the dead-letter queue redriven: the message arrives anew, on its first receive.
        let mailer = FlakyMailer::default();
        assert_eq!(deliver(&store, &messages, &mailer, &b, 1).await, WorkerOutcome::Done);
        assert_eq!(messages.status(&t, MessageKind::Confirmation), DeliveryStatus::Sent);
        // A redelivery of the redriven message sends nothing twice.
        assert_eq!(deliver(&store, &messages, &mailer, &b, 1).await, WorkerOutcome::Done);
        assert_eq!(mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_message_that_can_never_go_is_marked_failed_and_its_queue_message_kept_for_the_dead_letter_queue() {
        // A staff alert of a property with no staff addresses and an agent without one: nobody to send it to.
        let mut json = crate::domain::property::tests::demo_json();
        json["staff_notification_emails"] = serde_json::json!([]);
        let property = crate::domain::property::Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
        let (store, mailer, t) = (
            MemoryStore::with_property(property),
            FlakyMailer::default(),
            demo_tour(),
        );
        let messages = MemoryMessages::owing(&t, &[MessageKind::StaffNew]);
        let b = body(&t, MessageKind::StaffNew);
        for receive in 1..=5 {
            assert_eq!(
                deliver(&store, &messages, &mailer, &b, receive).await,
                WorkerOutcome::Retry,
                "receive {receive}: kept until SQS moves it to the dead-letter queue"
            );
        }
        assert_eq!(messages.status(&t, MessageKind::StaffNew), DeliveryStatus::Failed);
        assert!(mailer.sent().is_empty());
    }

    #[tokio::test]
    async fn a_staff_webhook_alert_is_posted_once_as_json_and_never_emailed() {
        let mut json = crate::domain::property::tests::demo_json();
        json["staff_webhook_url"] = "https://hooks.chat.example/T1/B2".into();
        let property = crate::domain::property::Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
        let (store, mailer, t) = (
            MemoryStore::with_property(property),
            FlakyMailer::failing(1),
            demo_tour(),
        );
        let messages = MemoryMessages::owing(&t, &[MessageKind::WebhookNew]);
        let b = body(&t, MessageKind::WebhookNew);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 1).await, WorkerOutcome::Retry);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 2).await, WorkerOutcome::Done);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 3).await, WorkerOutcome::Done);
        let posts = mailer.posts();
        assert_eq!(posts.len(), 1, "posted once, after one failure");
        let (url, event_id, alert) = &posts[0];
        assert_eq!(url, "https://hooks.chat.example/T1/B2");
        assert_eq!(event_id, &format!("{}:webhook_new#v1", t.booking_id));
        assert_eq!(alert["alert"], "staff_new");
        assert!(alert["text"].as_str().unwrap().starts_with("New tour: Ana Lopez"));
        assert!(mailer.sent().is_empty());
        assert_eq!(messages.status(&t, MessageKind::WebhookNew), DeliveryStatus::Sent);
    }

    /// A chat service that answers after `webhook`, and an SES that accepts a message at once but answers after
    /// `mail` (each within the sender's `longest_send`, as their own timeouts ensure).
    struct Slow<'a> {
        inner: &'a FlakyMailer,
        webhook: std::time::Duration,
        mail: std::time::Duration,
    }

    #[async_trait::async_trait]
    impl crate::ports::StaffWebhook for Slow<'_> {
        async fn post(
            &self,
            url: &str,
            event_id: &str,
            body: &serde_json::Value,
        ) -> Result<String, crate::ports::MailError> {
            tokio::time::sleep(self.webhook).await;
            self.inner.post(url, event_id, body).await
        }
    }

    #[async_trait::async_trait]
    impl crate::ports::Mailer for Slow<'_> {
        async fn send(&self, email: &crate::domain::email::Mail) -> Result<String, crate::ports::MailError> {
            let accepted = self.inner.send(email).await;
            tokio::time::sleep(self.mail).await;
            accepted
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_staff_webhook_never_causes_a_second_email() {
        use crate::app::budget::TimeBudget;
        use crate::ports::QueuedMessage;
        use std::time::Duration as Std;
        let mut json = crate::domain::property::tests::demo_json();
        json["staff_webhook_url"] = "https://hooks.chat.example/T1/B2".into();
        let property = crate::domain::property::Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
        let (store, t) = (MemoryStore::with_property(property), demo_tour());
        let inner = FlakyMailer::default();
        // The chat service takes 4.5 s of its 5; SES takes 4 s to answer a message it has already taken.
        let slow = Slow {
            inner: &inner,
            webhook: Std::from_millis(4_500),
            mail: Std::from_secs(4),
        };
        let messages = MemoryMessages::owing(&t, &[MessageKind::WebhookNew, MessageKind::Confirmation]);
        let kit = kit();
        let deps = sender(&store, &messages, &slow, &slow, &kit);
        let mut queue: Vec<QueuedMessage> = [MessageKind::WebhookNew, MessageKind::Confirmation]
            .iter()
            .map(|kind| QueuedMessage {
                id: kind.as_str().into(),
                body: body(&t, *kind),
                receive_count: 0,
            })
            .collect();
        // Invocations of 10 s (the webhook leaves 3.5 s, too little for a send: the email waits for the next one),
        // each redelivery after the queue's growing delay, far past a fixed 90 s lease.
        for at in [0, 31, 92, 213, 454] {
            if queue.is_empty() {
                break;
            }
            queue.iter_mut().for_each(|m| m.receive_count += 1);
            let budget = TimeBudget {
                deadline: tokio::time::Instant::now() + Std::from_secs(10),
                margin: Std::from_secs(2),
                least: Std::from_secs(2),
            };
            let now = monday_morning() + Duration::seconds(at);
            let failed = send_batch(&deps, &queue, Std::from_secs(30), budget, &move || now).await;
            queue.retain(|m| failed.iter().any(|f| f.id == m.id));
        }
        assert!(queue.is_empty(), "both went out");
        assert_eq!(inner.posts().len(), 1, "the alert was posted once");
        assert_eq!(inner.sent().len(), 1, "the confirmation was emailed once");
        assert_eq!(messages.status(&t, MessageKind::Confirmation), DeliveryStatus::Sent);
    }

    #[tokio::test]
    async fn a_claim_outlasts_the_invocation_that_took_it() {
        let t = demo_tour();
        let messages = MemoryMessages::owing(&t, &[MessageKind::Confirmation]);
        let m = MessageRef::parse(t.booking_id.clone(), &format!("confirmation#v{}", t.version)).unwrap();
        // An invocation with 25 s left claims it and is stopped mid-send at its deadline; a redelivery 50 s later
        // (inside the slack) still finds it held, one after the lease finds it free.
        let left = std::time::Duration::from_secs(25);
        assert!(matches!(
            messages
                .claim_message(&m, monday_morning(), claim_lease(left))
                .await
                .unwrap(),
            Claim::Claimed(..)
        ));
        let later = |s| monday_morning() + Duration::seconds(s);
        assert_eq!(
            messages.claim_message(&m, later(50), claim_lease(left)).await.unwrap(),
            Claim::Busy
        );
        assert!(matches!(
            messages.claim_message(&m, later(56), claim_lease(left)).await.unwrap(),
            Claim::Claimed(..)
        ));
    }

    #[tokio::test]
    async fn a_message_given_up_after_it_was_sent_is_not_counted_failed() {
        let (store, mailer, t) = (MemoryStore::with_property(demo()), FlakyMailer::default(), demo_tour());
        let messages = MemoryMessages::owing(&t, &[MessageKind::Confirmation]);
        let b = body(&t, MessageKind::Confirmation);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 5).await, WorkerOutcome::Done);
        let kit = kit();
        let deps = sender(&store, &messages, &mailer, &mailer, &kit);
        let (given_up, lines) = crate::metrics::capture(give_up_message(&deps, &b, monday_morning())).await;
        given_up.unwrap();
        assert!(crate::metrics::names(&lines).is_empty(), "{lines:?}");
        assert_eq!(messages.status(&t, MessageKind::Confirmation), DeliveryStatus::Sent);
    }

    #[tokio::test]
    async fn staff_confirming_a_second_after_the_booking_sends_the_prospect_one_email_that_says_so() {
        let (store, mailer) = (MemoryStore::with_property(demo()), FlakyMailer::default());
        let booked = demo_tour();
        let messages = MemoryMessages::owing(&booked, &[MessageKind::Confirmation]);
        // Staff confirm a second later, before the booking's confirmation has gone.
        let confirmed = TourRecord {
            status: TourStatus::Confirmed,
            version: 2,
            ..booked.clone()
        };
        messages.add(&confirmed, &[MessageKind::Confirmed]);
        for (tour, kind) in [
            (&booked, MessageKind::Confirmation),
            (&confirmed, MessageKind::Confirmed),
        ] {
            assert_eq!(
                deliver(&store, &messages, &mailer, &body(tour, kind), 1).await,
                WorkerOutcome::Done
            );
        }
        let sent = mailer.sent();
        assert_eq!(sent.len(), 1, "one email, not two with one invitation");
        assert!(
            sent[0].text.contains("has confirmed it"),
            "it says where the tour stands now"
        );
        let invite = sent[0].invite.as_ref().expect("the invitation");
        assert!(
            invite.ics.contains("SEQUENCE:2"),
            "the invitation of the tour as it stands"
        );
        assert_eq!(
            messages.status(&booked, MessageKind::Confirmation),
            DeliveryStatus::Sent
        );
        assert_eq!(
            messages.status(&confirmed, MessageKind::Confirmed),
            DeliveryStatus::Superseded
        );
        let (_, deliveries) = messages.tour_with_messages(&booked.booking_id).await.unwrap().unwrap();
        let superseded = deliveries.iter().find(|d| d.message == MessageKind::Confirmed).unwrap();
        assert_eq!(
            superseded.superseded_because.as_deref(),
            Some("repeats the invitation (REQUEST:2) the confirmation message already gave the prospect")
        );
        // A change after the first was sent is news: its invitation is another SEQUENCE, and it goes.
        let later = TourRecord {
            status: TourStatus::Cancelled,
            version: 3,
            ..confirmed.clone()
        };
        messages.add(&later, &[MessageKind::Cancelled]);
        deliver(&store, &messages, &mailer, &body(&later, MessageKind::Cancelled), 1).await;
        assert_eq!(mailer.sent().len(), 2);
    }

    #[tokio::test]
    async fn a_confirmation_of_a_tour_cancelled_since_is_not_sent() {
        let (store, mailer) = (MemoryStore::with_property(demo()), FlakyMailer::default());
        let booked = demo_tour();
        let messages = MemoryMessages::owing(&booked, &[MessageKind::Confirmation]);
        let cancelled = TourRecord {
            status: TourStatus::Cancelled,
            version: 2,
            ..booked.clone()
        };
        messages.update_tour(&cancelled);
        let b = body(&booked, MessageKind::Confirmation);
        assert_eq!(deliver(&store, &messages, &mailer, &b, 1).await, WorkerOutcome::Done);
        assert!(mailer.sent().is_empty());
        assert_eq!(
            messages.status(&booked, MessageKind::Confirmation),
            DeliveryStatus::Superseded
        );
    }

    #[tokio::test]
    async fn with_the_mailer_failing_thirty_percent_every_message_is_sent_once_or_ends_failed() {
        let store = MemoryStore::with_property(demo());
        let mailer = FlakyMailer::random(0.3, 42);
        let mut owed = Vec::new();
        let messages = MemoryMessages::default();
        for n in 0..200u128 {
            let mut t = demo_tour();
            t.booking_id = BookingId::from_uuid(uuid::Uuid::from_u128(n + 1));
            messages.add(&t, &[MessageKind::Confirmation, MessageKind::StaffNew]);
            owed.push(body(&t, MessageKind::Confirmation));
            owed.push(body(&t, MessageKind::StaffNew));
        }
        // As SQS does: every message is received until it is done or its fifth receive is over; some are delivered
        // twice besides.
        for (i, b) in owed.iter().enumerate() {
            for receive in 1..=5 {
                let outcome = deliver(&store, &messages, &mailer, b, receive).await;
                if i % 7 == 0 {
                    deliver(&store, &messages, &mailer, b, receive).await;
                }
                if outcome == WorkerOutcome::Done {
                    break;
                }
            }
        }
        let sent = mailer.sent();
        let (delivered, failed) = messages.tally();
        assert_eq!(delivered + failed, 400, "every message ends sent or failed");
        assert_eq!(sent.len(), delivered, "each sent message went out once");
        assert!(mailer.calls() > 400, "the mailer failed along the way");
    }
}
