//! Primitive wire types (MQTT 5.0 section 1.5, 3.1.1 section 1.5): integers,
//! Variable Byte Integers, UTF-8 strings and binary data.
//!
//! [`Reader`] walks one received packet with a bounds check before every read;
//! the `put_*` / `*_len` helpers write and size the same types for the encoder.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeError};

/// The largest value a Variable Byte Integer can hold (four bytes).
pub(crate) const VARINT_MAX: u32 = 268_435_455;

/// The longest string or binary field: its length prefix is two bytes.
pub(crate) const FIELD_MAX: usize = u16::MAX as usize;

const TRUNCATED: DecodeError = DecodeError::Malformed("field runs past the end of the packet");

/// Parses a Variable Byte Integer at the start of `bytes`.
///
/// `Ok(None)` when `bytes` ends before the integer does; otherwise the value
/// and the number of bytes it took. More than four bytes, or a longer encoding
/// than needed (MQTT-1.5.5-1), is malformed.
pub(crate) fn parse_varint(bytes: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (index, byte) in bytes.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            if index > 0 && *byte == 0 {
                return Err(DecodeError::Malformed(
                    "variable byte integer is not minimally encoded",
                ));
            }
            return Ok(Some((value, index + 1)));
        }
    }
    if bytes.len() >= 4 {
        Err(DecodeError::Malformed(
            "variable byte integer longer than four bytes",
        ))
    } else {
        Ok(None)
    }
}

/// A bounds-checked cursor over part of one received packet.
///
/// Binary fields come out as zero-copy slices of the packet's `Bytes`.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    src: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `src[start..]`.
    pub(crate) fn new(src: &'a Bytes, start: usize) -> Reader<'a> {
        let end = src.len();
        Reader {
            src,
            pos: start.min(end),
            end,
        }
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// The next `n` bytes, borrowed.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let src: &'a [u8] = self.src;
        let end = self.pos.checked_add(n).filter(|end| *end <= self.end);
        let slice = end
            .and_then(|end| src.get(self.pos..end))
            .ok_or(TRUNCATED)?;
        self.pos += n;
        Ok(slice)
    }

    /// A reader over the next `n` bytes, which this reader skips.
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(Reader {
            src: self.src,
            pos: start,
            end: self.pos,
        })
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N)?;
        <[u8; N]>::try_from(slice).map_err(|_| TRUNCATED)
    }

    /// A Variable Byte Integer (minimally encoded, at most four bytes).
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let src: &'a [u8] = self.src;
        let window = src.get(self.pos..self.end).unwrap_or_default();
        let (value, used) = parse_varint(window)?.ok_or(TRUNCATED)?;
        self.pos += used;
        Ok(value)
    }

    /// A UTF-8 Encoded String: well-formed UTF-8 (MQTT-1.5.4-1) without
    /// U+0000 (MQTT-1.5.4-2).
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        let text = std::str::from_utf8(raw)
            .map_err(|_| DecodeError::Malformed("string is not well-formed UTF-8"))?;
        if raw.contains(&0) {
            return Err(DecodeError::Malformed("string contains U+0000"));
        }
        Ok(text.to_owned())
    }

    /// Binary Data: a two-byte length and that many bytes (zero-copy).
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.bytes(len)
    }

    /// The next `n` bytes as a zero-copy slice of the packet.
    fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let slice = self.take(n)?;
        Ok(self.src.slice_ref(slice))
    }

    /// Everything left (a PUBLISH payload), zero-copy.
    pub(crate) fn rest(&mut self) -> Bytes {
        self.bytes(self.remaining()).unwrap_or_default()
    }

    /// Fails unless every byte was read: trailing bytes inside a packet are malformed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                "unexpected bytes at the end of the packet",
            ))
        }
    }
}

/// The number of bytes `value` takes as a Variable Byte Integer.
pub(crate) const fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` as a Variable Byte Integer; callers keep it ≤ [`VARINT_MAX`].
pub(crate) fn put_varint(buf: &mut BytesMut, value: usize) {
    let mut rest = value;
    loop {
        let low = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest == 0 {
            buf.put_u8(low);
            return;
        }
        buf.put_u8(low | 0x80);
    }
}

/// Appends a UTF-8 Encoded String; callers checked it with [`string_len`].
pub(crate) fn put_string(buf: &mut BytesMut, text: &str) {
    put_binary(buf, text.as_bytes());
}

/// Appends Binary Data; callers checked it with [`binary_len`].
pub(crate) fn put_binary(buf: &mut BytesMut, data: &[u8]) {
    buf.put_u16(data.len() as u16);
    buf.put_slice(data);
}

/// Why a string cannot be sent, if it cannot: longer than 65,535 bytes or
/// containing U+0000 (MQTT-1.5.4-2).
pub(crate) fn check_string(text: &str) -> Result<(), &'static str> {
    if crate::topic::contains_any_byte(text.as_bytes(), &[0]) {
        return Err("contains U+0000");
    }
    check_binary(text.as_bytes())
}

/// Why binary data cannot be sent, if it cannot: longer than 65,535 bytes.
pub(crate) fn check_binary(data: &[u8]) -> Result<(), &'static str> {
    if data.len() > FIELD_MAX {
        Err("longer than 65535 bytes")
    } else {
        Ok(())
    }
}

/// The encoded size of a string (prefix included), checked with [`check_string`].
pub(crate) fn string_len(text: &str, field: &'static str) -> Result<usize, EncodeError> {
    check_string(text).map_err(|reason| EncodeError::Invalid { field, reason })?;
    Ok(2 + text.len())
}

/// The encoded size of binary data (prefix included), checked with [`check_binary`].
pub(crate) fn binary_len(data: &[u8], field: &'static str) -> Result<usize, EncodeError> {
    check_binary(data).map_err(|reason| EncodeError::Invalid { field, reason })?;
    Ok(2 + data.len())
}
