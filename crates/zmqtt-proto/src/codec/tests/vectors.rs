//! Byte-exact vectors derived by hand from the packet layouts of MQTT 3.1.1
//! (section 3) and 5.0 (section 3). Each asserts the encoding, the decoding and
//! that every proper prefix is incomplete. Properties are written in ascending
//! identifier order, which is the encoder's order.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::packet::*;

fn user(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

// ---------------------------------------------------------------- CONNECT

#[test]
fn connect_v311_minimal() {
    let packet = Packet::Connect(Box::new(Connect {
        protocol: V311,
        clean_start: true,
        ..Connect::default()
    }));
    #[rustfmt::skip]
    let bytes = [
        0x10, 12,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 4, // protocol name, level 4
        0x02,                                  // flags: clean session
        0x00, 0x00,                            // keep alive
        0x00, 0x00,                            // client id ""
    ];
    assert_vector(packet, V311, &bytes);
}

#[test]
fn connect_v311_with_will_username_password() {
    let packet = Packet::Connect(Box::new(Connect {
        protocol: V311,
        client_id: "cid".into(),
        keep_alive: 60,
        clean_start: true,
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"pw")),
        will: Some(LastWill {
            topic: "w".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        properties: ConnectProperties::default(),
    }));
    #[rustfmt::skip]
    let bytes = [
        0x10, 30,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 4,
        // user name | password | will retain | will QoS 1 | will | clean session
        0b1110_1110,
        0x00, 60,
        0x00, 0x03, b'c', b'i', b'd',
        0x00, 0x01, b'w',
        0x00, 0x03, b'b', b'y', b'e',
        0x00, 0x01, b'u',
        0x00, 0x02, b'p', b'w',
    ];
    assert_vector(packet, V311, &bytes);
}

#[test]
fn connect_v5_with_properties_will_and_password_only() {
    // 5.0 allows a password without a user name (3.1.2.9).
    let packet = Packet::Connect(Box::new(Connect {
        protocol: V5,
        client_id: "c".into(),
        keep_alive: 10,
        clean_start: true,
        username: None,
        password: Some(Bytes::from_static(b"p")),
        will: Some(LastWill {
            topic: "t".into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(1),
                ..WillProperties::default()
            },
        }),
        properties: ConnectProperties {
            session_expiry_interval: Some(30),
            receive_maximum: Some(20),
            user_properties: vec![user("k", "v")],
            ..ConnectProperties::default()
        },
    }));
    #[rustfmt::skip]
    let bytes = [
        0x10, 46,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 5,
        0b0100_0110, // password | will (QoS 0, no retain) | clean start
        0x00, 10,
        15,                                   // property length
        0x11, 0x00, 0x00, 0x00, 30,           // session expiry interval
        0x21, 0x00, 20,                       // receive maximum
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        0x00, 0x01, b'c',                     // client id
        7,                                    // will property length
        0x01, 1,                              // payload format indicator
        0x18, 0x00, 0x00, 0x00, 5,            // will delay interval
        0x00, 0x01, b't',                     // will topic
        0x00, 0x01, b'x',                     // will payload
        0x00, 0x01, b'p',                     // password
    ];
    assert_vector(packet, V5, &bytes);
}

#[test]
fn connect_v5_every_connect_property() {
    let packet = Packet::Connect(Box::new(Connect {
        protocol: V5,
        properties: ConnectProperties {
            session_expiry_interval: Some(256),
            receive_maximum: Some(100),
            maximum_packet_size: Some(1024),
            topic_alias_maximum: Some(5),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            user_properties: vec![user("a", "b")],
            authentication_method: Some("m".into()),
            authentication_data: Some(Bytes::from_static(&[1, 2])),
        },
        ..Connect::default()
    }));
    #[rustfmt::skip]
    let bytes = [
        0x10, 49,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 5,
        0x00,
        0x00, 0x00,
        36,
        0x11, 0x00, 0x00, 0x01, 0x00,         // session expiry interval 256
        0x15, 0x00, 0x01, b'm',               // authentication method
        0x16, 0x00, 0x02, 1, 2,               // authentication data
        0x17, 0,                              // request problem information
        0x19, 1,                              // request response information
        0x21, 0x00, 100,                      // receive maximum
        0x22, 0x00, 5,                        // topic alias maximum
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',
        0x27, 0x00, 0x00, 0x04, 0x00,         // maximum packet size 1024
        0x00, 0x00,                           // client id ""
    ];
    assert_vector(packet, V5, &bytes);
}

