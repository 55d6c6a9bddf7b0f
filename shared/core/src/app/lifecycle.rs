//! A booked tour changes: the chatbot confirms, moves, cancels or records it (`PUT /api/resman/tours/{id}`), or
//! ResMan reports what staff did (the webhook and the poller, through [`apply_report`]). Both go through
//! [`crate::domain::update::edited`] and one conditional transaction per change; what ResMan and the chatbot are owed
//! afterwards travels through the outbox and the sync worker, so no answer waits on either.

use super::AppError;
use super::availability::{alternatives, candidates};
use super::availability::{busy_around_date, load_tours_property};
use super::booking::{find_tour, view_of};
use crate::domain::lifecycle::{Change, ChangeSource, ResManWord, decide};
use crate::domain::notify::{MessageKind, MessageRef, ReminderDue, now_or_later, owed, waiting_for, waiting_owed};
use crate::domain::property::Property;
use crate::domain::reconcile::{Disagreement, Holding, Reconciled, Stance, reconcile};
use crate::domain::slots::{self, Busy};
use crate::domain::update::{Edit, UpdateTourCommand, edited};
use crate::domain::{AgentId, AppointmentId, UtcWindow};
use crate::domain::{
    booking::slot_at,
    lifecycle::TourStatus,
    record::{Holder, SyncStatus, TourRecord},
};
use crate::ports::{
    CalendarStore, ChangeExtras, ChangeWrite, Locks, Outcome, SavedAnswer, SavedOutcome, SyncQueue, TourStore,
};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// What a change of a tour reads and writes ([`super::ChangeDeps`]).
pub type UpdateDeps<'a> = super::ChangeDeps<'a>;

/// A finished update call: the tour's view as the caller gets it (a retry with the same key gets it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub body: String,
}

/// How often a change is decided again when another change of the same tour landed first.
const STALE_RETRIES: usize = 4;
/// The same for a report from ResMan: a staff change must not be dropped because the chatbot, the worker and the
/// poller were all changing the tour at that moment.
const REPORT_RETRIES: usize = 10;

