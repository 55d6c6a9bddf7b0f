//! Consent to text messages: each number's grants and revocations at a property, and the numbers opted out for good.

use super::StoreError;
use crate::domain::consent::{ConsentEvent, ConsentState};
use crate::domain::{Phone, ResManPropertyId};
use async_trait::async_trait;

/// What is kept of a number at a property: its grants and revocations (in no particular order), and whether the
/// number was erased on request (only a digest stays then, and no text is ever sent to it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentRecord {
    pub events: Vec<ConsentEvent>,
    pub opted_out: bool,
}

impl ConsentRecord {
    pub fn state(&self) -> ConsentState {
        ConsentState::of(&self.events, self.opted_out)
    }
}

/// Grants and revocations of consent to texts. A grant that comes with a booking is written with it
/// ([`super::NewBooking::consent`]); an erasure removes them and leaves the opt-out marker
/// ([`super::PersonalData::erase_prospect`]).
#[async_trait]
pub trait Consents: Send + Sync {
    async fn consent(&self, property: &ResManPropertyId, phone: &Phone) -> Result<ConsentRecord, StoreError>;

    /// Keeps a grant or a revocation (writing the same event twice keeps it once).
    async fn record_consent(&self, event: &ConsentEvent) -> Result<(), StoreError>;
}
