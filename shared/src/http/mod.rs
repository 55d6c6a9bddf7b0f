//! The HTTP edge: the API key check, reading requests, and the one mapping from errors to JSON responses.

pub mod auth;
pub mod response;

pub use response::{ApiError, json};
