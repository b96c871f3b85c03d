//! Messages of a resumed session that arrive before their subscription exists
//! are held for it (SPEC 1.1 session_replay_buffer_size / _timeout).

mod support;

use support::{broker_with, leave_a_subscription, persistent, publish_qos1, step, unique_topic};
use zmqtt::{create_client, Client, Protocol, QoS};
use zmqtt_testbed::BrokerOptions;

/// `first` subscribes and leaves; messages are published meanwhile; `second`
/// (same session) connects and subscribes only afterwards.
async fn replayed_messages_wait_for_their_subscription<V: Protocol>(
    first: Client<V>,
    second: Client<V>,
    publisher: Client<V>,
) {
    let topic = unique_topic("replay");
    leave_a_subscription(&first, &topic).await;

    step(publisher.connect()).await.unwrap();
    for n in 0..3 {
        publish_qos1(&publisher, topic.as_str(), format!("{n}")).await;
    }

    step(second.connect()).await.unwrap();
    assert!(second.connection_info().unwrap().session_present);
    // The broker sends the queued messages right after CONNACK; the client
    // holds them until this subscription claims them.
    let mut sub = step(second.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    for n in 0..3 {
        let message = step(sub.recv()).await.unwrap();
        assert_eq!(message.payload_str(), Some(format!("{n}").as_str()));
    }
    publish_qos1(&publisher, topic.as_str(), "live").await;
    let message = step(sub.recv()).await.unwrap();
    assert_eq!(
        message.payload_str(),
        Some("live"),
        "nothing else was queued"
    );
    step(second.disconnect()).await.unwrap();
    step(publisher.disconnect()).await.unwrap();
}

#[tokio::test]
async fn replayed_messages_wait_for_their_subscription_v311() {
    let broker = broker_with(BrokerOptions::new());
    let id = unique_topic("replay-311").replace('/', "-");
    let port = broker.port();
    replayed_messages_wait_for_their_subscription(
        persistent(port, &id).build(),
        persistent(port, &id).build(),
        create_client("127.0.0.1").port(port).build(),
    )
    .await;
}

#[tokio::test]
async fn replayed_messages_wait_for_their_subscription_v5() {
    let broker = broker_with(BrokerOptions::new());
    let id = unique_topic("replay-5").replace('/', "-");
    let port = broker.port();
    replayed_messages_wait_for_their_subscription(
        persistent(port, &id)
            .v5()
            .session_expiry_interval(600)
            .build(),
        persistent(port, &id)
            .v5()
            .session_expiry_interval(600)
            .build(),
        create_client("127.0.0.1").port(port).v5().build(),
    )
    .await;
}
