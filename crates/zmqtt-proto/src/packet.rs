//! The data model: every MQTT control packet of 3.1.1 and 5.0 as plain values.
//!
//! One model serves both protocol versions. Fields that exist only in 5.0
//! (properties, most reason codes) are simply left at their defaults for 3.1.1;
//! the codec refuses to *encode* a 5.0-only field on a 3.1.1 connection rather
//! than drop it silently.

use bytes::Bytes;

use crate::reason::ReasonCode;

/// The protocol revision spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    #[default]
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The "Protocol Level" byte of CONNECT.
    pub const fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

/// Quality of service of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum QoS {
    /// At most once (fire and forget).
    #[default]
    AtMostOnce = 0,
    /// At least once (PUBACK).
    AtLeastOnce = 1,
    /// Exactly once (PUBREC / PUBREL / PUBCOMP).
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value, `None` for 3 and above.
    pub const fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// 5.0 subscription option: when the broker sends retained messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendOnSubscribe = 0,
    /// Send retained messages only if the subscription did not exist.
    SendIfNotExists = 1,
    /// Do not send retained messages.
    DoNotSend = 2,
}

impl RetainHandling {
    /// The option for a wire value, `None` for 3 (reserved).
    pub const fn from_u8(value: u8) -> Option<RetainHandling> {
        match value {
            0 => Some(RetainHandling::SendOnSubscribe),
            1 => Some(RetainHandling::SendIfNotExists),
            2 => Some(RetainHandling::DoNotSend),
            _ => None,
        }
    }
}

/// 5.0 user properties: name/value pairs, order kept, names may repeat.
pub type UserProperties = Vec<(String, String)>;

/// Every control packet, both directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubResponse),
    PubRec(PubResponse),
    PubRel(PubResponse),
    PubComp(PubResponse),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    /// 5.0 only.
    Auth(Auth),
}

/// The control packet type, the high nibble of the fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl Packet {
    /// The type of this packet.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}

/// CONNECT (client → server).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Connect {
    /// Carried in the packet itself (Protocol Level).
    pub protocol: ProtocolVersion,
    pub client_id: String,
    pub keep_alive: u16,
    /// 3.1.1 Clean Session / 5.0 Clean Start.
    pub clean_start: bool,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub will: Option<LastWill>,
    pub properties: ConnectProperties,
}

/// The Will message carried by CONNECT.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LastWill {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// 5.0 only.
    pub properties: WillProperties,
}

/// CONNECT properties (5.0, MQTT 3.1.2.11).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnectProperties {
    pub session_expiry_interval: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub topic_alias_maximum: Option<u16>,
    pub request_response_information: Option<bool>,
    pub request_problem_information: Option<bool>,
    pub user_properties: UserProperties,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
}

/// Will properties (5.0, MQTT 3.1.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WillProperties {
    pub will_delay_interval: Option<u32>,
    /// 0 = unspecified bytes, 1 = UTF-8; other values are malformed.
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: UserProperties,
}

/// CONNACK (server → client).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnAck {
    pub session_present: bool,
    /// 3.1.1: the Connect Return Code (0..=5); 5.0: the Connect Reason Code.
    pub code: ReasonCode,
    /// 5.0 only.
    pub properties: ConnAckProperties,
}

/// CONNACK properties (5.0, MQTT 3.2.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnAckProperties {
    pub session_expiry_interval: Option<u32>,
    pub receive_maximum: Option<u16>,
    /// Only 0 or 1 may be sent; absent means 2.
    pub maximum_qos: Option<QoS>,
    pub retain_available: Option<bool>,
    pub maximum_packet_size: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub topic_alias_maximum: Option<u16>,
    pub reason_string: Option<String>,
    pub user_properties: UserProperties,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifiers_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
    pub server_keep_alive: Option<u16>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
}

/// PUBLISH (both directions).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in 5.0 when a topic alias is used.
    pub topic: String,
    /// `Some` exactly when `qos` is 1 or 2.
    pub packet_id: Option<u16>,
    /// 5.0 only.
    pub properties: PublishProperties,
    pub payload: Bytes,
}

/// PUBLISH properties (5.0, MQTT 3.3.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PublishProperties {
    /// 0 = unspecified bytes, 1 = UTF-8; other values are malformed.
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<u16>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: UserProperties,
    /// Server → client only; may repeat (one per matching subscription).
    pub subscription_identifiers: Vec<u32>,
    pub content_type: Option<String>,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PubResponse {
    pub packet_id: u16,
    /// 5.0 only; `Success` on 3.1.1.
    pub reason_code: ReasonCode,
    /// 5.0 only.
    pub properties: ReasonProperties,
}

/// The properties of acknowledgements: a reason string and user properties
/// (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReasonProperties {
    pub reason_string: Option<String>,
    pub user_properties: UserProperties,
}

/// SUBSCRIBE (client → server).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Subscribe {
    pub packet_id: u16,
    /// At least one.
    pub filters: Vec<SubscribeFilter>,
    /// 5.0 only.
    pub properties: SubscribeProperties,
}

/// One topic filter of SUBSCRIBE with its options.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubscribeFilter {
    pub filter: String,
    pub options: SubscriptionOptions,
}

/// Subscription options byte. Only `qos` exists on 3.1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

/// SUBSCRIBE properties (5.0, MQTT 3.8.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubscribeProperties {
    /// 1..=268_435_455.
    pub subscription_identifier: Option<u32>,
    pub user_properties: UserProperties,
}

/// SUBACK (server → client).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubAck {
    pub packet_id: u16,
    /// One per filter: granted QoS (0, 1, 2) or a failure (≥ 0x80).
    pub reason_codes: Vec<ReasonCode>,
    /// 5.0 only.
    pub properties: ReasonProperties,
}

/// UNSUBSCRIBE (client → server).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Unsubscribe {
    pub packet_id: u16,
    /// At least one.
    pub filters: Vec<String>,
    /// 5.0 only.
    pub properties: UnsubscribeProperties,
}

/// UNSUBSCRIBE properties (5.0, MQTT 3.10.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UnsubscribeProperties {
    pub user_properties: UserProperties,
}

/// UNSUBACK (server → client).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UnsubAck {
    pub packet_id: u16,
    /// 5.0: one per filter; empty on 3.1.1 (which has no payload).
    pub reason_codes: Vec<ReasonCode>,
    /// 5.0 only.
    pub properties: ReasonProperties,
}

/// DISCONNECT (both directions in 5.0; client → server in 3.1.1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// 5.0 only; `Success` (normal disconnection) on 3.1.1.
    pub reason_code: ReasonCode,
    /// 5.0 only.
    pub properties: DisconnectProperties,
}

/// DISCONNECT properties (5.0, MQTT 3.14.2.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DisconnectProperties {
    /// Client → server only.
    pub session_expiry_interval: Option<u32>,
    pub reason_string: Option<String>,
    pub user_properties: UserProperties,
    /// Server → client only.
    pub server_reference: Option<String>,
}

/// AUTH (5.0 only, both directions).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Auth {
    pub reason_code: ReasonCode,
    pub properties: AuthProperties,
}

/// AUTH properties (5.0, MQTT 3.15.2.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuthProperties {
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub reason_string: Option<String>,
    pub user_properties: UserProperties,
}
