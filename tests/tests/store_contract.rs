//! The store contract: one suite of scenarios, run against the in-memory fakes the use-case tests use
//! (`tour_core::app::fakes`) and against `DynamoStore` on DynamoDB Local. A use-case test is only as good as its fake:
//! when a fake drifts from what DynamoDB does (a condition it does not keep, a claim it does not honour), its run of
//! the scenario here fails, beside the DynamoDB run that passes.
//!
//! The scenarios: one booking per slot and per key, the key's record read back and lapsing at its expiry; a change
//! saved only over the version it read; the prospect's and the staff's ratings once per tour, what went wrong once;
//! the weekly digest's claims (lease, retry time, done); a message's claims (lease, done); a live hold keeping its
//! slot; the analytics' reads of a window (tours by start and by booking, ratings, refusals once per key and moment).

use chrono::{DateTime, Duration, Utc};
use integration_tests::stack::*;
use tour_core::app::fakes::{MemoryDigests, MemoryMessages, MemoryTours};
use tour_core::domain::link::{Rating, Score, StaffIssue, StaffRating};
use tour_core::domain::notify::{MessageKind, MessageRef};
use tour_core::domain::property::Property;
use tour_core::domain::{TourType, UtcWindow};
use tour_core::domain::{
    ids::{BookingId, ConversationId},
    lifecycle::TourStatus,
    record::{Holder, SyncStatus, TourRecord, lock_granules},
};
use tour_core::ports::{
    AnalyticsStore, BookingWrite, ChangeExtras, ChangeWrite, Claim, Consents, DigestClaim, DigestOutcome, DigestStore,
    HoldStore, HoldWrite, Locks, MessageStore, NewBooking, Rated, RatingStore, SendOutcome, StaffRated,
    StaffRatingStore, TourStore,
};

/// The ports under test, and how a scenario makes a tour owe messages (DynamoDB writes them with the booking; the
/// fake is told).
trait Subject: Sync {
    fn name(&self) -> &'static str;
    fn property(&self) -> &Property;
    fn tours(&self) -> &dyn TourStore;
    fn holds(&self) -> &dyn HoldStore;
    fn analytics(&self) -> &dyn AnalyticsStore;
    fn ratings(&self) -> &dyn RatingStore;
    fn staff_ratings(&self) -> &dyn StaffRatingStore;
    fn digests(&self) -> &dyn DigestStore;
    fn messages(&self) -> &dyn MessageStore;
    fn consents(&self) -> &dyn Consents;
    fn text_log(&self) -> &dyn tour_core::ports::TextLog;
    /// After a booking that owes `kinds` was created.
    fn owe(&self, tour: &TourRecord, kinds: &[MessageKind]);
}

struct Fakes {
    property: Property,
    tours: MemoryTours,
    digests: MemoryDigests,
    messages: MemoryMessages,
    text_log: tour_core::app::fakes::MemoryTextLog,
}

impl Subject for Fakes {
    fn name(&self) -> &'static str {
        "the fakes"
    }
    fn property(&self) -> &Property {
        &self.property
    }
    fn tours(&self) -> &dyn TourStore {
        &self.tours
    }
    fn holds(&self) -> &dyn HoldStore {
        &self.tours
    }
    fn analytics(&self) -> &dyn AnalyticsStore {
        &self.tours
    }
    fn ratings(&self) -> &dyn RatingStore {
        &self.tours
    }
    fn staff_ratings(&self) -> &dyn StaffRatingStore {
        &self.tours
    }
    fn digests(&self) -> &dyn DigestStore {
        &self.digests
    }
    fn messages(&self) -> &dyn MessageStore {
        &self.messages
    }
    fn consents(&self) -> &dyn Consents {
        &self.tours
    }
    fn text_log(&self) -> &dyn tour_core::ports::TextLog {
        &self.text_log
    }
    fn owe(&self, tour: &TourRecord, kinds: &[MessageKind]) {
        self.messages.add(tour, kinds);
    }
}

