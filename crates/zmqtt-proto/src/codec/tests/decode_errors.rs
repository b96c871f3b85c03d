//! One test per decode rejection rule, asserting the exact error and its
//! reason code. Statement ids are MQTT 5.0's unless marked 3.1.1.

use bytes::BytesMut;

use super::*;

/// A packet with `first` as its first byte and `body` as everything after the
/// remaining length (short bodies only).
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut bytes = vec![first, body.len() as u8];
    bytes.extend_from_slice(body);
    bytes
}

/// A 5.0 PUBLISH (QoS 0, topic "a") with the given property block contents.
fn publish_v5(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, b'a', props.len() as u8];
    body.extend_from_slice(props);
    frame(0x30, &body)
}

/// A 5.0 CONNACK (Success) with the given property block contents.
fn connack_v5(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x00, props.len() as u8];
    body.extend_from_slice(props);
    frame(0x20, &body)
}

/// A 5.0 CONNECT (client id "") with the given property block contents.
fn connect_v5(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 5, 0x02, 0x00, 0x00];
    body.push(props.len() as u8);
    body.extend_from_slice(props);
    body.extend_from_slice(&[0x00, 0x00]);
    frame(0x10, &body)
}

/// A CONNECT with the given protocol name, level and flags, client id "",
/// then `payload_tail` (3.1.1 layout unless level 5).
fn connect_with(name: &[u8], level: u8, flags: u8, payload_tail: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0x00, 0x00]);
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&[0x00, 0x00]);
    body.extend_from_slice(payload_tail);
    frame(0x10, &body)
}

const TRUNCATED: &str = "field runs past the end of the packet";
const TRAILING: &str = "unexpected bytes at the end of the packet";
const NOT_ALLOWED_CODE: &str = "reason code not allowed in this packet";

// ------------------------------------------------------------ fixed header

#[test]
fn reserved_packet_type_0_is_malformed() {
    for version in [V311, V5] {
        assert_malformed(&[0x00, 0x00], version, "reserved packet type 0");
    }
}

#[test]
fn auth_on_v311_is_malformed() {
    assert_malformed(&[0xF0, 0x00], V311, "AUTH does not exist in MQTT 3.1.1");
}

/// 3.1.1 MQTT-2.2.2-1/-2; 5.0 section 2.1.3, MQTT-3.6.1-1 (PUBREL),
/// MQTT-3.8.1-1 (SUBSCRIBE), MQTT-3.10.1-1 (UNSUBSCRIBE), MQTT-3.14.1-1
/// (DISCONNECT), MQTT-3.15.1-1 (AUTH). Checked from the first byte alone.
#[test]
fn fixed_header_flags_must_be_the_reserved_values() {
    let required: [(u8, u8); 14] = [
        (1, 0),
        (2, 0),
        (4, 0),
        (5, 0),
        (6, 0b0010),
        (7, 0),
        (8, 0b0010),
        (9, 0),
        (10, 0b0010),
        (11, 0),
        (12, 0),
        (13, 0),
        (14, 0),
        (15, 0),
    ];
    for (packet_type, flags) in required {
        for wrong in (0..16u8).filter(|f| *f != flags) {
            let first = (packet_type << 4) | wrong;
            for version in [V311, V5] {
                if packet_type == 15 && version == V311 {
                    continue;
                }
                assert_malformed(&[first], version, "invalid fixed header flags");
            }
        }
    }
}

/// MQTT-3.3.1-4: both QoS bits set.
#[test]
fn publish_qos_3_is_malformed() {
    for first in [0x36, 0x37, 0x3E, 0x3F] {
        for version in [V311, V5] {
            assert_malformed(&[first], version, "PUBLISH with QoS 3");
        }
    }
}

/// MQTT-3.3.1-2: DUP must be 0 for QoS 0.
#[test]
fn publish_dup_with_qos_0_is_malformed() {
    for first in [0x38, 0x39] {
        assert_malformed(&[first], V5, "PUBLISH with DUP set and QoS 0");
    }
}

/// 5.0 section 1.5.5 / 3.1.1 section 2.2.3: at most four bytes.
#[test]
fn remaining_length_longer_than_four_bytes_is_malformed() {
    assert_malformed(
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        V5,
        "variable byte integer longer than four bytes",
    );
    // Known as soon as the fourth byte still continues.
    assert_malformed(
        &[0x30, 0x80, 0x80, 0x80, 0x80],
        V311,
        "variable byte integer longer than four bytes",
    );
}

