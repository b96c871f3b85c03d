//! proptest strategies for every packet type, each producing only packets that
//! are valid to encode on the given protocol version (so encode → decode must
//! give them back unchanged). Shared with the `session` tests.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use crate::packet::{
    Auth, AuthProperties, ConnAck, ConnAckProperties, Connect, ConnectProperties, Disconnect,
    DisconnectProperties, LastWill, Packet, PacketType, ProtocolVersion, PubResponse, Publish,
    PublishProperties, QoS, ReasonProperties, RetainHandling, SubAck, Subscribe, SubscribeFilter,
    SubscribeProperties, SubscriptionOptions, UnsubAck, Unsubscribe, UnsubscribeProperties,
    UserProperties, WillProperties,
};
use crate::reason::ReasonCode;

/// Both protocol versions.
pub(crate) fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(ProtocolVersion::V311), Just(ProtocolVersion::V5)]
}

/// Any valid MQTT string (no U+0000) of up to `max_chars` characters.
pub(crate) fn mqtt_string(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\x00]{{0,{max_chars}}}")).expect("valid regex")
}

/// A non-empty valid MQTT string (usable as topic name or filter).
pub(crate) fn non_empty_string(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\x00]{{1,{max_chars}}}")).expect("valid regex")
}

pub(crate) fn bytes(max_len: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max_len).prop_map(Bytes::from)
}

pub(crate) fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

pub(crate) fn packet_id() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

/// Subscription identifiers spread over all four varint lengths.
pub(crate) fn subscription_identifier() -> impl Strategy<Value = u32> {
    prop_oneof![
        1u32..128,
        128u32..16_384,
        16_384u32..2_097_152,
        2_097_152u32..=268_435_455
    ]
}

/// A reason code `packet` allows on `version`.
pub(crate) fn reason_code(
    packet: PacketType,
    version: ProtocolVersion,
) -> impl Strategy<Value = ReasonCode> {
    let allowed: Vec<ReasonCode> = (0..=u8::MAX)
        .map(ReasonCode)
        .filter(|code| code.allowed_in(packet, version))
        .collect();
    select(allowed)
}

pub(crate) fn user_properties() -> impl Strategy<Value = UserProperties> {
    vec((mqtt_string(12), mqtt_string(40)), 0..4)
}

fn opt_string() -> impl Strategy<Value = Option<String>> {
    option::of(mqtt_string(20))
}

fn opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    option::of(bytes(20))
}

pub(crate) fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(1..=u16::MAX),
        option::of(1..=u32::MAX),
        option::of(any::<u16>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        user_properties(),
        opt_string(),
        opt_bytes(),
    )
        .prop_map(|(sei, rm, mps, tam, rri, rpi, user, method, data)| {
            // Authentication Data needs an Authentication Method (5.0 3.1.2.11.10).
            let data = if method.is_some() { data } else { None };
            ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties: user,
                authentication_method: method,
                authentication_data: data,
            }
        })
}

pub(crate) fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        option::of(any::<u32>()),
        option::of(0..=1u8),
        option::of(any::<u32>()),
        opt_string(),
        opt_string(),
        opt_bytes(),
        user_properties(),
    )
        .prop_map(
            |(delay, pfi, expiry, content, response, corr, user)| WillProperties {
                will_delay_interval: delay,
                payload_format_indicator: pfi,
                message_expiry_interval: expiry,
                content_type: content,
                response_topic: response,
                correlation_data: corr,
                user_properties: user,
            },
        )
}

pub(crate) fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let limits = (
        option::of(any::<u32>()),
        option::of(1..=u16::MAX),
        option::of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
        option::of(any::<bool>()),
        option::of(1..=u32::MAX),
        option::of(any::<u16>()),
        option::of(any::<u16>()),
    );
    let flags = (
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
    );
    let texts = (
        opt_string(),
        opt_string(),
        opt_string(),
        opt_string(),
        opt_string(),
        opt_bytes(),
        user_properties(),
    );
    (limits, flags, texts).prop_map(
        |(
            (sei, rm, mq, ra, mps, tam, ska),
            (wild, subid, shared),
            (assigned, reason, response, reference, method, data, user),
        )| ConnAckProperties {
            session_expiry_interval: sei,
            receive_maximum: rm,
            maximum_qos: mq,
            retain_available: ra,
            maximum_packet_size: mps,
            assigned_client_identifier: assigned,
            topic_alias_maximum: tam,
            reason_string: reason,
            user_properties: user,
            wildcard_subscription_available: wild,
            subscription_identifiers_available: subid,
            shared_subscription_available: shared,
            server_keep_alive: ska,
            response_information: response,
            server_reference: reference,
            authentication_method: method,
            authentication_data: data,
        },
    )
}

