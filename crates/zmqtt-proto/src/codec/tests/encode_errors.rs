//! One test per encode validation rule. Every assertion also checks that the
//! buffer is left untouched and that `encoded_len` reports the same error.

use bytes::Bytes;

use super::*;
use crate::packet::*;

fn publish(topic: &str) -> Publish {
    Publish {
        topic: topic.into(),
        ..Publish::default()
    }
}

fn long_string() -> String {
    "x".repeat(65_536)
}

// ------------------------------------------------------- 5.0-only content

#[test]
fn v311_rejects_properties_of_every_packet() {
    let user = vec![("k".to_owned(), "v".to_owned())];
    let reason = ReasonProperties {
        user_properties: user.clone(),
        ..ReasonProperties::default()
    };
    let cases: Vec<(Packet, &str)> = vec![
        (
            Packet::Connect(Box::new(Connect {
                properties: ConnectProperties {
                    receive_maximum: Some(10),
                    ..ConnectProperties::default()
                },
                ..Connect::default()
            })),
            "setting CONNECT properties",
        ),
        (
            Packet::Connect(Box::new(Connect {
                will: Some(LastWill {
                    topic: "w".into(),
                    properties: WillProperties {
                        will_delay_interval: Some(1),
                        ..WillProperties::default()
                    },
                    ..LastWill::default()
                }),
                ..Connect::default()
            })),
            "setting will properties",
        ),
        (
            Packet::ConnAck(ConnAck {
                properties: ConnAckProperties {
                    retain_available: Some(false),
                    ..ConnAckProperties::default()
                },
                ..ConnAck::default()
            }),
            "setting CONNACK properties",
        ),
        (
            Packet::Publish(Publish {
                properties: PublishProperties {
                    message_expiry_interval: Some(5),
                    ..PublishProperties::default()
                },
                ..publish("t")
            }),
            "setting PUBLISH properties",
        ),
        (
            Packet::PubAck(PubResponse {
                packet_id: 1,
                properties: reason.clone(),
                ..PubResponse::default()
            }),
            "setting acknowledgement properties",
        ),
        (
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![SubscribeFilter {
                    filter: "a".into(),
                    options: SubscriptionOptions::default(),
                }],
                properties: SubscribeProperties {
                    subscription_identifier: Some(1),
                    ..SubscribeProperties::default()
                },
            }),
            "setting SUBSCRIBE properties",
        ),
        (
            Packet::SubAck(SubAck {
                packet_id: 1,
                reason_codes: vec![ReasonCode::GRANTED_QOS_0],
                properties: reason.clone(),
            }),
            "setting SUBACK properties",
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 1,
                filters: vec!["a".into()],
                properties: UnsubscribeProperties {
                    user_properties: user,
                },
            }),
            "setting UNSUBSCRIBE properties",
        ),
        (
            Packet::UnsubAck(UnsubAck {
                packet_id: 1,
                reason_codes: Vec::new(),
                properties: reason,
            }),
            "setting UNSUBACK properties",
        ),
        (
            Packet::Disconnect(Disconnect {
                reason_code: ReasonCode::SUCCESS,
                properties: DisconnectProperties {
                    session_expiry_interval: Some(0),
                    ..DisconnectProperties::default()
                },
            }),
            "setting DISCONNECT properties",
        ),
    ];
    for (packet, what) in cases {
        assert_encode_err(&packet, V311, EncodeError::RequiresV5(what));
    }
}

#[test]
fn v311_rejects_5_0_reason_codes() {
    let cases = vec![
        Packet::PubAck(PubResponse {
            packet_id: 1,
            reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
            ..PubResponse::default()
        }),
        Packet::PubRel(PubResponse {
            packet_id: 1,
            reason_code: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            ..PubResponse::default()
        }),
        Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
            ..Disconnect::default()
        }),
        Packet::ConnAck(ConnAck {
            code: ReasonCode::NOT_AUTHORIZED,
            ..ConnAck::default()
        }),
        Packet::SubAck(SubAck {
            packet_id: 1,
            reason_codes: vec![ReasonCode::QUOTA_EXCEEDED],
            ..SubAck::default()
        }),
    ];
    for packet in cases {
        assert_encode_err(&packet, V311, EncodeError::RequiresV5("this reason code"));
    }
}

