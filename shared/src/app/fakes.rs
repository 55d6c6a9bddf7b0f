//! In-memory fakes of the storage ports, for use-case tests. They keep the same rules as the DynamoDB adapter
//! (newest description wins, generations bump on change) so that the use cases are tested against the contract.

use crate::domain::calendar::MirroredAppointment;
use crate::domain::property::Property;
use crate::domain::slots::Busy;
use crate::domain::{AppointmentId, ResManPropertyId, TourType, UtcWindow};
use crate::ports::{AvailabilityCache, CacheRead, CalendarStore, MirrorOutcome, PropertyStore, StoreError};
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

/// Every storage port in memory, like `DynamoStore` is every storage port in DynamoDB.
#[derive(Default)]
pub struct MemoryStore {
    pub properties: Mutex<Vec<Property>>,
    pub busy: Mutex<Vec<Busy>>,
    pub mirror: Mutex<HashMap<AppointmentId, (ResManPropertyId, MirroredAppointment)>>,
    pub checkpoints: Mutex<HashMap<ResManPropertyId, DateTime<Utc>>>,
    pub generations: Mutex<HashMap<(ResManPropertyId, NaiveDate), u64>>,
    pub entries: Mutex<HashMap<CacheKey, CachedEntry>>,
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
        Ok(locked(&self.properties).iter().find(|p| &p.id == id).cloned())
    }
    async fn properties(&self) -> Result<Vec<Property>, StoreError> {
        Ok(locked(&self.properties).clone())
    }
    async fn save_property(&self, property: &Property) -> Result<(), StoreError> {
        let mut all = locked(&self.properties);
        all.retain(|p| p.id != property.id);
        all.push(property.clone());
        Ok(())
    }
}

#[async_trait]
impl CalendarStore for MemoryStore {
    async fn busy_in(&self, _property: &Property, window: UtcWindow) -> Result<Vec<Busy>, StoreError> {
        let mirrored = locked(&self.mirror)
            .values()
            .filter(|(_, m)| m.holds_time())
            .map(|(_, m)| Busy {
                agent: m.agent.clone(),
                window: m.window,
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
        Ok(locked(&self.mirror).get(appointment).cloned())
    }
    async fn apply_mirror(
        &self,
        property: &Property,
        appointment: &MirroredAppointment,
    ) -> Result<MirrorOutcome, StoreError> {
        let mut mirror = locked(&self.mirror);
        if let Some((_, old)) = mirror.get(&appointment.appointment_id)
            && (old.as_of >= appointment.as_of || !appointment.differs_from(old))
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
        Ok(locked(&self.checkpoints).get(property).copied())
    }
    async fn advance_checkpoint(
        &self,
        property: &ResManPropertyId,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
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
    async fn read(
        &self,
        property: &ResManPropertyId,
        date: NaiveDate,
        tour_type: TourType,
        now: DateTime<Utc>,
    ) -> Result<CacheRead<String>, StoreError> {
        let generation = locked(&self.generations)
            .get(&(property.clone(), date))
            .copied()
            .unwrap_or(0);
        let fresh = locked(&self.entries)
            .get(&(property.clone(), date, tour_type))
            .filter(|(g, _, expires)| *g == generation && *expires > now)
            .map(|(_, body, _)| body.clone());
        Ok(CacheRead { generation, fresh })
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
        locked(&self.entries).insert(
            (property.clone(), date, tour_type),
            (generation, body.to_owned(), expires_at),
        );
        Ok(())
    }
    async fn invalidate(&self, property: &ResManPropertyId, dates: &[NaiveDate]) -> Result<(), StoreError> {
        let mut generations = locked(&self.generations);
        for date in dates {
            *generations.entry((property.clone(), *date)).or_default() += 1;
        }
        Ok(())
    }
}
