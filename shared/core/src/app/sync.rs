//! Writing a booking into ResMan exactly once, although ResMan's posts are not idempotent.
//!
//! Find the prospect first (by e-mail, then phone) so a re-post never creates a second guest card; after any
//! answer that may have applied (timeout, 5xx, unreadable), look for our booking reference among the prospect's
//! events before posting again. A refusal (`Status=Error`) is final; anything else is retried.

use crate::domain::property::Property;
use crate::domain::record::{SyncStatus, TourRecord};
use crate::domain::resman::{PostedTour, Prospect, ProspectLookup, ProspectRef, ProspectTourPost, TourEventPost};
use crate::domain::{AppointmentId, InvalidField, ProspectId};
use crate::ports::{ResManError, ResManGateway};
use std::time::Duration;

use super::budget::TimeBudget;

/// How hard one call tries before leaving the rest to the queue.
#[derive(Debug, Clone, Copy)]
pub struct Attempts {
    pub count: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
}

impl Attempts {
    /// One attempt per receive, for a queue consumer: the queue's growing delay is the back-off.
    pub const ONCE: Self = Self {
        count: 1,
        backoff: Duration::ZERO,
    };

    /// Three attempts with short back-off between, for a caller who waits: with ResMan's timeout of 8 s each
    /// (`BOOKING_RESMAN_TIMEOUT_SECONDS`), they fit the API's 30-second budget.
    pub const WITHIN_A_REQUEST: Self = Self {
        count: 3,
        backoff: Duration::from_millis(250),
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Synced(TourRecord),
    /// ResMan refused the tour for good: the description says why.
    Refused(TourRecord, String),
    /// ResMan could not be reached or answered unreadably: try again later.
    Owed(TourRecord, ResManError),
}

fn find_reference(prospects: &[Prospect], reference: &str) -> Option<PostedTour> {
    prospects.iter().find_map(|p| {
        p.events
            .iter()
            .filter(|e| e.comments.as_deref().is_some_and(|c| c.contains(reference)))
            .find_map(|e| e.id.clone())
            .map(|appointment_id: AppointmentId| PostedTour {
                prospect: p.reference.clone(),
                appointment_id,
            })
    })
}

/// The prospect's guest cards in ResMan: searched by e-mail and by phone at the same time (one round trip, not
/// two); the e-mail's answer wins when it finds any, as it is the surer match.
async fn search_prospect(
    resman: &dyn ResManGateway,
    property: &Property,
    contact: &crate::domain::resman::ProspectContact,
) -> Result<Vec<Prospect>, ResManError> {
    let site = property.site();
    let email = ProspectLookup::Email(contact.email.clone());
    let by_email = resman.find_prospects(&site, &email);
    let Some(phone) = &contact.phone else {
        return by_email.await;
    };
    let phone = ProspectLookup::Phone(phone.clone());
    let by_phone = resman.find_prospects(&site, &phone);
    match tokio::join!(by_email, by_phone) {
        (Ok(found), _) if !found.is_empty() => Ok(found),
        (Ok(_), by_phone) => by_phone,
        (Err(e), _) => Err(e),
    }
}

async fn attempt(
    resman: &dyn ResManGateway,
    property: &Property,
    tour: &TourRecord,
    may_exist: bool,
) -> Result<PostedTour, ResManError> {
    let contact = tour.contact().map_err(|e: InvalidField| ResManError::Rejected {
        description: format!("stored contact is invalid: {e}"),
    })?;
    let post = |existing: Option<ProspectRef>, first_contact: bool| ProspectTourPost {
        existing,
        contact: contact.clone(),
        preferences: tour.unit_preferences.clone(),
        tour: TourEventPost {
            appointment_id: None,
            start: tour.start,
            agent: tour.holder.agent().cloned(),
            source: property.prospect_source.clone(),
            // A tour confirmed (or done) before its booking reached ResMan arrives with its state.
            status: crate::domain::lifecycle::ResManWord::write(tour.status)
                .filter(|s| *s != crate::domain::resman::TourEventStatus::Scheduled),
            first_contact,
            comments: tour.resman_comments(),
        },
    };
    // The conversation's earlier tour already found the prospect: no search needed, unless this write may be in
    // ResMan already (then its reference must be looked for).
    let remembered = tour
        .resman_prospect_id
        .as_deref()
        .and_then(|id| ProspectId::parse(id).ok());
    if !may_exist && let Some(prospect_id) = remembered {
        let existing = ProspectRef {
            prospect_id,
            person_id: None,
        };
        match resman.post_tour(&property.site(), &post(Some(existing), false)).await {
            // The remembered guest card may be gone (merged, removed): find the prospect afresh, once.
            Err(ResManError::Rejected { .. }) => {
                tracing::info!(booking_id = %tour.booking_id, "ResMan refused the remembered prospect; searching");
            }
            answer => return answer,
        }
    }
    let found = search_prospect(resman, property, &contact).await?;
    if may_exist && let Some(posted) = find_reference(&found, &tour.booking_id.resman_reference()) {
        tracing::info!(booking_id = %tour.booking_id, "the booking was already in ResMan");
        return Ok(posted);
    }
    resman
        .post_tour(
            &property.site(),
            &post(found.first().map(|p| p.reference.clone()), found.is_empty()),
        )
        .await
}

/// Tries to write the tour into ResMan. `may_exist` says an earlier attempt (another request, or the queue) may
/// have written it already.
pub async fn sync_to_resman(
    resman: &dyn ResManGateway,
    property: &Property,
    tour: &TourRecord,
    mut may_exist: bool,
    attempts: Attempts,
    clock: &(dyn Fn() -> chrono::DateTime<chrono::Utc> + Sync),
) -> SyncOutcome {
    let mut tour = tour.clone();
    let mut last = ResManError::Unreachable("not tried".into());
    for n in 0..attempts.count.max(1) {
        if n > 0 {
            tokio::time::sleep(attempts.backoff * 2u32.pow(n - 1)).await;
        }
        match attempt(resman, property, &tour, may_exist).await {
            Ok(posted) => {
                tour.sync_status = SyncStatus::Synced;
                tour.resman_appointment_id = Some(posted.appointment_id);
                tour.resman_prospect_id = Some(posted.prospect.prospect_id.to_string());
                tour.resman_version = tour.version;
                tour.resman_seen = Some(tour.holding());
                tour.last_error = None;
                tour.in_resman_at.get_or_insert_with(clock);
                return SyncOutcome::Synced(tour);
            }
            Err(ResManError::Rejected { description }) => {
                tour.sync_status = SyncStatus::Rejected;
                tour.last_error = Some(description.clone());
                return SyncOutcome::Refused(tour, description);
            }
            Err(e) => {
                tracing::warn!(booking_id = %tour.booking_id, attempt = n + 1, error = %e, "ResMan write did not go through");
                may_exist |= e.may_have_applied();
                last = e;
            }
        }
    }
    tour.sync_status = SyncStatus::Pending;
    tour.last_error = Some(last.to_string());
    SyncOutcome::Owed(tour, last)
}

/// What the queue worker did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerOutcome {
    /// Done (synced now or before, released, or nothing left to do): delete the message.
    Done,
    /// Try again later (the message becomes visible again; the queue's redrive moves it to the dead-letter queue
    /// after `maxReceiveCount`).
    Retry,
}

