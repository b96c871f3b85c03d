//! The decoder: fixed header first, then one function per packet type.
//!
//! Every rule that can be checked from one packet alone is checked here; rules
//! that need connection state (topic alias mapping, packet ids in flight, which
//! side sent a property) belong to `session`.

use bytes::BytesMut;

use super::properties::Properties;
use super::wire::{self, Reader};
use super::DecodeError;
use crate::packet::{
    Auth, AuthProperties, ConnAck, ConnAckProperties, Connect, ConnectProperties, Disconnect,
    DisconnectProperties, LastWill, Packet, PacketType, ProtocolVersion, PubResponse, Publish,
    PublishProperties, QoS, ReasonProperties, RetainHandling, SubAck, Subscribe, SubscribeFilter,
    SubscribeProperties, SubscriptionOptions, UnsubAck, Unsubscribe, UnsubscribeProperties,
    WillProperties,
};
use crate::reason::ReasonCode;

/// See [`super::decode`].
pub(super) fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = packet_type(first, version)?;
    let after_first = buf.get(1..).unwrap_or_default();
    let Some((remaining, length_len)) = wire::parse_varint(after_first)? else {
        return Ok(None);
    };
    let header_len = 1 + length_len;
    let size = header_len + remaining as usize;
    if size > max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        return Ok(None);
    }
    let frame = buf.split_to(size).freeze();
    let mut r = Reader::new(&frame, header_len);
    let r = &mut r;
    let packet = match packet_type {
        PacketType::Connect => Packet::Connect(Box::new(connect(r)?)),
        PacketType::ConnAck => Packet::ConnAck(connack(r, version)?),
        PacketType::Publish => Packet::Publish(publish(r, first, version)?),
        PacketType::PubAck => Packet::PubAck(pub_response(r, packet_type, version)?),
        PacketType::PubRec => Packet::PubRec(pub_response(r, packet_type, version)?),
        PacketType::PubRel => Packet::PubRel(pub_response(r, packet_type, version)?),
        PacketType::PubComp => Packet::PubComp(pub_response(r, packet_type, version)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe(r, version)?),
        PacketType::SubAck => Packet::SubAck(suback(r, version)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe(r, version)?),
        PacketType::UnsubAck => Packet::UnsubAck(unsuback(r, version)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(disconnect(r, version)?),
        PacketType::Auth => Packet::Auth(auth(r)?),
    };
    r.finish()?;
    Ok(Some(packet))
}

/// The packet type of a fixed header's first byte, after checking its flags
/// (MQTT-2.2.2-1/-2 in 3.1.1, section 2.1.3 in 5.0).
fn packet_type(first: u8, version: ProtocolVersion) -> Result<PacketType, DecodeError> {
    let flags = first & 0x0F;
    let (packet_type, required_flags) = match first >> 4 {
        1 => (PacketType::Connect, 0),
        2 => (PacketType::ConnAck, 0),
        3 => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::Malformed("PUBLISH with DUP set and QoS 0"));
            }
            return Ok(PacketType::Publish);
        }
        4 => (PacketType::PubAck, 0),
        5 => (PacketType::PubRec, 0),
        6 => (PacketType::PubRel, 0b0010),
        7 => (PacketType::PubComp, 0),
        8 => (PacketType::Subscribe, 0b0010),
        9 => (PacketType::SubAck, 0),
        10 => (PacketType::Unsubscribe, 0b0010),
        11 => (PacketType::UnsubAck, 0),
        12 => (PacketType::PingReq, 0),
        13 => (PacketType::PingResp, 0),
        14 => (PacketType::Disconnect, 0),
        15 if version == ProtocolVersion::V5 => (PacketType::Auth, 0),
        15 => return Err(DecodeError::Malformed("AUTH does not exist in MQTT 3.1.1")),
        _ => return Err(DecodeError::Malformed("reserved packet type 0")),
    };
    if flags != required_flags {
        return Err(DecodeError::Malformed("invalid fixed header flags"));
    }
    Ok(packet_type)
}

/// A Packet Identifier, which is never 0 (MQTT-2.3.1-1 in 3.1.1, MQTT-2.2.1-3 in 5.0).
fn packet_id(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::Protocol("packet identifier 0")),
        id => Ok(id),
    }
}

