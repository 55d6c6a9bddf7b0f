//! tour-booking's core: the domain's rules as pure types and functions over values that can only hold valid ones
//! (time passed in), the ports at its I/O seams, and the use cases over them. Its dependencies hold no I/O crate: no
//! AWS SDK, no HTTP client, no Lambda runtime, and tokio for its clock, timers and joins only (a test reads
//! `cargo tree` to keep it so). The adapters live in `tour-aws` (`shared/aws`), the HTTP edge,
//! the settings and the serve loops in `tour-edge` (`shared/edge`).
//!
//! Data walks one way: `app` -> `domain`, and `app` -> `ports`, which `tour-aws`'s adapters implement.

pub mod app;
pub mod domain;
pub mod metrics;
pub mod ports;
