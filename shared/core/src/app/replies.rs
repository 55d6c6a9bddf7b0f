//! A prospect's reply to one of our texts, applied once: it is placed on the tour whose text it answers (the
//! service names our last text to the number), read as a keyword ([`crate::domain::texts::Reply`]), and acted on.
//!
//! - `C`: the prospect's attendance is recorded on the tour (a new version: staff and the chatbot see it), and
//!   noted back by text.
//! - `R`: a fresh self-service link by text.
//! - `CANCEL`: consent to texts is revoked, the tour is cancelled as any cancellation is (ResMan's note, the emails,
//!   the staff alert, the chatbot's callback), and one final text says both. Its `text_cancelled` twin finds consent
//!   revoked and is not sent, so the prospect gets one text, not two.
//! - `STOP` and the other revocations: consent is revoked, nothing else changes, one final text.
//! - `HELP`: who we are and how to stop. `START`: consent granted again, and said so.
//! - Anything else is for a person or the chatbot: the words are kept on the tour (with its personal data) as its
//!   next version, so the chatbot's change callback carries them into the conversation, and the tour's agent and
//!   staff get an alert with them (and the staff webhook, where the property has one).
//!
//! Every answer is a message the tour owes at its version (`<kind>#v<version>`), so a keyword repeated while the
//! tour stands still is answered once. The service may deliver a reply twice: one applied is marked by its
//! `inboundMessageId` and not applied again.

use super::AppError;
use super::availability::load_property;
use super::lifecycle::{UpdateDeps, change_tour_if};
use crate::domain::consent::{ConsentChange, ConsentEvent, ConsentSource};
use crate::domain::lifecycle::ChangeSource;
use crate::domain::notify::{MessageKind, MessageRef};
use crate::domain::property::Property;
use crate::domain::record::TourRecord;
use crate::domain::texts::Reply;
use crate::domain::{Phone, update::UpdateTourCommand};
use crate::ports::{ChangeExtras, ChangeWrite, Consents, Locks, MessageStore, TextLog};
use chrono::{DateTime, Utc};

/// A text a prospect sent to one of our numbers, as the service delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundText {
    pub from: Phone,
    pub body: String,
    /// The service's id of this reply: a redelivery carries the same.
    pub inbound_id: String,
    /// The service's id of our last text to the number (`previousPublishedMessageId`), when it knows one.
    pub previous: Option<String>,
}

pub struct ReplyDeps<'a> {
    /// The tour's reads and writes and the outbox's queue, as any change of a tour takes them.
    pub update: UpdateDeps<'a>,
    pub messages: &'a dyn MessageStore,
    pub consents: &'a dyn Consents,
    pub text_log: &'a dyn TextLog,
}

/// What became of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Acted on: what it asked for.
    Applied(Reply),
    /// Applied already (a redelivery).
    Duplicate,
    /// No tour of ours for it (no text of ours to that number is on record, or the tour's number changed since).
    Unplaced,
}

/// How many times a confirmation is tried against a tour that changed meanwhile.
const TRIES: usize = 3;

pub async fn take_reply(
    deps: &ReplyDeps<'_>,
    inbound: &InboundText,
    now: DateTime<Utc>,
) -> Result<ReplyOutcome, AppError> {
    if deps.text_log.reply_applied(&inbound.inbound_id).await? {
        return Ok(ReplyOutcome::Duplicate);
    }
    let reply = Reply::parse(&inbound.body);
    let outcome = match placed(deps, inbound).await? {
        Some(tour) => {
            act(deps, &reply, tour, inbound, now).await?;
            tracing::info!(reply = ?reply_name(&reply), "a prospect's reply was applied");
            ReplyOutcome::Applied(reply)
        }
        None => {
            // Our texts carry our number only to prospects we texted: a reply we cannot place came long after its
            // tour, or to a number whose tour was erased. Nothing of ours may act on it.
            tracing::warn!(reply = ?reply_name(&reply), "a reply that answers no text of ours on record; dropped");
            ReplyOutcome::Unplaced
        }
    };
    deps.text_log.mark_reply_applied(&inbound.inbound_id, now).await?;
    Ok(outcome)
}

/// The reply's keyword for the logs (never its words: they are the prospect's).
fn reply_name(reply: &Reply) -> &'static str {
    match reply {
        Reply::Confirm => "confirm",
        Reply::Reschedule => "reschedule",
        Reply::Cancel => "cancel",
        Reply::Revoke { .. } => "revoke",
        Reply::Help => "help",
        Reply::Start => "start",
        Reply::Other => "other",
    }
}

