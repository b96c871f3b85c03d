//! Engine outcomes in the words of the API: [`Error`] values and
//! [`ConnectionInfo`].

use std::time::Duration;

use zmqtt_proto::session::{CloseReason, CommandError, Negotiated, PublishRejected, RequestError};
use zmqtt_proto::{ConnAck, PacketType, ProtocolVersion};

use crate::client::ConnectionInfo;
use crate::error::Error;

/// A command the engine refused (nothing was sent).
pub(crate) fn command_error(error: CommandError) -> Error {
    match error {
        CommandError::NotConnected => Error::disconnected("not connected"),
        CommandError::QoSNotSupported { requested, maximum } => {
            Error::QoSExceeded { requested, maximum }
        }
        CommandError::RetainNotAvailable => Error::RetainNotAvailable,
        CommandError::PacketTooLarge { size, maximum } => Error::PacketTooLarge { size, maximum },
        CommandError::InvalidTopic(topic) | CommandError::InvalidTopicFilter(topic) => {
            Error::InvalidTopic(topic)
        }
        other => Error::invalid(other.to_string()),
    }
}

/// A 5.0 PUBACK / PUBREC with a failure code.
pub(crate) fn publish_rejected(rejected: PublishRejected) -> Error {
    Error::Publish {
        reason_code: rejected.reason_code.0,
        reason_name: rejected.reason_code.name(),
        reason_string: rejected.properties.reason_string,
    }
}

/// A request that ended without an answer; `stop` describes why the client
/// stopped when that is the cause.
pub(crate) fn request_error(error: RequestError) -> Error {
    match error {
        RequestError::PacketTooLarge { size, maximum } => Error::PacketTooLarge { size, maximum },
        RequestError::SessionLost => Error::disconnected(
            "the broker did not resume the session; the publish may not have been delivered",
        ),
        RequestError::ConnectionClosed => Error::disconnected("connection lost"),
        other => Error::disconnected(other.to_string()),
    }
}

/// A refused CONNACK.
pub(crate) fn connect_refused(connack: ConnAck, version: ProtocolVersion) -> Error {
    let v5 = version == ProtocolVersion::V5;
    let properties = connack.properties;
    Error::Connect {
        return_code: connack.code.0,
        reason: connack.code.name_in(PacketType::ConnAck, version),
        reason_string: properties.reason_string.clone(),
        server_reference: properties.server_reference.clone(),
        properties: v5.then(|| Box::new(properties)),
    }
}

/// Why a connection ended. `ping_timeout` / `connect_timeout` are the limits
/// that applied, for the message of a timeout.
pub(crate) fn close_error(
    reason: CloseReason,
    version: ProtocolVersion,
    ping_timeout: Option<Duration>,
    connect_timeout: Duration,
) -> Error {
    let v5 = version == ProtocolVersion::V5;
    match reason {
        CloseReason::LocalDisconnect => Error::disconnected("disconnect() was called"),
        CloseReason::ServerDisconnect(disconnect) => {
            let code = disconnect.reason_code;
            let mut reason = format!(
                "the broker sent DISCONNECT (0x{:02X} {})",
                code.0,
                code.name_in(PacketType::Disconnect, version)
            );
            if let Some(text) = &disconnect.properties.reason_string {
                reason.push_str(&format!(": {text}"));
            }
            if let Some(server) = &disconnect.properties.server_reference {
                reason.push_str(&format!(" (use server {server})"));
            }
            Error::Disconnected {
                reason,
                reason_code: v5.then_some(code),
            }
        }
        CloseReason::Refused(code) => Error::Connect {
            return_code: code.0,
            reason: code.name_in(PacketType::ConnAck, version),
            reason_string: None,
            server_reference: None,
            properties: None,
        },
        CloseReason::Decode(error) => Error::Protocol {
            message: error.to_string(),
            reason_code: v5.then(|| error.reason_code()),
            source: Some(error),
        },
        CloseReason::ProtocolViolation(violation) => Error::Protocol {
            message: violation.to_string(),
            reason_code: v5.then(|| violation.reason_code()),
            source: None,
        },
        CloseReason::KeepAliveTimeout => Error::Timeout {
            what: "PINGRESP",
            after: ping_timeout.unwrap_or_default(),
        },
        CloseReason::ConnectTimeout => Error::Timeout {
            what: "CONNACK",
            after: connect_timeout,
        },
        CloseReason::TransportClosed => Error::disconnected("connection closed"),
        other => Error::Protocol {
            message: other.to_string(),
            reason_code: None,
            source: None,
        },
    }
}