pub struct WorkerDeps<'a> {
    pub properties: &'a dyn crate::ports::PropertyStore,
    pub tours: &'a dyn crate::ports::TourStore,
    pub resman: &'a dyn ResManGateway,
    /// The chatbot's change callbacks, when `CHATBOT_CALLBACK_URL` is configured.
    pub callbacks: Option<&'a dyn crate::ports::ChatbotCallbacks>,
    /// Where a tour that had to follow ResMan's record queues what that change owes (its callback).
    pub queue: &'a dyn crate::ports::SyncQueue,
    pub attempts: Attempts,
    /// The queue's `maxReceiveCount`: on the last receive a still-failing booking is marked failed for staff.
    pub max_receives: u32,
    /// The time when a write lands (read after it, so a ResMan report from before it counts as stale).
    pub clock: &'a (dyn Fn() -> chrono::DateTime<chrono::Utc> + Sync),
}

/// Why bringing ResMan up to date did not finish.
enum Behind {
    /// ResMan refused the write for good.
    Refused(String),
    /// ResMan did not answer in a usable way: try again later.
    Owed(ResManError),
}

/// The marker of a cancellation note, looked for before a note is posted again.
fn cancel_reference(tour: &TourRecord) -> String {
    format!("[tour-ref:{}#cancelled]", tour.booking_id)
}

/// The cancellation note's words: where the appointment itself stays on ResMan's calendar, what staff must do.
fn cancel_note(property: &Property, marker: &str) -> String {
    if property.resman_cancel_word {
        format!("Tour cancelled through the DomIQ chatbot; the prospect stays active. {marker}")
    } else {
        format!(
            "Tour cancelled through the DomIQ chatbot; the prospect stays active. ResMan's API cannot cancel the \
             appointment: please mark it cancelled here to free the agent's time. {marker}"
        )
    }
}

