//! A scripted broker ([`FakeBroker`]) that misbehaves in ways mosquitto
//! cannot be made to: malformed or oversized packets, packets out of order,
//! odd CONNACKs, dropped connections at chosen moments. Every check is made
//! on the wire (what the client sent) and at the API (what the caller saw).

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use support::{local, step, FakeBroker, FakeConnection};
use tokio::task::JoinHandle;
use zmqtt::{
    create_client, Client, ClientBuilder, ConnectionState, Error, Protocol, QoS, ReasonCode,
    ReconnectConfig, Subscription, V311,
};
use zmqtt_proto::{
    ConnAck, ConnAckProperties, Disconnect, DisconnectProperties, Packet, ProtocolVersion,
    PubResponse, Publish, PublishProperties, SubAck,
};

const V311P: ProtocolVersion = ProtocolVersion::V311;
const V5P: ProtocolVersion = ProtocolVersion::V5;

/// A client of `fake` that never reconnects (each test scripts one
/// connection unless it says otherwise).
fn client_of(fake: &FakeBroker) -> ClientBuilder<V311> {
    local(fake.port())
}

/// A client of `fake` for the persistent session `client_id`, retrying
/// quickly so that it resumes the session on the next scripted connection.
fn resuming_client_of(fake: &FakeBroker, client_id: &str) -> ClientBuilder<V311> {
    client_of(fake)
        .client_id(client_id)
        .clean_session(false)
        .reconnect(fast_retries())
}

fn fast_retries() -> ReconnectConfig {
    ReconnectConfig {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_attempts: None,
        ..ReconnectConfig::default()
    }
}

fn spawn_connect<V: Protocol>(client: &Client<V>) -> JoinHandle<zmqtt::Result<()>> {
    let client = client.clone();
    tokio::spawn(async move { client.connect().await })
}

/// Connects `client` to `fake`, which answers `connack`.
async fn connect_with<V: Protocol>(
    fake: &FakeBroker,
    client: &Client<V>,
    connack: ConnAck,
) -> FakeConnection {
    let connecting = spawn_connect(client);
    let mut conn = fake.accept().await;
    conn.accept_connect_with(connack).await;
    step(connecting).await.unwrap().unwrap();
    conn
}

async fn connect<V: Protocol>(fake: &FakeBroker, client: &Client<V>) -> FakeConnection {
    connect_with(fake, client, ConnAck::default()).await
}

/// Subscribes `client` to `filter`; the fake grants `qos`.
async fn subscribe<V: Protocol>(
    conn: &mut FakeConnection,
    client: &Client<V>,
    filter: &str,
    qos: QoS,
    auto_ack: bool,
) -> Subscription {
    let subscribing = {
        let client = client.clone();
        let filter = filter.to_owned();
        tokio::spawn(async move { client.subscribe([filter]).qos(qos).auto_ack(auto_ack).await })
    };
    let version = protocol::<V>();
    let Packet::Subscribe(subscribe) = conn.recv_packet(version).await else {
        panic!("expected SUBSCRIBE");
    };
    assert_eq!(subscribe.filters[0].filter, filter);
    let suback = SubAck {
        packet_id: subscribe.packet_id,
        reason_codes: vec![ReasonCode(qos as u8)],
        properties: Default::default(),
    };
    conn.send_packet(&Packet::SubAck(suback), version).await;
    step(subscribing).await.unwrap().unwrap()
}

fn protocol<V: Protocol>() -> ProtocolVersion {
    V::VERSION
}

fn publish_packet(topic: &str, payload: &'static [u8], qos: QoS, packet_id: Option<u16>) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: topic.to_owned(),
        packet_id,
        payload: Bytes::from_static(payload),
        ..Publish::default()
    })
}

fn ack(packet_id: u16) -> PubResponse {
    PubResponse {
        packet_id,
        ..PubResponse::default()
    }
}

