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
//! - [`unique_topic`], [`with_timeout`], [`step`], [`broker`]: small helpers.
//! - [`local`], [`v311`], [`v5`], [`connect_v311`], [`connect_v5`],
//!   [`persistent`]: clients of a local broker that never reconnect.
//! - [`publish_qos1`], [`leave_a_subscription`]: steps many tests take.

#![allow(dead_code)]

pub mod fake_broker;
pub mod proxy;

use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// Shortcuts; a test binary that uses neither would otherwise warn.
use bytes::Bytes;
#[allow(unused_imports)]
pub use fake_broker::{FakeBroker, FakeConnection};
#[allow(unused_imports)]
pub use proxy::FaultProxy;
use zmqtt::{create_client, Client, ClientBuilder, Protocol, QoS, ReconnectConfig, V311, V5};
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

/// [`with_timeout`] for anything awaitable, a future or a request builder
/// (`IntoFuture`): the one-line way for a test to await a step.
#[track_caller]
pub fn step<F: IntoFuture>(future: F) -> impl Future<Output = F::Output> {
    with_timeout(future.into_future())
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

/// A 3.1.1 client builder for 127.0.0.1:`port` that never reconnects, so a
/// lost connection shows in the test instead of being retried.
pub fn local(port: u16) -> ClientBuilder<V311> {
    create_client("127.0.0.1")
        .port(port)
        .reconnect(ReconnectConfig::disabled())
}

/// A 3.1.1 client of [`local`], not yet connected.
pub fn v311(port: u16) -> Client<V311> {
    local(port).build()
}

/// A 5.0 client of [`local`], not yet connected.
pub fn v5(port: u16) -> Client<V5> {
    local(port).v5().build()
}

/// A connected [`v311`] client.
pub async fn connect_v311(port: u16) -> Client<V311> {
    let client = v311(port);
    step(client.connect()).await.unwrap();
    client
}

/// A connected [`v5`] client.
pub async fn connect_v5(port: u16) -> Client<V5> {
    let client = v5(port);
    step(client.connect()).await.unwrap();
    client
}

/// A [`local`] builder for the persistent session `client_id`
/// (clean session off).
pub fn persistent(port: u16, client_id: &str) -> ClientBuilder<V311> {
    local(port).client_id(client_id).clean_session(false)
}

/// Publishes `payload` to `topic` at QoS 1 and waits (as a [`step`]) for the
/// broker's PUBACK, failing the test if the publish fails.
#[track_caller]
pub fn publish_qos1<'a, V: Protocol>(
    client: &'a Client<V>,
    topic: impl Into<zmqtt::Topic>,
    payload: impl Into<Bytes>,
) -> impl Future<Output = ()> + 'a {
    let publishing = step(client.publish(topic, payload).qos(QoS::AtLeastOnce));
    async move { publishing.await.unwrap() }
}

/// Connects `client`, subscribes it to `topic` at QoS 1 and disconnects,
/// leaving the subscription in its persistent session at the broker.
pub async fn leave_a_subscription<V: Protocol>(client: &Client<V>, topic: &str) {
    step(client.connect()).await.unwrap();
    let sub = step(client.subscribe([topic]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    sub.detach().await;
    step(client.disconnect()).await.unwrap();
}