/// The tour the reply is about, if the reply comes from its prospect's number.
async fn placed(deps: &ReplyDeps<'_>, inbound: &InboundText) -> Result<Option<TourRecord>, AppError> {
    let Some(id) = deps
        .text_log
        .replied_tour(inbound.previous.as_deref(), &inbound.from)
        .await?
    else {
        return Ok(None);
    };
    let tour = deps.update.tours.tour(&id).await?;
    Ok(tour.filter(|t| Phone::parse(&t.prospect_phone).is_ok_and(|p| p == inbound.from)))
}

async fn act(
    deps: &ReplyDeps<'_>,
    reply: &Reply,
    tour: TourRecord,
    inbound: &InboundText,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let revoke = async |by: &str| {
        let event = ConsentEvent {
            property_id: tour.property_id.clone(),
            phone: inbound.from.clone(),
            at: now,
            change: ConsentChange::Revoked { by: by.to_owned() },
            source: ConsentSource::TextReply,
        };
        deps.consents.record_consent(&event).await
    };
    match reply {
        Reply::Confirm => {
            let noted = [MessageKind::TextAttending];
            let confirms =
                |property: &Property, t: &TourRecord| t.attended_by_prospect(now, property.text_confirms_tour);
            save_by_text(deps, tour, &confirms, &|_| noted.to_vec(), now).await
        }
        Reply::Reschedule => owe(deps, &tour, MessageKind::TextNewTime, now).await,
        Reply::Cancel => {
            // Revoked first: the cancellation's own text then finds consent gone, and only the final one goes.
            revoke("CANCEL").await?;
            let cancelled = cancel(deps, &tour, inbound, now).await?;
            match cancelled {
                Some(after) => owe(deps, &after, MessageKind::TextCancelledAndStopped, now).await,
                None => owe(deps, &tour, MessageKind::TextStopped, now).await,
            }
        }
        Reply::Revoke { word } => {
            revoke(word).await?;
            owe(deps, &tour, MessageKind::TextStopped, now).await
        }
        Reply::Help => owe(deps, &tour, MessageKind::TextHelp, now).await,
        Reply::Start => {
            let event = ConsentEvent {
                property_id: tour.property_id.clone(),
                phone: inbound.from.clone(),
                at: now,
                change: ConsentChange::Granted {
                    words: "START, texted to our number".to_owned(),
                },
                source: ConsentSource::TextReply,
            };
            deps.consents.record_consent(&event).await?;
            owe(deps, &tour, MessageKind::TextRestarted, now).await
        }
        Reply::Other => {
            let alerts = |property: &Property| {
                let mut alerts = vec![MessageKind::StaffReply];
                if property.staff_webhook_url.is_some() {
                    alerts.push(MessageKind::WebhookReply);
                }
                alerts
            };
            let words = inbound.body.as_str();
            save_by_text(deps, tour, &|_, t| Some(t.replied_by_text(now, words)), &alerts, now).await
        }
    }
}

