//! Booking a tour: hold the slot in our store first (one transaction, so exactly one prospect gets it), then write
//! it into ResMan; when ResMan is down the booking stands, is answered honestly as pending, and is queued.

use super::AppError;
use super::availability::{alternatives, busy_around_date, candidates, load_property, reach_of_dates};
use super::sync::{Attempts, SyncOutcome, sync_to_resman};
use crate::domain::lifecycle::{ChangeSource, TourChange};
use crate::domain::property::Property;
use crate::domain::slots::{self, Busy};
use crate::domain::{TourType, UtcWindow};
use crate::domain::{
    booking::{BookTourCommand, requested_slot},
    ids::BookingId,
    lifecycle::TourStatus,
    record::{Holder, SyncStatus, TourRecord, lock_granules},
};
use crate::metrics::Metric;
use crate::ports::{
    BookingWrite, CalendarStore, HoldStore, NewBooking, Outcome, PropertyStore, Refusal, ResManGateway, SavedOutcome,
    SyncQueue, TourStore,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_link: Option<String>,
    pub instructions: String,
}

/// What every answer about a tour says of it: its ids, state, time, guide and length. `appointment_id` is our
/// booking id (it exists before ResMan has answered); ResMan's id follows in `resman_appointment_id` once the tour is
/// in ResMan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourHeadline {
    pub appointment_id: String,
    pub resman_appointment_id: Option<String>,
    pub status: TourStatus,
    pub sync_status: SyncStatus,
    /// RFC 3339 with the property's UTC offset.
    pub confirmed_datetime: String,
    /// The agent's name, or "Self-guided".
    pub staff_member: String,
    pub tour_type: TourType,
    /// Minutes.
    pub duration: u32,
}

/// The seed's `BookTourResponse`, with `status` and `sync_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookTourResponse {
    #[serde(flatten)]
    pub tour: TourHeadline,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_member_id: Option<String>,
    pub confirmation_details: ConfirmationDetails,
}

/// A finished booking call: how it came out and the body the chatbot gets (a retry with the same key gets them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub outcome: Outcome,
    pub body: String,
    pub response: Option<BookTourResponse>,
}

pub struct BookingDeps<'a> {
    pub properties: &'a dyn PropertyStore,
    pub calendar: &'a dyn CalendarStore,
    pub tours: &'a dyn TourStore,
    /// The conversation's slot hold, when the booking presents one.
    pub holds: &'a dyn HoldStore,
    pub resman: &'a dyn ResManGateway,
    pub queue: &'a dyn SyncQueue,
    pub attempts: Attempts,
    /// The time when ResMan took the booking (the end of its booking time).
    pub clock: &'a (dyn Fn() -> chrono::DateTime<chrono::Utc> + Sync),
}

pub fn headline(property: &Property, tour: &TourRecord) -> TourHeadline {
    let agent = tour.holder.agent().and_then(|a| property.agent(a));
    TourHeadline {
        appointment_id: tour.booking_id.to_string(),
        resman_appointment_id: tour.resman_appointment_id.as_ref().map(|a| a.to_string()),
        status: tour.status,
        sync_status: tour.sync_status,
        confirmed_datetime: tour.start.with_timezone(&property.time_zone).to_rfc3339(),
        staff_member: agent
            .map(|a| a.name.clone())
            .unwrap_or_else(|| "Self-guided".to_owned()),
        tour_type: tour.tour_type,
        duration: u32::try_from((tour.end - tour.start).num_minutes()).unwrap_or(0),
    }
}

pub fn response_for(property: &Property, tour: &TourRecord) -> BookTourResponse {
    let config = property.tour_type(tour.tour_type).ok();
    BookTourResponse {
        tour: headline(property, tour),
        staff_member_id: tour.holder.agent().map(|a| a.to_string()),
        confirmation_details: ConfirmationDetails {
            location: config
                .and_then(|c| c.location.clone())
                .or_else(|| Some(property.address.clone()).filter(|_| tour.tour_type != TourType::Virtual)),
            virtual_link: config.and_then(|c| c.virtual_link.clone()),
            instructions: config.map(|c| c.instructions.clone()).unwrap_or_default(),
        },
    }
}

/// The grant of consent to texts a booking carries, for the prospect's number at the tour's property.
fn consent_of(command: &BookTourCommand, tour: &TourRecord) -> Option<crate::domain::consent::ConsentEvent> {
    let (consent, phone) = (command.sms_consent.as_ref()?, command.contact.phone.clone()?);
    Some(crate::domain::consent::ConsentEvent::granted(
        tour.property_id.clone(),
        phone,
        consent,
        tour.conversation_id.clone(),
        tour.booking_id.clone(),
    ))
}

fn finished(outcome: Outcome, response: BookTourResponse) -> Result<Booked, AppError> {
    let body = serde_json::to_string(&response).map_err(|e| AppError::Internal(format!("response: {e}")))?;
    Ok(Booked {
        outcome,
        body,
        response: Some(response),
    })
}

/// Answers a request whose key is already recorded: replay, wait, or refuse a different body.
fn replay(record: &crate::ports::IdempotencyRecord, fingerprint: &str) -> Result<Booked, AppError> {
    if record.fingerprint != fingerprint {
        return Err(AppError::KeyReused);
    }
    match &record.response {
        Some(SavedOutcome::Done { outcome, body }) => Ok(Booked {
            outcome: *outcome,
            body: body.clone(),
            response: serde_json::from_str(body).ok(),
        }),
        Some(SavedOutcome::Refused(refusal)) => Err(refusal.clone().into()),
        None => Err(AppError::InProgress),
    }
}

/// Reads a booking request's raw body into a command: a body over the limit is `TooLarge` (413), anything else
/// wrong is an `Invalid` naming its field (400).
pub fn parse_booking_body(body: &[u8]) -> Result<BookTourCommand, AppError> {
    if body.len() > crate::domain::booking::MAX_BODY_BYTES {
        return Err(AppError::TooLarge(crate::domain::booking::MAX_BODY_BYTES));
    }
    let request = crate::domain::booking::BookTourRequest::from_body(body)?;
    Ok(BookTourCommand::parse(&request)?)
}

/// Longer than any booking call can run (the function's timeout is 29 s): a request still "in progress" after
/// this died after holding its slot.
pub const IN_PROGRESS_STALE_AFTER: Duration = Duration::seconds(60);