impl Subject for Stack {
    fn name(&self) -> &'static str {
        "DynamoDB Local"
    }
    fn property(&self) -> &Property {
        &self.property
    }
    fn tours(&self) -> &dyn TourStore {
        &self.store
    }
    fn holds(&self) -> &dyn HoldStore {
        &self.store
    }
    fn analytics(&self) -> &dyn AnalyticsStore {
        &self.store
    }
    fn ratings(&self) -> &dyn RatingStore {
        &self.store
    }
    fn staff_ratings(&self) -> &dyn StaffRatingStore {
        &self.store
    }
    fn digests(&self) -> &dyn DigestStore {
        &self.store
    }
    fn messages(&self) -> &dyn MessageStore {
        &self.store
    }
    fn consents(&self) -> &dyn Consents {
        &self.store
    }
    fn text_log(&self) -> &dyn tour_core::ports::TextLog {
        &self.store
    }
    fn owe(&self, _: &TourRecord, _: &[MessageKind]) {}
}

async fn subjects() -> (Fakes, std::sync::Arc<Stack>) {
    let stack = Stack::start().await;
    let fakes = Fakes {
        property: stack.property.clone(),
        tours: MemoryTours::default(),
        digests: MemoryDigests::default(),
        messages: MemoryMessages::default(),
        text_log: Default::default(),
    };
    (fakes, stack)
}

/// A new tour at the property's bookable date, `hour` o'clock local, with the first in-person agent.
fn new_tour(property: &Property, n: u128, hour: u32, key: &str) -> TourRecord {
    let date = bookable_date(property);
    let start =
        tour_core::domain::slots::resolve_local(property.time_zone, date.and_hms_opt(hour, 0, 0).unwrap()).unwrap();
    let agent = property.agents_for(TourType::InPerson).next().unwrap().id.clone();
    let window = UtcWindow::starting_at(start, Duration::minutes(45)).unwrap();
    TourRecord {
        booking_id: BookingId::from_uuid(uuid::Uuid::from_u128(n + u128::from(rand::random::<u64>()) * 1000)),
        conversation_id: ConversationId::parse(&format!("contract-{n}")).unwrap(),
        property_id: property.id.clone(),
        holder: Holder::Agent(agent.clone()),
        start: window.start(),
        end: window.end(),
        sync_status: SyncStatus::Pending,
        prospect_name: format!("Contract Prospect{n}"),
        prospect_email: format!("contract{n}@example.com"),
        idempotency_key: key.to_owned(),
        created_at: Utc::now(),
        resman_version: 0,
        callback_version: 0,
        ..tour_core::domain::update::tests::tour(TourStatus::Scheduled)
    }
}

fn booking(property: &Property, tour: &TourRecord, messages: &[MessageKind]) -> NewBooking {
    NewBooking {
        tour: tour.clone(),
        lock_granules: lock_granules(property, &tour.holder, &tour.window()),
        fingerprint: format!("fingerprint-{}", tour.idempotency_key),
        messages: messages.to_vec(),
        reminders: Vec::new(),
        hold: None,
        replaces: None,
        consent: None,
    }
}

async fn create(s: &dyn Subject, tour: &TourRecord, messages: &[MessageKind], now: DateTime<Utc>) -> BookingWrite {
    let written = s
        .tours()
        .create_booking(s.property(), &booking(s.property(), tour, messages), now)
        .await
        .unwrap();
    if written == BookingWrite::Created {
        s.owe(tour, messages);
    }
    written
}

