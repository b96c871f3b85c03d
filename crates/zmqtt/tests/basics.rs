//! Connect, publish, subscribe, acknowledge, ping, disconnect against mosquitto,
//! on both protocol versions.

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::{broker, step, unique_topic, v311, v5};
use zmqtt::{
    create_client, Client, ConnectionState, Error, Protocol, PublishProperties, QoS, RetainHandling,
};

async fn round_trip<V: Protocol>(client: &Client<V>, qos: QoS) {
    let topic = unique_topic("basics/round-trip");
    let mut sub = step(client.subscribe([topic.as_str()]).qos(qos))
        .await
        .unwrap();
    assert_eq!(sub.granted(), &[zmqtt::ReasonCode(qos as u8)]);
    for n in 0..3 {
        step(
            client
                .publish(topic.as_str(), format!("message {n}"))
                .qos(qos),
        )
        .await
        .unwrap();
    }
    for n in 0..3 {
        let message = step(sub.recv()).await.expect("a message");
        assert_eq!(message.topic, topic);
        assert_eq!(message.payload_str(), Some(format!("message {n}").as_str()));
        assert_eq!(message.qos, qos);
        assert!(!message.retain);
        assert!(!message.needs_ack(), "auto_ack acknowledged it already");
    }
    let result = step(sub.stop()).await.unwrap();
    assert_eq!(result.topic_filters, vec![topic]);
}

