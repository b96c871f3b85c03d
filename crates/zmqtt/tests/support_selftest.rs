//! Tests of the integration-test tools themselves (tests/support): the fault
//! proxy in front of a real mosquitto, and the scripted fake broker.

mod support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use support::{broker, unique_topic, with_timeout, within, FakeBroker, FakeConnection, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zmqtt_proto::codec::{decode, encode};
use zmqtt_proto::{
    Connect, LastWill, Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, Subscribe,
    SubscribeFilter, SubscriptionOptions,
};

/// Where absence of bytes is the point, how long "nothing arrives" is checked.
const SILENCE: Duration = Duration::from_millis(300);

const V311: ProtocolVersion = ProtocolVersion::V311;

fn connect_packet(client_id: &str, version: ProtocolVersion) -> Connect {
    Connect {
        protocol: version,
        client_id: client_id.to_owned(),
        keep_alive: 60,
        clean_start: true,
        ..Connect::default()
    }
}

/// A raw MQTT 3.1.1 session to `addr`: CONNECT sent, success CONNACK read.
async fn raw_session(addr: std::net::SocketAddr, connect: Connect) -> FakeConnection {
    let version = connect.protocol;
    let mut session = FakeConnection::connect(addr).await;
    session
        .send_packet(&Packet::Connect(Box::new(connect)), version)
        .await;
    match session.recv_packet(version).await {
        Packet::ConnAck(connack) => assert_eq!(connack.code, ReasonCode::SUCCESS),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    session
}

/// A raw 3.1.1 session subscribed (QoS 0) to `filter`.
async fn watcher(addr: std::net::SocketAddr, filter: &str) -> FakeConnection {
    let mut session = raw_session(addr, connect_packet(&unique_topic("watcher"), V311)).await;
    let subscribe = Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter {
            filter: filter.to_owned(),
            options: SubscriptionOptions::default(),
        }],
        properties: Default::default(),
    };
    session
        .send_packet(&Packet::Subscribe(subscribe), V311)
        .await;
    match session.recv_packet(V311).await {
        Packet::SubAck(suback) => assert_eq!(suback.reason_codes, vec![ReasonCode::SUCCESS]),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    session
}

async fn expect_publish(session: &mut FakeConnection, topic: &str) -> Publish {
    match session.recv_packet(V311).await {
        Packet::Publish(publish) => {
            assert_eq!(publish.topic, topic);
            publish
        }
        other => panic!("expected PUBLISH on {topic}, got {other:?}"),
    }
}

async fn ping(session: &mut FakeConnection) {
    session.send_packet(&Packet::PingReq, V311).await;
}

async fn expect_pingresp(session: &mut FakeConnection) {
    assert_eq!(session.recv_packet(V311).await, Packet::PingResp);
}

#[tokio::test]
async fn proxy_forwards_connect_and_connack_both_versions() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    assert_eq!(proxy.upstream(), broker.addr());
    assert_eq!(proxy.addr().port(), proxy.port());
    assert_eq!(proxy.connections_accepted(), 0);
    with_timeout(async {
        let mut old = raw_session(proxy.addr(), connect_packet("selftest-311", V311)).await;
        let new = raw_session(
            proxy.addr(),
            connect_packet("selftest-5", ProtocolVersion::V5),
        )
        .await;
        proxy.wait_for_connections(2).await;
        assert_eq!(proxy.connections_accepted(), 2);
        assert_eq!(proxy.open_connections(), 2);
        assert_eq!(proxy.connections_refused(), 0);
        // The connection keeps forwarding after the handshake.
        ping(&mut old).await;
        expect_pingresp(&mut old).await;
        drop(new);
    })
    .await;
}

#[tokio::test]
async fn cut_resets_the_client_and_the_broker_sees_an_abrupt_loss() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let will_topic = unique_topic("selftest/will");
    with_timeout(async {
        let mut watch = watcher(broker.addr(), &will_topic).await;

        // A raw socket, to see exactly how the client side ends.
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut connect = connect_packet("selftest-cut", V311);
        connect.will = Some(LastWill {
            topic: will_topic.clone(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Default::default(),
        });
        let mut bytes = BytesMut::new();
        encode(&Packet::Connect(Box::new(connect)), V311, &mut bytes).unwrap();
        client.write_all(&bytes).await.unwrap();
        let mut connack = [0_u8; 4];
        client.read_exact(&mut connack).await.unwrap();
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);

        proxy.cut();

        // Client side: a reset, not a clean end of stream.
        let mut rest = [0_u8; 16];
        let read = client.read(&mut rest).await;
        assert_eq!(
            read.map_err(|error| error.kind()),
            Err(ErrorKind::ConnectionReset)
        );
        // Broker side: mosquitto publishes the will only when a connection
        // ends without DISCONNECT (MQTT-3.1.2-8), so it saw the loss too.
        let will = expect_publish(&mut watch, &will_topic).await;
        assert_eq!(will.payload, Bytes::from_static(b"gone"));

        // New connections are forwarded as before.
        let mut again = raw_session(proxy.addr(), connect_packet("selftest-cut2", V311)).await;
        assert_eq!(proxy.connections_accepted(), 2);
        ping(&mut again).await;
        expect_pingresp(&mut again).await;
    })
    .await;
}

