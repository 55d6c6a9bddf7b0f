//! The leasing team's weekly digest, sent from the scheduler's tick: for each property whose Monday 8 am has come,
//! the week before's digest (`domain::digest`), once. The digest's item is its outbox record: a tick claims it with a
//! lease (ticks that overlap send it once), renders it from the week's facts, sends it, and records how it ended. A
//! send that fails is tried again on a later tick, up to [`DIGEST_TRIES`]; a quiet week, or a property without
//! staff addresses, is recorded as skipped.

use super::AppError;
use super::budget::TimeBudget;
use super::notify::claim_lease;
use crate::domain::digest::{DigestWeek, digest};
use crate::domain::email::{RenderError, Templates};
use crate::domain::link::Links;
use crate::domain::property::Property;
use crate::ports::{AnalyticsStore, DigestClaim, DigestOutcome, DigestStore, Mailer, PropertyStore};
use chrono::{DateTime, Duration, Utc};

/// How many ticks try a digest that fails to send before it is given up.
pub const DIGEST_TRIES: u32 = 5;
/// How long a failed send waits before a later tick tries it again.
pub const DIGEST_RETRY_AFTER: Duration = Duration::minutes(15);
/// The least time a digest is started with: the week's reads, up to [`crate::domain::digest::LISTED`] tours' reads
/// and one send (SES's own bound is 5 s). A tick with less leaves the rest for the next one.
pub const DIGEST_LEAST: std::time::Duration = std::time::Duration::from_secs(12);

pub struct DigestDeps<'a> {
    pub properties: &'a dyn PropertyStore,
    /// The listed tours' prospects (the analytics index holds no personal data).
    pub tours: &'a dyn crate::ports::TourReads,
    pub analytics: &'a dyn AnalyticsStore,
    pub digests: &'a dyn DigestStore,
    pub mailer: &'a dyn Mailer,
    pub templates: &'a Templates,
    pub links: &'a Links,
}

/// How one property's digest went on this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestSent {
    Sent,
    Skipped(String),
    /// Not this tick: sent already, held by another tick, or its retry not due.
    NotNow,
    Retry,
    Failed,
}