#[tokio::test]
async fn v311_round_trip_at_every_qos() {
    let broker = broker();
    let client = v311(broker.port());
    assert_eq!(client.state(), ConnectionState::Disconnected);
    step(client.connect()).await.unwrap();
    assert_eq!(client.state(), ConnectionState::Connected);
    let info = client.connection_info().unwrap();
    assert_eq!(info.connection_id, 1);
    assert!(!info.session_present);
    assert!(info.properties.is_none(), "no properties on 3.1.1");
    assert_eq!(info.effective_session_expiry_interval, None);
    assert_eq!(info.effective_keepalive, 60);
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        round_trip(&client, qos).await;
    }
    step(client.disconnect()).await.unwrap();
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn v5_round_trip_at_every_qos_with_properties() {
    let broker = broker();
    let client = v5(broker.port());
    step(client.connect()).await.unwrap();
    let info = client.connection_info().unwrap();
    assert!(info.properties.is_some());
    assert!(
        !info.effective_client_id.is_empty(),
        "the broker assigned an id"
    );
    assert_eq!(info.effective_session_expiry_interval, Some(0));
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        round_trip(&client, qos).await;
    }

    let topic = unique_topic("basics/properties");
    let mut sub = step(client.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let properties = PublishProperties {
        content_type: Some("text/plain".into()),
        user_properties: vec![("k".into(), "v1".into()), ("k".into(), "v2".into())],
        message_expiry_interval: Some(60),
        ..Default::default()
    };
    step(
        client
            .publish(topic.as_str(), b"payload".as_slice())
            .qos(QoS::AtLeastOnce)
            .properties(properties),
    )
    .await
    .unwrap();
    let message = step(sub.next()).await.unwrap();
    let received = message.properties.expect("5.0 properties");
    assert_eq!(received.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        received.user_properties,
        vec![
            ("k".to_owned(), "v1".to_owned()),
            ("k".to_owned(), "v2".to_owned())
        ]
    );
    assert!(received.message_expiry_interval.is_some());
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn manual_ack_withholds_the_acknowledgement_until_ack() {
    let broker = broker();
    let client = v5(broker.port());
    step(client.connect()).await.unwrap();
    let topic = unique_topic("basics/manual");
    let mut sub = step(
        client
            .subscribe([topic.as_str()])
            .qos(QoS::ExactlyOnce)
            .auto_ack(false),
    )
    .await
    .unwrap();
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtMostOnce] {
        step(client.publish(topic.as_str(), "x").qos(qos))
            .await
            .unwrap();
        let message = step(sub.recv()).await.unwrap();
        assert_eq!(message.qos, qos);
        assert_eq!(message.needs_ack(), qos != QoS::AtMostOnce);
        let copy = message.clone();
        step(message.ack()).await.unwrap();
        assert!(!copy.needs_ack(), "clones share the acknowledgement");
        step(copy.ack()).await.unwrap(); // idempotent
    }
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn ping_measures_a_round_trip() {
    let broker = broker();
    let client = v311(broker.port());
    step(client.connect()).await.unwrap();
    let (a, b) = tokio::join!(
        client.ping(Duration::from_secs(10)),
        client.ping(Duration::from_secs(10))
    );
    assert!(a.unwrap() < Duration::from_secs(10));
    assert!(b.unwrap() < Duration::from_secs(10));
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn disconnect_is_safe_twice_and_calls_then_fail() {
    let broker = broker();
    let client = v311(broker.port());
    // Before connect: nothing to do, and calls are refused.
    step(client.disconnect()).await.unwrap();
    assert!(matches!(
        client.publish("t", "x").await,
        Err(Error::Disconnected { .. })
    ));
    step(client.connect()).await.unwrap();
    let topic = unique_topic("basics/disconnect");
    let mut sub = step(client.subscribe([topic.as_str()])).await.unwrap();
    step(client.disconnect()).await.unwrap();
    step(client.disconnect()).await.unwrap();
    assert!(step(sub.recv()).await.is_none(), "the subscription ended");
    assert!(sub.error().is_none(), "a requested disconnect is no error");
    assert!(client.stopped().await.is_none());
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        assert!(matches!(
            client.publish(topic.as_str(), "x").qos(qos).await,
            Err(Error::Disconnected { .. })
        ));
    }
    assert!(matches!(
        client.ping(Duration::from_secs(1)).await,
        Err(Error::Disconnected { .. })
    ));
    assert!(matches!(
        client.subscribe([topic.as_str()]).await,
        Err(Error::Disconnected { .. })
    ));
    // And the client can connect again.
    step(client.connect()).await.unwrap();
    assert_eq!(
        client.connection_info().unwrap().connection_id,
        2,
        "connection ids count per client, across connect() calls (SPEC 1.3)"
    );
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn invalid_input_is_refused_before_any_io() {
    // Not even a broker: every check happens locally.
    let client = create_client("127.0.0.1")
        .port(9)
        .connect_timeout(Duration::ZERO)
        .build();
    match step(client.connect()).await {
        Err(Error::InvalidArgument(message)) => {
            assert_eq!(message, "mqtt_connect_timeout must be positive")
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let client = v311(9);
    for topic in ["", "a/+", "a/#", "a\0b"] {
        assert!(
            matches!(
                client.publish(topic, "x").await,
                Err(Error::InvalidTopic(_))
            ),
            "{topic:?}"
        );
    }
    match client.publish("a/+", "x").await {
        Err(error) => assert_eq!(
            error.to_string(),
            "Wildcards not allowed in publish topic: 'a/+'"
        ),
        Ok(()) => panic!("published to a wildcard"),
    }
    for filter in ["", "a/#/b", "a+", "$share/g"] {
        assert!(
            matches!(
                client.subscribe([filter]).await,
                Err(Error::InvalidTopic(_))
            ),
            "{filter:?}"
        );
    }
    let no_filters: [&str; 0] = [];
    assert!(matches!(
        client.subscribe(no_filters).await,
        Err(Error::InvalidArgument(_))
    ));
    let client = v5(9);
    assert!(matches!(
        client.subscribe(["a"]).subscription_identifier(0).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn auth_needs_an_authentication_method() {
    let broker = broker();
    let client = v5(broker.port());
    step(client.connect()).await.unwrap();
    match step(client.auth("SCRAM-SHA-1", None)).await {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("authentication method")),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    step(client.disconnect()).await.unwrap();

    // mosquitto has no enhanced authentication (without a plugin): a CONNECT
    // naming a method is refused with 0x8C, and never retried.
    let client = create_client("127.0.0.1")
        .v5()
        .port(broker.port())
        .authentication("SCRAM-SHA-1", None)
        .build();
    match step(client.connect()).await {
        Err(Error::Connect {
            return_code,
            reason,
            properties,
            ..
        }) => {
            assert_eq!(return_code, 0x8C);
            assert_eq!(reason, "Bad authentication method");
            assert!(properties.is_some());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn retained_messages_and_5_0_subscribe_options() {
    let broker = broker();
    let client = v5(broker.port());
    step(client.connect()).await.unwrap();
    let topic = unique_topic("basics/retained");
    step(
        client
            .publish(topic.as_str(), "kept")
            .qos(QoS::AtLeastOnce)
            .retain(true),
    )
    .await
    .unwrap();
    let mut sub = step(client.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let message = step(sub.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("kept"));
    assert!(message.retain, "sent because of the new subscription");
    step(sub.stop()).await.unwrap();

    // Retain handling "do not send", and no local: only others' messages.
    let sentinel = format!("{topic}/sentinel");
    let mut sub = step(
        client
            .subscribe([topic.as_str(), sentinel.as_str()])
            .retain_handling(RetainHandling::DoNotSend)
            .no_local(true),
    )
    .await
    .unwrap();
    step(client.publish(topic.as_str(), "own")).await.unwrap();
    let other = v5(broker.port());
    step(other.connect()).await.unwrap();
    step(other.publish(topic.as_str(), "other")).await.unwrap();
    step(other.publish(sentinel.as_str(), "end")).await.unwrap();
    let first = step(sub.recv()).await.unwrap();
    assert_eq!(
        first.payload_str(),
        Some("other"),
        "no retained, no own message"
    );
    let second = step(sub.recv()).await.unwrap();
    assert_eq!(second.payload_str(), Some("end"));
    step(client.disconnect()).await.unwrap();
    step(other.disconnect()).await.unwrap();
}

/// "Wait as long as it takes" written as `Duration::MAX` must not overflow
/// the clock in the connection task.
#[tokio::test]
async fn the_longest_connect_timeout_still_connects() {
    let broker = broker();
    let client = zmqtt::create_client("127.0.0.1")
        .port(broker.port())
        .connect_timeout(Duration::MAX)
        .build();
    step(client.connect()).await.unwrap();
    step(client.disconnect()).await.unwrap();
}
