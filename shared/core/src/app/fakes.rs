//! In-memory fakes of the storage ports, for use-case tests. They keep the same rules as the DynamoDB adapter
//! (newest description wins, generations bump on change) so that the use cases are tested against the contract.

use crate::domain::calendar::MirroredAppointment;
use crate::domain::property::Property;
use crate::domain::slots::Busy;
use crate::domain::{AppointmentId, ResManPropertyId, TourType, UtcWindow};
use crate::ports::{AvailabilityCache, CalendarStore, DayRead, MirrorOutcome, PropertyStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cached answer: its generation, body and expiry.
type CachedEntry = (u64, String, DateTime<Utc>);
type CacheKey = (ResManPropertyId, NaiveDate, TourType);

/// A fake's round trips: each call is counted and takes `delay` of tokio's time. Under paused time (the
/// `start_paused` tests) the time a use case takes, divided by the delay, is how many calls it made one after
/// another, while calls made at the same time overlap.
#[derive(Default)]
pub struct Trips {
    count: std::sync::atomic::AtomicUsize,
    delay_ms: std::sync::atomic::AtomicU64,
}

impl Trips {
    pub fn with_delay(delay: std::time::Duration) -> Self {
        let trips = Self::default();
        trips.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::SeqCst,
        );
        trips
    }

    pub async fn take(&self) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let delay = self.delay_ms.load(std::sync::atomic::Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Every storage port in memory, like `DynamoStore` is every storage port in DynamoDB.
#[derive(Default)]
pub struct MemoryStore {
    pub properties: Mutex<Vec<Property>>,
    pub busy: Mutex<Vec<Busy>>,
    pub mirror: Mutex<HashMap<AppointmentId, (ResManPropertyId, MirroredAppointment)>>,
    pub checkpoints: Mutex<HashMap<ResManPropertyId, DateTime<Utc>>>,
    pub generations: Mutex<HashMap<(ResManPropertyId, NaiveDate), u64>>,
    pub entries: Mutex<HashMap<CacheKey, CachedEntry>>,
    pub trips: Trips,
}

impl MemoryStore {
    pub fn with_property(property: Property) -> Self {
        let store = Self::default();
        locked(&store.properties).push(property);
        store
    }

    fn bump(&self, property: &Property, window: &UtcWindow) {
        let mut generations = locked(&self.generations);
        for date in crate::domain::slots::local_date(property, window.start())
            .iter_days()
            .take_while(|d| *d <= crate::domain::slots::local_date(property, window.end()))
        {
            *generations.entry((property.id.clone(), date)).or_default() += 1;
        }
    }
}

#[async_trait]
impl PropertyStore for MemoryStore {
    async fn property(&self, id: &ResManPropertyId) -> Result<Option<Property>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.properties).iter().find(|p| &p.id == id).cloned())
    }
    async fn properties(&self) -> Result<Vec<Property>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.properties).clone())
    }
    async fn save_property(&self, property: &Property) -> Result<(), StoreError> {
        self.trips.take().await;
        let mut all = locked(&self.properties);
        all.retain(|p| p.id != property.id);
        all.push(property.clone());
        Ok(())
    }
}

#[async_trait]
impl CalendarStore for MemoryStore {
    async fn busy_in(&self, _property: &ResManPropertyId, window: UtcWindow) -> Result<Vec<Busy>, StoreError> {
        self.trips.take().await;
        let mirrored = locked(&self.mirror)
            .values()
            .filter(|(_, m)| m.holds_time())
            .map(|(_, m)| Busy {
                agent: m.agent.clone(),
                window: m.window,
                held: None,
            })
            .collect::<Vec<_>>();
        Ok(locked(&self.busy)
            .iter()
            .cloned()
            .chain(mirrored)
            .filter(|b| b.window.overlaps(&window))
            .collect())
    }
    async fn mirrored(
        &self,
        appointment: &AppointmentId,
    ) -> Result<Option<(ResManPropertyId, MirroredAppointment)>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.mirror).get(appointment).cloned())
    }
    async fn apply_mirror(
        &self,
        property: &Property,
        appointment: &MirroredAppointment,
    ) -> Result<MirrorOutcome, StoreError> {
        self.trips.take().await;
        let mut mirror = locked(&self.mirror);
        if let Some((_, old)) = mirror.get(&appointment.appointment_id)
            && (crate::domain::calendar::is_older(appointment.as_of, old.as_of) || !appointment.differs_from(old))
        {
            return Ok(MirrorOutcome::Unchanged);
        }
        if let Some((_, old)) = mirror.insert(
            appointment.appointment_id.clone(),
            (property.id.clone(), appointment.clone()),
        ) {
            self.bump(property, &old.window);
        }
        self.bump(property, &appointment.window);
        Ok(MirrorOutcome::Changed)
    }
    async fn poll_checkpoint(&self, property: &ResManPropertyId) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.checkpoints).get(property).copied())
    }
    async fn advance_checkpoint(
        &self,
        property: &ResManPropertyId,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.trips.take().await;
        let mut all = locked(&self.checkpoints);
        if all.get(property).copied() != from {
            return Ok(false);
        }
        all.insert(property.clone(), to);
        Ok(true)
    }
}

