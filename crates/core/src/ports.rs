//! The traits at the I/O seams. Each has one adapter under `adapters/` and in-memory fakes in tests.

use crate::domain::resman::{
    Employee, NotePost, PostedTour, Prospect, ProspectLookup, ProspectSource, ProspectTourPost, ResManSite,
};
use crate::domain::{AppointmentId, ResManPropertyId, UtcWindow};
use async_trait::async_trait;
use std::time::Duration;

/// Why a ResMan call failed, classed so a caller can decide what to do next.
///
/// - `Rejected` is ResMan's own refusal (`Status=Error`): final, not retried; nothing was written.
/// - `Unreachable` means the request never reached ResMan (connection refused, DNS): retry; nothing was written.
/// - `Timeout`, `Server` (HTTP 5xx) and `Malformed` (an answer we cannot read, such as a proxy's HTML page) are
///   retryable, and after a **write** they mean "unknown whether it happened", never "it did not happen":
///   ResMan may have applied the write and lost the answer. See [`ResManError::may_have_applied`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResManError {
    #[error("ResMan refused the request: {description}")]
    Rejected { description: String },
    #[error("ResMan could not be reached: {0}")]
    Unreachable(String),
    #[error("ResMan did not answer within {0:?}")]
    Timeout(Duration),
    #[error("ResMan answered HTTP {status}")]
    Server { status: u16 },
    #[error("ResMan's answer could not be read: {0}")]
    Malformed(String),
}

impl ResManError {
    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// The class the operators' metrics count it under (`ErrorClass`).
    pub fn class(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "rejected",
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Server { .. } => "server",
            Self::Malformed(_) => "malformed",
        }
    }

    /// After a write: whether ResMan may have applied it despite the error.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Server { .. } | Self::Malformed(_))
    }
}

/// ResMan, in our domain's terms. One implementation talks HTTP to ResMan (or its sandbox).
///
/// Writes are **not idempotent** in ResMan: callers search before they create, and after a write that
/// [`ResManError::may_have_applied`], they look for their booking reference before posting again.
#[async_trait]
pub trait ResManGateway: Send + Sync {
    /// Every call names its [`ResManSite`]: the property and its account, whose credentials the call carries (and
    /// no other account's).
    ///
    /// The property's employees; leasing agents are those with `is_leasing`.
    async fn employees(&self, site: &ResManSite) -> Result<Vec<Employee>, ResManError>;

    /// The property's lead sources.
    async fn prospect_sources(&self, site: &ResManSite) -> Result<Vec<ProspectSource>, ResManError>;

    /// Prospects matching an e-mail, phone or id, with all their events.
    async fn find_prospects(&self, site: &ResManSite, lookup: &ProspectLookup) -> Result<Vec<Prospect>, ResManError>;

    /// Creates a prospect (or adds to an existing one) with one tour event; a tour event with an id moves or
    /// re-statuses that tour. The tour's start is sent in UTC.
    async fn post_tour(&self, site: &ResManSite, post: &ProspectTourPost) -> Result<PostedTour, ResManError>;

    /// Adds a note (an `Other` event) to a prospect.
    async fn add_note(&self, site: &ResManSite, note: &NotePost) -> Result<AppointmentId, ResManError>;

    /// Every prospect modified inside the window, with all its events. A window ResMan finds too wide is split
    /// and the halves read in turn, so the caller sees one answer for the whole window.
    async fn changed_prospects(&self, site: &ResManSite, window: UtcWindow) -> Result<Vec<Prospect>, ResManError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_is_final_and_only_lost_answers_may_have_applied() {
        let refused = ResManError::Rejected {
            description: "no".into(),
        };
        let unreachable = ResManError::Unreachable("refused".into());
        let timeout = ResManError::Timeout(Duration::from_secs(1));
        let server = ResManError::Server { status: 503 };
        let malformed = ResManError::Malformed("html".into());
        assert!(!refused.is_retryable() && !refused.may_have_applied());
        assert!(unreachable.is_retryable() && !unreachable.may_have_applied());
        for lost in [timeout, server, malformed] {
            assert!(lost.is_retryable() && lost.may_have_applied(), "{lost}");
        }
    }
}

/// Why a store call failed. `Unavailable` after a write means "unknown whether it happened", like ResMan's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored item is not what we wrote: {0}")]
    Corrupt(String),
}

