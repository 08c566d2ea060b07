//! Property tests of the code a hostile server or an odd body controls: header parsing, the
//! replay of bodies, the backoff and budget arithmetic.
//!
//! `cargo test --lib properties` runs each property on 256 cases. The long run, at least
//! ten million cases in all:
//!
//! ```text
//! PROPTEST_CASES=1200000 cargo test --release --lib properties
//! ```

mod backoff;
mod budget;
mod headers;
mod replay;