#[async_trait]
impl AvailabilityCache for MemoryStore {
    async fn read_day(
        &self,
        property: &ResManPropertyId,
        date: NaiveDate,
        tour_type: TourType,
        now: DateTime<Utc>,
    ) -> Result<DayRead, StoreError> {
        self.trips.take().await;
        let generation = locked(&self.generations)
            .get(&(property.clone(), date))
            .copied()
            .unwrap_or(0);
        let fresh = locked(&self.entries)
            .get(&(property.clone(), date, tour_type))
            .filter(|(g, _, expires)| *g == generation && *expires > now)
            .map(|(_, body, _)| body.clone());
        Ok(DayRead {
            property: locked(&self.properties).iter().find(|p| &p.id == property).cloned(),
            generation,
            fresh,
        })
    }
    async fn write(
        &self,
        property: &ResManPropertyId,
        date: NaiveDate,
        tour_type: TourType,
        generation: u64,
        body: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.trips.take().await;
        locked(&self.entries).insert(
            (property.clone(), date, tour_type),
            (generation, body.to_owned(), expires_at),
        );
        Ok(())
    }
    async fn invalidate(&self, property: &ResManPropertyId, dates: &[NaiveDate]) -> Result<(), StoreError> {
        self.trips.take().await;
        let mut generations = locked(&self.generations);
        for date in dates {
            *generations.entry((property.clone(), *date)).or_default() += 1;
        }
        Ok(())
    }
}

/// Bookings in memory, with the adapter's rules: locks are unique per holder and granule, a key is used once, and
/// a booking writes all of its parts or none.
#[derive(Default)]
pub struct MemoryTours {
    pub tours: Mutex<HashMap<crate::domain::BookingId, crate::domain::record::TourRecord>>,
    pub locks: Mutex<HashMap<(String, DateTime<Utc>), crate::domain::BookingId>>,
    pub idempotency: Mutex<HashMap<String, crate::ports::IdempotencyRecord>>,
    pub queued: Mutex<Vec<crate::domain::BookingId>>,
    /// The messages queued for the sender.
    pub queued_messages: Mutex<Vec<crate::domain::notify::MessageRef>>,
    pub ratings: Mutex<HashMap<crate::domain::BookingId, crate::domain::link::Rating>>,
    pub staff_ratings: Mutex<HashMap<crate::domain::BookingId, crate::domain::link::StaffRating>>,
    /// Each conversation's slot hold, with the lock names of its granules.
    pub holds: Mutex<HashMap<crate::domain::ConversationId, (crate::domain::hold::SlotHold, Vec<LockName>)>>,
    /// The refusals of taken slots, by property (once per key and moment, as DynamoDB keeps them).
    pub refusals: Mutex<Vec<(crate::domain::ResManPropertyId, String, DateTime<Utc>)>>,
    /// Grants and revocations of consent to texts.
    pub consents: Mutex<Vec<crate::domain::consent::ConsentEvent>>,
    /// The digests of the numbers opted out for good.
    pub opted_out: Mutex<std::collections::BTreeSet<String>>,
    pub trips: Trips,
}

/// Keeps an event once, as DynamoDB keeps one item per key.
fn keep_once(events: &mut Vec<crate::domain::consent::ConsentEvent>, event: &crate::domain::consent::ConsentEvent) {
    if !events.contains(event) {
        events.push(event.clone());
    }
}

#[async_trait]
impl crate::ports::Consents for MemoryTours {
    async fn consent(
        &self,
        property: &ResManPropertyId,
        phone: &crate::domain::Phone,
    ) -> Result<crate::ports::ConsentRecord, StoreError> {
        self.trips.take().await;
        Ok(crate::ports::ConsentRecord {
            events: locked(&self.consents)
                .iter()
                .filter(|e| &e.property_id == property && &e.phone == phone)
                .cloned()
                .collect(),
            opted_out: locked(&self.opted_out).contains(&crate::domain::consent::phone_digest(phone)),
        })
    }

    async fn record_consent(&self, event: &crate::domain::consent::ConsentEvent) -> Result<(), StoreError> {
        self.trips.take().await;
        keep_once(&mut locked(&self.consents), event);
        Ok(())
    }
}

/// A lock: the holder's name and the granule.
pub type LockName = (String, DateTime<Utc>);

impl MemoryTours {
    /// The kinds of the messages queued for the sender, in order.
    pub fn queued_kinds(&self) -> Vec<crate::domain::notify::MessageKind> {
        locked(&self.queued_messages).iter().map(|m| m.kind).collect()
    }

    /// Whether a live hold of another conversation than `own` holds one of `wanted`.
    fn held_by_others(&self, wanted: &[LockName], own: Option<&crate::domain::HoldToken>, now: DateTime<Utc>) -> bool {
        locked(&self.holds).values().any(|(hold, names)| {
            hold.is_live(now) && Some(&hold.token) != own && names.iter().any(|n| wanted.contains(n))
        })
    }
}

#[async_trait]
impl crate::ports::HoldStore for MemoryTours {
    async fn hold(
        &self,
        conversation: &crate::domain::ConversationId,
    ) -> Result<Option<crate::domain::hold::SlotHold>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.holds).get(conversation).map(|(h, _)| h.clone()))
    }
    async fn places(
        &self,
        property: &crate::domain::ResManPropertyId,
        key: &str,
        hour: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::hold::PlaceTaken>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.holds)
            .values()
            .filter(|(h, _)| &h.property_id == property)
            .filter_map(|(h, _)| {
                h.place
                    .as_ref()
                    .filter(|p| p.key == key && p.hour == hour)
                    .map(|p| crate::domain::hold::PlaceTaken {
                        number: p.number,
                        token: h.token.clone(),
                        held_until: h.held_until,
                    })
            })
            .collect())
    }

    async fn place_hold(
        &self,
        property: &Property,
        hold: &crate::domain::hold::SlotHold,
        previous: Option<&crate::domain::hold::SlotHold>,
        now: DateTime<Utc>,
    ) -> Result<crate::ports::HoldWrite, StoreError> {
        self.trips.take().await;
        let current = locked(&self.holds)
            .get(&hold.conversation_id)
            .map(|(h, _)| h.token.clone());
        if current.as_ref() != previous.map(|p| &p.token) {
            return Ok(crate::ports::HoldWrite::Raced);
        }
        let place_taken = hold.place.as_ref().is_some_and(|place| {
            locked(&self.holds).values().any(|(h, _)| {
                h.is_live(now)
                    && Some(&h.token) != current.as_ref()
                    && h.property_id == hold.property_id
                    && h.place.as_ref() == Some(place)
            })
        });
        if place_taken {
            return Ok(crate::ports::HoldWrite::Raced);
        }
        let wanted: Vec<LockName> = crate::domain::record::lock_granules(property, &hold.holder, &hold.window())
            .into_iter()
            .map(|g| (hold.holder.lock_name(), g))
            .collect();
        let locks = locked(&self.locks);
        if wanted.iter().any(|k| locks.contains_key(k)) || self.held_by_others(&wanted, current.as_ref(), now) {
            return Ok(crate::ports::HoldWrite::SlotTaken);
        }
        locked(&self.holds).insert(hold.conversation_id.clone(), (hold.clone(), wanted));
        Ok(crate::ports::HoldWrite::Placed)
    }
}