/// Whether a notice was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    AlreadySeen,
}

/// The log of change notices from ResMan, one entry per `event_id` (a conditional write keeps it so), kept a week.
#[async_trait]
pub trait NoticeInbox: Send + Sync {
    async fn record_once(
        &self,
        notice: &crate::domain::notice::ChangeNotice,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Recorded, StoreError>;
}

/// Property configurations, as loaded by operators.
#[async_trait]
pub trait PropertyStore: Send + Sync {
    async fn property(&self, id: &ResManPropertyId) -> Result<Option<crate::domain::property::Property>, StoreError>;
    async fn properties(&self) -> Result<Vec<crate::domain::property::Property>, StoreError>;
    async fn save_property(&self, property: &crate::domain::property::Property) -> Result<(), StoreError>;
}

/// What applying a mirror record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorOutcome {
    /// Busy time was added, moved or released.
    Changed,
    /// Same as what we had, or older than what we had: nothing written.
    Unchanged,
}

/// Busy time by property, and the mirror of ResMan's calendar that feeds it.
///
/// Every change of busy time also bumps the availability generation of the local dates it touches (in the same
/// transaction), which is what invalidates cached availability.
#[async_trait]
pub trait CalendarStore: Send + Sync {
    /// Busy time (tours, holds, mirrored appointments) of a property overlapping `window`. Needs only the
    /// property's id, so it can be read at the same time as the property's configuration.
    async fn busy_in(
        &self,
        property: &ResManPropertyId,
        window: UtcWindow,
    ) -> Result<Vec<crate::domain::slots::Busy>, StoreError>;

    /// The mirror record of an appointment, if we have one.
    async fn mirrored(
        &self,
        appointment: &AppointmentId,
    ) -> Result<Option<(ResManPropertyId, crate::domain::calendar::MirroredAppointment)>, StoreError>;

    /// Records an appointment as last seen in ResMan: adds, moves or releases its busy time, unless we already
    /// hold a description as new or newer.
    async fn apply_mirror(
        &self,
        property: &crate::domain::property::Property,
        appointment: &crate::domain::calendar::MirroredAppointment,
    ) -> Result<MirrorOutcome, StoreError>;

