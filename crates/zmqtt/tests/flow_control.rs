//! The broker's limits from CONNACK (SPEC 1.4, SPEC 3) and backpressure on the
//! receiving side (SPEC 1.7), against mosquitto.

mod support;

use std::future::IntoFuture;
use std::time::Duration;

use support::{
    broker, broker_with, connect_v311, connect_v5, persistent, publish_qos1, step, unique_topic,
};
use zmqtt::{Client, Error, QoS, V5};
use zmqtt_testbed::BrokerOptions;

/// The connection is still up and usable.
async fn assert_alive(client: &Client<V5>) {
    let topic = unique_topic("flow/alive");
    step(client.publish(topic, "ok").qos(QoS::AtLeastOnce))
        .await
        .unwrap();
}

#[tokio::test]
async fn qos_above_the_brokers_maximum_is_refused_locally() {
    let broker = broker_with(BrokerOptions::new().max_qos(1));
    let client = connect_v5(broker.port()).await;
    assert_eq!(
        client.connection_info().unwrap().maximum_qos,
        QoS::AtLeastOnce
    );
    let topic = unique_topic("flow/max-qos");
    match step(client.publish(topic.as_str(), "x").qos(QoS::ExactlyOnce)).await {
        Err(Error::QoSExceeded { requested, maximum }) => {
            assert_eq!(requested, QoS::ExactlyOnce);
            assert_eq!(maximum, QoS::AtLeastOnce);
        }
        other => panic!("expected QoSExceeded, got {other:?}"),
    }
    assert_alive(&client).await;
    // A subscription above the maximum is granted the maximum.
    let sub = step(client.subscribe([topic.as_str()]).qos(QoS::ExactlyOnce))
        .await
        .unwrap();
    assert_eq!(sub.granted(), &[zmqtt::ReasonCode(1)]);
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn v311_subscription_above_max_qos_is_granted_less() {
    let broker = broker_with(BrokerOptions::new().max_qos(1));
    let client = connect_v311(broker.port()).await;
    let topic = unique_topic("flow/max-qos-311");
    let sub = step(client.subscribe([topic.as_str()]).qos(QoS::ExactlyOnce))
        .await
        .unwrap();
    assert_eq!(sub.granted(), &[zmqtt::ReasonCode(1)]);
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn retain_is_refused_locally_when_not_available() {
    let broker = broker_with(BrokerOptions::new().retain_available(false));
    let client = connect_v5(broker.port()).await;
    assert!(!client.connection_info().unwrap().retain_available);
    let topic = unique_topic("flow/retain");
    assert!(matches!(
        step(client.publish(topic.as_str(), "x").retain(true)).await,
        Err(Error::RetainNotAvailable)
    ));
    assert_alive(&client).await;
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn packets_above_the_brokers_maximum_size_are_refused_locally() {
    let broker = broker_with(BrokerOptions::new().max_packet_size(1024));
    let client = connect_v5(broker.port()).await;
    assert_eq!(
        client.connection_info().unwrap().maximum_packet_size,
        Some(1024)
    );
    let topic = unique_topic("flow/size");
    match step(
        client
            .publish(topic.as_str(), vec![0u8; 2000])
            .qos(QoS::AtLeastOnce),
    )
    .await
    {
        Err(Error::PacketTooLarge { size, maximum }) => {
            assert!(size > 2000);
            assert_eq!(maximum, 1024);
        }
        other => panic!("expected PacketTooLarge, got {other:?}"),
    }
    assert_alive(&client).await;
    // One that fits goes through.
    publish_qos1(&client, topic.as_str(), vec![0u8; 900]).await;
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn in_flight_publishes_stay_within_the_brokers_receive_maximum() {
    // mosquitto announces max_inflight_messages as Receive Maximum and
    // disconnects a 5.0 client that exceeds it (0x93).
    let broker = broker_with(BrokerOptions::new().max_inflight_messages(3));
    let client = connect_v5(broker.port()).await;
    assert_eq!(client.connection_info().unwrap().receive_maximum, 3);
    let topic = unique_topic("flow/inflight");
    let mut sub = step(client.subscribe([topic.as_str()]).qos(QoS::ExactlyOnce))
        .await
        .unwrap();
    // MQTT orders messages per QoS level: one batch of each.
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let publishes = (0..40).map(|n| {
            client
                .publish(topic.as_str(), format!("{n}"))
                .qos(qos)
                .into_future()
        });
        for result in step(futures::future::join_all(publishes)).await {
            result.unwrap();
        }
        for n in 0..40 {
            let message = step(sub.recv()).await.unwrap();
            assert_eq!(message.payload_str(), Some(format!("{n}").as_str()));
            assert_eq!(message.qos, qos);
        }
    }
    assert_alive(&client).await;
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn a_full_subscription_stops_reading_and_publishing_completes_once_it_reads() {
    let broker = broker();
    let client = connect_v5(broker.port()).await;
    let topic = unique_topic("flow/backpressure");
    const BOUND: usize = 4;
    const COUNT: usize = 200;
    let mut sub = step(
        client
            .subscribe([topic.as_str()])
            .qos(QoS::AtLeastOnce)
            .receive_buffer_size(BOUND),
    )
    .await
    .unwrap();
    // The same client publishes to itself: its PUBACKs queue up behind the
    // messages it is not reading, so the publishes cannot all complete until
    // the subscription is read.
    let publishing = {
        let client = client.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let payload = vec![b'x'; 16 * 1024];
            for n in 0..COUNT {
                let mut body = format!("{n:05}").into_bytes();
                body.extend_from_slice(&payload);
                client
                    .publish(topic.as_str(), body)
                    .qos(QoS::AtLeastOnce)
                    .await
                    .unwrap();
            }
        })
    };
    // Nothing is read until the queue is full.
    while sub.len() < BOUND {
        tokio::task::yield_now().await;
        assert!(
            !publishing.is_finished(),
            "all published without anyone reading"
        );
    }
    for n in 0..COUNT {
        assert!(sub.len() <= BOUND, "queue holds {} > {BOUND}", sub.len());
        let message = step(sub.recv()).await.unwrap();
        assert_eq!(&message.payload[..5], format!("{n:05}").as_bytes());
    }
    step(publishing).await.unwrap();
    assert!(sub.is_empty());
    step(client.disconnect()).await.unwrap();
}

// Receive Maximum (our side) is not tested against mosquitto 2.0.11: after
// one PUBACK it sends two queued messages, exceeding a Receive Maximum of 2,
// and the client then (rightly) disconnects with 0x93. The engine tests cover
// the rule (`exceeding_our_receive_maximum_disconnects_with_0x93`).

#[tokio::test]
async fn manual_acks_in_any_order_and_a_dropped_message_comes_back() {
    let broker = broker();
    let id = unique_topic("flow-manual").replace('/', "-");
    let session = || persistent(broker.port(), &id).build();
    let client = session();
    step(client.connect()).await.unwrap();
    let publisher = connect_v311(broker.port()).await;
    let topic = unique_topic("flow/manual");
    let mut sub = step(
        client
            .subscribe([topic.as_str()])
            .qos(QoS::AtLeastOnce)
            .auto_ack(false),
    )
    .await
    .unwrap();
    for n in 0..5 {
        publish_qos1(&publisher, topic.as_str(), format!("{n}")).await;
    }
    let mut messages = Vec::new();
    for n in 0..5 {
        let message = step(sub.recv()).await.unwrap();
        assert_eq!(message.payload_str(), Some(format!("{n}").as_str()));
        messages.push(message);
    }
    // Acknowledged out of order (they leave in order, MQTT-4.6.0-2); message
    // 2 is dropped without an acknowledgement.
    let dropped = messages.remove(2);
    for message in messages.iter().rev() {
        step(message.ack()).await.unwrap();
    }
    drop(dropped);
    step(client.ping(Duration::from_secs(5))).await.unwrap();
    drop(sub);
    step(client.disconnect()).await.unwrap();

    // The session resumed: only the unacknowledged message comes again.
    let client = session();
    step(client.connect()).await.unwrap();
    let mut sub = step(client.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let message = step(sub.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("2"));
    publish_qos1(&publisher, topic.as_str(), "live").await;
    let message = step(sub.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("live"));
    step(client.disconnect()).await.unwrap();
    step(publisher.disconnect()).await.unwrap();
}

#[tokio::test]
async fn a_refused_publish_is_a_publish_error_on_5_0() {
    let broker = broker_with(BrokerOptions::new().acl("topic readwrite allowed/#\n"));
    let client = connect_v5(broker.port()).await;
    let denied = unique_topic("denied");
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        match step(client.publish(denied.as_str(), "x").qos(qos)).await {
            Err(Error::Publish {
                reason_code,
                reason_name,
                ..
            }) => {
                assert_eq!(reason_code, 0x87);
                assert_eq!(reason_name, "Not authorized");
            }
            other => panic!("expected a refusal at {qos:?}, got {other:?}"),
        }
    }
    let allowed = unique_topic("allowed");
    step(client.publish(allowed, "x").qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn a_refused_subscription_is_a_subscribe_error() {
    let broker = broker_with(BrokerOptions::new().deny_subscribe("denied/#"));
    let client = connect_v5(broker.port()).await;
    let denied = unique_topic("denied");
    let allowed = unique_topic("fine");
    match step(client.subscribe([denied.as_str(), allowed.as_str()])).await {
        Err(Error::Subscribe { failures, .. }) => {
            assert_eq!(failures.len(), 1);
            assert_eq!(failures.get(&denied), Some(&0x87));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The filter that was granted was unsubscribed again; the client is fine.
    let mut sub = step(client.subscribe([allowed.as_str()])).await.unwrap();
    step(client.publish(allowed.as_str(), "ok")).await.unwrap();
    assert_eq!(step(sub.recv()).await.unwrap().payload_str(), Some("ok"));
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn detaching_a_full_subscription_lets_the_others_go_on() {
    let broker = broker();
    let client = connect_v5(broker.port()).await;
    let full = unique_topic("flow/full");
    let other = unique_topic("flow/other");
    let stuck = step(
        client
            .subscribe([full.as_str()])
            .qos(QoS::AtLeastOnce)
            .receive_buffer_size(1),
    )
    .await
    .unwrap();
    let mut flowing = step(client.subscribe([other.as_str()])).await.unwrap();
    for n in 0..3 {
        step(client.publish(full.as_str(), format!("{n}")))
            .await
            .unwrap();
    }
    step(client.publish(other.as_str(), "behind"))
        .await
        .unwrap();
    // Arrival order is kept: "behind" waits behind the full subscription.
    while stuck.is_empty() {
        tokio::task::yield_now().await;
    }
    assert_eq!(stuck.len(), 1);
    assert!(flowing.try_recv().is_none());
    // Detaching it releases the rest.
    stuck.detach().await;
    let message = step(flowing.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("behind"));
    step(client.ping(Duration::from_secs(5))).await.unwrap();
    step(client.disconnect()).await.unwrap();
}