/// The public view of an accepted CONNACK.
pub(crate) fn connection_info(
    connack: &ConnAck,
    negotiated: &Negotiated,
    v5: bool,
) -> ConnectionInfo {
    ConnectionInfo {
        connection_id: negotiated.connection_id,
        session_present: negotiated.session_present,
        return_code: connack.code,
        properties: v5.then(|| Box::new(connack.properties.clone())),
        effective_client_id: negotiated.client_id.clone(),
        effective_keepalive: negotiated.keep_alive,
        effective_session_expiry_interval: negotiated.session_expiry_interval,
        receive_maximum: negotiated.receive_maximum,
        maximum_qos: negotiated.maximum_qos,
        retain_available: negotiated.retain_available,
        maximum_packet_size: negotiated.maximum_packet_size,
    }
}

#[cfg(test)]
mod tests {
    use zmqtt_proto::codec::DecodeError;
    use zmqtt_proto::{ConnAckProperties, ReasonCode};

    use super::*;

    const V311: ProtocolVersion = ProtocolVersion::V311;
    const V5: ProtocolVersion = ProtocolVersion::V5;

    fn close(reason: CloseReason, version: ProtocolVersion) -> Error {
        close_error(
            reason,
            version,
            Some(Duration::from_secs(5)),
            Duration::from_secs(30),
        )
    }

    #[test]
    fn broker_disconnect_names_its_reason_code() {
        let mut disconnect = zmqtt_proto::Disconnect {
            reason_code: ReasonCode::SESSION_TAKEN_OVER,
            ..Default::default()
        };
        disconnect.properties.reason_string = Some("another client".into());
        match close(CloseReason::ServerDisconnect(disconnect), V5) {
            Error::Disconnected {
                reason,
                reason_code,
            } => {
                assert_eq!(reason_code, Some(ReasonCode::SESSION_TAKEN_OVER));
                assert!(reason.contains("0x8E"), "{reason}");
                assert!(reason.contains("another client"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn protocol_errors_carry_the_5_0_reason_code_only_on_5_0() {
        let decode = || CloseReason::Decode(DecodeError::Malformed("bad"));
        match close(decode(), V5) {
            Error::Protocol {
                reason_code,
                source,
                ..
            } => {
                assert_eq!(reason_code, Some(ReasonCode::MALFORMED_PACKET));
                assert!(source.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            close(decode(), V311),
            Error::Protocol {
                reason_code: None,
                ..
            }
        ));
    }

    #[test]
    fn timeouts_say_what_was_late() {
        assert!(matches!(
            close(CloseReason::KeepAliveTimeout, V311),
            Error::Timeout { what: "PINGRESP", after } if after == Duration::from_secs(5)
        ));
        assert!(matches!(
            close(CloseReason::ConnectTimeout, V5),
            Error::Timeout { what: "CONNACK", after } if after == Duration::from_secs(30)
        ));
    }

    #[test]
    fn refusals_use_the_names_of_their_version() {
        let connack = ConnAck {
            code: ReasonCode(5),
            ..Default::default()
        };
        match connect_refused(connack, V311) {
            Error::Connect {
                return_code,
                reason,
                properties,
                ..
            } => {
                assert_eq!(return_code, 5);
                assert_eq!(reason, "Connection Refused, not authorized");
                assert!(properties.is_none());
            }
            other => panic!("{other:?}"),
        }
        let connack = ConnAck {
            code: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            properties: ConnAckProperties {
                reason_string: Some("nope".into()),
                server_reference: Some("other:1883".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match connect_refused(connack, V5) {
            Error::Connect {
                return_code,
                reason_string,
                server_reference,
                properties,
                ..
            } => {
                assert_eq!(return_code, 0x86);
                assert_eq!(reason_string.as_deref(), Some("nope"));
                assert_eq!(server_reference.as_deref(), Some("other:1883"));
                assert!(properties.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn engine_refusals_become_the_matching_errors() {
        assert!(matches!(
            command_error(CommandError::RetainNotAvailable),
            Error::RetainNotAvailable
        ));
        assert!(matches!(
            command_error(CommandError::NotConnected),
            Error::Disconnected { .. }
        ));
        assert!(matches!(
            command_error(CommandError::PacketTooLarge {
                size: 10,
                maximum: 5
            }),
            Error::PacketTooLarge {
                size: 10,
                maximum: 5
            }
        ));
        match command_error(CommandError::RequiresV5("subscribe properties")) {
            Error::InvalidArgument(message) => {
                assert_eq!(message, "subscribe properties requires MQTT 5.0")
            }
            other => panic!("{other:?}"),
        }
        let rejected = PublishRejected {
            reason_code: ReasonCode::NOT_AUTHORIZED,
            properties: zmqtt_proto::ReasonProperties {
                reason_string: Some("acl".into()),
                ..Default::default()
            },
        };
        match publish_rejected(rejected) {
            Error::Publish {
                reason_code,
                reason_name,
                reason_string,
            } => {
                assert_eq!(reason_code, 0x87);
                assert_eq!(reason_name, "Not authorized");
                assert_eq!(reason_string.as_deref(), Some("acl"));
            }
            other => panic!("{other:?}"),
        }
    }
}