/// Cancels the tour as the prospect's change (keyed by the reply, so a second delivery is the same change); the
/// tour as cancelled, or `None` when it could not be (it is over, or cancelled already).
async fn cancel(
    deps: &ReplyDeps<'_>,
    tour: &TourRecord,
    inbound: &InboundText,
    now: DateTime<Utc>,
) -> Result<Option<TourRecord>, AppError> {
    if !tour.status.is_open() {
        return Ok(None);
    }
    let command = UpdateTourCommand::from_body(br#"{"status":"cancelled"}"#)?;
    let key = format!("text-reply:{}", inbound.inbound_id);
    let id = tour.booking_id.as_str();
    match change_tour_if(
        &deps.update,
        id,
        &command,
        Some(&key),
        ChangeSource::ProspectText,
        &|_| Ok(()),
        now,
    )
    .await
    {
        Ok(_) => Ok(deps.update.tours.tour(&tour.booking_id).await?),
        Err(AppError::Illegal { change, .. }) => {
            tracing::info!(booking_id = %tour.booking_id, refused = %change, "a CANCEL reply could not cancel the tour");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Saves what the prospect's text changed on the tour (`change`: `None` when it changes nothing) as its next version
/// (its callback tells the chatbot), with the messages it owes; read again and decided again when the tour changed
/// meanwhile.
async fn save_by_text(
    deps: &ReplyDeps<'_>,
    mut tour: TourRecord,
    change: &(dyn Fn(&Property, &TourRecord) -> Option<TourRecord> + Sync),
    owes: &(dyn Fn(&Property) -> Vec<MessageKind> + Sync),
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let property = load_property(deps.update.properties, &tour.property_id).await?;
    let messages = owes(&property);
    for _ in 0..TRIES {
        let Some(after) = change(&property, &tour) else {
            return Ok(());
        };
        let extras = ChangeExtras {
            answer: None,
            messages: &messages,
            reminders: None,
        };
        match deps
            .update
            .tours
            .save_change(&property, &tour, &after, Locks::Take, extras, now)
            .await?
        {
            ChangeWrite::Saved => {
                tracing::info!(booking_id = %after.booking_id, version = after.version, "the prospect's text is on the tour");
                super::lifecycle::enqueue_owed(deps.update.queue, &after, &messages, after.owes_callback()).await;
                return Ok(());
            }
            ChangeWrite::Stale | ChangeWrite::SlotTaken | ChangeWrite::KeyInUse => {
                match deps.update.tours.tour(&tour.booking_id).await? {
                    Some(fresh) => tour = fresh,
                    None => return Ok(()),
                }
            }
        }
    }
    Err(AppError::Internal(
        "the tour kept changing while its prospect's text was recorded".into(),
    ))
}

/// One answer the tour owes, queued; once per tour version.
async fn owe(deps: &ReplyDeps<'_>, tour: &TourRecord, kind: MessageKind, now: DateTime<Utc>) -> Result<(), AppError> {
    let owed: Option<MessageRef> = deps.messages.owe_message(tour, kind, now).await?;
    if let Some(owed) = owed {
        deps.update.queue.enqueue_messages(&[owed]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::{MemoryMessages, MemoryStore, MemoryTextLog, MemoryTours};
    use crate::app::lifecycle::tests::booked;
    use crate::domain::consent::ConsentState;
    use crate::domain::lifecycle::TourStatus;
    use crate::domain::property::tests::monday_morning;
    use crate::ports::{SentText, TourReads};

    struct World {
        store: MemoryStore,
        tours: MemoryTours,
        messages: MemoryMessages,
        log: MemoryTextLog,
        tour: TourRecord,
        phone: Phone,
        /// Each reply comes a minute after the one before.
        replies: std::sync::atomic::AtomicI64,
    }

    impl World {
        /// A texting property, a tour whose prospect agreed to texts, and our confirmation text to them on record.
        async fn new() -> Self {
            Self::where_c_confirms(false).await
        }

        /// The same, at a property where a prospect's `C` confirms the tour itself (`text_confirms_tour`), or not.
        async fn where_c_confirms(confirms_tour: bool) -> Self {
            let mut json = crate::domain::property::tests::demo_json();
            json["texts"] = true.into();
            json["text_confirms_tour"] = confirms_tour.into();
            let property = crate::domain::property::Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
            let (store, tours) = (MemoryStore::with_property(property), MemoryTours::default());
            let tour = booked(&tours, 1, "A", 10);
            let phone = Phone::parse(&tour.prospect_phone).unwrap();
            let world = World {
                store,
                tours,
                messages: MemoryMessages::default(),
                log: MemoryTextLog::default(),
                tour,
                phone,
                replies: Default::default(),
            };
            world
                .consent(
                    ConsentChange::Granted {
                        words: "Text me".into(),
                    },
                    60,
                )
                .await;
            world
                .log
                .text_sent(&SentText {
                    booking_id: world.tour.booking_id.clone(),
                    to: world.phone.clone(),
                    provider_message_id: "text-1".into(),
                    until: world.tour.end + chrono::Duration::days(30),
                })
                .await
                .unwrap();
            world
        }

        async fn consent(&self, change: ConsentChange, minutes_ago: i64) {
            let event = ConsentEvent {
                property_id: self.tour.property_id.clone(),
                phone: self.phone.clone(),
                at: monday_morning() - chrono::Duration::minutes(minutes_ago),
                change,
                source: ConsentSource::TextReply,
            };
            self.tours.record_consent(&event).await.unwrap();
        }

        fn deps(&self) -> ReplyDeps<'_> {
            ReplyDeps {
                update: UpdateDeps {
                    properties: &self.store,
                    calendar: &self.store,
                    tours: &self.tours,
                    queue: &self.tours,
                },
                messages: &self.messages,
                consents: &self.tours,
                text_log: &self.log,
            }
        }

        async fn reply(&self, body: &str, id: &str) -> ReplyOutcome {
            let inbound = InboundText {
                from: self.phone.clone(),
                body: body.into(),
                inbound_id: id.into(),
                previous: Some("text-1".into()),
            };
            let n = self.replies.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            take_reply(&self.deps(), &inbound, monday_morning() + chrono::Duration::minutes(n))
                .await
                .unwrap()
        }

        /// The answers owed by text, by kind.
        fn answers(&self) -> Vec<MessageKind> {
            let queued = self.tours.queued_kinds();
            queued
                .into_iter()
                .filter(|k| k.audience() == crate::domain::notify::Audience::Text)
                .collect()
        }

        async fn now(&self) -> TourRecord {
            self.tours.tour(&self.tour.booking_id).await.unwrap().unwrap()
        }

        async fn consent_state(&self) -> ConsentState {
            self.tours
                .consent(&self.tour.property_id, &self.phone)
                .await
                .unwrap()
                .state()
        }
    }

    #[tokio::test]
    async fn c_records_the_prospects_attendance_once_as_a_new_version_and_notes_it_by_text() {
        for word in ["C", "y", "Yes!", "confirm"] {
            let world = World::new().await;
            assert_eq!(world.reply(word, "in-1").await, ReplyOutcome::Applied(Reply::Confirm));
            let after = world.now().await;
            assert!(after.prospect_confirmed_at.is_some(), "{word}");
            assert_eq!(after.version, world.tour.version + 1);
            assert_eq!(
                after.status,
                TourStatus::Scheduled,
                "staff's confirmation is theirs to give"
            );
            assert_eq!(after.history.last().unwrap().source, ChangeSource::ProspectText);
            assert!(
                after.owes_callback() && !after.owes_resman(),
                "the chatbot hears of it; ResMan has nothing to learn"
            );
            assert_eq!(world.answers(), [MessageKind::TextAttending]);
            // The same reply delivered again, and the same word sent again: nothing more.
            assert_eq!(world.reply(word, "in-1").await, ReplyOutcome::Duplicate);
            world.reply(word, "in-2").await;
            assert_eq!(world.now().await.version, after.version);
            assert_eq!(world.answers().len(), 1);
        }
    }

    #[tokio::test]
    async fn where_the_property_says_so_c_also_confirms_the_tour_and_resman_is_owed_it() {
        let world = World::where_c_confirms(true).await;
        let queued_before = world.tours.queued.lock().unwrap().len();
        assert_eq!(world.reply("C", "in-1").await, ReplyOutcome::Applied(Reply::Confirm));
        let after = world.now().await;
        assert_eq!(after.status, TourStatus::Confirmed);
        assert!(after.prospect_confirmed_at.is_some());
        assert_eq!(after.version, world.tour.version + 1, "one version for both");
        assert!(after.owes_resman(), "ResMan is written Confirmed");
        assert_eq!(
            world.tours.queued.lock().unwrap()[queued_before..],
            *std::slice::from_ref(&after.booking_id),
            "its sync (ResMan, then the chatbot's callback) is queued"
        );
        assert_eq!(
            world.tours.queued_kinds(),
            [MessageKind::TextAttending],
            "no 'the guide confirmed' email: the prospect's text says it"
        );
        world.reply("C", "in-2").await;
        assert_eq!(world.now().await.version, after.version);
    }

    #[tokio::test]
    async fn r_owes_a_fresh_link_by_text_and_changes_nothing_else() {
        let world = World::new().await;
        assert_eq!(world.reply("R", "in-1").await, ReplyOutcome::Applied(Reply::Reschedule));
        assert_eq!(
            world.reply("reschedule", "in-2").await,
            ReplyOutcome::Applied(Reply::Reschedule)
        );
        assert_eq!(world.answers(), [MessageKind::TextNewTime], "once per tour version");
        assert_eq!(world.now().await, world.tour);
        assert_eq!(
            world.messages.status(&world.tour, MessageKind::TextNewTime),
            crate::domain::notify::DeliveryStatus::Pending
        );
    }

    #[tokio::test]
    async fn cancel_cancels_the_tour_revokes_consent_and_owes_one_final_text() {
        let world = World::new().await;
        assert_eq!(
            world.reply("Cancel", "in-1").await,
            ReplyOutcome::Applied(Reply::Cancel)
        );
        let after = world.now().await;
        assert_eq!(after.status, TourStatus::Cancelled);
        assert_eq!(after.history.last().unwrap().source, ChangeSource::ProspectText);
        assert!(matches!(world.consent_state().await, ConsentState::Revoked { .. }));
        let queued: Vec<MessageKind> = world.tours.queued_kinds();
        assert!(
            queued.contains(&MessageKind::Cancelled),
            "the usual cancellation email: {queued:?}"
        );
        assert!(queued.contains(&MessageKind::StaffCancelled), "and staff's alert");
        // The cancellation's own text waits out quiet hours (it is 6 am), and will find consent revoked when it may
        // go; the answer to the prospect's own text goes at once.
        assert_eq!(world.answers(), [MessageKind::TextCancelledAndStopped]);
        assert_eq!(world.tours.queued.lock().unwrap().len(), 1, "ResMan's note is owed");
        // Delivered again: the tour is not cancelled twice, nor texted again.
        assert_eq!(world.reply("Cancel", "in-1").await, ReplyOutcome::Duplicate);
        assert_eq!(world.answers().len(), 1);
        assert_eq!(world.now().await.version, after.version);
    }

    #[tokio::test]
    async fn each_revocation_word_stops_texts_with_one_final_text_and_changes_nothing_else() {
        for word in [
            "STOP",
            "quit",
            "End",
            "revoke",
            "opt out",
            "OPTOUT",
            "stopall",
            "Unsubscribe",
            "please stop texting me",
        ] {
            let world = World::new().await;
            assert!(
                matches!(
                    world.reply(word, "in-1").await,
                    ReplyOutcome::Applied(Reply::Revoke { .. })
                ),
                "{word}"
            );
            assert!(
                matches!(world.consent_state().await, ConsentState::Revoked { .. }),
                "{word}"
            );
            assert_eq!(world.answers(), [MessageKind::TextStopped], "{word}");
            assert_eq!(world.now().await, world.tour, "{word}: the tour stands");
        }
    }

    #[tokio::test]
    async fn help_is_answered_and_start_grants_consent_again() {
        let world = World::new().await;
        world.reply("STOP", "in-1").await;
        assert_eq!(world.reply("help", "in-2").await, ReplyOutcome::Applied(Reply::Help));
        assert_eq!(world.reply("START", "in-3").await, ReplyOutcome::Applied(Reply::Start));
        assert!(matches!(world.consent_state().await, ConsentState::Granted { .. }));
        assert_eq!(
            world.answers(),
            [
                MessageKind::TextStopped,
                MessageKind::TextHelp,
                MessageKind::TextRestarted
            ]
        );
    }

    #[tokio::test]
    async fn other_words_reach_staff_and_the_chatbot_and_a_reply_from_another_number_or_to_no_text_of_ours_is_not_placed()
     {
        let world = World::new().await;
        assert_eq!(
            world.reply("  is parking free? ", "in-1").await,
            ReplyOutcome::Applied(Reply::Other)
        );
        assert!(
            world.answers().is_empty(),
            "no text answers it: a person or the chatbot will"
        );
        let after = world.now().await;
        assert_eq!(
            after.prospect_reply.as_ref().map(|r| r.words.as_str()),
            Some("is parking free?")
        );
        assert_eq!(
            after.version,
            world.tour.version + 1,
            "the callback carries it to the chatbot"
        );
        assert!(after.owes_callback());
        let alerts: Vec<MessageKind> = world.tours.queued_kinds();
        assert_eq!(alerts, [MessageKind::StaffReply], "the property has no staff webhook");
        assert_eq!(world.reply("is parking free?", "in-1").await, ReplyOutcome::Duplicate);
        assert_eq!(world.now().await.version, after.version);
        let long = "x".repeat(2_000);
        world.reply(&long, "in-9").await;
        assert_eq!(
            world.now().await.prospect_reply.unwrap().words.chars().count(),
            crate::domain::record::REPLY_CHARS
        );
        let stranger = InboundText {
            from: Phone::parse("+15125559999").unwrap(),
            body: "CANCEL".into(),
            inbound_id: "in-2".into(),
            previous: Some("text-1".into()),
        };
        let placed = take_reply(&world.deps(), &stranger, monday_morning()).await.unwrap();
        assert_eq!(
            placed,
            ReplyOutcome::Unplaced,
            "another number cannot cancel this prospect's tour"
        );
        assert_eq!(world.now().await.status, TourStatus::Scheduled);
        // Without the service's pointer, the number's latest text places it.
        let bare = InboundText {
            previous: None,
            inbound_id: "in-3".into(),
            body: "C".into(),
            ..stranger.clone()
        };
        assert_eq!(
            take_reply(&world.deps(), &bare, monday_morning()).await.unwrap(),
            ReplyOutcome::Unplaced
        );
        let own = InboundText {
            from: world.phone.clone(),
            ..bare
        };
        assert_eq!(
            take_reply(
                &world.deps(),
                &InboundText {
                    inbound_id: "in-4".into(),
                    ..own
                },
                monday_morning()
            )
            .await
            .unwrap(),
            ReplyOutcome::Applied(Reply::Confirm)
        );
    }
}