    /// Where the change poller stopped for a property.
    async fn poll_checkpoint(
        &self,
        property: &ResManPropertyId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;

    /// Moves the checkpoint from `from` (what was read) to `to`; fails if another poller moved it meanwhile.
    async fn advance_checkpoint(
        &self,
        property: &ResManPropertyId,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;
}

/// One consistent read of everything an availability answer from the cache needs.
#[derive(Debug, Clone)]
pub struct DayRead {
    /// The property's configuration, `None` for a property we do not serve.
    pub property: Option<crate::domain::property::Property>,
    /// The date's current generation: what a fresh computation must be stamped with.
    pub generation: u64,
    /// The cached answer, when it is of the current generation and not expired.
    pub fresh: Option<String>,
}

/// The availability cache (a TTL item per property, date and tour type).
#[async_trait]
pub trait AvailabilityCache: Send + Sync {
    /// The property's configuration, the date's generation and the cached answer, in one consistent read: on a
    /// cache hit this is the request's only store call.
    async fn read_day(
        &self,
        property: &ResManPropertyId,
        date: chrono::NaiveDate,
        tour_type: crate::domain::TourType,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<DayRead, StoreError>;

    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        property: &ResManPropertyId,
        date: chrono::NaiveDate,
        tour_type: crate::domain::TourType,
        generation: u64,
        body: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;

    /// Makes every cached answer for these dates stale.
    async fn invalidate(&self, property: &ResManPropertyId, dates: &[chrono::NaiveDate]) -> Result<(), StoreError>;
}

/// A booking to write in one transaction: the tour, its slot locks, its busy time, the idempotency record and an
/// outbox item for the ResMan write.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub tour: crate::domain::booking::TourRecord,
    pub lock_granules: Vec<chrono::DateTime<chrono::Utc>>,
    pub fingerprint: String,
    /// The messages the booking owes (its confirmation, the staff alert).
    pub messages: Vec<crate::domain::notify::MessageKind>,
    /// Its reminders, waiting for their time.
    pub reminders: Vec<crate::domain::notify::ReminderDue>,
    /// The conversation's slot hold that the booking presented: the booking may take that hold's locks, and the
    /// hold is gone once the booking is written (what it held beyond the tour is freed).
    pub hold: Option<crate::domain::hold::SlotHold>,
    /// The earlier booking whose idempotency record this one takes over (its tour was cancelled since): the record
    /// is replaced only while it still names that booking.
    pub replaces: Option<crate::domain::booking::BookingId>,
}

/// What the booking transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingWrite {
    Created,
    /// A slot lock was already held: someone else has that time.
    SlotTaken,
    /// The idempotency key is already recorded: this request (or another with the same key) came first.
    KeyInUse,
}

/// A request already seen under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub booking_id: Option<crate::domain::booking::BookingId>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The saved answer (HTTP status and JSON body), once the first request finished.
    pub response: Option<(u16, String)>,
    /// When the record lapses. From then on the key is free, whenever TTL gets round to deleting it.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl IdempotencyRecord {
    /// Whether the record still stands at `now` (TTL deletes an expired item late, sometimes by a day).
    pub fn is_live(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// What saving a tour's change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeWrite {
    Saved,
    /// A lock of the new time is held by another tour.
    SlotTaken,
    /// The tour changed since it was read (its version moved): read it again and decide again.
    Stale,
    /// The idempotency key is already recorded.
    KeyInUse,
}

/// The answer a retry with the same idempotency key gets, saved with the change it answers.
#[derive(Debug, Clone)]
pub struct SavedAnswer {
    pub key: String,
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// What a change writes beside the tour, in the same transaction: the answer a retry with the same idempotency key
/// gets, and the messages the change owes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeExtras<'a> {
    pub answer: Option<&'a SavedAnswer>,
    pub messages: &'a [crate::domain::notify::MessageKind],
    /// When the tour's time (or whether it still happens) changed: the reminders to drop (those of its old time),
    /// and those to set (of its new time).
    pub reminders: Option<(
        &'a [crate::domain::notify::ReminderDue],
        &'a [crate::domain::notify::ReminderDue],
    )>,
}

/// How a change's new time takes its slot locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locks {
    /// Only if no other tour holds them (the chatbot's moves).
    Take,
    /// Taken whatever holds them: ResMan's calendar already has the tour there (a staff move), so ours follows.
    Follow,
}

