//! A booked tour changes: the chatbot confirms, moves, cancels or records it (`PUT /api/resman/tours/{id}`), or
//! ResMan reports what staff did (the webhook and the poller, through [`apply_report`]). Both go through
//! [`crate::domain::update::edited`] and one conditional transaction per change; what ResMan and the chatbot are owed
//! afterwards travels through the outbox and the sync worker, so no answer waits on either.

use super::AppError;
use super::availability::{busy_around_date, load_property};
use super::booking::{alternatives, candidates, find_tour, view_of};
use crate::domain::booking::{Holder, TourRecord, slot_at};
use crate::domain::lifecycle::{Change, ChangeSource, ResManWord, decide};
use crate::domain::notify::{MessageKind, MessageRef, ReminderDue, owed, reminders_for, reminders_owed};
use crate::domain::property::Property;
use crate::domain::slots::{self, Busy};
use crate::domain::update::{Edit, UpdateTourCommand, edited};
use crate::domain::{AgentId, AppointmentId, UtcWindow};
use crate::ports::{CalendarStore, ChangeExtras, ChangeWrite, Locks, PropertyStore, SavedAnswer, SyncQueue, TourStore};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub struct UpdateDeps<'a> {
    pub properties: &'a dyn PropertyStore,
    pub calendar: &'a dyn CalendarStore,
    pub tours: &'a dyn TourStore,
    pub queue: &'a dyn SyncQueue,
}

/// A finished update call: status and body (a retry with the same key gets them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub status: u16,
    pub body: String,
}

/// How often a change is decided again when another change of the same tour landed first.
const STALE_RETRIES: usize = 4;

fn replay(record: &crate::ports::IdempotencyRecord, fingerprint: &str) -> Result<Updated, AppError> {
    if record.fingerprint != fingerprint {
        return Err(AppError::KeyReused);
    }
    record
        .response
        .as_ref()
        .map(|(status, body)| Updated {
            status: *status,
            body: body.clone(),
        })
        .ok_or(AppError::InProgress)
}

/// Busy time without the tour's own: a tour may move to a time that overlaps where it is now.
fn without_own(mut busy: Vec<Busy>, tour: &TourRecord) -> Vec<Busy> {
    if tour.status.holds_time()
        && let Some(own) = busy
            .iter()
            .position(|b| b.window == tour.window() && b.agent.as_ref() == tour.holder.agent())
    {
        busy.remove(own);
    }
    busy
}

/// Who can give the tour at `window`, given the busy time around it: its own agent first (a prospect keeps the
/// person they were told of), then the fairest other.
fn holders_at(property: &Property, tour: &TourRecord, window: &UtcWindow, busy: Vec<Busy>) -> Vec<Holder> {
    let busy = without_own(busy, tour);
    let mut holders = candidates(property, tour.tour_type, window, &busy);
    if let Some(own) = holders.iter().position(|h| *h == tour.holder) {
        let own = holders.remove(own);
        holders.insert(0, own);
    }
    holders
}