/// The analytics' reads over the tours in memory, as the DynamoDB indexes give them: tours by start and by booking
/// time inside the window (ends included), the ratings of the tours starting in it, the refusals in it. (Messages
/// live in [`MemoryMessages`], so none are read here.)
#[async_trait]
impl crate::ports::AnalyticsStore for MemoryTours {
    async fn facts(
        &self,
        property: &ResManPropertyId,
        window: UtcWindow,
    ) -> Result<crate::domain::analytics::Facts, StoreError> {
        self.trips.take().await;
        let inside = |at: DateTime<Utc>| window.start() <= at && at <= window.end();
        let tours: Vec<_> = locked(&self.tours)
            .values()
            .filter(|t| &t.property_id == property)
            .cloned()
            .collect();
        let starting: Vec<_> = tours.iter().filter(|t| inside(t.start)).cloned().collect();
        let rated = |id: &crate::domain::BookingId| starting.iter().any(|t| &t.booking_id == id);
        Ok(crate::domain::analytics::Facts {
            tours_by_booking: tours.iter().filter(|t| inside(t.created_at)).cloned().collect(),
            ratings: locked(&self.ratings)
                .iter()
                .filter(|(id, _)| rated(id))
                .map(|(id, r)| (id.clone(), r.score.get()))
                .collect(),
            staff_ratings: locked(&self.staff_ratings)
                .iter()
                .filter(|(id, _)| rated(id))
                .map(|(id, r)| (id.clone(), r.clone()))
                .collect(),
            refusals: locked(&self.refusals)
                .iter()
                .filter(|(p, _, at)| p == property && inside(*at))
                .map(|(p, key, at)| crate::domain::rollup::RefusalRef {
                    property: p.clone(),
                    key: key.clone(),
                    at: *at,
                })
                .collect(),
            messages: Vec::new(),
            tours_by_start: starting,
        })
    }
}

#[async_trait]
impl crate::ports::StaffRatingStore for MemoryTours {
    async fn record_staff_rating(
        &self,
        tour: &crate::domain::record::TourRecord,
        rating: &crate::domain::link::StaffRating,
    ) -> Result<crate::ports::StaffRated, StoreError> {
        self.trips.take().await;
        let mut ratings = locked(&self.staff_ratings);
        Ok(match ratings.get(&tour.booking_id) {
            Some(first) => crate::ports::StaffRated::Already(first.clone()),
            None => {
                ratings.insert(tour.booking_id.clone(), rating.clone());
                crate::ports::StaffRated::Recorded
            }
        })
    }
    async fn record_went_wrong(
        &self,
        booking: &crate::domain::BookingId,
        went_wrong: &[crate::domain::link::StaffIssue],
    ) -> Result<Option<crate::domain::link::StaffRating>, StoreError> {
        self.trips.take().await;
        let mut ratings = locked(&self.staff_ratings);
        Ok(ratings.get_mut(booking).map(|rating| {
            if rating.went_wrong.is_empty() {
                rating.went_wrong = went_wrong.to_vec();
            }
            rating.clone()
        }))
    }
}

#[async_trait]
impl crate::ports::RatingStore for MemoryTours {
    async fn record_rating(
        &self,
        tour: &crate::domain::record::TourRecord,
        rating: crate::domain::link::Rating,
    ) -> Result<crate::ports::Rated, StoreError> {
        self.trips.take().await;
        let mut ratings = locked(&self.ratings);
        Ok(match ratings.get(&tour.booking_id) {
            Some(first) => crate::ports::Rated::Already(*first),
            None => {
                ratings.insert(tour.booking_id.clone(), rating);
                crate::ports::Rated::Recorded
            }
        })
    }
    async fn rating(
        &self,
        booking: &crate::domain::BookingId,
    ) -> Result<Option<crate::domain::link::Rating>, StoreError> {
        Ok(locked(&self.ratings).get(booking).copied())
    }
}

