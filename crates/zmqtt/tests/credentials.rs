//! The testbed's password listener (SPEC 1.1 `username` / `password`, SPEC 1.5
//! "a broker refusal is never retried"), on both protocol versions.

mod support;

use std::time::Duration;

use support::{broker, step, unique_topic, FaultProxy};
use zmqtt::{
    create_client, Client, ClientBuilder, ConnectionState, Error, Protocol, QoS, ReasonCode,
    ReconnectConfig, V311,
};

/// Retries forever, quickly: only a refusal that is not retried lets
/// `connect()` return (and the proxy count one connection).
fn retry_forever(port: u16) -> ClientBuilder<V311> {
    create_client("127.0.0.1")
        .port(port)
        .reconnect(ReconnectConfig {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
            max_attempts: None,
            ..ReconnectConfig::default()
        })
}

async fn publishes_and_receives<V: Protocol>(client: &Client<V>) {
    let topic = unique_topic("credentials/ok");
    let mut sub = step(client.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    step(client.publish(topic.as_str(), "in").qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    assert_eq!(step(sub.recv()).await.unwrap().payload_str(), Some("in"));
}

/// `connect()` fails with `Error::Connect` carrying `expected_code` after one
/// attempt, though reconnection is on.
async fn refused_once<V: Protocol>(client: Client<V>, proxy: &FaultProxy, expected_code: u8) {
    let before = proxy.connections_accepted();
    let error = step(client.connect()).await.unwrap_err();
    match &error {
        Error::Connect {
            return_code,
            reason,
            ..
        } => {
            assert_eq!(*return_code, expected_code, "{error}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert_eq!(proxy.connections_accepted() - before, 1, "never retried");
    assert_eq!(client.state(), ConnectionState::Disconnected);
    assert!(client.connection_info().is_none());
    // Calls fail: the client is not running.
    assert!(matches!(
        client.publish("credentials/x", "x").await,
        Err(Error::Disconnected { .. })
    ));
}

#[tokio::test]
async fn good_credentials_connect_on_both_versions() {
    let broker = broker();
    let client = create_client("127.0.0.1")
        .port(broker.password_port())
        .credentials(broker.username(), broker.password())
        .build();
    step(client.connect()).await.unwrap();
    assert_eq!(
        client.connection_info().unwrap().return_code,
        ReasonCode::SUCCESS
    );
    publishes_and_receives(&client).await;
    step(client.disconnect()).await.unwrap();

    let v5 = create_client("127.0.0.1")
        .port(broker.password_port())
        .credentials(broker.username(), broker.password())
        .v5()
        .build();
    step(v5.connect()).await.unwrap();
    publishes_and_receives(&v5).await;
    step(v5.disconnect()).await.unwrap();
}

/// mosquitto answers a wrong password with 3.1.1 return code 5 ("not
/// authorized", MQTT-3.2.2-5: a refusing CONNACK then the close) and 5.0
/// reason code 0x87 ("Not authorized"); missing credentials the same way.
#[tokio::test]
async fn bad_credentials_are_refused_with_the_brokers_code_and_never_retried() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.password_addr());
    let wrong = || retry_forever(proxy.port()).credentials(broker.username(), "not the password");
    refused_once(wrong().build(), &proxy, 5).await;
    refused_once(wrong().v5().build(), &proxy, 0x87).await;
    let unknown_user = retry_forever(proxy.port()).credentials("nobody", broker.password());
    refused_once(unknown_user.build(), &proxy, 5).await;
    refused_once(retry_forever(proxy.port()).build(), &proxy, 5).await;
    refused_once(retry_forever(proxy.port()).v5().build(), &proxy, 0x87).await;
}