#[test]
fn connect_v5_every_will_property() {
    let packet = Packet::Connect(Box::new(Connect {
        protocol: V5,
        client_id: "c".into(),
        clean_start: true,
        will: Some(LastWill {
            topic: "t".into(),
            payload: Bytes::new(),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: WillProperties {
                will_delay_interval: Some(1),
                payload_format_indicator: Some(0),
                message_expiry_interval: Some(10),
                content_type: Some("t".into()),
                response_topic: Some("r".into()),
                correlation_data: Some(Bytes::from_static(b"c")),
                user_properties: vec![user("a", "b")],
            },
        }),
        ..Connect::default()
    }));
    #[rustfmt::skip]
    let bytes = [
        0x10, 51,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 5,
        0b0001_0110, // will QoS 2 | will | clean start
        0x00, 0x00,
        0,
        0x00, 0x01, b'c',
        31,
        0x01, 0,                              // payload format indicator
        0x02, 0x00, 0x00, 0x00, 10,           // message expiry interval
        0x03, 0x00, 0x01, b't',               // content type
        0x08, 0x00, 0x01, b'r',               // response topic
        0x09, 0x00, 0x01, b'c',               // correlation data
        0x18, 0x00, 0x00, 0x00, 1,            // will delay interval
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',
        0x00, 0x01, b't',
        0x00, 0x00,
    ];
    assert_vector(packet, V5, &bytes);
}

#[test]
fn connect_is_decoded_by_its_own_protocol_level() {
    // A server does not know the version before CONNECT: the level decides.
    let v5_connect = [
        0x10, 13, 0x00, 0x04, b'M', b'Q', b'T', b'T', 5, 0x02, 0x00, 0x00, 0, 0x00, 0x00,
    ];
    let packet = decode_one(&v5_connect, V311);
    let Packet::Connect(connect) = packet else {
        panic!("expected CONNECT")
    };
    assert_eq!(connect.protocol, V5);
}

// ---------------------------------------------------------------- CONNACK

#[test]
fn connack_v311() {
    let accepted = Packet::ConnAck(ConnAck {
        session_present: true,
        code: ReasonCode::SUCCESS,
        properties: ConnAckProperties::default(),
    });
    assert_vector(accepted, V311, &[0x20, 0x02, 0x01, 0x00]);
    let refused = Packet::ConnAck(ConnAck {
        code: ReasonCode(5), // not authorized
        ..ConnAck::default()
    });
    assert_vector(refused, V311, &[0x20, 0x02, 0x00, 0x05]);
}

#[test]
fn connack_v5_failure_without_properties() {
    let packet = Packet::ConnAck(ConnAck {
        code: ReasonCode::NOT_AUTHORIZED,
        ..ConnAck::default()
    });
    assert_vector(packet, V5, &[0x20, 0x03, 0x00, 0x87, 0x00]);
}