/// MQTT-1.5.5-1: the minimum number of bytes.
#[test]
fn remaining_length_not_minimally_encoded_is_malformed() {
    let message = "variable byte integer is not minimally encoded";
    assert_malformed(&[0xC0, 0x80, 0x00], V5, message);
    assert_malformed(&[0x30, 0x85, 0x80, 0x00], V311, message);
}

#[test]
fn packet_too_large_is_reported_before_the_body_arrives() {
    // PUBLISH announcing 1000 bytes of remaining length; only the header is here.
    let mut buf = BytesMut::from(&[0x30, 0xE8, 0x07][..]);
    let err = decode(&mut buf, V5, 100).unwrap_err();
    assert_eq!(
        err,
        DecodeError::PacketTooLarge {
            size: 1003,
            max: 100
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::PACKET_TOO_LARGE);
    // One byte over the limit.
    let mut buf = BytesMut::from(&[0x30, 4, 0x00, 0x01, b'a', b'x'][..]);
    assert_eq!(
        decode(&mut buf, V311, 5),
        Err(DecodeError::PacketTooLarge { size: 6, max: 5 })
    );
}

// ------------------------------------------------------- strings and binary

#[test]
fn string_longer_than_the_packet_is_malformed() {
    assert_malformed(&frame(0x30, &[0x00, 0x05, b'a']), V311, TRUNCATED);
}

/// MQTT-1.5.4-1: ill-formed UTF-8, including encoded surrogates and overlong forms.
#[test]
fn string_with_ill_formed_utf8_is_malformed() {
    let message = "string is not well-formed UTF-8";
    assert_malformed(&frame(0x30, &[0x00, 0x02, 0xC3, 0x28]), V311, message);
    assert_malformed(&frame(0x30, &[0x00, 0x03, 0xED, 0xA0, 0x80]), V311, message);
    assert_malformed(&frame(0x30, &[0x00, 0x02, 0xC0, 0x80]), V5, message);
}

/// MQTT-1.5.4-2: no U+0000.
#[test]
fn string_with_null_character_is_malformed() {
    assert_malformed(
        &frame(0x30, &[0x00, 0x03, b'a', 0x00, b'b']),
        V311,
        "string contains U+0000",
    );
    // Also inside a property (user property name).
    assert_malformed(
        &publish_v5(&[0x26, 0x00, 0x01, 0x00, 0x00, 0x00]),
        V5,
        "string contains U+0000",
    );
}

#[test]
fn binary_longer_than_its_property_block_is_malformed() {
    assert_malformed(&publish_v5(&[0x09, 0x00, 0x05, b'c']), V5, TRUNCATED);
}

// --------------------------------------------------------------- properties

#[test]
fn property_block_longer_than_the_packet_is_malformed() {
    assert_malformed(
        &frame(0x30, &[0x00, 0x01, b'a', 10, 0x01, 0x01]),
        V5,
        TRUNCATED,
    );
}

/// MQTT-1.5.5-1 applies to the property length too.
#[test]
fn property_length_not_minimally_encoded_is_malformed() {
    assert_malformed(
        &frame(0x30, &[0x00, 0x01, b'a', 0x80, 0x00]),
        V5,
        "variable byte integer is not minimally encoded",
    );
}

/// Section 2.2.2.2: an identifier not valid for the packet type is malformed.
#[test]
fn property_identifier_not_valid_for_the_packet_is_malformed() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Session Expiry Interval in PUBLISH.
        (publish_v5(&[0x11, 0, 0, 0, 0]), "PUBLISH"),
        // Unknown identifiers.
        (publish_v5(&[0x7F, 0]), "PUBLISH"),
        (publish_v5(&[0x80, 0x01, 0]), "PUBLISH"),
        // Will Delay Interval in the CONNECT properties.
        (connect_v5(&[0x18, 0, 0, 0, 1]), "CONNECT"),
        // Request Problem Information in CONNACK.
        (connack_v5(&[0x17, 1]), "CONNACK"),
        // Subscription Identifier in PUBACK.
        (
            frame(0x40, &[0x00, 0x01, 0x00, 2, 0x0B, 1]),
            "an acknowledgement",
        ),
        // Reason String in SUBSCRIBE.
        (
            frame(
                0x82,
                &[0x00, 0x01, 4, 0x1F, 0x00, 0x01, b'x', 0x00, 0x01, b'a', 0],
            ),
            "SUBSCRIBE",
        ),
        // Subscription Identifier in UNSUBSCRIBE.
        (
            frame(0xA2, &[0x00, 0x01, 2, 0x0B, 1, 0x00, 0x01, b'a']),
            "UNSUBSCRIBE",
        ),
        // Maximum QoS in DISCONNECT.
        (frame(0xE0, &[0x00, 2, 0x24, 0]), "DISCONNECT"),
        // Session Expiry Interval in AUTH.
        (frame(0xF0, &[0x18, 5, 0x11, 0, 0, 0, 0]), "AUTH"),
    ];
    for (bytes, packet) in cases {
        let err = decode_all(&bytes, V5).unwrap_err();
        assert_eq!(
            err.reason_code(),
            ReasonCode::MALFORMED_PACKET,
            "{bytes:02X?}"
        );
        let DecodeError::Malformed(message) = err else {
            panic!("expected Malformed for {bytes:02X?}")
        };
        assert_eq!(
            message,
            format!("property identifier not valid in {packet}")
        );
    }
    // Session Expiry Interval in the Will Properties.
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 5, 0x06, 0x00, 0x00, 0];
    body.extend_from_slice(&[
        0x00, 0x00, 5, 0x11, 0, 0, 0, 0, 0x00, 0x01, b't', 0x00, 0x00,
    ]);
    assert_malformed(
        &frame(0x10, &body),
        V5,
        "property identifier not valid in Will Properties",
    );
}