/// The next packet must be a PUBLISH; returns it.
async fn expect_publish(conn: &mut FakeConnection, version: ProtocolVersion) -> Publish {
    match conn.recv_packet(version).await {
        Packet::Publish(publish) => publish,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// The next packet must be a 5.0 DISCONNECT with `code`, then the close.
async fn expect_disconnect(conn: &mut FakeConnection, code: ReasonCode) {
    match conn.recv_packet(V5P).await {
        Packet::Disconnect(disconnect) => {
            assert_eq!(disconnect.reason_code, code, "{disconnect:?}")
        }
        other => panic!("expected DISCONNECT {code}, got {other:?}"),
    }
    conn.expect_closed().await;
}

/// The client stopped because of a protocol error with this 5.0 reason code
/// (`None` on 3.1.1).
async fn expect_protocol_error<V: Protocol>(client: &Client<V>, code: Option<ReasonCode>) {
    match step(client.stopped()).await {
        Some(Error::Protocol { reason_code, .. }) => assert_eq!(reason_code, code),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

fn spawn_publish<V: Protocol>(
    client: &Client<V>,
    topic: &str,
    payload: &'static str,
    qos: QoS,
) -> JoinHandle<zmqtt::Result<()>> {
    let client = client.clone();
    let topic = topic.to_owned();
    tokio::spawn(async move { client.publish(topic, payload).qos(qos).await })
}

// ---------------------------------------------------------------------------
// Broken bytes
// ---------------------------------------------------------------------------

/// A PINGRESP with a body: malformed. MQTT-4.8.0-1 (3.1.1): the client closes
/// the connection, without DISCONNECT; a waiting publish ends with an error.
#[tokio::test]
async fn malformed_bytes_close_the_connection_v311() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).build();
    let mut conn = connect(&fake, &client).await;
    let waiting = spawn_publish(&client, "hostile/a", "x", QoS::AtLeastOnce);
    expect_publish(&mut conn, V311P).await;
    conn.send_raw(&[0xd0, 0x01, 0x00]).await;
    conn.expect_closed().await;
    match step(client.stopped()).await {
        Some(Error::Protocol {
            reason_code: None,
            source: Some(_),
            ..
        }) => {}
        other => panic!("expected a protocol error from the decoder, got {other:?}"),
    }
    assert!(matches!(
        step(waiting).await.unwrap(),
        Err(Error::Disconnected { .. })
    ));
}

/// 5.0 section 4.13.1: DISCONNECT 0x81 (Malformed Packet) goes out before the
/// close.
#[tokio::test]
async fn malformed_bytes_are_answered_with_disconnect_0x81_v5() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().build();
    let mut conn = connect(&fake, &client).await;
    conn.send_raw(&[0xd0, 0x01, 0x00]).await;
    expect_disconnect(&mut conn, ReasonCode::MALFORMED_PACKET).await;
    expect_protocol_error(&client, Some(ReasonCode::MALFORMED_PACKET)).await;
}

/// 5.0 section 3.1.2.11.4: a packet above our Maximum Packet Size is a
/// protocol error, DISCONNECT 0x95 — decided from the fixed header alone,
/// before the body arrives.
#[tokio::test]
async fn a_packet_above_our_maximum_packet_size_is_answered_with_0x95() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().maximum_packet_size(128).build();
    let connecting = spawn_connect(&client);
    let mut conn = fake.accept().await;
    let connect = conn.accept_connect(false).await;
    assert_eq!(connect.properties.maximum_packet_size, Some(128));
    step(connecting).await.unwrap().unwrap();
    // PUBLISH, remaining length 200 (0xC8 0x01); the body never comes.
    conn.send_raw(&[0x30, 0xc8, 0x01]).await;
    expect_disconnect(&mut conn, ReasonCode::PACKET_TOO_LARGE).await;
    expect_protocol_error(&client, Some(ReasonCode::PACKET_TOO_LARGE)).await;
}

// ---------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------

/// MQTT-3.2.0-1: the first packet from the server must be CONNACK. Anything
/// else fails `connect()` with `Error::Protocol` (5.0: after DISCONNECT
/// 0x82), and is not retried although reconnection is on.
#[tokio::test]
async fn publish_before_connack_fails_connect_with_a_protocol_error() {
    let builder = |fake: &FakeBroker| {
        create_client("127.0.0.1")
            .port(fake.port())
            .reconnect(fast_retries())
    };
    let fake = FakeBroker::start();
    publish_before_connack(&fake, builder(&fake).build()).await;
    let fake = FakeBroker::start();
    publish_before_connack(&fake, builder(&fake).v5().build()).await;
}