/// Busy time around a move's new date, read without the property's time zone (so at the same time as the
/// property): the instant's UTC date, whose wide window covers the local date in any zone.
async fn busy_for_move(
    calendar: &dyn CalendarStore,
    tour: &TourRecord,
    reschedule: Option<&crate::domain::update::RequestedTime>,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Busy>>, AppError> {
    use crate::domain::update::RequestedTime;
    let Some(at) = reschedule else {
        return Ok(None);
    };
    let date = match at {
        RequestedTime::At(instant) => instant.date_naive(),
        RequestedTime::Local(local) => local.date(),
    };
    Ok(Some(busy_around_date(calendar, &tour.property_id, date, now).await?))
}

fn refused(field: &'static str) -> impl Fn(crate::domain::lifecycle::IllegalChange) -> AppError {
    move |change| AppError::Illegal { change, field }
}

/// The chatbot's change of a tour, by our id or ResMan's.
pub async fn update_tour(
    deps: &UpdateDeps<'_>,
    id: &str,
    command: &UpdateTourCommand,
    idempotency_header: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Updated, AppError> {
    change_tour_if(
        deps,
        id,
        command,
        idempotency_header,
        ChangeSource::Chatbot,
        &|_| Ok(()),
        now,
    )
    .await
}

/// What must hold of the tour as read, each time it is read (a change retried after another landed reads it
/// again): a self-service link that another change through a link used meanwhile is refused here.
pub type Guard<'g> = dyn Fn(&TourRecord) -> Result<(), AppError> + Sync + 'g;

/// A change of a tour by whoever `source` names (the chatbot, or the prospect through a link in their email): the
/// same rules, the same slot race, the same side effects; refused when `guard` refuses the tour as read.
pub async fn change_tour_if(
    deps: &UpdateDeps<'_>,
    id: &str,
    command: &UpdateTourCommand,
    idempotency_header: Option<&str>,
    source: ChangeSource,
    guard: &Guard<'_>,
    now: DateTime<Utc>,
) -> Result<Updated, AppError> {
    let key = idempotency_header
        .map(crate::domain::booking::idempotency_key_of)
        .transpose()?;
    let fingerprint = hex::encode(Sha256::digest(format!("{}\u{1f}{}", id.trim(), command.fingerprint)));
    let seen = async {
        match &key {
            Some(key) => deps.tours.idempotency(key).await,
            None => Ok(None),
        }
    };
    let (seen, tour) = tokio::join!(seen, find_tour(deps.tours, id));
    if let Some(record) = seen? {
        return replay(&record, &fingerprint);
    }
    let mut tour = tour?;
    // The property and, for a move, the busy time around the new date: read at the same time.
    let (property, busy) = tokio::join!(
        load_property(deps.properties, &tour.property_id),
        busy_for_move(deps.calendar, &tour, command.reschedule.as_ref(), now)
    );
    let (property, mut busy) = (property?, busy?);
    let field = if command.reschedule.is_some() {
        "rescheduled_datetime"
    } else {
        "status"
    };
    for _ in 0..STALE_RETRIES {
        guard(&tour)?;
        let mut edit = Edit {
            change: command.status.clone(),
            staff_notes: command.staff_notes.clone(),
            outcome: command.outcome,
            ..Default::default()
        };
        // A move is checked against the property's rules and the tour's state before any busy time is read.
        let holders = match &command.reschedule {
            Some(at) => {
                // Into the past is a change the tour's life does not allow (409), before it is a bad time (400).
                let local = at.local(property.time_zone);
                if let Some(start) = crate::domain::slots::resolve_local(property.time_zone, local)
                    && start <= now
                {
                    let to = UtcWindow::starting_at(start, tour.end - tour.start)?;
                    decide(tour.status, &tour.window(), &Change::Move { to }, now).map_err(refused(field))?;
                }
                let window = slot_at(
                    &property,
                    tour.tour_type,
                    local,
                    now,
                    ("rescheduled_datetime", "rescheduled_datetime"),
                )?;
                edit.moved_to = Some((window, tour.holder.clone()));
                edited(&tour, &edit, source, now, Some(now)).map_err(refused(field))?;
                let busy = match busy.take() {
                    Some(read) => read,
                    // Decided again after another change: the busy time may have moved too.
                    None => {
                        busy_around_date(
                            deps.calendar,
                            &property.id,
                            slots::local_date(&property, window.start()),
                            now,
                        )
                        .await?
                    }
                };
                let holders = holders_at(&property, &tour, &window, busy);
                if holders.is_empty() {
                    return Err(AppError::SlotTaken {
                        alternatives: alternatives(deps.calendar, &property, tour.tour_type, &window, now).await?,
                        field,
                    });
                }
                holders.into_iter().map(|h| Some((window, h))).collect()
            }
            None => vec![None],
        };
        let mut stale = false;
        for moved_to in holders {
            edit.moved_to = moved_to;
            let Some(after) = edited(&tour, &edit, source, now, Some(now)).map_err(refused(field))? else {
                // Already so: nothing to write, and the answer is the tour as it stands.
                return answer(&property, &tour, 200);
            };
            let after = owing(after);
            let body = serde_json::to_string(&view_of(&property, &after, None))
                .map_err(|e| AppError::Internal(format!("view: {e}")))?;
            let saved = key.as_ref().map(|key| SavedAnswer {
                key: key.clone(),
                fingerprint: fingerprint.clone(),
                status: 200,
                body: body.clone(),
            });
            let messages = owed(&property, Some(&tour), &after, false);
            let reminders = reminder_changes(&property, &tour, &after, now);
            let extras = ChangeExtras {
                answer: saved.as_ref(),
                messages: &messages,
                reminders: reminders.as_ref().map(|(drop, set)| (drop.as_slice(), set.as_slice())),
            };
            match deps
                .tours
                .save_change(&property, &tour, &after, Locks::Take, extras, now)
                .await?
            {
                ChangeWrite::Saved => {
                    tracing::info!(booking_id = %after.booking_id, version = after.version, status = after.status.as_str(), source = ?source, "tour changed");
                    enqueue(deps.queue, &after, &messages).await;
                    return Ok(Updated { status: 200, body });
                }
                ChangeWrite::SlotTaken => continue,
                ChangeWrite::KeyInUse => {
                    let record = deps.tours.idempotency(key.as_deref().unwrap_or_default()).await?;
                    return record.map_or(Err(AppError::InProgress), |r| replay(&r, &fingerprint));
                }
                ChangeWrite::Stale => {
                    stale = true;
                    break;
                }
            }
        }
        if !stale {
            // Every agent who could take the new time was taken between our read and our write.
            let window = edit.moved_to.map(|(w, _)| w).unwrap_or_else(|| tour.window());
            return Err(AppError::SlotTaken {
                alternatives: alternatives(deps.calendar, &property, tour.tour_type, &window, now).await?,
                field,
            });
        }
        tour = find_tour(deps.tours, tour.booking_id.as_str()).await?;
    }
    Err(AppError::InProgress)
}

fn answer(property: &Property, tour: &TourRecord, status: u16) -> Result<Updated, AppError> {
    let body =
        serde_json::to_string(&view_of(property, tour, None)).map_err(|e| AppError::Internal(format!("view: {e}")))?;
    Ok(Updated { status, body })
}

/// A version our side made: ResMan is owed it.
fn owing(mut tour: TourRecord) -> TourRecord {
    if tour.owes_resman() {
        tour.sync_status = crate::domain::booking::SyncStatus::Pending;
    }
    tour
}

/// The reminders a change drops and sets, when it changed the tour's time or whether the tour still happens.
fn reminder_changes(
    property: &Property,
    before: &TourRecord,
    after: &TourRecord,
    now: DateTime<Utc>,
) -> Option<(Vec<ReminderDue>, Vec<ReminderDue>)> {
    let changed = before.start != after.start || before.status.is_open() != after.status.is_open();
    changed.then(|| {
        (
            reminders_for(before.start, &property.reminder_hours),
            reminders_owed(after, &property.reminder_hours, now),
        )
    })
}

/// Queues the change's side effects and messages, at the same time; when a queue fails, the outbox item and the
/// messages written with the change still owe them, and the sweepers re-queue them.
pub(crate) async fn enqueue(queue: &dyn SyncQueue, tour: &TourRecord, messages: &[MessageKind]) {
    enqueue_owed(queue, tour, messages, true).await;
}

/// As [`enqueue`]; `side_effects` says whether the tour's ResMan write and callback are owed too.
pub(crate) async fn enqueue_owed(
    queue: &dyn SyncQueue,
    tour: &TourRecord,
    messages: &[MessageKind],
    side_effects: bool,
) {
    let refs: Vec<MessageRef> = messages
        .iter()
        .map(|kind| MessageRef {
            booking_id: tour.booking_id.clone(),
            kind: *kind,
            version: tour.version,
        })
        .collect();
    let (side_effects, sent) = tokio::join!(
        async {
            if side_effects {
                queue.enqueue(&tour.booking_id).await
            } else {
                Ok(())
            }
        },
        async {
            if refs.is_empty() {
                Ok(())
            } else {
                queue.enqueue_messages(&refs).await
            }
        }
    );
    if let Err(e) = side_effects {
        tracing::error!(booking_id = %tour.booking_id, error = %e, "could not queue the change's side effects");
    }
    if let Err(e) = sent {
        tracing::error!(booking_id = %tour.booking_id, error = %e, "could not queue the change's messages");
    }
}

/// One appointment as ResMan describes it at a moment, from the webhook or the poller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResManReport {
    pub appointment_id: AppointmentId,
    pub word: ResManWord,
    /// The appointment's start, when the report says it.
    pub start: Option<DateTime<Utc>>,
    /// The appointment's agent, when the report names one we know.
    pub agent: Option<AgentId>,
    /// The moment the report describes: the notice's timestamp, or when the poller read.
    pub as_of: DateTime<Utc>,
    pub source: ChangeSource,
}

/// What a report did to one of our tours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportEffect {
    /// The tour took the change, as this version.
    Applied(u64),
    /// The tour already stands as reported.
    Unchanged,
    /// The report describes a moment before the tour's last change, or ResMan is still owed our newer version
    /// (which will overwrite what staff see): left alone.
    Stale,
    /// A change the tour's state does not allow (confirming a completed tour): logged, left alone.
    Refused(String),
}

