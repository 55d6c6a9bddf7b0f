//! One `init()` for every function: JSON lines on stdout, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`; and the
//! metrics lines' namespace (`METRICS_NAMESPACE`) and stack (`STACK_NAME`).
//! Spans and events carry ids (appointment, conversation, property), never a name, e-mail, phone, body or header.

use tracing_subscriber::filter::LevelFilter;

pub fn init() {
    // The metrics lines' namespace and `Stack` dimension (the alarms and the operations dashboard read them).
    tour_core::metrics::configure(
        std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "TourBooking".to_owned()),
        std::env::var("STACK_NAME").unwrap_or_else(|_| "local".to_owned()),
    );
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned());
    // One level for every line (`info`, `debug`...); an unknown word reads as `info`.
    let filter = level.trim().to_ascii_lowercase().parse().unwrap_or(LevelFilter::INFO);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}