/// Section 2.2.2.2: a value not of the property's data type (here: too short).
#[test]
fn property_value_shorter_than_its_type_is_malformed() {
    assert_malformed(&publish_v5(&[0x23, 0x00]), V5, TRUNCATED);
    assert_malformed(&connack_v5(&[0x27, 0x00, 0x00, 0x01]), V5, TRUNCATED);
}

#[test]
fn duplicate_non_repeatable_property_is_a_protocol_error() {
    assert_protocol(
        &publish_v5(&[0x23, 0x00, 0x01, 0x23, 0x00, 0x02]),
        V5,
        "property topic_alias included more than once",
    );
    assert_protocol(
        &publish_v5(&[0x01, 0, 0x01, 1]),
        V5,
        "property payload_format_indicator included more than once",
    );
    // The Subscription Identifier repeats only in PUBLISH (3.8.2.1.2).
    assert_protocol(
        &frame(
            0x82,
            &[0x00, 0x01, 4, 0x0B, 1, 0x0B, 2, 0x00, 0x01, b'a', 0],
        ),
        V5,
        "property subscription_identifier included more than once",
    );
    assert_protocol(
        &frame(
            0x40,
            &[
                0x00, 0x01, 0x10, 8, 0x1F, 0x00, 0x01, b'x', 0x1F, 0x00, 0x01, b'y',
            ],
        ),
        V5,
        "property reason_string included more than once",
    );
    assert_protocol(
        &connack_v5(&[0x21, 0x00, 0x01, 0x21, 0x00, 0x01]),
        V5,
        "property receive_maximum included more than once",
    );
}

#[test]
fn user_property_and_publish_subscription_identifier_may_repeat() {
    let bytes = publish_v5(&[
        0x0B, 1, 0x0B, 2, 0x26, 0x00, 0x01, b'k', 0x00, 0x00, 0x26, 0x00, 0x01, b'k', 0x00, 0x00,
    ]);
    let Packet::Publish(publish) = decode_one(&bytes, V5) else {
        panic!("expected PUBLISH")
    };
    assert_eq!(publish.properties.subscription_identifiers, vec![1, 2]);
    assert_eq!(
        publish.properties.user_properties,
        vec![("k".into(), String::new()), ("k".into(), String::new())]
    );
}

/// 3.3.2.3.2: Payload Format Indicator is 0 or 1 (malformed otherwise, as the data model states).
#[test]
fn payload_format_indicator_other_than_0_or_1_is_malformed() {
    assert_malformed(
        &publish_v5(&[0x01, 2]),
        V5,
        "invalid value of property payload_format_indicator",
    );
}

