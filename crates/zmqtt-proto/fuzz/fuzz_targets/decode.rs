//! The decoder fed arbitrary bytes: it must never panic, never read out of
//! bounds, and everything it accepts must encode again to a packet that decodes
//! to the same value.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use zmqtt_proto::codec::{decode, encode};
use zmqtt_proto::ProtocolVersion;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the protocol version and a packet size limit, so
    // both versions and the size check are explored.
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let version = if selector & 1 == 0 {
        ProtocolVersion::V311
    } else {
        ProtocolVersion::V5
    };
    let max_packet_size = if selector & 2 == 0 { u32::MAX } else { 64 };
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(packet)) = decode(&mut buf, version, max_packet_size) {
        let mut encoded = BytesMut::new();
        // CONNECT carries its own version; everything else uses the connection's.
        let packet_version = match &packet {
            zmqtt_proto::Packet::Connect(connect) => connect.protocol,
            _ => version,
        };
        encode(&packet, packet_version, &mut encoded).expect("a decoded packet encodes");
        let again = decode(&mut encoded, packet_version, u32::MAX)
            .expect("re-encoded packet decodes")
            .expect("re-encoded packet is complete");
        assert_eq!(again, packet);
        assert!(encoded.is_empty());
    }
});
