//! Changes made in ResMan reach our calendar two ways, into one pipeline: the scheduled poller reads every
//! prospect modified since its checkpoint, and the webhook passes on single notices. Both end in
//! `CalendarStore::apply_mirror`, which is idempotent and keeps the newest description of each appointment.

use super::AppError;
use super::budget::TimeBudget;
use super::lifecycle::{ReportDeps, ReportEffect, ResManReport, apply_report};
use crate::domain::access::Accounts;
use crate::domain::calendar::{self, MirroredAppointment};
use crate::domain::lifecycle::{ChangeSource, ResManWord};
use crate::domain::notice::ChangeNotice;
use crate::domain::property::Property;
use crate::domain::{AgentId, TourType, UtcWindow};
use crate::ports::{MirrorOutcome, PropertyStore, ResManError, ResManGateway};
use chrono::{DateTime, Duration, Utc};

/// What applying ResMan's changes reads and writes: the same as a change of ours ([`super::ChangeDeps`]).
pub type FeedDeps<'a> = super::ChangeDeps<'a>;

/// How the poller reads.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// The first poll of a property reads this far back (split as ResMan requires).
    pub backfill: Duration,
    /// Each window starts this much before the checkpoint, for changes that ResMan stamps a little late.
    pub overlap: Duration,
    /// ResMan's `EventType` for tours.
    pub tour_event_type: String,
    /// A poll message for a property polled less than this long ago is done without a call (a duplicate, or one
    /// queued twice by ticks that overlapped).
    pub min_gap: Duration,
    /// The longest span read and applied before the checkpoint moves: a first poll's backfill goes window by window,
    /// so a poll cut short keeps what it applied and the next one resumes there.
    pub window: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            backfill: Duration::days(30),
            overlap: Duration::minutes(2),
            tour_event_type: "Appointment".into(),
            min_gap: Duration::zero(),
            window: Duration::days(1),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    pub properties: usize,
    pub appointments_seen: usize,
    pub appointments_changed: usize,
    /// Changes applied to our own tours.
    pub tours_changed: usize,
    /// Properties whose window could not be read; their checkpoint stays, so the next tick reads it again.
    pub failed: Vec<String>,
}

/// A tour's length when ResMan does not say: the property's in-person duration.
fn default_minutes(property: &Property) -> u32 {
    property
        .tour_type(TourType::InPerson)
        .map(|t| t.duration_minutes)
        .unwrap_or(30)
}

/// Applies one appointment as ResMan shows it: to our tour when it is one of ours (one code path with the webhook),
/// else to the busy-time mirror. Whether it changed anything.
async fn apply_appointment(
    feed: &FeedDeps<'_>,
    property: &Property,
    appointment: &MirroredAppointment,
    word: ResManWord,
    ours: Option<crate::domain::record::TourRecord>,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    if let Some(tour) = ours {
        // A tour we cancelled whose appointment ResMan still shows keeps its agent busy through the mirror, until
        // ResMan shows it gone (see `Property::resman_cancel_word`).
        if !tour.status.holds_time() {
            feed.calendar.apply_mirror(property, appointment).await?;
        }
        let report = ResManReport {
            appointment_id: appointment.appointment_id.clone(),
            word,
            start: Some(appointment.window.start()),
            agent: appointment.agent.clone(),
            as_of: appointment.as_of,
            source: ChangeSource::ResmanPoll,
            extras: Default::default(),
        };
        let deps = ReportDeps {
            tours: feed.tours,
            queue: feed.queue,
        };
        return Ok(matches!(
            apply_report(&deps, property, tour, &report, now).await?,
            ReportEffect::Applied(_)
        ));
    }
    Ok(feed.calendar.apply_mirror(property, appointment).await? == MirrorOutcome::Changed)
}