async fn publish_before_connack<V: Protocol>(fake: &FakeBroker, client: Client<V>) {
    let version = protocol::<V>();
    let connecting = spawn_connect(&client);
    let mut conn = fake.accept().await;
    conn.read_connect().await;
    conn.send_packet(
        &publish_packet("early", b"too soon", QoS::AtMostOnce, None),
        version,
    )
    .await;
    let v5 = version == V5P;
    if v5 {
        expect_disconnect(&mut conn, ReasonCode::PROTOCOL_ERROR).await;
    } else {
        conn.expect_closed().await;
    }
    match step(connecting).await.unwrap() {
        Err(Error::Protocol {
            message,
            reason_code,
            ..
        }) => {
            assert!(
                message.contains("Publish packet before CONNACK"),
                "{message}"
            );
            assert_eq!(reason_code, v5.then_some(ReasonCode::PROTOCOL_ERROR));
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

/// SPEC 1.10: a 5.0 DISCONNECT during the handshake is a protocol error too.
#[tokio::test]
async fn disconnect_before_connack_is_a_protocol_error_v5() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().build();
    let connecting = spawn_connect(&client);
    let mut conn = fake.accept().await;
    conn.read_connect().await;
    let disconnect = Disconnect {
        reason_code: ReasonCode::SERVER_BUSY,
        ..Disconnect::default()
    };
    conn.send_packet(&Packet::Disconnect(disconnect), V5P).await;
    assert!(matches!(
        step(connecting).await.unwrap(),
        Err(Error::Protocol { .. })
    ));
}

/// SPEC 1.10: a connection closed before CONNACK is `Error::Disconnected`.
#[tokio::test]
async fn close_before_connack_is_disconnected() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).build();
    let connecting = spawn_connect(&client);
    let mut conn = fake.accept().await;
    conn.read_connect().await;
    drop(conn);
    match step(connecting).await.unwrap() {
        Err(Error::Disconnected { reason, .. }) => {
            assert!(reason.contains("before CONNACK"), "{reason}")
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The broker's DISCONNECT
// ---------------------------------------------------------------------------

/// A 5.0 DISCONNECT from the broker ends the connection; its reason code and
/// reason string reach the caller (SPEC 1.9), and everything waiting ends.
#[tokio::test]
async fn broker_disconnect_surfaces_its_reason_code_and_string() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().build();
    let mut conn = connect(&fake, &client).await;
    let mut sub = subscribe(&mut conn, &client, "hostile/sub", QoS::AtLeastOnce, true).await;
    let waiting = spawn_publish(&client, "hostile/pub", "x", QoS::AtLeastOnce);
    expect_publish(&mut conn, V5P).await;
    let disconnect = Disconnect {
        reason_code: ReasonCode::ADMINISTRATIVE_ACTION,
        properties: DisconnectProperties {
            reason_string: Some("maintenance window".into()),
            ..DisconnectProperties::default()
        },
    };
    conn.send_packet(&Packet::Disconnect(disconnect), V5P).await;
    // A DISCONNECT is not answered: the client just closes.
    conn.expect_closed().await;
    let error = step(client.stopped()).await.expect("a loss");
    match &error {
        Error::Disconnected {
            reason,
            reason_code,
        } => {
            assert_eq!(*reason_code, Some(ReasonCode::ADMINISTRATIVE_ACTION));
            assert!(reason.contains("0x98"), "{reason}");
            assert!(reason.contains("maintenance window"), "{reason}");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(step(sub.recv()).await.is_none());
    assert!(matches!(
        sub.error(),
        Some(Error::Disconnected {
            reason_code: Some(ReasonCode::ADMINISTRATIVE_ACTION),
            ..
        })
    ));
    match step(waiting).await.unwrap() {
        Err(Error::Disconnected {
            reason,
            reason_code,
        }) => {
            assert!(reason.contains("maintenance window"), "{reason}");
            assert_eq!(reason_code, Some(ReasonCode::ADMINISTRATIVE_ACTION));
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Incoming flow control and topic aliases (5.0)
// ---------------------------------------------------------------------------

fn alias_publish(topic: &str, alias: u16, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        topic: topic.to_owned(),
        properties: PublishProperties {
            topic_alias: Some(alias),
            ..PublishProperties::default()
        },
        payload: Bytes::from_static(payload),
        ..Publish::default()
    })
}

/// 5.0 section 3.3.2.3.4: a topic alias set by the broker (topic + alias) is
/// resolved when it comes alone (empty topic), and can be remapped.
#[tokio::test]
async fn incoming_topic_aliases_resolve_to_their_topic() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().topic_alias_maximum(4).build();
    let connecting = spawn_connect(&client);
    let mut conn = fake.accept().await;
    let connect = conn.accept_connect(false).await;
    assert_eq!(connect.properties.topic_alias_maximum, Some(4));
    step(connecting).await.unwrap().unwrap();
    let mut sub = subscribe(&mut conn, &client, "alias/#", QoS::AtMostOnce, true).await;
    conn.send_packet(&alias_publish("alias/a", 1, b"1"), V5P)
        .await;
    conn.send_packet(&alias_publish("", 1, b"2"), V5P).await;
    conn.send_packet(&alias_publish("alias/b", 1, b"3"), V5P)
        .await;
    conn.send_packet(&alias_publish("alias/c", 4, b"4"), V5P)
        .await;
    conn.send_packet(&alias_publish("", 1, b"5"), V5P).await;
    conn.send_packet(&alias_publish("", 4, b"6"), V5P).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let message = step(sub.recv()).await.unwrap();
        seen.push((
            message.topic.clone(),
            message.payload_str().unwrap().to_owned(),
        ));
    }
    let expected: Vec<(String, String)> = [
        ("alias/a", "1"),
        ("alias/a", "2"),
        ("alias/b", "3"),
        ("alias/c", "4"),
        ("alias/b", "5"),
        ("alias/c", "6"),
    ]
    .iter()
    .map(|(topic, payload)| (topic.to_string(), payload.to_string()))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(client.state(), ConnectionState::Connected);
}

/// An alias never set, or above our Topic Alias Maximum: DISCONNECT 0x94
/// (Topic Alias invalid, SPEC 1.9).
#[tokio::test]
async fn unknown_or_out_of_range_topic_alias_is_answered_with_0x94() {
    for bad in [
        alias_publish("", 2, b"unknown"),
        alias_publish("alias/x", 5, b"too big"),
    ] {
        let fake = FakeBroker::start();
        let client = client_of(&fake).v5().topic_alias_maximum(4).build();
        let mut conn = connect(&fake, &client).await;
        let _sub = subscribe(&mut conn, &client, "alias/#", QoS::AtMostOnce, true).await;
        conn.send_packet(&alias_publish("alias/a", 1, b"fine"), V5P)
            .await;
        conn.send_packet(&bad, V5P).await;
        expect_disconnect(&mut conn, ReasonCode::TOPIC_ALIAS_INVALID).await;
        expect_protocol_error(&client, Some(ReasonCode::TOPIC_ALIAS_INVALID)).await;
    }
}

/// 5.0 MQTT-3.3.4-9 is the broker's duty: no more unacknowledged QoS 1/2
/// PUBLISH than our Receive Maximum. One more is DISCONNECT 0x93.
#[tokio::test]
async fn a_broker_exceeding_our_receive_maximum_is_answered_with_0x93() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().receive_maximum(2).build();
    let mut conn = connect(&fake, &client).await;
    let mut sub = subscribe(&mut conn, &client, "rm/#", QoS::AtLeastOnce, false).await;
    conn.send_packet(
        &publish_packet("rm/1", b"1", QoS::AtLeastOnce, Some(1)),
        V5P,
    )
    .await;
    conn.send_packet(
        &publish_packet("rm/2", b"2", QoS::ExactlyOnce, Some(2)),
        V5P,
    )
    .await;
    let first = step(sub.recv()).await.unwrap();
    let _second = step(sub.recv()).await.unwrap();
    // Acknowledging one frees one place: a third is within the limit.
    step(first.ack()).await.unwrap();
    match conn.recv_packet(V5P).await {
        Packet::PubAck(puback) => assert_eq!(puback.packet_id, 1),
        other => panic!("expected PUBACK 1, got {other:?}"),
    }
    conn.send_packet(
        &publish_packet("rm/3", b"3", QoS::AtLeastOnce, Some(3)),
        V5P,
    )
    .await;
    let third = step(sub.recv()).await.unwrap();
    assert_eq!(third.payload_str(), Some("3"));
    // Two unacknowledged again (2 and 3): a fourth is one too many.
    conn.send_packet(
        &publish_packet("rm/4", b"4", QoS::AtLeastOnce, Some(4)),
        V5P,
    )
    .await;
    expect_disconnect(&mut conn, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED).await;
    expect_protocol_error(&client, Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)).await;
}

// ---------------------------------------------------------------------------
// Outgoing publishes
// ---------------------------------------------------------------------------

/// Acknowledgements in another order than the publishes complete exactly the
/// publishes whose packet identifiers they carry; on 5.0 a failure code
/// fails only its own publish.
#[tokio::test]
async fn out_of_order_acknowledgements_complete_the_right_publishes() {
    for version in [V311P, V5P] {
        let fake = FakeBroker::start();
        let (a, b, c, d) = match version {
            ProtocolVersion::V311 => {
                let client = client_of(&fake).build();
                let mut conn = connect(&fake, &client).await;
                let tasks = publish_four(&client);
                answer_out_of_order(&mut conn, version, tasks).await
            }
            _ => {
                let client = client_of(&fake).v5().build();
                let mut conn = connect(&fake, &client).await;
                let tasks = publish_four(&client);
                answer_out_of_order(&mut conn, version, tasks).await
            }
        };
        assert!(a.is_ok() && c.is_ok() && d.is_ok(), "{a:?} {c:?} {d:?}");
        if version == V5P {
            match b {
                Err(Error::Publish { reason_code, .. }) => assert_eq!(reason_code, 0x87),
                other => panic!("expected a refused publish, got {other:?}"),
            }
        } else {
            assert!(b.is_ok(), "{b:?}");
        }
    }
}

type Tasks = [JoinHandle<zmqtt::Result<()>>; 4];

/// QoS 1 "a", "b", "c" and QoS 2 "d", all in flight at once.
fn publish_four<V: Protocol>(client: &Client<V>) -> Tasks {
    [
        spawn_publish(client, "order/a", "a", QoS::AtLeastOnce),
        spawn_publish(client, "order/b", "b", QoS::AtLeastOnce),
        spawn_publish(client, "order/c", "c", QoS::AtLeastOnce),
        spawn_publish(client, "order/d", "d", QoS::ExactlyOnce),
    ]
}

async fn answer_out_of_order(
    conn: &mut FakeConnection,
    version: ProtocolVersion,
    tasks: Tasks,
) -> (
    zmqtt::Result<()>,
    zmqtt::Result<()>,
    zmqtt::Result<()>,
    zmqtt::Result<()>,
) {
    let mut ids = std::collections::HashMap::new();
    for _ in 0..4 {
        let publish = expect_publish(conn, version).await;
        ids.insert(publish.payload.clone(), publish.packet_id.unwrap());
    }
    let id = |name: &'static [u8]| ids[&Bytes::from_static(name)];
    let [a, b, c, d] = tasks;
    // d first: PUBREC, then our PUBREL, then PUBCOMP.
    conn.send_packet(&Packet::PubRec(ack(id(b"d"))), version)
        .await;
    match conn.recv_packet(version).await {
        Packet::PubRel(pubrel) => assert_eq!(pubrel.packet_id, id(b"d")),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    conn.send_packet(&Packet::PubComp(ack(id(b"d"))), version)
        .await;
    let d = step(d).await.unwrap();
    conn.send_packet(&Packet::PubAck(ack(id(b"c"))), version)
        .await;
    let c = step(c).await.unwrap();
    assert!(!a.is_finished() && !b.is_finished());
    let refused = PubResponse {
        packet_id: id(b"b"),
        reason_code: if version == V5P {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::SUCCESS
        },
        properties: Default::default(),
    };
    conn.send_packet(&Packet::PubAck(refused), version).await;
    let b = step(b).await.unwrap();
    assert!(!a.is_finished());
    conn.send_packet(&Packet::PubAck(ack(id(b"a"))), version)
        .await;
    let a = step(a).await.unwrap();
    (a, b, c, d)
}

/// The broker's limits from CONNACK (5.0 MQTT-3.2.2-11, -14, -15, -21, and the
/// Assigned Client Identifier) are in `connection_info()` and refused locally:
/// nothing of a refused publish reaches the wire.
#[tokio::test]
async fn connack_limits_are_reflected_and_enforced_locally() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().build();
    let connack = ConnAck {
        properties: ConnAckProperties {
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(100),
            server_keep_alive: Some(1),
            assigned_client_identifier: Some("assigned-by-fake".into()),
            receive_maximum: Some(7),
            ..ConnAckProperties::default()
        },
        ..ConnAck::default()
    };
    let connecting = spawn_connect(&client);
    let mut conn = fake.accept().await;
    let connect = conn.accept_connect_with(connack).await;
    let connected_at = Instant::now();
    assert_eq!(connect.client_id, "", "the broker is asked to assign one");
    assert_eq!(connect.keep_alive, 60);
    step(connecting).await.unwrap().unwrap();

    let info = client.connection_info().unwrap();
    assert_eq!(info.effective_client_id, "assigned-by-fake");
    assert_eq!(info.effective_keepalive, 1);
    assert_eq!(info.maximum_qos, QoS::AtLeastOnce);
    assert!(!info.retain_available);
    assert_eq!(info.maximum_packet_size, Some(100));
    assert_eq!(info.receive_maximum, 7);
    assert_eq!(info.effective_session_expiry_interval, Some(0));
    let properties = info.properties.expect("5.0 CONNACK properties");
    assert_eq!(properties.server_keep_alive, Some(1));

    assert!(matches!(
        client.publish("limits/q", "x").qos(QoS::ExactlyOnce).await,
        Err(Error::QoSExceeded {
            requested: QoS::ExactlyOnce,
            maximum: QoS::AtLeastOnce
        })
    ));
    assert!(matches!(
        client.publish("limits/r", "x").retain(true).await,
        Err(Error::RetainNotAvailable)
    ));
    assert!(matches!(
        client
            .publish("limits/s", vec![0u8; 200])
            .qos(QoS::AtLeastOnce)
            .await,
        Err(Error::PacketTooLarge { maximum: 100, .. })
    ));
    // The next thing on the wire is this publish, none of the refused ones.
    let fine = spawn_publish(&client, "limits/ok", "fine", QoS::AtLeastOnce);
    let publish = expect_publish(&mut conn, V5P).await;
    assert_eq!(publish.topic, "limits/ok");
    conn.send_packet(&Packet::PubAck(ack(publish.packet_id.unwrap())), V5P)
        .await;
    step(fine).await.unwrap().unwrap();
    // Server Keep Alive 1 (not our 60): a PINGREQ within about a second.
    assert_eq!(conn.recv_packet(V5P).await, Packet::PingReq);
    let waited = connected_at.elapsed();
    assert!(waited < Duration::from_secs(3), "PINGREQ after {waited:?}");
    conn.send_packet(&Packet::PingResp, V5P).await;
    step(client.disconnect()).await.unwrap();
}

/// MQTT-4.4.0-1 and MQTT-3.3.1-1: a QoS 1 PUBLISH unacknowledged when the
/// connection drops is sent again, DUP=1, same packet id, once the broker
/// resumes the session; a QoS 2 flow past PUBREC resends PUBREL. The
/// waiting `publish()` calls then complete.
#[tokio::test]
async fn in_flight_publishes_are_resent_on_a_resumed_session() {
    for version in [V311P, V5P] {
        let fake = FakeBroker::start();
        let builder = resuming_client_of(&fake, "resender");
        match version {
            ProtocolVersion::V311 => resend_on_resume(&fake, builder.build()).await,
            _ => resend_on_resume(&fake, builder.v5().session_expiry_interval(300).build()).await,
        }
    }
}

async fn resend_on_resume<V: Protocol>(fake: &FakeBroker, client: Client<V>) {
    let version = protocol::<V>();
    let mut conn = connect(fake, &client).await;
    let qos1 = spawn_publish(&client, "resend/1", "one", QoS::AtLeastOnce);
    let first = expect_publish(&mut conn, version).await;
    assert!(!first.dup);
    let qos2 = spawn_publish(&client, "resend/2", "two", QoS::ExactlyOnce);
    let second = expect_publish(&mut conn, version).await;
    conn.send_packet(&Packet::PubRec(ack(second.packet_id.unwrap())), version)
        .await;
    assert!(matches!(conn.recv_packet(version).await, Packet::PubRel(_)));
    conn.reset();

    let mut conn = fake.accept().await;
    let connect = conn.accept_connect(true).await;
    assert!(!connect.clean_start);
    let again = expect_publish(&mut conn, version).await;
    assert!(again.dup, "DUP=1 on the resent PUBLISH");
    assert_eq!(again.packet_id, first.packet_id);
    assert_eq!(
        (again.topic.as_str(), &again.payload[..]),
        ("resend/1", &b"one"[..])
    );
    match conn.recv_packet(version).await {
        Packet::PubRel(pubrel) => assert_eq!(Some(pubrel.packet_id), second.packet_id),
        other => panic!("expected PUBREL again, got {other:?}"),
    }
    conn.send_packet(&Packet::PubAck(ack(again.packet_id.unwrap())), version)
        .await;
    conn.send_packet(&Packet::PubComp(ack(second.packet_id.unwrap())), version)
        .await;
    step(qos1).await.unwrap().unwrap();
    step(qos2).await.unwrap().unwrap();
    let info = client.connection_info().unwrap();
    assert_eq!(info.connection_id, 2);
    assert!(info.session_present);
    step(client.disconnect()).await.unwrap();
}

/// SPEC 1.4: with no session on the broker (session present 0), publishes
/// that were in flight cannot be completed: they fail with `Disconnected`,
/// and nothing is resent.
#[tokio::test]
async fn in_flight_publishes_fail_when_the_session_is_not_resumed() {
    for version in [V311P, V5P] {
        let fake = FakeBroker::start();
        let builder = resuming_client_of(&fake, "lost-session");
        match version {
            ProtocolVersion::V311 => lost_on_fresh_session(&fake, builder.build()).await,
            _ => {
                lost_on_fresh_session(&fake, builder.v5().session_expiry_interval(300).build())
                    .await
            }
        }
    }
}

async fn lost_on_fresh_session<V: Protocol>(fake: &FakeBroker, client: Client<V>) {
    let version = protocol::<V>();
    let mut conn = connect(fake, &client).await;
    let qos1 = spawn_publish(&client, "lost/1", "one", QoS::AtLeastOnce);
    expect_publish(&mut conn, version).await;
    conn.reset();
    let mut conn = fake.accept().await;
    conn.accept_connect(false).await;
    match step(qos1).await.unwrap() {
        Err(Error::Disconnected { reason, .. }) => assert!(reason.contains("session"), "{reason}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // Nothing was resent: the first packet of this connection is our ping.
    let pinging = {
        let client = client.clone();
        tokio::spawn(async move { client.ping(Duration::from_secs(5)).await })
    };
    assert_eq!(conn.recv_packet(version).await, Packet::PingReq);
    conn.send_packet(&Packet::PingResp, version).await;
    step(pinging).await.unwrap().unwrap();
    assert!(!client.connection_info().unwrap().session_present);
}

// ---------------------------------------------------------------------------
// Incoming QoS 2, acknowledgement order, framing, CONNACK timing
// ---------------------------------------------------------------------------

fn qos2_publish(topic: &str, packet_id: u16, payload: &'static [u8], dup: bool) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos: QoS::ExactlyOnce,
        topic: topic.into(),
        packet_id: Some(packet_id),
        payload: Bytes::from_static(payload),
        ..Publish::default()
    })
}

async fn expect_ack(conn: &mut FakeConnection, version: ProtocolVersion, expected: &str, id: u16) {
    let packet = conn.recv_packet(version).await;
    let (kind, packet_id) = match &packet {
        Packet::PubAck(ack) => ("PUBACK", ack.packet_id),
        Packet::PubRec(ack) => ("PUBREC", ack.packet_id),
        Packet::PubComp(ack) => ("PUBCOMP", ack.packet_id),
        other => panic!("expected {expected} {id}, got {other:?}"),
    };
    assert_eq!((kind, packet_id), (expected, id), "{packet:?}");
}

/// MQTT-4.3.3-2 (3.1.1) / MQTT-4.3.3-9 (5.0): until PUBREL, a PUBLISH again
/// with the same packet id is answered with PUBREC and not delivered again —
/// on the same connection and after a resumed session. After PUBREL the id
/// is free for a new message.
#[tokio::test]
async fn a_repeated_qos2_publish_is_delivered_once() {
    for version in [V311P, V5P] {
        let fake = FakeBroker::start();
        let builder = resuming_client_of(&fake, "exactly-once");
        match version {
            ProtocolVersion::V311 => qos2_delivered_once(&fake, builder.build()).await,
            _ => qos2_delivered_once(&fake, builder.v5().session_expiry_interval(60).build()).await,
        }
    }
}

async fn qos2_delivered_once<V: Protocol>(fake: &FakeBroker, client: Client<V>) {
    let version = protocol::<V>();
    let mut conn = connect(fake, &client).await;
    let mut sub = subscribe(&mut conn, &client, "exactly/#", QoS::ExactlyOnce, true).await;
    conn.send_packet(&qos2_publish("exactly/once", 5, b"first", false), version)
        .await;
    expect_ack(&mut conn, version, "PUBREC", 5).await;
    assert_eq!(step(sub.recv()).await.unwrap().payload_str(), Some("first"));
    // Sent again before PUBREL (as if our PUBREC were lost).
    conn.send_packet(&qos2_publish("exactly/once", 5, b"first", true), version)
        .await;
    expect_ack(&mut conn, version, "PUBREC", 5).await;
    // The connection drops before PUBREL; the session is resumed and the
    // broker sends the PUBLISH once more.
    conn.reset();
    let mut conn = fake.accept().await;
    conn.accept_connect(true).await;
    // The live subscription is made again first.
    let Packet::Subscribe(resubscribe) = conn.recv_packet(version).await else {
        panic!("expected SUBSCRIBE again");
    };
    let suback = SubAck {
        packet_id: resubscribe.packet_id,
        reason_codes: vec![ReasonCode::GRANTED_QOS_2],
        properties: Default::default(),
    };
    conn.send_packet(&Packet::SubAck(suback), version).await;
    conn.send_packet(&qos2_publish("exactly/once", 5, b"first", true), version)
        .await;
    expect_ack(&mut conn, version, "PUBREC", 5).await;
    conn.send_packet(&Packet::PubRel(ack(5)), version).await;
    expect_ack(&mut conn, version, "PUBCOMP", 5).await;
    // Id 5 is free again: a new message with it is a new message.
    conn.send_packet(&qos2_publish("exactly/once", 5, b"second", false), version)
        .await;
    expect_ack(&mut conn, version, "PUBREC", 5).await;
    let next = step(sub.recv()).await.unwrap();
    assert_eq!(
        next.payload_str(),
        Some("second"),
        "\"first\" came only once"
    );
    conn.send_packet(&Packet::PubRel(ack(5)), version).await;
    expect_ack(&mut conn, version, "PUBCOMP", 5).await;
    step(client.disconnect()).await.unwrap();
}

/// MQTT-4.6.0-2 / MQTT-4.6.0-3 (3.1.1): acknowledgements go out in the order
/// the PUBLISH packets arrived, whatever order the application acknowledges
/// them in (SPEC 1.8).
#[tokio::test]
async fn manual_acknowledgements_leave_in_arrival_order() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).build();
    let mut conn = connect(&fake, &client).await;
    let mut sub = subscribe(&mut conn, &client, "ordered/#", QoS::ExactlyOnce, false).await;
    conn.send_packet(
        &publish_packet("ordered/1", b"1", QoS::AtLeastOnce, Some(1)),
        V311P,
    )
    .await;
    conn.send_packet(&qos2_publish("ordered/2", 2, b"2", false), V311P)
        .await;
    conn.send_packet(
        &publish_packet("ordered/3", b"3", QoS::AtLeastOnce, Some(3)),
        V311P,
    )
    .await;
    let first = step(sub.recv()).await.unwrap();
    let second = step(sub.recv()).await.unwrap();
    let third = step(sub.recv()).await.unwrap();
    let ping = |client: &Client<V311>| {
        let client = client.clone();
        tokio::spawn(async move { client.ping(Duration::from_secs(5)).await })
    };
    // The last one first: nothing may leave yet (the ping goes out alone).
    step(third.ack()).await.unwrap();
    let pinging = ping(&client);
    assert_eq!(conn.recv_packet(V311P).await, Packet::PingReq);
    conn.send_packet(&Packet::PingResp, V311P).await;
    step(pinging).await.unwrap().unwrap();
    step(first.ack()).await.unwrap();
    expect_ack(&mut conn, V311P, "PUBACK", 1).await;
    step(second.ack()).await.unwrap();
    expect_ack(&mut conn, V311P, "PUBREC", 2).await;
    expect_ack(&mut conn, V311P, "PUBACK", 3).await;
    // Acknowledging twice sends nothing more.
    step(second.ack()).await.unwrap();
    conn.send_packet(&Packet::PubRel(ack(2)), V311P).await;
    expect_ack(&mut conn, V311P, "PUBCOMP", 2).await;
    step(client.disconnect()).await.unwrap();
}

