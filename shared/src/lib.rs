//! tour-booking: the domain, the ports at its I/O seams, the use cases and the adapters that every Lambda function
//! of the workspace is wired from.
//!
//! Data walks one way: `http` -> `app` -> `domain`, and `app` -> `ports` <- `adapters`. The domain is its own crate
//! (`tour-core`, re-exported here), whose dependencies hold no I/O crate; nothing under `app/` imports an AWS SDK,
//! `reqwest` or `lambda_*` (a check in `make test` keeps it so).

pub mod adapters;
pub mod app;
pub mod config;
/// The domain, from the `tour-core` crate (pure: the compiler keeps I/O out of it).
pub use tour_core::domain;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod telemetry;