/// Reads one property's changes since its checkpoint, window by window (`settings.window`), and moves the checkpoint
/// past each window once it is applied. Each window gets at most the time left in the invocation (`budget`), and no
/// window after the first starts with less than `budget.least` left: a long first backfill then continues on the
/// next tick from where this one stopped. A window cut short is read again whole on the next tick (applying a change
/// twice changes nothing).
async fn poll_property(
    feed: &FeedDeps<'_>,
    resman: &dyn ResManGateway,
    property: &Property,
    settings: &PollSettings,
    now: DateTime<Utc>,
    budget: &TimeBudget,
    report: &mut PollReport,
) -> Result<(), AppError> {
    let calendar = feed.calendar;
    let checkpoint = calendar.poll_checkpoint(&property.id).await?;
    let start = checkpoint
        .map(|c| c - settings.overlap)
        .unwrap_or(now - settings.backfill);
    if let Some(checkpoint) = checkpoint {
        // How old the newest change we had applied was: what a staff change waits, at most, to reach us.
        let lag = (now - checkpoint).num_milliseconds().max(0) as f64 / 1000.0;
        crate::metrics::record(crate::metrics::Metric::PollerLagSeconds, lag);
    }
    let (mut from, mut applied) = (start, checkpoint);
    while from < now {
        let left = budget.left();
        let first = from == start;
        if !first && left < budget.least {
            tracing::info!(property_id = %property.id, up_to = %from, "poll stopped for time; the next tick reads on from its checkpoint");
            break;
        }
        let to = (from + settings.window.max(Duration::seconds(1))).min(now);
        let Ok(window) = UtcWindow::new(from, to) else {
            break;
        };
        match tokio::time::timeout(
            left,
            apply_window(feed, resman, property, settings, window, now, report),
        )
        .await
        {
            Ok(done) => done?,
            Err(_) if !first => {
                tracing::info!(property_id = %property.id, up_to = %from, "a window ran out of the invocation's time; the next tick reads it again");
                break;
            }
            Err(_) => {
                let late = "no answer within the invocation's time".to_owned();
                return Err(AppError::ResMan(ResManError::Unreachable(late)));
            }
        }
        if !calendar.advance_checkpoint(&property.id, applied, to).await? {
            tracing::warn!(property_id = %property.id, "another poller moved the checkpoint; this window is applied anyway");
            break;
        }
        (from, applied) = (to, Some(to));
    }
    Ok(())
}

/// One window of a property's changes, read from ResMan and applied.
async fn apply_window(
    feed: &FeedDeps<'_>,
    resman: &dyn ResManGateway,
    property: &Property,
    settings: &PollSettings,
    window: UtcWindow,
    now: DateTime<Utc>,
    report: &mut PollReport,
) -> Result<(), AppError> {
    let prospects = resman.changed_prospects(&property.site(), window).await?;
    for prospect in &prospects {
        for appointment in
            calendar::appointments_of(prospect, &settings.tour_event_type, default_minutes(property), now)
        {
            report.appointments_seen += 1;
            let reason = prospect
                .events
                .iter()
                .find(|e| e.id.as_ref() == Some(&appointment.appointment_id))
                .and_then(|e| e.reason.clone());
            let tour = feed.tours.tour_by_resman_id(&appointment.appointment_id).await?;
            let ours = tour.is_some();
            // What the tour led to (an application, a lease): kept on the tour for the conversion figures.
            if let Some(tour) = &tour
                && tour.prospect_stage != Some(prospect.stage)
                && prospect.stage > tour.prospect_stage.unwrap_or_default()
            {
                feed.tours
                    .record_prospect_stage(&tour.booking_id, prospect.stage)
                    .await?;
            }
            let word = ResManWord::read(reason.as_deref());
            if apply_appointment(feed, property, &appointment, word, tour, now).await? {
                report.appointments_changed += 1;
                report.tours_changed += usize::from(ours);
            }
        }
    }
    Ok(())
}

/// One tick of the poller over every configured property. One property's failure does not stop the others.
pub async fn poll_changes(
    feed: &FeedDeps<'_>,
    resman: &dyn ResManGateway,
    settings: &PollSettings,
    now: DateTime<Utc>,
    budget: &TimeBudget,
) -> Result<PollReport, AppError> {
    let mut report = PollReport::default();
    for property in feed.properties.properties().await? {
        report.properties += 1;
        if let Err(e) = poll_property(feed, resman, &property, settings, now, budget, &mut report).await {
            tracing::warn!(property_id = %property.id, error = %e, "could not read ResMan's changes");
            report.failed.push(property.id.to_string());
        }
    }
    Ok(report)
}

/// The scheduled tick's fan-out: one poll message per configured property, for the poll workers. Returns how many
/// were queued.
pub async fn enqueue_polls(
    properties: &dyn PropertyStore,
    queue: &dyn crate::ports::PollQueue,
) -> Result<usize, AppError> {
    // What the "poller stopped" alarm watches: a tick that ran.
    crate::metrics::count(crate::metrics::Metric::PollerRuns);
    let ids: Vec<crate::domain::ResManPropertyId> = properties.properties().await?.into_iter().map(|p| p.id).collect();
    queue.enqueue_polls(&ids).await?;
    Ok(ids.len())
}

