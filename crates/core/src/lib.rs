//! tour-booking's core: the domain's rules as pure types and functions over values that can only hold valid ones,
//! with time passed in. Its dependencies are the pure crates in its `Cargo.toml` and nothing that does I/O: no AWS
//! SDK, no HTTP client, no Lambda runtime, no async runtime (a test reads `cargo tree` to keep it so). The use
//! cases, ports and adapters live in `shared`, which re-exports this crate's `domain`.

pub mod domain;
