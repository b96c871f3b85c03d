//! MQTT 5.0 properties (section 2.2.2): one generic reader, sizer and writer.
//!
//! Each property struct of the data model is described once, in the
//! [`properties!`] table below, as `identifier => field: Kind`. The macro turns
//! that table into decode (identifier allowed for the packet, duplicate check,
//! value rules), encode-time validation with size, writing and emptiness.
//! A [`Kind`] knows one wire data type and its value rule; a field typed
//! `Option<_>` may appear once, a `Vec<_>` field may repeat.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{self, Reader, VARINT_MAX};
use super::{DecodeError, EncodeError};
use crate::packet::{
    AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties, PublishProperties,
    QoS, ReasonProperties, SubscribeProperties, UnsubscribeProperties, WillProperties,
};

/// A property block of some packet.
pub(crate) trait Properties: Sized {
    /// Reads the property length and the properties it covers.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.varint()?;
        let mut body = r.sub(len as usize)?;
        Self::decode_body(&mut body)
    }

    /// Reads properties until `body` is exhausted.
    fn decode_body(body: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Validates every value the caller set and returns the size of the
    /// properties (without the property-length prefix).
    fn checked_len(&self) -> Result<usize, EncodeError>;

    /// Writes the property-length prefix and the properties; `len` is what
    /// [`Properties::checked_len`] returned.
    fn write(&self, len: usize, buf: &mut BytesMut);

    /// True when no property is set (the 3.1.1 shape).
    fn is_empty(&self) -> bool;
}

/// One wire data type together with the value rule of the properties using it.
pub(crate) trait Kind {
    type Value;
    /// Reads a value; `invalid` names the property for a broken value rule.
    fn read(r: &mut Reader<'_>, invalid: &'static str) -> Result<Self::Value, DecodeError>;
    /// Checks a caller-supplied value; `Err` is the reason it cannot be sent.
    fn check(value: &Self::Value) -> Result<(), &'static str>;
    /// Encoded size of the value (identifier excluded).
    fn len(value: &Self::Value) -> usize;
    fn write(value: &Self::Value, buf: &mut BytesMut);
}

/// Where decoded values of one property go: `Option` (at most once) or `Vec` (repeatable).
pub(crate) trait Slot<T> {
    /// Stores `value`; false when a non-repeatable property is already set.
    fn put(&mut self, value: T) -> bool;
    fn is_vacant(&self) -> bool;
}

impl<T> Slot<T> for Option<T> {
    fn put(&mut self, value: T) -> bool {
        if self.is_some() {
            return false;
        }
        *self = Some(value);
        true
    }
    fn is_vacant(&self) -> bool {
        self.is_none()
    }
}

impl<T> Slot<T> for Vec<T> {
    fn put(&mut self, value: T) -> bool {
        self.push(value);
        true
    }
    fn is_vacant(&self) -> bool {
        self.is_empty()
    }
}

/// Byte, 0 or 1 (Payload Format Indicator). Other values are malformed, as the data model documents.
pub(crate) struct FormatByte;
/// Byte, 0 or 1, read as a flag (request / availability flags). Other values: Protocol Error.
pub(crate) struct Flag;
/// Byte, QoS 0 or 1 (Maximum QoS). Other values: Protocol Error.
pub(crate) struct MaxQos;
/// Two Byte Integer, any value.
pub(crate) struct TwoByte;
/// Two Byte Integer, never 0 (Receive Maximum). 0: Protocol Error.
pub(crate) struct TwoByteNonZero;
/// Topic Alias: a Two Byte Integer, never 0. 0: Topic Alias invalid (MQTT 5.0 3.3.2.3.4).
pub(crate) struct TopicAlias;
/// Four Byte Integer, any value.
pub(crate) struct FourByte;
/// Four Byte Integer, never 0 (Maximum Packet Size). 0: Protocol Error.
pub(crate) struct FourByteNonZero;
/// Variable Byte Integer 1..=268,435,455 (Subscription Identifier). 0: Protocol Error.
pub(crate) struct SubscriptionId;
/// UTF-8 Encoded String.
pub(crate) struct Utf8;
/// Binary Data.
pub(crate) struct Binary;
/// UTF-8 String Pair (User Property).
pub(crate) struct Utf8Pair;