/// One property's poll, as a poll worker runs it for one queue message: its window since the checkpoint, applied,
/// and the checkpoint moved. A property polled within `settings.min_gap` is left as it is.
pub async fn poll_one(
    feed: &FeedDeps<'_>,
    resman: &dyn ResManGateway,
    property_id: &crate::domain::ResManPropertyId,
    settings: &PollSettings,
    now: DateTime<Utc>,
    budget: &TimeBudget,
) -> Result<PollReport, AppError> {
    let (property, checkpoint) = tokio::join!(
        super::availability::load_property(feed.properties, property_id),
        feed.calendar.poll_checkpoint(property_id)
    );
    let property = property?;
    let mut report = PollReport {
        properties: 1,
        ..PollReport::default()
    };
    if checkpoint?.is_some_and(|at| now - at < settings.min_gap) {
        return Ok(report);
    }
    poll_property(feed, resman, &property, settings, now, budget, &mut report).await?;
    Ok(report)
}

/// A poll worker's batch: each message (`{"property_id": "..."}`) polled at the same time as the others; a property
/// whose poll fails is left on the queue to be retried after its delay, and never holds back the rest.
pub async fn process_poll_batch(
    feed: &FeedDeps<'_>,
    resman: &dyn ResManGateway,
    settings: &PollSettings,
    messages: &[crate::ports::QueuedMessage],
    retry_base: std::time::Duration,
    budget: &TimeBudget,
    clock: &(dyn Fn() -> DateTime<Utc> + Sync),
) -> Vec<crate::ports::Failed> {
    #[derive(serde::Deserialize)]
    struct Message {
        property_id: String,
    }
    let polls = messages.iter().map(|message| async move {
        let polled = async {
            let body: Message = serde_json::from_str(&message.body)
                .map_err(|_| crate::domain::InvalidField::new("body", "is not a poll message"))?;
            let id = crate::domain::ResManPropertyId::parse(&body.property_id)?;
            poll_one(feed, resman, &id, settings, clock(), budget).await
        }
        .await;
        match polled {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(message_id = %message.id, receive_count = message.receive_count, error = %e, "a property's poll failed; it is retried");
                Some(crate::ports::Failed {
                    id: message.id.clone(),
                    retry_in_seconds: super::sync::retry_delay(retry_base, message.receive_count),
                })
            }
        }
    });
    futures::future::join_all(polls).await.into_iter().flatten().collect()
}

/// What a webhook notice did to our calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeEffect {
    Applied(MirrorOutcome),
    /// The appointment is one of our tours: what the change did to it.
    Tour(ReportEffect),
    /// We know neither the appointment nor its property; the poller will read it from ResMan.
    LeftToPoller,
    /// The property is not one we serve: acknowledged and ignored, so the sender does not retry it forever.
    NotOurs,
}

/// The agent a notice's `staff_member` names (an employee id or a name), if the property has one by it. One it does
/// not know is logged by its property and left out: the mirror keeps the agent it had.
fn staff_agent(property: &Property, notice: &ChangeNotice) -> Option<AgentId> {
    let named = notice.staff_member.as_deref()?;
    let agent = property.agent_named(named).map(|a| a.id.clone());
    if agent.is_none() {
        tracing::warn!(property_id = %property.id, event_id = %notice.event_id, "the notice's staff member is not an agent of the property");
    }
    agent
}