#[async_trait]
impl crate::ports::TourReads for MemoryTours {
    async fn tour(
        &self,
        id: &crate::domain::BookingId,
    ) -> Result<Option<crate::domain::record::TourRecord>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.tours).get(id).cloned())
    }

    async fn tour_by_resman_id(
        &self,
        appointment: &AppointmentId,
    ) -> Result<Option<crate::domain::record::TourRecord>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.tours)
            .values()
            .find(|t| t.resman_appointment_id.as_ref() == Some(appointment))
            .cloned())
    }

    async fn conversation_tours(
        &self,
        conversation: &crate::domain::ConversationId,
    ) -> Result<Vec<crate::domain::record::TourRecord>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.tours)
            .values()
            .filter(|t| &t.conversation_id == conversation)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl crate::ports::TourWrites for MemoryTours {
    async fn create_booking(
        &self,
        _property: &Property,
        booking: &crate::ports::NewBooking,
        now: DateTime<Utc>,
    ) -> Result<crate::ports::BookingWrite, StoreError> {
        self.trips.take().await;
        let tour = &booking.tour;
        let mut idempotency = locked(&self.idempotency);
        if idempotency
            .get(&tour.idempotency_key)
            .is_some_and(|r| r.is_live(now) && (booking.replaces.is_none() || r.booking_id != booking.replaces))
        {
            return Ok(crate::ports::BookingWrite::KeyInUse);
        }
        let mut locks = locked(&self.locks);
        let wanted: Vec<(String, DateTime<Utc>)> = booking
            .lock_granules
            .iter()
            .map(|g| (tour.holder.lock_name(), *g))
            .collect();
        if wanted.iter().any(|k| locks.contains_key(k))
            || self.held_by_others(&wanted, booking.hold.as_ref().map(|h| &h.token), now)
        {
            return Ok(crate::ports::BookingWrite::SlotTaken);
        }
        if let Some(hold) = &booking.hold {
            locked(&self.holds).retain(|_, (h, _)| h.token != hold.token);
        }
        for k in wanted {
            locks.insert(k, tour.booking_id.clone());
        }
        idempotency.insert(
            tour.idempotency_key.clone(),
            crate::ports::IdempotencyRecord {
                fingerprint: booking.fingerprint.clone(),
                booking_id: Some(tour.booking_id.clone()),
                started_at: now,
                response: None,
                expires_at: Some(now + chrono::Duration::hours(24)),
            },
        );
        locked(&self.tours).insert(tour.booking_id.clone(), tour.clone());
        if let Some(consent) = &booking.consent {
            keep_once(&mut locked(&self.consents), consent);
        }
        Ok(crate::ports::BookingWrite::Created)
    }

    async fn finish_booking(
        &self,
        tour: &crate::domain::record::TourRecord,
        key: &str,
        outcome: &crate::ports::SavedOutcome,
    ) -> Result<(), StoreError> {
        self.trips.take().await;
        locked(&self.tours).insert(tour.booking_id.clone(), tour.clone());
        if let Some(record) = locked(&self.idempotency).get_mut(key) {
            record.response = Some(outcome.clone());
        }
        Ok(())
    }

    async fn save_sync(&self, tour: &crate::domain::record::TourRecord, _settled: bool) -> Result<bool, StoreError> {
        self.trips.take().await;
        let mut tours = locked(&self.tours);
        if tours.get(&tour.booking_id).is_some_and(|t| t.version != tour.version) {
            return Ok(false);
        }
        tours.insert(tour.booking_id.clone(), tour.clone());
        Ok(true)
    }

    async fn save_change(
        &self,
        property: &Property,
        before: &crate::domain::record::TourRecord,
        after: &crate::domain::record::TourRecord,
        locks: crate::ports::Locks,
        extras: crate::ports::ChangeExtras<'_>,
        now: DateTime<Utc>,
    ) -> Result<crate::ports::ChangeWrite, StoreError> {
        let answer = extras.answer;
        use crate::ports::ChangeWrite;
        self.trips.take().await;
        let mut tours = locked(&self.tours);
        if tours.get(&before.booking_id).map(|t| t.version) != Some(before.version) {
            return Ok(ChangeWrite::Stale);
        }
        let mut idempotency = locked(&self.idempotency);
        if let Some(answer) = answer
            && idempotency.get(&answer.key).is_some_and(|r| r.is_live(now))
        {
            return Ok(ChangeWrite::KeyInUse);
        }
        let held = |t: &crate::domain::record::TourRecord| -> Vec<(String, DateTime<Utc>)> {
            if !t.status.holds_time() {
                return Vec::new();
            }
            crate::domain::record::lock_granules(property, &t.holder, &t.window())
                .into_iter()
                .map(|g| (t.holder.lock_name(), g))
                .collect()
        };
        let mut all = locked(&self.locks);
        let wanted = held(after);
        let taken = wanted
            .iter()
            .any(|k| all.get(k).is_some_and(|owner| owner != &after.booking_id));
        if taken && locks == crate::ports::Locks::Take {
            return Ok(ChangeWrite::SlotTaken);
        }
        for k in held(before) {
            if all.get(&k) == Some(&before.booking_id) {
                all.remove(&k);
            }
        }
        for k in wanted {
            all.insert(k, after.booking_id.clone());
        }
        if let Some(answer) = answer {
            idempotency.insert(
                answer.key.clone(),
                crate::ports::IdempotencyRecord {
                    fingerprint: answer.fingerprint.clone(),
                    booking_id: Some(after.booking_id.clone()),
                    started_at: now,
                    response: Some(answer.outcome.clone()),
                    expires_at: Some(now + chrono::Duration::hours(24)),
                },
            );
        }
        tours.insert(after.booking_id.clone(), after.clone());
        Ok(ChangeWrite::Saved)
    }

    async fn release(
        &self,
        _property: &Property,
        tour: &crate::domain::record::TourRecord,
        _messages: &[crate::domain::notify::MessageKind],
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.trips.take().await;
        locked(&self.locks).retain(|_, owner| owner != &tour.booking_id);
        let released = crate::domain::record::TourRecord {
            status: crate::domain::lifecycle::TourStatus::Released,
            ..tour.clone()
        };
        locked(&self.tours).insert(tour.booking_id.clone(), released);
        Ok(())
    }

    async fn record_prospect_stage(
        &self,
        booking: &crate::domain::BookingId,
        stage: crate::domain::resman::ProspectStage,
    ) -> Result<(), StoreError> {
        self.trips.take().await;
        if let Some(tour) = locked(&self.tours).get_mut(booking) {
            tour.prospect_stage = Some(stage);
        }
        Ok(())
    }

    async fn record_slot_refusal(
        &self,
        property: &crate::domain::ResManPropertyId,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.trips.take().await;
        let refusal = (property.clone(), key.to_owned(), at);
        let mut refusals = locked(&self.refusals);
        if !refusals.contains(&refusal) {
            refusals.push(refusal);
        }
        Ok(())
    }
}

