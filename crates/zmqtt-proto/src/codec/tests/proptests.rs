//! Property tests: round trips of every packet and property in both versions,
//! `encoded_len` agreement, partial input, and decoding arbitrary bytes.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::codec::strategies;

/// Decodes packets from `bytes` until the decoder stops; must never panic.
fn decode_stream(bytes: &[u8], version: ProtocolVersion, max: u32) {
    let mut buf = BytesMut::from(bytes);
    // Every successful decode consumes at least two bytes.
    for _ in 0..=bytes.len() {
        let before = buf.len();
        match decode(&mut buf, version, max) {
            Ok(Some(_)) => assert!(buf.len() < before, "a decoded packet consumes bytes"),
            Ok(None) => {
                assert_eq!(buf.len(), before, "incomplete input is not consumed");
                return;
            }
            Err(_) => return,
        }
    }
}

/// First bytes of fixed headers that pass the type and flags check.
fn valid_first_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0x10u8),
        Just(0x20),
        (0u8..16)
            .prop_filter("QoS 3 / DUP with QoS 0", |flags| {
                let qos = (flags >> 1) & 3;
                qos != 3 && !(qos == 0 && flags & 0b1000 != 0)
            })
            .prop_map(|flags| 0x30 | flags),
        Just(0x40),
        Just(0x50),
        Just(0x62),
        Just(0x70),
        Just(0x82),
        Just(0x90),
        Just(0xA2),
        Just(0xB0),
        Just(0xC0),
        Just(0xD0),
        Just(0xE0),
        Just(0xF0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_packet_round_trips((version, packet) in strategies::versioned_packet()) {
        let mut buf = BytesMut::new();
        encode(&packet, version, &mut buf).unwrap();
        prop_assert_eq!(encoded_len(&packet, version), Ok(buf.len()));
        let decoded = decode(&mut buf, version, u32::MAX).unwrap();
        prop_assert_eq!(decoded, Some(packet));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn back_to_back_packets_decode_in_order(
        (version, first, second) in strategies::version().prop_flat_map(|version| {
            (Just(version), strategies::packet(version), strategies::packet(version))
        })
    ) {
        let mut buf = BytesMut::new();
        encode(&first, version, &mut buf).unwrap();
        encode(&second, version, &mut buf).unwrap();
        prop_assert_eq!(decode(&mut buf, version, u32::MAX).unwrap(), Some(first));
        prop_assert_eq!(decode(&mut buf, version, u32::MAX).unwrap(), Some(second));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn every_proper_prefix_is_incomplete(
        (version, packet) in strategies::versioned_packet(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut full = BytesMut::new();
        encode(&packet, version, &mut full).unwrap();
        let cut = cut.index(full.len());
        let mut buf = BytesMut::from(&full[..cut]);
        prop_assert_eq!(decode(&mut buf, version, u32::MAX), Ok(None));
        prop_assert_eq!(&buf[..], &full[..cut]);
    }

    #[test]
    fn packets_larger_than_the_maximum_are_refused(
        (version, packet) in strategies::versioned_packet(),
    ) {
        let size = encoded_len(&packet, version).unwrap();
        let mut buf = BytesMut::new();
        encode(&packet, version, &mut buf).unwrap();
        let max = u32::try_from(size - 1).unwrap();
        let expected = DecodeError::PacketTooLarge { size, max };
        prop_assert_eq!(decode(&mut buf.clone(), version, max), Err(expected));
        prop_assert!(decode(&mut buf, version, max + 1).unwrap().is_some());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in vec(any::<u8>(), 0..600),
        max in prop_oneof![Just(u32::MAX), 0u32..700],
    ) {
        decode_stream(&bytes, ProtocolVersion::V311, max);
        decode_stream(&bytes, ProtocolVersion::V5, max);
    }

    #[test]
    fn arbitrary_body_behind_a_valid_fixed_header_never_panics(
        first in valid_first_byte(),
        body in vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![first];
        let mut len = body.len();
        loop {
            let byte = (len & 0x7F) as u8;
            len >>= 7;
            if len == 0 {
                bytes.push(byte);
                break;
            }
            bytes.push(byte | 0x80);
        }
        bytes.extend_from_slice(&body);
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let mut buf = BytesMut::from(&bytes[..]);
            // The whole packet is present: it either decodes or is rejected.
            let result = decode(&mut buf, version, u32::MAX);
            prop_assert!(!matches!(result, Ok(None)), "complete packet reported incomplete");
        }
    }

    #[test]
    fn corrupted_valid_packets_never_panic(
        (version, packet) in strategies::versioned_packet(),
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut buf = BytesMut::new();
        encode(&packet, version, &mut buf).unwrap();
        let position = position.index(buf.len());
        buf[position] = value;
        decode_stream(&buf, version, u32::MAX);
    }
}

/// A version and a publish valid for it.
fn versioned_publish() -> impl Strategy<Value = (ProtocolVersion, crate::packet::Publish)> {
    strategies::version().prop_flat_map(|version| (Just(version), strategies::publish(version)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_publish_matches_encode((version, publish) in versioned_publish()) {
        let mut expected = BytesMut::new();
        let packet = Packet::Publish(publish.clone());
        encode(&packet, version, &mut expected).unwrap();
        let mut buf = BytesMut::new();
        crate::codec::encode_publish(&publish, version, &mut buf).unwrap();
        prop_assert_eq!(&buf, &expected);
        prop_assert_eq!(crate::codec::encoded_publish_len(&publish, version), Ok(expected.len()));
    }

    #[test]
    fn encode_qos0_publish_matches_encode(
        version in strategies::version(),
        topic in strategies::non_empty_string(40),
        payload in strategies::bytes(300),
        retain in any::<bool>(),
    ) {
        let publish = crate::packet::Publish {
            topic: topic.clone(),
            payload: payload.clone(),
            retain,
            ..crate::packet::Publish::default()
        };
        let mut expected = BytesMut::new();
        let expected_result = encode(&Packet::Publish(publish), version, &mut expected);
        let mut buf = BytesMut::new();
        let result = crate::codec::encode_qos0_publish(&topic, &payload, retain, version, &mut buf);
        prop_assert_eq!(result.is_ok(), expected_result.is_ok());
        prop_assert_eq!(&buf, &expected);
        if result.is_ok() {
            prop_assert_eq!(
                crate::codec::qos0_publish_len(&topic, payload.len(), version),
                Ok(expected.len())
            );
        }
    }
}

#[test]
fn encode_qos0_publish_refuses_what_encode_refuses() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut buf = BytesMut::new();
        // MQTT-4.7.3-1: empty without an alias; MQTT-1.5.4-2: no U+0000 in a string.
        assert!(crate::codec::encode_qos0_publish("", b"x", false, version, &mut buf).is_err());
        assert!(crate::codec::encode_qos0_publish("a\0b", b"x", false, version, &mut buf).is_err());
        let long = "t".repeat(65_536);
        assert!(crate::codec::encode_qos0_publish(&long, b"x", false, version, &mut buf).is_err());
        assert!(buf.is_empty());
    }
}
