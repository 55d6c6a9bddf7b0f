//! tour-booking's edge: what stands between a Lambda function's runtime and its use case. Settings read once per
//! cold start (`config`), the API key gate and the one mapping from errors to JSON responses (`http`), logging and
//! metrics set up (`telemetry`), and the serve loops every function's `main` ends in.
//!
//! The crates walk one way: `functions/*` -> `tour-edge` -> `tour-aws` -> `tour-core`. The rules live in
//! `tour-core` (no I/O crate), the adapters in `tour-aws`; this crate decides nothing but how a request reads and
//! how an answer is written.

pub mod config;
pub mod http;
pub mod serve;
pub mod telemetry;

pub use serve::{Answer, Api, Batch, Error, serve_api, serve_events, serve_http, serve_queue};
