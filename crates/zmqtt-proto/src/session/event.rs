//! What the session reports: events, request identifiers, acknowledgement
//! tokens, the reasons a connection ends and the errors of commands.

use std::fmt;

use crate::codec::{DecodeError, EncodeError};
use crate::packet::{
    Auth, ConnAck, Disconnect, PacketType, Publish, QoS, ReasonProperties, SubAck, UnsubAck,
};
use crate::reason::ReasonCode;
use crate::topic::TopicError;

/// Names one command of the session (publish, subscribe, unsubscribe, ping) so
/// that its completion can be matched. Unique for the life of the session,
/// unlike packet identifiers, which are reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The raw number (1, 2, …), for logs and maps.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The right to acknowledge one received QoS 1/2 message. Hand it back through
/// [`ClientSession::acknowledge`](super::ClientSession::acknowledge) to send
/// PUBACK / PUBREC. A token from an earlier connection, or one used already, is
/// accepted and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AckToken {
    pub(crate) connection: u64,
    pub(crate) seq: u64,
}

/// The values in force on a connection after CONNACK: the broker's answers
/// merged with our requests and the protocol defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// 1 for the first successful connection of the session, then 2, 3, …
    pub connection_id: u64,
    /// The broker resumed an existing session.
    pub session_present: bool,
    /// Our client id, or the one the broker assigned (5.0).
    pub client_id: String,
    /// Keep alive in seconds; the broker's Server Keep Alive wins over ours.
    pub keep_alive: u16,
    /// 5.0: the broker's Session Expiry Interval or ours; `None` on 3.1.1.
    pub session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 publishes may await acknowledgement (send quota).
    pub receive_maximum: u16,
    /// The highest QoS the broker accepts.
    pub maximum_qos: QoS,
    /// Whether the broker accepts retained messages.
    pub retain_available: bool,
    /// The largest packet the broker accepts, `None` for no limit.
    pub maximum_packet_size: Option<u32>,
    /// The highest topic alias we may send; 0 means none.
    pub topic_alias_maximum: u16,
    pub wildcard_subscription_available: bool,
    pub subscription_identifiers_available: bool,
    pub shared_subscription_available: bool,
}

/// The broker's answer to a QoS 1 (PUBACK) or QoS 2 (PUBCOMP) publish that
/// succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PublishAck {
    /// Success, or 0x10 "No matching subscribers" (5.0); PUBCOMP may carry 0x92
    /// after a resumed session, the message having been received (PUBREC).
    pub reason_code: ReasonCode,
    pub properties: ReasonProperties,
}

/// The broker refused a publish: a 5.0 PUBACK or PUBREC reason code ≥ 0x80.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("publish refused by the broker: {reason_code}")]
pub struct PublishRejected {
    pub reason_code: ReasonCode,
    pub properties: ReasonProperties,
}

/// Why a pending request ended without an answer from the broker.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The connection ended before the answer (SUBSCRIBE, UNSUBSCRIBE, PINGREQ).
    #[error("connection closed before the broker answered")]
    ConnectionClosed,
    /// The publish had been sent, then the broker came back without our session,
    /// so its fate is unknown.
    #[error("session not resumed by the broker; the publish may not have been delivered")]
    SessionLost,
    /// [`ClientSession::clear_session`](super::ClientSession::clear_session) dropped it.
    #[error("session state discarded")]
    SessionCleared,
    /// A queued publish no longer fits the Maximum Packet Size of the broker of
    /// a later connection.
    #[error("packet of {size} bytes exceeds the broker's maximum packet size of {maximum} bytes")]
    PacketTooLarge { size: usize, maximum: u32 },
}

