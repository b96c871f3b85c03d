//! Shared tools for zmqtt's integration tests.
//!
//! Every test file compiles its own copy with `mod support;` and uses only a
//! subset of these helpers, so items unused by one test binary are expected:
//! that is why dead-code warnings are silenced for the whole module tree.
//!
//! - [`proxy::FaultProxy`]: a TCP proxy that can cut, stall, delay or refuse
//!   connections between the client and a broker.
//! - [`fake_broker::FakeBroker`]: a scripted MQTT peer for hostile or odd
//!   behaviour a real broker cannot be made to show.
//! - [`unique_topic`], [`with_timeout`], [`broker`]: small helpers.

#![allow(dead_code)]

pub mod fake_broker;
pub mod proxy;

use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// Shortcuts; a test binary that uses neither would otherwise warn.
#[allow(unused_imports)]
pub use fake_broker::{FakeBroker, FakeConnection};
#[allow(unused_imports)]
pub use proxy::FaultProxy;
use zmqtt_testbed::{Broker, BrokerOptions};

/// How long one awaited step of a test may take before [`with_timeout`]
/// fails the test instead of letting it hang.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A topic no other test (in this process or a concurrent one) uses:
/// `prefix/<pid>-<start time>-<counter>`.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or(0);
    format!("{prefix}/{}-{nanos}-{count}", std::process::id())
}

/// Awaits `future`, panicking with the caller's location if it takes longer
/// than [`TEST_TIMEOUT`]: a stuck test fails with a message instead of hanging.
#[track_caller]
pub fn with_timeout<F: Future>(future: F) -> impl Future<Output = F::Output> {
    within_at(TEST_TIMEOUT, future, Location::caller())
}

/// Like [`with_timeout`] with a deadline of the caller's choice.
#[track_caller]
pub fn within<F: Future>(limit: Duration, future: F) -> impl Future<Output = F::Output> {
    within_at(limit, future, Location::caller())
}

async fn within_at<F: Future>(
    limit: Duration,
    future: F,
    caller: &'static Location<'static>,
) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("test step at {caller} did not finish within {limit:?}"),
    }
}

/// A private mosquitto with default options (stopped when dropped).
pub fn broker() -> Broker {
    broker_with(BrokerOptions::default())
}

/// A private mosquitto with `options` (stopped when dropped).
pub fn broker_with(options: BrokerOptions) -> Broker {
    match Broker::start(options) {
        Ok(broker) => broker,
        Err(error) => panic!("cannot start the test broker: {error}"),
    }
}