/// Bookings, their idempotency records and the conversation context.
#[async_trait]
pub trait TourStore: Send + Sync {
    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Writes everything of a new booking atomically, or nothing.
    async fn create_booking(
        &self,
        property: &crate::domain::property::Property,
        booking: &NewBooking,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<BookingWrite, StoreError>;

    /// Saves the answer a retry with the same key will get.
    async fn finish_idempotency(&self, key: &str, status: u16, body: &str) -> Result<(), StoreError>;

    /// Saves the ResMan side of a new booking (as [`TourStore::save_sync`]) and the answer a retry with the same
    /// key will get, in one write.
    async fn finish_booking(
        &self,
        tour: &crate::domain::booking::TourRecord,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError>;

    async fn tour(
        &self,
        id: &crate::domain::booking::BookingId,
    ) -> Result<Option<crate::domain::booking::TourRecord>, StoreError>;

    /// The tour that ResMan knows by this appointment id (once its booking reached ResMan).
    async fn tour_by_resman_id(
        &self,
        appointment: &AppointmentId,
    ) -> Result<Option<crate::domain::booking::TourRecord>, StoreError>;

    /// Saves the side-effect state of a tour (sync status, ResMan's ids and version, the callback's version, last
    /// error) if the tour is still at `tour.version`; with `settled`, nothing more is owed and the outbox item goes.
    /// `false`: the tour changed meanwhile (its newer version owes its own writes).
    async fn save_sync(&self, tour: &crate::domain::booking::TourRecord, settled: bool) -> Result<bool, StoreError>;

    /// Saves `after` over `before` in one transaction, conditional on `before`'s version: the locks and busy time
    /// follow the tour (freed when it no longer holds time, moved with it), the availability of every date touched
    /// is invalidated, the outbox item for its side effects is written, and the answer, when given, is saved.
    async fn save_change(
        &self,
        property: &crate::domain::property::Property,
        before: &crate::domain::booking::TourRecord,
        after: &crate::domain::booking::TourRecord,
        locks: Locks,
        extras: ChangeExtras<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<ChangeWrite, StoreError>;

    /// Frees a tour's slot (locks and busy time) and marks it released, with the messages that owes, in one
    /// transaction.
    async fn release(
        &self,
        property: &crate::domain::property::Property,
        tour: &crate::domain::booking::TourRecord,
        messages: &[crate::domain::notify::MessageKind],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;

    /// The tours booked in a conversation, oldest first.
    async fn conversation_tours(
        &self,
        conversation: &crate::domain::booking::ConversationId,
    ) -> Result<Vec<crate::domain::booking::TourRecord>, StoreError>;

    /// Notes a booking refused because its slot was taken (a double booking prevented), for the analytics: once per
    /// idempotency key and moment.
    async fn record_slot_refusal(
        &self,
        property: &ResManPropertyId,
        key: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;

    /// Records how far the tour's prospect has come, as ResMan's change feed says (it changes nothing else).
    async fn record_prospect_stage(
        &self,
        booking: &crate::domain::booking::BookingId,
        stage: crate::domain::resman::ProspectStage,
    ) -> Result<(), StoreError>;

    /// When the oldest ResMan write still owed (the outbox) became owed; `None` when none is.
    async fn oldest_owed_sync(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;

    /// Claims the bookings whose ResMan write is still owed and was last queued before `before` (the outbox):
    /// each claimed item is stamped `now`, so it is claimed again only after another full period.
    async fn claim_owed_syncs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::domain::booking::BookingId>, StoreError>;
}

/// The records the analytics read: a property's tours by their start and by when they were booked, their ratings and
/// messages, and the refusals of taken slots, over a window of instants. Read by key (a partition per property and
/// month), never by scanning: the cost follows the property's tours in the window, not the table.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn facts(
        &self,
        property: &ResManPropertyId,
        window: crate::domain::UtcWindow,
    ) -> Result<crate::domain::analytics::Facts, StoreError>;
}

/// The change poller's fan-out queue: one message per property to poll.
#[async_trait]
pub trait PollQueue: Send + Sync {
    async fn enqueue_polls(&self, properties: &[crate::domain::ResManPropertyId]) -> Result<(), StoreError>;
}

/// Per-account pacing of ResMan calls: one schedule per account, shared by every worker (it is in the store, so
/// concurrent workers on many Lambda instances reserve from the same schedule).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Reserves the next free moment of `key`'s schedule for a request asked for at `now`: how long to wait before
    /// sending it (zero when it may go at once).
    async fn reserve(
        &self,
        key: &str,
        rate: crate::domain::rate::Rate,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<chrono::Duration, StoreError>;
}

/// Asked by the ResMan adapter before each HTTP request: returns when the request may go (pacing), or why it may
/// not (then nothing is sent).
#[async_trait]
pub trait CallPacer: Send + Sync {
    async fn before_call(&self, site: &crate::domain::resman::ResManSite) -> Result<(), ResManError>;
}

/// What placing a slot hold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldWrite {
    Placed,
    /// A lock of the slot is held by a tour or by another conversation's live hold.
    SlotTaken,
    /// The conversation's hold, or the place chosen for the new one, changed since it was read (another request of
    /// the conversation or of the key): read them again.
    Raced,
}

/// Slot holds across chat turns.
#[async_trait]
pub trait HoldStore: Send + Sync {
    /// The conversation's slot hold (live or lapsed), if it placed one.
    async fn hold(
        &self,
        conversation: &crate::domain::booking::ConversationId,
    ) -> Result<Option<crate::domain::hold::SlotHold>, StoreError>;

    /// The places taken among `key`'s holds at `property` in `hour` (see `domain::hold::HoldPlace`), lapsed or not.
    async fn places(
        &self,
        property: &crate::domain::ResManPropertyId,
        key: &str,
        hour: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::domain::hold::PlaceTaken>, StoreError>;

    /// Places `hold` in one transaction: the conversation's hold item, the slot's locks (taken only where free or
    /// held by a lapsed hold), its place among its key's (taken only where free, lapsed or `previous`'s), its busy
    /// time and the bumps of its dates' availability generations. `previous` is the conversation's hold as read: the
    /// new one replaces it, and what it held is freed. A place taken meanwhile is `Raced`.
    async fn place_hold(
        &self,
        property: &crate::domain::property::Property,
        hold: &crate::domain::hold::SlotHold,
        previous: Option<&crate::domain::hold::SlotHold>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<HoldWrite, StoreError>;
}

/// The outbox's queues: the tour's ResMan write and callback (the sync queue), and its messages (the notification
/// queue).
#[async_trait]
pub trait SyncQueue: Send + Sync {
    async fn enqueue(&self, booking: &crate::domain::booking::BookingId) -> Result<(), StoreError>;

    /// Queues messages for the notification sender, one queue message each.
    async fn enqueue_messages(&self, messages: &[crate::domain::notify::MessageRef]) -> Result<(), StoreError>;
}

/// Why a callback to the chatbot did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the chatbot's callback failed: {0}")]
pub struct CallbackError(pub String);

/// The chatbot's change callbacks (DomIQ learns of every change of a tour in one of its conversations).
#[async_trait]
pub trait ChatbotCallbacks: Send + Sync {
    /// Posts one signed JSON callback; any answer but 2xx is a failure to retry.
    async fn send(&self, event_id: &str, body: &str) -> Result<(), CallbackError>;
}

/// Why an email could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the email was not sent: {reason}")]
pub struct MailError {
    pub reason: String,
    /// Whether trying again may work (a throttle, an outage), or never will (a rejected address).
    pub retryable: bool,
}

/// The mail service (SES v2 in AWS, moto locally).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email; the provider's message id.
    async fn send(&self, email: &crate::domain::email::Email) -> Result<String, MailError>;
}

/// Prospects' personal data, kept apart from their tours.
#[async_trait]
pub trait PersonalData: Send + Sync {
    /// Removes the personal data (name, e-mail, phone, what they asked for) of every tour booked with `email`, at
    /// once; the tours stay. The tours it was removed from.
    async fn erase_prospect(
        &self,
        email: &crate::domain::Email,
    ) -> Result<Vec<crate::domain::booking::BookingId>, StoreError>;
}

/// What recording a rating found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rated {
    Recorded,
    /// The tour was rated before: that rating stands.
    Already(crate::domain::link::Rating),
}

/// The prospects' ratings of their tours, one per tour.
#[async_trait]
pub trait RatingStore: Send + Sync {
    /// Records the tour's rating unless it has one (a condition, so two clicks at once record one).
    async fn record_rating(
        &self,
        tour: &crate::domain::booking::TourRecord,
        rating: crate::domain::link::Rating,
    ) -> Result<Rated, StoreError>;
    async fn rating(
        &self,
        booking: &crate::domain::booking::BookingId,
    ) -> Result<Option<crate::domain::link::Rating>, StoreError>;
}

/// What claiming a property's weekly digest found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestClaim {
    /// This tick may send it now: the how-manyth try this is.
    Claimed(u32),
    /// Sent, skipped or given up already.
    Done,
    /// Another tick holds it, or its retry is not due yet.
    Busy,
}

/// How a digest's try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestOutcome {
    Sent {
        provider_message_id: String,
    },
    /// Nothing to send (a quiet week, no staff address): never tried again.
    Skipped {
        because: String,
    },
    /// Tried again from `after`.
    Retry {
        error: String,
        after: chrono::DateTime<chrono::Utc>,
    },
    Failed {
        error: String,
    },
}

/// The weekly digests, one per property and week: a claim with a lease, so ticks that overlap send it once.
#[async_trait]
pub trait DigestStore: Send + Sync {
    /// The properties whose digest of `week` is settled (sent, skipped or given up): one read per tick, so a tick
    /// claims only the digests still owed, not every property's on every tick of the week.
    async fn settled_digests(&self, week: &str) -> Result<Vec<crate::domain::ResManPropertyId>, StoreError>;
    async fn claim_digest(
        &self,
        property: &crate::domain::ResManPropertyId,
        week: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease: chrono::Duration,
    ) -> Result<DigestClaim, StoreError>;
    async fn finish_digest(
        &self,
        property: &crate::domain::ResManPropertyId,
        week: &str,
        outcome: &DigestOutcome,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
}

/// What recording a staff rating found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffRated {
    Recorded,
    /// The booking was rated before: that rating stands.
    Already(crate::domain::link::StaffRating),
}

/// The leasing team's ratings of bookings ("was this booking useful?"), one per tour, with what went wrong.
#[async_trait]
pub trait StaffRatingStore: Send + Sync {
    /// Records the tour's staff rating unless it has one (a condition, so two clicks at once record one).
    async fn record_staff_rating(
        &self,
        tour: &crate::domain::booking::TourRecord,
        rating: &crate::domain::link::StaffRating,
    ) -> Result<StaffRated, StoreError>;
    /// Records what went wrong on the tour's staff rating unless it says already (once, as the score): the rating
    /// as it then stands, `None` when the booking has no staff rating.
    async fn record_went_wrong(
        &self,
        booking: &crate::domain::booking::BookingId,
        went_wrong: &[crate::domain::link::StaffIssue],
    ) -> Result<Option<crate::domain::link::StaffRating>, StoreError>;
}

/// A property's staff webhook (a chat channel's incoming webhook).
#[async_trait]
pub trait StaffWebhook: Send + Sync {
    /// Posts one alert as JSON; `event_id` (`<tour>:<message>`) lets a receiver drop a redelivery. What the
    /// receiver answered, for the delivery record.
    async fn post(&self, url: &str, event_id: &str, body: &serde_json::Value) -> Result<String, MailError>;
}

/// What claiming a message for its send found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This sender may send it now: the tour as it stands, and how many tries this is.
    Claimed(Box<crate::domain::booking::TourRecord>, u32),
    /// Sent or superseded already: nothing to do (a redelivered message).
    Done,
    /// Failed for good already: its queue message belongs in the dead-letter queue.
    Failed,
    /// Another sender holds it (its claim has not lapsed): try again later.
    Busy,
    /// No such message (or tour).
    Missing,
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        provider_message_id: String,
        /// The calendar invitation it carried (`domain::notify::invitation`).
        invite: Option<String>,
    },
    /// The tour changed so the message no longer fits it, or it would only repeat one sent: `because` says which.
    Superseded { because: String },
    /// Given up (the last try failed, or it can never be sent).
    Failed { error: String },
    /// This try failed; the message stays owed and the claim is released.
    Retry { error: String },
}