fn read_bit(r: &mut Reader<'_>) -> Result<Option<bool>, DecodeError> {
    Ok(match r.u8()? {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    })
}

impl Kind for FormatByte {
    type Value = u8;
    fn read(r: &mut Reader<'_>, invalid: &'static str) -> Result<u8, DecodeError> {
        match r.u8()? {
            value @ (0 | 1) => Ok(value),
            _ => Err(DecodeError::Malformed(invalid)),
        }
    }
    fn check(value: &u8) -> Result<(), &'static str> {
        if *value <= 1 {
            Ok(())
        } else {
            Err("must be 0 or 1")
        }
    }
    fn len(_: &u8) -> usize {
        1
    }
    fn write(value: &u8, buf: &mut BytesMut) {
        buf.put_u8(*value);
    }
}

impl Kind for Flag {
    type Value = bool;
    fn read(r: &mut Reader<'_>, invalid: &'static str) -> Result<bool, DecodeError> {
        read_bit(r)?.ok_or(DecodeError::Protocol(invalid))
    }
    fn check(_: &bool) -> Result<(), &'static str> {
        Ok(())
    }
    fn len(_: &bool) -> usize {
        1
    }
    fn write(value: &bool, buf: &mut BytesMut) {
        buf.put_u8(u8::from(*value));
    }
}

impl Kind for MaxQos {
    type Value = QoS;
    fn read(r: &mut Reader<'_>, invalid: &'static str) -> Result<QoS, DecodeError> {
        match read_bit(r)? {
            Some(false) => Ok(QoS::AtMostOnce),
            Some(true) => Ok(QoS::AtLeastOnce),
            None => Err(DecodeError::Protocol(invalid)),
        }
    }
    fn check(value: &QoS) -> Result<(), &'static str> {
        if *value == QoS::ExactlyOnce {
            Err("must be QoS 0 or 1 (absent means 2)")
        } else {
            Ok(())
        }
    }
    fn len(_: &QoS) -> usize {
        1
    }
    fn write(value: &QoS, buf: &mut BytesMut) {
        buf.put_u8(*value as u8);
    }
}

impl Kind for TwoByte {
    type Value = u16;
    fn read(r: &mut Reader<'_>, _: &'static str) -> Result<u16, DecodeError> {
        r.u16()
    }
    fn check(_: &u16) -> Result<(), &'static str> {
        Ok(())
    }
    fn len(_: &u16) -> usize {
        2
    }
    fn write(value: &u16, buf: &mut BytesMut) {
        buf.put_u16(*value);
    }
}

impl Kind for TopicAlias {
    type Value = u16;
    fn read(r: &mut Reader<'_>, invalid: &'static str) -> Result<u16, DecodeError> {
        match r.u16()? {
            0 => Err(DecodeError::TopicAliasInvalid(invalid)),
            value => Ok(value),
        }
    }
    fn check(value: &u16) -> Result<(), &'static str> {
        TwoByteNonZero::check(value)
    }
    fn len(value: &u16) -> usize {
        TwoByteNonZero::len(value)
    }
    fn write(value: &u16, buf: &mut BytesMut) {
        TwoByteNonZero::write(value, buf)
    }
}

impl Kind for TwoByteNonZero {
    type Value = u16;
    fn read(r: &mut Reader<'_>, invalid: &'static str) -> Result<u16, DecodeError> {
        match r.u16()? {
            0 => Err(DecodeError::Protocol(invalid)),
            value => Ok(value),
        }
    }
    fn check(value: &u16) -> Result<(), &'static str> {
        if *value == 0 {
            Err("must not be 0")
        } else {
            Ok(())
        }
    }
    fn len(_: &u16) -> usize {
        2
    }
    fn write(value: &u16, buf: &mut BytesMut) {
        buf.put_u16(*value);
    }
}

impl Kind for FourByte {
    type Value = u32;
    fn read(r: &mut Reader<'_>, _: &'static str) -> Result<u32, DecodeError> {
        r.u32()
    }
    fn check(_: &u32) -> Result<(), &'static str> {
        Ok(())
    }
    fn len(_: &u32) -> usize {
        4
    }
    fn write(value: &u32, buf: &mut BytesMut) {
        buf.put_u32(*value);
    }
}