async fn one_booking_per_slot_and_per_key(s: &dyn Subject) {
    let now = Utc::now();
    let who = s.name();
    let first = new_tour(s.property(), 1, 10, &format!("contract-key-{}", rand::random::<u32>()));
    assert_eq!(create(s, &first, &[], now).await, BookingWrite::Created, "{who}");
    // The same agent at the same time, under another key: the slot's locks refuse it.
    let rival = new_tour(s.property(), 2, 10, &format!("contract-key-{}", rand::random::<u32>()));
    assert_eq!(create(s, &rival, &[], now).await, BookingWrite::SlotTaken, "{who}");
    // Another time under the first key: the key's record refuses it.
    let again = new_tour(s.property(), 3, 11, &first.idempotency_key);
    assert_eq!(create(s, &again, &[], now).await, BookingWrite::KeyInUse, "{who}");
    // Nothing of the refused ones was written.
    assert!(s.tours().tour(&rival.booking_id).await.unwrap().is_none(), "{who}");
    assert!(s.tours().tour(&again.booking_id).await.unwrap().is_none(), "{who}");
    let record = s.tours().idempotency(&first.idempotency_key).await.unwrap().expect(who);
    assert_eq!(record.booking_id.as_ref(), Some(&first.booking_id), "{who}");
    assert!(record.is_live(now), "{who}");
    assert!(
        !record.is_live(now + Duration::days(2)),
        "{who}: a key's record lapses at its expiry, whatever TTL's lag"
    );
    let read = s.tours().tour(&first.booking_id).await.unwrap().expect(who);
    assert_eq!(
        (read.start, read.version, read.status),
        (first.start, 1, TourStatus::Scheduled),
        "{who}"
    );
}

async fn a_change_is_saved_only_over_the_version_it_read(s: &dyn Subject) {
    let now = Utc::now();
    let who = s.name();
    let tour = new_tour(s.property(), 4, 14, &format!("contract-key-{}", rand::random::<u32>()));
    assert_eq!(create(s, &tour, &[], now).await, BookingWrite::Created, "{who}");
    let confirmed = TourRecord {
        status: TourStatus::Confirmed,
        version: 2,
        ..tour.clone()
    };
    let save = |before: TourRecord, after: TourRecord| async move {
        s.tours()
            .save_change(s.property(), &before, &after, Locks::Take, ChangeExtras::default(), now)
            .await
            .unwrap()
    };
    assert_eq!(save(tour.clone(), confirmed.clone()).await, ChangeWrite::Saved, "{who}");
    // A second writer that read version 1 too: refused, and the first change stands.
    let cancelled = TourRecord {
        status: TourStatus::Cancelled,
        version: 2,
        ..tour.clone()
    };
    assert_eq!(save(tour.clone(), cancelled).await, ChangeWrite::Stale, "{who}");
    let read = s.tours().tour(&tour.booking_id).await.unwrap().expect(who);
    assert_eq!((read.status, read.version), (TourStatus::Confirmed, 2), "{who}");
}

async fn ratings_are_once_per_tour(s: &dyn Subject) {
    let now = Utc::now();
    let who = s.name();
    let tour = new_tour(s.property(), 5, 15, &format!("contract-key-{}", rand::random::<u32>()));
    assert_eq!(create(s, &tour, &[], now).await, BookingWrite::Created, "{who}");
    let score = |n| Score::try_from(n).unwrap();
    let first = Rating {
        score: score(4),
        at: now,
    };
    assert_eq!(
        s.ratings().record_rating(&tour, first).await.unwrap(),
        Rated::Recorded,
        "{who}"
    );
    let later = Rating {
        score: score(1),
        at: now,
    };
    assert_eq!(
        s.ratings().record_rating(&tour, later).await.unwrap(),
        Rated::Already(first),
        "{who}"
    );
    assert_eq!(
        s.ratings().rating(&tour.booking_id).await.unwrap(),
        Some(first),
        "{who}"
    );

    let issues = [StaffIssue::WrongTime];
    assert_eq!(
        s.staff_ratings()
            .record_went_wrong(&tour.booking_id, &issues)
            .await
            .unwrap(),
        None,
        "{who}: nothing to add to before a score"
    );
    let staff = StaffRating {
        score: score(2),
        at: now,
        went_wrong: Vec::new(),
    };
    assert_eq!(
        s.staff_ratings().record_staff_rating(&tour, &staff).await.unwrap(),
        StaffRated::Recorded,
        "{who}"
    );
    let other = StaffRating {
        score: score(5),
        ..staff.clone()
    };
    assert_eq!(
        s.staff_ratings().record_staff_rating(&tour, &other).await.unwrap(),
        StaffRated::Already(staff.clone()),
        "{who}"
    );
    let said = s
        .staff_ratings()
        .record_went_wrong(&tour.booking_id, &issues)
        .await
        .unwrap();
    assert_eq!(said.map(|r| r.went_wrong), Some(issues.to_vec()), "{who}");
    let again = s
        .staff_ratings()
        .record_went_wrong(&tour.booking_id, &[StaffIssue::Other])
        .await
        .unwrap();
    assert_eq!(again.map(|r| r.went_wrong), Some(issues.to_vec()), "{who}: said once");
}

