//! A broker killed (SIGKILL, not a graceful restart) and started again in
//! the middle of a stream of QoS 1 and QoS 2 publishes, with persistent
//! sessions on both sides (SPEC 1.4, 1.5): nothing is lost, QoS 2 arrives
//! exactly once.
//!
//! mosquitto saves its database after every change here (`autosave_on_changes`,
//! `autosave_interval 1`), so what it acknowledged before the kill survives
//! it. The kill is made while the broker is idle (every earlier message
//! delivered and acknowledged, proven by ping round trips that mosquitto
//! handles after saving): a SIGKILL in the middle of its own bookkeeping
//! would lose what it had acknowledged but not yet saved, which no client
//! can make up for. The publisher's next PUBLISH is in flight all the same:
//! its proxy holds it while the broker dies.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{broker_with, publish_qos1, step, unique_topic, FaultProxy};
use zmqtt::{create_client, Client, ClientBuilder, Protocol, QoS, ReconnectConfig, V311};
use zmqtt_testbed::{Broker, BrokerOptions};

/// Messages of each QoS; half before the kill, half through the outage.
const PER_QOS: usize = 20;

fn persistent_broker() -> Broker {
    broker_with(
        BrokerOptions::new()
            .persistence(true)
            .extra_config("autosave_on_changes true")
            .extra_config("autosave_interval 1"),
    )
}

fn persistent(port: u16, client_id: &str) -> ClientBuilder<V311> {
    create_client("127.0.0.1")
        .port(port)
        .client_id(client_id)
        .clean_session(false)
        .reconnect(ReconnectConfig {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_attempts: None,
            ..ReconnectConfig::default()
        })
}

/// Publishes `q1-<n>` at QoS 1 and `q2-<n>` at QoS 2 for every `n` in
/// `range`, awaiting each.
async fn publish_range<V: Protocol>(
    client: &Client<V>,
    topic: &str,
    range: std::ops::Range<usize>,
) {
    for n in range {
        client
            .publish(topic, format!("q1-{n}"))
            .qos(QoS::AtLeastOnce)
            .await
            .unwrap_or_else(|error| panic!("q1-{n}: {error}"));
        client
            .publish(topic, format!("q2-{n}"))
            .qos(QoS::ExactlyOnce)
            .await
            .unwrap_or_else(|error| panic!("q2-{n}: {error}"));
    }
}

/// Three ping round trips: every packet sent before them has been handled by
/// the broker in an earlier turn of its loop, and saved.
async fn settle<V: Protocol>(client: &Client<V>) {
    for _ in 0..3 {
        step(client.ping(Duration::from_secs(5))).await.unwrap();
    }
}

async fn kill(broker: Broker) -> Broker {
    tokio::task::spawn_blocking(move || {
        let mut broker = broker;
        broker.kill().expect("kill mosquitto");
        broker
    })
    .await
    .unwrap()
}

async fn start_again(broker: Broker) -> Broker {
    tokio::task::spawn_blocking(move || {
        let mut broker = broker;
        broker.start_again().expect("start mosquitto again");
        broker
    })
    .await
    .unwrap()
}

async fn nothing_lost_through_a_broker_kill<V: Protocol>(
    broker: Broker,
    proxy: FaultProxy,
    subscriber: Client<V>,
    publisher: Client<V>,
) {
    let topic = unique_topic("outage/stream");
    step(subscriber.connect()).await.unwrap();
    let mut sub = step(subscriber.subscribe([topic.as_str()]).qos(QoS::ExactlyOnce))
        .await
        .unwrap();
    step(publisher.connect()).await.unwrap();

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let half = PER_QOS / 2;
    step(publish_range(&publisher, &topic, 0..half)).await;
    while seen.len() < 2 * half {
        let message = step(sub.recv()).await.expect("subscription alive");
        *seen
            .entry(message.payload_str().unwrap().to_owned())
            .or_default() += 1;
    }
    settle(&subscriber).await;
    settle(&publisher).await;

    // The next PUBLISH leaves the publisher but is held by the proxy while
    // the broker dies; the rest are made during the outage.
    proxy.stall();
    let streaming = {
        let publisher = publisher.clone();
        let topic = topic.clone();
        tokio::spawn(async move { publish_range(&publisher, &topic, half..PER_QOS).await })
    };
    let broker = kill(broker).await;
    proxy.resume();
    let broker = start_again(broker).await;
    step(streaming).await.unwrap();
    publish_qos1(&publisher, topic.as_str(), "end").await;
    loop {
        let message = step(sub.recv()).await.expect("subscription alive");
        let payload = message.payload_str().unwrap().to_owned();
        if payload == "end" {
            break;
        }
        *seen.entry(payload).or_default() += 1;
    }

    for n in 0..PER_QOS {
        let q1 = seen.get(&format!("q1-{n}")).copied().unwrap_or(0);
        assert!(q1 >= 1, "QoS 1 message {n} lost: {seen:?}");
        let q2 = seen.get(&format!("q2-{n}")).copied().unwrap_or(0);
        assert_eq!(
            q2, 1,
            "QoS 2 message {n} must arrive exactly once: {seen:?}"
        );
    }
    // Both sessions were resumed from the broker's saved database.
    for client_info in [subscriber.connection_info(), publisher.connection_info()] {
        let info = client_info.unwrap();
        assert!(info.connection_id >= 2, "{info:?}");
        assert!(info.session_present, "{info:?}");
    }
    step(subscriber.disconnect()).await.unwrap();
    step(publisher.disconnect()).await.unwrap();
    drop(proxy);
    drop(broker);
}

#[tokio::test]
async fn nothing_lost_through_a_broker_kill_v311() {
    let broker = persistent_broker();
    let proxy = FaultProxy::start(broker.addr());
    let id = unique_topic("outage-311").replace('/', "-");
    let subscriber = persistent(broker.port(), &format!("{id}-sub")).build();
    let publisher = persistent(proxy.port(), &format!("{id}-pub")).build();
    nothing_lost_through_a_broker_kill(broker, proxy, subscriber, publisher).await;
}

#[tokio::test]
async fn nothing_lost_through_a_broker_kill_v5() {
    let broker = persistent_broker();
    let proxy = FaultProxy::start(broker.addr());
    let id = unique_topic("outage-5").replace('/', "-");
    let subscriber = persistent(broker.port(), &format!("{id}-sub"))
        .v5()
        .session_expiry_interval(3600)
        .build();
    let publisher = persistent(proxy.port(), &format!("{id}-pub"))
        .v5()
        .session_expiry_interval(3600)
        .build();
    nothing_lost_through_a_broker_kill(broker, proxy, subscriber, publisher).await;
}