/// Tries `write` up to `attempts` times, waiting longer between tries; a refusal is final.
async fn with_attempts<T, F, Fut>(attempts: Attempts, mut write: F) -> Result<T, ResManError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ResManError>>,
{
    let mut last = ResManError::Unreachable("not tried".into());
    for n in 0..attempts.count.max(1) {
        if n > 0 {
            tokio::time::sleep(attempts.backoff * 2u32.pow(n - 1)).await;
        }
        match write().await {
            Ok(done) => return Ok(done),
            Err(refused @ ResManError::Rejected { .. }) => return Err(refused),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Writes a tour that ResMan already has to its current version: the same `EventID` with the new `EventDate`,
/// agent and `EventReasons` (a repeat is harmless: it writes the same values); a cancellation also gets a note,
/// posted only once (its marker is looked for first).
async fn write_change(
    resman: &dyn ResManGateway,
    property: &Property,
    tour: &TourRecord,
    attempts: Attempts,
) -> Result<(), ResManError> {
    let Some((appointment, prospect)) = tour.in_resman() else {
        return Err(ResManError::Rejected {
            description: "the tour has no ResMan appointment to change".into(),
        });
    };
    let contact = tour.contact().map_err(|e: InvalidField| ResManError::Rejected {
        description: format!("stored contact is invalid: {e}"),
    })?;
    let reference = ProspectRef {
        prospect_id: prospect.clone(),
        person_id: None,
    };
    let post = ProspectTourPost {
        existing: Some(reference.clone()),
        contact,
        preferences: None,
        tour: TourEventPost {
            appointment_id: Some(appointment),
            start: tour.start,
            agent: tour.holder.agent().cloned(),
            source: property.prospect_source.clone(),
            status: crate::domain::lifecycle::ResManWord::write(tour.status),
            first_contact: false,
            comments: tour.resman_comments(),
        },
    };
    let site = property.site();
    let cancelled = tour.status == crate::domain::lifecycle::TourStatus::Cancelled;
    // The contract's cancellation is the note alone; the appointment's own cancel word only where the property
    // turned it on (unverified against real ResMan).
    if !cancelled || property.resman_cancel_word {
        with_attempts(attempts, || resman.post_tour(&site, &post)).await?;
    }
    if cancelled {
        let marker = cancel_reference(tour);
        with_attempts(attempts, || async {
            let found = resman
                .find_prospects(&property.site(), &ProspectLookup::Id(prospect.clone()))
                .await?;
            if find_reference(&found, &marker).is_some() {
                return Ok(());
            }
            let note = crate::domain::resman::NotePost {
                prospect: reference.clone(),
                at: tour.start,
                agent: tour.holder.agent().cloned(),
                comments: cancel_note(property, &marker),
            };
            resman.add_note(&property.site(), &note).await.map(|_| ())
        })
        .await?;
    }
    Ok(())
}

/// Brings ResMan to the tour's current version: creates the tour there if it never arrived (unless it was cancelled
/// first and never reached ResMan), then writes the change.
async fn bring_resman_up_to_date(
    resman: &dyn ResManGateway,
    property: &Property,
    tour: &TourRecord,
    attempts: Attempts,
    clock: &(dyn Fn() -> chrono::DateTime<chrono::Utc> + Sync),
) -> Result<TourRecord, Behind> {
    let mut tour = tour.clone();
    if tour.resman_appointment_id.is_none() {
        if tour.status.holds_time() {
            // Created with its current time, agent and state: nothing more to write.
            return match sync_to_resman(resman, property, &tour, true, attempts, clock).await {
                SyncOutcome::Synced(synced) => Ok(synced),
                SyncOutcome::Refused(_, description) => Err(Behind::Refused(description)),
                SyncOutcome::Owed(_, e) => Err(Behind::Owed(e)),
            };
        }
        // Cancelled before ResMan confirmed it: it may still have arrived on an answer that was lost.
        let contact = tour.contact().map_err(|e| Behind::Refused(e.to_string()))?;
        let found = search_prospect(resman, property, &contact)
            .await
            .map_err(Behind::Owed)?;
        match find_reference(&found, &tour.booking_id.resman_reference()) {
            Some(posted) => {
                tour.resman_appointment_id = Some(posted.appointment_id);
                tour.resman_prospect_id = Some(posted.prospect.prospect_id.to_string());
            }
            None => {
                tour.resman_version = tour.version;
                return Ok(tour);
            }
        }
    }
    match write_change(resman, property, &tour, attempts).await {
        Ok(()) => {
            tour.resman_version = tour.version;
            // A cancellation written as a note alone leaves the appointment as ResMan last showed it (one that
            // arrived on a lost answer shows what we posted: the tour, scheduled).
            tour.resman_seen = if tour.status.holds_time() || property.resman_cancel_word {
                Some(tour.holding())
            } else {
                tour.resman_seen.take().or_else(|| {
                    Some(crate::domain::reconcile::Holding {
                        status: crate::domain::lifecycle::TourStatus::Scheduled,
                        ..tour.holding()
                    })
                })
            };
            tour.sync_status = SyncStatus::Synced;
            tour.last_error = None;
            Ok(tour)
        }
        Err(ResManError::Rejected { description }) => Err(Behind::Refused(description)),
        Err(e) => Err(Behind::Owed(e)),
    }
}

/// What the chatbot's callback says of a change: the tour as it now stands, under an `event_id` that names the
/// tour's version (so a redelivery is recognisable).
pub fn callback_body(property: &Property, tour: &TourRecord) -> Result<(String, String), crate::app::AppError> {
    let event_id = format!("{}:v{}", tour.booking_id, tour.version);
    let last = tour.history.last();
    let body = serde_json::json!({
        "event_id": event_id,
        "type": "tour.changed",
        "conversation_id": tour.conversation_id.as_str(),
        "appointment_id": tour.booking_id.as_str(),
        "version": tour.version,
        "source": last.map(|c| c.source),
        "changed_at": last.map(|c| c.at.to_rfc3339()),
        "tour": crate::app::booking::view_of(property, tour, None),
    });
    Ok((event_id, body.to_string()))
}

/// What ResMan's calendar has for the tour now, as a report read at this moment (one code path with the poller's):
/// `None` when ResMan no longer has the appointment.
async fn read_report(
    deps: &WorkerDeps<'_>,
    property: &Property,
    tour: &TourRecord,
) -> Result<Option<crate::app::lifecycle::ResManReport>, ResManError> {
    let Some((appointment, prospect)) = tour.in_resman() else {
        return Ok(None);
    };
    let found = deps
        .resman
        .find_prospects(&property.site(), &ProspectLookup::Id(prospect))
        .await?;
    let Some(event) = found
        .iter()
        .flat_map(|p| &p.events)
        .find(|e| e.id.as_ref() == Some(&appointment))
    else {
        return Ok(None);
    };
    Ok(Some(crate::app::lifecycle::ResManReport {
        appointment_id: appointment,
        word: crate::domain::lifecycle::ResManWord::read(event.reason.as_deref()),
        start: event.at,
        agent: event.agent.clone(),
        as_of: (deps.clock)(),
        source: crate::domain::lifecycle::ChangeSource::ResmanPoll,
        extras: Default::default(),
    }))
}

/// Applies a report read now to the tour (see `lifecycle::apply_report`).
async fn apply_read(
    deps: &WorkerDeps<'_>,
    property: &Property,
    tour: &TourRecord,
    report: &crate::app::lifecycle::ResManReport,
) -> Result<crate::app::lifecycle::ReportEffect, crate::app::AppError> {
    let report_deps = crate::app::lifecycle::ReportDeps {
        tours: deps.tours,
        queue: deps.queue,
    };
    crate::app::lifecycle::apply_report(&report_deps, property, tour.clone(), report, (deps.clock)()).await
}

/// Puts a tour back to what ResMan's calendar has for it, as a report read now.
async fn follow_resman(
    deps: &WorkerDeps<'_>,
    property: &Property,
    tour: &TourRecord,
) -> Result<WorkerOutcome, crate::app::AppError> {
    let report = match read_report(deps, property, tour).await {
        Ok(Some(report)) => report,
        Ok(None) => {
            tracing::error!(booking_id = %tour.booking_id, "ResMan no longer has the tour's appointment; staff must look at it");
            return Ok(WorkerOutcome::Done);
        }
        Err(e) => {
            tracing::warn!(booking_id = %tour.booking_id, error = %e, "could not read ResMan's record of the tour");
            return Ok(WorkerOutcome::Retry);
        }
    };
    let effect = apply_read(deps, property, tour, &report).await?;
    tracing::info!(booking_id = %tour.booking_id, effect = ?effect, "the tour follows ResMan's record");
    Ok(WorkerOutcome::Done)
}

/// What reading ResMan before a write found.
enum BeforeWrite {
    /// No staff change since we last saw ResMan: write.
    Clear,
    /// A staff change crossed ours and was settled (or marked for staff): read the tour again.
    Settled,
}

/// Before a change is written over an appointment ResMan has, what ResMan holds now is read: a staff change made
/// since we last saw it is settled with ours by the rule first, so a write never undoes a newer staff change.
async fn read_before_write(
    deps: &WorkerDeps<'_>,
    property: &Property,
    tour: &TourRecord,
) -> Result<BeforeWrite, Behind> {
    if tour.in_resman().is_none() {
        return Ok(BeforeWrite::Clear);
    }
    let Some(report) = read_report(deps, property, tour).await.map_err(Behind::Owed)? else {
        return Ok(BeforeWrite::Clear);
    };
    match apply_read(deps, property, tour, &report).await {
        Ok(crate::app::lifecycle::ReportEffect::Applied(_) | crate::app::lifecycle::ReportEffect::Disagrees) => {
            Ok(BeforeWrite::Settled)
        }
        Ok(_) => Ok(BeforeWrite::Clear),
        Err(e) => Err(Behind::Owed(ResManError::Unreachable(format!(
            "the tour could not be settled: {e}"
        )))),
    }
}

/// The booking a sync queue message (`{"booking_id": "..."}`) names.
fn sync_message_booking(body: &str) -> Result<crate::domain::BookingId, crate::app::AppError> {
    #[derive(serde::Deserialize)]
    struct Message {
        booking_id: String,
    }
    let message: Message =
        serde_json::from_str(body).map_err(|_| crate::domain::InvalidField::new("body", "is not a sync message"))?;
    Ok(crate::domain::BookingId::parse(&message.booking_id)?)
}

/// One queued tour: whatever its current version still owes (its ResMan write, the chatbot's callback) is done,
/// each on its own, so a failing DomIQ never holds back ResMan nor the other way round. Every queued ResMan
/// write may already have reached ResMan (a lost answer), so a creation looks for its reference first.
pub async fn process_queued_sync(
    deps: &WorkerDeps<'_>,
    message_body: &str,
    receive_count: u32,
) -> Result<WorkerOutcome, crate::app::AppError> {
    use crate::domain::lifecycle::TourStatus;
    let id = sync_message_booking(message_body)?;
    let not_found =
        || crate::app::AppError::NotFound(crate::domain::InvalidField::new("booking_id", "no such booking"));
    let mut tour = deps.tours.tour(&id).await?.ok_or_else(not_found)?;
    let property = crate::app::availability::load_property(deps.properties, &tour.property_id).await?;
    // A newer version may land while this one is written: then it is done again, for the newer one.
    let mut read_first = true;
    for _ in 0..3 {
        if tour.status == TourStatus::Released || tour.sync_status == SyncStatus::Rejected {
            return Ok(WorkerOutcome::Done);
        }
        if tour.disagreement.is_some() {
            // The two sides recorded different outcomes: nothing is written over staff's until they say which holds.
            return Ok(WorkerOutcome::Done);
        }
        let mut next = tour.clone();
        let mut still_owed = None;
        if tour.owes_resman() {
            let checked = if std::mem::take(&mut read_first) {
                read_before_write(deps, &property, &tour).await
            } else {
                Ok(BeforeWrite::Clear)
            };
            let written = match checked {
                Ok(BeforeWrite::Settled) => {
                    tour = deps.tours.tour(&id).await?.ok_or_else(not_found)?;
                    continue;
                }
                Ok(BeforeWrite::Clear) => {
                    bring_resman_up_to_date(deps.resman, &property, &tour, deps.attempts, deps.clock).await
                }
                Err(behind) => Err(behind),
            };
            match written {
                Ok(written) => {
                    next = written;
                    next.resman_synced_at = Some((deps.clock)());
                    tracing::info!(booking_id = %tour.booking_id, version = tour.version, "ResMan holds the tour's current version");
                }
                Err(Behind::Refused(description)) if tour.resman_appointment_id.is_none() => {
                    // ResMan will never take the booking: free the slot and report it, as the booking call does.
                    next.sync_status = SyncStatus::Rejected;
                    next.last_error = Some(description.clone());
                    // The prospect was told the booking is pending (and may have its confirmation already): they hear
                    // it could not be booked, and staff that it is off.
                    let now = (deps.clock)();
                    let owed = crate::domain::notify::owed_on_refusal(&property, &next, now);
                    deps.tours.release(&property, &next, &owed, now).await?;
                    tracing::warn!(booking_id = %tour.booking_id, reason = %description, "ResMan refused a queued booking; slot released");
                    crate::metrics::count(crate::metrics::Metric::BookingsFailed);
                    super::lifecycle::enqueue_owed(deps.queue, &next, &owed, false).await;
                    return Ok(WorkerOutcome::Done);
                }
                Err(Behind::Refused(description)) => {
                    // A change ResMan will not take (staff gave the agent that time meanwhile): ResMan's calendar is
                    // the record, so the tour goes back to what ResMan has, and the chatbot hears of it.
                    tracing::warn!(booking_id = %tour.booking_id, reason = %description, "ResMan refused a change of the tour; it follows ResMan's record");
                    next.resman_version = next.version;
                    // What ResMan holds is read next, and taken as staff's later word on the tour.
                    next.resman_seen = None;
                    next.sync_status = SyncStatus::Synced;
                    next.last_error = Some(format!("ResMan refused the change: {description}"));
                    if !deps.tours.save_sync(&next, false).await? {
                        tour = deps.tours.tour(&id).await?.ok_or_else(not_found)?;
                        continue;
                    }
                    return follow_resman(deps, &property, &next).await;
                }
                Err(Behind::Owed(error)) => {
                    tracing::warn!(booking_id = %tour.booking_id, error = %error, "ResMan write did not go through");
                    next.sync_status = SyncStatus::Pending;
                    next.last_error = Some(error.to_string());
                    still_owed = Some(error.to_string());
                }
            }
        }
        if let Some(callbacks) = deps.callbacks
            && next.callback_version < next.version
        {
            let (event_id, body) = callback_body(&property, &next)?;
            match callbacks.send(&event_id, &body).await {
                Ok(()) => next.callback_version = next.version,
                Err(e) => {
                    tracing::warn!(booking_id = %tour.booking_id, error = %e, "the chatbot's callback did not go through");
                    still_owed.get_or_insert(e.to_string());
                }
            }
        }
        let last_try = receive_count >= deps.max_receives;
        if still_owed.is_some() && last_try {
            if next.owes_resman() {
                next.sync_status = SyncStatus::Failed;
                if next.in_resman_at.is_none() {
                    // A booking ResMan never took: it failed (a change that failed leaves a booking that did not).
                    crate::metrics::count(crate::metrics::Metric::BookingsFailed);
                }
            }
            tracing::error!(booking_id = %tour.booking_id, "side effects failed on every retry; marked failed, message goes to the dead-letter queue");
        }
        let settled = still_owed.is_none() || last_try;
        if deps.tours.save_sync(&next, settled).await? {
            return Ok(if still_owed.is_some() {
                WorkerOutcome::Retry
            } else {
                WorkerOutcome::Done
            });
        }
        tour = deps.tours.tour(&id).await?.ok_or_else(not_found)?;
    }
    Ok(WorkerOutcome::Retry)
}

/// How long an owed ResMan write may sit in the outbox before it is queued again: longer than the queue's whole
/// retry schedule (five receives, about eight minutes), so only writes whose message was lost are re-queued.
pub const OUTBOX_REQUEUE_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// The outbox's consumer: re-queues ResMan writes that are owed but no longer travelling (the booking was stored
/// but its message never reached the queue, or was lost). Run on the poller's tick.
pub async fn requeue_owed_syncs(
    tours: &dyn crate::ports::Outbox,
    queue: &dyn crate::ports::SyncQueue,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, crate::app::AppError> {
    let owed = tours.claim_owed_syncs(now - OUTBOX_REQUEUE_AFTER, now).await?;
    for booking in &owed {
        queue.enqueue(booking).await?;
        tracing::warn!(booking_id = %booking, "re-queued an owed ResMan write from the outbox");
    }
    // What the "ResMan sync stuck" alarm watches: how long the oldest owed write has waited (0: none waits).
    let oldest = tours.oldest_owed_sync().await?;
    let waited = oldest.map_or(0, |since| (now - since).num_seconds().max(0));
    crate::metrics::record(crate::metrics::Metric::OldestPendingSyncSeconds, waited as f64);
    Ok(owed.len())
}

use crate::ports::{Failed, QueuedMessage};

/// 1, 2, 4, 8... times the base, at most 15 minutes: ResMan gets room to recover.
pub fn retry_delay(base: std::time::Duration, receive_count: u32) -> u32 {
    let factor = 2u64.saturating_pow(receive_count.saturating_sub(1).min(10));
    u32::try_from(base.as_secs().saturating_mul(factor).min(900)).unwrap_or(900)
}

/// Processes a batch: one message's failure (a poison message included) never holds back the others, and one
/// ResMan account's slowness never holds back another's writes (each account is a lane of its own). Returns the
/// failures, for the queue's partial batch response.
pub async fn process_batch(
    deps: &WorkerDeps<'_>,
    messages: &[QueuedMessage],
    retry_base: std::time::Duration,
    budget: TimeBudget,
) -> Vec<Failed> {
    run_batch(
        messages,
        retry_base,
        budget,
        BatchSteps {
            last_receive: deps.max_receives,
            lane: async |message: &QueuedMessage| sync_lane(deps, &message.body).await,
            handle: async |message: &QueuedMessage| {
                process_queued_sync(deps, &message.body, message.receive_count).await
            },
            give_up: async |message: &QueuedMessage| give_up_sync(deps, &message.body).await,
        },
    )
    .await
}

/// The lane of a sync message: the ResMan account its tour's property belongs to. Writes to one account go one
/// after another (ResMan is paced per account, and one booking's messages must never post side by side); different
/// accounts' go side by side. A message whose tour or property cannot be read gets a lane of its own: it fails on
/// its own.
pub async fn sync_lane(deps: &WorkerDeps<'_>, body: &str) -> String {
    let Ok(id) = sync_message_booking(body) else {
        return format!("unreadable:{body}");
    };
    let Ok(Some(tour)) = deps.tours.tour(&id).await else {
        return format!("booking:{id}");
    };
    match deps.properties.property(&tour.property_id).await {
        Ok(Some(property)) => match property.account {
            Some(account) => format!("account:{account}"),
            None => "account:default".into(),
        },
        _ => format!("booking:{id}"),
    }
}

/// What a batch does with each message (`handle`), and with one on its last receive that cannot be done in time
/// (`give_up`: mark it failed, so it reaches the dead-letter queue marked, as the runbook promises). `lane` names
/// what a message must not run beside: messages of one lane run one after another, lanes side by side.
pub struct BatchSteps<L, H, G> {
    pub last_receive: u32,
    pub lane: L,
    pub handle: H,
    pub give_up: G,
}

/// A batch of queue messages through `handle` inside the invocation's time: the failures (and the retries asked
/// for), each with its delay, for the queue's partial batch response.
///
/// - Messages are grouped by `lane`; the lanes run side by side, so one slow lane (an account whose ResMan hangs)
///   costs the others nothing. Within a lane, messages run one after another.
/// - Within a lane, messages on their last receive go first, so time runs out on those that will come back, not on
///   those that would reach the dead-letter queue.
/// - Each message gets at most the time left less the margin; one that runs past it is dropped where it stands
///   (every step is safe to repeat: a ResMan write looks for its reference before it posts again) and reported.
/// - With less than `least` left, no new message is started: the rest are reported as failures at once, and any on
///   its last receive is marked failed first (`give_up`).
pub async fn run_batch<L, H, G>(
    messages: &[QueuedMessage],
    retry_base: std::time::Duration,
    budget: TimeBudget,
    steps: BatchSteps<L, H, G>,
) -> Vec<Failed>
where
    L: AsyncFn(&QueuedMessage) -> String,
    H: AsyncFn(&QueuedMessage) -> Result<WorkerOutcome, crate::app::AppError>,
    G: AsyncFn(&QueuedMessage) -> Result<(), crate::app::AppError>,
{
    // Finding a lane is a read or two; if even that runs out of time, every message is late anyway.
    let lane_of = async |m: &QueuedMessage| {
        tokio::time::timeout(budget.left(), (steps.lane)(m))
            .await
            .unwrap_or_default()
    };
    let names = futures::future::join_all(messages.iter().map(lane_of)).await;
    let mut lanes: Vec<(String, Vec<&QueuedMessage>)> = Vec::new();
    for (message, name) in messages.iter().zip(names) {
        match lanes.iter_mut().find(|(n, _)| *n == name) {
            Some((_, lane)) => lane.push(message),
            None => lanes.push((name, vec![message])),
        }
    }
    let runs = lanes
        .into_iter()
        .map(|(_, lane)| run_lane(lane, retry_base, &budget, &steps));
    futures::future::join_all(runs).await.into_iter().flatten().collect()
}

/// One lane of a batch, message after message (see `run_batch`).
async fn run_lane<L, H, G>(
    mut lane: Vec<&QueuedMessage>,
    retry_base: std::time::Duration,
    budget: &TimeBudget,
    steps: &BatchSteps<L, H, G>,
) -> Vec<Failed>
where
    H: AsyncFn(&QueuedMessage) -> Result<WorkerOutcome, crate::app::AppError>,
    G: AsyncFn(&QueuedMessage) -> Result<(), crate::app::AppError>,
{
    let is_last = |m: &QueuedMessage| m.receive_count >= steps.last_receive;
    lane.sort_by_key(|m| !is_last(m)); // stable: last receives first, otherwise in the queue's order
    let mut failed = Vec::new();
    for message in lane {
        let left = budget.left();
        let done = if left < budget.least {
            tracing::warn!(message_id = %message.id, "too little time left in this invocation; the message goes back to the queue");
            false
        } else {
            match tokio::time::timeout(left, (steps.handle)(message)).await {
                Ok(Ok(WorkerOutcome::Done)) => true,
                Ok(Ok(WorkerOutcome::Retry)) => false,
                Ok(Err(e)) => {
                    tracing::warn!(message_id = %message.id, error = %e, "message could not be processed");
                    false
                }
                Err(_) => {
                    tracing::warn!(message_id = %message.id, "message ran out of the invocation's time; it goes back to the queue");
                    if is_last(message) {
                        give_up(&steps.give_up, message, budget).await;
                    }
                    false
                }
            }
        };
        if !done {
            if left < budget.least && is_last(message) {
                give_up(&steps.give_up, message, budget).await;
            }
            failed.push(Failed {
                id: message.id.clone(),
                retry_in_seconds: retry_delay(retry_base, message.receive_count),
            });
        }
    }
    failed
}

/// Marks a message on its last receive failed, in the margin the budget kept for it.
async fn give_up(
    give_up: &impl AsyncFn(&QueuedMessage) -> Result<(), crate::app::AppError>,
    message: &QueuedMessage,
    budget: &TimeBudget,
) {
    let room = budget.deadline.saturating_duration_since(tokio::time::Instant::now());
    match tokio::time::timeout(room, give_up(message)).await {
        Ok(Ok(())) => {
            tracing::error!(message_id = %message.id, "out of time on its last receive; marked failed, message goes to the dead-letter queue")
        }
        Ok(Err(e)) => {
            tracing::error!(message_id = %message.id, error = %e, "could not mark a message failed on its last receive")
        }
        Err(_) => {
            tracing::error!(message_id = %message.id, "no time left to mark a message failed on its last receive")
        }
    }
}

/// A queued tour whose last try could not run: what it still owes ResMan is marked failed, for staff.
pub async fn give_up_sync(deps: &WorkerDeps<'_>, message_body: &str) -> Result<(), crate::app::AppError> {
    let id = sync_message_booking(message_body)?;
    for _ in 0..3 {
        let Some(tour) = deps.tours.tour(&id).await? else {
            return Ok(());
        };
        if !tour.owes_resman() {
            return Ok(());
        }
        let mut failed = tour.clone();
        failed.sync_status = SyncStatus::Failed;
        failed.last_error = Some("ResMan could not be written in time on the last try".into());
        if deps.tours.save_sync(&failed, true).await? {
            if failed.in_resman_at.is_none() {
                crate::metrics::count(crate::metrics::Metric::BookingsFailed);
            }
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BatchSteps, QueuedMessage, TimeBudget, WorkerOutcome, retry_delay, run_batch};
    use std::sync::Mutex;
    use std::time::Duration;

    /// A message whose id is its body: "lane:rest" runs in `lane`, anything else in the one unnamed lane.
    fn message(id: &str, receive_count: u32) -> QueuedMessage {
        QueuedMessage {
            id: id.into(),
            body: id.into(),
            receive_count,
        }
    }

    fn budget(seconds: u64) -> TimeBudget {
        TimeBudget {
            deadline: tokio::time::Instant::now() + Duration::from_secs(seconds),
            margin: Duration::from_secs(2),
            least: Duration::from_secs(2),
        }
    }

    /// Runs a batch where each message's body says how long its work takes ("slow" 100 s, anything else 5 s) and
    /// its lane, and returns what was started, what was given up and what failed.
    async fn run(messages: &[QueuedMessage], seconds: u64) -> (Vec<String>, Vec<String>, Vec<String>) {
        let started = Mutex::new(Vec::new());
        let given_up = Mutex::new(Vec::new());
        let steps = BatchSteps {
            last_receive: 5,
            lane: async |m: &QueuedMessage| {
                m.body
                    .split_once(':')
                    .map(|(lane, _)| lane.to_owned())
                    .unwrap_or_default()
            },
            handle: async |m: &QueuedMessage| {
                started.lock().unwrap().push(m.id.clone());
                let work = if m.body.contains("slow") { 100 } else { 5 };
                tokio::time::sleep(Duration::from_secs(work)).await;
                Ok(WorkerOutcome::Done)
            },
            give_up: async |m: &QueuedMessage| {
                given_up.lock().unwrap().push(m.id.clone());
                Ok(())
            },
        };
        let failed = run_batch(messages, Duration::from_secs(30), budget(seconds), steps).await;
        let failed = failed.into_iter().map(|f| f.id).collect();
        (started.into_inner().unwrap(), given_up.into_inner().unwrap(), failed)
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_ends_inside_its_time_and_reports_what_it_could_not_do() {
        let started_at = tokio::time::Instant::now();
        let batch = [message("a", 1), message("slow", 1), message("b", 1), message("c", 5)];
        let (started, given_up, failed) = run(&batch, 30).await;
        // The last receive goes first; the slow one is cut when only the margin is left (at 28 s), and then too
        // little is left to start another.
        assert_eq!(started, ["c", "a", "slow"]);
        assert_eq!(failed, ["slow", "b"]);
        assert!(given_up.is_empty(), "nothing on its last receive was left undone");
        assert!(
            started_at.elapsed() <= Duration::from_secs(28),
            "{:?}",
            started_at.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_lane_that_hangs_does_not_hold_back_another() {
        let started_at = tokio::time::Instant::now();
        let batch = [
            message("hung:slow", 1),
            message("hung:next", 1),
            message("fine:1", 1),
            message("fine:2", 1),
            message("fine:3", 1),
            message("fine:4", 2),
            message("fine:5", 5),
        ];
        let (started, given_up, failed) = run(&batch, 30).await;
        // The fine lane does its five messages (25 s) beside the hung one, its last receive first; the hung lane's
        // first message is cut when only the margin is left, and its second is never started.
        let fine: Vec<&String> = started.iter().filter(|s| s.starts_with("fine")).collect();
        assert_eq!(fine, ["fine:5", "fine:1", "fine:2", "fine:3", "fine:4"]);
        assert!(!started.contains(&"hung:next".to_owned()));
        assert_eq!(failed, ["hung:slow", "hung:next"]);
        assert!(given_up.is_empty());
        assert!(
            started_at.elapsed() <= Duration::from_secs(28),
            "{:?}",
            started_at.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_on_its_last_receive_that_cannot_be_done_in_time_is_marked_failed() {
        let batch = [message("slow-last", 5), message("late-last", 5), message("other", 2)];
        let (started, given_up, failed) = run(&batch, 30).await;
        assert_eq!(started, ["slow-last"]);
        assert_eq!(given_up, ["slow-last", "late-last"]);
        assert_eq!(failed, ["slow-last", "late-last", "other"]);
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_fifteen_minutes() {
        let base = Duration::from_secs(30);
        assert_eq!([1, 2, 3, 4].map(|n| retry_delay(base, n)), [30, 60, 120, 240]);
        assert_eq!(retry_delay(base, 9), 900);
    }
}