async fn a_digest_is_claimed_by_one_tick_at_a_time_and_done_once(s: &dyn Subject) {
    let who = s.name();
    let now = Utc::now();
    let week = format!("2026-W{:02}", rand::random::<u8>() % 50 + 1);
    let property = &s.property().id;
    let digests = s.digests();
    let claim = |at: DateTime<Utc>| digests.claim_digest(property, &week, at, Duration::minutes(1));
    assert_eq!(claim(now).await.unwrap(), DigestClaim::Claimed(1), "{who}");
    assert_eq!(
        claim(now + Duration::seconds(30)).await.unwrap(),
        DigestClaim::Busy,
        "{who}: leased"
    );
    let after = now + Duration::minutes(15);
    let retry = DigestOutcome::Retry {
        error: "throttled".into(),
        after,
    };
    digests.finish_digest(property, &week, &retry, now).await.unwrap();
    assert_eq!(
        claim(after - Duration::seconds(1)).await.unwrap(),
        DigestClaim::Busy,
        "{who}: not before its retry"
    );
    assert_eq!(
        claim(after + Duration::seconds(1)).await.unwrap(),
        DigestClaim::Claimed(2),
        "{who}"
    );
    let sent = DigestOutcome::Sent {
        provider_message_id: "m-1".into(),
    };
    assert!(
        !digests.settled_digests(&week).await.unwrap().contains(property),
        "{who}: owed yet"
    );
    digests.finish_digest(property, &week, &sent, after).await.unwrap();
    assert!(
        digests.settled_digests(&week).await.unwrap().contains(property),
        "{who}: settled"
    );
    assert_eq!(
        claim(after + Duration::hours(3)).await.unwrap(),
        DigestClaim::Done,
        "{who}"
    );
}

async fn a_message_is_claimed_by_one_sender_at_a_time_and_sent_once(s: &dyn Subject) {
    let who = s.name();
    let now = Utc::now();
    let tour = new_tour(s.property(), 6, 16, &format!("contract-key-{}", rand::random::<u32>()));
    assert_eq!(
        create(s, &tour, &[MessageKind::Confirmation], now).await,
        BookingWrite::Created,
        "{who}"
    );
    let message = MessageRef {
        booking_id: tour.booking_id.clone(),
        kind: MessageKind::Confirmation,
        version: tour.version,
    };
    let claim = |at: DateTime<Utc>| s.messages().claim_message(&message, at, Duration::minutes(1));
    assert!(matches!(claim(now).await.unwrap(), Claim::Claimed(_, 1)), "{who}");
    assert_eq!(
        claim(now + Duration::seconds(30)).await.unwrap(),
        Claim::Busy,
        "{who}: leased"
    );
    let retry = SendOutcome::Retry {
        error: "throttled".into(),
    };
    s.messages().finish_message(&message, &retry, now).await.unwrap();
    assert!(
        matches!(claim(now + Duration::seconds(31)).await.unwrap(), Claim::Claimed(_, 2)),
        "{who}: a retry releases the claim"
    );
    let sent = SendOutcome::Sent {
        provider_message_id: "m-1".into(),
        invite: None,
    };
    assert!(
        s.messages().finish_message(&message, &sent, now).await.unwrap(),
        "{who}"
    );
    assert_eq!(claim(now + Duration::hours(2)).await.unwrap(), Claim::Done, "{who}");
    let unknown = MessageRef {
        kind: MessageKind::Rebook,
        ..message.clone()
    };
    assert_eq!(
        s.messages()
            .claim_message(&unknown, now, Duration::minutes(1))
            .await
            .unwrap(),
        Claim::Missing,
        "{who}"
    );
}