/// A PUBLISH written one byte at a time and several packets in one write
/// are both read correctly.
#[tokio::test]
async fn packets_are_reassembled_from_any_split() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().build();
    let mut conn = connect(&fake, &client).await;
    let mut sub = subscribe(&mut conn, &client, "split/#", QoS::AtMostOnce, true).await;
    let mut bytes = bytes::BytesMut::new();
    let payload = vec![7u8; 300];
    let big = Packet::Publish(Publish {
        topic: "split/big".into(),
        payload: Bytes::from(payload.clone()),
        properties: PublishProperties {
            content_type: Some("application/octet-stream".into()),
            ..PublishProperties::default()
        },
        ..Publish::default()
    });
    zmqtt_proto::codec::encode(&big, V5P, &mut bytes).unwrap();
    for byte in bytes.iter() {
        conn.send_raw(&[*byte]).await;
        tokio::task::yield_now().await;
    }
    let message = step(sub.recv()).await.unwrap();
    assert_eq!(message.topic, "split/big");
    assert_eq!(&message.payload[..], &payload[..]);
    let mut batch = bytes::BytesMut::new();
    for n in 0..3u8 {
        let publish = Packet::Publish(Publish {
            topic: format!("split/{n}"),
            payload: Bytes::from(vec![n]),
            ..Publish::default()
        });
        zmqtt_proto::codec::encode(&publish, V5P, &mut batch).unwrap();
    }
    conn.send_raw(&batch).await;
    for n in 0..3u8 {
        let message = step(sub.recv()).await.unwrap();
        assert_eq!(
            (message.topic.as_str(), &message.payload[..]),
            (format!("split/{n}").as_str(), &[n][..])
        );
    }
}