pub struct ReportDeps<'a> {
    pub tours: &'a dyn TourStore,
    pub queue: &'a dyn SyncQueue,
}

/// The edit a report asks of a tour: a move when its time or agent differs, a status change for its word.
fn edit_of(tour: &TourRecord, report: &ResManReport) -> Result<Edit, AppError> {
    let mut edit = Edit::default();
    let start = report.start.unwrap_or(tour.start);
    let holder = match (&tour.holder, &report.agent) {
        (Holder::Agent(_), Some(agent)) => Holder::Agent(agent.clone()),
        (own, _) => own.clone(),
    };
    if start != tour.start || holder != tour.holder {
        edit.moved_to = Some((UtcWindow::starting_at(start, tour.end - tour.start)?, holder));
    }
    match &report.word {
        crate::domain::lifecycle::ResManWord::Known(status) => edit.change = Change::asking_for(*status),
        crate::domain::lifecycle::ResManWord::Unknown(word) => {
            tracing::warn!(booking_id = %tour.booking_id, word = %word, "ResMan used a status word we do not know; kept as written");
            edit.unknown_word = Some(word.clone());
        }
    }
    Ok(edit)
}

/// Applies a report from ResMan to the tour it is about. The same path for the webhook and the poller: a report is
/// applied at most once (an older one, or one already applied, changes nothing), and our own writes still owed to
/// ResMan win over what ResMan shows until they land.
pub async fn apply_report(
    deps: &ReportDeps<'_>,
    property: &Property,
    tour: TourRecord,
    report: &ResManReport,
    now: DateTime<Utc>,
) -> Result<ReportEffect, AppError> {
    let mut tour = tour;
    for _ in 0..STALE_RETRIES {
        if tour.owes_resman() || crate::domain::calendar::is_older(report.as_of, tour.settled_at()) {
            return Ok(ReportEffect::Stale);
        }
        let edit = edit_of(&tour, report)?;
        let after = match edited(&tour, &edit, report.source, report.as_of, None) {
            Ok(Some(after)) => after,
            Ok(None) => return Ok(ReportEffect::Unchanged),
            Err(illegal) => {
                tracing::warn!(booking_id = %tour.booking_id, refused = %illegal, "a change reported by ResMan does not fit the tour; left alone");
                return Ok(ReportEffect::Refused(illegal.to_string()));
            }
        };
        // ResMan already holds what it reported.
        let after = TourRecord {
            resman_version: after.version,
            ..after
        };
        let messages = owed(property, Some(&tour), &after, true);
        let reminders = reminder_changes(property, &tour, &after, now);
        let extras = ChangeExtras {
            answer: None,
            messages: &messages,
            reminders: reminders.as_ref().map(|(drop, set)| (drop.as_slice(), set.as_slice())),
        };
        match deps
            .tours
            .save_change(property, &tour, &after, Locks::Follow, extras, now)
            .await?
        {
            ChangeWrite::Saved => {
                tracing::info!(booking_id = %after.booking_id, version = after.version, status = after.status.as_str(), source = ?report.source, "tour changed in ResMan");
                enqueue(deps.queue, &after, &messages).await;
                return Ok(ReportEffect::Applied(after.version));
            }
            ChangeWrite::Stale | ChangeWrite::SlotTaken | ChangeWrite::KeyInUse => {
                tour = find_tour(deps.tours, tour.booking_id.as_str()).await?;
            }
        }
    }
    Ok(ReportEffect::Stale)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::app::fakes::{MemoryStore, MemoryTours};
    use crate::domain::booking::{BookingId, ConversationId, SyncStatus, TourStatus, lock_granules};
    use crate::domain::lifecycle::TourStatus as S;
    use crate::domain::property::tests::{demo, monday_morning};
    use chrono::{Duration, TimeZone};

    pub(crate) fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        // 2026-12-01 in Chicago (UTC-6).
        Utc.with_ymd_and_hms(2026, 12, 1, hour + 6, minute, 0).unwrap()
    }

    /// A synced tour of agent `agent` at local `hour`, its locks held.
    pub(crate) fn booked(tours: &MemoryTours, n: u128, agent: &str, hour: u32) -> TourRecord {
        let property = demo();
        let window = UtcWindow::starting_at(at(hour, 0), Duration::minutes(45)).unwrap();
        let holder = Holder::Agent(AgentId::parse(agent).unwrap());
        let tour = TourRecord {
            booking_id: BookingId::from_uuid(uuid::Uuid::from_u128(n)),
            conversation_id: ConversationId::parse("c-1").unwrap(),
            property_id: property.id.clone(),
            tour_type: crate::domain::TourType::InPerson,
            holder: holder.clone(),
            start: window.start(),
            end: window.end(),
            status: S::Scheduled,
            sync_status: SyncStatus::Synced,
            resman_appointment_id: Some(AppointmentId::parse(&format!("EV-{n}")).unwrap()),
            resman_prospect_id: Some("PR-1".into()),
            prospect_name: "Ana Lopez".into(),
            prospect_email: "ana@example.com".into(),
            prospect_phone: "+15125550100".into(),
            unit_preferences: None,
            special_requests: None,
            idempotency_key: format!("k-{n}"),
            created_at: monday_morning(),
            last_error: None,
            version: 1,
            history: Vec::new(),
            resman_version: 1,
            resman_synced_at: Some(monday_morning()),
            callback_version: 1,
            staff_notes: None,
            outcome: None,
            resman_word: None,
            in_resman_at: None,
            prospect_stage: None,
        };
        let mut locks = tours.locks.lock().unwrap();
        for g in lock_granules(&property, &holder, &window) {
            locks.insert((holder.lock_name(), g), tour.booking_id.clone());
        }
        tours
            .tours
            .lock()
            .unwrap()
            .insert(tour.booking_id.clone(), tour.clone());
        tour
    }

    async fn update(
        store: &MemoryStore,
        tours: &MemoryTours,
        id: &str,
        body: &str,
        key: Option<&str>,
    ) -> Result<serde_json::Value, AppError> {
        let deps = UpdateDeps {
            properties: store,
            calendar: store,
            tours,
            queue: tours,
        };
        let command = UpdateTourCommand::from_body(body.as_bytes())?;
        let updated = update_tour(&deps, id, &command, key, monday_morning()).await?;
        assert_eq!(updated.status, 200);
        Ok(serde_json::from_str(&updated.body).unwrap())
    }

    #[tokio::test]
    async fn confirming_raises_the_version_owes_resman_and_queues_it() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        let view = confirm(&store, &tours, &tour.booking_id).await.unwrap();
        assert_eq!(
            (view["status"].as_str(), view["version"].as_u64()),
            (Some("confirmed"), Some(2))
        );
        assert_eq!(view["sync_status"], "pending", "ResMan is owed the confirmation");
        assert_eq!(view["history"][0]["source"], "chatbot");
        assert_eq!(
            tours.queued.lock().unwrap().as_slice(),
            std::slice::from_ref(&tour.booking_id)
        );
        // By ResMan's id too, and asked again: nothing more to write.
        let again = update(&store, &tours, "EV-1", r#"{"status":"confirmed"}"#, None)
            .await
            .unwrap();
        assert_eq!(again["version"], 2);
        assert_eq!(tours.queued.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_illegal_change_is_a_conflict_naming_the_current_status() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        let id = tour.booking_id.as_str();
        update(&store, &tours, id, r#"{"status":"cancelled"}"#, None)
            .await
            .unwrap();
        let err = update(&store, &tours, id, r#"{"status":"completed"}"#, None)
            .await
            .unwrap_err();
        let crate::app::ErrorBody(status, body, _) = crate::app::ErrorBody::of(&err);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (status, body["error"]["current_status"].as_str()),
            (409, Some("cancelled"))
        );
        assert!(body["error"]["message"].as_str().unwrap().contains("cancelled"));
    }

    #[tokio::test]
    async fn cancelling_frees_the_slot_for_the_next_prospect() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        update(
            &store,
            &tours,
            tour.booking_id.as_str(),
            r#"{"status":"cancelled"}"#,
            None,
        )
        .await
        .unwrap();
        assert!(tours.locks.lock().unwrap().is_empty(), "every lock of the tour is gone");
        assert_eq!(
            tours.tours.lock().unwrap()[&tour.booking_id].status,
            TourStatus::Cancelled
        );
    }

    /// The chatbot confirms tour `id`.
    async fn confirm(store: &MemoryStore, tours: &MemoryTours, id: &BookingId) -> Result<serde_json::Value, AppError> {
        update(store, tours, id.as_str(), r#"{"status":"confirmed"}"#, None).await
    }

    /// The chatbot moves tour `id` to `to`.
    async fn move_to(
        store: &MemoryStore,
        tours: &MemoryTours,
        id: &BookingId,
        to: &str,
    ) -> Result<serde_json::Value, AppError> {
        let body = serde_json::json!({ "rescheduled_datetime": to }).to_string();
        update(store, tours, id.as_str(), &body, None).await
    }

    #[tokio::test]
    async fn a_move_keeps_the_agent_when_free_takes_another_when_not_and_refuses_a_full_time() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let first = booked(&tours, 1, "A", 10);
        booked(&tours, 2, "A", 14);
        let moved = move_to(&store, &tours, &first.booking_id, "2026-12-01T11:00")
            .await
            .unwrap();
        assert_eq!(
            (moved["staff_member_id"].as_str(), moved["status"].as_str()),
            (Some("A"), Some("scheduled"))
        );
        assert_eq!(moved["confirmed_datetime"], "2026-12-01T11:00:00-06:00");
        // 14:00 is A's: the tour goes to B, and the old 11:00 locks are free again.
        let to_b = move_to(&store, &tours, &first.booking_id, "2026-12-01T14:00:00-06:00")
            .await
            .unwrap();
        assert_eq!(to_b["staff_member_id"], "B");
        let earliest = |tours: &MemoryTours| tours.locks.lock().unwrap().keys().map(|(_, g)| *g).min();
        assert_eq!(earliest(&tours), Some(at(14, 0)), "nothing left at 11:00");
        booked(&tours, 3, "A", 16);
        booked(&tours, 4, "B", 16);
        let full = move_to(&store, &tours, &first.booking_id, "2026-12-01T16:00")
            .await
            .unwrap_err();
        match full {
            AppError::SlotTaken { alternatives, field } => {
                assert_eq!(field, "rescheduled_datetime");
                assert!(!alternatives.is_empty() && alternatives.len() <= 3);
            }
            other => panic!("expected slot_taken, got {other:?}"),
        }
        let past = move_to(&store, &tours, &first.booking_id, "2026-11-29T10:00")
            .await
            .unwrap_err();
        assert!(
            matches!(past, AppError::Illegal { ref change, field } if field == "rescheduled_datetime" && change.to_string().contains("into the past")),
            "{past:?}"
        );
        let off_grid = move_to(&store, &tours, &first.booking_id, "2026-12-01T10:07")
            .await
            .unwrap_err();
        assert!(
            matches!(off_grid, AppError::Invalid(ref f) if f.field == "rescheduled_datetime"),
            "{off_grid:?}"
        );
    }

    #[tokio::test]
    async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        let id = tour.booking_id.as_str();
        let first = update(&store, &tours, id, r#"{"status":"confirmed"}"#, Some("u-1"))
            .await
            .unwrap();
        update(&store, &tours, id, r#"{"staff_notes":"asked about parking"}"#, None)
            .await
            .unwrap();
        let replay = update(&store, &tours, id, r#"{"status":"confirmed"}"#, Some("u-1"))
            .await
            .unwrap();
        assert_eq!(first, replay, "the first answer, not the tour as it now stands");
        assert!(matches!(
            update(&store, &tours, id, r#"{"status":"cancelled"}"#, Some("u-1")).await,
            Err(AppError::KeyReused)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_makes_three_store_round_trips_one_after_another_and_a_move_no_more() {
        use crate::app::fakes::Trips;
        const TRIP: std::time::Duration = std::time::Duration::from_millis(10);
        let store = MemoryStore {
            trips: Trips::with_delay(TRIP),
            ..MemoryStore::with_property(demo())
        };
        let tours = MemoryTours {
            trips: Trips::with_delay(TRIP),
            ..Default::default()
        };
        let tour = booked(&tours, 1, "A", 10);
        let started = tokio::time::Instant::now();
        confirm(&store, &tours, &tour.booking_id).await.unwrap();
        assert_eq!(started.elapsed(), TRIP * 3, "the tour; the property; the transaction");
        let started = tokio::time::Instant::now();
        move_to(&store, &tours, &tour.booking_id, "2026-12-01T11:00")
            .await
            .unwrap();
        assert_eq!(
            started.elapsed(),
            TRIP * 3,
            "the tour; the property and the busy time together; the transaction"
        );
        assert_eq!(
            store.trips.count() + tours.trips.count(),
            7,
            "and the busy time is read once"
        );
    }

    fn report(n: u128, word: &str, start: Option<DateTime<Utc>>, minutes_after: i64) -> ResManReport {
        ResManReport {
            appointment_id: AppointmentId::parse(&format!("EV-{n}")).unwrap(),
            word: ResManWord::read(Some(word)),
            start,
            agent: None,
            as_of: monday_morning() + Duration::minutes(minutes_after),
            source: ChangeSource::ResmanWebhook,
        }
    }

    async fn apply(tours: &MemoryTours, r: &ResManReport) -> ReportEffect {
        let tour = tours.tour_by_resman_id(&r.appointment_id).await.unwrap().unwrap();
        let deps = ReportDeps { tours, queue: tours };
        apply_report(&deps, &demo(), tour, r, monday_morning()).await.unwrap()
    }

    #[tokio::test]
    async fn reports_apply_once_in_the_order_they_describe() {
        let tours = MemoryTours::default();
        let tour = booked(&tours, 1, "A", 10);
        let confirmed = report(1, "Confirmed", None, 5);
        let completed = report(1, "Completed", None, 9);
        assert_eq!(apply(&tours, &completed).await, ReportEffect::Applied(2));
        assert_eq!(
            apply(&tours, &confirmed).await,
            ReportEffect::Stale,
            "older than what we hold"
        );
        assert_eq!(
            apply(&tours, &completed).await,
            ReportEffect::Unchanged,
            "replayed: the same state again"
        );
        let now = tours.tours.lock().unwrap()[&tour.booking_id].clone();
        assert_eq!(
            (now.status, now.version, now.resman_version),
            (TourStatus::Completed, 2, 2)
        );
        assert_eq!(now.history.last().unwrap().source, ChangeSource::ResmanWebhook);
    }

    #[tokio::test]
    async fn a_staff_move_moves_our_hold_and_frees_the_old_time() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        let moved = report(1, "Scheduled", Some(at(15, 0)), 5);
        assert_eq!(apply(&tours, &moved).await, ReportEffect::Applied(2));
        let earliest = tours.locks.lock().unwrap().keys().map(|(_, g)| *g).min();
        assert_eq!(earliest, Some(at(15, 0)), "the hold moved with the tour; 10:00 is free");
        assert_eq!(tours.tours.lock().unwrap()[&tour.booking_id].start, at(15, 0));
        // Our own pending write wins over what ResMan shows until it lands.
        confirm(&store, &tours, &tour.booking_id).await.unwrap();
        assert_eq!(
            apply(&tours, &report(1, "Scheduled", Some(at(16, 0)), 30)).await,
            ReportEffect::Stale
        );
    }
}