#[test]
fn connack_v5_every_property() {
    let packet = Packet::ConnAck(ConnAck {
        session_present: true,
        code: ReasonCode::SUCCESS,
        properties: ConnAckProperties {
            session_expiry_interval: Some(10),
            receive_maximum: Some(1),
            maximum_qos: Some(QoS::AtMostOnce),
            retain_available: Some(true),
            maximum_packet_size: Some(65_536),
            assigned_client_identifier: Some("c".into()),
            topic_alias_maximum: Some(2),
            reason_string: Some("ok".into()),
            user_properties: vec![user("x", "y")],
            wildcard_subscription_available: Some(false),
            subscription_identifiers_available: Some(true),
            shared_subscription_available: Some(false),
            server_keep_alive: Some(30),
            response_information: Some("ri".into()),
            server_reference: Some("sr".into()),
            authentication_method: Some("m".into()),
            authentication_data: Some(Bytes::from_static(&[9])),
        },
    });
    #[rustfmt::skip]
    let bytes = [
        0x20, 66,
        0x01, 0x00,
        63,
        0x11, 0x00, 0x00, 0x00, 10,           // session expiry interval
        0x12, 0x00, 0x01, b'c',               // assigned client identifier
        0x13, 0x00, 30,                       // server keep alive
        0x15, 0x00, 0x01, b'm',               // authentication method
        0x16, 0x00, 0x01, 9,                  // authentication data
        0x1A, 0x00, 0x02, b'r', b'i',         // response information
        0x1C, 0x00, 0x02, b's', b'r',         // server reference
        0x1F, 0x00, 0x02, b'o', b'k',         // reason string
        0x21, 0x00, 1,                        // receive maximum
        0x22, 0x00, 2,                        // topic alias maximum
        0x24, 0,                              // maximum QoS 0
        0x25, 1,                              // retain available
        0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'y',
        0x27, 0x00, 0x01, 0x00, 0x00,         // maximum packet size 65536
        0x28, 0,                              // wildcard subscription available
        0x29, 1,                              // subscription identifiers available
        0x2A, 0,                              // shared subscription available
    ];
    assert_vector(packet, V5, &bytes);
}

// ---------------------------------------------------------------- PUBLISH

#[test]
fn publish_v311_qos0_retained() {
    let packet = Packet::Publish(Publish {
        retain: true,
        topic: "a/b".into(),
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    });
    assert_vector(
        packet,
        V311,
        &[0x31, 7, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'],
    );
}

#[test]
fn publish_v311_qos1_dup() {
    let packet = Packet::Publish(Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        topic: "a".into(),
        packet_id: Some(10),
        payload: Bytes::from_static(b"x"),
        ..Publish::default()
    });
    assert_vector(packet, V311, &[0x3A, 6, 0x00, 0x01, b'a', 0x00, 10, b'x']);
}

#[test]
fn publish_v311_qos2_empty_payload() {
    let packet = Packet::Publish(Publish {
        qos: QoS::ExactlyOnce,
        topic: "a".into(),
        packet_id: Some(0x1234),
        ..Publish::default()
    });
    assert_vector(packet, V311, &[0x34, 5, 0x00, 0x01, b'a', 0x12, 0x34]);
}

#[test]
fn publish_two_byte_remaining_length() {
    let payload = vec![0xAB; 200];
    let packet = Packet::Publish(Publish {
        topic: "t".into(),
        payload: Bytes::from(payload.clone()),
        ..Publish::default()
    });
    // 3 + 200 = 203 = 0x4B + 1 * 128.
    let mut bytes = vec![0x30, 0xCB, 0x01, 0x00, 0x01, b't'];
    bytes.extend_from_slice(&payload);
    assert_vector(packet, V311, &bytes);
}

#[test]
fn publish_v5_qos0_without_properties() {
    let packet = Packet::Publish(Publish {
        topic: "a".into(),
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    });
    assert_vector(packet, V5, &[0x30, 6, 0x00, 0x01, b'a', 0, b'h', b'i']);
}

#[test]
fn publish_v5_qos1_every_property() {
    let packet = Packet::Publish(Publish {
        qos: QoS::AtLeastOnce,
        topic: "a".into(),
        packet_id: Some(1),
        properties: PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            topic_alias: Some(3),
            response_topic: Some("r".into()),
            correlation_data: Some(Bytes::from_static(b"c")),
            user_properties: vec![user("a", "b")],
            subscription_identifiers: vec![1, 200],
            content_type: Some("j".into()),
        },
        payload: Bytes::from_static(b"p"),
        ..Publish::default()
    });
    #[rustfmt::skip]
    let bytes = [
        0x32, 41,
        0x00, 0x01, b'a',
        0x00, 0x01,                           // packet id
        34,
        0x01, 1,                              // payload format indicator
        0x02, 0x00, 0x00, 0x00, 60,           // message expiry interval
        0x03, 0x00, 0x01, b'j',               // content type
        0x08, 0x00, 0x01, b'r',               // response topic
        0x09, 0x00, 0x01, b'c',               // correlation data
        0x0B, 1,                              // subscription identifier 1
        0x0B, 0xC8, 0x01,                     // subscription identifier 200
        0x23, 0x00, 3,                        // topic alias
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',
        b'p',
    ];
    assert_vector(packet, V5, &bytes);
}