#[async_trait]
impl crate::ports::Idempotency for MemoryTours {
    async fn idempotency(&self, key: &str) -> Result<Option<crate::ports::IdempotencyRecord>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.idempotency).get(key).cloned())
    }

    async fn finish_idempotency(&self, key: &str, outcome: &crate::ports::SavedOutcome) -> Result<(), StoreError> {
        self.trips.take().await;
        if let Some(record) = locked(&self.idempotency).get_mut(key) {
            record.response = Some(outcome.clone());
        }
        Ok(())
    }
}

#[async_trait]
impl crate::ports::Outbox for MemoryTours {
    async fn oldest_owed_sync(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.tours)
            .values()
            .filter(|t| t.sync_status == crate::domain::record::SyncStatus::Pending)
            .map(|t| t.created_at)
            .min())
    }

    async fn claim_owed_syncs(
        &self,
        _before: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::BookingId>, StoreError> {
        self.trips.take().await;
        Ok(Vec::new())
    }
}

#[async_trait]
impl crate::ports::SyncQueue for MemoryTours {
    async fn enqueue(&self, booking: &crate::domain::BookingId) -> Result<(), StoreError> {
        locked(&self.queued).push(booking.clone());
        Ok(())
    }
    async fn enqueue_messages(&self, messages: &[crate::domain::notify::MessageRef]) -> Result<(), StoreError> {
        locked(&self.queued_messages).extend(messages.iter().cloned());
        Ok(())
    }
}

/// A message's delivery record and, while a sender holds it, when that claim lapses.
type ClaimedDelivery = (crate::domain::notify::Delivery, Option<DateTime<Utc>>);

/// Messages in memory, with the adapter's rules: a claim holds a pending message until it lapses, and a finished
/// message stays finished.
#[derive(Default)]
pub struct MemoryMessages {
    pub tours: Mutex<HashMap<crate::domain::BookingId, crate::domain::record::TourRecord>>,
    pub messages: Mutex<HashMap<crate::domain::notify::MessageRef, ClaimedDelivery>>,
}

impl MemoryMessages {
    pub fn owing(tour: &crate::domain::record::TourRecord, kinds: &[crate::domain::notify::MessageKind]) -> Self {
        let messages = Self::default();
        messages.add(tour, kinds);
        messages
    }

    pub fn add(&self, tour: &crate::domain::record::TourRecord, kinds: &[crate::domain::notify::MessageKind]) {
        self.update_tour(tour);
        self.owe(tour, kinds);
    }

    fn owe(&self, tour: &crate::domain::record::TourRecord, kinds: &[crate::domain::notify::MessageKind]) {
        for kind in kinds {
            let reference = crate::domain::notify::MessageRef {
                booking_id: tour.booking_id.clone(),
                kind: *kind,
                version: tour.version,
            };
            let delivery = crate::domain::notify::Delivery {
                message: *kind,
                version: tour.version,
                status: crate::domain::notify::DeliveryStatus::Pending,
                attempts: 0,
                created_at: tour.created_at,
                sent_at: None,
                provider_message_id: None,
                last_error: None,
                invite: None,
                superseded_because: None,
                receipt: None,
            };
            locked(&self.messages).entry(reference).or_insert((delivery, None));
        }
    }

    /// The deliveries of a tour's messages of one kind.
    pub fn deliveries(
        &self,
        tour: &crate::domain::record::TourRecord,
        kind: crate::domain::notify::MessageKind,
    ) -> Vec<crate::domain::notify::Delivery> {
        locked(&self.messages)
            .iter()
            .filter(|(r, _)| r.booking_id == tour.booking_id && r.kind == kind)
            .map(|(_, (d, _))| d.clone())
            .collect()
    }

    pub fn update_tour(&self, tour: &crate::domain::record::TourRecord) {
        locked(&self.tours).insert(tour.booking_id.clone(), tour.clone());
    }

    pub fn status(
        &self,
        tour: &crate::domain::record::TourRecord,
        kind: crate::domain::notify::MessageKind,
    ) -> crate::domain::notify::DeliveryStatus {
        locked(&self.messages)
            .iter()
            .find(|(r, _)| r.booking_id == tour.booking_id && r.kind == kind)
            .map(|(_, (d, _))| d.status)
            .unwrap_or(crate::domain::notify::DeliveryStatus::Pending)
    }

    /// How many messages are sent, and how many failed for good.
    pub fn tally(&self) -> (usize, usize) {
        use crate::domain::notify::DeliveryStatus;
        let messages = locked(&self.messages);
        let count = |s: DeliveryStatus| messages.values().filter(|(d, _)| d.status == s).count();
        (count(DeliveryStatus::Sent), count(DeliveryStatus::Failed))
    }
}

#[async_trait]
impl crate::ports::MessageStore for MemoryMessages {
    async fn tour_with_messages(
        &self,
        booking: &crate::domain::BookingId,
    ) -> Result<Option<(crate::domain::record::TourRecord, Vec<crate::domain::notify::Delivery>)>, StoreError> {
        let tour = locked(&self.tours).get(booking).cloned();
        let deliveries = locked(&self.messages)
            .iter()
            .filter(|(r, _)| &r.booking_id == booking)
            .map(|(_, (d, _))| d.clone())
            .collect();
        Ok(tour.map(|t| (t, deliveries)))
    }

