//! The encoder, in two passes over the packet:
//!
//! 1. [`layout`] validates everything the caller set and computes the
//!    remaining length (and the property block sizes), touching no buffer;
//! 2. [`write`] appends the bytes, which can no longer fail.
//!
//! So an invalid packet leaves the buffer as it was, the buffer grows at most
//! once, and nothing is allocated in between.

use bytes::{BufMut, BytesMut};

use super::properties::Properties;
use super::wire::{self, VARINT_MAX};
use super::EncodeError;
use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PacketType, ProtocolVersion, PubResponse, Publish,
    QoS, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use crate::reason::ReasonCode;

/// The sizes [`write`] needs, computed once by [`layout`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Layout {
    /// The Remaining Length of the fixed header.
    remaining: usize,
    /// Size of the packet's properties (without their length prefix).
    props: usize,
    /// Size of the will properties of a CONNECT.
    will_props: usize,
}

impl Layout {
    /// The whole packet: fixed header plus remaining length.
    pub(super) fn total(&self) -> usize {
        1 + wire::varint_len(self.remaining) + self.remaining
    }
}

/// Validates `packet` for `version` and computes its sizes.
pub(super) fn layout(packet: &Packet, version: ProtocolVersion) -> Result<Layout, EncodeError> {
    let layout = match packet {
        Packet::Connect(connect) => connect_layout(connect, version)?,
        Packet::ConnAck(connack) => connack_layout(connack, version)?,
        Packet::Publish(publish) => publish_layout(publish, version)?,
        Packet::PubAck(response)
        | Packet::PubRec(response)
        | Packet::PubRel(response)
        | Packet::PubComp(response) => {
            pub_response_layout(response, packet.packet_type(), version)?
        }
        Packet::Subscribe(subscribe) => subscribe_layout(subscribe, version)?,
        Packet::SubAck(suback) => suback_layout(suback, version)?,
        Packet::Unsubscribe(unsubscribe) => unsubscribe_layout(unsubscribe, version)?,
        Packet::UnsubAck(unsuback) => unsuback_layout(unsuback, version)?,
        Packet::PingReq | Packet::PingResp => Layout::default(),
        Packet::Disconnect(disconnect) => disconnect_layout(disconnect, version)?,
        Packet::Auth(auth) => auth_layout(auth, version)?,
    };
    if layout.remaining > VARINT_MAX as usize {
        return Err(EncodeError::TooLarge(layout.remaining));
    }
    Ok(layout)
}