/// Applies a notice: to our tour when the appointment is one of ours (the same path as the poller's), else the
/// appointment as the notice describes it, filling what it leaves out from our mirror.
pub async fn apply_notice(
    feed: &FeedDeps<'_>,
    notice: &ChangeNotice,
    scope: &Accounts,
    now: DateTime<Utc>,
) -> Result<NoticeEffect, AppError> {
    // The sender may speak only for its own companies: a notice about another's property changes nothing.
    let in_scope = |property: &Property| {
        if scope.covers(property.account) {
            Ok(())
        } else {
            Err(AppError::Forbidden("this sender may not report on that property"))
        }
    };
    let (properties, calendar) = (feed.properties, feed.calendar);
    let (ours, known) = tokio::join!(
        feed.tours.tour_by_resman_id(&notice.appointment_id),
        calendar.mirrored(&notice.appointment_id)
    );
    if let Some(tour) = ours? {
        let property = super::availability::load_property(properties, &tour.property_id).await?;
        in_scope(&property)?;
        let report = ResManReport {
            appointment_id: notice.appointment_id.clone(),
            word: notice.word.clone(),
            start: notice.scheduled_at,
            agent: staff_agent(&property, notice),
            as_of: notice.sent_at,
            source: ChangeSource::ResmanWebhook,
            extras: crate::app::lifecycle::ReportExtras {
                staff_notes: notice.staff_notes.clone(),
                received: notice.received.clone(),
            },
        };
        let deps = ReportDeps {
            tours: feed.tours,
            queue: feed.queue,
        };
        // A tour we cancelled whose appointment still held its agent in our mirror: the mirror follows ResMan.
        if !tour.status.holds_time()
            && let Some(appointment) = described(&property, notice, known?)?
        {
            calendar.apply_mirror(&property, &appointment).await?;
        }
        return Ok(NoticeEffect::Tour(
            apply_report(&deps, &property, tour, &report, now).await?,
        ));
    }
    let known = known?;
    let property_id = match (&notice.property_id, &known) {
        (Some(id), _) => id.clone(),
        (None, Some((id, _))) => id.clone(),
        (None, None) => return Ok(NoticeEffect::LeftToPoller),
    };
    let Some(property) = properties.property(&property_id).await? else {
        return Ok(NoticeEffect::NotOurs);
    };
    in_scope(&property)?;
    let Some(appointment) = described(&property, notice, known)? else {
        return Ok(NoticeEffect::LeftToPoller);
    };
    Ok(NoticeEffect::Applied(
        calendar.apply_mirror(&property, &appointment).await?,
    ))
}