pub(crate) fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        option::of(0..=1u8),
        option::of(any::<u32>()),
        option::of(1..=u16::MAX),
        opt_string(),
        opt_bytes(),
        user_properties(),
        vec(subscription_identifier(), 0..3),
        opt_string(),
    )
        .prop_map(|(pfi, expiry, alias, response, corr, user, ids, content)| {
            PublishProperties {
                payload_format_indicator: pfi,
                message_expiry_interval: expiry,
                topic_alias: alias,
                response_topic: response,
                correlation_data: corr,
                user_properties: user,
                subscription_identifiers: ids,
                content_type: content,
            }
        })
}

pub(crate) fn reason_properties() -> impl Strategy<Value = ReasonProperties> {
    (opt_string(), user_properties()).prop_map(|(reason_string, user_properties)| {
        ReasonProperties {
            reason_string,
            user_properties,
        }
    })
}

pub(crate) fn subscribe_properties() -> impl Strategy<Value = SubscribeProperties> {
    (option::of(subscription_identifier()), user_properties()).prop_map(
        |(subscription_identifier, user_properties)| SubscribeProperties {
            subscription_identifier,
            user_properties,
        },
    )
}

pub(crate) fn unsubscribe_properties() -> impl Strategy<Value = UnsubscribeProperties> {
    user_properties().prop_map(|user_properties| UnsubscribeProperties { user_properties })
}

pub(crate) fn disconnect_properties() -> impl Strategy<Value = DisconnectProperties> {
    (
        option::of(any::<u32>()),
        opt_string(),
        user_properties(),
        opt_string(),
    )
        .prop_map(|(sei, reason, user, reference)| DisconnectProperties {
            session_expiry_interval: sei,
            reason_string: reason,
            user_properties: user,
            server_reference: reference,
        })
}

/// AUTH properties that always name the method (required outside the empty form).
pub(crate) fn auth_properties() -> impl Strategy<Value = AuthProperties> {
    (
        mqtt_string(20),
        opt_bytes(),
        opt_string(),
        user_properties(),
    )
        .prop_map(|(method, data, reason, user)| AuthProperties {
            authentication_method: Some(method),
            authentication_data: data,
            reason_string: reason,
            user_properties: user,
        })
}

/// `strategy` on 5.0 (or, one time in four, no properties, to reach the
/// short forms); the default (no properties) on 3.1.1.
fn on_v5<S>(version: ProtocolVersion, strategy: S) -> BoxedStrategy<S::Value>
where
    S: Strategy + 'static,
    S::Value: Default + Clone + std::fmt::Debug + 'static,
{
    match version {
        ProtocolVersion::V5 => prop_oneof![
            1 => Just(S::Value::default()),
            3 => strategy,
        ]
        .boxed(),
        ProtocolVersion::V311 => Just(S::Value::default()).boxed(),
    }
}