#[tokio::test]
async fn stall_holds_bytes_until_resume() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    with_timeout(async {
        let mut session = raw_session(proxy.addr(), connect_packet("selftest-stall", V311)).await;
        proxy.stall();
        ping(&mut session).await;
        session.expect_silence(SILENCE).await;
        proxy.resume();
        expect_pingresp(&mut session).await;
        // Forwarding is back to normal afterwards.
        ping(&mut session).await;
        expect_pingresp(&mut session).await;
    })
    .await;
}

#[tokio::test]
async fn stall_upstream_to_client_lets_the_client_packets_through() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let topic = unique_topic("selftest/halfstall");
    with_timeout(async {
        let mut watch = watcher(broker.addr(), &topic).await;
        let mut session =
            raw_session(proxy.addr(), connect_packet("selftest-halfstall", V311)).await;
        proxy.stall_upstream_to_client();
        let publish = Publish {
            qos: QoS::AtLeastOnce,
            topic: topic.clone(),
            packet_id: Some(7),
            payload: Bytes::from_static(b"through"),
            ..Publish::default()
        };
        session.send_packet(&Packet::Publish(publish), V311).await;
        // The broker got it: the watcher receives the message ...
        let delivered = expect_publish(&mut watch, &topic).await;
        assert_eq!(delivered.payload, Bytes::from_static(b"through"));
        // ... but the PUBACK is held back.
        session.expect_silence(SILENCE).await;
        proxy.resume();
        match session.recv_packet(V311).await {
            Packet::PubAck(PubResponse { packet_id, .. }) => assert_eq!(packet_id, 7),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn delay_slows_every_chunk_in_both_directions() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    with_timeout(async {
        let mut session = raw_session(proxy.addr(), connect_packet("selftest-delay", V311)).await;
        let delay = Duration::from_millis(200);
        proxy.delay(delay);
        let started = Instant::now();
        ping(&mut session).await;
        expect_pingresp(&mut session).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed >= 2 * delay,
            "PINGREQ + PINGRESP took {elapsed:?}, expected at least {:?}",
            2 * delay
        );
        proxy.delay(Duration::ZERO);
        ping(&mut session).await;
        expect_pingresp(&mut session).await;
    })
    .await;
}

#[tokio::test]
async fn refuse_new_closes_new_connections_but_not_live_ones() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    with_timeout(async {
        let mut live = raw_session(proxy.addr(), connect_packet("selftest-live", V311)).await;
        proxy.refuse_new(true);
        let mut refused = FakeConnection::connect(proxy.addr()).await;
        refused.expect_closed().await;
        proxy.wait_for_connections(2).await;
        assert_eq!(proxy.connections_refused(), 1);
        assert_eq!(proxy.open_connections(), 1);
        // The live connection still works.
        ping(&mut live).await;
        expect_pingresp(&mut live).await;

        proxy.refuse_new(false);
        let mut accepted = raw_session(proxy.addr(), connect_packet("selftest-new", V311)).await;
        assert_eq!(proxy.connections_accepted(), 3);
        assert_eq!(proxy.connections_refused(), 1);
        ping(&mut accepted).await;
        expect_pingresp(&mut accepted).await;
    })
    .await;
}

#[tokio::test]
async fn wait_for_connections_wakes_on_the_nth_connection() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    with_timeout(async {
        let waiter = proxy.wait_for_connections(2);
        let connector = async {
            let first = FakeConnection::connect(proxy.addr()).await;
            let second = FakeConnection::connect(proxy.addr()).await;
            (first, second)
        };
        let ((), _connections) = tokio::join!(waiter, connector);
        assert_eq!(proxy.connections_accepted(), 2);
    })
    .await;
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections_and_listener() {
    let broker = broker();
    let proxy = FaultProxy::start(broker.addr());
    let addr = proxy.addr();
    with_timeout(async {
        let mut session = raw_session(addr, connect_packet("selftest-drop", V311)).await;
        drop(proxy);
        session.expect_closed().await;
        let refused = TcpStream::connect(addr).await;
        assert!(refused.is_err(), "the listener still accepts after drop");
    })
    .await;
}

