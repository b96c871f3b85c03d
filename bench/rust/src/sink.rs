//! The W6 sink: an MQTT "server" that accepts any CONNECT, answers PINGREQ
//! and discards publishes, so a benchmark measures the client alone.
//!
//! Built to cost little per message: each read takes up to 256 KiB, QoS 0
//! PUBLISH frames are skipped by their fixed header alone (never decoded or
//! copied), and all answers of one read go out in one write. Only CONNECT is
//! decoded (with `zmqtt_proto::codec`, for its protocol level).
//!
//! Beyond the brief of a pure sink it acknowledges QoS 1 (PUBACK) and QoS 2
//! (PUBREC, then PUBCOMP for PUBREL) publishes: a benchmark ends W6 with one
//! QoS 1 "fence" publish, whose PUBACK proves every earlier publish reached
//! the sink (one TCP stream, in order).

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zmqtt_proto::codec;
use zmqtt_proto::{ConnAck, Packet, ProtocolVersion, ReasonCode};

/// Bytes asked of each read.
const READ_SIZE: usize = 256 * 1024;

/// The largest CONNECT or acknowledged PUBLISH the sink holds whole.
const MAX_HELD_PACKET: usize = 16 * 1024 * 1024;

/// Per-connection protocol state, independent of I/O.
#[derive(Debug, Default)]
pub struct SinkState {
    /// Set by CONNECT.
    pub version: Option<ProtocolVersion>,
    /// Bytes of a discarded packet still to come.
    skip: usize,
    /// PUBLISH packets seen (all QoS).
    pub publishes: u64,
    /// DISCONNECT seen.
    pub closed: bool,
}

/// Reads the fixed header at the front of `data`: `(header length, remaining
/// length)`, `None` when incomplete.
fn fixed_header(data: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let mut remaining: usize = 0;
    for index in 0..4 {
        let Some(&byte) = data.get(1 + index) else {
            return Ok(None);
        };
        remaining |= ((byte & 0x7f) as usize) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(Some((2 + index, remaining)));
        }
    }
    Err("malformed remaining length".into())
}

fn two_bytes(data: &[u8], at: usize) -> Option<[u8; 2]> {
    Some([*data.get(at)?, *data.get(at + 1)?])
}

impl SinkState {
    /// Consumes whole packets from the front of `data` (and the parts of
    /// discarded ones), appending answers to `out`. Returns how many bytes
    /// were consumed; the rest must be offered again with more data.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
        let mut pos = self.skip.min(data.len());
        self.skip -= pos;
        while !self.closed {
            let Some(rest) = data.get(pos..).filter(|rest| !rest.is_empty()) else {
                break;
            };
            let Some((header_len, remaining)) = fixed_header(rest)? else {
                break;
            };
            let total = header_len + remaining;
            let first = rest.first().copied().unwrap_or(0);
            let kind = first >> 4;
            let qos = (first >> 1) & 3;
            let needs_whole = match kind {
                1 => true,           // CONNECT: decoded
                3 => qos != 0,       // PUBLISH: acknowledged if QoS > 0
                6 | 12 | 14 => true, // PUBREL, PINGREQ, DISCONNECT: tiny
                _ => false,          // anything else: discarded
            };
            if !needs_whole {
                if kind == 3 {
                    self.publishes += 1;
                }
                if rest.len() >= total {
                    pos += total;
                } else {
                    self.skip = total - rest.len();
                    pos = data.len();
                }
                continue;
            }
            if total > MAX_HELD_PACKET {
                return Err(format!("packet type {kind} of {total} bytes is too large"));
            }
            let Some(packet) = rest.get(..total) else {
                break;
            };
            pos += total;
            match kind {
                1 => self.connect(packet, out)?,
                3 => {
                    self.publishes += 1;
                    let topic_len = two_bytes(packet, header_len)
                        .map(u16::from_be_bytes)
                        .ok_or("short PUBLISH")? as usize;
                    let id =
                        two_bytes(packet, header_len + 2 + topic_len).ok_or("short PUBLISH")?;
                    // PUBACK / PUBREC, success, no properties (valid in both versions).
                    out.extend_from_slice(&[if qos == 1 { 0x40 } else { 0x50 }, 2, id[0], id[1]]);
                }
                6 => {
                    let id = two_bytes(packet, header_len).ok_or("short PUBREL")?;
                    out.extend_from_slice(&[0x70, 2, id[0], id[1]]);
                }
                12 => out.extend_from_slice(&[0xd0, 0]),
                _ => self.closed = true,
            }
        }
        Ok(pos)
    }

    fn connect(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut buf = BytesMut::from(packet);
        let decoded = codec::decode(&mut buf, ProtocolVersion::V5, MAX_HELD_PACKET as u32)
            .map_err(|error| format!("bad CONNECT: {error}"))?;
        let Some(Packet::Connect(connect)) = decoded else {
            return Err("bad CONNECT".into());
        };
        let version = connect.protocol;
        self.version = Some(version);
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode::SUCCESS,
            ..ConnAck::default()
        });
        let mut encoded = BytesMut::new();
        codec::encode(&connack, version, &mut encoded).map_err(|error| error.to_string())?;
        out.extend_from_slice(&encoded);
        Ok(())
    }
}