#[test]
fn v311_rejects_auth() {
    assert_encode_err(
        &Packet::Auth(Auth::default()),
        V311,
        EncodeError::RequiresV5("AUTH"),
    );
}

#[test]
fn v311_rejects_unsuback_reason_codes() {
    let packet = Packet::UnsubAck(UnsubAck {
        packet_id: 1,
        reason_codes: vec![ReasonCode::SUCCESS],
        ..UnsubAck::default()
    });
    assert_encode_err(
        &packet,
        V311,
        EncodeError::RequiresV5("UNSUBACK reason codes"),
    );
}

#[test]
fn v311_rejects_subscription_options_other_than_qos() {
    let options = [
        SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::default()
        },
        SubscriptionOptions {
            retain_as_published: true,
            ..SubscriptionOptions::default()
        },
        SubscriptionOptions {
            retain_handling: RetainHandling::DoNotSend,
            ..SubscriptionOptions::default()
        },
    ];
    for options in options {
        let packet = Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![SubscribeFilter {
                filter: "a".into(),
                options,
            }],
            ..Subscribe::default()
        });
        assert_encode_err(
            &packet,
            V311,
            EncodeError::RequiresV5("a subscription option other than QoS"),
        );
    }
}

/// 3.1.1 MQTT-3.1.2-22; allowed in 5.0 (see the vectors).
#[test]
fn v311_rejects_password_without_username() {
    let packet = Packet::Connect(Box::new(Connect {
        password: Some(Bytes::from_static(b"p")),
        ..Connect::default()
    }));
    assert_encode_err(
        &packet,
        V311,
        EncodeError::RequiresV5("a password without a username"),
    );
}

// ---------------------------------------------------------------- packet ids

#[test]
fn publish_packet_id_must_match_qos() {
    let qos0_with_id = Packet::Publish(Publish {
        packet_id: Some(1),
        ..publish("t")
    });
    assert_encode_err(
        &qos0_with_id,
        V5,
        invalid("packet_id", "must be None for QoS 0"),
    );
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let without_id = Packet::Publish(Publish {
            qos,
            ..publish("t")
        });
        assert_encode_err(
            &without_id,
            V311,
            invalid("packet_id", "required for QoS 1 and 2"),
        );
        let zero_id = Packet::Publish(Publish {
            qos,
            packet_id: Some(0),
            ..publish("t")
        });
        assert_encode_err(&zero_id, V311, invalid("packet_id", "must not be 0"));
    }
}

/// MQTT-2.2.1-3 (5.0), MQTT-2.3.1-1 (3.1.1).
#[test]
fn packet_id_0_is_rejected_everywhere() {
    let filter = SubscribeFilter {
        filter: "a".into(),
        options: SubscriptionOptions::default(),
    };
    let cases = vec![
        Packet::PubAck(PubResponse::default()),
        Packet::PubRec(PubResponse::default()),
        Packet::PubRel(PubResponse::default()),
        Packet::PubComp(PubResponse::default()),
        Packet::Subscribe(Subscribe {
            filters: vec![filter],
            ..Subscribe::default()
        }),
        Packet::SubAck(SubAck {
            reason_codes: vec![ReasonCode::GRANTED_QOS_0],
            ..SubAck::default()
        }),
        Packet::Unsubscribe(Unsubscribe {
            filters: vec!["a".into()],
            ..Unsubscribe::default()
        }),
        Packet::UnsubAck(UnsubAck::default()),
    ];
    for packet in cases {
        assert_encode_err(&packet, V311, invalid("packet_id", "must not be 0"));
    }
}

// ------------------------------------------------------------ publish rules

