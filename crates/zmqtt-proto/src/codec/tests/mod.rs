//! Codec tests: byte-exact vectors, one test per decode and encode rejection
//! rule, partial input, and property tests.

mod decode_errors;
mod encode_errors;
mod proptests;
mod vectors;

use bytes::BytesMut;

use super::{decode, encode, encoded_len, DecodeError, EncodeError};
use crate::packet::{Packet, ProtocolVersion};
use crate::reason::ReasonCode;

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Decodes `bytes` with no size limit.
fn decode_all(bytes: &[u8], version: ProtocolVersion) -> Result<Option<Packet>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    decode(&mut buf, version, u32::MAX)
}

/// Asserts that decoding `bytes` fails with `expected` and its reason code.
#[track_caller]
fn assert_decode_err(bytes: &[u8], version: ProtocolVersion, expected: DecodeError) {
    let err = decode_all(bytes, version).expect_err("decode must fail");
    assert_eq!(err, expected);
    assert_eq!(err.reason_code(), expected.reason_code());
}

/// Asserts a malformed-packet rejection (5.0 reason 0x81).
#[track_caller]
fn assert_malformed(bytes: &[u8], version: ProtocolVersion, message: &'static str) {
    let err = decode_all(bytes, version).expect_err("decode must fail");
    assert_eq!(err, DecodeError::Malformed(message));
    assert_eq!(err.reason_code(), ReasonCode::MALFORMED_PACKET);
}

/// Asserts a protocol-error rejection (5.0 reason 0x82).
#[track_caller]
fn assert_protocol(bytes: &[u8], version: ProtocolVersion, message: &'static str) {
    let err = decode_all(bytes, version).expect_err("decode must fail");
    assert_eq!(err, DecodeError::Protocol(message));
    assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
}

/// Decodes `bytes`, which must be exactly one packet.
#[track_caller]
fn decode_one(bytes: &[u8], version: ProtocolVersion) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, version, u32::MAX)
        .expect("decode must succeed")
        .expect("packet must be complete");
    assert!(buf.is_empty(), "the whole packet is consumed");
    packet
}

/// Encodes `packet`, checking `encoded_len` agrees.
#[track_caller]
fn encode_one(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).expect("encode must succeed");
    assert_eq!(encoded_len(packet, version), Ok(buf.len()));
    buf.to_vec()
}

/// Every proper prefix of `bytes` is "need more" and consumes nothing.
#[track_caller]
fn assert_prefixes_incomplete(bytes: &[u8], version: ProtocolVersion) {
    for cut in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..cut]);
        assert_eq!(
            decode(&mut buf, version, u32::MAX),
            Ok(None),
            "prefix of {cut} bytes"
        );
        assert_eq!(&buf[..], &bytes[..cut], "nothing consumed");
    }
}

/// The vector contract: `packet` encodes to exactly `bytes`, `bytes` decodes
/// to exactly `packet`, and every proper prefix is incomplete.
#[track_caller]
fn assert_vector(packet: Packet, version: ProtocolVersion, bytes: &[u8]) {
    assert_eq!(encode_one(&packet, version), bytes, "encoding");
    assert_eq!(decode_one(bytes, version), packet, "decoding");
    assert_prefixes_incomplete(bytes, version);
}

/// Asserts encode fails with `expected`, leaves the buffer as it was, and
/// `encoded_len` fails the same way.
#[track_caller]
fn assert_encode_err(packet: &Packet, version: ProtocolVersion, expected: EncodeError) {
    let mut buf = BytesMut::from(&b"earlier packets"[..]);
    assert_eq!(encode(packet, version, &mut buf), Err(expected.clone()));
    assert_eq!(&buf[..], b"earlier packets", "buffer untouched on error");
    assert_eq!(encoded_len(packet, version), Err(expected));
}

/// `EncodeError::Invalid` shorthand.
fn invalid(field: &'static str, reason: &'static str) -> EncodeError {
    EncodeError::Invalid { field, reason }
}