    async fn claim_message(
        &self,
        message: &crate::domain::notify::MessageRef,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<crate::ports::Claim, StoreError> {
        use crate::ports::Claim;
        let mut messages = locked(&self.messages);
        let Some((delivery, claimed_until)) = messages.get_mut(message) else {
            return Ok(Claim::Missing);
        };
        match delivery.status {
            crate::domain::notify::DeliveryStatus::Pending => {}
            crate::domain::notify::DeliveryStatus::Failed => return Ok(Claim::Failed),
            _ => return Ok(Claim::Done),
        }
        if claimed_until.is_some_and(|until| until >= now) {
            return Ok(Claim::Busy);
        }
        *claimed_until = Some(now + lease);
        delivery.attempts += 1;
        let attempts = delivery.attempts;
        drop(messages);
        Ok(match locked(&self.tours).get(&message.booking_id) {
            Some(tour) => Claim::Claimed(Box::new(tour.clone()), attempts),
            None => Claim::Missing,
        })
    }

    async fn reopen_failed(
        &self,
        message: &crate::domain::notify::MessageRef,
        _now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut messages = locked(&self.messages);
        Ok(match messages.get_mut(message) {
            Some((delivery, claimed_until)) if delivery.status == crate::domain::notify::DeliveryStatus::Failed => {
                delivery.status = crate::domain::notify::DeliveryStatus::Pending;
                delivery.attempts = 0;
                delivery.last_error = None;
                *claimed_until = None;
                true
            }
            _ => false,
        })
    }

    async fn finish_message(
        &self,
        message: &crate::domain::notify::MessageRef,
        outcome: &crate::ports::SendOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use crate::domain::notify::DeliveryStatus;
        use crate::ports::SendOutcome;
        let mut messages = locked(&self.messages);
        let Some((delivery, claimed_until)) = messages.get_mut(message) else {
            return Ok(false);
        };
        if delivery.status != DeliveryStatus::Pending {
            return Ok(false);
        }
        *claimed_until = None;
        match outcome {
            SendOutcome::Sent {
                provider_message_id,
                invite,
            } => {
                delivery.status = DeliveryStatus::Sent;
                delivery.sent_at = Some(now);
                delivery.provider_message_id = Some(provider_message_id.clone());
                delivery.invite = invite.clone();
            }
            SendOutcome::Superseded { because } => {
                delivery.status = DeliveryStatus::Superseded;
                delivery.superseded_because = Some(because.clone());
            }
            SendOutcome::Failed { error } => {
                delivery.status = DeliveryStatus::Failed;
                delivery.last_error = Some(error.clone());
            }
            SendOutcome::Retry { error } => delivery.last_error = Some(error.clone()),
        }
        Ok(true)
    }

    async fn record_receipt(
        &self,
        message: &crate::domain::notify::MessageRef,
        provider_message_id: &str,
        receipt: &crate::domain::notify::TextReceipt,
    ) -> Result<bool, StoreError> {
        let mut messages = locked(&self.messages);
        Ok(match messages.get_mut(message) {
            Some((delivery, _))
                if delivery.status == crate::domain::notify::DeliveryStatus::Sent
                    && delivery.provider_message_id.as_deref() == Some(provider_message_id)
                    && delivery.receipt.is_none() =>
            {
                delivery.receipt = Some(receipt.clone());
                true
            }
            _ => false,
        })
    }

    async fn owe_message(
        &self,
        tour: &crate::domain::record::TourRecord,
        kind: crate::domain::notify::MessageKind,
        _now: DateTime<Utc>,
    ) -> Result<Option<crate::domain::notify::MessageRef>, StoreError> {
        let reference = crate::domain::notify::MessageRef {
            booking_id: tour.booking_id.clone(),
            kind,
            version: tour.version,
        };
        if locked(&self.messages).contains_key(&reference) {
            return Ok(None);
        }
        self.owe(tour, &[kind]);
        Ok(Some(reference))
    }

    async fn claim_unsent_messages(
        &self,
        _before: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::notify::MessageRef>, StoreError> {
        Ok(Vec::new())
    }
}

/// A text service that keeps the texts it took, answering each send with the next scripted failure while any are
/// left.
#[derive(Default)]
pub struct MemoryTexts {
    failures: Mutex<std::collections::VecDeque<crate::ports::TextError>>,
    sent: Mutex<Vec<crate::ports::OutgoingText>>,
}

impl MemoryTexts {
    pub fn failing(failures: impl IntoIterator<Item = crate::ports::TextError>) -> Self {
        Self {
            failures: Mutex::new(failures.into_iter().collect()),
            ..Default::default()
        }
    }

    pub fn sent(&self) -> Vec<crate::ports::OutgoingText> {
        locked(&self.sent).clone()
    }

    /// The next send fails so.
    pub fn fail_next(&self, failure: crate::ports::TextError) {
        locked(&self.failures).push_back(failure);
    }
}

#[async_trait]
impl crate::ports::TextSender for MemoryTexts {
    async fn send_text(&self, text: &crate::ports::OutgoingText) -> Result<String, crate::ports::TextError> {
        if let Some(failure) = locked(&self.failures).pop_front() {
            return Err(failure);
        }
        let mut sent = locked(&self.sent);
        sent.push(text.clone());
        Ok(format!("text-{}", sent.len()))
    }
}

/// Where texts went and which replies were applied, in memory.
#[derive(Default)]
pub struct MemoryTextLog {
    by_id: Mutex<HashMap<String, crate::domain::BookingId>>,
    latest: Mutex<HashMap<String, crate::domain::BookingId>>,
    applied: Mutex<std::collections::BTreeSet<String>>,
}

#[async_trait]
impl crate::ports::TextLog for MemoryTextLog {
    async fn text_sent(&self, text: &crate::ports::SentText) -> Result<(), StoreError> {
        locked(&self.by_id).insert(text.provider_message_id.clone(), text.booking_id.clone());
        locked(&self.latest).insert(text.to.expose().to_owned(), text.booking_id.clone());
        Ok(())
    }

    async fn replied_tour(
        &self,
        previous: Option<&str>,
        from: &crate::domain::Phone,
    ) -> Result<Option<crate::domain::BookingId>, StoreError> {
        let by_id = previous.and_then(|id| locked(&self.by_id).get(id).cloned());
        Ok(by_id.or_else(|| locked(&self.latest).get(from.expose()).cloned()))
    }

    async fn reply_applied(&self, inbound_id: &str) -> Result<bool, StoreError> {
        Ok(locked(&self.applied).contains(inbound_id))
    }

    async fn mark_reply_applied(&self, inbound_id: &str, _now: DateTime<Utc>) -> Result<(), StoreError> {
        locked(&self.applied).insert(inbound_id.to_owned());
        Ok(())
    }
}

/// A mailer that keeps what it sent, failing its first `n` calls, or a share of its calls (seeded).
#[derive(Default)]
pub struct FlakyMailer {
    fail_first: std::sync::atomic::AtomicU32,
    random: Option<(f64, Mutex<rand::rngs::StdRng>)>,
    sent: Mutex<Vec<crate::domain::email::Mail>>,
    posts: Mutex<Vec<(String, String, serde_json::Value)>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl FlakyMailer {
    pub fn failing(first: u32) -> Self {
        Self {
            fail_first: std::sync::atomic::AtomicU32::new(first),
            ..Default::default()
        }
    }

    pub fn random(rate: f64, seed: u64) -> Self {
        use rand::SeedableRng;
        Self {
            random: Some((rate, Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))),
            ..Default::default()
        }
    }

    pub fn sent(&self) -> Vec<crate::domain::email::Mail> {
        locked(&self.sent).clone()
    }

    /// Every call, failed or not.
    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl FlakyMailer {
    /// One call: fails while its failures last, or by chance.
    fn attempt(&self) -> Result<(), crate::ports::MailError> {
        use rand::RngExt;
        use std::sync::atomic::Ordering;
        self.calls.fetch_add(1, Ordering::SeqCst);
        let down = || crate::ports::MailError {
            reason: "throttled".into(),
            retryable: true,
        };
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(down());
        }
        if let Some((rate, rng)) = &self.random
            && locked(rng).random_bool(*rate)
        {
            return Err(down());
        }
        Ok(())
    }

    /// What reached the staff webhook: (url, event id, body).
    pub fn posts(&self) -> Vec<(String, String, serde_json::Value)> {
        locked(&self.posts).clone()
    }
}

#[async_trait]
impl crate::ports::Mailer for FlakyMailer {
    async fn send(&self, email: &crate::domain::email::Mail) -> Result<String, crate::ports::MailError> {
        self.attempt()?;
        let mut sent = locked(&self.sent);
        sent.push(email.clone());
        Ok(format!("msg-{}", sent.len()))
    }
}

#[async_trait]
impl crate::ports::StaffWebhook for FlakyMailer {
    async fn post(
        &self,
        url: &str,
        event_id: &str,
        body: &serde_json::Value,
    ) -> Result<String, crate::ports::MailError> {
        self.attempt()?;
        locked(&self.posts).push((url.to_owned(), event_id.to_owned(), body.clone()));
        Ok("webhook HTTP 200".to_owned())
    }
}

/// The tours' read with their deliveries, for use cases tested without a sender: no messages are kept here.
#[async_trait]
impl crate::ports::MessageStore for MemoryTours {
    async fn tour_with_messages(
        &self,
        booking: &crate::domain::BookingId,
    ) -> Result<Option<(crate::domain::record::TourRecord, Vec<crate::domain::notify::Delivery>)>, StoreError> {
        self.trips.take().await;
        Ok(locked(&self.tours).get(booking).cloned().map(|t| (t, Vec::new())))
    }
    async fn claim_message(
        &self,
        _: &crate::domain::notify::MessageRef,
        _: DateTime<Utc>,
        _: chrono::Duration,
    ) -> Result<crate::ports::Claim, StoreError> {
        Ok(crate::ports::Claim::Missing)
    }
    async fn reopen_failed(&self, _: &crate::domain::notify::MessageRef, _: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn finish_message(
        &self,
        _: &crate::domain::notify::MessageRef,
        _: &crate::ports::SendOutcome,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn record_receipt(
        &self,
        _: &crate::domain::notify::MessageRef,
        _: &str,
        _: &crate::domain::notify::TextReceipt,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn owe_message(
        &self,
        _: &crate::domain::record::TourRecord,
        _: crate::domain::notify::MessageKind,
        _: DateTime<Utc>,
    ) -> Result<Option<crate::domain::notify::MessageRef>, StoreError> {
        Ok(None)
    }
    async fn claim_unsent_messages(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::notify::MessageRef>, StoreError> {
        Ok(Vec::new())
    }
}

/// A digest's record: its status, until when it is claimed (or its retry waits), and its tries.
type DigestRecord = (String, DateTime<Utc>, u32);

/// The weekly digests' records, per property and week.
#[derive(Default)]
pub struct MemoryDigests {
    records: Mutex<HashMap<(ResManPropertyId, String), DigestRecord>>,
    claims: std::sync::atomic::AtomicUsize,
}

impl MemoryDigests {
    pub fn status(&self, property: &ResManPropertyId, week: &str) -> Option<String> {
        locked(&self.records)
            .get(&(property.clone(), week.to_owned()))
            .map(|(status, _, _)| status.clone())
    }

    /// How many claims were tried.
    pub fn claims(&self) -> usize {
        self.claims.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl crate::ports::DigestStore for MemoryDigests {
    async fn settled_digests(&self, week: &str) -> Result<Vec<ResManPropertyId>, StoreError> {
        Ok(locked(&self.records)
            .iter()
            .filter(|((_, w), (status, _, _))| w == week && !matches!(status.as_str(), "new" | "pending"))
            .map(|((property, _), _)| property.clone())
            .collect())
    }
    async fn claim_digest(
        &self,
        property: &ResManPropertyId,
        week: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<crate::ports::DigestClaim, StoreError> {
        use crate::ports::DigestClaim;
        self.claims.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut records = locked(&self.records);
        let record = records
            .entry((property.clone(), week.to_owned()))
            .or_insert_with(|| ("new".to_owned(), now, 0));
        match record.0.as_str() {
            "new" => {}
            "pending" if record.1 < now => {}
            "pending" => return Ok(DigestClaim::Busy),
            _ => return Ok(DigestClaim::Done),
        }
        *record = ("pending".to_owned(), now + lease, record.2 + 1);
        Ok(DigestClaim::Claimed(record.2))
    }

    async fn finish_digest(
        &self,
        property: &ResManPropertyId,
        week: &str,
        outcome: &crate::ports::DigestOutcome,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use crate::ports::DigestOutcome;
        let mut records = locked(&self.records);
        let Some(record) = records.get_mut(&(property.clone(), week.to_owned())) else {
            return Ok(());
        };
        match outcome {
            DigestOutcome::Sent { .. } => record.0 = "sent".into(),
            DigestOutcome::Skipped { .. } => record.0 = "skipped".into(),
            DigestOutcome::Failed { .. } => record.0 = "failed".into(),
            DigestOutcome::Retry { after, .. } => record.1 = *after,
        }
        Ok(())
    }
}

/// A ResMan for use-case tests: it keeps what was posted and answers each post as scripted (a lost answer still
/// applies, as ResMan's does), finds the prospects it was posted by e-mail, and answers change windows from
/// `prospects` (or fails, for every property or one), each read taking `latency` and kept in `windows`.
#[derive(Default)]
pub struct ScriptedResMan {
    pub posted: Mutex<Vec<crate::domain::resman::ProspectTourPost>>,
    /// The answers to the next posts, in order; `Ok` once they run out.
    pub answers: Mutex<Vec<Result<(), crate::ports::ResManError>>>,
    pub trips: Trips,
    /// What every change window holds.
    pub prospects: Vec<crate::domain::resman::Prospect>,
    /// Every change window fails.
    pub fail: bool,
    /// Only this property's windows fail.
    pub failing: Option<String>,
    /// How long each window's read takes.
    pub latency: std::time::Duration,
    pub windows: Mutex<Vec<UtcWindow>>,
}

impl ScriptedResMan {
    pub fn answering(answers: Vec<Result<(), crate::ports::ResManError>>) -> Self {
        Self {
            answers: Mutex::new(answers),
            ..Default::default()
        }
    }

    /// How many posts reached it (those whose answer was lost included).
    pub fn posts(&self) -> usize {
        locked(&self.posted).len()
    }

    fn reference(i: usize) -> (crate::domain::resman::ProspectRef, AppointmentId) {
        (
            crate::domain::resman::ProspectRef {
                prospect_id: crate::domain::ProspectId::parse(&format!("PR-{i}")).expect("a prospect id"),
                person_id: None,
            },
            AppointmentId::parse(&format!("EV-{i}")).expect("an appointment id"),
        )
    }
}

#[async_trait]
impl crate::ports::ResManGateway for ScriptedResMan {
    async fn employees(
        &self,
        _: &crate::domain::resman::ResManSite,
    ) -> Result<Vec<crate::domain::resman::Employee>, crate::ports::ResManError> {
        Ok(vec![])
    }

    async fn prospect_sources(
        &self,
        _: &crate::domain::resman::ResManSite,
    ) -> Result<Vec<crate::domain::resman::ProspectSource>, crate::ports::ResManError> {
        Ok(vec![])
    }

    async fn find_prospects(
        &self,
        _: &crate::domain::resman::ResManSite,
        lookup: &crate::domain::resman::ProspectLookup,
    ) -> Result<Vec<crate::domain::resman::Prospect>, crate::ports::ResManError> {
        use crate::domain::resman::{Prospect, ProspectEvent, ProspectLookup, ProspectStage, TourEventStatus};
        self.trips.take().await;
        let ProspectLookup::Email(email) = lookup else {
            return Ok(vec![]);
        };
        Ok(locked(&self.posted)
            .iter()
            .enumerate()
            .filter(|(_, p)| p.contact.email == *email)
            .map(|(i, p)| {
                let (reference, appointment) = Self::reference(i);
                Prospect {
                    stage: ProspectStage::Prospect,
                    reference,
                    first_name: None,
                    last_name: None,
                    email: Some(email.expose().to_owned()),
                    phone: None,
                    events: vec![ProspectEvent {
                        id: Some(appointment),
                        event_type: "Appointment".into(),
                        at: Some(p.tour.start),
                        agent: p.tour.agent.clone(),
                        status: TourEventStatus::Scheduled,
                        reason: None,
                        comments: Some(p.tour.comments.clone()),
                    }],
                }
            })
            .collect())
    }

    async fn post_tour(
        &self,
        _: &crate::domain::resman::ResManSite,
        post: &crate::domain::resman::ProspectTourPost,
    ) -> Result<crate::domain::resman::PostedTour, crate::ports::ResManError> {
        self.trips.take().await;
        let answer = {
            let mut answers = locked(&self.answers);
            if answers.is_empty() { Ok(()) } else { answers.remove(0) }
        };
        match answer {
            Err(e) if !e.may_have_applied() => Err(e),
            other => {
                let mut posted = locked(&self.posted);
                posted.push(post.clone());
                let (prospect, appointment_id) = Self::reference(posted.len() - 1);
                other.map(|()| crate::domain::resman::PostedTour {
                    prospect,
                    appointment_id,
                })
            }
        }
    }

    async fn add_note(
        &self,
        _: &crate::domain::resman::ResManSite,
        _: &crate::domain::resman::NotePost,
    ) -> Result<AppointmentId, crate::ports::ResManError> {
        Err(crate::ports::ResManError::Unreachable("not scripted".into()))
    }

    async fn changed_prospects(
        &self,
        site: &crate::domain::resman::ResManSite,
        window: UtcWindow,
    ) -> Result<Vec<crate::domain::resman::Prospect>, crate::ports::ResManError> {
        tokio::time::sleep(self.latency).await;
        locked(&self.windows).push(window);
        if self.fail || self.failing.as_deref() == Some(site.property.as_str()) {
            Err(crate::ports::ResManError::Server { status: 503 })
        } else {
            Ok(self.prospects.clone())
        }
    }
}