#[test]
fn publish_v5_qos2_empty_topic_with_alias() {
    let packet = Packet::Publish(Publish {
        qos: QoS::ExactlyOnce,
        topic: String::new(),
        packet_id: Some(5),
        properties: PublishProperties {
            topic_alias: Some(7),
            ..PublishProperties::default()
        },
        ..Publish::default()
    });
    assert_vector(
        packet,
        V5,
        &[0x34, 8, 0x00, 0x00, 0x00, 5, 3, 0x23, 0x00, 7],
    );
}

#[test]
fn publish_payload_is_a_slice_of_the_receive_buffer() {
    let bytes = [0x30, 6, 0x00, 0x01, b'a', b'x', b'y', b'z'];
    let mut buf = BytesMut::from(&bytes[..]);
    let start = buf.as_ptr() as usize;
    let Some(Packet::Publish(publish)) = decode(&mut buf, V311, u32::MAX).unwrap() else {
        panic!("expected PUBLISH")
    };
    assert_eq!(&publish.payload[..], b"xyz");
    assert_eq!(publish.payload.as_ptr() as usize, start + 5, "zero-copy");
}

// ------------------------------------------- PUBACK / PUBREC / PUBREL / PUBCOMP

fn response(packet_id: u16, code: u8) -> PubResponse {
    PubResponse {
        packet_id,
        reason_code: ReasonCode(code),
        properties: ReasonProperties::default(),
    }
}

#[test]
fn pub_responses_v311() {
    assert_vector(Packet::PubAck(response(7, 0)), V311, &[0x40, 2, 0x00, 7]);
    assert_vector(Packet::PubRec(response(7, 0)), V311, &[0x50, 2, 0x00, 7]);
    // PUBREL fixed header flags are 0b0010 (MQTT-3.6.1-1).
    assert_vector(Packet::PubRel(response(7, 0)), V311, &[0x62, 2, 0x00, 7]);
    assert_vector(Packet::PubComp(response(7, 0)), V311, &[0x70, 2, 0x00, 7]);
}

#[test]
fn pub_responses_v5_short_forms() {
    // Success without properties: remaining length 2.
    assert_vector(Packet::PubAck(response(7, 0)), V5, &[0x40, 2, 0x00, 7]);
    assert_vector(Packet::PubComp(response(7, 0)), V5, &[0x70, 2, 0x00, 7]);
    // Another reason code without properties: remaining length 3.
    assert_vector(
        Packet::PubAck(response(7, 0x10)),
        V5,
        &[0x40, 3, 0x00, 7, 0x10],
    );
    assert_vector(
        Packet::PubRel(response(7, 0x92)),
        V5,
        &[0x62, 3, 0x00, 7, 0x92],
    );
}

#[test]
fn pub_responses_v5_with_properties() {
    let pubrec = Packet::PubRec(PubResponse {
        packet_id: 7,
        reason_code: ReasonCode::UNSPECIFIED_ERROR,
        properties: ReasonProperties {
            reason_string: Some("no".into()),
            user_properties: Vec::new(),
        },
    });
    assert_vector(
        pubrec,
        V5,
        &[0x50, 9, 0x00, 7, 0x80, 5, 0x1F, 0x00, 0x02, b'n', b'o'],
    );
    let pubcomp = Packet::PubComp(PubResponse {
        packet_id: 7,
        reason_code: ReasonCode::SUCCESS,
        properties: ReasonProperties {
            reason_string: None,
            user_properties: vec![user("k", "v")],
        },
    });
    #[rustfmt::skip]
    assert_vector(
        pubcomp,
        V5,
        &[0x70, 11, 0x00, 7, 0x00, 7, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'],
    );
}

#[test]
fn pub_response_v5_longer_forms_decode_to_the_same_packet() {
    // A sender may spell out Success and an empty property block.
    assert_eq!(
        decode_one(&[0x40, 4, 0x00, 7, 0x00, 0x00], V5),
        Packet::PubAck(response(7, 0))
    );
    assert_eq!(
        decode_one(&[0x40, 3, 0x00, 7, 0x00], V5),
        Packet::PubAck(response(7, 0))
    );
}

// ---------------------------------------------------------------- SUBSCRIBE

#[test]
fn subscribe_v311() {
    let packet = Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![
            SubscribeFilter {
                filter: "a/+".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..SubscriptionOptions::default()
                },
            },
            SubscribeFilter {
                filter: "#".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    ..SubscriptionOptions::default()
                },
            },
        ],
        properties: SubscribeProperties::default(),
    });
    #[rustfmt::skip]
    let bytes = [
        0x82, 12,
        0x00, 0x01,
        0x00, 0x03, b'a', b'/', b'+', 0x01,
        0x00, 0x01, b'#', 0x02,
    ];
    assert_vector(packet, V311, &bytes);
}

