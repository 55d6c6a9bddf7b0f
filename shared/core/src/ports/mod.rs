//! The traits at the I/O seams, one file per capability, each sized to what a use case needs. Each has one adapter
//! in `tour-aws` and an in-memory fake (`app::fakes`) that the store contract (`tests/tests/store_contract.rs`)
//! holds to DynamoDB's.

mod analytics;
mod calendar;
mod consent;
mod holds;
mod idempotency;
mod messages;
mod outbox;
mod properties;
mod resman;
mod rollups;
mod texts;
mod tours;

pub use analytics::*;
pub use calendar::*;
pub use consent::*;
pub use holds::*;
pub use idempotency::*;
pub use messages::*;
pub use outbox::*;
pub use properties::*;
pub use resman::*;
pub use rollups::*;
pub use texts::*;
pub use tours::*;

/// Why a store call failed. `Unavailable` after a write means "unknown whether it happened", like ResMan's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored item is not what we wrote: {0}")]
    Corrupt(String),
}
