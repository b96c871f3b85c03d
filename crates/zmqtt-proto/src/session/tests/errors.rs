//! Bytes the decoder refuses, peer DISCONNECT, our DISCONNECT, unexpected packets.

use super::*;

fn disconnect_code(sent: &[Packet]) -> ReasonCode {
    match sent {
        [Packet::Disconnect(disconnect)] => disconnect.reason_code,
        other => panic!("expected one DISCONNECT, got {other:?}"),
    }
}

#[test]
fn malformed_bytes_send_disconnect_0x81_in_v5_and_the_session_survives() {
    let mut broker = Broker::new(SessionConfig {
        clean_start: false,
        ..SessionConfig::new(ProtocolVersion::V5, "c")
    });
    broker.connect();
    let pending = broker.publish("a", QoS::AtLeastOnce);
    broker.sent();
    // A remaining length of five bytes is malformed.
    let left = broker.feed_bytes(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    assert!(left.is_empty(), "the broken stream is dropped");
    assert_eq!(
        disconnect_code(&broker.sent()),
        ReasonCode::MALFORMED_PACKET
    );
    let reason = broker.closed_reason();
    let CloseReason::Decode(error) = &reason else {
        panic!("{reason:?}")
    };
    assert_eq!(error.reason_code(), ReasonCode::MALFORMED_PACKET);
    assert_eq!(broker.session.state(), SessionState::Closed);

    // Bytes after the close are ignored.
    broker.feed_bytes(&[0xD0, 0x00]);
    assert!(broker.events().is_empty());

    // The next connection works and the pending publish is resent.
    broker.session.handle_transport_closed(broker.now);
    broker.connect_with(ConnAck {
        session_present: true,
        ..ConnAck::default()
    });
    let sent = broker.sent();
    assert!(sent_publish(&sent[0]).dup);
    broker.feed(puback(sent_publish_id(&sent[0])));
    assert_eq!(
        completions(&broker.events()),
        vec![(pending, Ok(ReasonCode::SUCCESS))]
    );
}

#[test]
fn malformed_bytes_close_v311_without_disconnect() {
    let mut broker = Broker::v311();
    broker.connect();
    broker.feed_bytes(&[0x00, 0x00]);
    assert!(broker.sent().is_empty());
    assert!(matches!(broker.closed_reason(), CloseReason::Decode(_)));
}

#[test]
fn protocol_error_in_decoding_sends_0x82() {
    // 5.0 PUBLISH with an empty topic and no alias.
    let mut broker = Broker::v5();
    broker.connect();
    broker.feed_bytes(&[0x30, 0x03, 0x00, 0x00, 0x00]);
    assert_eq!(disconnect_code(&broker.sent()), ReasonCode::PROTOCOL_ERROR);
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::Decode(DecodeError::Protocol(_))
    ));
}

#[test]
fn packet_above_our_maximum_packet_size_sends_0x95() {
    let mut broker = Broker::new(SessionConfig {
        connect_properties: ConnectProperties {
            maximum_packet_size: Some(64),
            ..ConnectProperties::default()
        },
        ..SessionConfig::new(ProtocolVersion::V5, "c")
    });
    broker.connect();
    let mut big = publish_to("a", QoS::AtMostOnce);
    big.payload = Bytes::from(vec![0u8; 100]);
    broker.feed(Packet::Publish(big));
    assert_eq!(
        disconnect_code(&broker.sent()),
        ReasonCode::PACKET_TOO_LARGE
    );
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::Decode(DecodeError::PacketTooLarge { max: 64, .. })
    ));
}

#[test]
fn packets_split_across_reads_are_reassembled() {
    let mut broker = Broker::v311();
    broker.connect();
    let mut bytes = BytesMut::new();
    for id in 1..=3u16 {
        let mut publish = publish_to("split/topic", QoS::AtLeastOnce);
        publish.packet_id = Some(id);
        crate::codec::encode(&Packet::Publish(publish), ProtocolVersion::V311, &mut bytes).unwrap();
    }
    let mut buf = BytesMut::new();
    let mut delivered = 0;
    for byte in bytes.iter() {
        buf.extend_from_slice(&[*byte]);
        broker.session.handle_received(broker.now, &mut buf);
        delivered += broker.events().len();
    }
    assert!(buf.is_empty());
    assert_eq!(delivered, 3);
}

#[test]
fn peer_disconnect_closes_with_its_reason() {
    let mut broker = Broker::v5();
    broker.connect();
    let disconnect = Disconnect {
        reason_code: ReasonCode::SERVER_SHUTTING_DOWN,
        properties: DisconnectProperties {
            reason_string: Some("maintenance".into()),
            server_reference: Some("other:1883".into()),
            ..DisconnectProperties::default()
        },
    };
    broker.feed(Packet::Disconnect(disconnect.clone()));
    assert_eq!(
        broker.closed_reason(),
        CloseReason::ServerDisconnect(disconnect)
    );
    assert!(broker.sent().is_empty(), "no DISCONNECT back");
    assert_eq!(broker.session.state(), SessionState::Closed);
}