pub(crate) fn last_will(version: ProtocolVersion) -> impl Strategy<Value = LastWill> {
    (
        non_empty_string(20),
        bytes(40),
        qos(),
        any::<bool>(),
        on_v5(version, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

pub(crate) fn connect(version: ProtocolVersion) -> impl Strategy<Value = Connect> {
    (
        mqtt_string(23),
        any::<u16>(),
        any::<bool>(),
        option::of(mqtt_string(16)),
        opt_bytes(),
        option::of(last_will(version)),
        on_v5(version, connect_properties()),
    )
        .prop_map(
            move |(client_id, keep_alive, clean_start, username, password, will, properties)| {
                // 3.1.1 needs a user name with a password (MQTT-3.1.2-22).
                let password = if version == ProtocolVersion::V311 && username.is_none() {
                    None
                } else {
                    password
                };
                Connect {
                    protocol: version,
                    client_id,
                    keep_alive,
                    clean_start,
                    username,
                    password,
                    will,
                    properties,
                }
            },
        )
}

pub(crate) fn connack(version: ProtocolVersion) -> impl Strategy<Value = ConnAck> {
    (
        any::<bool>(),
        reason_code(PacketType::ConnAck, version),
        on_v5(version, connack_properties()),
    )
        .prop_map(|(session_present, code, properties)| ConnAck {
            // Session Present is 0 with a non-zero code (MQTT-3.2.2-4 / -6).
            session_present: session_present && code == ReasonCode::SUCCESS,
            code,
            properties,
        })
}

pub(crate) fn publish(version: ProtocolVersion) -> impl Strategy<Value = Publish> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        mqtt_string(30),
        packet_id(),
        on_v5(version, publish_properties()),
        bytes(300),
    )
        .prop_map(|(qos, dup, retain, topic, id, properties, payload)| {
            let has_id = qos != QoS::AtMostOnce;
            let topic = if topic.is_empty() && properties.topic_alias.is_none() {
                "t".to_owned()
            } else {
                topic
            };
            Publish {
                dup: dup && has_id,
                qos,
                retain,
                topic,
                packet_id: has_id.then_some(id),
                properties,
                payload,
            }
        })
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
pub(crate) fn pub_response(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let of = move |packet: PacketType| {
        (
            packet_id(),
            reason_code(packet, version),
            on_v5(version, reason_properties()),
        )
            .prop_map(move |(packet_id, reason_code, properties)| {
                let response = PubResponse {
                    packet_id,
                    reason_code,
                    properties,
                };
                match packet {
                    PacketType::PubAck => Packet::PubAck(response),
                    PacketType::PubRec => Packet::PubRec(response),
                    PacketType::PubRel => Packet::PubRel(response),
                    _ => Packet::PubComp(response),
                }
            })
    };
    prop_oneof![
        of(PacketType::PubAck),
        of(PacketType::PubRec),
        of(PacketType::PubRel),
        of(PacketType::PubComp),
    ]
}

pub(crate) fn subscription_options(
    version: ProtocolVersion,
) -> impl Strategy<Value = SubscriptionOptions> {
    let retain_handling = prop_oneof![
        Just(RetainHandling::SendOnSubscribe),
        Just(RetainHandling::SendIfNotExists),
        Just(RetainHandling::DoNotSend),
    ];
    (qos(), any::<bool>(), any::<bool>(), retain_handling).prop_map(
        move |(qos, no_local, retain_as_published, retain_handling)| match version {
            ProtocolVersion::V311 => SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
            ProtocolVersion::V5 => SubscriptionOptions {
                qos,
                no_local,
                retain_as_published,
                retain_handling,
            },
        },
    )
}

pub(crate) fn subscribe(version: ProtocolVersion) -> impl Strategy<Value = Subscribe> {
    let filter =
        (non_empty_string(20), subscription_options(version)).prop_map(|(filter, mut options)| {
            // No Local is a Protocol Error on a shared subscription (MQTT-3.8.3-4).
            if filter.starts_with("$share/") {
                options.no_local = false;
            }
            SubscribeFilter { filter, options }
        });
    (
        packet_id(),
        vec(filter, 1..4),
        on_v5(version, subscribe_properties()),
    )
        .prop_map(|(packet_id, filters, properties)| Subscribe {
            packet_id,
            filters,
            properties,
        })
}

pub(crate) fn suback(version: ProtocolVersion) -> impl Strategy<Value = SubAck> {
    (
        packet_id(),
        vec(reason_code(PacketType::SubAck, version), 1..5),
        on_v5(version, reason_properties()),
    )
        .prop_map(|(packet_id, reason_codes, properties)| SubAck {
            packet_id,
            reason_codes,
            properties,
        })
}

pub(crate) fn unsubscribe(version: ProtocolVersion) -> impl Strategy<Value = Unsubscribe> {
    (
        packet_id(),
        vec(non_empty_string(20), 1..4),
        on_v5(version, unsubscribe_properties()),
    )
        .prop_map(|(packet_id, filters, properties)| Unsubscribe {
            packet_id,
            filters,
            properties,
        })
}

pub(crate) fn unsuback(version: ProtocolVersion) -> impl Strategy<Value = UnsubAck> {
    let codes = match version {
        ProtocolVersion::V5 => vec(reason_code(PacketType::UnsubAck, version), 1..5).boxed(),
        ProtocolVersion::V311 => Just(Vec::new()).boxed(),
    };
    (packet_id(), codes, on_v5(version, reason_properties())).prop_map(
        |(packet_id, reason_codes, properties)| UnsubAck {
            packet_id,
            reason_codes,
            properties,
        },
    )
}

pub(crate) fn disconnect(version: ProtocolVersion) -> impl Strategy<Value = Disconnect> {
    (
        reason_code(PacketType::Disconnect, version),
        on_v5(version, disconnect_properties()),
    )
        .prop_map(|(reason_code, properties)| Disconnect {
            reason_code,
            properties,
        })
}

/// AUTH (5.0 only): the empty form or a reason code with properties naming the method.
pub(crate) fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::default()),
        (
            reason_code(PacketType::Auth, ProtocolVersion::V5),
            auth_properties()
        )
            .prop_map(|(reason_code, properties)| Auth {
                reason_code,
                properties,
            }),
    ]
}

/// Any packet valid on `version`.
pub(crate) fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(version).prop_map(|c| Packet::Connect(Box::new(c))),
        connack(version).prop_map(Packet::ConnAck),
        publish(version).prop_map(Packet::Publish),
        pub_response(version),
        subscribe(version).prop_map(Packet::Subscribe),
        suback(version).prop_map(Packet::SubAck),
        unsubscribe(version).prop_map(Packet::Unsubscribe),
        unsuback(version).prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(version).prop_map(Packet::Disconnect),
    ];
    match version {
        ProtocolVersion::V5 => prop_oneof![
            11 => common,
            1 => auth().prop_map(Packet::Auth),
        ]
        .boxed(),
        ProtocolVersion::V311 => common.boxed(),
    }
}

/// A version together with a packet valid on it.
pub(crate) fn versioned_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(|version| (Just(version), packet(version)))
}