/// Serves one connection until the peer closes it or sends DISCONNECT.
pub async fn serve_connection(mut stream: TcpStream) -> io::Result<SinkState> {
    let _ = stream.set_nodelay(true);
    let mut state = SinkState::default();
    let mut buffer = vec![0u8; READ_SIZE];
    let mut filled = 0;
    let mut out = Vec::with_capacity(256);
    loop {
        if filled == buffer.len() {
            // A held packet larger than the buffer (rare): grow.
            buffer.resize(buffer.len() * 2, 0);
        }
        let read = stream.read(&mut buffer[filled..]).await?;
        if read == 0 {
            return Ok(state);
        }
        filled += read;
        let consumed = state
            .feed(&buffer[..filled], &mut out)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if state.closed {
            return Ok(state);
        }
        buffer.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
}

/// Accepts connections forever, one task each.
pub async fn serve(listener: TcpListener, verbose: bool) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            match serve_connection(stream).await {
                Ok(state) if verbose => {
                    eprintln!("sink: {peer} closed after {} publishes", state.publishes)
                }
                Ok(_) => {}
                Err(error) if verbose => eprintln!("sink: {peer}: {error}"),
                Err(_) => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zmqtt_proto::{Connect, Publish, QoS};

    fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
        let mut buf = BytesMut::new();
        codec::encode(packet, version, &mut buf).unwrap();
        buf.to_vec()
    }

    fn connect(version: ProtocolVersion) -> Vec<u8> {
        encode(
            &Packet::Connect(Box::new(Connect {
                protocol: version,
                client_id: "c".into(),
                keep_alive: 60,
                clean_start: true,
                ..Connect::default()
            })),
            version,
        )
    }

    fn publish(qos: QoS, payload: usize) -> Vec<u8> {
        encode(
            &Packet::Publish(Publish {
                topic: "a/b".into(),
                qos,
                packet_id: (qos != QoS::AtMostOnce).then_some(7),
                payload: vec![1u8; payload].into(),
                ..Publish::default()
            }),
            ProtocolVersion::V311,
        )
    }

    #[test]
    fn answers_connect_in_its_version() {
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let mut state = SinkState::default();
            let mut out = Vec::new();
            let bytes = connect(version);
            assert_eq!(state.feed(&bytes, &mut out).unwrap(), bytes.len());
            let mut answer = BytesMut::from(&out[..]);
            let packet = codec::decode(&mut answer, version, 1 << 20).unwrap();
            assert!(
                matches!(packet, Some(Packet::ConnAck(ack)) if ack.code == ReasonCode::SUCCESS)
            );
            assert_eq!(state.version, Some(version));
        }
    }

    #[test]
    fn skips_qos0_across_reads_and_acks_qos1() {
        let mut state = SinkState::default();
        let mut out = Vec::new();
        let mut stream = connect(ProtocolVersion::V311);
        stream.extend(publish(QoS::AtMostOnce, 300));
        stream.extend(publish(QoS::AtMostOnce, 64));
        stream.extend(publish(QoS::AtLeastOnce, 64));
        stream.extend([0xc0, 0]);
        // Feed in awkward pieces, keeping unconsumed bytes as the server does.
        let mut held: Vec<u8> = Vec::new();
        for piece in stream.chunks(37) {
            held.extend_from_slice(piece);
            let consumed = state.feed(&held, &mut out).unwrap();
            held.drain(..consumed);
        }
        assert!(held.is_empty());
        assert_eq!(state.publishes, 3);
        // CONNACK (4 bytes), PUBACK id 7, PINGRESP.
        assert_eq!(&out[4..], &[0x40, 2, 0, 7, 0xd0, 0]);
    }
}
