//! A client session driven by arbitrary input: broker bytes, user commands,
//! acknowledgements, time passing, reconnects. It must never panic, everything
//! it transmits must decode, and it must stay within its own limits.
#![no_main]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zmqtt_proto::codec::decode;
use zmqtt_proto::session::{AckToken, ClientSession, Event, SessionConfig, SessionState};
use zmqtt_proto::{
    ConnectProperties, Disconnect, ProtocolVersion, Publish, QoS, SubscribeFilter,
    SubscribeProperties, SubscriptionOptions, UnsubscribeProperties,
};

/// Reads the fuzz input as a stream of small decisions.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(setup) = input.byte() else { return };
    let version = if setup & 1 == 0 {
        ProtocolVersion::V311
    } else {
        ProtocolVersion::V5
    };
    let mut config = SessionConfig::new(version, "fuzz");
    config.keep_alive = u16::from(setup >> 4);
    config.clean_start = setup & 2 != 0;
    if version == ProtocolVersion::V5 {
        config.connect_properties = ConnectProperties {
            receive_maximum: Some(u16::from(setup >> 5) + 1),
            topic_alias_maximum: Some(u16::from(setup >> 6)),
            maximum_packet_size: Some(512),
            ..ConnectProperties::default()
        };
    }
    let Ok(mut session) = ClientSession::new(config) else {
        return;
    };
    let receive_maximum = session.config().receive_maximum();

    let start = Instant::now();
    let mut now = start;
    let mut tokens: Vec<AckToken> = Vec::new();
    let mut wire = BytesMut::new();
    session.handle_transport_open(now);

    while let Some(op) = input.byte() {
        match op % 12 {
            // Broker bytes, arbitrary (usually rejected) or a canned CONNACK.
            0..=2 => {
                let len = usize::from(input.byte().unwrap_or(0));
                let mut from_broker = BytesMut::from(input.bytes(len));
                session.handle_received(now, &mut from_broker);
            }
            3 => {
                let session_present = input.byte().unwrap_or(0) & 1;
                let connack: &[u8] = match version {
                    ProtocolVersion::V311 => &[0x20, 0x02, session_present, 0x00],
                    ProtocolVersion::V5 => &[0x20, 0x03, session_present, 0x00, 0x00],
                };
                session.handle_received(now, &mut BytesMut::from(connack));
            }
            4 => {
                let flags = input.byte().unwrap_or(0);
                let topic_len = usize::from(flags >> 4);
                let topic = String::from_utf8_lossy(input.bytes(topic_len)).into_owned();
                let publish = Publish {
                    qos: QoS::from_u8(flags % 3).unwrap_or_default(),
                    retain: flags & 4 != 0,
                    topic,
                    payload: Bytes::copy_from_slice(input.bytes(usize::from(flags & 0x0F))),
                    ..Publish::default()
                };
                let _ = session.publish(now, publish);
            }
            5 => {
                let len = usize::from(input.byte().unwrap_or(0) & 0x0F);
                let filter = String::from_utf8_lossy(input.bytes(len)).into_owned();
                let options = SubscriptionOptions {
                    qos: QoS::from_u8(input.byte().unwrap_or(0) % 3).unwrap_or_default(),
                    ..SubscriptionOptions::default()
                };
                let _ = session.subscribe(
                    now,
                    vec![SubscribeFilter { filter, options }],
                    SubscribeProperties::default(),
                );
            }
            6 => {
                let len = usize::from(input.byte().unwrap_or(0) & 0x0F);
                let filter = String::from_utf8_lossy(input.bytes(len)).into_owned();
                let _ = session.unsubscribe(now, vec![filter], UnsubscribeProperties::default());
            }
            7 => {
                // Acknowledge some delivered message, in any order, maybe twice.
                if !tokens.is_empty() {
                    let pick = usize::from(input.byte().unwrap_or(0)) % tokens.len();
                    let token = tokens.swap_remove(pick);
                    session.acknowledge(now, token);
                    if input.byte().unwrap_or(0) & 1 == 1 {
                        session.acknowledge(now, token);
                    }
                }
            }
            8 => {
                now += Duration::from_millis(u64::from(input.byte().unwrap_or(0)) * 250);
                session.handle_timeout(now);
            }
            9 => {
                let _ = session.ping(now);
            }
            10 => {
                // The transport drops; reconnect on the same session.
                session.handle_transport_closed(now);
                tokens.clear();
                session.handle_transport_open(now);
            }
            _ => {
                let _ = session.disconnect(now, Disconnect::default());
            }
        }

        while let Some(event) = session.poll_event() {
            if let Event::Message { ack: Some(token), .. } = event {
                tokens.push(token);
            }
        }
        if let Some(deadline) = session.poll_timeout() {
            assert!(deadline >= start, "deadline before the session started");
        }
        // Everything the session sends must be a valid packet of its version.
        session.poll_transmit(&mut wire);
        while !wire.is_empty() {
            match decode(&mut wire, version, u32::MAX) {
                Ok(Some(_)) => {}
                other => panic!("session transmitted an undecodable packet: {other:?}"),
            }
        }
        if version == ProtocolVersion::V5 && session.state() == SessionState::Connected {
            assert!(session.unacknowledged_incoming() <= usize::from(receive_maximum));
        }
        if session.state() == SessionState::Closed {
            session.handle_transport_closed(now);
            tokens.clear();
            session.handle_transport_open(now);
        }
    }
});