/// A rule of the protocol the broker broke. The session closes the connection
/// (sending a 5.0 DISCONNECT with [`ProtocolViolation::reason_code`] first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// A packet not allowed in this state, e.g. anything but CONNACK first.
    #[error("unexpected {packet:?} packet {context}")]
    UnexpectedPacket {
        packet: PacketType,
        context: &'static str,
    },
    /// CONNACK on an established connection.
    #[error("second CONNACK on one connection")]
    SecondConnAck,
    /// CONNACK contents the protocol forbids.
    #[error("invalid CONNACK: {0}")]
    InvalidConnAck(&'static str),
    /// More unacknowledged QoS 1/2 publishes than our Receive Maximum.
    #[error("broker exceeded our Receive Maximum of {0}")]
    ReceiveMaximumExceeded(u16),
    /// Topic alias 0, above our Topic Alias Maximum, or never set.
    #[error("invalid topic alias {alias} ({reason})")]
    TopicAliasInvalid { alias: u16, reason: &'static str },
    /// A PUBLISH with an empty topic and no topic alias.
    #[error("PUBLISH with an empty topic name and no topic alias")]
    MissingTopic,
    /// A PUBLISH whose topic name breaks the topic rules.
    #[error("invalid topic name in PUBLISH: {0}")]
    InvalidTopicName(TopicError),
    /// An acknowledgement that does not fit the flow using that packet identifier.
    #[error("{packet:?} for packet identifier {packet_id} {context}")]
    AckMismatch {
        packet: PacketType,
        packet_id: u16,
        context: &'static str,
    },
    /// SUBACK / UNSUBACK with a different number of reason codes than filters.
    #[error("{packet:?} carries {got} reason codes for {expected} topic filters")]
    ReasonCountMismatch {
        packet: PacketType,
        expected: usize,
        got: usize,
    },
    /// AUTH when no authentication method was set, or with another method.
    #[error("unexpected AUTH: {0}")]
    UnexpectedAuth(&'static str),
}

impl ProtocolViolation {
    /// The reason code of the 5.0 DISCONNECT the session sends for it.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            ProtocolViolation::ReceiveMaximumExceeded(_) => ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
            ProtocolViolation::TopicAliasInvalid { .. } => ReasonCode::TOPIC_ALIAS_INVALID,
            ProtocolViolation::InvalidTopicName(_) => ReasonCode::TOPIC_NAME_INVALID,
            _ => ReasonCode::PROTOCOL_ERROR,
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// We called [`ClientSession::disconnect`](super::ClientSession::disconnect).
    #[error("disconnected by the client")]
    LocalDisconnect,
    /// The broker sent DISCONNECT.
    #[error("disconnected by the broker: {}", .0.reason_code)]
    ServerDisconnect(Disconnect),
    /// The broker refused the connection (see the preceding `ConnectRefused`).
    #[error("connection refused by the broker: {0}")]
    Refused(ReasonCode),
    /// Bytes from the broker could not be decoded.
    #[error(transparent)]
    Decode(DecodeError),
    /// The broker broke a rule of the protocol.
    #[error("protocol violation: {0}")]
    ProtocolViolation(ProtocolViolation),
    /// No PINGRESP within the ping timeout.
    #[error("no PINGRESP within the ping timeout")]
    KeepAliveTimeout,
    /// No CONNACK within the connect timeout.
    #[error("no CONNACK within the connect timeout")]
    ConnectTimeout,
    /// The transport closed under us.
    #[error("connection lost")]
    TransportClosed,
    /// A packet built by the session could not be encoded (a bug in zmqtt,
    /// reported rather than panicking).
    #[error("internal error: {0}")]
    EncodeFailed(EncodeError),
}

/// Why a command was refused. Nothing was sent and nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The session has no established connection.
    #[error("not connected")]
    NotConnected,
    /// A 5.0-only field was used on a 3.1.1 session.
    #[error("{0} requires MQTT 5.0")]
    RequiresV5(&'static str),
    /// QoS above the broker's Maximum QoS (SPEC 1.4).
    #[error("QoS {requested:?} exceeds the broker's maximum QoS {maximum:?}")]
    QoSNotSupported { requested: QoS, maximum: QoS },
    /// Retain requested while the broker's Retain Available is 0.
    #[error("the broker does not support retained messages")]
    RetainNotAvailable,
    /// The packet would exceed the broker's Maximum Packet Size (MQTT-3.2.2-15).
    #[error("packet of {size} bytes exceeds the broker's maximum packet size of {maximum} bytes")]
    PacketTooLarge { size: usize, maximum: u32 },
    /// The topic name of a publish is invalid.
    #[error(transparent)]
    InvalidTopic(TopicError),
    /// A topic filter of a subscribe or unsubscribe is invalid.
    #[error(transparent)]
    InvalidTopicFilter(TopicError),
    /// SUBSCRIBE / UNSUBSCRIBE need at least one filter.
    #[error("at least one topic filter is required")]
    NoTopicFilters,
    /// Topic alias 0, above the broker's Topic Alias Maximum, or unset.
    #[error("invalid topic alias {alias}: {reason}")]
    TopicAliasInvalid { alias: u16, reason: &'static str },
    /// All 65535 packet identifiers are held by pending requests.
    #[error("no packet identifier available (65535 requests pending)")]
    NoPacketIdentifier,
    /// AUTH without an authentication method in CONNECT.
    #[error("AUTH requires an authentication method in the CONNECT")]
    AuthNotNegotiated,
    /// The session expiry cannot be set on DISCONNECT when CONNECT had 0 (MQTT-3.14.2-2).
    #[error("session_expiry_interval cannot be set on DISCONNECT when it was 0 in CONNECT")]
    SessionExpiryNotAllowed,
    /// A value the protocol does not allow here.
    #[error("{0}")]
    Invalid(&'static str),
    /// The packet cannot be encoded.
    #[error(transparent)]
    Encode(EncodeError),
}

/// Everything the session reports, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// CONNACK accepted the connection.
    Connected {
        connack: Box<ConnAck>,
        negotiated: Box<Negotiated>,
    },
    /// CONNACK refused the connection; a `Closed` follows. Nothing is retried.
    ConnectRefused(Box<ConnAck>),
    /// A message from the broker; `ack` is `Some` for QoS 1/2 and must be handed
    /// back to [`ClientSession::acknowledge`](super::ClientSession::acknowledge).
    Message {
        publish: Publish,
        ack: Option<AckToken>,
    },
    /// A QoS 1/2 publish finished: PUBACK / PUBCOMP, or a 5.0 refusal.
    PublishCompleted {
        id: RequestId,
        result: Result<PublishAck, PublishRejected>,
    },
    /// SUBACK for a subscribe (per-filter failures are in its reason codes).
    SubscribeCompleted { id: RequestId, suback: SubAck },
    /// UNSUBACK for an unsubscribe.
    UnsubscribeCompleted { id: RequestId, unsuback: UnsubAck },
    /// PINGRESP for a ping we asked for.
    Pong { id: RequestId },
    /// A request ended without an answer.
    RequestFailed { id: RequestId, error: RequestError },
    /// 5.0 AUTH from the broker.
    AuthReceived(Auth),
    /// The connection ended. Exactly one per connection; the driver closes the
    /// transport after writing what [`ClientSession::poll_transmit`](super::ClientSession::poll_transmit) still returns.
    Closed { reason: CloseReason },
}
