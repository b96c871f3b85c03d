//! CONNECT contents, CONNACK negotiation, refusals, the handshake's errors.

use super::*;

fn will() -> LastWill {
    LastWill {
        topic: "clients/gone".into(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: WillProperties::default(),
    }
}

#[test]
fn connect_v311_carries_the_config_and_is_resent_with_will_on_reconnect() {
    let config = SessionConfig {
        keep_alive: 30,
        clean_start: false,
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"secret")),
        will: Some(Box::new(will())),
        ..SessionConfig::new(ProtocolVersion::V311, "dev-1")
    };
    let mut broker = Broker::new(config);
    let expected = Connect {
        protocol: ProtocolVersion::V311,
        client_id: "dev-1".into(),
        keep_alive: 30,
        clean_start: false,
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"secret")),
        will: Some(will()),
        properties: ConnectProperties::default(),
    };
    assert_eq!(broker.open(), expected);
    assert_eq!(broker.session.state(), SessionState::Connecting);
    broker.session.handle_transport_closed(broker.now);
    // SPEC 1.6: the Will is re-sent on every reconnect.
    assert_eq!(broker.open(), expected);
}

#[test]
fn connect_v5_carries_properties_and_will_properties() {
    let properties = ConnectProperties {
        session_expiry_interval: Some(3600),
        receive_maximum: Some(10),
        maximum_packet_size: Some(4096),
        topic_alias_maximum: Some(5),
        request_response_information: Some(true),
        request_problem_information: Some(false),
        user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        authentication_method: None,
        authentication_data: None,
    };
    let mut will = will();
    will.properties = WillProperties {
        will_delay_interval: Some(10),
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(60),
        content_type: Some("text/plain".into()),
        response_topic: Some("r".into()),
        correlation_data: Some(Bytes::from_static(b"c")),
        user_properties: vec![("k".into(), "v".into())],
    };
    let config = SessionConfig {
        will: Some(Box::new(will.clone())),
        connect_properties: properties.clone(),
        ..SessionConfig::new(ProtocolVersion::V5, "dev-5")
    };
    let mut broker = Broker::new(config);
    let connect = broker.open();
    assert_eq!(connect.protocol, ProtocolVersion::V5);
    assert_eq!(connect.client_id, "dev-5");
    assert_eq!(connect.keep_alive, 60);
    assert!(connect.clean_start);
    assert_eq!(connect.properties, properties);
    assert_eq!(connect.will, Some(will));
}

#[test]
fn invalid_configs_are_refused_before_any_io() {
    // MQTT-3.1.3-7: an empty client id needs a clean session on 3.1.1.
    let config = SessionConfig {
        clean_start: false,
        ..SessionConfig::new(ProtocolVersion::V311, "")
    };
    assert_eq!(
        ClientSession::new(config).unwrap_err(),
        ConfigError::EmptyClientIdRequiresCleanStart
    );
    // 5.0 is fine with it.
    let config = SessionConfig {
        clean_start: false,
        ..SessionConfig::new(ProtocolVersion::V5, "")
    };
    assert!(ClientSession::new(config).is_ok());

    let config = SessionConfig {
        connect_properties: ConnectProperties {
            session_expiry_interval: Some(10),
            ..ConnectProperties::default()
        },
        ..SessionConfig::new(ProtocolVersion::V311, "c")
    };
    assert!(matches!(
        ClientSession::new(config),
        Err(ConfigError::Encode(_))
    ));

    let config = SessionConfig {
        connect_properties: ConnectProperties {
            receive_maximum: Some(0),
            ..ConnectProperties::default()
        },
        ..SessionConfig::new(ProtocolVersion::V5, "c")
    };
    assert_eq!(
        ClientSession::new(config).unwrap_err(),
        ConfigError::OutOfRange("receive_maximum")
    );

    let mut bad_will = will();
    bad_will.topic = "a/#".into();
    let config = SessionConfig {
        will: Some(Box::new(bad_will)),
        ..SessionConfig::new(ProtocolVersion::V311, "c")
    };
    assert!(matches!(
        ClientSession::new(config),
        Err(ConfigError::InvalidWillTopic(_))
    ));

    // MQTT-3.1.2-22: 3.1.1 password needs a user name.
    let config = SessionConfig {
        password: Some(Bytes::from_static(b"p")),
        ..SessionConfig::new(ProtocolVersion::V311, "c")
    };
    assert_eq!(
        ClientSession::new(config).unwrap_err(),
        ConfigError::PasswordWithoutUsername
    );
}