/// A reason code byte, which must be one `packet` allows on `version`.
fn reason_code(
    r: &mut Reader<'_>,
    packet: PacketType,
    version: ProtocolVersion,
) -> Result<ReasonCode, DecodeError> {
    let code = ReasonCode(r.u8()?);
    if code.allowed_in(packet, version) {
        Ok(code)
    } else {
        Err(DecodeError::Protocol(
            "reason code not allowed in this packet",
        ))
    }
}

/// The properties of a 5.0 packet; the defaults (nothing) on 3.1.1.
fn props<P: Properties + Default>(
    r: &mut Reader<'_>,
    version: ProtocolVersion,
) -> Result<P, DecodeError> {
    match version {
        ProtocolVersion::V5 => P::decode(r),
        ProtocolVersion::V311 => Ok(P::default()),
    }
}

fn connect(r: &mut Reader<'_>) -> Result<Connect, DecodeError> {
    let name_len = usize::from(r.u16()?);
    let name = r.take(name_len)?;
    let level = r.u8()?;
    let protocol = match (name, level) {
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQTT", 5) => ProtocolVersion::V5,
        // "MQIsdp" is MQTT 3.1: a real MQTT client we do not speak.
        (b"MQTT" | b"MQIsdp", _) => return Err(DecodeError::UnsupportedProtocolVersion(level)),
        _ => return Err(DecodeError::Protocol("protocol name is not \"MQTT\"")),
    };

    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed("CONNECT reserved flag is set"));
    }
    let clean_start = flags & 0x02 != 0;
    let has_will = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("will QoS 3"))?;
    if !has_will && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(DecodeError::Malformed(
            "will QoS or will retain set without the will flag",
        ));
    }
    if protocol == ProtocolVersion::V311 && has_password && !has_username {
        return Err(DecodeError::Malformed(
            "password flag set without user name flag",
        ));
    }
    let keep_alive = r.u16()?;
    let properties: ConnectProperties = props(r, protocol)?;
    if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
        return Err(DecodeError::Protocol(
            "authentication data without authentication method",
        ));
    }

    let client_id = r.string()?;
    let will = if has_will {
        let properties: WillProperties = props(r, protocol)?;
        let topic = r.string()?;
        if topic.is_empty() {
            return Err(DecodeError::Protocol("empty will topic"));
        }
        let payload = r.binary()?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = has_username.then(|| r.string()).transpose()?;
    let password = has_password.then(|| r.binary()).transpose()?;
    Ok(Connect {
        protocol,
        client_id,
        keep_alive,
        clean_start,
        username,
        password,
        will,
        properties,
    })
}

fn connack(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::Malformed("CONNACK reserved flags are set"));
    }
    let session_present = flags & 0x01 != 0;
    let code = reason_code(r, PacketType::ConnAck, version)?;
    if session_present && code != ReasonCode::SUCCESS {
        return Err(DecodeError::Protocol(
            "CONNACK with session present and a non-zero code",
        ));
    }
    let properties: ConnAckProperties = props(r, version)?;
    Ok(ConnAck {
        session_present,
        code,
        properties,
    })
}

