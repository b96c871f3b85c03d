//! Strict, total encoder and decoder for every MQTT 3.1.1 and 5.0 control packet.
//!
//! Contract (relied on by `session` and the drivers):
//! - [`decode`] reads one packet from the front of `buf`. `Ok(None)` means "need
//!   more bytes" (nothing consumed). `Ok(Some(p))` consumes exactly that packet's
//!   bytes; payloads in `p` are `Bytes` slices of the consumed buffer (no copy).
//!   `Err(e)` means the stream is broken; `e.reason_code()` is what a 5.0
//!   DISCONNECT must carry.
//! - [`encode`] appends one packet to `buf`, or leaves `buf` untouched and
//!   returns an error.
//! - [`encoded_len`] is the exact number of bytes [`encode`] would append.
//!
//! Inside: `wire` holds the primitive types (varints, strings, binary, a
//! bounds-checked reader), `properties` the one generic 5.0 property
//! reader/writer driven by a per-struct table, and the `decode` / `encode`
//! submodules one function per packet type. Rules that need connection state
//! (topic aliases, packet ids in flight, who may send which property) are left
//! to `session`.

use bytes::BytesMut;

mod decode;
mod encode;
mod properties;
mod wire;

#[cfg(test)]
pub(crate) mod strategies;
#[cfg(test)]
mod tests;

use crate::packet::{Packet, ProtocolVersion, Publish, PublishProperties};
use crate::reason::ReasonCode;

/// Why bytes from the peer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes do not form a valid packet (5.0 reason 0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Well-formed, but a rule of the protocol is broken (5.0 reason 0x82).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A Topic Alias of 0 (5.0 reason 0x94).
    #[error("invalid topic alias: {0}")]
    TopicAliasInvalid(&'static str),
    /// The packet is larger than the maximum we accept (5.0 reason 0x95).
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: u32 },
    /// CONNECT names a protocol level other than 4 (3.1.1) or 5 (5.0)
    /// (5.0 reason 0x84; 3.1.1 return code 0x01).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
}

impl DecodeError {
    /// The reason code a 5.0 DISCONNECT sent because of this error carries.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) => ReasonCode::MALFORMED_PACKET,
            DecodeError::Protocol(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::TopicAliasInvalid(_) => ReasonCode::TOPIC_ALIAS_INVALID,
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion(_) => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        }
    }
}

/// Why a packet could not be encoded (a caller error; nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field or value that only exists in MQTT 5.0 was set on a 3.1.1 packet.
    #[error("{0} requires MQTT 5.0")]
    RequiresV5(&'static str),
    /// A value is outside what the protocol can carry or allows.
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    /// The packet would exceed the largest remaining length (268,435,455 bytes).
    #[error("packet too large to encode ({0} bytes of remaining length)")]
    TooLarge(usize),
}

/// Decode one packet from the front of `buf`. See the module docs.
///
/// `version` is the protocol of the connection (CONNECT carries its own and is
/// decoded by it); `max_packet_size` is the largest whole packet accepted
/// (fixed header included). A packet announcing a larger size fails with
/// [`DecodeError::PacketTooLarge`] as soon as its fixed header has arrived.
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    decode::decode(buf, version, max_packet_size)
}

/// Append the encoding of `packet` for `version` to `buf`.
///
/// Everything is validated before the first byte is written, so on error `buf`
/// is unchanged. Acknowledgements, DISCONNECT and AUTH use their shortest 5.0
/// form. A CONNECT must carry `protocol == version`.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let layout = encode::layout(packet, version)?;
    buf.reserve(layout.total());
    encode::write(packet, version, &layout, buf);
    Ok(())
}

/// The exact number of bytes [`encode`] appends for `packet` (same validation).
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    Ok(encode::layout(packet, version)?.total())
}

/// [`encode`] for a PUBLISH held by reference: the same bytes and the same
/// validation, without moving the publish into a [`Packet`] first.
pub fn encode_publish(
    publish: &Publish,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let layout = encode::publish_packet_layout(publish, version)?;
    buf.reserve(layout.total());
    encode::write_publish(publish, version, &layout, buf);
    Ok(())
}

/// [`encoded_len`] for a PUBLISH held by reference (same validation).
pub fn encoded_publish_len(
    publish: &Publish,
    version: ProtocolVersion,
) -> Result<usize, EncodeError> {
    Ok(encode::publish_packet_layout(publish, version)?.total())
}

/// Appends a QoS 0 PUBLISH without properties (DUP 0, no packet id) made
/// of borrowed parts: the bytes and validation of [`encode`] for the
/// equivalent [`Publish`], without building one (a client's hot path).
pub fn encode_qos0_publish(
    topic: &str,
    payload: &[u8],
    retain: bool,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let remaining = encode::qos0_publish_remaining(topic, payload.len(), version)?;
    write_qos0_publish(topic, payload, retain, version, remaining, buf);
    Ok(())
}

/// The number of bytes [`encode_qos0_publish`] appends (same validation).
pub fn qos0_publish_len(
    topic: &str,
    payload_len: usize,
    version: ProtocolVersion,
) -> Result<usize, EncodeError> {
    let remaining = encode::qos0_publish_remaining(topic, payload_len, version)?;
    Ok(packet_len(remaining))
}

/// The remaining length of the packet of [`encode_qos0_publish`], validated,
/// for callers that check the size before writing with
/// [`write_qos0_publish`] (so the packet is validated once).
pub(crate) fn qos0_publish_remaining(
    topic: &str,
    payload_len: usize,
    version: ProtocolVersion,
) -> Result<usize, EncodeError> {
    encode::qos0_publish_remaining(topic, payload_len, version)
}

/// The whole size of a packet whose remaining length is `remaining`.
pub(crate) fn packet_len(remaining: usize) -> usize {
    1 + wire::varint_len(remaining) + remaining
}

/// Appends the packet of [`encode_qos0_publish`]; `remaining` is what
/// [`qos0_publish_remaining`] returned for the same parts.
pub(crate) fn write_qos0_publish(
    topic: &str,
    payload: &[u8],
    retain: bool,
    version: ProtocolVersion,
    remaining: usize,
    buf: &mut BytesMut,
) {
    buf.reserve(packet_len(remaining));
    encode::write_qos0_publish(topic, payload, retain, version, remaining, buf);
}

/// True when no PUBLISH property is set (what 3.1.1 can carry).
pub(crate) fn publish_properties_empty(properties: &PublishProperties) -> bool {
    properties::Properties::is_empty(properties)
}