#[test]
fn subscribe_v5_options_and_subscription_identifier() {
    let packet = Packet::Subscribe(Subscribe {
        packet_id: 2,
        filters: vec![SubscribeFilter {
            filter: "a".into(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        }],
        properties: SubscribeProperties {
            subscription_identifier: Some(300),
            user_properties: Vec::new(),
        },
    });
    #[rustfmt::skip]
    let bytes = [
        0x82, 10,
        0x00, 0x02,
        3, 0x0B, 0xAC, 0x02,                  // subscription identifier 300
        0x00, 0x01, b'a',
        0b0010_1101,                          // retain handling 2 | RAP | NL | QoS 1
    ];
    assert_vector(packet, V5, &bytes);
}

// ---------------------------------------------------------------- SUBACK

#[test]
fn suback_v311() {
    let packet = Packet::SubAck(SubAck {
        packet_id: 1,
        reason_codes: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::V311_SUBACK_FAILURE],
        properties: ReasonProperties::default(),
    });
    assert_vector(packet, V311, &[0x90, 4, 0x00, 0x01, 0x01, 0x80]);
}

#[test]
fn suback_v5() {
    let packet = Packet::SubAck(SubAck {
        packet_id: 2,
        reason_codes: vec![
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        ],
        properties: ReasonProperties {
            reason_string: Some("x".into()),
            user_properties: Vec::new(),
        },
    });
    assert_vector(
        packet,
        V5,
        &[0x90, 9, 0x00, 0x02, 4, 0x1F, 0x00, 0x01, b'x', 0x00, 0xA2],
    );
}

// ---------------------------------------------------------- UNSUBSCRIBE

#[test]
fn unsubscribe_v311() {
    let packet = Packet::Unsubscribe(Unsubscribe {
        packet_id: 3,
        filters: vec!["a".into(), "b/c".into()],
        properties: UnsubscribeProperties::default(),
    });
    #[rustfmt::skip]
    let bytes = [
        0xA2, 10,
        0x00, 0x03,
        0x00, 0x01, b'a',
        0x00, 0x03, b'b', b'/', b'c',
    ];
    assert_vector(packet, V311, &bytes);
}

#[test]
fn unsubscribe_v5() {
    let packet = Packet::Unsubscribe(Unsubscribe {
        packet_id: 3,
        filters: vec!["a".into()],
        properties: UnsubscribeProperties {
            user_properties: vec![user("k", "v")],
        },
    });
    #[rustfmt::skip]
    let bytes = [
        0xA2, 13,
        0x00, 0x03,
        7, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
        0x00, 0x01, b'a',
    ];
    assert_vector(packet, V5, &bytes);
}

// ---------------------------------------------------------------- UNSUBACK

#[test]
fn unsuback_v311() {
    let packet = Packet::UnsubAck(UnsubAck {
        packet_id: 3,
        ..UnsubAck::default()
    });
    assert_vector(packet, V311, &[0xB0, 2, 0x00, 0x03]);
}

#[test]
fn unsuback_v5() {
    let packet = Packet::UnsubAck(UnsubAck {
        packet_id: 3,
        reason_codes: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
        properties: ReasonProperties::default(),
    });
    assert_vector(packet, V5, &[0xB0, 5, 0x00, 0x03, 0, 0x00, 0x11]);
}