fn publish(
    r: &mut Reader<'_>,
    first: u8,
    version: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((first >> 1) & 0b11).unwrap_or_default();
    let topic = r.string()?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(packet_id(r)?)
    };
    let properties: PublishProperties = props(r, version)?;
    if topic.is_empty() && properties.topic_alias.is_none() {
        return Err(DecodeError::Protocol(
            "empty topic name without a topic alias",
        ));
    }
    Ok(Publish {
        dup: first & 0b1000 != 0,
        qos,
        retain: first & 0b0001 != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP. 5.0 allows a remaining length of 2
/// (Success, no properties) or 3 (no properties).
fn pub_response(
    r: &mut Reader<'_>,
    packet: PacketType,
    version: ProtocolVersion,
) -> Result<PubResponse, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut response = PubResponse {
        packet_id,
        ..PubResponse::default()
    };
    if version == ProtocolVersion::V5 && !r.is_empty() {
        response.reason_code = reason_code(r, packet, version)?;
        if !r.is_empty() {
            response.properties = ReasonProperties::decode(r)?;
        }
    }
    Ok(response)
}

fn subscribe(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties: SubscribeProperties = props(r, version)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        let options = subscription_options(r.u8()?, &filter, version)?;
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("SUBSCRIBE without topic filters"));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

/// The Subscription Options byte (5.0 section 3.8.3.1; 3.1.1: Requested QoS only).
fn subscription_options(
    byte: u8,
    filter: &str,
    version: ProtocolVersion,
) -> Result<SubscriptionOptions, DecodeError> {
    let qos = QoS::from_u8(byte & 0b11);
    if version == ProtocolVersion::V311 {
        let qos = qos.ok_or(DecodeError::Malformed("requested QoS 3"))?;
        if byte & 0xFC != 0 {
            return Err(DecodeError::Malformed(
                "subscription options reserved bits set",
            ));
        }
        return Ok(SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        });
    }
    if byte & 0xC0 != 0 {
        return Err(DecodeError::Malformed(
            "subscription options reserved bits set",
        ));
    }
    let qos = qos.ok_or(DecodeError::Protocol(
        "maximum QoS 3 in subscription options",
    ))?;
    let retain_handling = RetainHandling::from_u8((byte >> 4) & 0b11)
        .ok_or(DecodeError::Protocol("retain handling 3"))?;
    let no_local = byte & 0x04 != 0;
    if no_local && filter.starts_with("$share/") {
        return Err(DecodeError::Protocol(
            "no local set on a shared subscription",
        ));
    }
    Ok(SubscriptionOptions {
        qos,
        no_local,
        retain_as_published: byte & 0x08 != 0,
        retain_handling,
    })
}

/// The list of reason codes that is the payload of SUBACK and (5.0) UNSUBACK.
fn reason_codes(
    r: &mut Reader<'_>,
    packet: PacketType,
    version: ProtocolVersion,
) -> Result<Vec<ReasonCode>, DecodeError> {
    let mut codes = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        codes.push(reason_code(r, packet, version)?);
    }
    if codes.is_empty() {
        return Err(DecodeError::Protocol(
            "acknowledgement without reason codes",
        ));
    }
    Ok(codes)
}

fn suback(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties: ReasonProperties = props(r, version)?;
    let reason_codes = reason_codes(r, PacketType::SubAck, version)?;
    Ok(SubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

fn unsubscribe(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties: UnsubscribeProperties = props(r, version)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("UNSUBSCRIBE without topic filters"));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

/// UNSUBACK: 3.1.1 carries only the packet id (remaining length exactly 2).
fn unsuback(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    if version == ProtocolVersion::V311 {
        return Ok(UnsubAck {
            packet_id,
            ..UnsubAck::default()
        });
    }
    let properties = ReasonProperties::decode(r)?;
    let reason_codes = reason_codes(r, PacketType::UnsubAck, version)?;
    Ok(UnsubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

/// DISCONNECT: empty on 3.1.1; 5.0 allows a remaining length of 0 (normal
/// disconnection) or 1 (no properties).
fn disconnect(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Disconnect, DecodeError> {
    let mut disconnect = Disconnect::default();
    if version == ProtocolVersion::V5 && !r.is_empty() {
        disconnect.reason_code = reason_code(r, PacketType::Disconnect, version)?;
        if !r.is_empty() {
            disconnect.properties = DisconnectProperties::decode(r)?;
        }
    }
    Ok(disconnect)
}

/// AUTH (5.0 only): a remaining length of 0 means Success without properties;
/// otherwise reason code and properties, which must name the authentication
/// method (5.0 section 3.15.2.2.2).
fn auth(r: &mut Reader<'_>) -> Result<Auth, DecodeError> {
    if r.is_empty() {
        return Ok(Auth::default());
    }
    let reason_code = reason_code(r, PacketType::Auth, ProtocolVersion::V5)?;
    let properties = AuthProperties::decode(r)?;
    if properties.authentication_method.is_none() {
        return Err(DecodeError::Protocol("AUTH without authentication method"));
    }
    Ok(Auth {
        reason_code,
        properties,
    })
}