fn hold_of(tour: &TourRecord, conversation: &str, held_until: DateTime<Utc>) -> tour_core::domain::hold::SlotHold {
    tour_core::domain::hold::SlotHold {
        token: tour_core::domain::HoldToken::parse(&format!("hold_{}", uuid::Uuid::new_v4().simple())).unwrap(),
        conversation_id: ConversationId::parse(conversation).unwrap(),
        property_id: tour.property_id.clone(),
        tour_type: tour.tour_type,
        holder: tour.holder.clone(),
        start: tour.start,
        end: tour.end,
        held_until,
        place: None,
    }
}

async fn a_live_hold_keeps_its_slot_from_other_conversations_and_bookings_until_it_lapses(s: &dyn Subject) {
    let who = s.name();
    let now = Utc::now();
    let slot = new_tour(s.property(), 7, 9, &format!("contract-key-{}", rand::random::<u32>()));
    let conversation = format!("contract-hold-{}", rand::random::<u32>());
    let mine = hold_of(&slot, &conversation, now + Duration::minutes(5));
    let place = |hold, previous, at| s.holds().place_hold(s.property(), hold, previous, at);
    assert_eq!(place(&mine, None, now).await.unwrap(), HoldWrite::Placed, "{who}");
    assert_eq!(
        s.holds().hold(&mine.conversation_id).await.unwrap().as_ref(),
        Some(&mine),
        "{who}"
    );
    // Another conversation, and a booking under another key: the live hold keeps the slot.
    let theirs = hold_of(&slot, &format!("{conversation}-other"), now + Duration::minutes(5));
    assert_eq!(place(&theirs, None, now).await.unwrap(), HoldWrite::SlotTaken, "{who}");
    assert_eq!(create(s, &slot, &[], now).await, BookingWrite::SlotTaken, "{who}");
    // Once it lapsed, the other conversation gets the slot.
    let later = now + Duration::minutes(6);
    let theirs = hold_of(&slot, &format!("{conversation}-other"), later + Duration::minutes(5));
    assert_eq!(place(&theirs, None, later).await.unwrap(), HoldWrite::Placed, "{who}");
}

async fn the_analytics_read_a_windows_tours_ratings_and_refusals_once_each(s: &dyn Subject) {
    let who = s.name();
    let now = Utc::now();
    let key = || format!("contract-key-{}", rand::random::<u32>());
    let (a, b) = (
        new_tour(s.property(), 8, 10, &key()),
        new_tour(s.property(), 9, 11, &key()),
    );
    for tour in [&a, &b] {
        assert_eq!(create(s, tour, &[], now).await, BookingWrite::Created, "{who}");
    }
    let score = Score::try_from(5).unwrap();
    s.ratings().record_rating(&a, Rating { score, at: now }).await.unwrap();
    let staff = StaffRating {
        score,
        at: now,
        went_wrong: vec![StaffIssue::Other],
    };
    s.staff_ratings().record_staff_rating(&b, &staff).await.unwrap();
    // A retry of one refused request records one refusal.
    let refused = key();
    for _ in 0..2 {
        s.tours()
            .record_slot_refusal(&s.property().id, &refused, now)
            .await
            .unwrap();
    }
    // From an hour ago to the end of the tours' day: both bookings, both tours, each rating, the refusal.
    let window = UtcWindow::new(now - Duration::hours(1), a.end + Duration::hours(12)).unwrap();
    let mut facts = s.analytics().facts(&s.property().id, window).await.unwrap();
    // The stack's table may hold other tests' tours of this property: keep this scenario's.
    let ours = |id: &BookingId| id == &a.booking_id || id == &b.booking_id;
    facts.tours_by_start.retain(|t| ours(&t.booking_id));
    facts.tours_by_booking.retain(|t| ours(&t.booking_id));
    facts.ratings.retain(|(id, _)| ours(id));
    facts.staff_ratings.retain(|(id, _)| ours(id));
    let mut by_start: Vec<_> = facts.tours_by_start.iter().map(|t| t.booking_id.clone()).collect();
    by_start.sort();
    let mut expected = vec![a.booking_id.clone(), b.booking_id.clone()];
    expected.sort();
    assert_eq!(by_start, expected, "{who}");
    assert_eq!(facts.tours_by_booking.len(), 2, "{who}");
    assert_eq!(facts.ratings, vec![(a.booking_id.clone(), 5)], "{who}");
    assert_eq!(facts.staff_ratings, vec![(b.booking_id.clone(), staff)], "{who}");
    assert_eq!(
        facts.refusals.iter().filter(|r| r.at == now).count(),
        1,
        "{who}: once per key and moment"
    );
    // A window that ends before the tours' day holds the bookings, not the tours.
    let early = UtcWindow::new(now - Duration::hours(1), now + Duration::minutes(1)).unwrap();
    if a.start > early.end() {
        let facts = s.analytics().facts(&s.property().id, early).await.unwrap();
        assert!(!facts.tours_by_start.iter().any(|t| ours(&t.booking_id)), "{who}");
        assert_eq!(
            facts.tours_by_booking.iter().filter(|t| ours(&t.booking_id)).count(),
            2,
            "{who}"
        );
    }
}

