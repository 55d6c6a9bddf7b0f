//! tour-booking: the domain, the ports at its I/O seams, the use cases and the adapters that every Lambda function
//! of the workspace is wired from.
//!
//! Data walks one way: `http` -> `app` -> `domain`, and `app` -> `ports` <- `adapters`. The domain, the ports and
//! the use cases are their own crate (`tour-core`, re-exported here), whose dependencies hold no I/O crate.

pub mod adapters;
pub mod config;
/// The domain, the ports and the use cases, from the `tour-core` crate (the compiler keeps I/O out of it).
pub use tour_core::{app, domain, metrics, ports};
pub mod http;
pub mod telemetry;