/// Appends `packet`; `layout` is what [`layout`] returned for it.
pub(super) fn write(
    packet: &Packet,
    version: ProtocolVersion,
    layout: &Layout,
    buf: &mut BytesMut,
) {
    buf.put_u8(first_byte(packet));
    wire::put_varint(buf, layout.remaining);
    match packet {
        Packet::Connect(connect) => write_connect(connect, layout, buf),
        Packet::ConnAck(connack) => {
            buf.put_u8(u8::from(connack.session_present));
            buf.put_u8(connack.code.0);
            if version == ProtocolVersion::V5 {
                connack.properties.write(layout.props, buf);
            }
        }
        Packet::Publish(publish) => write_publish_body(publish, version, layout, buf),
        Packet::PubAck(response)
        | Packet::PubRec(response)
        | Packet::PubRel(response)
        | Packet::PubComp(response) => {
            buf.put_u16(response.packet_id);
            // The layout chose the shortest form: 2 = id only, 3 = no properties.
            if layout.remaining > 2 {
                buf.put_u8(response.reason_code.0);
            }
            if layout.remaining > 3 {
                response.properties.write(layout.props, buf);
            }
        }
        Packet::Subscribe(subscribe) => {
            buf.put_u16(subscribe.packet_id);
            if version == ProtocolVersion::V5 {
                subscribe.properties.write(layout.props, buf);
            }
            for filter in &subscribe.filters {
                wire::put_string(buf, &filter.filter);
                buf.put_u8(options_byte(&filter.options));
            }
        }
        Packet::SubAck(suback) => {
            buf.put_u16(suback.packet_id);
            if version == ProtocolVersion::V5 {
                suback.properties.write(layout.props, buf);
            }
            for code in &suback.reason_codes {
                buf.put_u8(code.0);
            }
        }
        Packet::Unsubscribe(unsubscribe) => {
            buf.put_u16(unsubscribe.packet_id);
            if version == ProtocolVersion::V5 {
                unsubscribe.properties.write(layout.props, buf);
            }
            for filter in &unsubscribe.filters {
                wire::put_string(buf, filter);
            }
        }
        Packet::UnsubAck(unsuback) => {
            buf.put_u16(unsuback.packet_id);
            if version == ProtocolVersion::V5 {
                unsuback.properties.write(layout.props, buf);
                for code in &unsuback.reason_codes {
                    buf.put_u8(code.0);
                }
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(disconnect) => {
            // 0 = normal disconnection, 1 = reason code only.
            if layout.remaining > 0 {
                buf.put_u8(disconnect.reason_code.0);
            }
            if layout.remaining > 1 {
                disconnect.properties.write(layout.props, buf);
            }
        }
        Packet::Auth(auth) => {
            if layout.remaining > 0 {
                buf.put_u8(auth.reason_code.0);
                auth.properties.write(layout.props, buf);
            }
        }
    }
}

/// Type and flags of the fixed header.
/// Validates a PUBLISH for `version` and computes its sizes: [`layout`]
/// without wrapping the publish in a [`Packet`].
pub(super) fn publish_packet_layout(
    publish: &Publish,
    version: ProtocolVersion,
) -> Result<Layout, EncodeError> {
    let layout = publish_layout(publish, version)?;
    if layout.remaining > VARINT_MAX as usize {
        return Err(EncodeError::TooLarge(layout.remaining));
    }
    Ok(layout)
}

/// Appends a PUBLISH; `layout` is what [`publish_packet_layout`] returned.
pub(super) fn write_publish(
    publish: &Publish,
    version: ProtocolVersion,
    layout: &Layout,
    buf: &mut BytesMut,
) {
    buf.put_u8(((PacketType::Publish as u8) << 4) | publish_flags(publish));
    wire::put_varint(buf, layout.remaining);
    write_publish_body(publish, version, layout, buf);
}

/// The remaining length of a QoS 0 PUBLISH without properties (validated
/// as [`publish_layout`] validates the same packet).
pub(super) fn qos0_publish_remaining(
    topic: &str,
    payload_len: usize,
    version: ProtocolVersion,
) -> Result<usize, EncodeError> {
    if topic.is_empty() {
        return Err(invalid(
            "topic",
            "must not be empty unless a topic alias is set",
        ));
    }
    let remaining =
        (wire::string_len(topic, "topic")? + block(0, version)).saturating_add(payload_len);
    if remaining > VARINT_MAX as usize {
        return Err(EncodeError::TooLarge(remaining));
    }
    Ok(remaining)
}

/// Appends a QoS 0 PUBLISH without properties; `remaining` is what
/// [`qos0_publish_remaining`] returned.
pub(super) fn write_qos0_publish(
    topic: &str,
    payload: &[u8],
    retain: bool,
    version: ProtocolVersion,
    remaining: usize,
    buf: &mut BytesMut,
) {
    buf.put_u8(((PacketType::Publish as u8) << 4) | u8::from(retain));
    wire::put_varint(buf, remaining);
    wire::put_string(buf, topic);
    if version == ProtocolVersion::V5 {
        // An empty property block: its length, zero.
        wire::put_varint(buf, 0);
    }
    buf.put_slice(payload);
}

/// The variable header and payload of a PUBLISH.
fn write_publish_body(
    publish: &Publish,
    version: ProtocolVersion,
    layout: &Layout,
    buf: &mut BytesMut,
) {
    wire::put_string(buf, &publish.topic);
    if let Some(id) = publish.packet_id {
        buf.put_u16(id);
    }
    if version == ProtocolVersion::V5 {
        publish.properties.write(layout.props, buf);
    }
    buf.put_slice(&publish.payload);
}

/// The flag bits of a PUBLISH fixed header: DUP, QoS, RETAIN.
fn publish_flags(publish: &Publish) -> u8 {
    (u8::from(publish.dup) << 3) | ((publish.qos as u8) << 1) | u8::from(publish.retain)
}

fn first_byte(packet: &Packet) -> u8 {
    let flags = match packet {
        Packet::Publish(publish) => publish_flags(publish),
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    ((packet.packet_type() as u8) << 4) | flags
}

fn options_byte(options: &SubscriptionOptions) -> u8 {
    (options.qos as u8)
        | (u8::from(options.no_local) << 2)
        | (u8::from(options.retain_as_published) << 3)
        | ((options.retain_handling as u8) << 4)
}

/// Size of a property block; on 3.1.1 the block must be empty (it is not sent).
fn props_len<P: Properties>(
    props: &P,
    version: ProtocolVersion,
    what: &'static str,
) -> Result<usize, EncodeError> {
    match version {
        ProtocolVersion::V5 => props.checked_len(),
        ProtocolVersion::V311 if props.is_empty() => Ok(0),
        ProtocolVersion::V311 => Err(EncodeError::RequiresV5(what)),
    }
}

/// Bytes a property block of `len` takes with its length prefix (none on 3.1.1).
fn block(len: usize, version: ProtocolVersion) -> usize {
    match version {
        ProtocolVersion::V5 => wire::varint_len(len) + len,
        ProtocolVersion::V311 => 0,
    }
}

fn check_packet_id(id: u16) -> Result<(), EncodeError> {
    if id == 0 {
        Err(EncodeError::Invalid {
            field: "packet_id",
            reason: "must not be 0",
        })
    } else {
        Ok(())
    }
}

/// The code must be one `packet` allows on `version`; a code only 5.0 allows
/// there is a [`EncodeError::RequiresV5`] on 3.1.1.
fn check_reason(
    code: ReasonCode,
    packet: PacketType,
    version: ProtocolVersion,
    field: &'static str,
) -> Result<(), EncodeError> {
    if code.allowed_in(packet, version) {
        Ok(())
    } else if version == ProtocolVersion::V311 && code.allowed_in(packet, ProtocolVersion::V5) {
        Err(EncodeError::RequiresV5("this reason code"))
    } else {
        Err(EncodeError::Invalid {
            field,
            reason: "not allowed in this packet",
        })
    }
}

fn invalid(field: &'static str, reason: &'static str) -> EncodeError {
    EncodeError::Invalid { field, reason }
}

fn connect_layout(connect: &Connect, version: ProtocolVersion) -> Result<Layout, EncodeError> {
    if connect.protocol != version {
        return Err(invalid(
            "protocol",
            "differs from the protocol version passed to encode",
        ));
    }
    let props = props_len(&connect.properties, version, "setting CONNECT properties")?;
    if connect.properties.authentication_data.is_some()
        && connect.properties.authentication_method.is_none()
    {
        return Err(invalid(
            "authentication_data",
            "requires authentication_method",
        ));
    }
    // Protocol name (6), level (1), flags (1), keep alive (2).
    let mut remaining =
        10 + block(props, version) + wire::string_len(&connect.client_id, "client_id")?;
    let mut will_props = 0;
    if let Some(will) = &connect.will {
        will_props = props_len(&will.properties, version, "setting will properties")?;
        if will.topic.is_empty() {
            return Err(invalid("will.topic", "must not be empty"));
        }
        remaining += block(will_props, version)
            + wire::string_len(&will.topic, "will.topic")?
            + wire::binary_len(&will.payload, "will.payload")?;
    }
    if let Some(username) = &connect.username {
        remaining += wire::string_len(username, "username")?;
    }
    if let Some(password) = &connect.password {
        if version == ProtocolVersion::V311 && connect.username.is_none() {
            // MQTT-3.1.2-22 (3.1.1); 5.0 allows it.
            return Err(EncodeError::RequiresV5("a password without a username"));
        }
        remaining += wire::binary_len(password, "password")?;
    }
    Ok(Layout {
        remaining,
        props,
        will_props,
    })
}

fn write_connect(connect: &Connect, layout: &Layout, buf: &mut BytesMut) {
    let v5 = connect.protocol == ProtocolVersion::V5;
    wire::put_string(buf, "MQTT");
    buf.put_u8(connect.protocol.level());
    let mut flags = u8::from(connect.clean_start) << 1;
    if let Some(will) = &connect.will {
        flags |= 0x04 | ((will.qos as u8) << 3) | (u8::from(will.retain) << 5);
    }
    flags |= u8::from(connect.password.is_some()) << 6;
    flags |= u8::from(connect.username.is_some()) << 7;
    buf.put_u8(flags);
    buf.put_u16(connect.keep_alive);
    if v5 {
        connect.properties.write(layout.props, buf);
    }
    wire::put_string(buf, &connect.client_id);
    if let Some(will) = &connect.will {
        if v5 {
            will.properties.write(layout.will_props, buf);
        }
        wire::put_string(buf, &will.topic);
        wire::put_binary(buf, &will.payload);
    }
    if let Some(username) = &connect.username {
        wire::put_string(buf, username);
    }
    if let Some(password) = &connect.password {
        wire::put_binary(buf, password);
    }
}

fn connack_layout(connack: &ConnAck, version: ProtocolVersion) -> Result<Layout, EncodeError> {
    check_reason(connack.code, PacketType::ConnAck, version, "code")?;
    if connack.session_present && connack.code != ReasonCode::SUCCESS {
        // MQTT-3.2.2-4 (3.1.1), MQTT-3.2.2-6 (5.0).
        return Err(invalid(
            "session_present",
            "must be false with a non-zero code",
        ));
    }
    let props = props_len(&connack.properties, version, "setting CONNACK properties")?;
    Ok(Layout {
        remaining: 2 + block(props, version),
        props,
        will_props: 0,
    })
}

fn publish_layout(publish: &Publish, version: ProtocolVersion) -> Result<Layout, EncodeError> {
    let id_len = match (publish.qos, publish.packet_id) {
        (QoS::AtMostOnce, None) => 0,
        (QoS::AtMostOnce, Some(_)) => return Err(invalid("packet_id", "must be None for QoS 0")),
        (_, None) => return Err(invalid("packet_id", "required for QoS 1 and 2")),
        (_, Some(id)) => {
            check_packet_id(id)?;
            2
        }
    };
    if publish.dup && publish.qos == QoS::AtMostOnce {
        // MQTT-3.3.1-2.
        return Err(invalid("dup", "must be false for QoS 0"));
    }
    let props = props_len(&publish.properties, version, "setting PUBLISH properties")?;
    if publish.topic.is_empty() && publish.properties.topic_alias.is_none() {
        return Err(invalid(
            "topic",
            "must not be empty unless a topic alias is set",
        ));
    }
    let remaining = wire::string_len(&publish.topic, "topic")?
        + id_len
        + block(props, version)
        + publish.payload.len();
    Ok(Layout {
        remaining,
        props,
        will_props: 0,
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP in their shortest form.
fn pub_response_layout(
    response: &PubResponse,
    packet: PacketType,
    version: ProtocolVersion,
) -> Result<Layout, EncodeError> {
    check_packet_id(response.packet_id)?;
    check_reason(response.reason_code, packet, version, "reason_code")?;
    let props = props_len(
        &response.properties,
        version,
        "setting acknowledgement properties",
    )?;
    let remaining = match (version, props) {
        (ProtocolVersion::V311, _) => 2,
        (ProtocolVersion::V5, 0) if response.reason_code == ReasonCode::SUCCESS => 2,
        (ProtocolVersion::V5, 0) => 3,
        (ProtocolVersion::V5, _) => 3 + block(props, version),
    };
    Ok(Layout {
        remaining,
        props,
        will_props: 0,
    })
}

fn subscribe_layout(
    subscribe: &Subscribe,
    version: ProtocolVersion,
) -> Result<Layout, EncodeError> {
    check_packet_id(subscribe.packet_id)?;
    if subscribe.filters.is_empty() {
        // MQTT-3.8.3-3 (3.1.1), MQTT-3.8.3-2 (5.0).
        return Err(invalid("filters", "at least one topic filter is required"));
    }
    let props = props_len(
        &subscribe.properties,
        version,
        "setting SUBSCRIBE properties",
    )?;
    let mut remaining = 2 + block(props, version);
    for filter in &subscribe.filters {
        let options = &filter.options;
        let only_qos = SubscriptionOptions {
            qos: options.qos,
            ..SubscriptionOptions::default()
        };
        if version == ProtocolVersion::V311 && *options != only_qos {
            return Err(EncodeError::RequiresV5(
                "a subscription option other than QoS",
            ));
        }
        if options.no_local && filter.filter.starts_with("$share/") {
            // MQTT-3.8.3-4 (5.0).
            return Err(invalid("no_local", "not allowed on a shared subscription"));
        }
        remaining += wire::string_len(&filter.filter, "filter")? + 1;
    }
    Ok(Layout {
        remaining,
        props,
        will_props: 0,
    })
}

fn check_reason_codes(
    codes: &[ReasonCode],
    packet: PacketType,
    version: ProtocolVersion,
) -> Result<(), EncodeError> {
    if codes.is_empty() {
        return Err(invalid(
            "reason_codes",
            "at least one reason code is required",
        ));
    }
    codes
        .iter()
        .try_for_each(|code| check_reason(*code, packet, version, "reason_codes"))
}

fn suback_layout(suback: &SubAck, version: ProtocolVersion) -> Result<Layout, EncodeError> {
    check_packet_id(suback.packet_id)?;
    check_reason_codes(&suback.reason_codes, PacketType::SubAck, version)?;
    let props = props_len(&suback.properties, version, "setting SUBACK properties")?;
    Ok(Layout {
        remaining: 2 + block(props, version) + suback.reason_codes.len(),
        props,
        will_props: 0,
    })
}

fn unsubscribe_layout(
    unsubscribe: &Unsubscribe,
    version: ProtocolVersion,
) -> Result<Layout, EncodeError> {
    check_packet_id(unsubscribe.packet_id)?;
    if unsubscribe.filters.is_empty() {
        // MQTT-3.10.3-2.
        return Err(invalid("filters", "at least one topic filter is required"));
    }
    let props = props_len(
        &unsubscribe.properties,
        version,
        "setting UNSUBSCRIBE properties",
    )?;
    let mut remaining = 2 + block(props, version);
    for filter in &unsubscribe.filters {
        remaining += wire::string_len(filter, "filter")?;
    }
    Ok(Layout {
        remaining,
        props,
        will_props: 0,
    })
}

fn unsuback_layout(unsuback: &UnsubAck, version: ProtocolVersion) -> Result<Layout, EncodeError> {
    check_packet_id(unsuback.packet_id)?;
    let props = props_len(&unsuback.properties, version, "setting UNSUBACK properties")?;
    let remaining = match version {
        ProtocolVersion::V311 if unsuback.reason_codes.is_empty() => 2,
        ProtocolVersion::V311 => return Err(EncodeError::RequiresV5("UNSUBACK reason codes")),
        ProtocolVersion::V5 => {
            check_reason_codes(&unsuback.reason_codes, PacketType::UnsubAck, version)?;
            2 + block(props, version) + unsuback.reason_codes.len()
        }
    };
    Ok(Layout {
        remaining,
        props,
        will_props: 0,
    })
}

/// DISCONNECT in its shortest form.
fn disconnect_layout(
    disconnect: &Disconnect,
    version: ProtocolVersion,
) -> Result<Layout, EncodeError> {
    check_reason(
        disconnect.reason_code,
        PacketType::Disconnect,
        version,
        "reason_code",
    )?;
    let props = props_len(
        &disconnect.properties,
        version,
        "setting DISCONNECT properties",
    )?;
    let remaining = match (version, props) {
        (ProtocolVersion::V311, _) => 0,
        (ProtocolVersion::V5, 0) if disconnect.reason_code == ReasonCode::SUCCESS => 0,
        (ProtocolVersion::V5, 0) => 1,
        (ProtocolVersion::V5, _) => 1 + block(props, version),
    };
    Ok(Layout {
        remaining,
        props,
        will_props: 0,
    })
}

/// AUTH: remaining length 0 for Success without properties; otherwise the
/// Authentication Method is required (5.0 section 3.15.2.2.2).
fn auth_layout(auth: &Auth, version: ProtocolVersion) -> Result<Layout, EncodeError> {
    if version == ProtocolVersion::V311 {
        return Err(EncodeError::RequiresV5("AUTH"));
    }
    check_reason(auth.reason_code, PacketType::Auth, version, "reason_code")?;
    let props = auth.properties.checked_len()?;
    if props == 0 && auth.reason_code == ReasonCode::SUCCESS {
        return Ok(Layout::default());
    }
    if auth.properties.authentication_method.is_none() {
        return Err(invalid("authentication_method", "required in AUTH"));
    }
    Ok(Layout {
        remaining: 1 + block(props, version),
        props,
        will_props: 0,
    })
}