// ------------------------------------------------------- PINGREQ / PINGRESP

#[test]
fn ping_both_versions() {
    for version in [V311, V5] {
        assert_vector(Packet::PingReq, version, &[0xC0, 0]);
        assert_vector(Packet::PingResp, version, &[0xD0, 0]);
    }
}

// ------------------------------------------------------------- DISCONNECT

#[test]
fn disconnect_v311() {
    assert_vector(Packet::Disconnect(Disconnect::default()), V311, &[0xE0, 0]);
}

#[test]
fn disconnect_v5_short_forms() {
    // Normal disconnection without properties: remaining length 0.
    assert_vector(Packet::Disconnect(Disconnect::default()), V5, &[0xE0, 0]);
    // Another reason code without properties: remaining length 1 (3.14.2.2.1).
    let with_will = Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        properties: DisconnectProperties::default(),
    });
    assert_vector(with_will, V5, &[0xE0, 1, 0x04]);
}

#[test]
fn disconnect_v5_with_properties() {
    let packet = Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::SERVER_SHUTTING_DOWN,
        properties: DisconnectProperties {
            session_expiry_interval: None,
            reason_string: Some("bye".into()),
            user_properties: Vec::new(),
            server_reference: Some("s".into()),
        },
    });
    #[rustfmt::skip]
    let bytes = [
        0xE0, 12,
        0x8B,
        10,
        0x1C, 0x00, 0x01, b's',               // server reference
        0x1F, 0x00, 0x03, b'b', b'y', b'e',   // reason string
    ];
    assert_vector(packet, V5, &bytes);
    // Success with a property needs the full form.
    let expiry = Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::SUCCESS,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            ..DisconnectProperties::default()
        },
    });
    assert_vector(
        expiry,
        V5,
        &[0xE0, 7, 0x00, 5, 0x11, 0x00, 0x00, 0x00, 0x00],
    );
}

// ---------------------------------------------------------------- AUTH

#[test]
fn auth_v5_empty_form() {
    assert_vector(Packet::Auth(Auth::default()), V5, &[0xF0, 0]);
}

#[test]
fn auth_v5_continue_authentication() {
    let packet = Packet::Auth(Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: AuthProperties {
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(Bytes::from_static(b"abc")),
            reason_string: None,
            user_properties: Vec::new(),
        },
    });
    #[rustfmt::skip]
    let bytes = [
        0xF0, 16,
        0x18,
        14,
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M',
        0x16, 0x00, 0x03, b'a', b'b', b'c',
    ];
    assert_vector(packet, V5, &bytes);
}

// ------------------------------------------------------------- framing

#[test]
fn decode_takes_one_packet_at_a_time() {
    let mut buf = BytesMut::from(&[0xC0, 0, 0xD0, 0, 0x40][..]);
    assert_eq!(decode(&mut buf, V311, u32::MAX), Ok(Some(Packet::PingReq)));
    assert_eq!(decode(&mut buf, V311, u32::MAX), Ok(Some(Packet::PingResp)));
    assert_eq!(decode(&mut buf, V311, u32::MAX), Ok(None));
    assert_eq!(&buf[..], &[0x40]);
}

#[test]
fn encode_appends_after_existing_bytes() {
    let mut buf = BytesMut::from(&[0xC0, 0][..]);
    encode(&Packet::PingResp, V5, &mut buf).unwrap();
    assert_eq!(&buf[..], &[0xC0, 0, 0xD0, 0]);
}

#[test]
fn packet_exactly_at_the_maximum_size_is_accepted() {
    let bytes = [0x30, 4, 0x00, 0x01, b'a', b'x'];
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(matches!(
        decode(&mut buf, V311, 6),
        Ok(Some(Packet::Publish(_)))
    ));
}

#[test]
fn largest_remaining_length_is_encodable() {
    // 268,435,455 bytes of remaining length: 4-byte varint, total + 5.
    let payload = Bytes::from(vec![0u8; 268_435_455 - 3]);
    let packet = Packet::Publish(Publish {
        topic: "t".into(),
        payload,
        ..Publish::default()
    });
    assert_eq!(encoded_len(&packet, V311), Ok(268_435_455 + 5));
}
