//! The API the Python binding builds on, against mosquitto: `try_send` (QoS 0
//! without waiting), the broker's limits checked before anything is queued,
//! `reset()` (drop the connection as if lost), `Subscription::is_finished`
//! and the stop error being known when a subscription ends.

mod support;

use std::future::IntoFuture;
use std::time::Duration;

use support::{broker, broker_with, unique_topic, v5, with_timeout};
use zmqtt::{create_client, Client, ConnectionState, Error, QoS, ReconnectConfig, V311};
use zmqtt_testbed::BrokerOptions;

fn v311(port: u16, reconnect: ReconnectConfig) -> Client<V311> {
    create_client("127.0.0.1")
        .port(port)
        .reconnect(reconnect)
        .build()
}

fn fast_reconnect() -> ReconnectConfig {
    ReconnectConfig {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        ..ReconnectConfig::default()
    }
}

#[tokio::test]
async fn try_send_queues_a_qos0_publish_that_arrives() {
    let broker = broker();
    let client = v311(broker.info().port, ReconnectConfig::disabled());
    with_timeout(client.connect()).await.unwrap();
    let topic = unique_topic("fast/try-send");
    let mut sub = with_timeout(client.subscribe([topic.as_str()]).into_future())
        .await
        .unwrap();

    assert!(client.publish(topic.as_str(), "hello").try_send().unwrap());

    let message = with_timeout(sub.recv()).await.unwrap();
    assert_eq!(message.topic, topic);
    assert_eq!(&message.payload[..], b"hello");
    with_timeout(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn try_send_refuses_what_it_cannot_queue_without_waiting() {
    let broker = broker();
    let client = v311(broker.info().port, ReconnectConfig::disabled());

    // Not connected yet.
    assert!(matches!(
        client.publish("a/b", "x").try_send(),
        Err(Error::Disconnected { .. })
    ));
    with_timeout(client.connect()).await.unwrap();
    // Invalid topic, refused before anything is queued.
    assert!(matches!(
        client.publish("a/+", "x").try_send(),
        Err(Error::InvalidTopic(_))
    ));
    // QoS 1 needs an answer.
    assert!(matches!(
        client.publish("a/b", "x").qos(QoS::AtLeastOnce).try_send(),
        Err(Error::InvalidArgument(_))
    ));
    with_timeout(client.disconnect()).await.unwrap();
    assert!(matches!(
        client.publish("a/b", "x").try_send(),
        Err(Error::Disconnected { .. })
    ));
}

#[tokio::test]
async fn the_brokers_limits_are_checked_before_queueing() {
    let broker = broker_with(
        BrokerOptions::new()
            .max_qos(1)
            .retain_available(false)
            .max_packet_size(200),
    );
    let client = v5(broker.info().port);
    with_timeout(client.connect()).await.unwrap();

    assert!(matches!(
        client.publish("a/b", "x").retain(true).try_send(),
        Err(Error::RetainNotAvailable)
    ));
    assert!(matches!(
        client.publish("a/b", vec![0u8; 500]).try_send(),
        Err(Error::PacketTooLarge { maximum: 200, .. })
    ));
    // The awaited path refuses the same at once, QoS above the maximum too.
    let refused = with_timeout(
        client
            .publish("a/b", "x")
            .qos(QoS::ExactlyOnce)
            .into_future(),
    )
    .await;
    assert!(matches!(
        refused,
        Err(Error::QoSExceeded {
            requested: QoS::ExactlyOnce,
            maximum: QoS::AtLeastOnce
        })
    ));
    // Within the limits all is well.
    assert!(client.publish("a/b", vec![0u8; 100]).try_send().unwrap());
    with_timeout(
        client
            .publish("a/b", "x")
            .qos(QoS::AtLeastOnce)
            .into_future(),
    )
    .await
    .unwrap();
    with_timeout(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn reset_reconnects_and_subscribes_again() {
    let broker = broker();
    let client = v311(broker.info().port, fast_reconnect());
    with_timeout(client.connect()).await.unwrap();
    let topic = unique_topic("fast/reset");
    let mut sub = with_timeout(
        client
            .subscribe([topic.as_str()])
            .qos(QoS::AtLeastOnce)
            .into_future(),
    )
    .await
    .unwrap();
    assert_eq!(client.connection_info().unwrap().connection_id, 1);

    with_timeout(client.reset()).await.unwrap();
    // The old connection is closed when reset() returns.
    assert_ne!(client.state(), ConnectionState::Connected);

    // Back with a new connection, and the subscription works again.
    with_timeout(client.connect()).await.unwrap();
    assert_eq!(client.connection_info().unwrap().connection_id, 2);
    with_timeout(
        client
            .publish(topic.as_str(), "after")
            .qos(QoS::AtLeastOnce)
            .into_future(),
    )
    .await
    .unwrap();
    let message = with_timeout(sub.recv()).await.unwrap();
    assert_eq!(&message.payload[..], b"after");
    with_timeout(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn reset_does_nothing_when_not_connected() {
    let broker = broker();
    let client = v311(broker.info().port, ReconnectConfig::disabled());
    with_timeout(client.reset()).await.unwrap();
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn reset_without_reconnect_stops_the_client_with_a_clear_error() {
    let broker = broker();
    let client = v311(broker.info().port, ReconnectConfig::disabled());
    with_timeout(client.connect()).await.unwrap();
    let topic = unique_topic("fast/reset-stop");
    let mut sub = with_timeout(client.subscribe([topic.as_str()]).into_future())
        .await
        .unwrap();

    with_timeout(client.reset()).await.unwrap();

    let error = with_timeout(client.stopped()).await.unwrap();
    assert!(error.to_string().contains("reset()"), "{error}");
    assert!(with_timeout(sub.recv()).await.is_none());
    assert!(sub.is_finished());
    assert!(matches!(sub.error(), Some(Error::Disconnected { .. })));
}

#[tokio::test]
async fn is_finished_tells_an_empty_queue_from_an_ended_one() {
    let broker = broker();
    let client = v311(broker.info().port, ReconnectConfig::disabled());
    with_timeout(client.connect()).await.unwrap();
    let topic = unique_topic("fast/finished");
    let mut sub = with_timeout(client.subscribe([topic.as_str()]).into_future())
        .await
        .unwrap();
    assert!(sub.try_recv().is_none());
    assert!(!sub.is_finished(), "live and empty");

    with_timeout(client.disconnect()).await.unwrap();
    assert!(sub.try_recv().is_none());
    assert!(sub.is_finished(), "ended by disconnect()");
    // A plain disconnect() is no failure.
    assert!(sub.error().is_none());
}

#[tokio::test]
async fn a_subscription_ended_by_a_loss_knows_why_at_once() {
    let mut broker = broker();
    let client = v311(broker.info().port, ReconnectConfig::disabled());
    with_timeout(client.connect()).await.unwrap();
    let topic = unique_topic("fast/loss");
    let mut sub = with_timeout(client.subscribe([topic.as_str()]).into_future())
        .await
        .unwrap();

    broker.kill().unwrap();

    assert!(with_timeout(sub.recv()).await.is_none());
    // No wait for the client's status: the reason is there when the queue ends.
    assert!(sub.error().is_some());
}

#[tokio::test]
async fn connection_ids_keep_counting_across_connect_calls() {
    let broker = broker();
    let client = v311(broker.info().port, ReconnectConfig::disabled());
    with_timeout(client.connect()).await.unwrap();
    assert_eq!(client.connection_info().unwrap().connection_id, 1);
    with_timeout(client.disconnect()).await.unwrap();
    with_timeout(client.connect()).await.unwrap();
    assert_eq!(client.connection_info().unwrap().connection_id, 2);
    with_timeout(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn an_ack_for_a_lost_connection_fails_and_the_message_comes_again() {
    let broker = broker();
    let port = broker.info().port;
    let id = unique_topic("fast-ack").replace('/', "-");
    let client = create_client("127.0.0.1")
        .port(port)
        .client_id(id)
        .clean_session(false)
        .reconnect(fast_reconnect())
        .build();
    with_timeout(client.connect()).await.unwrap();
    let topic = unique_topic("fast/ack-lost");
    let mut sub = with_timeout(
        client
            .subscribe([topic.as_str()])
            .qos(QoS::AtLeastOnce)
            .auto_ack(false)
            .into_future(),
    )
    .await
    .unwrap();
    let publisher = v311(port, ReconnectConfig::disabled());
    with_timeout(publisher.connect()).await.unwrap();
    with_timeout(
        publisher
            .publish(topic.as_str(), "pending")
            .qos(QoS::AtLeastOnce)
            .into_future(),
    )
    .await
    .unwrap();
    let old = with_timeout(sub.recv()).await.unwrap();

    with_timeout(client.reset()).await.unwrap();
    with_timeout(client.connect()).await.unwrap();

    assert!(matches!(old.ack().await, Err(Error::Disconnected { .. })));
    let again = with_timeout(sub.recv()).await.unwrap();
    assert_eq!(&again.payload[..], b"pending");
    again.ack().await.unwrap();
    again.ack().await.unwrap(); // idempotent
    with_timeout(client.disconnect()).await.unwrap();
    with_timeout(publisher.disconnect()).await.unwrap();
}