/// A replay; or, when the first request died after holding the slot but before saving its answer, the booking as
/// it stands (its owed ResMan write is in the outbox, which the sweeper re-queues), instead of "in progress" for
/// the record's whole lifetime.
async fn replay_or_recover(
    deps: &BookingDeps<'_>,
    record: &crate::ports::IdempotencyRecord,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<Booked, AppError> {
    match replay(record, fingerprint) {
        Err(AppError::InProgress) if now - record.started_at > IN_PROGRESS_STALE_AFTER => {
            let Some(id) = &record.booking_id else {
                return Err(AppError::InProgress);
            };
            let Some(tour) = deps.tours.tour(id).await? else {
                return Err(AppError::InProgress);
            };
            let property = load_property(deps.properties, &tour.property_id).await?;
            let outcome = if tour.sync_status == SyncStatus::Synced {
                Outcome::Booked
            } else {
                Outcome::Pending
            };
            finished(outcome, response_for(&property, &tour))
        }
        answer => answer,
    }
}

/// What trying to hold the slot came to.
enum Hold {
    /// The slot is ours: the tour, its locks, the idempotency record and the outbox item are stored.
    Held(Box<(Property, TourRecord)>),
    /// Every agent (or seat) who could give the tour is taken.
    Taken(Box<Property>, UtcWindow),
    /// The idempotency key is already recorded: this request was seen before.
    Seen,
}

/// The ResMan prospect that an earlier tour of this conversation, at this property and with this e-mail, was
/// written to: a booking for them needs no search of ResMan first.
fn known_prospect(earlier: &[TourRecord], property: &Property, command: &BookTourCommand) -> Option<String> {
    earlier
        .iter()
        .filter(|t| {
            t.property_id == property.id
                && t.sync_status == SyncStatus::Synced
                && t.prospect_email.eq_ignore_ascii_case(command.contact.email.expose())
        })
        .max_by_key(|t| t.created_at)
        .and_then(|t| t.resman_prospect_id.clone())
}

fn new_tour(
    property: &Property,
    command: &BookTourCommand,
    key: &str,
    booking_id: &BookingId,
    window: &UtcWindow,
    holder: Holder,
    now: DateTime<Utc>,
) -> TourRecord {
    let agent = holder.agent().cloned();
    TourRecord {
        booking_id: booking_id.clone(),
        conversation_id: command.conversation_id.clone(),
        property_id: property.id.clone(),
        tour_type: command.tour_type,
        holder,
        start: window.start(),
        end: window.end(),
        status: TourStatus::Scheduled,
        sync_status: SyncStatus::Pending,
        resman_appointment_id: None,
        resman_prospect_id: None,
        prospect_name: format!("{} {}", command.contact.name.first(), command.contact.name.last()),
        prospect_email: command.contact.email.expose().to_owned(),
        prospect_phone: command
            .contact
            .phone
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default(),
        unit_preferences: command.unit_preferences.clone(),
        special_requests: command.special_requests.clone(),
        idempotency_key: key.to_owned(),
        created_at: now,
        last_error: None,
        version: 1,
        history: vec![TourChange {
            version: 1,
            at: now,
            source: ChangeSource::Chatbot,
            status: TourStatus::Scheduled,
            start: window.start(),
            agent,
            overrode: None,
            received: None,
        }],
        resman_version: 0,
        resman_synced_at: None,
        // The chatbot made the booking itself: its callbacks start with the first change after it.
        callback_version: 1,
        staff_notes: None,
        outcome: None,
        resman_word: None,
        in_resman_at: None,
        prospect_stage: None,
        resman_seen: None,
        disagreement: None,
        prospect_confirmed_at: None,
        prospect_reply: None,
    }
}

/// Holds the slot in our store. Two store round trips: the property, the day's busy time and the conversation's
/// earlier tours are read at the same time, then one transaction writes the booking under conditions that also
/// stand for the idempotency check (the key's record is created only if absent).
async fn hold_slot(
    deps: &BookingDeps<'_>,
    command: &BookTourCommand,
    key: &str,
    fingerprint: &str,
    booking_id: &BookingId,
    replaces: Option<&BookingId>,
    now: DateTime<Utc>,
) -> Result<Hold, AppError> {
    // The conversation's hold is read only when the booking presents one.
    let hold = async {
        match &command.hold_token {
            Some(_) => deps.holds.hold(&command.conversation_id).await,
            None => Ok(None),
        }
    };
    let (property, busy, earlier, hold) = tokio::join!(
        load_property(deps.properties, &command.property_id),
        busy_around_date(deps.calendar, &command.property_id, command.date, now),
        deps.tours.conversation_tours(&command.conversation_id),
        hold,
    );
    let property = property?;
    let window = requested_slot(&property, command, now)?;
    if let Some(consent) = &command.sms_consent {
        consent.check(now)?;
    }
    let reach = reach_of_dates(&property, command.date, command.date)?;
    let hold = hold?;
    let presented = crate::domain::hold::presented(hold.as_ref(), command.hold_token.as_ref(), &property.id);
    // The booking's own hold does not stand in its way.
    let busy: Vec<Busy> = slots::in_force(busy?, now, presented.map(|h| &h.token))
        .into_iter()
        .filter(|b| b.window.overlaps(&reach))
        .collect();
    // Only a shortcut: without it the prospect is searched for in ResMan, as for a first booking.
    let known = earlier
        .inspect_err(|e| tracing::warn!(error = %e, "could not read the conversation's earlier tours"))
        .ok()
        .and_then(|earlier| known_prospect(&earlier, &property, command));

    let mut holders = candidates(&property, command.tour_type, &window, &busy);
    // The held slot is the booking's: its agent (or seat) first.
    if let Some(held) = presented.filter(|h| h.gives(command.tour_type, &window, now))
        && let Some(at) = holders.iter().position(|h| h == &held.holder)
    {
        let holder = holders.remove(at);
        holders.insert(0, holder);
    }
    for holder in holders {
        let mut tour = new_tour(&property, command, key, booking_id, &window, holder.clone(), now);
        tour.resman_prospect_id = known.clone();
        let (messages, mut reminders) = booking_owes(&property, &tour);
        reminders.extend(crate::domain::notify::waiting_owed(&property, &tour, now));
        let booking = NewBooking {
            consent: consent_of(command, &tour),
            lock_granules: lock_granules(&property, &holder, &window),
            messages,
            reminders,
            tour,
            fingerprint: fingerprint.to_owned(),
            hold: presented.cloned(),
            replaces: replaces.cloned(),
        };
        match deps.tours.create_booking(&property, &booking, now).await? {
            BookingWrite::Created => return Ok(Hold::Held(Box::new((property, booking.tour)))),
            // Someone took this agent (or seat) a moment ago: the next free one may still be free.
            BookingWrite::SlotTaken => continue,
            BookingWrite::KeyInUse => return Ok(Hold::Seen),
        }
    }
    Ok(Hold::Taken(Box::new(property), window))
}

/// What a request's key says about it.
enum Seen {
    /// No record stands: a new request (never seen, or its record has lapsed).
    Never,
    /// Seen before: its first answer.
    Answer(Box<Booked>),
    /// Asked before without an `Idempotency-Key` (the key is the conversation and the slot), and the tour it booked
    /// has been cancelled since: asking again is a new request, which takes the key over from that booking.
    Cancelled(BookingId),
}

/// Reads a request's key record: expired records count as absent (TTL deletes them late).
async fn seen(
    deps: &BookingDeps<'_>,
    key: &str,
    fingerprint: &str,
    implicit_key: bool,
    now: DateTime<Utc>,
) -> Result<Seen, AppError> {
    let Some(record) = deps.tours.idempotency(key).await?.filter(|r| r.is_live(now)) else {
        return Ok(Seen::Never);
    };
    if implicit_key
        && record.response.is_some()
        && let Some(earlier) = &record.booking_id
        && deps
            .tours
            .tour(earlier)
            .await?
            .is_some_and(|t| t.status == TourStatus::Cancelled)
    {
        return Ok(Seen::Cancelled(earlier.clone()));
    }
    replay_or_recover(deps, &record, fingerprint, now)
        .await
        .map(|answer| Seen::Answer(Box::new(answer)))
}

pub async fn book_tour(
    deps: &BookingDeps<'_>,
    command: &BookTourCommand,
    idempotency_header: Option<&str>,
    booking_id: BookingId,
    now: DateTime<Utc>,
) -> Result<Booked, AppError> {
    let key = command.idempotency_key(idempotency_header)?;
    let fingerprint = command.fingerprint();
    let implicit_key = idempotency_header.is_none();
    // Set once the key's earlier booking turns out cancelled: the request is booked again, taking the key over.
    let mut replaces = None;
    let (property, tour) = loop {
        match hold_slot(deps, command, &key, &fingerprint, &booking_id, replaces.as_ref(), now).await {
            Ok(Hold::Held(held)) => break *held,
            Ok(Hold::Seen) => match seen(deps, &key, &fingerprint, implicit_key, now).await? {
                Seen::Answer(answer) => return Ok(*answer),
                Seen::Cancelled(earlier) if replaces.is_none() => replaces = Some(earlier),
                // Taken over by another request a moment ago: that one answers.
                Seen::Never | Seen::Cancelled(_) => return Err(AppError::InProgress),
            },
            // A retry finds its own first booking holding the slot, and a retry whose time has since become too
            // soon is refused by the rules: either way, a request seen before gets the first answer.
            Ok(Hold::Taken(property, window)) => {
                if let Seen::Answer(answer) = seen(deps, &key, &fingerprint, implicit_key, now).await? {
                    return Ok(*answer);
                }
                // A double booking prevented: counted for the operators now, and kept for the property's figures (a
                // failure to keep it costs a figure, never the answer).
                crate::metrics::count(Metric::SlotTakenRefusals);
                if let Err(e) = deps.tours.record_slot_refusal(&property.id, &key, now).await {
                    tracing::warn!(property_id = %property.id, error = %e, "the refusal was not kept for the figures");
                }
                let alternatives = alternatives(deps.calendar, &property, command.tour_type, &window, now).await?;
                return Err(AppError::SlotTaken {
                    alternatives,
                    field: "tour_data.preferred_time",
                });
            }
            // A property unknown, or out of the caller's reach, never gets a saved answer: another company's key
            // sending the same request must not read this one's booking.
            Err(refused @ AppError::NotFound(_)) => return Err(refused),
            Err(refused @ AppError::Invalid(_)) => {
                return match seen(deps, &key, &fingerprint, implicit_key, now).await? {
                    Seen::Answer(answer) => Ok(*answer),
                    Seen::Never | Seen::Cancelled(_) => Err(refused),
                };
            }
            Err(e) => return Err(e),
        }
    };
    tracing::info!(booking_id = %tour.booking_id, property_id = %property.id, conversation_id = command.conversation_id.as_str(), "slot held");

    let (outcome, tour) = match sync_to_resman(deps.resman, &property, &tour, false, deps.attempts, deps.clock).await {
        SyncOutcome::Synced(tour) => (Outcome::Booked, tour),
        SyncOutcome::Owed(tour, error) => {
            // The booking stands: the slot stays held and the queue carries the ResMan write.
            tracing::warn!(booking_id = %tour.booking_id, error = %error, "ResMan unavailable; booking accepted as pending");
            crate::metrics::count(Metric::BookingsPending);
            (Outcome::Pending, tour)
        }
        SyncOutcome::Refused(tour, description) => {
            crate::metrics::count(Metric::BookingsFailed);
            // The chatbot hears of it in this answer, so nothing is owed to anyone.
            deps.tours.release(&property, &tour, &[], now).await?;
            tracing::info!(booking_id = %tour.booking_id, property_id = %property.id, reason = %description, "ResMan refused the booking; slot released");
            let refusal = if description.to_ascii_lowercase().contains("not available") {
                Refusal::SlotTaken {
                    alternatives: alternatives(deps.calendar, &property, command.tour_type, &tour.window(), now)
                        .await?,
                }
            } else {
                Refusal::ResManRejected { description }
            };
            deps.tours
                .finish_idempotency(&key, &SavedOutcome::Refused(refusal.clone()))
                .await?;
            return Err(refusal.into());
        }
    };
    let booked = finished(outcome, response_for(&property, &tour))?;
    crate::metrics::count(Metric::BookingsAccepted);
    // The sync state and the answer a retry gets, in one write.
    let saved = SavedOutcome::Done {
        outcome,
        body: booked.body.clone(),
    };
    deps.tours.finish_booking(&tour, &key, &saved).await?;
    // The confirmation and the staff alert go once ResMan has answered (a booking ResMan refused was released
    // above and owes none); a pending booking also queues its ResMan write. The messages and the outbox item written
    // with the booking still owe them if a queue fails; the sweepers re-queue them.
    let (messages, _) = booking_owes(&property, &tour);
    super::lifecycle::enqueue_owed(deps.queue, &tour, &messages, tour.sync_status == SyncStatus::Pending).await;
    Ok(booked)
}

/// The messages a booking owes now, and its texts that wait out quiet hours: split as of the booking's own time, so
/// the booking's write and its queueing (once ResMan answered) agree.
fn booking_owes(
    property: &Property,
    tour: &TourRecord,
) -> (
    Vec<crate::domain::notify::MessageKind>,
    Vec<crate::domain::notify::ReminderDue>,
) {
    let owed = crate::domain::notify::owed(property, None, tour, false);
    crate::domain::notify::now_or_later(property, tour, owed, tour.created_at)
}

/// One tour as the conversation context shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationTour {
    #[serde(flatten)]
    pub tour: TourHeadline,
    pub property_id: String,
    /// Staff's notes on the tour (from the API or from ResMan), `null` when none: part of the conversation's context.
    pub staff_notes: Option<String>,
    /// When the tour last changed, in the property's zone (RFC 3339).
    pub last_updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    pub conversation_id: String,
    pub tours: Vec<ConversationTour>,
}

