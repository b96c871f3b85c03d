//! Reconnection (SPEC 1.5), session resume and resend (SPEC 1.4), the Will on
//! every connection (SPEC 1.6), against mosquitto.

mod support;

use std::time::Duration;

use support::{broker, broker_with, publish_qos1, step, unique_topic, v311, FaultProxy};
use zmqtt::{
    create_client, Client, ClientBuilder, ConnectionState, Error, Protocol, QoS, ReconnectConfig,
    Will, V311, V5,
};
use zmqtt_testbed::{Broker, BrokerOptions};

fn fast_retries() -> ReconnectConfig {
    ReconnectConfig {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_attempts: None,
        ..ReconnectConfig::default()
    }
}

fn builder(port: u16) -> ClientBuilder<V311> {
    create_client("127.0.0.1")
        .port(port)
        .reconnect(fast_retries())
}

/// Restarts mosquitto (gracefully: it saves its database) off the runtime.
async fn restart(broker: Broker) -> Broker {
    tokio::task::spawn_blocking(move || {
        let mut broker = broker;
        broker.restart().expect("restart");
        broker
    })
    .await
    .unwrap()
}

/// Waits until `client` has noticed that its connection is gone: a ping can
/// only fail once the driver saw the loss.
async fn wait_for_loss<V: Protocol>(client: &Client<V>) {
    loop {
        match step(client.ping(Duration::from_secs(30))).await {
            Err(Error::Disconnected { .. }) => return,
            Ok(_) => tokio::task::yield_now().await,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

async fn persistent_session_resumes<V: Protocol>(
    subscriber: Client<V>,
    publisher: Client<V>,
    broker: Broker,
) {
    step(subscriber.connect()).await.unwrap();
    step(publisher.connect()).await.unwrap();
    let topic = unique_topic("reconnect/persistent");
    let mut sub = step(subscriber.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    publish_qos1(&publisher, topic.as_str(), "before").await;
    assert_eq!(
        step(sub.recv()).await.unwrap().payload_str(),
        Some("before")
    );
    // Its PUBACK has reached the broker once a later PINGRESP is back;
    // otherwise the resumed session would (rightly) deliver it again.
    step(subscriber.ping(Duration::from_secs(5))).await.unwrap();

    let broker = restart(broker).await;
    // Waits for the publisher's reconnection; the broker keeps the message
    // for the subscriber's session until it is back.
    publish_qos1(&publisher, topic.as_str(), "after").await;
    let message = step(sub.recv()).await.expect("the subscription survived");
    assert_eq!(message.payload_str(), Some("after"));
    let info = subscriber.connection_info().unwrap();
    assert_eq!(info.connection_id, 2);
    assert!(info.session_present);
    assert_eq!(subscriber.state(), ConnectionState::Connected);
    step(subscriber.disconnect()).await.unwrap();
    step(publisher.disconnect()).await.unwrap();
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_resumes_after_a_broker_restart_v311() {
    let broker = broker_with(BrokerOptions::new().persistence(true));
    let port = broker.port();
    let id = unique_topic("sub").replace('/', "-");
    let subscriber = builder(port).client_id(id).clean_session(false).build();
    let publisher = builder(port).build();
    persistent_session_resumes(subscriber, publisher, broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_resumes_after_a_broker_restart_v5() {
    let broker = broker_with(BrokerOptions::new().persistence(true));
    let port = broker.port();
    let id = unique_topic("sub").replace('/', "-");
    let subscriber: Client<V5> = builder(port)
        .client_id(id)
        .clean_session(false)
        .v5()
        .session_expiry_interval(3600)
        .build();
    let publisher = builder(port).v5().build();
    persistent_session_resumes(subscriber, publisher, broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_session_subscribes_again_after_a_restart() {
    let broker = broker();
    let port = broker.port();
    let subscriber = builder(port).v5().build();
    let publisher = builder(port).v5().build();
    step(subscriber.connect()).await.unwrap();
    step(publisher.connect()).await.unwrap();
    let topic = unique_topic("reconnect/clean");
    let mut sub = step(subscriber.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();

    let broker = restart(broker).await;
    // Retained, so the subscriber gets it whenever its new subscription is made.
    step(
        publisher
            .publish(topic.as_str(), "retained")
            .qos(QoS::AtLeastOnce)
            .retain(true),
    )
    .await
    .unwrap();
    let message = step(sub.recv()).await.expect("subscribed again");
    // (RETAIN is set only if the subscription came after the publish.)
    assert_eq!(message.payload_str(), Some("retained"));
    let info = subscriber.connection_info().unwrap();
    assert_eq!(info.connection_id, 2);
    assert!(!info.session_present);
    step(subscriber.disconnect()).await.unwrap();
    step(publisher.disconnect()).await.unwrap();
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_made_during_an_outage_completes_after_reconnecting() {
    let mut broker = broker();
    let client = builder(broker.port()).build();
    step(client.connect()).await.unwrap();
    let topic = unique_topic("reconnect/outage");
    let mut sub = step(client.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    broker = tokio::task::spawn_blocking(move || {
        broker.kill().unwrap();
        broker
    })
    .await
    .unwrap();
    wait_for_loss(&client).await;
    assert_ne!(client.state(), ConnectionState::Connected);
    // QoS 0 fails at once while reconnecting; QoS 1 waits for the connection.
    assert!(matches!(
        client.publish(topic.as_str(), "lost").await,
        Err(Error::Disconnected { .. })
    ));
    let waiting = {
        let client = client.clone();
        let topic = topic.clone();
        tokio::spawn(async move { client.publish(topic, "waited").qos(QoS::AtLeastOnce).await })
    };
    let broker = tokio::task::spawn_blocking(move || {
        broker.start_again().unwrap();
        broker
    })
    .await
    .unwrap();
    step(waiting).await.unwrap().unwrap();
    let message = step(sub.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("waited"));
    step(client.disconnect()).await.unwrap();
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reconnect_a_loss_stops_the_client() {
    let mut broker = broker();
    let client = v311(broker.port());
    step(client.connect()).await.unwrap();
    let topic = unique_topic("reconnect/disabled");
    let mut sub = step(client.subscribe([topic.as_str()])).await.unwrap();
    let receiving = tokio::spawn(async move {
        let next = sub.recv().await;
        (next.is_none(), sub.error())
    });
    broker = tokio::task::spawn_blocking(move || {
        broker.kill().unwrap();
        broker
    })
    .await
    .unwrap();
    let (ended, error) = step(receiving).await.unwrap();
    assert!(ended, "a waiting recv() wakes up");
    assert!(
        error.is_some(),
        "and the error that stopped the client is there"
    );
    assert!(step(client.stopped()).await.is_some());
    assert_eq!(client.state(), ConnectionState::Disconnected);
    assert!(matches!(
        client
            .publish(topic.as_str(), "x")
            .qos(QoS::AtLeastOnce)
            .await,
        Err(Error::Disconnected { .. })
    ));
    // disconnect() after a loss is fine.
    step(client.disconnect()).await.unwrap();
    drop(broker);
}

#[tokio::test]
async fn first_connect_gives_up_after_max_attempts() {
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = create_client("127.0.0.1")
        .port(port)
        .reconnect(ReconnectConfig {
            initial_delay: Duration::from_millis(10),
            max_attempts: Some(3),
            ..ReconnectConfig::default()
        })
        .build();
    match step(client.connect()).await {
        Err(Error::Io(error)) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected a refused connection, got {other:?}"),
    }
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn a_refusal_is_never_retried() {
    let broker = broker();
    // Retrying forever would hang this test: the refusal must end it.
    let client = create_client("127.0.0.1")
        .port(broker.password_port())
        .credentials(broker.username(), "wrong password")
        .reconnect(fast_retries())
        .build();
    match step(client.connect()).await {
        Err(Error::Connect { return_code, .. }) => {
            // 3.1.1: 4 bad user name or password, or 5 not authorized.
            assert!(matches!(return_code, 4 | 5), "{return_code}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let good = create_client("127.0.0.1")
        .port(broker.password_port())
        .credentials(broker.username(), broker.password())
        .build();
    step(good.connect()).await.unwrap();
    step(good.disconnect()).await.unwrap();
}

#[tokio::test]
async fn the_will_is_sent_on_every_connection() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let will_topic = unique_topic("reconnect/will");
    let observer = create_client("127.0.0.1").port(broker.port()).build();
    step(observer.connect()).await.unwrap();
    let mut wills = step(
        observer
            .subscribe([will_topic.as_str()])
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    let client = create_client("127.0.0.1")
        .port(proxy.port())
        .will(Will::new(will_topic.as_str(), "gone").qos(QoS::AtLeastOnce))
        .reconnect(fast_retries())
        .build();
    step(client.connect()).await.unwrap();
    for connection in 1..=2 {
        assert_eq!(client.connection_info().unwrap().connection_id, connection);
        proxy.cut();
        let will = step(wills.recv()).await.unwrap();
        assert_eq!(will.payload_str(), Some("gone"));
        // The client comes back (a QoS 1 publish waits for it).
        let topic = unique_topic("reconnect/alive");
        step(client.publish(topic, "x").qos(QoS::AtLeastOnce))
            .await
            .unwrap();
    }
    assert_eq!(client.connection_info().unwrap().connection_id, 3);
    // A clean DISCONNECT: no Will.
    step(client.disconnect()).await.unwrap();
    let probe = unique_topic("reconnect/probe");
    let mut probes = step(observer.subscribe([probe.as_str()])).await.unwrap();
    step(observer.publish(probe.as_str(), "end")).await.unwrap();
    step(probes.recv()).await.unwrap();
    assert!(wills.try_recv().is_none(), "no Will after DISCONNECT");
    step(observer.disconnect()).await.unwrap();
}

/// A QoS 1 publish whose PUBACK is lost with the connection is sent again on
/// the resumed session (DUP, same packet id, MQTT-4.4.0-1) and its waiting
/// `publish().await` completes.
async fn unacknowledged_publish_is_resent_on_resume<V: Protocol>(
    client: Client<V>,
    proxy: FaultProxy,
    observer: Client<V311>,
) {
    step(observer.connect()).await.unwrap();
    let topic = unique_topic("reconnect/resend");
    let mut seen = step(observer.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    step(client.connect()).await.unwrap();
    proxy.stall_upstream_to_client();
    let publishing = {
        let client = client.clone();
        let topic = topic.clone();
        tokio::spawn(async move { client.publish(topic, "resent").qos(QoS::AtLeastOnce).await })
    };
    // The PUBLISH reached the broker; its PUBACK is held by the proxy.
    let first = step(seen.recv()).await.unwrap();
    assert_eq!(first.payload_str(), Some("resent"));
    assert!(!publishing.is_finished());
    proxy.cut();
    proxy.wait_for_connections(2).await;
    proxy.resume();
    step(publishing).await.unwrap().unwrap();
    // The broker got it a second time (it had already answered the first).
    let again = step(seen.recv()).await.unwrap();
    assert_eq!(again.payload_str(), Some("resent"));
    let info = client.connection_info().unwrap();
    assert!(info.session_present);
    assert!(info.connection_id >= 2);
    step(client.disconnect()).await.unwrap();
    step(observer.disconnect()).await.unwrap();
}

#[tokio::test]
async fn unacknowledged_publish_is_resent_on_resume_v311() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let id = unique_topic("resend-311").replace('/', "-");
    let client = builder(proxy.port())
        .client_id(id)
        .clean_session(false)
        .build();
    let observer = builder(broker.port()).build();
    unacknowledged_publish_is_resent_on_resume(client, proxy, observer).await;
}

#[tokio::test]
async fn unacknowledged_publish_is_resent_on_resume_v5() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let id = unique_topic("resend-5").replace('/', "-");
    let client = builder(proxy.port())
        .client_id(id)
        .clean_session(false)
        .v5()
        .session_expiry_interval(600)
        .build();
    let observer = builder(broker.port()).build();
    unacknowledged_publish_is_resent_on_resume(client, proxy, observer).await;
}