#[test]
fn connack_v311_negotiates_protocol_defaults() {
    let mut broker = Broker::v311();
    let negotiated = broker.connect();
    assert_eq!(
        negotiated,
        Negotiated {
            connection_id: 1,
            session_present: false,
            client_id: "client".into(),
            keep_alive: 60,
            session_expiry_interval: None,
            receive_maximum: 65535,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
        }
    );
    assert_eq!(broker.session.state(), SessionState::Connected);
    assert_eq!(broker.session.negotiated(), Some(&negotiated));
}

#[test]
fn connack_v5_negotiates_every_field() {
    let config = SessionConfig {
        clean_start: false,
        connect_properties: ConnectProperties {
            session_expiry_interval: Some(100),
            ..ConnectProperties::default()
        },
        ..SessionConfig::new(ProtocolVersion::V5, "")
    };
    let mut broker = Broker::new(config);
    let negotiated = broker.connect_with(ConnAck {
        session_present: true,
        code: ReasonCode::SUCCESS,
        properties: ConnAckProperties {
            session_expiry_interval: Some(50),
            receive_maximum: Some(7),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(1000),
            assigned_client_identifier: Some("auto-42".into()),
            topic_alias_maximum: Some(9),
            wildcard_subscription_available: Some(false),
            subscription_identifiers_available: Some(false),
            shared_subscription_available: Some(false),
            server_keep_alive: Some(20),
            ..ConnAckProperties::default()
        },
    });
    assert_eq!(
        negotiated,
        Negotiated {
            connection_id: 1,
            session_present: true,
            client_id: "auto-42".into(),
            keep_alive: 20,
            session_expiry_interval: Some(50),
            receive_maximum: 7,
            maximum_qos: QoS::AtLeastOnce,
            retain_available: false,
            maximum_packet_size: Some(1000),
            topic_alias_maximum: 9,
            wildcard_subscription_available: false,
            subscription_identifiers_available: false,
            shared_subscription_available: false,
        }
    );
}

#[test]
fn connack_v5_defaults_and_our_session_expiry() {
    let config = SessionConfig {
        connect_properties: ConnectProperties {
            session_expiry_interval: Some(100),
            ..ConnectProperties::default()
        },
        ..SessionConfig::new(ProtocolVersion::V5, "me")
    };
    let mut broker = Broker::new(config);
    let negotiated = broker.connect();
    assert_eq!(negotiated.session_expiry_interval, Some(100));
    assert_eq!(negotiated.receive_maximum, 65535);
    assert_eq!(negotiated.maximum_qos, QoS::ExactlyOnce);
    assert!(negotiated.retain_available);
    assert_eq!(negotiated.topic_alias_maximum, 0);
    assert_eq!(negotiated.client_id, "me");
    assert_eq!(negotiated.keep_alive, 60);
}

#[test]
fn connection_ids_count_successful_connections() {
    let mut broker = Broker::v311();
    assert_eq!(broker.connect().connection_id, 1);
    broker.session.handle_transport_closed(broker.now);
    broker.open();
    broker.session.handle_transport_closed(broker.now); // no CONNACK: not counted
    assert_eq!(broker.connect().connection_id, 2);
}

#[test]
fn refused_v311_return_codes_end_the_connection_without_retry() {
    for code in 1..=5u8 {
        let mut broker = Broker::v311();
        broker.open();
        broker.feed(Packet::ConnAck(ConnAck {
            code: ReasonCode(code),
            ..ConnAck::default()
        }));
        let events = broker.events();
        assert!(
            matches!(&events[0], Event::ConnectRefused(connack) if connack.code == ReasonCode(code)),
            "{events:?}"
        );
        assert_eq!(
            events[1],
            Event::Closed {
                reason: CloseReason::Refused(ReasonCode(code))
            }
        );
        assert_eq!(events.len(), 2);
        assert_eq!(broker.session.state(), SessionState::Closed);
        assert!(broker.sent().is_empty(), "nothing sent, nothing retried");
        assert_eq!(broker.session.poll_timeout(), None);
        broker.session.handle_transport_closed(broker.now);
        assert_eq!(broker.session.state(), SessionState::Disconnected);
        assert!(broker.events().is_empty());
        assert!(broker.sent().is_empty());
    }
}