/// MQTT-3.3.1-2.
#[test]
fn dup_with_qos_0_is_rejected() {
    let packet = Packet::Publish(Publish {
        dup: true,
        ..publish("t")
    });
    assert_encode_err(&packet, V5, invalid("dup", "must be false for QoS 0"));
}

/// 3.3.2.1 (5.0) / MQTT-4.7.3-1.
#[test]
fn empty_topic_needs_a_topic_alias() {
    let message = invalid("topic", "must not be empty unless a topic alias is set");
    assert_encode_err(&Packet::Publish(publish("")), V311, message.clone());
    assert_encode_err(&Packet::Publish(publish("")), V5, message);
}

// ----------------------------------------------------- strings and binaries

#[test]
fn strings_longer_than_65535_bytes_are_rejected() {
    let too_long = "longer than 65535 bytes";
    assert_encode_err(
        &Packet::Publish(publish(&long_string())),
        V311,
        invalid("topic", too_long),
    );
    let connect = Packet::Connect(Box::new(Connect {
        client_id: long_string(),
        ..Connect::default()
    }));
    assert_encode_err(&connect, V311, invalid("client_id", too_long));
    let connect = Packet::Connect(Box::new(Connect {
        username: Some(long_string()),
        ..Connect::default()
    }));
    assert_encode_err(&connect, V311, invalid("username", too_long));
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: 1,
        filters: vec![long_string()],
        ..Unsubscribe::default()
    });
    assert_encode_err(&unsubscribe, V311, invalid("filter", too_long));
    let publish_props = Packet::Publish(Publish {
        properties: PublishProperties {
            response_topic: Some(long_string()),
            ..PublishProperties::default()
        },
        ..publish("t")
    });
    assert_encode_err(&publish_props, V5, invalid("response_topic", too_long));
}

#[test]
fn binaries_longer_than_65535_bytes_are_rejected() {
    let too_long = "longer than 65535 bytes";
    let big = Bytes::from(vec![0u8; 65_536]);
    let connect = Packet::Connect(Box::new(Connect {
        username: Some("u".into()),
        password: Some(big.clone()),
        ..Connect::default()
    }));
    assert_encode_err(&connect, V311, invalid("password", too_long));
    let connect = Packet::Connect(Box::new(Connect {
        will: Some(LastWill {
            topic: "w".into(),
            payload: big.clone(),
            ..LastWill::default()
        }),
        ..Connect::default()
    }));
    assert_encode_err(&connect, V311, invalid("will.payload", too_long));
    let publish_props = Packet::Publish(Publish {
        properties: PublishProperties {
            correlation_data: Some(big),
            ..PublishProperties::default()
        },
        ..publish("t")
    });
    assert_encode_err(&publish_props, V5, invalid("correlation_data", too_long));
}

/// MQTT-1.5.4-2: the peer would reject a string containing U+0000.
#[test]
fn strings_with_null_character_are_rejected() {
    assert_encode_err(
        &Packet::Publish(publish("a\0b")),
        V311,
        invalid("topic", "contains U+0000"),
    );
    let user = Packet::Publish(Publish {
        properties: PublishProperties {
            user_properties: vec![("k".into(), "\0".into())],
            ..PublishProperties::default()
        },
        ..publish("t")
    });
    assert_encode_err(&user, V5, invalid("user_properties", "contains U+0000"));
}

// ------------------------------------------------------- property values

