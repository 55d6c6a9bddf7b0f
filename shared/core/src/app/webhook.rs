//! A change notice from ResMan arrives at the webhook: authenticate it, read it, and keep it exactly once.

use super::AppError;
use super::changes::{FeedDeps, NoticeEffect, apply_notice};
use crate::domain::access::Relay;
use crate::domain::notice::{ChangeNotice, MAX_NOTICE_BYTES};
use crate::domain::signature;
use crate::ports::{NoticeInbox, Recorded};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    Accepted(Box<ChangeNotice>, NoticeEffect),
    Duplicate,
}

pub struct WebhookDeps<'a> {
    pub inbox: &'a dyn NoticeInbox,
    pub feed: FeedDeps<'a>,
    /// The relays accepted now (current, and retired secrets inside their grace), each bound to its accounts.
    pub relays: &'a [Relay],
}

/// Checks the body's size, then the signature over the raw body (and its age) before reading anything; applies the
/// change to our calendar if the relay that signed it may speak for the property, then records the notice under its
/// `event_id`. Applying first is safe because applying is idempotent
/// (a description older than what we hold changes nothing); it means a notice whose application failed is applied
/// when it is delivered again instead of being acknowledged as a duplicate.
pub async fn receive_change_notice(
    deps: &WebhookDeps<'_>,
    signature_header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<NoticeOutcome, AppError> {
    let refused = |e: AppError| {
        // What the operators watch: a burst means a wrong secret or someone knocking.
        crate::metrics::count(crate::metrics::Metric::WebhookRefusals);
        e
    };
    if body.len() > MAX_NOTICE_BYTES {
        return Err(refused(AppError::TooLarge(MAX_NOTICE_BYTES)));
    }
    let relay = signature::verify_any(
        deps.relays.iter().map(|r| r.secret.as_slice()),
        signature_header,
        body,
        now,
    )
    .map(|i| &deps.relays[i])
    .map_err(|e| refused(e.into()))?;
    let notice = ChangeNotice::parse(body).map_err(|e| refused(e.into()))?;
    let effect = apply_notice(&deps.feed, &notice, &relay.accounts, now)
        .await
        .map_err(|e| match e {
            AppError::Forbidden(_) => {
                tracing::warn!(relay = %relay.name, appointment_id = %notice.appointment_id, "a relay reported on a property outside its accounts; refused");
                refused(e)
            }
            other => other,
        })?;
    match deps.inbox.record_once(&notice, now).await? {
        Recorded::New => Ok(NoticeOutcome::Accepted(Box::new(notice), effect)),
        Recorded::AlreadySeen => Ok(NoticeOutcome::Duplicate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::{MemoryStore, MemoryTours};
    use crate::ports::StoreError;
    use async_trait::async_trait;
    use chrono::TimeZone;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemoryInbox(Mutex<HashSet<String>>);

    #[async_trait]
    impl NoticeInbox for MemoryInbox {
        async fn record_once(&self, notice: &ChangeNotice, _now: DateTime<Utc>) -> Result<Recorded, StoreError> {
            let mut seen = self.0.lock().map_err(|_| StoreError::Unavailable("poisoned".into()))?;
            Ok(if seen.insert(notice.event_id.clone()) {
                Recorded::New
            } else {
                Recorded::AlreadySeen
            })
        }
    }

    const SECRET: &[u8] = b"0123456789abcdef";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 16, 0, 0).unwrap()
    }

    fn body(event_id: &str) -> Vec<u8> {
        format!(r#"{{"event_id":"{event_id}","appointment_id":"A-1","status":"Cancelled","updated_fields":["status"],"staff_member":"E1","timestamp":"2026-12-01T16:00:00Z"}}"#).into_bytes()
    }

    fn relays() -> Vec<Relay> {
        Relay::parse_all(std::str::from_utf8(SECRET).unwrap()).unwrap()
    }

    fn deps<'a>(
        inbox: &'a MemoryInbox,
        store: &'a MemoryStore,
        tours: &'a MemoryTours,
        relays: &'a [Relay],
    ) -> WebhookDeps<'a> {
        WebhookDeps {
            inbox,
            feed: FeedDeps {
                properties: store,
                calendar: store,
                tours,
                queue: tours,
            },
            relays,
        }
    }

    #[tokio::test]
    async fn a_signed_notice_is_accepted_once_and_its_redelivery_is_a_duplicate() {
        let (inbox, store, tours) = Default::default();
        let relays = relays();
        let deps = deps(&inbox, &store, &tours, &relays);
        let b = body("ev-1");
        let sig = signature::sign(SECRET, now().timestamp(), &b);
        let first = receive_change_notice(&deps, Some(&sig), &b, now()).await.unwrap();
        assert!(
            matches!(first, NoticeOutcome::Accepted(ref n, NoticeEffect::LeftToPoller) if n.appointment_id.as_str() == "A-1")
        );
        let again = receive_change_notice(&deps, Some(&sig), &b, now()).await.unwrap();
        assert_eq!(again, NoticeOutcome::Duplicate);
    }

    #[tokio::test]
    async fn an_unsigned_or_stale_notice_is_refused_before_it_is_read_or_kept() {
        let (inbox, store, tours) = Default::default();
        let relays = relays();
        let deps = deps(&inbox, &store, &tours, &relays);
        let b = body("ev-2");
        let stale = signature::sign(SECRET, now().timestamp() - 600, &b);
        let (unsigned, lines) = crate::metrics::capture(receive_change_notice(&deps, None, &b, now())).await;
        assert!(matches!(
            unsigned,
            Err(AppError::BadSignature(signature::SignatureError::Missing))
        ));
        assert_eq!(crate::metrics::names(&lines), vec!["WebhookRefusals"]);
        assert!(matches!(
            receive_change_notice(&deps, Some(&stale), &b, now()).await,
            Err(AppError::BadSignature(signature::SignatureError::Stale))
        ));
        assert!(inbox.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_signed_but_malformed_notice_names_the_field() {
        let (inbox, store, tours) = Default::default();
        let relays = relays();
        let deps = deps(&inbox, &store, &tours, &relays);
        let b = br#"{"event_id":"e","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z"}"#;
        let sig = signature::sign(SECRET, now().timestamp(), b);
        let err = receive_change_notice(&deps, Some(&sig), b, now()).await.unwrap_err();
        assert!(
            matches!(err, AppError::Invalid(ref f) if f.field == "appointment_id"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_before_it_is_hashed_or_read() {
        let (inbox, store, tours) = Default::default();
        let relays = relays();
        let deps = deps(&inbox, &store, &tours, &relays);
        let big = vec![b' '; MAX_NOTICE_BYTES + 1];
        // Signed correctly, and still refused on its size alone.
        let sig = signature::sign(SECRET, now().timestamp(), &big);
        let (outcome, lines) = crate::metrics::capture(receive_change_notice(&deps, Some(&sig), &big, now())).await;
        assert!(
            matches!(outcome, Err(AppError::TooLarge(MAX_NOTICE_BYTES))),
            "{outcome:?}"
        );
        assert_eq!(crate::metrics::names(&lines), vec!["WebhookRefusals"]);
        assert!(inbox.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_relay_may_report_only_on_its_own_companies_properties() {
        use crate::domain::calendar::MirroredAppointment;
        use crate::domain::resman::TourEventStatus;
        use crate::ports::CalendarStore;
        let store = MemoryStore::with_property(crate::domain::property::tests::demo());
        let (inbox, tours) = Default::default();
        let relays = Relay::parse_all(
            r#"[{"name":"riverside","accounts":[401],"secret":"riverside-secret-0123"},
                {"name":"home","accounts":["default"],"secret":"home-secret-0123456"}]"#,
        )
        .unwrap();
        let deps = deps(&inbox, &store, &tours, &relays);
        let property = crate::domain::property::tests::demo();
        let appointment = crate::domain::AppointmentId::parse("A-1").unwrap();
        let at = now() + chrono::Duration::days(1);
        let window = crate::domain::UtcWindow::starting_at(at, chrono::Duration::minutes(30)).unwrap();
        store
            .apply_mirror(
                &property,
                &MirroredAppointment {
                    appointment_id: appointment.clone(),
                    agent: None,
                    window,
                    status: TourEventStatus::Scheduled,
                    as_of: now() - chrono::Duration::hours(1),
                },
            )
            .await
            .unwrap();
        let b = body("ev-scope");
        let by = |secret: &str| signature::sign(secret.as_bytes(), now().timestamp(), &b);
        let (refused, lines) = crate::metrics::capture(receive_change_notice(
            &deps,
            Some(&by("riverside-secret-0123")),
            &b,
            now(),
        ))
        .await;
        assert!(matches!(refused, Err(AppError::Forbidden(_))), "{refused:?}");
        assert_eq!(crate::metrics::names(&lines), vec!["WebhookRefusals"]);
        let (_, kept) = store.mirrored(&appointment).await.unwrap().unwrap();
        assert!(kept.holds_time(), "the other company's relay changed nothing");
        assert!(inbox.0.lock().unwrap().is_empty(), "nor was the notice kept as seen");
        // The property's own company's relay is heard.
        let accepted = receive_change_notice(&deps, Some(&by("home-secret-0123456")), &b, now())
            .await
            .unwrap();
        assert!(matches!(accepted, NoticeOutcome::Accepted(..)), "{accepted:?}");
        let (_, cancelled) = store.mirrored(&appointment).await.unwrap().unwrap();
        assert!(!cancelled.holds_time());
    }
}