#[test]
fn refused_v5_reason_code_is_reported_with_properties() {
    let mut broker = Broker::v5();
    broker.open();
    let connack = ConnAck {
        code: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        properties: ConnAckProperties {
            reason_string: Some("nope".into()),
            ..ConnAckProperties::default()
        },
        ..ConnAck::default()
    };
    broker.feed(Packet::ConnAck(connack.clone()));
    assert_eq!(
        broker.events(),
        vec![
            Event::ConnectRefused(Box::new(connack)),
            Event::Closed {
                reason: CloseReason::Refused(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
            }
        ]
    );
    assert!(broker.sent().is_empty());
}

#[test]
fn v5_packet_before_connack_is_a_protocol_error_with_disconnect_0x82() {
    let mut broker = Broker::v5();
    broker.open();
    let mut publish = publish_to("a", QoS::AtMostOnce);
    publish.payload = Bytes::new();
    broker.feed(Packet::Publish(publish));
    let sent = broker.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PROTOCOL_ERROR),
        "{sent:?}"
    );
    assert_eq!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::UnexpectedPacket {
            packet: PacketType::Publish,
            context: "before CONNACK"
        })
    );
    assert_eq!(broker.session.state(), SessionState::Closed);
}

#[test]
fn v311_packet_before_connack_closes_without_disconnect() {
    // A 3.1.1 DISCONNECT would also discard the Will: just close.
    let mut broker = Broker::v311();
    broker.open();
    broker.feed(Packet::PingResp);
    assert!(broker.sent().is_empty());
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::UnexpectedPacket {
            packet: PacketType::PingResp,
            ..
        })
    ));
}

#[test]
fn v5_disconnect_during_handshake_is_a_protocol_error() {
    // SPEC 1.10: anything but CONNACK first, e.g. a 5.0 DISCONNECT, is a protocol error.
    let mut broker = Broker::v5();
    broker.open();
    broker.feed(Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::SERVER_BUSY,
        ..Disconnect::default()
    }));
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::UnexpectedPacket {
            packet: PacketType::Disconnect,
            ..
        })
    ));
}

#[test]
fn auth_before_connack_is_accepted_only_with_an_authentication_method() {
    let config = SessionConfig {
        connect_properties: ConnectProperties {
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: Some(Bytes::from_static(b"client-first")),
            ..ConnectProperties::default()
        },
        ..SessionConfig::new(ProtocolVersion::V5, "c")
    };
    let mut broker = Broker::new(config);
    broker.open();
    let challenge = Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: AuthProperties {
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: Some(Bytes::from_static(b"server-first")),
            ..AuthProperties::default()
        },
    };
    broker.feed(Packet::Auth(challenge.clone()));
    assert_eq!(broker.events(), vec![Event::AuthReceived(challenge)]);
    let answer = Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: AuthProperties {
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: Some(Bytes::from_static(b"client-final")),
            ..AuthProperties::default()
        },
    };
    broker.session.auth(broker.now, answer.clone()).unwrap();
    assert_eq!(broker.sent(), vec![Packet::Auth(answer)]);
    broker.feed(Packet::ConnAck(ConnAck::default()));
    assert!(matches!(broker.events()[0], Event::Connected { .. }));

    // Another method is a protocol error.
    broker.feed(Packet::Auth(Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: AuthProperties {
            authentication_method: Some("PLAIN".into()),
            ..AuthProperties::default()
        },
    }));
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::UnexpectedAuth(_))
    ));

    // Without a method, AUTH is a protocol error and auth() is refused.
    let mut broker = Broker::v5();
    broker.open();
    assert_eq!(
        broker.session.auth(broker.now, Auth::default()),
        Err(CommandError::AuthNotNegotiated)
    );
    broker.feed(Packet::Auth(Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: AuthProperties {
            authentication_method: Some("X".into()),
            ..AuthProperties::default()
        },
    }));
    let sent = broker.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PROTOCOL_ERROR)
    );

    let mut broker = Broker::v311();
    broker.connect();
    assert_eq!(
        broker.session.auth(broker.now, Auth::default()),
        Err(CommandError::RequiresV5("AUTH"))
    );
}