/// A grant comes with its booking (once, however often the booking is retried), a later revocation outweighs it, and
/// agreeing again restores it; another number, or the same number at another property, has none.
async fn consent_is_kept_per_number_and_property_and_the_latest_event_decides(s: &dyn Subject) {
    use tour_core::domain::consent::{ConsentChange, ConsentEvent, ConsentSource, ConsentState, SmsConsent};
    let who = s.name();
    let now = Utc::now();
    let mut tour = new_tour(
        s.property(),
        40,
        15,
        &format!("contract-consent-{}", rand::random::<u32>()),
    );
    let phone = tour_core::domain::Phone::parse(&format!("+1512555{:04}", rand::random::<u16>() % 10_000)).unwrap();
    tour.prospect_phone = phone.expose().to_owned();
    let agreed = SmsConsent {
        words: "Text me about my tour. Reply STOP to stop.".into(),
        agreed_at: now - Duration::minutes(3),
    };
    let grant = ConsentEvent::granted(
        tour.property_id.clone(),
        phone.clone(),
        &agreed,
        tour.conversation_id.clone(),
        tour.booking_id.clone(),
    );
    let mut with_consent = booking(s.property(), &tour, &[]);
    with_consent.consent = Some(grant.clone());
    let written = s
        .tours()
        .create_booking(s.property(), &with_consent, now)
        .await
        .unwrap();
    assert_eq!(written, BookingWrite::Created, "{who}");
    s.consents().record_consent(&grant).await.unwrap();
    let record = s.consents().consent(&tour.property_id, &phone).await.unwrap();
    assert_eq!(record.events, vec![grant.clone()], "{who}: the grant, once, as given");
    assert_eq!(
        record.state(),
        ConsentState::Granted {
            since: agreed.agreed_at
        },
        "{who}"
    );
    let other = tour_core::domain::Phone::parse("+15125559999").unwrap();
    let elsewhere = tour_core::domain::ResManPropertyId::parse("CONTRACT-ELSEWHERE").unwrap();
    assert_eq!(
        s.consents().consent(&tour.property_id, &other).await.unwrap().state(),
        ConsentState::None,
        "{who}"
    );
    assert_eq!(
        s.consents().consent(&elsewhere, &phone).await.unwrap().state(),
        ConsentState::None,
        "{who}"
    );
    let event = |minutes: i64, change: ConsentChange| ConsentEvent {
        property_id: tour.property_id.clone(),
        phone: phone.clone(),
        at: now + Duration::minutes(minutes),
        change,
        source: ConsentSource::TextReply,
    };
    s.consents()
        .record_consent(&event(1, ConsentChange::Revoked { by: "STOP".into() }))
        .await
        .unwrap();
    let state = s.consents().consent(&tour.property_id, &phone).await.unwrap().state();
    assert_eq!(
        state,
        ConsentState::Revoked {
            since: now + Duration::minutes(1)
        },
        "{who}"
    );
    s.consents()
        .record_consent(&event(2, ConsentChange::Granted { words: "START".into() }))
        .await
        .unwrap();
    let record = s.consents().consent(&tour.property_id, &phone).await.unwrap();
    assert!(record.state().may_text(), "{who}: START restores it");
    assert_eq!(record.events.len(), 3, "{who}");
}

