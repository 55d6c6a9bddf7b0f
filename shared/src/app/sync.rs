//! Writing a booking into ResMan exactly once, although ResMan's posts are not idempotent.
//!
//! Find the prospect first (by e-mail, then phone) so a re-post never creates a second guest card; after any
//! answer that may have applied (timeout, 5xx, unreadable), look for our booking reference among the prospect's
//! events before posting again. A refusal (`Status=Error`) is final; anything else is retried.

use crate::domain::booking::{SyncStatus, TourRecord};
use crate::domain::property::Property;
use crate::domain::resman::{PostedTour, Prospect, ProspectLookup, ProspectRef, ProspectTourPost, TourEventPost};
use crate::domain::{AppointmentId, InvalidField, ProspectId};
use crate::ports::{ResManError, ResManGateway};
use std::time::Duration;

/// How hard one call tries before leaving the rest to the queue.
#[derive(Debug, Clone, Copy)]
pub struct Attempts {
    pub count: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
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
    let email = ProspectLookup::Email(contact.email.clone());
    let by_email = resman.find_prospects(&property.id, &email);
    let Some(phone) = &contact.phone else {
        return by_email.await;
    };
    let phone = ProspectLookup::Phone(phone.clone());
    let by_phone = resman.find_prospects(&property.id, &phone);
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
            status: None,
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
        match resman.post_tour(&property.id, &post(Some(existing), false)).await {
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
            &property.id,
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
                tour.last_error = None;
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
    pub attempts: Attempts,
    /// The queue's `maxReceiveCount`: on the last receive a still-failing booking is marked failed for staff.
    pub max_receives: u32,
}

/// One queued ResMan write. Every queued write may already have reached ResMan (the request that queued it saw
/// a lost answer, or an earlier receive did), so it always looks for its reference before posting.
pub async fn process_queued_sync(
    deps: &WorkerDeps<'_>,
    message_body: &str,
    receive_count: u32,
) -> Result<WorkerOutcome, crate::app::AppError> {
    use crate::domain::booking::{BookingId, TourStatus};
    #[derive(serde::Deserialize)]
    struct Message {
        booking_id: String,
    }
    let message: Message = serde_json::from_str(message_body)
        .map_err(|_| crate::domain::InvalidField::new("body", "is not a sync message"))?;
    let id = BookingId::parse(&message.booking_id)?;
    let tour = deps.tours.tour(&id).await?.ok_or_else(|| {
        crate::app::AppError::NotFound(crate::domain::InvalidField::new("booking_id", "no such booking"))
    })?;
    if tour.status == TourStatus::Released || matches!(tour.sync_status, SyncStatus::Synced | SyncStatus::Rejected) {
        return Ok(WorkerOutcome::Done);
    }
    let property = crate::app::availability::load_property(deps.properties, &tour.property_id).await?;
    match sync_to_resman(deps.resman, &property, &tour, true, deps.attempts).await {
        SyncOutcome::Synced(tour) => {
            deps.tours.save_sync(&tour).await?;
            tracing::info!(booking_id = %tour.booking_id, "queued booking reached ResMan");
            Ok(WorkerOutcome::Done)
        }
        SyncOutcome::Refused(tour, description) => {
            // ResMan will never take it: free the slot and report it, as the booking call does.
            deps.tours.release(&property, &tour).await?;
            tracing::warn!(booking_id = %tour.booking_id, reason = %description, "ResMan refused a queued booking; slot released");
            Ok(WorkerOutcome::Done)
        }
        SyncOutcome::Owed(mut tour, error) => {
            if receive_count >= deps.max_receives {
                tour.sync_status = SyncStatus::Failed;
                tracing::error!(booking_id = %tour.booking_id, error = %error, "ResMan write failed on every retry; marked failed, message goes to the dead-letter queue");
            }
            deps.tours.save_sync(&tour).await?;
            Ok(WorkerOutcome::Retry)
        }
    }
}

/// How long an owed ResMan write may sit in the outbox before it is queued again: longer than the queue's whole
/// retry schedule (five receives, about eight minutes), so only writes whose message was lost are re-queued.
pub const OUTBOX_REQUEUE_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// The outbox's consumer: re-queues ResMan writes that are owed but no longer travelling (the booking was stored
/// but its message never reached the queue, or was lost). Run on the poller's tick.
pub async fn requeue_owed_syncs(
    tours: &dyn crate::ports::TourStore,
    queue: &dyn crate::ports::SyncQueue,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, crate::app::AppError> {
    let owed = tours.claim_owed_syncs(now - OUTBOX_REQUEUE_AFTER, now).await?;
    for booking in &owed {
        queue.enqueue(booking).await?;
        tracing::warn!(booking_id = %booking, "re-queued an owed ResMan write from the outbox");
    }
    Ok(owed.len())
}

/// A queue message as the worker sees it (no AWS types).
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: String,
    pub body: String,
    pub receive_count: u32,
}

/// A message to leave on the queue, and how long it stays out of sight before the next try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub id: String,
    pub retry_in_seconds: u32,
}

/// 1, 2, 4, 8... times the base, at most 15 minutes: ResMan gets room to recover.
pub fn retry_delay(base: std::time::Duration, receive_count: u32) -> u32 {
    let factor = 2u64.saturating_pow(receive_count.saturating_sub(1).min(10));
    u32::try_from(base.as_secs().saturating_mul(factor).min(900)).unwrap_or(900)
}

/// Processes a batch message by message; one message's failure (a poison message included) never holds back the
/// others. Returns the failures, for the queue's partial batch response.
pub async fn process_batch(
    deps: &WorkerDeps<'_>,
    messages: &[QueuedMessage],
    retry_base: std::time::Duration,
) -> Vec<Failed> {
    let mut failed = Vec::new();
    for message in messages {
        let outcome = process_queued_sync(deps, &message.body, message.receive_count).await;
        let done = match outcome {
            Ok(WorkerOutcome::Done) => true,
            Ok(WorkerOutcome::Retry) => false,
            Err(e) => {
                tracing::warn!(message_id = %message.id, error = %e, "message could not be processed");
                false
            }
        };
        if !done {
            failed.push(Failed {
                id: message.id.clone(),
                retry_in_seconds: retry_delay(retry_base, message.receive_count),
            });
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::retry_delay;
    use std::time::Duration;

    #[test]
    fn retries_wait_longer_each_time_up_to_fifteen_minutes() {
        let base = Duration::from_secs(30);
        assert_eq!([1, 2, 3, 4].map(|n| retry_delay(base, n)), [30, 60, 120, 240]);
        assert_eq!(retry_delay(base, 9), 900);
    }
}
