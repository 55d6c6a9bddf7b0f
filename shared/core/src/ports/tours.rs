//! Tours: their reads, their writes (each one transaction kept by conditions) and what those writes found.

use super::StoreError;
use super::{Idempotency, Outbox, SavedAnswer, SavedOutcome};
use crate::domain::AppointmentId;
use crate::domain::ResManPropertyId;
use async_trait::async_trait;

/// A booking to write in one transaction: the tour, its slot locks, its busy time, the idempotency record and an
/// outbox item for the ResMan write.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub tour: crate::domain::record::TourRecord,
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
    pub replaces: Option<crate::domain::BookingId>,
    /// The prospect's consent to texts that came with the booking, kept with it.
    pub consent: Option<crate::domain::consent::ConsentEvent>,
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

/// Tours as they now stand: by our id, by ResMan's appointment id, and by conversation.
#[async_trait]
pub trait TourReads: Send + Sync {
    async fn tour(
        &self,
        id: &crate::domain::BookingId,
    ) -> Result<Option<crate::domain::record::TourRecord>, StoreError>;

    /// The tour that ResMan knows by this appointment id (once its booking reached ResMan).
    async fn tour_by_resman_id(
        &self,
        appointment: &AppointmentId,
    ) -> Result<Option<crate::domain::record::TourRecord>, StoreError>;

    /// The tours booked in a conversation, oldest first.
    async fn conversation_tours(
        &self,
        conversation: &crate::domain::ConversationId,
    ) -> Result<Vec<crate::domain::record::TourRecord>, StoreError>;
}

/// The tour's writes, each one transaction kept by conditions: a new booking with its locks, a change over the version
/// it was decided from, a release, the ResMan side of a tour, and the prospect's stage.
#[async_trait]
pub trait TourWrites: Send + Sync {
    /// Writes everything of a new booking atomically, or nothing.
    async fn create_booking(
        &self,
        property: &crate::domain::property::Property,
        booking: &NewBooking,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<BookingWrite, StoreError>;

    /// Saves the ResMan side of a new booking (as [`TourWrites::save_sync`]) and the answer a retry with the same
    /// key will get, in one write.
    async fn finish_booking(
        &self,
        tour: &crate::domain::record::TourRecord,
        key: &str,
        outcome: &SavedOutcome,
    ) -> Result<(), StoreError>;

    /// Saves the side-effect state of a tour (sync status, ResMan's ids and version, the callback's version, last
    /// error) if the tour is still at `tour.version`; with `settled`, nothing more is owed and the outbox item goes.
    /// `false`: the tour changed meanwhile (its newer version owes its own writes).
    async fn save_sync(&self, tour: &crate::domain::record::TourRecord, settled: bool) -> Result<bool, StoreError>;

    /// Saves `after` over `before` in one transaction, conditional on `before`'s version: the locks and busy time
    /// follow the tour (freed when it no longer holds time, moved with it), the availability of every date touched
    /// is invalidated, the outbox item for its side effects is written, and the answer, when given, is saved.
    async fn save_change(
        &self,
        property: &crate::domain::property::Property,
        before: &crate::domain::record::TourRecord,
        after: &crate::domain::record::TourRecord,
        locks: Locks,
        extras: ChangeExtras<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<ChangeWrite, StoreError>;

    /// Frees a tour's slot (locks and busy time) and marks it released, with the messages that owes, in one
    /// transaction.
    async fn release(
        &self,
        property: &crate::domain::property::Property,
        tour: &crate::domain::record::TourRecord,
        messages: &[crate::domain::notify::MessageKind],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;

    /// Records how far the tour's prospect has come, as ResMan's change feed says (it changes nothing else).
    async fn record_prospect_stage(
        &self,
        booking: &crate::domain::BookingId,
        stage: crate::domain::resman::ProspectStage,
    ) -> Result<(), StoreError>;

    /// Notes a booking refused because its slot was taken (a double booking prevented), for the analytics: once per
    /// idempotency key and moment.
    async fn record_slot_refusal(
        &self,
        property: &ResManPropertyId,
        key: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
}

/// Every capability a tour's life needs, for the use cases that walk all of it (booking, a change, the sync). A use
/// case that needs less takes less: `&dyn TourReads`, `&dyn Idempotency`...
pub trait TourStore: TourReads + TourWrites + Idempotency + Outbox {}

impl<T: TourReads + TourWrites + Idempotency + Outbox> TourStore for T {}