impl Kind for FourByteNonZero {
    type Value = u32;
    fn read(r: &mut Reader<'_>, invalid: &'static str) -> Result<u32, DecodeError> {
        match r.u32()? {
            0 => Err(DecodeError::Protocol(invalid)),
            value => Ok(value),
        }
    }
    fn check(value: &u32) -> Result<(), &'static str> {
        if *value == 0 {
            Err("must not be 0")
        } else {
            Ok(())
        }
    }
    fn len(_: &u32) -> usize {
        4
    }
    fn write(value: &u32, buf: &mut BytesMut) {
        buf.put_u32(*value);
    }
}

impl Kind for SubscriptionId {
    type Value = u32;
    fn read(r: &mut Reader<'_>, invalid: &'static str) -> Result<u32, DecodeError> {
        match r.varint()? {
            0 => Err(DecodeError::Protocol(invalid)),
            value => Ok(value),
        }
    }
    fn check(value: &u32) -> Result<(), &'static str> {
        check_subscription_identifier(*value)
    }
    fn len(value: &u32) -> usize {
        wire::varint_len(*value as usize)
    }
    fn write(value: &u32, buf: &mut BytesMut) {
        wire::put_varint(buf, *value as usize);
    }
}

/// The Subscription Identifier range rule, 1..=268,435,455 (MQTT 5.0 3.8.2.1.2).
pub(crate) fn check_subscription_identifier(value: u32) -> Result<(), &'static str> {
    if (1..=VARINT_MAX).contains(&value) {
        Ok(())
    } else {
        Err("must be in 1..=268435455")
    }
}

impl Kind for Utf8 {
    type Value = String;
    fn read(r: &mut Reader<'_>, _: &'static str) -> Result<String, DecodeError> {
        r.string()
    }
    fn check(value: &String) -> Result<(), &'static str> {
        wire::check_string(value)
    }
    fn len(value: &String) -> usize {
        2 + value.len()
    }
    fn write(value: &String, buf: &mut BytesMut) {
        wire::put_string(buf, value);
    }
}

impl Kind for Binary {
    type Value = Bytes;
    fn read(r: &mut Reader<'_>, _: &'static str) -> Result<Bytes, DecodeError> {
        r.binary()
    }
    fn check(value: &Bytes) -> Result<(), &'static str> {
        wire::check_binary(value)
    }
    fn len(value: &Bytes) -> usize {
        2 + value.len()
    }
    fn write(value: &Bytes, buf: &mut BytesMut) {
        wire::put_binary(buf, value);
    }
}

impl Kind for Utf8Pair {
    type Value = (String, String);
    fn read(r: &mut Reader<'_>, _: &'static str) -> Result<(String, String), DecodeError> {
        Ok((r.string()?, r.string()?))
    }
    fn check((name, value): &(String, String)) -> Result<(), &'static str> {
        wire::check_string(name)?;
        wire::check_string(value)
    }
    fn len((name, value): &(String, String)) -> usize {
        4 + name.len() + value.len()
    }
    fn write((name, value): &(String, String), buf: &mut BytesMut) {
        wire::put_string(buf, name);
        wire::put_string(buf, value);
    }
}