/// The appointment as a notice describes it, what it leaves out filled from our mirror; `None` when neither says
/// when it is.
fn described(
    property: &Property,
    notice: &ChangeNotice,
    known: Option<(crate::domain::ResManPropertyId, MirroredAppointment)>,
) -> Result<Option<MirroredAppointment>, AppError> {
    let length = known
        .as_ref()
        .map(|(_, m)| m.window.length())
        .unwrap_or_else(|| Duration::minutes(default_minutes(property).into()));
    let start = match (notice.scheduled_at, &known) {
        (Some(at), _) => at,
        (None, Some((_, m))) => m.window.start(),
        (None, None) => return Ok(None),
    };
    Ok(Some(MirroredAppointment {
        appointment_id: notice.appointment_id.clone(),
        agent: staff_agent(property, notice).or_else(|| known.and_then(|(_, m)| m.agent)),
        window: UtcWindow::starting_at(start, length)?,
        status: notice.status,
        as_of: notice.sent_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::{MemoryStore, MemoryTours, ScriptedResMan};
    use crate::domain::property::tests::demo;
    use crate::domain::resman::{Prospect, ProspectEvent, ProspectRef, TourEventStatus};
    use crate::domain::{AgentId, AppointmentId, ProspectId};
    use crate::ports::CalendarStore;
    use async_trait::async_trait;
    use chrono::TimeZone;
    use std::sync::Mutex;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    /// A ResMan holding one tour a leasing agent booked at the front desk, and that tour's start.
    fn one_staff_tour() -> (DateTime<Utc>, ScriptedResMan) {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 16, 0, 0).unwrap();
        let resman = ScriptedResMan {
            prospects: vec![staff_booked("EV-1", at, TourEventStatus::Scheduled)],
            ..Default::default()
        };
        (at, resman)
    }

    fn feed<'a>(store: &'a MemoryStore, tours: &'a MemoryTours) -> FeedDeps<'a> {
        FeedDeps {
            properties: store,
            calendar: store,
            tours,
            queue: tours,
        }
    }

    async fn poll(store: &MemoryStore, resman: &ScriptedResMan, at: DateTime<Utc>) -> PollReport {
        let tours = MemoryTours::default();
        poll_changes(&feed(store, &tours), resman, &PollSettings::default(), at, &ample())
            .await
            .unwrap()
    }

    /// Whether the staff tour of `one_staff_tour` is in the busy-time mirror.
    async fn staff_tour_mirrored(store: &MemoryStore) -> bool {
        let appointment = AppointmentId::parse("EV-1").unwrap();
        store.mirrored(&appointment).await.unwrap().is_some()
    }

    /// An invocation of `seconds`, as a queue consumer has it: 2 s kept back, none started with less than 2 s.
    fn invocation(seconds: u64) -> TimeBudget {
        let two = std::time::Duration::from_secs(2);
        TimeBudget::lasting(std::time::Duration::from_secs(seconds), two, two)
    }

    /// An invocation's time, more than any poll here needs.
    fn ample() -> TimeBudget {
        invocation(60)
    }

    /// An invocation's time that allows one window only (as one that ran out of time would).
    fn one_window() -> TimeBudget {
        TimeBudget::lasting(
            std::time::Duration::from_secs(60),
            std::time::Duration::ZERO,
            std::time::Duration::from_secs(61),
        )
    }

    fn staff_booked(event: &str, at: DateTime<Utc>, status: TourEventStatus) -> Prospect {
        Prospect {
            stage: crate::domain::resman::ProspectStage::Prospect,
            reference: ProspectRef {
                prospect_id: ProspectId::parse("PR-1").unwrap(),
                person_id: None,
            },
            first_name: None,
            last_name: None,
            email: None,
            phone: None,
            events: vec![ProspectEvent {
                id: Some(AppointmentId::parse(event).unwrap()),
                event_type: "Appointment".into(),
                at: Some(at),
                agent: Some(AgentId::parse("A").unwrap()),
                status,
                reason: Some(status.as_resman().to_owned()),
                comments: Some("booked at the front desk, 60 min".into()),
            }],
        }
    }

    #[tokio::test]
    async fn a_tour_booked_in_resman_becomes_busy_time_and_the_checkpoint_advances() {
        let store = MemoryStore::with_property(demo());
        let (_, resman) = one_staff_tour();
        let report = poll(&store, &resman, now()).await;
        // The backfill is read a day at a time, and this ResMan answers every window alike: seen 30 times, changed once.
        assert_eq!(resman.windows.lock().unwrap().len(), 30);
        assert_eq!((report.appointments_seen, report.appointments_changed), (30, 1));
        let (_, mirrored) = store
            .mirrored(&AppointmentId::parse("EV-1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mirrored.window.length(), Duration::minutes(60));
        assert_eq!(store.poll_checkpoint(&demo().id).await.unwrap(), Some(now()));
        // The first window reaches back the backfill period.
        assert_eq!(resman.windows.lock().unwrap()[0].start(), now() - Duration::days(30));
    }

    #[tokio::test]
    async fn the_next_window_starts_at_the_checkpoint_less_the_overlap_and_reapplying_changes_nothing() {
        let store = MemoryStore::with_property(demo());
        let (_, resman) = one_staff_tour();
        poll(&store, &resman, now()).await;
        let later = now() + Duration::minutes(1);
        let (report, lines) = crate::metrics::capture(poll(&store, &resman, later)).await;
        assert_eq!(report.appointments_changed, 0);
        // The lag: how old the checkpoint was when this poll began (one minute).
        let lag: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(lag.iter().any(|l| l["PollerLagSeconds"] == 60.0), "{lines:?}");
        assert_eq!(
            resman.windows.lock().unwrap().last().unwrap().start(),
            now() - Duration::minutes(2)
        );
    }

    #[tokio::test]
    async fn a_long_backfill_moves_the_checkpoint_window_by_window_and_resumes_where_it_stopped() {
        let store = MemoryStore::with_property(demo());
        let (_, resman) = one_staff_tour();
        let tours = MemoryTours::default();
        let settings = PollSettings::default();
        let start = now() - Duration::days(30);
        poll_changes(&feed(&store, &tours), &resman, &settings, now(), &one_window())
            .await
            .unwrap();
        assert_eq!(
            store.poll_checkpoint(&demo().id).await.unwrap(),
            Some(start + Duration::days(1))
        );
        poll_changes(&feed(&store, &tours), &resman, &settings, now(), &one_window())
            .await
            .unwrap();
        let day_two = start + Duration::days(1) - settings.overlap;
        assert_eq!(
            resman.windows.lock().unwrap()[1].start(),
            day_two,
            "the second poll resumes at the checkpoint"
        );
        assert_eq!(
            store.poll_checkpoint(&demo().id).await.unwrap(),
            Some(day_two + Duration::days(1))
        );
        // Polled until done, the checkpoint reaches the present and the staff tour is mirrored.
        for _ in 0..40 {
            poll_changes(&feed(&store, &tours), &resman, &settings, now(), &one_window())
                .await
                .unwrap();
        }
        assert_eq!(store.poll_checkpoint(&demo().id).await.unwrap(), Some(now()));
        assert!(staff_tour_mirrored(&store).await, "the staff tour is busy time");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_poll_with_resman_at_two_seconds_a_call_ends_inside_each_invocation_and_completes_over_ticks() {
        let store = MemoryStore::with_property(demo());
        let (_, mut resman) = one_staff_tour();
        resman.latency = std::time::Duration::from_secs(2);
        let tours = MemoryTours::default();
        let settings = PollSettings::default();
        let mut ticks = 0;
        while store.poll_checkpoint(&demo().id).await.unwrap() != Some(now()) {
            ticks += 1;
            assert!(ticks <= 8, "the backfill never completed");
            // A 15 s worker: each tick ends before its deadline, and keeps what it read.
            let (length, two) = (std::time::Duration::from_secs(15), std::time::Duration::from_secs(2));
            let began = tokio::time::Instant::now();
            let budget = invocation(15);
            let report = poll_changes(&feed(&store, &tours), &resman, &settings, now(), &budget)
                .await
                .unwrap();
            assert!(report.failed.is_empty(), "{report:?}");
            assert!(
                began.elapsed() <= length - two,
                "tick {ticks} ran {:?}",
                began.elapsed()
            );
        }
        // Six windows a tick (2 s each; none is started with less than 2 s left): the 30 days in six ticks, each
        // after the first reading its checkpoint's overlap again.
        assert_eq!(ticks, 6);
        assert_eq!(resman.windows.lock().unwrap().len(), 31);
        assert!(staff_tour_mirrored(&store).await, "the staff tour is busy time");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_window_that_outlasts_the_invocation_is_a_failure_and_moves_nothing() {
        let store = MemoryStore::with_property(demo());
        let (_, mut resman) = one_staff_tour();
        resman.latency = std::time::Duration::from_secs(30);
        let tours = MemoryTours::default();
        let budget = invocation(10);
        let began = tokio::time::Instant::now();
        let report = poll_changes(&feed(&store, &tours), &resman, &PollSettings::default(), now(), &budget)
            .await
            .unwrap();
        assert!(
            began.elapsed() <= std::time::Duration::from_secs(8),
            "{:?}",
            began.elapsed()
        );
        assert_eq!(report.failed, vec!["P-1".to_owned()]);
        assert_eq!(store.poll_checkpoint(&demo().id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_read_leaves_the_checkpoint_where_it_was() {
        let store = MemoryStore::with_property(demo());
        let resman = ScriptedResMan {
            fail: true,
            ..Default::default()
        };
        let report = poll(&store, &resman, now()).await;
        assert_eq!(report.failed, vec!["P-1".to_owned()]);
        assert_eq!(store.poll_checkpoint(&demo().id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_webhook_cancel_releases_the_time_and_an_older_poll_does_not_bring_it_back() {
        let store = MemoryStore::with_property(demo());
        let (at, resman) = one_staff_tour();
        poll(&store, &resman, now()).await;
        let notice = ChangeNotice {
            event_id: "n-1".into(),
            appointment_id: AppointmentId::parse("EV-1").unwrap(),
            status: TourEventStatus::Cancelled,
            word: ResManWord::read(Some("Cancelled")),
            updated_fields: vec!["status".into()],
            staff_member: None,
            property_id: None,
            scheduled_at: None,
            sent_at: now() + Duration::minutes(5),
            staff_notes: None,
            received: Default::default(),
        };
        assert_eq!(
            apply_notice(&feed(&store, &MemoryTours::default()), &notice, &Accounts::All, now())
                .await
                .unwrap(),
            NoticeEffect::Applied(MirrorOutcome::Changed)
        );
        let property = demo();
        let day = UtcWindow::starting_at(at - Duration::hours(1), Duration::hours(3)).unwrap();
        assert!(store.busy_in(&property.id, day).await.unwrap().is_empty());
        // A poll that read ResMan before the cancel (older as_of) must not resurrect the tour.
        let stale = MirroredAppointment {
            status: TourEventStatus::Scheduled,
            as_of: now() + Duration::minutes(1),
            ..store.mirrored(&notice.appointment_id).await.unwrap().unwrap().1
        };
        assert_eq!(
            store.apply_mirror(&property, &stale).await.unwrap(),
            MirrorOutcome::Unchanged
        );
        assert!(store.busy_in(&property.id, day).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_tour_we_cancelled_keeps_its_agent_busy_until_resmans_webhook_says_staff_cancelled_it_there() {
        use crate::app::lifecycle::tests::{at, booked};
        let (store, tours) = (MemoryStore::with_property(demo()), MemoryTours::default());
        let mut tour = booked(&tours, 1, "A", 10);
        tour.status = crate::domain::lifecycle::TourStatus::Cancelled;
        tours
            .tours
            .lock()
            .unwrap()
            .insert(tour.booking_id.clone(), tour.clone());
        let appointment = AppointmentId::parse("EV-1").unwrap();
        // As the cancel left it: ResMan still shows the appointment, so its agent is busy in the mirror.
        let still_held = MirroredAppointment {
            appointment_id: appointment.clone(),
            agent: tour.holder.agent().cloned(),
            window: tour.window(),
            status: TourEventStatus::Scheduled,
            as_of: now(),
        };
        store.apply_mirror(&demo(), &still_held).await.unwrap();
        let ten = UtcWindow::starting_at(at(10, 0), Duration::minutes(45)).unwrap();
        assert_eq!(store.busy_in(&demo().id, ten).await.unwrap().len(), 1);
        let notice = ChangeNotice {
            event_id: "n-1".into(),
            appointment_id: appointment.clone(),
            status: TourEventStatus::Cancelled,
            word: ResManWord::read(Some("Cancelled")),
            updated_fields: vec!["status".into()],
            staff_member: None,
            property_id: None,
            scheduled_at: None,
            sent_at: now() + Duration::minutes(5),
            staff_notes: None,
            received: Default::default(),
        };
        let effect = apply_notice(&feed(&store, &tours), &notice, &Accounts::All, now())
            .await
            .unwrap();
        assert!(matches!(effect, NoticeEffect::Tour(_)), "{effect:?}");
        assert!(
            store.busy_in(&demo().id, ten).await.unwrap().is_empty(),
            "staff cancelled it in ResMan: the agent is free"
        );
        assert_eq!(
            tours.tours.lock().unwrap()[&tour.booking_id].status,
            crate::domain::lifecycle::TourStatus::Cancelled
        );
    }

    #[tokio::test]
    async fn a_staff_member_named_by_name_or_id_takes_the_tour_and_an_unknown_one_leaves_the_agent() {
        let store = MemoryStore::with_property(demo());
        let (_, resman) = one_staff_tour();
        poll(&store, &resman, now()).await;
        let appointment = AppointmentId::parse("EV-1").unwrap();
        let agent_after = async |n: i64, staff: &str| {
            let notice = ChangeNotice {
                event_id: format!("n-{n}"),
                appointment_id: appointment.clone(),
                status: TourEventStatus::Confirmed,
                word: ResManWord::read(Some("Confirmed")),
                updated_fields: vec!["staff_member".into()],
                staff_member: Some(staff.into()),
                property_id: Some(demo().id),
                scheduled_at: None,
                sent_at: now() + Duration::minutes(n),
                staff_notes: None,
                received: Default::default(),
            };
            apply_notice(&feed(&store, &MemoryTours::default()), &notice, &Accounts::All, now())
                .await
                .unwrap();
            let (_, mirrored) = store.mirrored(&appointment).await.unwrap().unwrap();
            mirrored.agent.map(|a| a.as_str().to_owned())
        };
        assert_eq!(
            agent_after(1, "jordan lee").await.as_deref(),
            Some("B"),
            "by name, any case"
        );
        assert_eq!(agent_after(2, "A").await.as_deref(), Some("A"), "by employee id");
        assert_eq!(
            agent_after(3, "Someone Else").await.as_deref(),
            Some("A"),
            "unknown: unchanged"
        );
    }

    mod fan_out {
        use super::*;
        use crate::domain::ResManPropertyId;
        use crate::ports::CalendarStore;
        use crate::ports::QueuedMessage;

        fn message(id: &str, body: &str) -> QueuedMessage {
            QueuedMessage {
                id: id.into(),
                body: body.into(),
                receive_count: 2,
            }
        }

        fn poll_of(property: &str) -> String {
            serde_json::json!({ "property_id": property }).to_string()
        }

        /// The demo property and a second one, P-2.
        async fn two_properties() -> MemoryStore {
            let store = MemoryStore::with_property(demo());
            let mut json = crate::domain::property::tests::demo_json();
            json["property_id"] = serde_json::json!("P-2");
            let second = Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
            crate::ports::PropertyStore::save_property(&store, &second)
                .await
                .unwrap();
            store
        }

        #[derive(Default)]
        struct Queued(Mutex<Vec<ResManPropertyId>>);

        #[async_trait]
        impl crate::ports::PollQueue for Queued {
            async fn enqueue_polls(&self, properties: &[ResManPropertyId]) -> Result<(), crate::ports::StoreError> {
                self.0.lock().unwrap().extend_from_slice(properties);
                Ok(())
            }
        }

        #[tokio::test]
        async fn the_tick_queues_one_poll_per_property_and_calls_no_one() {
            let store = two_properties().await;
            let queue = Queued::default();
            let (queued, lines) = crate::metrics::capture(enqueue_polls(&store, &queue)).await;
            assert_eq!(queued.unwrap(), 2);
            // What the "poller stopped" alarm watches.
            assert_eq!(crate::metrics::names(&lines), vec!["PollerRuns"]);
            let queued: Vec<String> = queue.0.lock().unwrap().iter().map(ToString::to_string).collect();
            assert_eq!(queued, vec![demo().id.to_string(), "P-2".to_owned()]);
        }

        #[tokio::test]
        async fn a_property_whose_poll_fails_is_retried_and_never_holds_back_the_others() {
            let store = two_properties().await;
            let tours = MemoryTours::default();
            let (at, mut resman) = one_staff_tour();
            resman.failing = Some("P-2".into());
            let demo_id = demo().id.to_string();
            let messages = [
                message("m-2", &poll_of("P-2")),
                message("m-1", &poll_of(&demo_id)),
                message("m-bad", "not a poll"),
            ];
            let failed = process_poll_batch(
                &feed(&store, &tours),
                &resman,
                &PollSettings::default(),
                &messages,
                std::time::Duration::from_secs(30),
                &ample(),
                &now,
            )
            .await;
            let ids: Vec<(&str, u32)> = failed.iter().map(|f| (f.id.as_str(), f.retry_in_seconds)).collect();
            assert_eq!(
                ids,
                vec![("m-2", 60), ("m-bad", 60)],
                "retried after the second receive's delay"
            );
            // The demo property was polled all the same: its staff tour is busy time, its checkpoint moved.
            assert_eq!(store.poll_checkpoint(&demo().id).await.unwrap(), Some(now()));
            let day = UtcWindow::starting_at(at, Duration::minutes(45)).unwrap();
            assert_eq!(store.busy_in(&demo().id, day).await.unwrap().len(), 1);
            // The failing one keeps its checkpoint, so its retry reads the same window again.
            let p2 = ResManPropertyId::parse("P-2").unwrap();
            assert_eq!(store.poll_checkpoint(&p2).await.unwrap(), None);
        }

        #[tokio::test]
        async fn a_property_polled_moments_ago_is_not_polled_again() {
            let store = MemoryStore::with_property(demo());
            let tours = MemoryTours::default();
            let (_, resman) = one_staff_tour();
            let settings = PollSettings {
                min_gap: Duration::seconds(10),
                ..PollSettings::default()
            };
            let id = demo().id;
            poll_one(&feed(&store, &tours), &resman, &id, &settings, now(), &ample())
                .await
                .unwrap();
            let first_poll = resman.windows.lock().unwrap().len(); // the backfill, a day at a time
            assert_eq!(first_poll, 30);
            poll_one(
                &feed(&store, &tours),
                &resman,
                &id,
                &settings,
                now() + Duration::seconds(5),
                &ample(),
            )
            .await
            .unwrap();
            assert_eq!(
                resman.windows.lock().unwrap().len(),
                first_poll,
                "the duplicate made no call"
            );
            poll_one(
                &feed(&store, &tours),
                &resman,
                &id,
                &settings,
                now() + Duration::seconds(10),
                &ample(),
            )
            .await
            .unwrap();
            assert_eq!(resman.windows.lock().unwrap().len(), first_poll + 1);
        }
    }
}
