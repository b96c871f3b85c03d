//! Reason codes (MQTT 5.0 section 2.4) and 3.1.1 return codes, with their spec names.
//!
//! A reason code is kept as its wire byte so that nothing a peer sends is ever
//! unrepresentable; [`ReasonCode::allowed_in`] says whether a byte is legal in a
//! given packet, which the decoder enforces.

use std::fmt;

use crate::packet::{PacketType, ProtocolVersion};

/// One reason code byte. Values ≥ 0x80 are failures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ReasonCode(pub u8);

impl ReasonCode {
    pub const SUCCESS: ReasonCode = ReasonCode(0x00);
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode(0x00);
    pub const GRANTED_QOS_0: ReasonCode = ReasonCode(0x00);
    pub const GRANTED_QOS_1: ReasonCode = ReasonCode(0x01);
    pub const GRANTED_QOS_2: ReasonCode = ReasonCode(0x02);
    pub const DISCONNECT_WITH_WILL_MESSAGE: ReasonCode = ReasonCode(0x04);
    pub const NO_MATCHING_SUBSCRIBERS: ReasonCode = ReasonCode(0x10);
    pub const NO_SUBSCRIPTION_EXISTED: ReasonCode = ReasonCode(0x11);
    pub const CONTINUE_AUTHENTICATION: ReasonCode = ReasonCode(0x18);
    pub const RE_AUTHENTICATE: ReasonCode = ReasonCode(0x19);
    pub const UNSPECIFIED_ERROR: ReasonCode = ReasonCode(0x80);
    pub const MALFORMED_PACKET: ReasonCode = ReasonCode(0x81);
    pub const PROTOCOL_ERROR: ReasonCode = ReasonCode(0x82);
    pub const IMPLEMENTATION_SPECIFIC_ERROR: ReasonCode = ReasonCode(0x83);
    pub const UNSUPPORTED_PROTOCOL_VERSION: ReasonCode = ReasonCode(0x84);
    pub const CLIENT_IDENTIFIER_NOT_VALID: ReasonCode = ReasonCode(0x85);
    pub const BAD_USER_NAME_OR_PASSWORD: ReasonCode = ReasonCode(0x86);
    pub const NOT_AUTHORIZED: ReasonCode = ReasonCode(0x87);
    pub const SERVER_UNAVAILABLE: ReasonCode = ReasonCode(0x88);
    pub const SERVER_BUSY: ReasonCode = ReasonCode(0x89);
    pub const BANNED: ReasonCode = ReasonCode(0x8A);
    pub const SERVER_SHUTTING_DOWN: ReasonCode = ReasonCode(0x8B);
    pub const BAD_AUTHENTICATION_METHOD: ReasonCode = ReasonCode(0x8C);
    pub const KEEP_ALIVE_TIMEOUT: ReasonCode = ReasonCode(0x8D);
    pub const SESSION_TAKEN_OVER: ReasonCode = ReasonCode(0x8E);
    pub const TOPIC_FILTER_INVALID: ReasonCode = ReasonCode(0x8F);
    pub const TOPIC_NAME_INVALID: ReasonCode = ReasonCode(0x90);
    pub const PACKET_IDENTIFIER_IN_USE: ReasonCode = ReasonCode(0x91);
    pub const PACKET_IDENTIFIER_NOT_FOUND: ReasonCode = ReasonCode(0x92);
    pub const RECEIVE_MAXIMUM_EXCEEDED: ReasonCode = ReasonCode(0x93);
    pub const TOPIC_ALIAS_INVALID: ReasonCode = ReasonCode(0x94);
    pub const PACKET_TOO_LARGE: ReasonCode = ReasonCode(0x95);
    pub const MESSAGE_RATE_TOO_HIGH: ReasonCode = ReasonCode(0x96);
    pub const QUOTA_EXCEEDED: ReasonCode = ReasonCode(0x97);
    pub const ADMINISTRATIVE_ACTION: ReasonCode = ReasonCode(0x98);
    pub const PAYLOAD_FORMAT_INVALID: ReasonCode = ReasonCode(0x99);
    pub const RETAIN_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9A);
    pub const QOS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9B);
    pub const USE_ANOTHER_SERVER: ReasonCode = ReasonCode(0x9C);
    pub const SERVER_MOVED: ReasonCode = ReasonCode(0x9D);
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9E);
    pub const CONNECTION_RATE_EXCEEDED: ReasonCode = ReasonCode(0x9F);
    pub const MAXIMUM_CONNECT_TIME: ReasonCode = ReasonCode(0xA0);
    pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: ReasonCode = ReasonCode(0xA1);
    pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: ReasonCode = ReasonCode(0xA2);

    /// 3.1.1 SUBACK failure return code.
    pub const V311_SUBACK_FAILURE: ReasonCode = ReasonCode(0x80);

    /// True for 0x80 and above.
    pub const fn is_failure(self) -> bool {
        self.0 >= 0x80
    }

    /// The 5.0 spec name of this code, without packet context
    /// (0x00 is "Success"; see [`ReasonCode::name_in`]).
    pub const fn name(self) -> &'static str {
        match self.0 {
            0x00 => "Success",
            0x01 => "Granted QoS 1",
            0x02 => "Granted QoS 2",
            0x04 => "Disconnect with Will Message",
            0x10 => "No matching subscribers",
            0x11 => "No subscription existed",
            0x18 => "Continue authentication",
            0x19 => "Re-authenticate",
            0x80 => "Unspecified error",
            0x81 => "Malformed Packet",
            0x82 => "Protocol Error",
            0x83 => "Implementation specific error",
            0x84 => "Unsupported Protocol Version",
            0x85 => "Client Identifier not valid",
            0x86 => "Bad User Name or Password",
            0x87 => "Not authorized",
            0x88 => "Server unavailable",
            0x89 => "Server busy",
            0x8A => "Banned",
            0x8B => "Server shutting down",
            0x8C => "Bad authentication method",
            0x8D => "Keep Alive timeout",
            0x8E => "Session taken over",
            0x8F => "Topic Filter invalid",
            0x90 => "Topic Name invalid",
            0x91 => "Packet Identifier in use",
            0x92 => "Packet Identifier not found",
            0x93 => "Receive Maximum exceeded",
            0x94 => "Topic Alias invalid",
            0x95 => "Packet too large",
            0x96 => "Message rate too high",
            0x97 => "Quota exceeded",
            0x98 => "Administrative action",
            0x99 => "Payload format invalid",
            0x9A => "Retain not supported",
            0x9B => "QoS not supported",
            0x9C => "Use another server",
            0x9D => "Server moved",
            0x9E => "Shared Subscriptions not supported",
            0x9F => "Connection rate exceeded",
            0xA0 => "Maximum connect time",
            0xA1 => "Subscription Identifiers not supported",
            0xA2 => "Wildcard Subscriptions not supported",
            _ => "Unknown reason code",
        }
    }

    /// The spec name of this code as it appears in `packet` on `version`
    /// (3.1.1 CONNACK return codes and SUBACK failure have their own names).
    pub const fn name_in(self, packet: PacketType, version: ProtocolVersion) -> &'static str {
        match (version, packet, self.0) {
            (ProtocolVersion::V311, PacketType::ConnAck, code) => match code {
                0 => "Connection Accepted",
                1 => "Connection Refused, unacceptable protocol version",
                2 => "Connection Refused, identifier rejected",
                3 => "Connection Refused, Server unavailable",
                4 => "Connection Refused, bad user name or password",
                5 => "Connection Refused, not authorized",
                _ => "Unknown return code",
            },
            (ProtocolVersion::V311, PacketType::SubAck, 0x80) => "Failure",
            (_, PacketType::SubAck, 0x00) => "Granted QoS 0",
            (ProtocolVersion::V5, PacketType::Disconnect, 0x00) => "Normal disconnection",
            _ => self.name(),
        }
    }

    /// Whether a peer may send this code in `packet` on `version`
    /// (5.0 tables in sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1,
    /// 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1; 3.1.1 tables 3.1 and 3.9.3).
    pub fn allowed_in(self, packet: PacketType, version: ProtocolVersion) -> bool {
        let allowed: &[u8] = match (version, packet) {
            (ProtocolVersion::V311, PacketType::ConnAck) => &[0, 1, 2, 3, 4, 5],
            (ProtocolVersion::V311, PacketType::SubAck) => &[0, 1, 2, 0x80],
            (ProtocolVersion::V311, _) => &[0],
            (ProtocolVersion::V5, PacketType::ConnAck) => &[
                0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
                0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
            ],
            (ProtocolVersion::V5, PacketType::PubAck | PacketType::PubRec) => {
                &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]
            }
            (ProtocolVersion::V5, PacketType::PubRel | PacketType::PubComp) => &[0x00, 0x92],
            (ProtocolVersion::V5, PacketType::SubAck) => &[
                0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
            ],
            (ProtocolVersion::V5, PacketType::UnsubAck) => {
                &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91]
            }
            (ProtocolVersion::V5, PacketType::Disconnect) => &[
                0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93,
                0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1,
                0xA2,
            ],
            (ProtocolVersion::V5, PacketType::Auth) => &[0x00, 0x18, 0x19],
            (ProtocolVersion::V5, _) => &[0],
        };
        allowed.contains(&self.0)
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReasonCode(0x{:02X} {})", self.0, self.name())
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02X} {}", self.0, self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_code_is_allowed_somewhere_in_v5() {
        let packets = [
            PacketType::ConnAck,
            PacketType::PubAck,
            PacketType::PubRec,
            PacketType::PubRel,
            PacketType::PubComp,
            PacketType::SubAck,
            PacketType::UnsubAck,
            PacketType::Disconnect,
            PacketType::Auth,
        ];
        for byte in 0..=255u8 {
            let code = ReasonCode(byte);
            let named = code.name() != "Unknown reason code";
            let allowed = packets
                .iter()
                .any(|p| code.allowed_in(*p, ProtocolVersion::V5));
            assert_eq!(named, allowed, "code 0x{byte:02X}");
        }
    }

    #[test]
    fn context_names() {
        let v5 = ProtocolVersion::V5;
        assert_eq!(
            ReasonCode(0).name_in(PacketType::Disconnect, v5),
            "Normal disconnection"
        );
        assert_eq!(
            ReasonCode(0).name_in(PacketType::SubAck, v5),
            "Granted QoS 0"
        );
        assert_eq!(
            ReasonCode(4).name_in(PacketType::ConnAck, ProtocolVersion::V311),
            "Connection Refused, bad user name or password"
        );
        assert_eq!(ReasonCode(0x86).name(), "Bad User Name or Password");
        assert!(ReasonCode(0x80).is_failure());
        assert!(!ReasonCode(0x19).is_failure());
    }

    #[test]
    fn v311_packets_allow_only_their_codes() {
        let v311 = ProtocolVersion::V311;
        assert!(ReasonCode(5).allowed_in(PacketType::ConnAck, v311));
        assert!(!ReasonCode(6).allowed_in(PacketType::ConnAck, v311));
        assert!(ReasonCode(0x80).allowed_in(PacketType::SubAck, v311));
        assert!(!ReasonCode(0x87).allowed_in(PacketType::SubAck, v311));
    }
}