/// The messages tours owe, and their delivery state.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// The tour and every message it owes or sent, in one read.
    async fn tour_with_messages(
        &self,
        booking: &crate::domain::booking::BookingId,
    ) -> Result<Option<(crate::domain::booking::TourRecord, Vec<crate::domain::notify::Delivery>)>, StoreError>;

    /// Claims a pending message for one send, for `lease` (longer than a send takes); counts the try.
    async fn claim_message(
        &self,
        message: &crate::domain::notify::MessageRef,
        now: chrono::DateTime<chrono::Utc>,
        lease: chrono::Duration,
    ) -> Result<Claim, StoreError>;

    /// Makes a delivery given up on pending again, from its first try (an operator redrove its queue message once
    /// the cause was fixed). `false` when it is not `failed` (another receive reopened it first, or it never failed).
    async fn reopen_failed(
        &self,
        message: &crate::domain::notify::MessageRef,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;

    /// Records how the claimed send ended: `false` when nothing was recorded (the message was no longer pending:
    /// sent, superseded or given up already).
    async fn finish_message(
        &self,
        message: &crate::domain::notify::MessageRef,
        outcome: &SendOutcome,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;

    /// Claims the messages still pending that were owed before `before` (their queue message was lost): each is
    /// stamped `now`, so it is claimed again only after another full period.
    async fn claim_unsent_messages(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::domain::notify::MessageRef>, StoreError>;
}

/// A reminder whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub booking_id: crate::domain::booking::BookingId,
    pub kind: crate::domain::notify::MessageKind,
    pub due: chrono::DateTime<chrono::Utc>,
}

/// Reminders waiting for their time (set and dropped with the changes of their tour).
#[async_trait]
pub trait ReminderStore: Send + Sync {
    /// The reminders due by `now`, back to `lookback` ago.
    async fn due_reminders(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        lookback: chrono::Duration,
    ) -> Result<Vec<DueReminder>, StoreError>;

    /// Takes a due reminder, once (of two schedulers, one): with `tour`, it becomes a message the tour owes at its
    /// current version, written in the same transaction; without, it is only dropped. The message, when one was made.
    async fn take_reminder(
        &self,
        reminder: &DueReminder,
        tour: Option<&crate::domain::booking::TourRecord>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<crate::domain::notify::MessageRef>, StoreError>;
}
