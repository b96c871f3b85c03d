//! The Will (SPEC 1.6) against mosquitto: published when the connection
//! breaks without DISCONNECT, not after a clean `disconnect()`. The client
//! goes through a [`FaultProxy`] so its connection can be cut; the watcher is
//! connected to mosquitto directly.

mod support;

use std::time::Duration;

use bytes::Bytes;
use support::{broker, step, unique_topic, FaultProxy};
use zmqtt::{
    create_client, Client, DisconnectProperties, Protocol, QoS, ReasonCode, ReconnectConfig,
    Subscription, Will, WillProperties, V5,
};
use zmqtt_testbed::Broker;

/// How long a Will that must not come is waited for (after a probe that went
/// through the broker later has arrived).
const NO_WILL_WAIT: Duration = Duration::from_millis(300);

/// A 5.0 watcher connected to the broker directly, subscribed to `topic`.
async fn watcher(broker: &Broker, topic: &str) -> (Client<V5>, Subscription) {
    let watcher = create_client("127.0.0.1").port(broker.port()).v5().build();
    step(watcher.connect()).await.unwrap();
    let wills = step(watcher.subscribe([topic]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    (watcher, wills)
}

/// After `client` left cleanly: a probe published afterwards arrives, and
/// no Will (before it, or shortly after).
async fn assert_no_will(watcher: &Client<V5>, wills: &mut Subscription) {
    let probe = unique_topic("will/probe");
    let mut probes = step(watcher.subscribe([probe.as_str()])).await.unwrap();
    step(watcher.publish(probe.as_str(), "probe"))
        .await
        .unwrap();
    step(probes.recv()).await.unwrap();
    let late = tokio::time::timeout(NO_WILL_WAIT, wills.recv()).await;
    assert!(late.is_err(), "no Will after a clean DISCONNECT: {late:?}");
}

/// The client's connection is cut (both sides see a reset): the Will arrives.
async fn will_after_cut<V: Protocol>(
    client: &Client<V>,
    proxy: &FaultProxy,
    wills: &mut Subscription,
) -> zmqtt::Message {
    step(client.connect()).await.unwrap();
    // Nothing while the client is connected.
    assert!(wills.try_recv().is_none());
    proxy.cut();
    let will = step(wills.recv()).await.unwrap();
    // Reconnection is off: the client reports the loss and stops.
    assert!(step(client.stopped()).await.is_some());
    will
}

/// MQTT-3.1.2-8: the Will sent in CONNECT is published when the network
/// connection closes without DISCONNECT.
#[tokio::test]
async fn will_is_published_after_an_abrupt_close_v311() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let topic = unique_topic("will/311");
    let (watcher, mut wills) = watcher(&broker, &topic).await;
    let client = create_client("127.0.0.1")
        .port(proxy.port())
        .will(Will::new(topic.as_str(), "gone (3.1.1)").qos(QoS::AtLeastOnce))
        .reconnect(ReconnectConfig::disabled())
        .build();
    let will = will_after_cut(&client, &proxy, &mut wills).await;
    assert_eq!(will.topic, topic);
    assert_eq!(will.payload_str(), Some("gone (3.1.1)"));
    assert_eq!(will.qos, QoS::AtLeastOnce);
    assert!(!will.retain);
    step(watcher.disconnect()).await.unwrap();
}

/// MQTT-3.1.2-8 with the 5.0 Will Properties (section 3.1.3.2) in CONNECT: the
/// broker publishes them with the Will.
#[tokio::test]
async fn will_is_published_with_its_properties_after_an_abrupt_close_v5() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let topic = unique_topic("will/5");
    let (watcher, mut wills) = watcher(&broker, &topic).await;
    let properties = WillProperties {
        will_delay_interval: Some(0),
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(600),
        content_type: Some("text/plain".into()),
        response_topic: Some("will/replies".into()),
        correlation_data: Some(Bytes::from_static(b"corr-7")),
        user_properties: vec![("k".into(), "1".into()), ("k".into(), "2".into())],
    };
    let client = create_client("127.0.0.1")
        .port(proxy.port())
        .will(
            Will::new(topic.as_str(), "gone (5.0)")
                .qos(QoS::AtLeastOnce)
                .properties(properties),
        )
        .reconnect(ReconnectConfig::disabled())
        .v5()
        .session_expiry_interval(0)
        .build();
    let will = will_after_cut(&client, &proxy, &mut wills).await;
    assert_eq!(will.payload_str(), Some("gone (5.0)"));
    assert_eq!(will.qos, QoS::AtLeastOnce);
    let got = will.properties.expect("5.0 properties");
    assert_eq!(got.payload_format_indicator, Some(1));
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.response_topic.as_deref(), Some("will/replies"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"corr-7"[..]));
    assert_eq!(
        got.user_properties,
        vec![
            ("k".to_owned(), "1".to_owned()),
            ("k".to_owned(), "2".to_owned())
        ]
    );
    // The broker sends the remaining lifetime (MQTT-3.3.2-6).
    let expiry = got.message_expiry_interval.expect("expiry kept");
    assert!((590..=600).contains(&expiry), "{expiry}");
    step(watcher.disconnect()).await.unwrap();
}

/// MQTT-3.1.2-10 / MQTT-3.14.4-3: after DISCONNECT (reason 0x00 on 5.0) the
/// broker discards the Will.
#[tokio::test]
async fn no_will_after_a_clean_disconnect_on_both_versions() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let topic = unique_topic("will/clean");
    let (watcher, mut wills) = watcher(&broker, &topic).await;

    let v311 = create_client("127.0.0.1")
        .port(proxy.port())
        .will(Will::new(topic.as_str(), "must not come").qos(QoS::AtLeastOnce))
        .build();
    step(v311.connect()).await.unwrap();
    step(v311.disconnect()).await.unwrap();
    assert_no_will(&watcher, &mut wills).await;

    let v5 = create_client("127.0.0.1")
        .port(proxy.port())
        .will(
            Will::new(topic.as_str(), "must not come either").properties(WillProperties {
                content_type: Some("text/plain".into()),
                ..WillProperties::default()
            }),
        )
        .v5()
        .build();
    step(v5.connect()).await.unwrap();
    step(v5.disconnect()).await.unwrap();
    assert_no_will(&watcher, &mut wills).await;
    // A cut after the clean disconnect changes nothing (no connection is left).
    proxy.cut();
    assert_no_will(&watcher, &mut wills).await;
    step(watcher.disconnect()).await.unwrap();
}

/// 5.0 DISCONNECT with reason 0x04 (Disconnect with Will Message) asks the
/// broker to publish the Will although the client leaves cleanly.
#[tokio::test]
async fn disconnect_with_will_message_publishes_it_v5() {
    let broker = broker();
    let topic = unique_topic("will/0x04");
    let (watcher, mut wills) = watcher(&broker, &topic).await;
    let client = create_client("127.0.0.1")
        .port(broker.port())
        .will(Will::new(topic.as_str(), "asked for"))
        .v5()
        .build();
    step(client.connect()).await.unwrap();
    step(client.disconnect_with(
        ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        DisconnectProperties::default(),
    ))
    .await
    .unwrap();
    let will = step(wills.recv()).await.unwrap();
    assert_eq!(will.payload_str(), Some("asked for"));
    assert!(step(client.stopped()).await.is_none(), "a requested stop");
    step(watcher.disconnect()).await.unwrap();
}