#[test]
fn second_connack_is_a_protocol_error() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut broker = Broker::new(SessionConfig::new(version, "c"));
        broker.connect();
        broker.feed(Packet::ConnAck(ConnAck::default()));
        assert_eq!(
            broker.closed_reason(),
            CloseReason::ProtocolViolation(ProtocolViolation::SecondConnAck)
        );
        let sent = broker.sent();
        match version {
            ProtocolVersion::V5 => assert!(
                matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PROTOCOL_ERROR)
            ),
            ProtocolVersion::V311 => assert!(sent.is_empty()),
        }
    }
}

#[test]
fn session_present_after_clean_start_closes_mqtt_3_2_2_4() {
    let mut broker = Broker::v5();
    broker.open();
    broker.feed(Packet::ConnAck(ConnAck {
        session_present: true,
        ..ConnAck::default()
    }));
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::InvalidConnAck(_))
    ));
    assert_eq!(broker.session.state(), SessionState::Closed);
}

#[test]
fn no_connack_within_the_connect_timeout_closes() {
    let mut broker = Broker::v311();
    broker.open();
    assert_eq!(
        broker.session.poll_timeout(),
        Some(broker.at(0) + DEFAULT_CONNECT_TIMEOUT)
    );
    broker.advance_and_tick(Duration::from_secs(29));
    assert_eq!(broker.session.state(), SessionState::Connecting);
    assert!(broker.events().is_empty());
    broker.advance_and_tick(Duration::from_secs(1));
    assert_eq!(broker.closed_reason(), CloseReason::ConnectTimeout);
    assert_eq!(broker.session.poll_timeout(), None);
}

#[test]
fn commands_need_an_established_connection() {
    let mut broker = Broker::v311();
    let now = broker.now;
    let publish = || publish_to("a", QoS::AtMostOnce);
    assert_eq!(
        broker.session.publish(now, publish()),
        Err(CommandError::NotConnected)
    );
    broker.open();
    assert_eq!(
        broker.session.publish(now, publish()),
        Err(CommandError::NotConnected)
    );
    assert_eq!(broker.session.ping(now), Err(CommandError::NotConnected));
    assert_eq!(
        broker
            .session
            .subscribe(now, vec![], SubscribeProperties::default()),
        Err(CommandError::NotConnected)
    );
    assert_eq!(
        broker
            .session
            .unsubscribe(now, vec!["a".into()], UnsubscribeProperties::default()),
        Err(CommandError::NotConnected)
    );
    assert!(broker.sent().is_empty());
}

#[test]
fn transport_lost_during_handshake_reports_closed() {
    let mut broker = Broker::v311();
    broker.open();
    broker.session.handle_transport_closed(broker.now);
    assert_eq!(broker.closed_reason(), CloseReason::TransportClosed);
    assert_eq!(broker.session.state(), SessionState::Disconnected);
    // Closing twice is harmless and silent.
    broker.session.handle_transport_closed(broker.now);
    assert!(broker.events().is_empty());
}

#[test]
fn reopening_without_close_ends_the_previous_connection() {
    let mut broker = Broker::v311();
    broker.connect();
    broker.open();
    assert_eq!(
        broker.events(),
        vec![Event::Closed {
            reason: CloseReason::TransportClosed
        }]
    );
    assert_eq!(broker.session.state(), SessionState::Connecting);
}

#[test]
fn a_shared_config_is_not_copied_by_each_session() {
    // A driver makes one session per connect call from the same settings.
    let config = Arc::new(SessionConfig::new(ProtocolVersion::V311, "shared"));
    let first = ClientSession::new(Arc::clone(&config)).unwrap();
    let second = ClientSession::new(Arc::clone(&config)).unwrap();
    assert!(std::ptr::eq(first.config(), &*config));
    assert!(std::ptr::eq(second.config(), &*config));
    assert_eq!(Arc::strong_count(&config), 3);
}

/// Every idle connection holds a session and its configuration (W7): a guard
/// against growth, with slack for other compiler versions.
#[test]
fn session_and_config_stay_small() {
    let session = std::mem::size_of::<ClientSession>();
    let config = std::mem::size_of::<SessionConfig>();
    assert!(session <= 640, "ClientSession takes {session} bytes");
    assert!(config <= 288, "SessionConfig takes {config} bytes");
}
