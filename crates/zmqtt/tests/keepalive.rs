//! Keepalive (SPEC 1.3): PINGREQ when nothing was sent for `keepalive`
//! seconds, the connection counted as lost when PINGRESP does not come in
//! time; `ping()` measures a round trip and times out.

mod support;

use std::time::{Duration, Instant};

use support::{broker, step, unique_topic, FakeBroker, FaultProxy};
use zmqtt::{create_client, ConnectionState, Error, QoS, ReconnectConfig};
use zmqtt_proto::{Packet, ProtocolVersion};

/// Keep alive of the clients here, in seconds; the ping timeout is then half
/// of it (SPEC 1.3 "keepalive/2, at most 30 s").
const KEEPALIVE: u16 = 1;
const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// Scheduling slack allowed on top of the protocol's own delays.
const SLACK: Duration = Duration::from_millis(1500);

/// MQTT-3.1.2-23: an idle client sends PINGREQ within the keep alive; an
/// unanswered one ends the connection after the ping timeout. (3.1.1 has no
/// error DISCONNECT: the client just closes.)
#[tokio::test]
async fn idle_client_pings_and_closes_when_pingresp_does_not_come() {
    let fake = FakeBroker::start();
    let client = create_client("127.0.0.1")
        .port(fake.port())
        .keepalive(KEEPALIVE)
        .reconnect(ReconnectConfig::disabled())
        .build();
    let connecting = {
        let client = client.clone();
        tokio::spawn(async move { client.connect().await })
    };
    let (mut conn, connect) = fake.accept_client(false).await;
    assert_eq!(connect.keep_alive, KEEPALIVE);
    step(connecting).await.unwrap().unwrap();
    let keepalive = Duration::from_secs(KEEPALIVE.into());
    // One PINGREQ is answered, the next is not.
    {
        let idle_since = Instant::now();
        assert_eq!(
            conn.recv_packet(ProtocolVersion::V311).await,
            Packet::PingReq
        );
        let waited = idle_since.elapsed();
        assert!(waited <= keepalive + SLACK, "PINGREQ after {waited:?}");
        assert!(waited >= keepalive / 2, "PINGREQ too early: {waited:?}");
        conn.send_packet(&Packet::PingResp, ProtocolVersion::V311)
            .await;
    }
    assert_eq!(client.state(), ConnectionState::Connected);
    assert_eq!(
        conn.recv_packet(ProtocolVersion::V311).await,
        Packet::PingReq
    );
    conn.expect_closed_within(PING_TIMEOUT + SLACK).await;
    match step(client.stopped()).await {
        Some(Error::Timeout { what, after }) => {
            assert_eq!(what, "PINGRESP");
            assert_eq!(after, PING_TIMEOUT);
        }
        other => panic!("expected a PINGRESP timeout, got {other:?}"),
    }
}

/// A broker that stops answering (the proxy holds every byte) is noticed
/// within keep alive + ping timeout, and reported by `stopped()`.
#[tokio::test]
async fn a_silent_broker_is_noticed_within_the_ping_timeout_v5() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let client = create_client("127.0.0.1")
        .port(proxy.port())
        .keepalive(KEEPALIVE)
        .reconnect(ReconnectConfig::disabled())
        .v5()
        .build();
    step(client.connect()).await.unwrap();
    assert_eq!(
        client.connection_info().unwrap().effective_keepalive,
        KEEPALIVE
    );
    proxy.stall();
    let stalled = Instant::now();
    let error = step(client.stopped()).await.expect("the loss is reported");
    let noticed = stalled.elapsed();
    assert!(
        matches!(
            error,
            Error::Timeout {
                what: "PINGRESP",
                ..
            }
        ),
        "{error:?}"
    );
    let limit = Duration::from_secs(KEEPALIVE.into()) + PING_TIMEOUT + SLACK;
    assert!(noticed <= limit, "noticed after {noticed:?}");
    assert!(noticed >= PING_TIMEOUT, "too early: {noticed:?}");
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

