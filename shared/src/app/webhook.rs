//! A change notice from ResMan arrives at the webhook: authenticate it, read it, and keep it exactly once.

use super::AppError;
use super::changes::{FeedDeps, NoticeEffect, apply_notice};
use crate::domain::notice::ChangeNotice;
use crate::domain::signature;
use crate::ports::{NoticeInbox, Recorded};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    Accepted(ChangeNotice, NoticeEffect),
    Duplicate,
}

pub struct WebhookDeps<'a> {
    pub inbox: &'a dyn NoticeInbox,
    pub feed: FeedDeps<'a>,
    /// The webhook secret's accepted values (current, and retired ones inside their grace).
    pub secrets: &'a [&'a [u8]],
}

/// Checks the signature over the raw body (and its age) before reading anything, applies the change to our
/// calendar, then records the notice under its `event_id`. Applying first is safe because applying is idempotent
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
    signature::verify_any(deps.secrets.iter().copied(), signature_header, body, now).map_err(|e| refused(e.into()))?;
    let notice = ChangeNotice::parse(body).map_err(|e| refused(e.into()))?;
    let effect = apply_notice(&deps.feed, &notice, now).await?;
    match deps.inbox.record_once(&notice, now).await? {
        Recorded::New => Ok(NoticeOutcome::Accepted(notice, effect)),
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

    fn deps<'a>(inbox: &'a MemoryInbox, store: &'a MemoryStore, tours: &'a MemoryTours) -> WebhookDeps<'a> {
        WebhookDeps {
            inbox,
            feed: FeedDeps {
                properties: store,
                calendar: store,
                tours,
                queue: tours,
            },
            secrets: &[SECRET],
        }
    }

    #[tokio::test]
    async fn a_signed_notice_is_accepted_once_and_its_redelivery_is_a_duplicate() {
        let (inbox, store, tours) = Default::default();
        let deps = deps(&inbox, &store, &tours);
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
        let deps = deps(&inbox, &store, &tours);
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
        let deps = deps(&inbox, &store, &tours);
        let b = br#"{"event_id":"e","status":"Confirmed","timestamp":"2026-12-01T16:00:00Z"}"#;
        let sig = signature::sign(SECRET, now().timestamp(), b);
        let err = receive_change_notice(&deps, Some(&sig), b, now()).await.unwrap_err();
        assert!(
            matches!(err, AppError::Invalid(ref f) if f.field == "appointment_id"),
            "{err:?}"
        );
    }
}