/// MQTT-3.2.2-4 (5.0) / MQTT-3.2.2-1 (3.1.1): after a clean start the broker
/// must answer Session Present 0; a 1 is a protocol error.
#[tokio::test]
async fn session_present_after_a_clean_start_is_a_protocol_error() {
    let fake = FakeBroker::start();
    let client = client_of(&fake).v5().build();
    let connecting = spawn_connect(&client);
    let mut conn = fake.accept().await;
    let connect = conn.accept_connect(true).await;
    assert!(connect.clean_start);
    expect_disconnect(&mut conn, ReasonCode::PROTOCOL_ERROR).await;
    assert!(matches!(
        step(connecting).await.unwrap(),
        Err(Error::Protocol { .. })
    ));
}

/// SPEC 1.1 `mqtt_connect_timeout`: no CONNACK in time is `Error::Timeout`,
/// retried when reconnection is on (here: two attempts in all).
#[tokio::test]
async fn a_missing_connack_times_out_and_is_retried() {
    let fake = FakeBroker::start();
    let limit = Duration::from_millis(200);
    let client = create_client("127.0.0.1")
        .port(fake.port())
        .connect_timeout(limit)
        .reconnect(ReconnectConfig {
            initial_delay: Duration::from_millis(10),
            max_attempts: Some(2),
            ..ReconnectConfig::default()
        })
        .build();
    let connecting = spawn_connect(&client);
    let mut silent = Vec::new();
    for _ in 0..2 {
        let mut conn = fake.accept().await;
        conn.read_connect().await;
        silent.push(conn);
    }
    match step(connecting).await.unwrap() {
        Err(Error::Timeout { what, after }) => {
            assert_eq!(what, "CONNACK");
            assert_eq!(after, limit);
        }
        other => panic!("expected a CONNACK timeout, got {other:?}"),
    }
    for mut conn in silent {
        conn.expect_closed().await;
    }
    assert_eq!(client.state(), ConnectionState::Disconnected);
}