fn replay(record: &crate::ports::IdempotencyRecord, fingerprint: &str) -> Result<Updated, AppError> {
    if record.fingerprint != fingerprint {
        return Err(AppError::KeyReused);
    }
    match &record.response {
        Some(SavedOutcome::Done { body, .. }) => Ok(Updated { body: body.clone() }),
        Some(SavedOutcome::Refused(refusal)) => Err(refusal.clone().into()),
        None => Err(AppError::InProgress),
    }
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

/// The `UpdateTourRequest` body: at most [`MAX_UPDATE_BYTES`](crate::domain::update::MAX_UPDATE_BYTES) (413), then
/// each field checked (400 naming it).
pub fn parse_update_body(body: &[u8]) -> Result<crate::domain::update::UpdateTourCommand, AppError> {
    if body.len() > crate::domain::update::MAX_UPDATE_BYTES {
        return Err(AppError::TooLarge(crate::domain::update::MAX_UPDATE_BYTES));
    }
    Ok(crate::domain::update::UpdateTourCommand::from_body(body)?)
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
        .map(crate::domain::fields::idempotency_key_of)
        .transpose()?;
    let fingerprint = hex::encode(Sha256::digest(format!("{}\u{1f}{}", id.trim(), command.fingerprint)));
    let seen = async {
        match &key {
            Some(key) => deps.tours.idempotency(key).await,
            None => Ok(None),
        }
    };
    let (seen, tour) = tokio::join!(seen, find_tour(deps.tours, id));
    let mut tour = tour?;
    // The property and, for a move, the busy time around the new date: read at the same time.
    let (property, busy) = tokio::join!(
        load_tours_property(deps.properties, &tour),
        busy_for_move(deps.calendar, &tour, command.reschedule.as_ref(), now)
    );
    // A tour out of the caller's reach is unknown to it, saved answers included. A record past its expiry is no
    // record, whenever TTL deletes it.
    let property = property?;
    if let Some(record) = seen?.filter(|r| r.is_live(now)) {
        return replay(&record, &fingerprint);
    }
    let mut busy = busy?;
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
                return answer(&property, &tour);
            };
            let after = owing(after);
            let body = serde_json::to_string(&view_of(&property, &after, None))
                .map_err(|e| AppError::Internal(format!("view: {e}")))?;
            let saved = key.as_ref().map(|key| SavedAnswer {
                key: key.clone(),
                fingerprint: fingerprint.clone(),
                outcome: SavedOutcome::Done {
                    outcome: Outcome::Updated,
                    body: body.clone(),
                },
            });
            let owes = ChangeOwes::of(
                &property,
                &tour,
                &after,
                owed(&property, Some(&tour), &after, false),
                now,
            );
            let messages = &owes.messages;
            match deps
                .tours
                .save_change(&property, &tour, &after, Locks::Take, owes.extras(saved.as_ref()), now)
                .await?
            {
                ChangeWrite::Saved => {
                    tracing::info!(booking_id = %after.booking_id, version = after.version, status = after.status.as_str(), source = ?source, "tour changed");
                    keep_agent_busy_in_resman(deps.calendar, &property, &tour, &after, now).await;
                    enqueue(deps.queue, &after, messages).await;
                    return Ok(Updated { body });
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

/// A cancellation that ResMan's appointment will not show (the contract's note alone, see
/// `Property::resman_cancel_word`) leaves the appointment on ResMan's calendar until staff cancel it there. Its agent's
/// time stays busy for us meanwhile, as the appointment ResMan holds: the mirror, which the poller and the webhook
/// then keep as ResMan shows it. Written right after the change; should it fail, the next poll writes it.
async fn keep_agent_busy_in_resman(
    calendar: &dyn CalendarStore,
    property: &Property,
    before: &TourRecord,
    after: &TourRecord,
    now: DateTime<Utc>,
) {
    if property.resman_cancel_word || after.status != TourStatus::Cancelled || !before.status.holds_time() {
        return;
    }
    let (Some(appointment_id), Some(held)) = (before.resman_appointment_id.clone(), before.held_in_resman()) else {
        return;
    };
    let (Some(status), Ok(window)) = (
        ResManWord::write(held.status),
        UtcWindow::starting_at(held.start, before.end - before.start),
    ) else {
        return;
    };
    let appointment = crate::domain::calendar::MirroredAppointment {
        appointment_id,
        agent: held.agent,
        window,
        status,
        as_of: now,
    };
    if let Err(e) = calendar.apply_mirror(property, &appointment).await {
        tracing::warn!(booking_id = %after.booking_id, error = %e, "the cancelled tour's time is left to the next poll to keep busy");
    }
}

fn answer(property: &Property, tour: &TourRecord) -> Result<Updated, AppError> {
    let body =
        serde_json::to_string(&view_of(property, tour, None)).map_err(|e| AppError::Internal(format!("view: {e}")))?;
    Ok(Updated { body })
}

/// A version our side made: ResMan is owed it.
fn owing(mut tour: TourRecord) -> TourRecord {
    if tour.owes_resman() {
        tour.sync_status = crate::domain::record::SyncStatus::Pending;
    }
    tour
}

/// What a change owes beside the tour: the messages that go now, and the reminders it drops and sets (those of the
/// tour's old time and new one, when it changed the time or whether the tour still happens; and the texts that wait
/// out quiet hours).
struct ChangeOwes {
    messages: Vec<MessageKind>,
    reminders: Option<(Vec<ReminderDue>, Vec<ReminderDue>)>,
}

impl ChangeOwes {
    fn of(
        property: &Property,
        before: &TourRecord,
        after: &TourRecord,
        owed: Vec<MessageKind>,
        now: DateTime<Utc>,
    ) -> Self {
        let (messages, later) = now_or_later(property, after, owed, now);
        let changed = before.start != after.start || before.status.is_open() != after.status.is_open();
        let mut reminders = changed.then(|| (waiting_for(property, before.start), waiting_owed(property, after, now)));
        if !later.is_empty() {
            reminders.get_or_insert_with(Default::default).1.extend(later);
        }
        Self { messages, reminders }
    }

    fn extras<'a>(&'a self, answer: Option<&'a SavedAnswer>) -> ChangeExtras<'a> {
        ChangeExtras {
            answer,
            messages: &self.messages,
            reminders: self
                .reminders
                .as_ref()
                .map(|(drop, set)| (drop.as_slice(), set.as_slice())),
        }
    }
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
    /// What a webhook notice says besides: staff's notes and its other fields (none from a poll).
    pub extras: ReportExtras,
}

/// What a ResMan notice says besides status, time and agent: staff's notes, and its other updated fields as
/// received. They go with the change the notice makes (one history entry), or make a change of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportExtras {
    pub staff_notes: Option<String>,
    pub received: std::collections::BTreeMap<String, serde_json::Value>,
}

impl ReportExtras {
    fn is_empty(&self) -> bool {
        self.staff_notes.is_none() && self.received.is_empty()
    }

    /// The tour after a change that raised its version, with the notes, and the other fields kept on the change's
    /// history entry.
    fn on(&self, mut after: TourRecord) -> TourRecord {
        if let Some(notes) = &self.staff_notes {
            after.staff_notes = Some(notes.clone());
        }
        if !self.received.is_empty()
            && let Some(entry) = after.history.last_mut()
        {
            entry.received = Some(self.received.clone());
        }
        after
    }
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
    /// The two sides recorded different outcomes and no rule decides: the tour is marked for staff.
    Disagrees,
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

/// Applies a report from ResMan to the tour it is about. The same path for the webhook, the poller and the sync
/// worker's read before a write. A report is applied at most once (an older one, or one already applied, changes
/// nothing). A report of what ResMan held before our owed write changes nothing either: the write will land. A
/// report of a staff change that crosses ours is settled by `domain::reconcile`'s rule, whichever arrives first.
pub async fn apply_report(
    deps: &ReportDeps<'_>,
    property: &Property,
    tour: TourRecord,
    report: &ResManReport,
    now: DateTime<Utc>,
) -> Result<ReportEffect, AppError> {
    let mut tour = tour;
    for _ in 0..REPORT_RETRIES {
        let effect = match &report.word {
            ResManWord::Known(status) => settle_report(deps, property, &tour, report, *status, now).await?,
            ResManWord::Unknown(_) => apply_unknown_word(deps, property, &tour, report, now).await?,
        };
        match effect {
            // Staff's notes are news even when the rest of the report is not, unless the report is older than the
            // tour's last change.
            Some(ReportEffect::Unchanged | ReportEffect::Disagrees | ReportEffect::Refused(_))
                if !report.extras.is_empty() =>
            {
                let tour = find_tour(deps.tours, tour.booking_id.as_str()).await?;
                return apply_extras(deps, property, tour, report, now).await;
            }
            Some(effect) => return Ok(effect),
            None => tour = find_tour(deps.tours, tour.booking_id.as_str()).await?,
        }
    }
    tracing::warn!(booking_id = %tour.booking_id, "a report from ResMan lost every race to other changes of the tour; the next poll reads it again");
    Ok(ReportEffect::Stale)
}

/// What ResMan reports the tour holds: its word, and its time and agent where it says them.
fn reported_holding(tour: &TourRecord, report: &ResManReport, status: TourStatus) -> Holding {
    let agent = match (&tour.holder, &report.agent) {
        (Holder::Agent(_), Some(agent)) => Some(agent.clone()),
        (own, _) => own.agent().cloned(),
    };
    Holding {
        status,
        start: report.start.unwrap_or(tour.start),
        agent,
    }
}

/// A report in one of ResMan's words we know, against the tour as read: its effect, or `None` when the tour changed
/// meanwhile (read it again).
async fn settle_report(
    deps: &ReportDeps<'_>,
    property: &Property,
    tour: &TourRecord,
    report: &ResManReport,
    status: TourStatus,
    now: DateTime<Utc>,
) -> Result<Option<ReportEffect>, AppError> {
    let reported = reported_holding(tour, report, status);
    if reported == tour.holding() {
        if tour.disagreement.is_none() && tour.resman_seen.as_ref().is_none_or(|seen| *seen == reported) {
            return Ok(Some(ReportEffect::Unchanged));
        }
        // ResMan came round to our tour (staff settled a disagreement there): nothing left to look at.
        let after = TourRecord {
            resman_seen: Some(reported),
            disagreement: None,
            prospect_confirmed_at: None,
            prospect_reply: None,
            ..tour.clone()
        };
        return save_report(deps, property, (tour, &after), false, &[], now)
            .await
            .map(|saved| saved.then_some(ReportEffect::Unchanged));
    }
    let held = tour.held_in_resman();
    if tour.disagreement.is_some() && held.as_ref() == Some(&reported) {
        // Marked for staff already: nothing new, nothing logged again.
        return Ok(Some(ReportEffect::Disagrees));
    }
    if held.is_none() || held.as_ref() == Some(&reported) {
        // Nothing new from staff: ResMan still shows what it held, and the write we owe will land over it.
        return Ok(Some(if tour.owes_resman() {
            ReportEffect::Stale
        } else {
            ReportEffect::Unchanged
        }));
    }
    let is_older = crate::domain::calendar::is_older;
    // A staff change made between our read of ResMan and our write over it: the write went over it unseen. Only a
    // webhook tells it (a poll now reads our write); it is settled as any crossing, from its own moment.
    let behind_our_write = tour.resman_synced_at.is_some_and(|w| is_older(report.as_of, w));
    let last_change = tour.history.last().map_or(tour.created_at, |c| c.at);
    let crossed_our_write =
        behind_our_write && report.source == ChangeSource::ResmanWebhook && !is_older(report.as_of, last_change);
    if !tour.owes_resman() && is_older(report.as_of, tour.settled_at()) && !crossed_our_write {
        // An older view of ResMan than our tour's last change or write.
        return Ok(Some(ReportEffect::Stale));
    }
    // What ResMan holds now: what it reported, or, for a change our later write went over, what we wrote.
    let in_resman = match (&held, crossed_our_write) {
        (Some(written), true) => written.clone(),
        _ => reported.clone(),
    };
    let theirs = Stance {
        holding: reported.clone(),
        status_at: report.as_of,
        time_at: report.as_of,
    };
    let ours = tour.stance();
    let settled = match reconcile(&ours, &theirs) {
        Reconciled::Settled(settled) => settled,
        Reconciled::Undecided => return disagree(deps, property, tour, (&reported, report.source), now).await,
    };
    let Some(mut after) = crate::domain::update::settled(tour, &settled, &reported, report.source, report.as_of)
        .map(|after| report.extras.on(after))
    else {
        return Ok(Some(ReportEffect::Unchanged));
    };
    after.resman_seen = Some(in_resman.clone());
    after.disagreement = None;
    let resman_holds_it = settled.holding == in_resman;
    if resman_holds_it {
        after.resman_version = after.version;
        if tour.owes_resman() && after.sync_status != SyncStatus::Rejected {
            // Whatever we still owed ResMan is settled: it holds the tour as it now stands.
            after.sync_status = SyncStatus::Synced;
            after.last_error = None;
        }
    }
    // Staff hear of a tour we keep against their change (it was theirs that lost), as of a chatbot's change.
    let theirs_lost = settled.overrides_theirs(&reported);
    // A cancellation that ResMan's calendar does not show and our write cannot bring there (the note alone, see
    // `Property::resman_cancel_word`): staff are asked to cancel the appointment in ResMan.
    let staff_must_cancel = !resman_holds_it
        && after.status == TourStatus::Cancelled
        && !property.resman_cancel_word
        && in_resman.status.holds_time();
    let also = if staff_must_cancel {
        [MessageKind::StaffCancelled]
            .into_iter()
            .chain(
                MessageKind::StaffCancelled
                    .webhook_twin()
                    .filter(|_| property.staff_webhook_url.is_some()),
            )
            .collect()
    } else {
        Vec::new()
    };
    if !save_report(deps, property, (tour, &after), theirs_lost, &also, now).await? {
        return Ok(None);
    }
    if tour.owes_resman() || theirs_lost || crossed_our_write {
        tracing::info!(booking_id = %after.booking_id, version = after.version, status = after.status.as_str(), source = ?report.source, ours_lost = settled.overrides_ours(&ours.holding), theirs_lost, "a staff change crossed ours; settled by the rule");
        crate::metrics::count(crate::metrics::Metric::ConflictsSettled);
    } else {
        tracing::info!(booking_id = %after.booking_id, version = after.version, status = after.status.as_str(), source = ?report.source, "tour changed in ResMan");
    }
    Ok(Some(ReportEffect::Applied(after.version)))
}

/// Saves a tour changed by a report, with the messages and reminders the change owes, and queues them (and the
/// ResMan write, when ResMan does not hold it). `false`: the tour changed meanwhile.
async fn save_report(
    deps: &ReportDeps<'_>,
    property: &Property,
    (before, after): (&TourRecord, &TourRecord),
    staff_told: bool,
    also: &[MessageKind],
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let mut messages = if after.version == before.version {
        Vec::new()
    } else {
        owed(property, Some(before), after, !staff_told)
    };
    for kind in also {
        if !messages.contains(kind) {
            messages.push(*kind);
        }
    }
    let owes = ChangeOwes::of(property, before, after, messages, now);
    match deps
        .tours
        .save_change(property, before, after, Locks::Follow, owes.extras(None), now)
        .await?
    {
        ChangeWrite::Saved => {
            // The sync worker does both: ResMan's write when owed, and the chatbot's callback for the new version.
            enqueue_owed(
                deps.queue,
                after,
                &owes.messages,
                after.owes_resman() || after.owes_callback(),
            )
            .await;
            Ok(true)
        }
        ChangeWrite::Stale | ChangeWrite::SlotTaken | ChangeWrite::KeyInUse => Ok(false),
    }
}

/// Marks a tour on which the two sides recorded different outcomes: staff must say which holds. Marked once; a
/// report of the same disagreement again changes nothing and is not logged again.
async fn disagree(
    deps: &ReportDeps<'_>,
    property: &Property,
    tour: &TourRecord,
    (reported, source): (&Holding, ChangeSource),
    now: DateTime<Utc>,
) -> Result<Option<ReportEffect>, AppError> {
    let disagreement = Disagreement {
        ours: tour.status,
        theirs: reported.status,
        since: now,
        reported_by: source,
    };
    if tour
        .disagreement
        .as_ref()
        .is_some_and(|d| (d.ours, d.theirs) == (disagreement.ours, disagreement.theirs))
    {
        return Ok(Some(ReportEffect::Disagrees));
    }
    let after = TourRecord {
        resman_seen: Some(reported.clone()),
        disagreement: Some(disagreement),
        ..tour.clone()
    };
    // The tour's agent and the property's staff addresses get one alert asking which holds.
    let alert = [MessageKind::StaffDisagrees];
    if !save_report(deps, property, (tour, &after), false, &alert, now).await? {
        return Ok(None);
    }
    tracing::warn!(booking_id = %tour.booking_id, ours = tour.status.as_str(), theirs = reported.status.as_str(), "ResMan and our tour record different outcomes; staff must say which holds");
    crate::metrics::count(crate::metrics::Metric::Disagreements);
    Ok(Some(ReportEffect::Disagrees))
}

/// A report in a status word we do not know: kept on the tour as written (the status stays), unless our own write is
/// still owed or the report is older than the tour's last change.
async fn apply_unknown_word(
    deps: &ReportDeps<'_>,
    property: &Property,
    tour: &TourRecord,
    report: &ResManReport,
    now: DateTime<Utc>,
) -> Result<Option<ReportEffect>, AppError> {
    if tour.owes_resman() || crate::domain::calendar::is_older(report.as_of, tour.settled_at()) {
        return Ok(Some(ReportEffect::Stale));
    }
    let edit = edit_of(tour, report)?;
    let after = match edited(tour, &edit, report.source, report.as_of, None) {
        Ok(Some(after)) => report.extras.on(after),
        Ok(None) => return Ok(Some(ReportEffect::Unchanged)),
        Err(illegal) => {
            tracing::warn!(booking_id = %tour.booking_id, refused = %illegal, "a change reported by ResMan does not fit the tour; left alone");
            return Ok(Some(ReportEffect::Refused(illegal.to_string())));
        }
    };
    // ResMan already holds what it reported.
    let after = TourRecord {
        resman_version: after.version,
        ..after
    };
    if !save_report(deps, property, (tour, &after), false, &[], now).await? {
        return Ok(None);
    }
    tracing::info!(booking_id = %after.booking_id, version = after.version, source = ?report.source, "tour changed in ResMan");
    Ok(Some(ReportEffect::Applied(after.version)))
}

/// A notice's notes and other fields on their own, as a change of the tour (`Unchanged` when the notes are already
/// so). ResMan holds what it sent, so nothing is owed back to it for them.
async fn apply_extras(
    deps: &ReportDeps<'_>,
    property: &Property,
    tour: TourRecord,
    report: &ResManReport,
    now: DateTime<Utc>,
) -> Result<ReportEffect, AppError> {
    let mut tour = tour;
    for _ in 0..REPORT_RETRIES {
        if crate::domain::calendar::is_older(report.as_of, tour.settled_at()) {
            // Notes written before the tour's last change may be what that change answered: left alone.
            return Ok(ReportEffect::Stale);
        }
        let edit = Edit {
            staff_notes: report.extras.staff_notes.clone(),
            ..Default::default()
        };
        let Some(after) = edited(&tour, &edit, report.source, report.as_of, None)
            .map_err(|e| AppError::Internal(format!("notes refused: {e}")))?
        else {
            return Ok(ReportEffect::Unchanged);
        };
        let mut after = report.extras.on(after);
        if !tour.owes_resman() {
            after.resman_version = after.version;
        }
        if save_report(deps, property, (&tour, &after), false, &[], now).await? {
            tracing::info!(booking_id = %after.booking_id, version = after.version, "staff notes from ResMan kept");
            return Ok(ReportEffect::Applied(after.version));
        }
        tour = find_tour(deps.tours, tour.booking_id.as_str()).await?;
    }
    Ok(ReportEffect::Stale)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::app::fakes::{MemoryStore, MemoryTours};
    use crate::domain::lifecycle::TourStatus as S;
    use crate::domain::property::tests::{demo, monday_morning};
    use crate::domain::{
        ids::{BookingId, ConversationId},
        lifecycle::TourStatus,
        record::{SyncStatus, lock_granules},
    };
    use crate::ports::TourReads;
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
            holder: holder.clone(),
            start: window.start(),
            end: window.end(),
            resman_appointment_id: Some(AppointmentId::parse(&format!("EV-{n}")).unwrap()),
            resman_prospect_id: Some("PR-1".into()),
            idempotency_key: format!("k-{n}"),
            created_at: monday_morning(),
            resman_synced_at: Some(monday_morning()),
            resman_seen: Some(crate::domain::reconcile::Holding {
                status: S::Scheduled,
                start: window.start(),
                agent: holder.agent().cloned(),
            }),
            ..crate::domain::update::tests::tour(S::Scheduled)
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
        Ok(serde_json::from_str(&updated.body).unwrap())
    }

    #[tokio::test]
    async fn another_companys_key_sending_the_same_keyed_change_gets_no_saved_answer() {
        use crate::domain::access::{AccountRef, Accounts};
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        let body = r#"{"status":"confirmed"}"#;
        update(&store, &tours, tour.booking_id.as_str(), body, Some("k-1"))
            .await
            .unwrap();
        let riverside = Accounts::Only([AccountRef::Id(crate::domain::resman::ResManAccountId(401))].into());
        let other = crate::app::reach::InReach::new(&store, &riverside);
        let deps = UpdateDeps {
            properties: &other,
            calendar: &store,
            tours: &tours,
            queue: &tours,
        };
        let command = UpdateTourCommand::from_body(body.as_bytes()).unwrap();
        let refused = update_tour(&deps, tour.booking_id.as_str(), &command, Some("k-1"), monday_morning()).await;
        assert!(
            matches!(refused, Err(AppError::NotFound(_))),
            "answered as an unknown tour, not with the saved answer: {refused:?}"
        );
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
        let AppError::Illegal { change, field } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((change.current, *field), (TourStatus::Cancelled, "status"));
        assert!(err.to_string().contains("cancelled"), "{err}");
    }

    #[tokio::test]
    async fn cancelling_frees_the_slot_for_the_next_prospect() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        set_status(&store, &tours, &tour, "cancelled").await;
        assert!(tours.locks.lock().unwrap().is_empty(), "every lock of the tour is gone");
        assert_eq!(
            tours.tours.lock().unwrap()[&tour.booking_id].status,
            TourStatus::Cancelled
        );
    }

    #[tokio::test]
    async fn a_cancellation_resman_will_still_show_keeps_its_agents_time_busy_unless_the_cancel_word_is_on() {
        let appointment = AppointmentId::parse("EV-1").unwrap();
        let ten = UtcWindow::starting_at(at(10, 0), chrono::Duration::minutes(45)).unwrap();
        for word in [false, true] {
            let mut property = demo();
            property.resman_cancel_word = word;
            let (store, tours) = (MemoryStore::with_property(property), MemoryTours::default());
            let tour = booked(&tours, 1, "A", 10);
            set_status(&store, &tours, &tour, "cancelled").await;
            let busy = store.busy_in(&tour.property_id, ten).await.unwrap();
            let mirrored = store.mirrored(&appointment).await.unwrap();
            if word {
                assert!(busy.is_empty() && mirrored.is_none(), "{busy:?} {mirrored:?}");
            } else {
                let (_, m) = mirrored.expect("the appointment ResMan still shows");
                assert_eq!((m.agent.as_ref().map(|a| a.as_str()), m.window), (Some("A"), ten));
                assert_eq!(busy.len(), 1, "A stays busy at 10:00: {busy:?}");
            }
        }
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
            extras: ReportExtras::default(),
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

    fn with_notes(mut r: ResManReport, notes: &str, received: &[(&str, &str)]) -> ResManReport {
        r.extras = ReportExtras {
            staff_notes: Some(notes.to_owned()),
            received: received
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
                .collect(),
        };
        r
    }

    #[tokio::test]
    async fn staff_notes_from_resman_land_on_the_tour_with_its_change_or_on_their_own_and_the_chatbot_hears() {
        let tours = MemoryTours::default();
        let tour = booked(&tours, 1, "A", 10);
        // Confirmed with notes and another field: one change, one history entry holding what else was sent.
        let confirmed = with_notes(
            report(1, "Confirmed", None, 5),
            "Asked about parking",
            &[("unit", "B12")],
        );
        assert_eq!(apply(&tours, &confirmed).await, ReportEffect::Applied(2));
        let t = now_of(&tours, &tour);
        assert_eq!(
            (t.status, t.staff_notes.as_deref(), t.version),
            (TourStatus::Confirmed, Some("Asked about parking"), 2)
        );
        let entry = t.history.last().unwrap();
        assert_eq!(
            entry.received.as_ref().unwrap()["unit"],
            "B12",
            "other fields kept as received"
        );
        assert!(!t.owes_resman(), "ResMan holds what it sent");
        assert!(
            tours.queued.lock().unwrap().contains(&tour.booking_id),
            "queued for the chatbot's callback of version 2"
        );
        // The same status again with new notes: a change of its own.
        tours.queued.lock().unwrap().clear();
        let noted = with_notes(report(1, "Confirmed", None, 7), "Prefers mornings", &[]);
        assert_eq!(apply(&tours, &noted).await, ReportEffect::Applied(3));
        let t = now_of(&tours, &tour);
        assert_eq!(
            (
                t.staff_notes.as_deref(),
                t.resman_version,
                t.history.last().unwrap().source
            ),
            (Some("Prefers mornings"), 3, ChangeSource::ResmanWebhook)
        );
        assert!(t.owes_callback() && tours.queued.lock().unwrap().contains(&tour.booking_id));
        // Redelivered: nothing new. Older than the tour's last change: left alone.
        assert_eq!(apply(&tours, &noted).await, ReportEffect::Unchanged);
        let older = with_notes(report(1, "Confirmed", None, 6), "Old words", &[]);
        assert_eq!(apply(&tours, &older).await, ReportEffect::Stale);
        assert_eq!(now_of(&tours, &tour).staff_notes.as_deref(), Some("Prefers mornings"));
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
        // While our confirmation is owed, ResMan showing what it held before is no staff change: our write lands.
        confirm(&store, &tours, &tour.booking_id).await.unwrap();
        assert_eq!(
            apply(&tours, &report(1, "Scheduled", Some(at(15, 0)), 30)).await,
            ReportEffect::Stale
        );
    }

    /// The chatbot sets the tour's status (`cancelled`, `completed`...), which the tour allows.
    async fn set_status(store: &MemoryStore, tours: &MemoryTours, tour: &TourRecord, status: &str) {
        let body = format!(r#"{{"status":"{status}"}}"#);
        update(store, tours, tour.booking_id.as_str(), &body, None)
            .await
            .unwrap();
    }

    /// The tour as it now stands.
    fn now_of(tours: &MemoryTours, tour: &TourRecord) -> TourRecord {
        tours.tours.lock().unwrap()[&tour.booking_id].clone()
    }

    #[tokio::test]
    async fn a_staff_no_show_after_the_chatbots_owed_confirm_wins_and_both_are_on_record() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        confirm(&store, &tours, &tour.booking_id).await.unwrap();
        assert!(now_of(&tours, &tour).owes_resman(), "ResMan is owed the confirmation");
        // The agent marks a no-show in ResMan before our write lands; the webhook says so.
        assert_eq!(
            apply(&tours, &report(1, "No Show", None, 5)).await,
            ReportEffect::Applied(3)
        );
        let t = now_of(&tours, &tour);
        assert_eq!(t.status, TourStatus::NoShow);
        assert!(
            !t.owes_resman(),
            "ResMan holds the no-show: our older confirmation is never written over it"
        );
        assert_eq!(t.sync_status, SyncStatus::Synced);
        let entry = t.history.last().unwrap();
        assert_eq!(entry.source, ChangeSource::ResmanWebhook);
        let overrode = entry
            .overrode
            .as_ref()
            .expect("the chatbot's confirmation is on record as overridden");
        assert_eq!(
            (overrode.source, overrode.status),
            (ChangeSource::Chatbot, TourStatus::Confirmed)
        );
        // Told again (a poll, a redelivery): nothing more.
        assert_eq!(
            apply(&tours, &report(1, "No Show", None, 9)).await,
            ReportEffect::Unchanged
        );
    }

    #[tokio::test]
    async fn a_cancellation_wins_over_a_later_confirmation_from_the_other_side() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        // The chatbot cancels (owed); staff confirm in ResMan afterwards, not knowing.
        let tour = booked(&tours, 1, "A", 10);
        set_status(&store, &tours, &tour, "cancelled").await;
        tours.queued.lock().unwrap().clear();
        assert_eq!(
            apply(&tours, &report(1, "Confirmed", None, 5)).await,
            ReportEffect::Applied(3)
        );
        let t = now_of(&tours, &tour);
        assert_eq!(t.status, TourStatus::Cancelled);
        assert!(
            t.owes_resman(),
            "ResMan must be given the cancellation over staff's confirmation"
        );
        assert_eq!(
            tours.queued.lock().unwrap().as_slice(),
            std::slice::from_ref(&tour.booking_id)
        );
        let overrode = t.history.last().unwrap().overrode.clone().unwrap();
        assert_eq!(
            (overrode.source, overrode.status),
            (ChangeSource::ResmanWebhook, TourStatus::Confirmed)
        );
        // Staff cancel in ResMan while the chatbot's later confirmation is owed: cancelled, nothing to write.
        let other = booked(&tours, 2, "B", 10);
        confirm(&store, &tours, &other.booking_id).await.unwrap();
        let mut cancel = report(2, "Cancelled", None, -5);
        cancel.source = ChangeSource::ResmanPoll;
        assert_eq!(apply(&tours, &cancel).await, ReportEffect::Applied(3));
        let o = now_of(&tours, &other);
        assert_eq!((o.status, o.owes_resman()), (TourStatus::Cancelled, false));
    }

    #[tokio::test]
    async fn a_later_staff_move_wins_over_the_chatbots_move_and_the_prospect_is_told() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        let body = format!(
            r#"{{"rescheduled_datetime":"{}"}}"#,
            at(11, 0).with_timezone(&demo().time_zone).format("%Y-%m-%dT%H:%M")
        );
        update(&store, &tours, tour.booking_id.as_str(), &body, None)
            .await
            .unwrap();
        assert_eq!(now_of(&tours, &tour).start, at(11, 0));
        tours.queued_messages.lock().unwrap().clear();
        assert_eq!(
            apply(&tours, &report(1, "Scheduled", Some(at(15, 0)), 5)).await,
            ReportEffect::Applied(3)
        );
        let t = now_of(&tours, &tour);
        assert_eq!((t.start, t.owes_resman()), (at(15, 0), false));
        let told: Vec<MessageKind> = tours.queued_kinds();
        assert!(told.contains(&MessageKind::Rescheduled), "{told:?}");
    }

    #[tokio::test]
    async fn a_cancelled_tour_staff_confirm_in_resman_is_repaired_once_and_never_warned_again() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        set_status(&store, &tours, &tour, "cancelled").await;
        // Our cancellation reached ResMan.
        written_at(&tours, &tour, 0);
        // Staff then confirm it in ResMan: our state machine refuses that; the rule repairs it (the cancellation
        // stands, ResMan is owed it again), once.
        let (first, lines) = crate::metrics::capture(apply(&tours, &report(1, "Confirmed", None, 5))).await;
        assert_eq!(first, ReportEffect::Applied(3));
        assert_eq!(crate::metrics::names(&lines), vec!["ConflictsSettled"]);
        let t = now_of(&tours, &tour);
        assert_eq!((t.status, t.owes_resman()), (TourStatus::Cancelled, true));
        for minutes in [6, 7, 8] {
            assert_eq!(
                apply(&tours, &report(1, "Confirmed", None, minutes)).await,
                ReportEffect::Stale
            );
        }
        assert_eq!(now_of(&tours, &tour).version, 3, "no repeat");
    }

    #[tokio::test]
    async fn a_staff_confirm_over_our_cancellation_asks_staff_to_cancel_in_resman_when_our_write_cannot() {
        for word in [false, true] {
            let mut property = demo();
            property.resman_cancel_word = word;
            let (store, tours) = (MemoryStore::with_property(property.clone()), MemoryTours::default());
            let tour = booked(&tours, 1, "A", 10);
            set_status(&store, &tours, &tour, "cancelled").await;
            written_at(&tours, &tour, 0);
            tours.queued_messages.lock().unwrap().clear();
            let r = report(1, "Confirmed", None, 5);
            let current = tours.tour_by_resman_id(&r.appointment_id).await.unwrap().unwrap();
            let deps = ReportDeps {
                tours: &tours,
                queue: &tours,
            };
            let effect = apply_report(&deps, &property, current, &r, monday_morning())
                .await
                .unwrap();
            assert_eq!(effect, ReportEffect::Applied(3));
            let asked: Vec<MessageKind> = tours.queued_kinds();
            if word {
                assert!(asked.is_empty(), "our write puts the cancellation back: {asked:?}");
            } else {
                assert_eq!(
                    asked,
                    [MessageKind::StaffCancelled],
                    "ResMan keeps it confirmed: staff must cancel it"
                );
            }
        }
    }

    /// Our change, as the worker wrote it to ResMan `minutes` after it was made.
    fn written_at(tours: &MemoryTours, tour: &TourRecord, minutes: i64) {
        let mut written = now_of(tours, tour);
        written.resman_version = written.version;
        written.resman_seen = Some(written.holding());
        written.resman_synced_at = Some(monday_morning() + Duration::minutes(minutes));
        tours.tours.lock().unwrap().insert(written.booking_id.clone(), written);
    }

    #[tokio::test]
    async fn a_staff_change_our_write_went_over_unseen_is_settled_when_its_webhook_arrives() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        // The chatbot cancels; staff confirm in ResMan a moment before our write lands over it.
        let cancelled = booked(&tours, 1, "A", 10);
        set_status(&store, &tours, &cancelled, "cancelled").await;
        written_at(&tours, &cancelled, 10);
        assert_eq!(
            apply(&tours, &report(1, "Confirmed", None, 5)).await,
            ReportEffect::Applied(3)
        );
        let t = now_of(&tours, &cancelled);
        assert_eq!(
            (t.status, t.owes_resman()),
            (TourStatus::Cancelled, false),
            "the cancellation stands, as written"
        );
        let overrode = t.history.last().unwrap().overrode.clone().unwrap();
        assert_eq!(
            overrode.status,
            TourStatus::Confirmed,
            "staff's confirmation is on record as overridden"
        );
        // The chatbot confirms; staff mark a no-show before our write lands over it: the no-show is written back.
        let confirmed = booked(&tours, 2, "B", 10);
        confirm(&store, &tours, &confirmed.booking_id).await.unwrap();
        written_at(&tours, &confirmed, 10);
        assert_eq!(
            apply(&tours, &report(2, "No Show", None, 5)).await,
            ReportEffect::Applied(3)
        );
        let c = now_of(&tours, &confirmed);
        assert_eq!(
            (c.status, c.owes_resman()),
            (TourStatus::NoShow, true),
            "ResMan is given the no-show back"
        );
        // A poll's read from before our write is no such change: it is an old view.
        let mut old_view = report(2, "Scheduled", None, 7);
        old_view.source = ChangeSource::ResmanPoll;
        written_at(&tours, &confirmed, 20);
        assert_eq!(apply(&tours, &old_view).await, ReportEffect::Stale);
    }

    #[tokio::test]
    async fn two_different_outcomes_are_marked_for_staff_once() {
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let tour = booked(&tours, 1, "A", 10);
        set_status(&store, &tours, &tour, "completed").await;
        written_at(&tours, &tour, 0);
        tours.queued_messages.lock().unwrap().clear();
        let (first, lines) = crate::metrics::capture(apply(&tours, &report(1, "No Show", None, 5))).await;
        assert_eq!(first, ReportEffect::Disagrees);
        assert_eq!(crate::metrics::names(&lines), vec!["Disagreements"]);
        let alerts = || -> Vec<MessageKind> { tours.queued_kinds() };
        assert_eq!(alerts(), [MessageKind::StaffDisagrees], "staff are asked which holds");
        let t = now_of(&tours, &tour);
        assert_eq!(t.status, TourStatus::Completed, "neither is taken for the other");
        let d = t.disagreement.clone().expect("marked for staff");
        assert_eq!((d.ours, d.theirs), (TourStatus::Completed, TourStatus::NoShow));
        let (again, lines) = crate::metrics::capture(apply(&tours, &report(1, "No Show", None, 9))).await;
        assert_eq!(again, ReportEffect::Disagrees);
        assert!(crate::metrics::names(&lines).is_empty(), "counted once");
        assert_eq!(alerts().len(), 1, "asked once");
        // Staff set ResMan to match our tour: the mark goes.
        assert_eq!(
            apply(&tours, &report(1, "Completed", None, 12)).await,
            ReportEffect::Unchanged
        );
        assert!(now_of(&tours, &tour).disagreement.is_none());
        // Marked again; this time staff say ResMan is right, through our API: allowed between the two outcomes only.
        assert_eq!(
            apply(&tours, &report(1, "No Show", None, 15)).await,
            ReportEffect::Disagrees
        );
        let refused = update(
            &store,
            &tours,
            tour.booking_id.as_str(),
            r#"{"status":"cancelled"}"#,
            None,
        )
        .await;
        assert!(refused.is_err(), "not a way round the state machine");
        set_status(&store, &tours, &tour, "no_show").await;
        let t = now_of(&tours, &tour);
        assert_eq!(t.status, TourStatus::NoShow);
        assert!(t.disagreement.is_none());
        assert!(t.owes_resman(), "ResMan is written to match");
        let overrode = t
            .history
            .last()
            .unwrap()
            .overrode
            .clone()
            .expect("our outcome on record as overridden");
        assert_eq!(overrode.status, TourStatus::Completed);
    }
}