#[test]
fn property_value_rules_are_enforced() {
    let cases: Vec<(Packet, EncodeError)> = vec![
        (
            Packet::Publish(Publish {
                properties: PublishProperties {
                    topic_alias: Some(0), // MQTT-3.3.2-8
                    ..PublishProperties::default()
                },
                ..publish("t")
            }),
            invalid("topic_alias", "must not be 0"),
        ),
        (
            Packet::Publish(Publish {
                properties: PublishProperties {
                    payload_format_indicator: Some(2),
                    ..PublishProperties::default()
                },
                ..publish("t")
            }),
            invalid("payload_format_indicator", "must be 0 or 1"),
        ),
        (
            Packet::Publish(Publish {
                properties: PublishProperties {
                    subscription_identifiers: vec![0],
                    ..PublishProperties::default()
                },
                ..publish("t")
            }),
            invalid("subscription_identifiers", "must be in 1..=268435455"),
        ),
        (
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![SubscribeFilter {
                    filter: "a".into(),
                    options: SubscriptionOptions::default(),
                }],
                properties: SubscribeProperties {
                    subscription_identifier: Some(268_435_456),
                    ..SubscribeProperties::default()
                },
            }),
            invalid("subscription_identifier", "must be in 1..=268435455"),
        ),
        (
            Packet::Connect(Box::new(Connect {
                protocol: V5,
                properties: ConnectProperties {
                    receive_maximum: Some(0),
                    ..ConnectProperties::default()
                },
                ..Connect::default()
            })),
            invalid("receive_maximum", "must not be 0"),
        ),
        (
            Packet::ConnAck(ConnAck {
                properties: ConnAckProperties {
                    maximum_packet_size: Some(0),
                    ..ConnAckProperties::default()
                },
                ..ConnAck::default()
            }),
            invalid("maximum_packet_size", "must not be 0"),
        ),
        (
            Packet::ConnAck(ConnAck {
                properties: ConnAckProperties {
                    maximum_qos: Some(QoS::ExactlyOnce),
                    ..ConnAckProperties::default()
                },
                ..ConnAck::default()
            }),
            invalid("maximum_qos", "must be QoS 0 or 1 (absent means 2)"),
        ),
        (
            Packet::Connect(Box::new(Connect {
                protocol: V5,
                will: Some(LastWill {
                    topic: "w".into(),
                    properties: WillProperties {
                        payload_format_indicator: Some(7),
                        ..WillProperties::default()
                    },
                    ..LastWill::default()
                }),
                ..Connect::default()
            })),
            invalid("payload_format_indicator", "must be 0 or 1"),
        ),
    ];
    for (packet, expected) in cases {
        assert_encode_err(&packet, V5, expected);
    }
}

// ------------------------------------------------------------- reason codes

#[test]
fn reason_codes_must_be_allowed_in_the_packet() {
    let not_allowed = "not allowed in this packet";
    let cases: Vec<(Packet, ProtocolVersion, EncodeError)> = vec![
        (
            Packet::PubAck(PubResponse {
                packet_id: 1,
                reason_code: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                ..PubResponse::default()
            }),
            V5,
            invalid("reason_code", not_allowed),
        ),
        (
            Packet::ConnAck(ConnAck {
                code: ReasonCode(6),
                ..ConnAck::default()
            }),
            V311,
            invalid("code", not_allowed),
        ),
        (
            Packet::ConnAck(ConnAck {
                code: ReasonCode(1),
                ..ConnAck::default()
            }),
            V5,
            invalid("code", not_allowed),
        ),
        (
            Packet::SubAck(SubAck {
                packet_id: 1,
                reason_codes: vec![ReasonCode(3)],
                ..SubAck::default()
            }),
            V5,
            invalid("reason_codes", not_allowed),
        ),
        (
            Packet::Disconnect(Disconnect {
                reason_code: ReasonCode::GRANTED_QOS_1,
                ..Disconnect::default()
            }),
            V5,
            invalid("reason_code", not_allowed),
        ),
        (
            Packet::Auth(Auth {
                reason_code: ReasonCode::UNSPECIFIED_ERROR,
                ..Auth::default()
            }),
            V5,
            invalid("reason_code", not_allowed),
        ),
    ];
    for (packet, version, expected) in cases {
        assert_encode_err(&packet, version, expected);
    }
}

// ---------------------------------------------------------- other rules