/// One tick: every property's due digest, each once, while the invocation has time.
pub async fn send_due_digests(
    deps: &DigestDeps<'_>,
    now: DateTime<Utc>,
    budget: &TimeBudget,
) -> Result<usize, AppError> {
    let mut sent = 0;
    // The settled digests of each week due, read once per tick (properties in different zones may be due for
    // different weeks around midnight).
    let mut settled: std::collections::HashMap<String, Vec<crate::domain::ResManPropertyId>> = Default::default();
    for property in deps.properties.properties().await? {
        let Some(week) = DigestWeek::due(property.time_zone, now) else {
            continue;
        };
        let label = week.label();
        if !settled.contains_key(&label) {
            let done = deps.digests.settled_digests(&label).await?;
            settled.insert(label.clone(), done);
        }
        if settled.get(&label).is_some_and(|done| done.contains(&property.id)) {
            continue;
        }
        let left = budget.deadline.saturating_duration_since(tokio::time::Instant::now());
        if left < budget.margin + DIGEST_LEAST.max(budget.least) {
            tracing::info!(
                sent,
                "too little time left in this tick; the other digests wait for the next"
            );
            break;
        }
        if send_digest(deps, &property, week, now, claim_lease(left)).await? == DigestSent::Sent {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Why a digest is not sent: nothing to say or nobody to say it to, or a template that does not render.
enum Unsent {
    Skipped(String),
    Broken(RenderError),
}

/// The digest of `week` as an email, from the week's facts.
async fn compose(
    deps: &DigestDeps<'_>,
    property: &Property,
    week: DigestWeek,
    now: DateTime<Utc>,
) -> Result<Result<crate::domain::email::Mail, Unsent>, AppError> {
    let facts = deps
        .analytics
        .facts(&property.id, week.period().window(property.time_zone))
        .await?;
    let Some(mut digest) = digest(property, week, &facts, now) else {
        return Ok(Err(Unsent::Skipped("no tours that week".to_owned())));
    };
    for listed in &mut digest.to_rate {
        if let Some(whole) = deps.tours.tour(&listed.booking_id).await? {
            *listed = whole;
        }
    }
    Ok(match deps.templates.render_digest(&digest, property, deps.links) {
        Ok(email) => Ok(email),
        Err(RenderError::NoRecipient) => Err(Unsent::Skipped("the property has no staff addresses".to_owned())),
        Err(e) => Err(Unsent::Broken(e)),
    })
}

/// An operator's send of a property's digest of `week` (the week so far, for the current one), now and whatever
/// was sent before: a resend after a fix, or a look at the week. Not recorded, so Monday's digest still goes.
pub async fn send_digest_now(
    deps: &DigestDeps<'_>,
    property: &Property,
    week: DigestWeek,
    now: DateTime<Utc>,
) -> Result<Result<Vec<String>, String>, AppError> {
    match compose(deps, property, week, now).await? {
        Ok(email) => match deps.mailer.send(&email).await {
            Ok(_) => Ok(Ok(email.to)),
            Err(e) => Ok(Err(e.reason)),
        },
        Err(Unsent::Skipped(because)) => Ok(Err(because)),
        Err(Unsent::Broken(e)) => Ok(Err(e.to_string())),
    }
}

/// The property's digest of `week`, unless it went out already or another tick holds it.
pub async fn send_digest(
    deps: &DigestDeps<'_>,
    property: &Property,
    week: DigestWeek,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<DigestSent, AppError> {
    let label = week.label();
    let attempt = match deps.digests.claim_digest(&property.id, &label, now, lease).await? {
        DigestClaim::Claimed(attempt) => attempt,
        DigestClaim::Done | DigestClaim::Busy => return Ok(DigestSent::NotNow),
    };
    let finish = async |outcome: DigestOutcome| deps.digests.finish_digest(&property.id, &label, &outcome, now).await;
    let email = match compose(deps, property, week, now).await? {
        Ok(email) => email,
        Err(Unsent::Skipped(because)) => {
            finish(DigestOutcome::Skipped {
                because: because.clone(),
            })
            .await?;
            return Ok(DigestSent::Skipped(because));
        }
        Err(Unsent::Broken(e)) => {
            tracing::error!(property_id = %property.id, week = %label, error = %e, "digest could not be rendered");
            finish(DigestOutcome::Failed { error: e.to_string() }).await?;
            crate::metrics::count(crate::metrics::Metric::MessagesFailed);
            return Ok(DigestSent::Failed);
        }
    };
    match deps.mailer.send(&email).await {
        Ok(provider_message_id) => {
            tracing::info!(property_id = %property.id, week = %label, attempt, "weekly digest sent");
            finish(DigestOutcome::Sent { provider_message_id }).await?;
            crate::metrics::count(crate::metrics::Metric::MessagesSent);
            Ok(DigestSent::Sent)
        }
        Err(e) if !e.retryable || attempt >= DIGEST_TRIES => {
            tracing::error!(property_id = %property.id, week = %label, attempt, error = %e, "weekly digest failed for good");
            finish(DigestOutcome::Failed { error: e.reason }).await?;
            crate::metrics::count(crate::metrics::Metric::MessagesFailed);
            Ok(DigestSent::Failed)
        }
        Err(e) => {
            tracing::warn!(property_id = %property.id, week = %label, attempt, error = %e, "weekly digest not sent; a later tick tries again");
            finish(DigestOutcome::Retry {
                error: e.reason,
                after: now + DIGEST_RETRY_AFTER,
            })
            .await?;
            Ok(DigestSent::Retry)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::{FlakyMailer, MemoryDigests, MemoryStore};
    use crate::domain::analytics::Facts;
    use crate::domain::analytics::tests::{chicago, facts, tour};
    use crate::domain::lifecycle::TourStatus;
    use crate::domain::property::tests::demo;
    use crate::ports::StoreError;

    struct FixedFacts(Facts);

    #[async_trait::async_trait]
    impl AnalyticsStore for FixedFacts {
        async fn facts(
            &self,
            _: &crate::domain::ResManPropertyId,
            _: crate::domain::UtcWindow,
        ) -> Result<Facts, StoreError> {
            Ok(self.0.clone())
        }
    }

    /// The digest's ports over fakes: the demo property, a week of its tours, and `mailer`.
    struct Kit {
        store: MemoryStore,
        tours: crate::app::fakes::MemoryTours,
        digests: MemoryDigests,
        mailer: FlakyMailer,
        facts: FixedFacts,
        templates: Templates,
        links: Links,
    }

    impl Kit {
        fn new(mailer: FlakyMailer) -> Self {
            Self {
                store: MemoryStore::with_property(demo()),
                tours: Default::default(),
                digests: MemoryDigests::default(),
                mailer,
                facts: week_of_tours(),
                templates: Templates::defaults().unwrap(),
                links: Links::new("https://tours.example/tour", crate::domain::link::tests::key()).unwrap(),
            }
        }

        fn deps(&self) -> DigestDeps<'_> {
            DigestDeps {
                properties: &self.store,
                tours: &self.tours,
                analytics: &self.facts,
                digests: &self.digests,
                mailer: &self.mailer,
                templates: &self.templates,
                links: &self.links,
            }
        }
    }

    fn budget() -> TimeBudget {
        TimeBudget::lasting(
            std::time::Duration::from_secs(50),
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(2),
        )
    }

    fn week_of_tours() -> FixedFacts {
        // Tours of the week of 30 November 2026 at the demo property (Chicago).
        FixedFacts(facts(vec![
            tour(1, "2026-11-30 09:00", "2026-12-01 10:00", TourStatus::Completed),
            tour(2, "2026-11-30 09:00", "2026-12-02 11:00", TourStatus::NoShow),
        ]))
    }

    #[tokio::test]
    async fn each_propertys_digest_goes_once_from_monday_8_am_whatever_ticks_overlap() {
        let kit = Kit::new(FlakyMailer::default());
        let (deps, mailer, digests) = (kit.deps(), &kit.mailer, &kit.digests);
        assert_eq!(
            send_due_digests(&deps, chicago("2026-12-07 07:55"), &budget())
                .await
                .unwrap(),
            0
        );
        assert!(mailer.sent().is_empty(), "not before Monday 8 am");
        let at = chicago("2026-12-07 08:05");
        let (one, two) = (budget(), budget());
        let (a, b) = tokio::join!(send_due_digests(&deps, at, &one), send_due_digests(&deps, at, &two));
        assert_eq!(a.unwrap() + b.unwrap(), 1, "two ticks at once send it once");
        // The ticks of the rest of the week send nothing more, and claim nothing: one read tells them it is settled.
        let claims = digests.claims();
        assert_eq!(
            send_due_digests(&deps, chicago("2026-12-09 12:00"), &budget())
                .await
                .unwrap(),
            0
        );
        assert_eq!(digests.claims(), claims, "a settled digest is not claimed again");
        let sent = mailer.sent();
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0].subject.contains("30 November to 6 December 2026"),
            "{}",
            sent[0].subject
        );
        assert!(sent[0].text.contains("staff-rate?t="), "{}", sent[0].text);
        assert_eq!(digests.status(&demo().id, "2026-W49").as_deref(), Some("sent"));
    }

    #[tokio::test]
    async fn a_tick_without_the_time_for_a_digest_leaves_it_to_the_next() {
        let kit = Kit::new(FlakyMailer::default());
        let short = TimeBudget::lasting(
            DIGEST_LEAST,
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(2),
        );
        let at = chicago("2026-12-07 08:05");
        assert_eq!(send_due_digests(&kit.deps(), at, &short).await.unwrap(), 0);
        assert_eq!(kit.digests.status(&demo().id, "2026-W49"), None, "not even claimed");
        assert_eq!(send_due_digests(&kit.deps(), at, &budget()).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failed_send_is_tried_on_a_later_tick_and_a_quiet_week_is_skipped() {
        let kit = Kit::new(FlakyMailer::failing(1));
        let (deps, mailer, digests) = (kit.deps(), &kit.mailer, &kit.digests);
        let first = chicago("2026-12-07 08:05");
        assert_eq!(send_due_digests(&deps, first, &budget()).await.unwrap(), 0);
        assert_eq!(digests.status(&demo().id, "2026-W49").as_deref(), Some("pending"));
        // Not before its retry time; then once.
        let soon = first + Duration::minutes(5);
        assert_eq!(send_due_digests(&deps, soon, &budget()).await.unwrap(), 0);
        let later = first + DIGEST_RETRY_AFTER + Duration::minutes(1);
        assert_eq!(send_due_digests(&deps, later, &budget()).await.unwrap(), 1);
        assert_eq!((mailer.calls(), mailer.sent().len()), (2, 1));

        let quiet = FixedFacts(Facts::default());
        let deps = DigestDeps {
            analytics: &quiet,
            ..deps
        };
        let next_week = chicago("2026-12-14 09:00");
        let property = demo();
        let week = DigestWeek::due(property.time_zone, next_week).unwrap();
        assert_eq!(
            send_digest(&deps, &property, week, next_week, Duration::minutes(1))
                .await
                .unwrap(),
            DigestSent::Skipped("no tours that week".into())
        );
        assert_eq!(digests.status(&demo().id, "2026-W50").as_deref(), Some("skipped"));
        assert_eq!(mailer.sent().len(), 1);
    }
}
