//! Use cases: one async function per thing a user does, taking its ports as arguments and `now` as a value.

pub mod availability;
pub mod changes;
pub mod webhook;

#[cfg(test)]
pub(crate) mod fakes;

use crate::domain::InvalidField;
use crate::domain::signature::SignatureError;
use crate::ports::{ResManError, StoreError};

/// Every way a use case can fail; `http::response` maps it to a status and a JSON body, once.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid request: {0}")]
    Invalid(#[from] InvalidField),
    #[error("not found: {0}")]
    NotFound(InvalidField),
    #[error("unauthenticated: {0}")]
    BadSignature(#[from] SignatureError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    ResMan(#[from] ResManError),
}