#[test]
fn server_only_packets_from_the_broker_are_protocol_errors() {
    let mut broker = Broker::v5();
    broker.connect();
    broker.feed(Packet::PingReq);
    assert_eq!(disconnect_code(&broker.sent()), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::UnexpectedPacket {
            packet: PacketType::PingReq,
            context: "from a server"
        })
    );
}

#[test]
fn disconnect_sends_disconnect_and_keeps_the_session() {
    let mut broker = Broker::new(SessionConfig {
        clean_start: false,
        ..SessionConfig::new(ProtocolVersion::V311, "c")
    });
    broker.connect();
    broker.publish("a", QoS::AtLeastOnce);
    broker.sent();
    broker
        .session
        .disconnect(broker.now, Disconnect::default())
        .unwrap();
    assert_eq!(
        broker.sent(),
        vec![Packet::Disconnect(Disconnect::default())]
    );
    assert_eq!(broker.closed_reason(), CloseReason::LocalDisconnect);
    assert_eq!(broker.session.state(), SessionState::Closed);
    assert_eq!(broker.session.pending_publishes(), 1);
    // Twice, or after the transport closed: harmless.
    broker
        .session
        .disconnect(broker.now, Disconnect::default())
        .unwrap();
    broker.session.handle_transport_closed(broker.now);
    broker
        .session
        .disconnect(broker.now, Disconnect::default())
        .unwrap();
    assert!(broker.sent().is_empty());
    assert!(broker.events().is_empty());
}

#[test]
fn v5_disconnect_carries_reason_and_properties() {
    let mut broker = Broker::new(SessionConfig {
        connect_properties: ConnectProperties {
            session_expiry_interval: Some(60),
            ..ConnectProperties::default()
        },
        ..SessionConfig::new(ProtocolVersion::V5, "c")
    });
    broker.connect();
    let disconnect = Disconnect {
        reason_code: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            reason_string: Some("bye".into()),
            user_properties: vec![("k".into(), "v".into())],
            server_reference: None,
        },
    };
    broker
        .session
        .disconnect(broker.now, disconnect.clone())
        .unwrap();
    assert_eq!(broker.sent(), vec![Packet::Disconnect(disconnect)]);
}

#[test]
fn disconnect_refusals() {
    let mut broker = Broker::v311();
    broker.connect();
    let with_reason = Disconnect {
        reason_code: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        ..Disconnect::default()
    };
    assert!(matches!(
        broker.session.disconnect(broker.now, with_reason),
        Err(CommandError::RequiresV5(_))
    ));
    assert_eq!(broker.session.state(), SessionState::Connected);

    // MQTT-3.14.2-2: no session expiry on DISCONNECT when CONNECT had 0.
    let mut broker = Broker::v5();
    broker.connect();
    let mut extend = Disconnect::default();
    extend.properties.session_expiry_interval = Some(30);
    assert_eq!(
        broker.session.disconnect(broker.now, extend),
        Err(CommandError::SessionExpiryNotAllowed)
    );
    assert!(broker.sent().is_empty());
}

#[test]
fn disconnect_drops_reason_string_beyond_the_broker_maximum_mqtt_3_14_2_3() {
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        maximum_packet_size: Some(20),
        ..ConnAckProperties::default()
    });
    let mut disconnect = Disconnect::default();
    disconnect.properties.reason_string = Some("a reason far too long for twenty bytes".into());
    broker.session.disconnect(broker.now, disconnect).unwrap();
    assert_eq!(
        broker.sent(),
        vec![Packet::Disconnect(Disconnect::default())]
    );
}

#[test]
fn our_disconnect_after_a_violation_fits_the_broker_maximum() {
    // The reason string explaining the violation is dropped when too large.
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        maximum_packet_size: Some(10),
        ..ConnAckProperties::default()
    });
    broker.feed(Packet::ConnAck(ConnAck::default()));
    let sent = broker.sent();
    let [Packet::Disconnect(disconnect)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(disconnect.reason_code, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(disconnect.properties.reason_string, None);

    // With room, it explains.
    let mut broker = Broker::v5();
    broker.connect();
    broker.feed(Packet::ConnAck(ConnAck::default()));
    let sent = broker.sent();
    let [Packet::Disconnect(disconnect)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(
        disconnect.properties.reason_string.as_deref(),
        Some("second CONNACK on one connection")
    );
}