/// The tours booked in a conversation, with their current state.
pub async fn conversation_tours(
    properties: &dyn PropertyStore,
    tours: &dyn crate::ports::TourReads,
    conversation: &crate::domain::ConversationId,
) -> Result<ConversationView, AppError> {
    let mut view = ConversationView {
        conversation_id: conversation.as_str().to_owned(),
        tours: Vec::new(),
    };
    for tour in tours.conversation_tours(conversation).await? {
        // A tour at a property out of the key's reach is not listed.
        let Some(property) = properties.property(&tour.property_id).await? else {
            continue;
        };
        view.tours.push(ConversationTour {
            tour: headline(&property, &tour),
            property_id: tour.property_id.to_string(),
            staff_notes: tour.staff_notes.clone(),
            last_updated: tour
                .history
                .last()
                .map_or(tour.created_at, |c| c.at)
                .with_timezone(&property.time_zone)
                .to_rfc3339(),
        });
    }
    Ok(view)
}

/// One entry of a tour's history as the chatbot reads it: times in the property's zone, the agent by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    pub version: u64,
    pub at: String,
    pub source: ChangeSource,
    pub status: TourStatus,
    pub datetime: String,
    pub staff_member: String,
    /// The change on the other side this one won over, when two crossed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrode: Option<OverriddenView>,
}

/// A change that lost to a crossing one, as the chatbot reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverriddenView {
    pub source: ChangeSource,
    pub status: TourStatus,
    pub datetime: String,
    pub staff_member: String,
    pub at: String,
}

/// One tour as it now stands: the booking answer's shape, where and in which conversation, its version and its
/// history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourView {
    #[serde(flatten)]
    pub tour: BookTourResponse,
    pub property_id: String,
    pub conversation_id: String,
    pub version: u64,
    pub outcome: Option<crate::domain::lifecycle::Outcome>,
    pub staff_notes: Option<String>,
    /// A status word ResMan used that we do not know, kept as written (`status` stays what it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resman_status: Option<String>,
    pub history: Vec<HistoryView>,
    /// Every message the tour owed and how it went (the read of one tour shows them; answers to a change do not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Vec<crate::domain::notify::Delivery>>,
    /// Where the prospect's number stands on texts at the property (the read of one tour shows it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_consent: Option<SmsConsentView>,
    /// When the prospect confirmed they will come by a reply to a text (the property's zone); absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prospect_confirmed_at: Option<String>,
    /// The prospect's latest text that no keyword answered, for a person or the chatbot to answer; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prospect_reply: Option<ProspectReplyView>,
}

/// A prospect's words by text, when they came (the property's zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProspectReplyView {
    pub at: String,
    pub words: String,
}

/// The prospect's consent to texts as staff read it: `granted`, `revoked`, `none` or `opted_out` (erased on request:
/// never texted again), since when (the property's zone), and the words they agreed to while it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsConsentView {
    pub state: crate::domain::consent::ConsentWord,
    pub since: Option<String>,
    pub words: Option<String>,
}

