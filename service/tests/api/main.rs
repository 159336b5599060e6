//! Integration tests: a real `provreg` process, real sockets, a real database.

// Helpers outside #[test] functions panic on purpose: a failed step fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod cluster;
mod compose;
mod content;
mod durability;
mod errors;
mod faults;
mod hostile;
mod limits;
mod matching;
mod parties;
mod rights;
mod scenario;
// media-fingerprint's own builders of test media (a FLAC of silence, say),
// shared as its decode_memory example shares them.
#[allow(dead_code)]
#[path = "../../../media-fingerprint/src/test_support.rs"]
mod media_support;
mod openapi;
mod snapshots;
mod support;
mod tls;
mod upgrade;