#[tokio::test]
async fn fake_broker_round_trip_with_raw_connect_and_connack_bytes() {
    let fake = FakeBroker::start();
    assert_eq!(fake.addr().port(), fake.port());
    with_timeout(async {
        let mut client = TcpStream::connect(fake.addr()).await.unwrap();
        // A 3.1.1 CONNECT written by hand: protocol "MQTT" level 4, clean
        // session, keep alive 60, client id "ab".
        let connect: [u8; 16] = [
            0x10, 14, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 60, 0x00, 0x02, b'a',
            b'b',
        ];
        client.write_all(&connect).await.unwrap();

        let mut connection = fake.accept().await;
        let received = connection.accept_connect(true).await;
        assert_eq!(received.protocol, V311);
        assert_eq!(received.client_id, "ab");
        assert_eq!(received.keep_alive, 60);
        assert!(received.clean_start);

        // CONNACK with session present and return code 0.
        let mut connack = [0_u8; 4];
        client.read_exact(&mut connack).await.unwrap();
        assert_eq!(connack, [0x20, 0x02, 0x01, 0x00]);

        // Raw bytes go out exactly as given (here a PINGRESP with a bogus
        // remaining length of 1).
        connection.send_raw(&[0xd0, 0x01, 0xff]).await;
        let mut raw = [0_u8; 3];
        client.read_exact(&mut raw).await.unwrap();
        assert_eq!(raw, [0xd0, 0x01, 0xff]);

        // Packets in, split across writes, are decoded once complete.
        client.write_all(&[0xc0]).await.unwrap();
        client.write_all(&[0x00]).await.unwrap();
        assert_eq!(connection.recv_packet(V311).await, Packet::PingReq);

        // A typed packet out decodes to itself on the client.
        let suback = Packet::SubAck(zmqtt_proto::SubAck {
            packet_id: 3,
            reason_codes: vec![ReasonCode(0x01)],
            properties: Default::default(),
        });
        connection.send_packet(&suback, V311).await;
        let mut buf = BytesMut::new();
        let decoded = loop {
            if let Some(packet) = decode(&mut buf, V311, u32::MAX).unwrap() {
                break packet;
            }
            assert_ne!(client.read_buf(&mut buf).await.unwrap(), 0);
        };
        assert_eq!(decoded, suback);

        drop(client);
        connection.expect_closed().await;
    })
    .await;
}

#[tokio::test]
async fn fake_broker_accept_client_speaks_the_clients_version() {
    let fake = FakeBroker::start();
    with_timeout(async {
        let client = raw_session(
            fake.addr(),
            connect_packet("v5-client", ProtocolVersion::V5),
        );
        let broker_side = fake.accept_client(false);
        let (_client, (mut connection, connect)) = tokio::join!(client, broker_side);
        assert_eq!(connect.protocol, ProtocolVersion::V5);
        assert_eq!(connect.client_id, "v5-client");
        connection.expect_silence(Duration::from_millis(50)).await;
    })
    .await;
}

#[tokio::test]
async fn fake_connection_reset_is_seen_as_a_reset() {
    let fake = FakeBroker::start();
    with_timeout(async {
        let mut client = TcpStream::connect(fake.addr()).await.unwrap();
        let connection = fake.accept().await;
        connection.reset();
        let mut buf = [0_u8; 8];
        let read = client.read(&mut buf).await;
        assert_eq!(
            read.map_err(|error| error.kind()),
            Err(ErrorKind::ConnectionReset)
        );
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "did not close the connection")]
async fn expect_closed_fails_when_the_peer_stays() {
    let fake = FakeBroker::start();
    let _client = TcpStream::connect(fake.addr()).await.unwrap();
    let mut connection = fake.accept().await;
    connection
        .expect_closed_within(Duration::from_millis(100))
        .await;
}

#[tokio::test]
#[should_panic(expected = "expected the peer to close")]
async fn expect_closed_fails_when_the_peer_sends() {
    let fake = FakeBroker::start();
    let mut client = TcpStream::connect(fake.addr()).await.unwrap();
    let mut connection = fake.accept().await;
    client.write_all(&[0xc0, 0x00]).await.unwrap();
    connection.expect_closed().await;
}

#[tokio::test]
#[should_panic(expected = "expected silence")]
async fn expect_silence_fails_when_bytes_arrive() {
    let fake = FakeBroker::start();
    let mut client = TcpStream::connect(fake.addr()).await.unwrap();
    let mut connection = fake.accept().await;
    client.write_all(&[0xc0, 0x00]).await.unwrap();
    connection.expect_silence(Duration::from_secs(5)).await;
}

#[tokio::test]
#[should_panic(expected = "undecodable")]
async fn recv_packet_fails_on_malformed_input() {
    let fake = FakeBroker::start();
    let mut client = TcpStream::connect(fake.addr()).await.unwrap();
    let mut connection = fake.accept().await;
    // PINGREQ must have a remaining length of 0.
    client.write_all(&[0xc0, 0x01, 0x00]).await.unwrap();
    connection.recv_packet(V311).await;
}

#[tokio::test]
#[should_panic(expected = "peer closed the connection while a packet was expected")]
async fn recv_packet_fails_when_the_peer_closes() {
    let fake = FakeBroker::start();
    let client = TcpStream::connect(fake.addr()).await.unwrap();
    let mut connection = fake.accept().await;
    drop(client);
    connection.recv_packet(V311).await;
}

#[test]
fn unique_topics_differ() {
    let first = unique_topic("t");
    let second = unique_topic("t");
    assert_ne!(first, second);
    assert!(first.starts_with("t/"), "{first}");
    assert!(first.contains(&std::process::id().to_string()), "{first}");
}

#[tokio::test]
#[should_panic(expected = "did not finish within")]
async fn within_fails_a_stuck_step_with_its_location() {
    within(Duration::from_millis(50), std::future::pending::<()>()).await;
}

#[tokio::test]
async fn with_timeout_returns_the_output() {
    assert_eq!(with_timeout(async { 7 }).await, 7);
}