/// 3.2.2.3.4 and friends: "a value other than 0 or 1" is a Protocol Error.
#[test]
fn flag_properties_other_than_0_or_1_are_protocol_errors() {
    let connack_flags = [
        (0x24, "maximum_qos"),
        (0x25, "retain_available"),
        (0x28, "wildcard_subscription_available"),
        (0x29, "subscription_identifiers_available"),
        (0x2A, "shared_subscription_available"),
    ];
    for (id, name) in connack_flags {
        let err = decode_all(&connack_v5(&[id, 2]), V5).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Protocol(leak(format!("invalid value of property {name}")))
        );
        assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
    }
    assert_protocol(
        &connect_v5(&[0x17, 2]),
        V5,
        "invalid value of property request_problem_information",
    );
    assert_protocol(
        &connect_v5(&[0x19, 2]),
        V5,
        "invalid value of property request_response_information",
    );
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// 3.1.2.11.3 / 3.2.2.3.3: Receive Maximum 0 is a Protocol Error.
#[test]
fn receive_maximum_0_is_a_protocol_error() {
    let message = "invalid value of property receive_maximum";
    assert_protocol(&connect_v5(&[0x21, 0x00, 0x00]), V5, message);
    assert_protocol(&connack_v5(&[0x21, 0x00, 0x00]), V5, message);
}

/// 3.1.2.11.4 / 3.2.2.3.6: Maximum Packet Size 0 is a Protocol Error.
#[test]
fn maximum_packet_size_0_is_a_protocol_error() {
    let message = "invalid value of property maximum_packet_size";
    assert_protocol(&connect_v5(&[0x27, 0, 0, 0, 0]), V5, message);
    assert_protocol(&connack_v5(&[0x27, 0, 0, 0, 0]), V5, message);
}

/// MQTT-3.3.2-8: Topic Alias 0 is not permitted; 3.3.2.3.4 names the
/// DISCONNECT reason: 0x94 Topic Alias invalid.
#[test]
fn topic_alias_0_is_topic_alias_invalid() {
    let mut buf = BytesMut::from(&publish_v5(&[0x23, 0x00, 0x00])[..]);
    let err = decode(&mut buf, V5, u32::MAX).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TopicAliasInvalid("invalid value of property topic_alias")
    );
    assert_eq!(err.reason_code(), ReasonCode::TOPIC_ALIAS_INVALID);
}