impl SmsConsentView {
    pub fn of(property: &Property, record: &crate::ports::ConsentRecord) -> Self {
        use crate::domain::consent::ConsentChange;
        let state = record.state();
        let since = state.since();
        // The words of the grant that stands (a revocation shows none).
        let words = record
            .events
            .iter()
            .filter(|e| state.may_text() && Some(e.at) == since)
            .find_map(|e| match &e.change {
                ConsentChange::Granted { words } => Some(words.clone()),
                ConsentChange::Revoked { .. } => None,
            });
        Self {
            state: state.word(),
            since: since.map(|at| at.with_timezone(&property.time_zone).to_rfc3339()),
            words,
        }
    }
}

/// A tour by our id (`tour_...`) or by ResMan's appointment id.
pub async fn find_tour(tours: &dyn crate::ports::TourReads, id: &str) -> Result<TourRecord, AppError> {
    let not_found = || AppError::NotFound(crate::domain::InvalidField::new("appointment_id", "no such tour"));
    match BookingId::parse(id.trim()) {
        Ok(ours) => tours.tour(&ours).await?,
        Err(_) => {
            let theirs = crate::domain::AppointmentId::parse(id)
                .map_err(|e| crate::domain::InvalidField::new("appointment_id", e.reason))?;
            tours.tour_by_resman_id(&theirs).await?
        }
    }
    .ok_or_else(not_found)
}

/// A tour as the chatbot reads it: times in the property's zone, agents by name, with its history (and its
/// messages' deliveries, when they were read).
pub fn view_of(
    property: &Property,
    tour: &TourRecord,
    notifications: Option<Vec<crate::domain::notify::Delivery>>,
) -> TourView {
    let zone = property.time_zone;
    let name_of = |agent: &Option<crate::domain::AgentId>| {
        agent
            .as_ref()
            .and_then(|a| property.agent(a))
            .map_or_else(|| "Self-guided".to_owned(), |a| a.name.clone())
    };
    TourView {
        tour: response_for(property, tour),
        property_id: tour.property_id.to_string(),
        conversation_id: tour.conversation_id.as_str().to_owned(),
        version: tour.version,
        outcome: tour.outcome,
        staff_notes: tour.staff_notes.clone(),
        resman_status: tour.resman_word.clone(),
        history: tour
            .history
            .iter()
            .map(|change| HistoryView {
                version: change.version,
                at: change.at.with_timezone(&zone).to_rfc3339(),
                source: change.source,
                status: change.status,
                datetime: change.start.with_timezone(&zone).to_rfc3339(),
                staff_member: name_of(&change.agent),
                overrode: change.overrode.as_ref().map(|o| OverriddenView {
                    source: o.source,
                    status: o.status,
                    datetime: o.start.with_timezone(&zone).to_rfc3339(),
                    staff_member: name_of(&o.agent),
                    at: o.at.with_timezone(&zone).to_rfc3339(),
                }),
            })
            .collect(),
        notifications,
        sms_consent: None,
        prospect_confirmed_at: tour
            .prospect_confirmed_at
            .map(|at| at.with_timezone(&zone).to_rfc3339()),
        prospect_reply: tour.prospect_reply.as_ref().map(|r| ProspectReplyView {
            at: r.at.with_timezone(&zone).to_rfc3339(),
            words: r.words.clone(),
        }),
    }
}