/// A reply names our text when the service knows it, else our latest text to its number places it; a reply is
/// marked applied once.
async fn a_reply_finds_the_tour_of_the_text_it_answers_or_of_the_numbers_latest_and_is_applied_once(s: &dyn Subject) {
    use tour_core::ports::SentText;
    let who = s.name();
    let until = Utc::now() + Duration::days(30);
    let phone = tour_core::domain::Phone::parse(&format!("+1737555{:04}", rand::random::<u16>() % 10_000)).unwrap();
    let (first, second) = (
        BookingId::from_uuid(uuid::Uuid::new_v4()),
        BookingId::from_uuid(uuid::Uuid::new_v4()),
    );
    let tag = rand::random::<u32>();
    let (one, two) = (format!("text-{tag}-1"), format!("text-{tag}-2"));
    for (booking, id) in [(&first, &one), (&second, &two)] {
        let sent = SentText {
            booking_id: booking.clone(),
            to: phone.clone(),
            provider_message_id: id.clone(),
            until,
        };
        s.text_log().text_sent(&sent).await.unwrap();
    }
    let log = s.text_log();
    assert_eq!(
        log.replied_tour(Some(&one), &phone).await.unwrap(),
        Some(first.clone()),
        "{who}"
    );
    assert_eq!(
        log.replied_tour(Some(&two), &phone).await.unwrap(),
        Some(second.clone()),
        "{who}"
    );
    assert_eq!(
        log.replied_tour(None, &phone).await.unwrap(),
        Some(second.clone()),
        "{who}: the latest"
    );
    assert_eq!(
        log.replied_tour(Some("unknown"), &phone).await.unwrap(),
        Some(second),
        "{who}"
    );
    let stranger = tour_core::domain::Phone::parse("+17375550000").unwrap();
    assert_eq!(log.replied_tour(None, &stranger).await.unwrap(), None, "{who}");
    let inbound = format!("in-{tag}");
    assert!(!log.reply_applied(&inbound).await.unwrap(), "{who}");
    log.mark_reply_applied(&inbound, Utc::now()).await.unwrap();
    assert!(log.reply_applied(&inbound).await.unwrap(), "{who}");
}

/// Each scenario against both subjects: the fake first, so a drift names the fake.
macro_rules! contract {
    ($($scenario:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $scenario() {
            let (fakes, stack) = subjects().await;
            super::$scenario(&fakes).await;
            super::$scenario(stack.as_ref()).await;
        }
    )*};
}

mod both {
    contract!(
        one_booking_per_slot_and_per_key,
        a_change_is_saved_only_over_the_version_it_read,
        ratings_are_once_per_tour,
        a_digest_is_claimed_by_one_tick_at_a_time_and_done_once,
        a_message_is_claimed_by_one_sender_at_a_time_and_sent_once,
        a_live_hold_keeps_its_slot_from_other_conversations_and_bookings_until_it_lapses,
        the_analytics_read_a_windows_tours_ratings_and_refusals_once_each,
        consent_is_kept_per_number_and_property_and_the_latest_event_decides,
        a_reply_finds_the_tour_of_the_text_it_answers_or_of_the_numbers_latest_and_is_applied_once,
    );
    use super::subjects;
}