/// 3.8.2.1.2: Subscription Identifier 0 is a Protocol Error; it is a
/// Variable Byte Integer of at most four bytes.
#[test]
fn subscription_identifier_0_is_a_protocol_error() {
    assert_protocol(
        &publish_v5(&[0x0B, 0]),
        V5,
        "invalid value of property subscription_identifiers",
    );
    assert_protocol(
        &frame(0x82, &[0x00, 0x01, 2, 0x0B, 0, 0x00, 0x01, b'a', 0]),
        V5,
        "invalid value of property subscription_identifier",
    );
    assert_malformed(
        &publish_v5(&[0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        V5,
        "variable byte integer longer than four bytes",
    );
}

// -------------------------------------------------------------- reason codes

/// MQTT-3.4.2-1, -3.5.2-1, -3.6.2-1, -3.7.2-1, -3.9.3-2, -3.11.3-2,
/// -3.14.2-1, -3.15.2-1; 3.1.1 CONNACK table 3.1 and MQTT-3.9.3-2.
#[test]
fn reason_code_not_allowed_in_the_packet_is_a_protocol_error() {
    let cases: Vec<(Vec<u8>, ProtocolVersion)> = vec![
        (frame(0x40, &[0x00, 0x01, 0x92]), V5), // PUBACK: 0x92 is PUBREL/PUBCOMP only
        (frame(0x50, &[0x00, 0x01, 0x92]), V5), // PUBREC
        (frame(0x62, &[0x00, 0x01, 0x10]), V5), // PUBREL: 0x10 is PUBACK/PUBREC only
        (frame(0x70, &[0x00, 0x01, 0x80]), V5), // PUBCOMP
        (frame(0x20, &[0x00, 0x01, 0x00]), V5), // CONNACK: 3.1.1 code 1 is not a 5.0 code
        (frame(0x20, &[0x00, 0x06]), V311),     // CONNACK: 6..=255 reserved
        (frame(0x20, &[0x00, 0x87]), V311),     // CONNACK: 5.0 code on 3.1.1
        (frame(0x90, &[0x00, 0x01, 0x87]), V311), // SUBACK: 0x87 is 5.0 only
        (frame(0x90, &[0x00, 0x01, 0x00, 0x03]), V5), // SUBACK: QoS 3
        (frame(0xB0, &[0x00, 0x01, 0x00, 0x01]), V5), // UNSUBACK
        (frame(0xE0, &[0x01]), V5),             // DISCONNECT
        (frame(0xF0, &[0x01, 0x00]), V5),       // AUTH
    ];
    for (bytes, version) in cases {
        let err = decode_all(&bytes, version).unwrap_err();
        assert_eq!(err, DecodeError::Protocol(NOT_ALLOWED_CODE), "{bytes:02X?}");
        assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
    }
}

// ----------------------------------------------------------- packet ids

/// MQTT-2.2.1-3 (5.0), MQTT-2.3.1-1 (3.1.1): packet identifiers are non-zero.
#[test]
fn packet_identifier_0_is_a_protocol_error() {
    let cases: Vec<Vec<u8>> = vec![
        frame(0x32, &[0x00, 0x01, b'a', 0x00, 0x00]), // PUBLISH QoS 1
        frame(0x34, &[0x00, 0x01, b'a', 0x00, 0x00]), // PUBLISH QoS 2
        frame(0x40, &[0x00, 0x00]),                   // PUBACK
        frame(0x50, &[0x00, 0x00]),                   // PUBREC
        frame(0x62, &[0x00, 0x00]),                   // PUBREL
        frame(0x70, &[0x00, 0x00]),                   // PUBCOMP
        frame(0x82, &[0x00, 0x00, 0x00, 0x01, b'a', 0x00]), // SUBSCRIBE
        frame(0x90, &[0x00, 0x00, 0x00]),             // SUBACK
        frame(0xA2, &[0x00, 0x00, 0x00, 0x01, b'a']), // UNSUBSCRIBE
        frame(0xB0, &[0x00, 0x00]),                   // UNSUBACK
    ];
    for bytes in cases {
        assert_protocol(&bytes, V311, "packet identifier 0");
    }
}

// ----------------------------------------------------------- SUBSCRIBE

/// MQTT-3.8.3-2 (5.0), MQTT-3.8.3-3 (3.1.1): at least one filter.
#[test]
fn subscribe_without_filters_is_a_protocol_error() {
    let message = "SUBSCRIBE without topic filters";
    assert_protocol(&frame(0x82, &[0x00, 0x01]), V311, message);
    assert_protocol(&frame(0x82, &[0x00, 0x01, 0]), V5, message);
}

/// MQTT-3.10.3-2: at least one filter.
#[test]
fn unsubscribe_without_filters_is_a_protocol_error() {
    let message = "UNSUBSCRIBE without topic filters";
    assert_protocol(&frame(0xA2, &[0x00, 0x01]), V311, message);
    assert_protocol(&frame(0xA2, &[0x00, 0x01, 0]), V5, message);
}

/// 3.1.1 MQTT-3.8.3-4: upper six bits of the requested QoS byte are reserved, QoS 3 is malformed.
#[test]
fn subscribe_v311_options_reserved_bits_and_qos_3_are_malformed() {
    for options in [0x04, 0x10, 0x80] {
        assert_malformed(
            &frame(0x82, &[0x00, 0x01, 0x00, 0x01, b'a', options]),
            V311,
            "subscription options reserved bits set",
        );
    }
    assert_malformed(
        &frame(0x82, &[0x00, 0x01, 0x00, 0x01, b'a', 0x03]),
        V311,
        "requested QoS 3",
    );
}

/// MQTT-3.8.3-5: bits 6 and 7 are reserved.
#[test]
fn subscribe_v5_options_reserved_bits_are_malformed() {
    for options in [0x40, 0x80] {
        assert_malformed(
            &frame(0x82, &[0x00, 0x01, 0, 0x00, 0x01, b'a', options]),
            V5,
            "subscription options reserved bits set",
        );
    }
}

/// 3.8.3.1: Retain Handling 3 and Maximum QoS 3 are Protocol Errors.
#[test]
fn subscribe_v5_retain_handling_3_and_qos_3_are_protocol_errors() {
    assert_protocol(
        &frame(0x82, &[0x00, 0x01, 0, 0x00, 0x01, b'a', 0x30]),
        V5,
        "retain handling 3",
    );
    assert_protocol(
        &frame(0x82, &[0x00, 0x01, 0, 0x00, 0x01, b'a', 0x03]),
        V5,
        "maximum QoS 3 in subscription options",
    );
}

/// MQTT-3.8.3-4: No Local on a shared subscription.
#[test]
fn subscribe_v5_no_local_on_shared_subscription_is_a_protocol_error() {
    let mut body = vec![0x00, 0x01, 0, 0x00, 10];
    body.extend_from_slice(b"$share/g/a");
    body.push(0x04);
    assert_protocol(
        &frame(0x82, &body),
        V5,
        "no local set on a shared subscription",
    );
}

#[test]
fn suback_and_unsuback_without_reason_codes_are_protocol_errors() {
    let message = "acknowledgement without reason codes";
    assert_protocol(&frame(0x90, &[0x00, 0x01]), V311, message);
    assert_protocol(&frame(0x90, &[0x00, 0x01, 0]), V5, message);
    assert_protocol(&frame(0xB0, &[0x00, 0x01, 0]), V5, message);
}

// ---------------------------------------------------------------- CONNACK

/// MQTT-3.2.2-1: bits 7-1 of the acknowledge flags are reserved.
#[test]
fn connack_reserved_flags_are_malformed() {
    let message = "CONNACK reserved flags are set";
    assert_malformed(&frame(0x20, &[0x02, 0x00]), V311, message);
    assert_malformed(&frame(0x20, &[0x80, 0x00, 0x00]), V5, message);
}

/// MQTT-3.2.2-6 (5.0) / MQTT-3.2.2-4 (3.1.1): Session Present must be 0 with a failure code.
#[test]
fn connack_session_present_with_failure_is_a_protocol_error() {
    let message = "CONNACK with session present and a non-zero code";
    assert_protocol(&frame(0x20, &[0x01, 0x05]), V311, message);
    assert_protocol(&frame(0x20, &[0x01, 0x87, 0x00]), V5, message);
}

// ---------------------------------------------------------- exact lengths

/// 3.1.1 fixes the remaining length of CONNACK (2), PUBACK..PUBCOMP (2),
/// UNSUBACK (2), PINGREQ/PINGRESP (0) and DISCONNECT (0).
#[test]
fn v311_fixed_size_packets_with_extra_bytes_are_malformed() {
    let cases: Vec<Vec<u8>> = vec![
        frame(0x20, &[0x00, 0x00, 0x00]),
        frame(0x40, &[0x00, 0x01, 0x00]),
        frame(0x50, &[0x00, 0x01, 0x00]),
        frame(0x62, &[0x00, 0x01, 0x00]),
        frame(0x70, &[0x00, 0x01, 0x00]),
        frame(0xB0, &[0x00, 0x01, 0x00]),
        frame(0xC0, &[0x00]),
        frame(0xD0, &[0x00]),
        frame(0xE0, &[0x00]),
    ];
    for bytes in cases {
        assert_malformed(&bytes, V311, TRAILING);
    }
}

#[test]
fn short_fixed_size_packets_are_malformed() {
    assert_malformed(&frame(0x40, &[0x00]), V311, TRUNCATED);
    assert_malformed(&frame(0x40, &[0x00]), V5, TRUNCATED);
    assert_malformed(&frame(0x20, &[0x00]), V311, TRUNCATED);
    // A 5.0 CONNACK always has a property length.
    assert_malformed(&frame(0x20, &[0x00, 0x00]), V5, TRUNCATED);
}

#[test]
fn trailing_bytes_inside_a_packet_are_malformed() {
    // 5.0 PUBACK: reason code, empty properties, then one byte too many.
    assert_malformed(&frame(0x40, &[0x00, 0x01, 0x00, 0x00, 0xFF]), V5, TRAILING);
    // 5.0 DISCONNECT.
    assert_malformed(&frame(0xE0, &[0x00, 0x00, 0xFF]), V5, TRAILING);
    // CONNECT with a byte after the client id.
    assert_malformed(&connect_with(b"MQTT", 4, 0x02, &[0xFF]), V311, TRAILING);
    // 5.0 UNSUBACK is fine with codes; 3.1.1 UNSUBACK has none.
    assert_malformed(&frame(0xB0, &[0x00, 0x01, 0x00]), V311, TRAILING);
}

// ---------------------------------------------------------------- PUBLISH

/// 3.3.2.1 (5.0): zero-length topic without a Topic Alias; MQTT-4.7.3-1 (3.1.1).
#[test]
fn publish_with_empty_topic_and_no_alias_is_a_protocol_error() {
    let message = "empty topic name without a topic alias";
    assert_protocol(&frame(0x30, &[0x00, 0x00]), V311, message);
    assert_protocol(&frame(0x30, &[0x00, 0x00, 0]), V5, message);
}

// ---------------------------------------------------------------- CONNECT

/// MQTT-3.1.2-2 (both versions): other protocol levels → 0x84.
#[test]
fn connect_with_unsupported_level_reports_0x84() {
    for level in [3, 6, 0, 255] {
        assert_decode_err(
            &connect_with(b"MQTT", level, 0x02, &[]),
            V5,
            DecodeError::UnsupportedProtocolVersion(level),
        );
    }
    // MQTT 3.1 names itself "MQIsdp".
    let err = decode_all(&connect_with(b"MQIsdp", 3, 0x02, &[]), V311).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedProtocolVersion(3));
    assert_eq!(err.reason_code(), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
}

/// MQTT-3.1.2-1: the protocol name is "MQTT".
#[test]
fn connect_with_other_protocol_name_is_a_protocol_error() {
    assert_protocol(
        &connect_with(b"MQTX", 4, 0x02, &[]),
        V311,
        "protocol name is not \"MQTT\"",
    );
}

/// MQTT-3.1.2-3: the reserved flag is 0.
#[test]
fn connect_reserved_flag_is_malformed() {
    for level in [4, 5] {
        assert_malformed(
            &connect_with(b"MQTT", level, 0x03, &[]),
            V5,
            "CONNECT reserved flag is set",
        );
    }
}

/// MQTT-3.1.2-11 (both versions), MQTT-3.1.2-13 (5.0) / MQTT-3.1.2-15 (3.1.1):
/// will QoS and will retain are 0 without the will flag.
#[test]
fn connect_will_qos_or_retain_without_will_flag_is_malformed() {
    let message = "will QoS or will retain set without the will flag";
    for flags in [0x08, 0x10, 0x20] {
        assert_malformed(&connect_with(b"MQTT", 4, flags, &[]), V311, message);
        assert_malformed(&connect_with(b"MQTT", 5, flags, &[]), V5, message);
    }
}

/// MQTT-3.1.2-14 (3.1.1), 3.1.2.6 (5.0): will QoS 3 is malformed.
#[test]
fn connect_will_qos_3_is_malformed() {
    assert_malformed(&connect_with(b"MQTT", 4, 0x1C, &[]), V311, "will QoS 3");
}

/// 3.1.1 MQTT-3.1.2-22: the password flag needs the user name flag.
#[test]
fn connect_v311_password_without_username_is_malformed() {
    assert_malformed(
        &connect_with(b"MQTT", 4, 0x42, &[0x00, 0x01, b'p']),
        V311,
        "password flag set without user name flag",
    );
}

/// MQTT-3.1.2-19 (3.1.1) / MQTT-3.1.2-17 (5.0): a flagged user name must be present.
#[test]
fn connect_flagged_field_missing_is_malformed() {
    assert_malformed(&connect_with(b"MQTT", 4, 0x82, &[]), V311, TRUNCATED);
    // Will flag without will topic and payload (MQTT-3.1.2-9).
    assert_malformed(&connect_with(b"MQTT", 4, 0x06, &[]), V311, TRUNCATED);
}

/// 3.1.2.11.10: Authentication Data without Authentication Method.
#[test]
fn connect_authentication_data_without_method_is_a_protocol_error() {
    assert_protocol(
        &connect_v5(&[0x16, 0x00, 0x01, 0xAA]),
        V5,
        "authentication data without authentication method",
    );
}

/// MQTT-4.7.3-1: topic names are at least one character long (the will topic too).
#[test]
fn connect_empty_will_topic_is_a_protocol_error() {
    assert_protocol(
        &connect_with(b"MQTT", 4, 0x06, &[0x00, 0x00, 0x00, 0x00]),
        V311,
        "empty will topic",
    );
}

// ------------------------------------------------------------------- AUTH

/// 3.15.2.2.1: only the empty form omits the property length.
#[test]
fn auth_with_reason_code_but_no_property_length_is_malformed() {
    assert_malformed(&frame(0xF0, &[0x18]), V5, TRUNCATED);
}

/// 3.15.2.2.2: it is a Protocol Error to omit the Authentication Method.
#[test]
fn auth_without_method_is_a_protocol_error() {
    assert_protocol(
        &frame(0xF0, &[0x18, 0]),
        V5,
        "AUTH without authentication method",
    );
}