/// A tour by our id (`tour_...`) or by ResMan's appointment id, as it now stands, with its messages' deliveries
/// (one read for our id; ResMan's id is looked up first).
pub async fn tour_view(
    properties: &dyn PropertyStore,
    tours: &dyn crate::ports::TourReads,
    messages: &dyn crate::ports::MessageStore,
    consents: &dyn crate::ports::Consents,
    id: &str,
) -> Result<TourView, AppError> {
    let booking = match BookingId::parse(id.trim()) {
        Ok(ours) => ours,
        Err(_) => find_tour(tours, id).await?.booking_id,
    };
    let (tour, deliveries) = messages
        .tour_with_messages(&booking)
        .await?
        .ok_or_else(|| AppError::NotFound(crate::domain::InvalidField::new("appointment_id", "no such tour")))?;
    let property = super::availability::load_tours_property(properties, &tour).await?;
    let consent = match crate::domain::Phone::parse(&tour.prospect_phone) {
        Ok(phone) => consents.consent(&property.id, &phone).await?,
        // Erased, or lapsed with the personal data: no number to ask about.
        Err(_) => crate::ports::ConsentRecord::default(),
    };
    Ok(TourView {
        sms_consent: Some(SmsConsentView::of(&property, &consent)),
        ..view_of(&property, &tour, Some(deliveries))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which field a bad body is refused for (`None`: for its size).
    fn refused_field(body: &[u8]) -> Option<&'static str> {
        match parse_booking_body(body).unwrap_err() {
            AppError::TooLarge(limit) => {
                assert_eq!(limit, crate::domain::booking::MAX_BODY_BYTES);
                None
            }
            AppError::Invalid(f) => Some(f.field),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_kind_of_bad_body_is_refused_naming_its_field() {
        let big = vec![b'{'; crate::domain::booking::MAX_BODY_BYTES + 1];
        assert_eq!(refused_field(&big), None);
        assert_eq!(refused_field(b"<xml/>"), Some("body"));
        assert_eq!(refused_field(br#"{"tour_data":{}}"#), Some("conversation_id"));
        let bad_email = br#"{"conversation_id":"c","tour_data":{"prospect_name":"Ana Lopez","prospect_email":"nope"}}"#;
        assert_eq!(refused_field(bad_email), Some("tour_data.prospect_email"));
    }
}

#[cfg(test)]
mod use_case_tests {
    use super::*;
    use crate::app::fakes::{MemoryStore, MemoryTours, ScriptedResMan, Trips};
    use crate::domain::property::tests::{demo, monday_morning};
    use crate::ports::ResManError;
    use crate::ports::TourReads;

    fn command(n: usize, time: &str) -> BookTourCommand {
        command_in(&format!("c-{n}"), n, time)
    }

    /// Prospect `n`'s request in a given conversation.
    fn command_in(conversation: &str, n: usize, time: &str) -> BookTourCommand {
        let body = serde_json::json!({
            "conversation_id": conversation,
            "tour_data": {
                "prospect_name": "Ana Lopez", "prospect_email": format!("ana{n}@example.com"),
                "prospect_phone": "(512) 555-0100", "tour_type": "in_person",
                "preferred_date": "2026-12-01", "preferred_time": time, "property_id": "P-1"
            }
        });
        parse_booking_body(body.to_string().as_bytes()).unwrap()
    }

    fn deps<'a>(store: &'a MemoryStore, tours: &'a MemoryTours, resman: &'a ScriptedResMan) -> BookingDeps<'a> {
        BookingDeps {
            properties: store,
            calendar: store,
            tours,
            holds: tours,
            resman,
            queue: tours,
            attempts: Attempts {
                count: 3,
                backoff: std::time::Duration::ZERO,
            },
            clock: &chrono::Utc::now,
        }
    }

    async fn book(
        store: &MemoryStore,
        tours: &MemoryTours,
        resman: &ScriptedResMan,
        c: &BookTourCommand,
        key: Option<&str>,
    ) -> Result<Booked, AppError> {
        book_tour(
            &deps(store, tours, resman),
            c,
            key,
            BookingId::from_uuid(uuid::Uuid::new_v4()),
            monday_morning(),
        )
        .await
    }

    fn agent_of(b: &Booked) -> String {
        b.response.as_ref().and_then(|r| r.staff_member_id.clone()).unwrap()
    }

    #[tokio::test]
    async fn each_agent_takes_the_slot_once_then_it_is_taken_with_alternatives() {
        let (store, tours, resman) = (
            MemoryStore::with_property(demo()),
            MemoryTours::default(),
            ScriptedResMan::default(),
        );
        let first = book(&store, &tours, &resman, &command(1, "10:00"), None).await.unwrap();
        let second = book(&store, &tours, &resman, &command(2, "10:00"), None).await.unwrap();
        assert_eq!((first.outcome, second.outcome), (Outcome::Booked, Outcome::Booked));
        assert_ne!(
            agent_of(&first),
            agent_of(&second),
            "the second prospect gets the other agent"
        );
        match book(&store, &tours, &resman, &command(3, "10:00"), None).await {
            Err(AppError::SlotTaken { alternatives, .. }) => assert_eq!(alternatives.len(), 3),
            other => panic!("expected slot_taken, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_booking_answer_and_the_conversations_tours_are_flat_objects_as_the_brief_has_them() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let c = command(1, "10:00");
        let booked = book(&store, &tours, &ScriptedResMan::default(), &c, None)
            .await
            .unwrap();
        let keys = |json: serde_json::Value| json.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        let headline = [
            "appointment_id",
            "resman_appointment_id",
            "status",
            "sync_status",
            "confirmed_datetime",
            "staff_member",
            "tour_type",
            "duration",
        ];
        let mut wanted: Vec<String> = headline
            .iter()
            .chain(&["staff_member_id", "confirmation_details"])
            .map(|k| (*k).to_owned())
            .collect();
        wanted.sort();
        let body: serde_json::Value = serde_json::from_str(&booked.body).unwrap();
        assert_eq!(keys(body), wanted);
        let listed = conversation_tours(&store, &tours, &c.conversation_id).await.unwrap();
        let mut wanted: Vec<String> = headline
            .iter()
            .chain(&["property_id", "staff_notes", "last_updated"])
            .map(|k| (*k).to_owned())
            .collect();
        wanted.sort();
        assert_eq!(keys(serde_json::to_value(&listed.tours[0]).unwrap()), wanted);
        assert_eq!(
            listed.tours[0].tour,
            booked.response.unwrap().tour,
            "the same tour, said the same way"
        );
    }

    #[tokio::test]
    async fn consent_to_texts_is_kept_with_the_booking_and_a_consent_from_the_future_books_nothing() {
        use crate::domain::consent::{ConsentSource, ConsentState, SmsConsent};
        use crate::ports::Consents;
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let resman = ScriptedResMan::default();
        let mut c = command(1, "10:00");
        let phone = c.contact.phone.clone().unwrap();
        let future = SmsConsent {
            words: "Text me about my tour.".into(),
            agreed_at: monday_morning() + Duration::minutes(6),
        };
        c.sms_consent = Some(future.clone());
        match book(&store, &tours, &resman, &c, None).await {
            Err(AppError::Invalid(f)) => assert_eq!(f.field, "sms_consent.agreed_at"),
            other => panic!("{other:?}"),
        }
        assert!(tours.tours.lock().unwrap().is_empty(), "nothing booked");
        c.sms_consent = Some(SmsConsent {
            agreed_at: monday_morning() - Duration::minutes(2),
            ..future
        });
        let booked = book(&store, &tours, &resman, &c, None).await.unwrap();
        let record = tours.consent(&demo().id, &phone).await.unwrap();
        assert_eq!(
            record.state(),
            ConsentState::Granted {
                since: monday_morning() - Duration::minutes(2)
            }
        );
        assert!(matches!(
            &record.events[0].source,
            ConsentSource::Conversation { conversation_id, booking_id }
                if conversation_id == &c.conversation_id
                    && booking_id.as_str() == booked.response.as_ref().unwrap().tour.appointment_id
        ));
        // Staff read it on the tour: since when, in the property's zone, and the words agreed to.
        let id = &booked.response.as_ref().unwrap().tour.appointment_id;
        let view = tour_view(&store, &tours, &tours, &tours, id).await.unwrap();
        assert_eq!(
            view.sms_consent,
            Some(SmsConsentView {
                state: crate::domain::consent::ConsentWord::Granted,
                since: Some("2026-11-30T05:58:00-06:00".into()),
                words: Some("Text me about my tour.".into()),
            })
        );
        // Without consent, nothing is kept for the number.
        let mut other = command(2, "11:00");
        other.contact.phone = Some(crate::domain::Phone::parse("+15125550199").unwrap());
        let booked = book(&store, &tours, &resman, &other, None).await.unwrap();
        let none = tours
            .consent(&demo().id, other.contact.phone.as_ref().unwrap())
            .await
            .unwrap();
        assert_eq!(none.state(), ConsentState::None);
        let id = &booked.response.as_ref().unwrap().tour.appointment_id;
        let view = tour_view(&store, &tours, &tours, &tours, id).await.unwrap();
        assert_eq!(
            view.sms_consent.map(|c| (c.state, c.words)),
            Some((crate::domain::consent::ConsentWord::None, None))
        );
    }

    #[test]
    fn staff_read_a_revocation_with_its_time_and_no_words() {
        use crate::domain::consent::{ConsentChange, ConsentEvent, ConsentSource, ConsentWord};
        let event = |minutes: i64, change: ConsentChange| ConsentEvent {
            property_id: demo().id,
            phone: crate::domain::Phone::parse("+15125550100").unwrap(),
            at: monday_morning() + Duration::minutes(minutes),
            change,
            source: ConsentSource::TextReply,
        };
        let record = crate::ports::ConsentRecord {
            events: vec![
                event(0, ConsentChange::Granted { words: "ok".into() }),
                event(30, ConsentChange::Revoked { by: "STOP".into() }),
            ],
            opted_out: false,
        };
        assert_eq!(
            SmsConsentView::of(&demo(), &record),
            SmsConsentView {
                state: ConsentWord::Revoked,
                since: Some("2026-11-30T06:30:00-06:00".into()),
                words: None,
            }
        );
        let erased = crate::ports::ConsentRecord {
            opted_out: true,
            ..record
        };
        let view = SmsConsentView::of(&demo(), &erased);
        assert_eq!(
            (view.state, view.since, view.words),
            (ConsentWord::OptedOut, None, None)
        );
    }

    #[tokio::test]
    async fn an_answer_lost_after_resman_applied_the_post_never_makes_a_second_appointment() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let resman = ScriptedResMan::answering(vec![Err(ResManError::Timeout(std::time::Duration::from_secs(8)))]);
        let booked = book(&store, &tours, &resman, &command(1, "10:00"), None).await.unwrap();
        assert_eq!(booked.outcome, Outcome::Booked);
        assert_eq!(
            resman.posts(),
            1,
            "the retry found its reference instead of posting again"
        );
        assert_eq!(
            booked.response.unwrap().tour.resman_appointment_id.as_deref(),
            Some("EV-0")
        );
    }

    #[tokio::test]
    async fn with_resman_unreachable_the_booking_is_pending_and_queued() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let down = || Err(ResManError::Unreachable("connection refused".into()));
        let resman = ScriptedResMan::answering(vec![down(), down(), down()]);
        let booked = book(&store, &tours, &resman, &command(1, "10:00"), None).await.unwrap();
        assert_eq!(booked.outcome, Outcome::Pending);
        let response = booked.response.unwrap();
        assert_eq!(response.tour.sync_status, SyncStatus::Pending);
        assert_eq!(
            tours.queued.lock().unwrap().as_slice(),
            [BookingId::parse(&response.tour.appointment_id).unwrap()]
        );
    }

    #[tokio::test]
    async fn resman_saying_the_agent_is_busy_frees_our_hold_and_offers_alternatives() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let busy = ResManError::Rejected {
            description: "Agent is not available at that time".into(),
        };
        let resman = ScriptedResMan::answering(vec![Err(busy)]);
        let refused = book(&store, &tours, &resman, &command(1, "10:00"), None).await;
        assert!(matches!(refused, Err(AppError::SlotTaken { .. })), "{refused:?}");
        assert!(tours.locks.lock().unwrap().is_empty(), "the hold was released");
    }

    #[tokio::test]
    async fn a_key_reused_with_another_body_is_refused_and_a_replay_returns_the_first_answer() {
        let (store, tours, resman) = (
            MemoryStore::with_property(demo()),
            MemoryTours::default(),
            ScriptedResMan::default(),
        );
        let first = book(&store, &tours, &resman, &command(1, "10:00"), Some("k"))
            .await
            .unwrap();
        let replay = book(&store, &tours, &resman, &command(1, "10:00"), Some("k"))
            .await
            .unwrap();
        assert_eq!((first.outcome, first.body), (replay.outcome, replay.body));
        assert!(matches!(
            book(&store, &tours, &resman, &command(2, "11:00"), Some("k")).await,
            Err(AppError::KeyReused)
        ));
        assert_eq!(resman.posts(), 1);
    }

    async fn cancel(store: &MemoryStore, tours: &MemoryTours, booked: &Booked) {
        let deps = crate::app::lifecycle::UpdateDeps {
            properties: store,
            calendar: store,
            tours,
            queue: tours,
        };
        let cancel = crate::domain::update::UpdateTourCommand::from_body(br#"{"status":"cancelled"}"#).unwrap();
        let id = &booked.response.as_ref().unwrap().tour.appointment_id;
        crate::app::lifecycle::update_tour(&deps, id, &cancel, None, monday_morning())
            .await
            .unwrap();
    }

    fn id_of(b: &Booked) -> String {
        b.response.as_ref().unwrap().tour.appointment_id.clone()
    }

    /// Prospect 1's booking at 10:00 (with `key`, or without one), then cancelled through the chatbot's update.
    async fn booked_then_cancelled(key: Option<&str>) -> (MemoryStore, MemoryTours, ScriptedResMan, Booked) {
        let (store, tours, resman) = (
            MemoryStore::with_property(demo()),
            MemoryTours::default(),
            ScriptedResMan::default(),
        );
        let first = book(&store, &tours, &resman, &command(1, "10:00"), key).await.unwrap();
        cancel(&store, &tours, &first).await;
        (store, tours, resman, first)
    }

    #[tokio::test]
    async fn a_prospect_who_cancels_and_asks_for_the_same_time_again_gets_a_new_tour() {
        let (store, tours, resman, first) = booked_then_cancelled(None).await;
        let again = book(&store, &tours, &resman, &command(1, "10:00"), None).await.unwrap();
        assert_eq!(again.outcome, Outcome::Booked);
        assert_ne!(
            id_of(&again),
            id_of(&first),
            "a new tour, not the cancelled one replayed"
        );
        let new = tours
            .tour(&BookingId::parse(&id_of(&again)).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(new.status, TourStatus::Scheduled);
        let old = tours
            .tour(&BookingId::parse(&id_of(&first)).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.status, TourStatus::Cancelled, "the cancelled tour stays as it was");
        assert_eq!(resman.posts(), 2);
        // The new tour now owns the key: the chatbot's retry of this request replays it.
        let retry = book(&store, &tours, &resman, &command(1, "10:00"), None).await.unwrap();
        assert_eq!(id_of(&retry), id_of(&again));
        assert_eq!(resman.posts(), 2);
    }

    #[tokio::test]
    async fn an_explicit_idempotency_key_keeps_its_answer_after_the_tour_is_cancelled() {
        let (store, tours, resman, first) = booked_then_cancelled(Some("k-1")).await;
        let replay = book(&store, &tours, &resman, &command(1, "10:00"), Some("k-1"))
            .await
            .unwrap();
        assert_eq!((replay.outcome, replay.body), (first.outcome, first.body));
        assert_eq!(resman.posts(), 1);
    }

    #[tokio::test]
    async fn a_key_record_past_its_expiry_is_no_record_whatever_ttl_has_not_deleted_yet() {
        let (store, tours, resman, first) = booked_then_cancelled(Some("k-2")).await;
        // The record lapsed a moment ago; TTL has not come round.
        for record in tours.idempotency.lock().unwrap().values_mut() {
            record.expires_at = Some(monday_morning() - chrono::Duration::seconds(1));
        }
        let again = book(&store, &tours, &resman, &command(1, "10:00"), Some("k-2"))
            .await
            .unwrap();
        assert_ne!(id_of(&again), id_of(&first));
        assert_eq!(resman.posts(), 2);
    }

    const STORE_TRIP: std::time::Duration = std::time::Duration::from_millis(10);
    const RESMAN_TRIP: std::time::Duration = std::time::Duration::from_millis(100);

    /// Fakes whose every call takes a round trip of (paused) time: 10 ms for the store, 100 ms for ResMan.
    fn timed() -> (MemoryStore, MemoryTours, ScriptedResMan) {
        (
            MemoryStore {
                trips: Trips::with_delay(STORE_TRIP),
                ..MemoryStore::with_property(demo())
            },
            MemoryTours {
                trips: Trips::with_delay(STORE_TRIP),
                ..Default::default()
            },
            ScriptedResMan {
                trips: Trips::with_delay(RESMAN_TRIP),
                ..Default::default()
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_booking_makes_three_store_and_two_resman_round_trips_one_after_another() {
        let (store, tours, resman) = timed();
        let started = tokio::time::Instant::now();
        let booked = book(&store, &tours, &resman, &command(1, "10:00"), None).await.unwrap();
        assert_eq!(booked.outcome, Outcome::Booked);
        assert_eq!(
            started.elapsed(),
            STORE_TRIP * 3 + RESMAN_TRIP * 2,
            "reads at once; the transaction; ResMan's searches at once; the post; sync state and answer together"
        );
        assert_eq!(
            store.trips.count() + tours.trips.count(),
            5,
            "property, busy time and the conversation's tours; the transaction; the finish"
        );
        assert_eq!(resman.trips.count(), 3, "search by e-mail and by phone, then the post");
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_tour_in_a_conversation_goes_to_the_prospect_its_first_found_without_searching() {
        let (store, tours, resman) = timed();
        book(&store, &tours, &resman, &command_in("c-1", 1, "10:00"), None)
            .await
            .unwrap();
        let searches_and_posts = resman.trips.count();
        let started = tokio::time::Instant::now();
        let second = book(&store, &tours, &resman, &command_in("c-1", 1, "14:00"), None)
            .await
            .unwrap();
        assert_eq!(second.outcome, Outcome::Booked);
        assert_eq!(resman.trips.count() - searches_and_posts, 1, "the post alone");
        assert_eq!(started.elapsed(), STORE_TRIP * 3 + RESMAN_TRIP);
        let posted = resman.posted.lock().unwrap();
        assert_eq!(
            posted[1].existing.as_ref().map(|p| p.prospect_id.to_string()),
            Some("PR-0".to_owned()),
            "added to the first tour's guest card"
        );
        assert!(!posted[1].tour.first_contact);
    }

    #[tokio::test]
    async fn a_remembered_prospect_that_resman_refuses_is_searched_for_afresh() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let gone = ResManError::Rejected {
            description: "Prospect not found".into(),
        };
        let resman = ScriptedResMan::answering(vec![Ok(()), Err(gone)]);
        book(&store, &tours, &resman, &command_in("c-1", 1, "10:00"), None)
            .await
            .unwrap();
        let second = book(&store, &tours, &resman, &command_in("c-1", 1, "14:00"), None)
            .await
            .unwrap();
        assert_eq!(second.outcome, Outcome::Booked);
        assert_eq!(resman.posts(), 2, "the refused post wrote nothing; the second try did");
    }

    #[tokio::test]
    async fn a_retry_whose_slot_its_own_booking_now_fills_gets_its_first_answer() {
        let (store, tours, resman) = (
            MemoryStore::with_property(demo()),
            MemoryTours::default(),
            ScriptedResMan::default(),
        );
        let first = book(&store, &tours, &resman, &command(1, "10:00"), Some("k-1"))
            .await
            .unwrap();
        book(&store, &tours, &resman, &command(2, "10:00"), None).await.unwrap();
        // Both agents now hold 10:00, one of them for this very request.
        let retry = book(&store, &tours, &resman, &command(1, "10:00"), Some("k-1"))
            .await
            .unwrap();
        assert_eq!((retry.outcome, retry.body), (first.outcome, first.body));
        assert_eq!(resman.posts(), 2);
    }

    #[tokio::test]
    async fn a_tour_is_read_by_our_id_or_resmans_with_its_history() {
        let (store, tours, resman) = (
            MemoryStore::with_property(demo()),
            MemoryTours::default(),
            ScriptedResMan::default(),
        );
        let booked = book(&store, &tours, &resman, &command(1, "10:00"), None).await.unwrap();
        let ours = booked.response.unwrap();
        let by_ours = tour_view(&store, &tours, &tours, &tours, &ours.tour.appointment_id)
            .await
            .unwrap();
        let by_theirs = tour_view(
            &store,
            &tours,
            &tours,
            &tours,
            ours.tour.resman_appointment_id.as_deref().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(by_ours, by_theirs);
        assert_eq!(by_ours.tour, ours, "the booking answer's shape, as it now stands");
        assert_eq!((by_ours.version, by_ours.conversation_id.as_str()), (1, "c-1"));
        let booked_entry = &by_ours.history[0];
        assert_eq!(
            (booked_entry.source, booked_entry.status),
            (ChangeSource::Chatbot, TourStatus::Scheduled)
        );
        assert_eq!(booked_entry.datetime, "2026-12-01T10:00:00-06:00");
        assert_eq!(booked_entry.staff_member, ours.tour.staff_member);
        for unknown in ["tour_0123456789abcdef0123456789abcdef", "EV-404"] {
            assert!(matches!(
                tour_view(&store, &tours, &tours, &tours, unknown).await,
                Err(AppError::NotFound(_))
            ));
        }
        assert!(matches!(
            tour_view(&store, &tours, &tours, &tours, "no spaces allowed").await,
            Err(AppError::Invalid(e)) if e.field == "appointment_id"
        ));
    }

    #[tokio::test]
    async fn another_companys_key_finds_neither_the_tour_nor_the_conversation_nor_the_property() {
        use crate::app::reach::InReach;
        use crate::domain::access::{AccountRef, Accounts};
        let (store, tours, resman) = (
            MemoryStore::with_property(demo()),
            MemoryTours::default(),
            ScriptedResMan::default(),
        );
        let c = command(1, "10:00");
        let booked = book(&store, &tours, &resman, &c, None).await.unwrap();
        let ours = booked.response.unwrap();
        let riverside = Accounts::Only([AccountRef::Id(crate::domain::resman::ResManAccountId(401))].into());
        let other = InReach::new(&store, &riverside);
        let unknown = tour_view(&store, &tours, &tours, &tours, "tour_0123456789abcdef0123456789abcdef")
            .await
            .unwrap_err();
        for id in [
            ours.tour.appointment_id.as_str(),
            ours.tour.resman_appointment_id.as_deref().unwrap(),
        ] {
            let refused = tour_view(&other, &tours, &tours, &tours, id).await.unwrap_err();
            assert!(matches!(refused, AppError::NotFound(_)), "{refused:?}");
            assert_eq!(
                refused.to_string(),
                unknown.to_string(),
                "answered exactly as an unknown id"
            );
        }
        assert!(
            conversation_tours(&other, &tours, &c.conversation_id)
                .await
                .unwrap()
                .tours
                .is_empty()
        );
        let deps = BookingDeps {
            properties: &other,
            ..deps(&store, &tours, &resman)
        };
        let booking = book_tour(
            &deps,
            &command(2, "11:00"),
            None,
            BookingId::from_uuid(uuid::Uuid::new_v4()),
            monday_morning(),
        )
        .await;
        assert!(
            matches!(booking, Err(AppError::NotFound(ref f)) if f.field == "property_id"),
            "{booking:?}"
        );
        assert_eq!(resman.posts(), 1, "nothing reached the other company's ResMan");
        // Nor does the other company's key get the first booking's answer by sending its request again, word for
        // word (same conversation, same slot: the same implicit key).
        let replayed = book_tour(
            &deps,
            &c,
            None,
            BookingId::from_uuid(uuid::Uuid::new_v4()),
            monday_morning(),
        )
        .await;
        assert!(
            matches!(replayed, Err(AppError::NotFound(ref f)) if f.field == "property_id"),
            "a saved answer is never replayed out of reach: {replayed:?}"
        );
    }

    mod holds {
        use super::*;
        use crate::app::holds::{HoldDeps, HoldView, place_hold};
        use crate::domain::HoldToken;
        use crate::domain::hold::{HoldCommand, HoldMinutes, HoldsPerHour};

        fn hold_command(conversation: &str, time: &str, staff: Option<&str>) -> HoldCommand {
            let mut body = serde_json::json!({
                "conversation_id": conversation, "property_id": "P-1", "tour_type": "in_person",
                "date": "2026-12-01", "time": time,
            });
            if let Some(staff) = staff {
                body["staff_member_id"] = serde_json::json!(staff);
            }
            HoldCommand::from_body(body.to_string().as_bytes()).unwrap()
        }

        async fn hold(
            store: &MemoryStore,
            tours: &MemoryTours,
            command: &HoldCommand,
            token: &str,
            now: DateTime<Utc>,
        ) -> Result<HoldView, AppError> {
            hold_as(("chatbot", HoldsPerHour::default()), store, tours, command, token, now).await
        }

        /// A hold placed by the key named, under its bound.
        async fn hold_as(
            (key, bound): (&str, HoldsPerHour),
            store: &MemoryStore,
            tours: &MemoryTours,
            command: &HoldCommand,
            token: &str,
            now: DateTime<Utc>,
        ) -> Result<HoldView, AppError> {
            let deps = HoldDeps {
                properties: store,
                calendar: store,
                holds: tours,
                minutes: HoldMinutes::default(),
                bound,
                key,
            };
            place_hold(&deps, command, HoldToken::parse(token).unwrap(), now).await
        }

        #[tokio::test]
        async fn a_key_keeps_at_most_its_bound_of_live_holds_at_a_property_hour_and_is_told_when_to_come_back() {
            let (store, tours, resman) = (
                MemoryStore::with_property(demo()),
                MemoryTours::default(),
                ScriptedResMan::default(),
            );
            let now = monday_morning();
            let bot = ("bot", HoldsPerHour::new(2).unwrap());
            let at = |c: &str, time: &str, staff: Option<&str>| hold_command(c, time, staff);
            hold_as(bot, &store, &tours, &at("c-1", "10:00", Some("A")), "t-1", now)
                .await
                .unwrap();
            hold_as(bot, &store, &tours, &at("c-2", "10:00", Some("B")), "t-2", now)
                .await
                .unwrap();
            // A third made-up conversation of the same key, in the same hour: refused, with when a place frees.
            let third = hold_as(bot, &store, &tours, &at("c-3", "10:45", None), "t-3", now).await;
            assert!(
                matches!(
                    third,
                    Err(AppError::TooManyHolds {
                        bound: 2,
                        retry_after: 300
                    })
                ),
                "{third:?}"
            );
            // A conversation moving its own hold within the hour keeps its place: it does not count twice.
            hold_as(bot, &store, &tours, &at("c-1", "10:15", Some("A")), "t-1b", now)
                .await
                .unwrap();
            // Another key, and the same key in another hour, are not held back.
            hold_as(
                ("other", HoldsPerHour::new(2).unwrap()),
                &store,
                &tours,
                &at("c-4", "10:45", None),
                "t-4",
                now,
            )
            .await
            .unwrap();
            hold_as(bot, &store, &tours, &at("c-3", "11:00", None), "t-3", now)
                .await
                .unwrap();
            // A hold booked frees its place: a self-guided seat in the hour can be held again.
            let mut seat = at("c-5", "10:30", None);
            seat.tour_type = TourType::SelfGuided;
            assert!(matches!(
                hold_as(bot, &store, &tours, &seat, "t-5", now).await,
                Err(AppError::TooManyHolds { .. })
            ));
            let booked = book(
                &store,
                &tours,
                &resman,
                &presenting(command_in("c-2", 2, "10:00"), "t-2"),
                None,
            )
            .await
            .unwrap();
            assert_eq!(agent_of(&booked), "B");
            hold_as(bot, &store, &tours, &seat, "t-5", now).await.unwrap();
            // And a lapsed hold's place is free at its instant, with nothing removing it.
            let mut another = at("c-6", "10:30", None);
            another.tour_type = TourType::SelfGuided;
            assert!(hold_as(bot, &store, &tours, &another, "t-6", now).await.is_err());
            hold_as(bot, &store, &tours, &another, "t-6", now + Duration::minutes(5))
                .await
                .unwrap();
        }

        fn presenting(mut c: BookTourCommand, token: &str) -> BookTourCommand {
            c.hold_token = Some(HoldToken::parse(token).unwrap());
            c
        }

        #[tokio::test]
        async fn a_held_agent_is_kept_from_others_and_given_to_the_token() {
            let (store, tours, resman) = (
                MemoryStore::with_property(demo()),
                MemoryTours::default(),
                ScriptedResMan::default(),
            );
            let now = monday_morning();
            let held = hold(&store, &tours, &hold_command("c-held", "10:00", Some("A")), "t-1", now)
                .await
                .unwrap();
            assert_eq!(held.hold_token, "t-1");
            assert_eq!(held.slot.staff_member_id.as_deref(), Some("A"));
            assert_eq!(
                held.held_until,
                (now + Duration::minutes(5))
                    .with_timezone(&demo().time_zone)
                    .to_rfc3339()
            );
            // Two other prospects want 10:00: only agent B is left for them.
            let other = book(&store, &tours, &resman, &command(2, "10:00"), None).await.unwrap();
            assert_eq!(agent_of(&other), "B");
            assert!(matches!(
                book(&store, &tours, &resman, &command(3, "10:00"), None).await,
                Err(AppError::SlotTaken { .. })
            ));
            // A token of another conversation gives nothing.
            let stolen = presenting(command_in("c-thief", 4, "10:00"), "t-1");
            assert!(matches!(
                book(&store, &tours, &resman, &stolen, None).await,
                Err(AppError::SlotTaken { .. })
            ));
            // The holder presents its token and gets the held agent; the hold is then gone.
            let mine = presenting(command_in("c-held", 1, "10:00"), "t-1");
            let booked = book(&store, &tours, &resman, &mine, None).await.unwrap();
            assert_eq!((booked.outcome, agent_of(&booked).as_str()), (Outcome::Booked, "A"));
            assert!(tours.hold(&mine.conversation_id).await.unwrap().is_none());
        }

        #[tokio::test]
        async fn an_unused_hold_lapses_by_itself() {
            let (store, tours, resman) = (
                MemoryStore::with_property(demo()),
                MemoryTours::default(),
                ScriptedResMan::default(),
            );
            let now = monday_morning();
            hold(&store, &tours, &hold_command("c-a", "10:00", Some("A")), "t-a", now)
                .await
                .unwrap();
            hold(&store, &tours, &hold_command("c-b", "10:00", None), "t-b", now)
                .await
                .unwrap();
            // Both agents are held: a third conversation can neither hold nor book 10:00 ...
            assert!(matches!(
                hold(&store, &tours, &hold_command("c-c", "10:00", None), "t-c", now).await,
                Err(AppError::SlotTaken { field: "time", .. })
            ));
            // ... until the holds lapse, with nothing having removed them.
            let later = now + Duration::minutes(5);
            let deps = BookingDeps {
                properties: &store,
                calendar: &store,
                tours: &tours,
                holds: &tours,
                resman: &resman,
                queue: &tours,
                attempts: Attempts {
                    count: 1,
                    backoff: std::time::Duration::ZERO,
                },
                clock: &chrono::Utc::now,
            };
            let id = || BookingId::from_uuid(uuid::Uuid::new_v4());
            let first = book_tour(&deps, &command(3, "10:00"), None, id(), later).await.unwrap();
            let second = book_tour(&deps, &command(4, "10:00"), None, id(), later).await.unwrap();
            assert_eq!((first.outcome, second.outcome), (Outcome::Booked, Outcome::Booked));
            // The lapsed hold's token no longer gets the slot.
            let late = presenting(command_in("c-a", 1, "10:00"), "t-a");
            assert!(matches!(
                book_tour(&deps, &late, None, id(), later).await,
                Err(AppError::SlotTaken { .. })
            ));
        }

        #[tokio::test]
        async fn asking_again_answers_with_the_hold_and_a_new_time_replaces_it() {
            let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
            let now = monday_morning();
            let first = hold(&store, &tours, &hold_command("c-1", "10:00", None), "t-1", now)
                .await
                .unwrap();
            let again = hold(&store, &tours, &hold_command("c-1", "10:00", None), "t-2", now)
                .await
                .unwrap();
            assert_eq!(again, first, "a retried hold holds once");
            let moved = hold(&store, &tours, &hold_command("c-1", "11:00", None), "t-3", now)
                .await
                .unwrap();
            assert_eq!(moved.hold_token, "t-3");
            let current = tours
                .hold(&crate::domain::ConversationId::parse("c-1").unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(current.token.as_str(), "t-3");
            // The 10:00 hold is gone: both agents can be held there again by others.
            hold(&store, &tours, &hold_command("c-2", "10:00", Some("A")), "t-4", now)
                .await
                .unwrap();
            hold(&store, &tours, &hold_command("c-3", "10:00", Some("B")), "t-5", now)
                .await
                .unwrap();
        }

        #[tokio::test]
        async fn a_hold_names_what_it_cannot_hold() {
            let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
            let now = monday_morning();
            let field = |r: Result<HoldView, AppError>| match r {
                Err(AppError::Invalid(f)) => f.field,
                other => panic!("expected a refusal, got {other:?}"),
            };
            let mut self_guided = hold_command("c-1", "10:00", Some("A"));
            self_guided.tour_type = TourType::SelfGuided;
            assert_eq!(
                field(hold(&store, &tours, &self_guided, "t", now).await),
                "staff_member_id"
            );
            let stranger = hold_command("c-1", "10:00", Some("Z"));
            assert_eq!(
                field(hold(&store, &tours, &stranger, "t", now).await),
                "staff_member_id"
            );
            assert_eq!(
                field(hold(&store, &tours, &hold_command("c-1", "10:07", None), "t", now).await),
                "time"
            );
            assert_eq!(
                field(hold(&store, &tours, &hold_command("c-1", "22:00", None), "t", now).await),
                "time"
            );
            let mut far = hold_command("c-1", "10:00", None);
            far.date += Duration::days(400);
            assert_eq!(field(hold(&store, &tours, &far, "t", now).await), "date");
        }
    }
}