#[test]
fn empty_filter_and_reason_code_lists_are_rejected() {
    let no_filters = invalid("filters", "at least one topic filter is required");
    assert_encode_err(
        &Packet::Subscribe(Subscribe {
            packet_id: 1,
            ..Subscribe::default()
        }),
        V5,
        no_filters.clone(),
    );
    assert_encode_err(
        &Packet::Unsubscribe(Unsubscribe {
            packet_id: 1,
            ..Unsubscribe::default()
        }),
        V311,
        no_filters,
    );
    let no_codes = invalid("reason_codes", "at least one reason code is required");
    assert_encode_err(
        &Packet::SubAck(SubAck {
            packet_id: 1,
            ..SubAck::default()
        }),
        V311,
        no_codes.clone(),
    );
    assert_encode_err(
        &Packet::UnsubAck(UnsubAck {
            packet_id: 1,
            ..UnsubAck::default()
        }),
        V5,
        no_codes,
    );
}

/// MQTT-3.2.2-4 (3.1.1), MQTT-3.2.2-6 (5.0).
#[test]
fn connack_session_present_with_failure_is_rejected() {
    let cases = [(V311, ReasonCode(5)), (V5, ReasonCode::BANNED)];
    for (version, code) in cases {
        let packet = Packet::ConnAck(ConnAck {
            session_present: true,
            code,
            ..ConnAck::default()
        });
        assert_encode_err(
            &packet,
            version,
            invalid("session_present", "must be false with a non-zero code"),
        );
    }
}

#[test]
fn connect_protocol_must_match_the_version() {
    let packet = Packet::Connect(Box::new(Connect {
        protocol: V5,
        ..Connect::default()
    }));
    assert_encode_err(
        &packet,
        V311,
        invalid(
            "protocol",
            "differs from the protocol version passed to encode",
        ),
    );
}

/// 3.1.2.11.10: Authentication Data without Authentication Method.
#[test]
fn connect_authentication_data_needs_a_method() {
    let packet = Packet::Connect(Box::new(Connect {
        protocol: V5,
        properties: ConnectProperties {
            authentication_data: Some(Bytes::from_static(b"d")),
            ..ConnectProperties::default()
        },
        ..Connect::default()
    }));
    assert_encode_err(
        &packet,
        V5,
        invalid("authentication_data", "requires authentication_method"),
    );
}

#[test]
fn connect_will_topic_must_not_be_empty() {
    let packet = Packet::Connect(Box::new(Connect {
        will: Some(LastWill::default()),
        ..Connect::default()
    }));
    assert_encode_err(&packet, V311, invalid("will.topic", "must not be empty"));
}

/// MQTT-3.8.3-4 (5.0).
#[test]
fn no_local_on_shared_subscription_is_rejected() {
    let packet = Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter {
            filter: "$share/g/a".into(),
            options: SubscriptionOptions {
                no_local: true,
                ..SubscriptionOptions::default()
            },
        }],
        ..Subscribe::default()
    });
    assert_encode_err(
        &packet,
        V5,
        invalid("no_local", "not allowed on a shared subscription"),
    );
}

/// 3.15.2.2.2: AUTH beyond the empty form names its method.
#[test]
fn auth_needs_a_method_unless_empty() {
    let continue_without_method = Packet::Auth(Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        ..Auth::default()
    });
    let expected = invalid("authentication_method", "required in AUTH");
    assert_encode_err(&continue_without_method, V5, expected.clone());
    let success_with_reason = Packet::Auth(Auth {
        properties: AuthProperties {
            reason_string: Some("r".into()),
            ..AuthProperties::default()
        },
        ..Auth::default()
    });
    assert_encode_err(&success_with_reason, V5, expected);
}

#[test]
fn remaining_length_above_268_435_455_is_rejected() {
    // Zeroed pages are not touched: nothing is written on error.
    let packet = Packet::Publish(Publish {
        payload: Bytes::from(vec![0u8; 268_435_455 - 2]),
        ..publish("t")
    });
    assert_encode_err(&packet, V311, EncodeError::TooLarge(268_435_456));
}

/// A payload length near `usize::MAX` is a size error, not an overflow.
#[test]
fn qos0_publish_len_of_an_impossible_payload_is_too_large() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        assert!(matches!(
            crate::codec::qos0_publish_len("a", usize::MAX, version),
            Err(EncodeError::TooLarge(_))
        ));
    }
}