/// A client that keeps publishing QoS 0 is never idle on its sending side,
/// yet a broker that stopped answering must still be noticed: the receiving
/// side idle for keep alive triggers the ping, whose timeout ends it.
#[tokio::test]
async fn a_busy_qos0_publisher_notices_a_silent_broker() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let client = create_client("127.0.0.1")
        .port(proxy.port())
        .keepalive(KEEPALIVE)
        .reconnect(ReconnectConfig::disabled())
        .build();
    step(client.connect()).await.unwrap();
    proxy.stall();
    let stalled = Instant::now();
    let topic = unique_topic("keepalive/busy");
    let publisher = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            // Ends with the error once the client has given up.
            loop {
                ticks.tick().await;
                if client.publish(topic.as_str(), "tick").await.is_err() {
                    return;
                }
            }
        })
    };
    let error = step(client.stopped()).await.expect("the loss is reported");
    let noticed = stalled.elapsed();
    assert!(
        matches!(
            error,
            Error::Timeout {
                what: "PINGRESP",
                ..
            }
        ),
        "{error:?}"
    );
    let limit = Duration::from_secs(KEEPALIVE.into()) + PING_TIMEOUT + SLACK;
    assert!(noticed <= limit, "noticed after {noticed:?}");
    step(publisher).await.unwrap();
}

/// With reconnection on, the loss leads to a new connection attempt, which
/// completes once the broker answers again; a QoS 1 publish made meanwhile
/// waits for it.
#[tokio::test]
async fn a_silent_broker_is_left_and_the_client_reconnects_after_resume() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let client = create_client("127.0.0.1")
        .port(proxy.port())
        .keepalive(KEEPALIVE)
        .reconnect(ReconnectConfig {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_attempts: None,
            ..ReconnectConfig::default()
        })
        .build();
    step(client.connect()).await.unwrap();
    proxy.stall();
    let stalled = Instant::now();
    // The second TCP connection is the client's reconnection attempt: it
    // gave up on the first.
    proxy.wait_for_connections(2).await;
    let noticed = stalled.elapsed();
    let limit = Duration::from_secs(KEEPALIVE.into()) + PING_TIMEOUT + SLACK;
    assert!(noticed <= limit, "noticed after {noticed:?}");
    assert_ne!(client.state(), ConnectionState::Connected);
    proxy.resume();
    let topic = unique_topic("keepalive/back");
    step(client.publish(topic, "back").qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let info = client.connection_info().unwrap();
    assert!(info.connection_id >= 2, "{info:?}");
    assert_eq!(client.state(), ConnectionState::Connected);
    step(client.disconnect()).await.unwrap();
}

/// `ping()` returns the round-trip time; a PINGRESP that does not come in
/// time is `Error::Timeout` (SPEC 1.3); the connection itself stays up.
#[tokio::test]
async fn ping_measures_a_round_trip_and_times_out() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let client = create_client("127.0.0.1").port(proxy.port()).v5().build();
    step(client.connect()).await.unwrap();
    let started = Instant::now();
    let rtt = step(client.ping(Duration::from_secs(5))).await.unwrap();
    assert!(rtt > Duration::ZERO && rtt <= started.elapsed(), "{rtt:?}");

    // Concurrent pings each get their answer.
    let pings = futures::future::join_all((0..3).map(|_| client.ping(Duration::from_secs(5))));
    for rtt in step(pings).await {
        assert!(rtt.unwrap() > Duration::ZERO);
    }

    proxy.stall_upstream_to_client();
    let limit = Duration::from_millis(300);
    let started = Instant::now();
    match step(client.ping(limit)).await {
        Err(Error::Timeout { what, after }) => {
            assert_eq!(what, "PINGRESP");
            assert_eq!(after, limit);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() >= limit);
    // The ping timeout of the connection (30 s with keep alive 60) has not
    // passed: once the broker's answers flow again, so do pings.
    proxy.resume();
    step(client.ping(Duration::from_secs(5))).await.unwrap();
    assert_eq!(client.connection_info().unwrap().connection_id, 1);
    step(client.disconnect()).await.unwrap();
}