/// Implements [`Properties`] for each listed struct from its
/// `identifier => field: Kind` table (MQTT 5.0 table 2-4).
macro_rules! properties {
    ($( $packet:literal $ty:ident { $( $id:literal => $field:ident : $kind:ty, )+ } )+) => { $(
        impl Properties for $ty {
            fn decode_body(body: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let mut props = Self::default();
                while !body.is_empty() {
                    // The identifier is a Variable Byte Integer, but every defined
                    // one fits in a single byte: a byte with the continuation bit
                    // set can only start an unknown identifier.
                    match body.u8()? {
                        $( $id => {
                            let value = <$kind as Kind>::read(
                                body,
                                concat!("invalid value of property ", stringify!($field)),
                            )?;
                            if !Slot::put(&mut props.$field, value) {
                                return Err(DecodeError::Protocol(concat!(
                                    "property ", stringify!($field), " included more than once"
                                )));
                            }
                        } )+
                        _ => {
                            return Err(DecodeError::Malformed(concat!(
                                "property identifier not valid in ", $packet
                            )))
                        }
                    }
                }
                Ok(props)
            }

            fn checked_len(&self) -> Result<usize, EncodeError> {
                let mut len = 0usize;
                $(
                    for value in self.$field.iter() {
                        <$kind as Kind>::check(value).map_err(|reason| EncodeError::Invalid {
                            field: stringify!($field),
                            reason,
                        })?;
                        len = len.saturating_add(1 + <$kind as Kind>::len(value));
                    }
                )+
                Ok(len)
            }

            fn write(&self, len: usize, buf: &mut BytesMut) {
                wire::put_varint(buf, len);
                if len == 0 {
                    return;
                }
                $(
                    for value in self.$field.iter() {
                        buf.put_u8($id);
                        <$kind as Kind>::write(value, buf);
                    }
                )+
            }

            fn is_empty(&self) -> bool {
                true $( && Slot::is_vacant(&self.$field) )+
            }
        }
    )+ };
}

properties! {
    "CONNECT" ConnectProperties {
        0x11 => session_expiry_interval: FourByte,
        0x15 => authentication_method: Utf8,
        0x16 => authentication_data: Binary,
        0x17 => request_problem_information: Flag,
        0x19 => request_response_information: Flag,
        0x21 => receive_maximum: TwoByteNonZero,
        0x22 => topic_alias_maximum: TwoByte,
        0x26 => user_properties: Utf8Pair,
        0x27 => maximum_packet_size: FourByteNonZero,
    }
    "Will Properties" WillProperties {
        0x01 => payload_format_indicator: FormatByte,
        0x02 => message_expiry_interval: FourByte,
        0x03 => content_type: Utf8,
        0x08 => response_topic: Utf8,
        0x09 => correlation_data: Binary,
        0x18 => will_delay_interval: FourByte,
        0x26 => user_properties: Utf8Pair,
    }
    "CONNACK" ConnAckProperties {
        0x11 => session_expiry_interval: FourByte,
        0x12 => assigned_client_identifier: Utf8,
        0x13 => server_keep_alive: TwoByte,
        0x15 => authentication_method: Utf8,
        0x16 => authentication_data: Binary,
        0x1A => response_information: Utf8,
        0x1C => server_reference: Utf8,
        0x1F => reason_string: Utf8,
        0x21 => receive_maximum: TwoByteNonZero,
        0x22 => topic_alias_maximum: TwoByte,
        0x24 => maximum_qos: MaxQos,
        0x25 => retain_available: Flag,
        0x26 => user_properties: Utf8Pair,
        0x27 => maximum_packet_size: FourByteNonZero,
        0x28 => wildcard_subscription_available: Flag,
        0x29 => subscription_identifiers_available: Flag,
        0x2A => shared_subscription_available: Flag,
    }
    "PUBLISH" PublishProperties {
        0x01 => payload_format_indicator: FormatByte,
        0x02 => message_expiry_interval: FourByte,
        0x03 => content_type: Utf8,
        0x08 => response_topic: Utf8,
        0x09 => correlation_data: Binary,
        0x0B => subscription_identifiers: SubscriptionId,
        0x23 => topic_alias: TopicAlias,
        0x26 => user_properties: Utf8Pair,
    }
    "an acknowledgement" ReasonProperties {
        0x1F => reason_string: Utf8,
        0x26 => user_properties: Utf8Pair,
    }
    "SUBSCRIBE" SubscribeProperties {
        0x0B => subscription_identifier: SubscriptionId,
        0x26 => user_properties: Utf8Pair,
    }
    "UNSUBSCRIBE" UnsubscribeProperties {
        0x26 => user_properties: Utf8Pair,
    }
    "DISCONNECT" DisconnectProperties {
        0x11 => session_expiry_interval: FourByte,
        0x1C => server_reference: Utf8,
        0x1F => reason_string: Utf8,
        0x26 => user_properties: Utf8Pair,
    }
    "AUTH" AuthProperties {
        0x15 => authentication_method: Utf8,
        0x16 => authentication_data: Binary,
        0x1F => reason_string: Utf8,
        0x26 => user_properties: Utf8Pair,
    }
}
