//! Session tests against a scripted broker in memory with simulated time.
//!
//! [`Broker`] plays the server: it encodes packets with `codec::encode` and
//! feeds them to the session, decodes what the session transmits with
//! `codec::decode`, and moves `now` by hand.

mod connect;
mod errors;
mod incoming;
mod keepalive;
mod outgoing;
mod proptests;
mod resume;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::packet::*;

/// A scripted broker driving one [`ClientSession`].
pub(super) struct Broker {
    pub session: ClientSession,
    pub now: Instant,
    pub start: Instant,
}

impl Broker {
    pub fn new(config: SessionConfig) -> Self {
        let start = Instant::now();
        Broker {
            session: ClientSession::new(config).unwrap(),
            now: start,
            start,
        }
    }

    pub fn v311() -> Self {
        Broker::new(SessionConfig::new(ProtocolVersion::V311, "client"))
    }

    pub fn v5() -> Self {
        Broker::new(SessionConfig::new(ProtocolVersion::V5, "client"))
    }

    pub fn version(&self) -> ProtocolVersion {
        self.session.protocol()
    }

    /// Moves simulated time forward.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Seconds since the start, for readable assertions.
    pub fn at(&self, secs: u64) -> Instant {
        self.start + Duration::from_secs(secs)
    }

    /// Moves time and lets the session act on its deadlines.
    pub fn advance_and_tick(&mut self, by: Duration) {
        self.advance(by);
        self.session.handle_timeout(self.now);
    }

    /// Opens a transport and returns the CONNECT the session sent.
    pub fn open(&mut self) -> Connect {
        self.session.handle_transport_open(self.now);
        match self.sent().as_slice() {
            [Packet::Connect(connect)] => (**connect).clone(),
            other => panic!("expected one CONNECT, got {other:?}"),
        }
    }

    /// Opens a transport and answers CONNACK; returns the negotiated values.
    /// Events up to and including `Connected` are consumed.
    pub fn connect_with(&mut self, connack: ConnAck) -> Negotiated {
        self.open();
        self.feed(Packet::ConnAck(connack));
        loop {
            match self.session.poll_event() {
                Some(Event::Connected { negotiated, .. }) => return *negotiated,
                Some(_) => continue,
                None => panic!("no Connected event"),
            }
        }
    }

    /// Connects with a plain accepting CONNACK.
    pub fn connect(&mut self) -> Negotiated {
        self.connect_with(ConnAck::default())
    }

    /// Connects with 5.0 CONNACK properties.
    pub fn connect_props(&mut self, properties: ConnAckProperties) -> Negotiated {
        self.connect_with(ConnAck {
            properties,
            ..ConnAck::default()
        })
    }

    /// The broker sends `packet`.
    pub fn feed(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        crate::codec::encode(&packet, self.version(), &mut buf).unwrap();
        self.session.handle_received(self.now, &mut buf);
        assert!(
            buf.is_empty() || !self.session.is_live(),
            "left bytes behind"
        );
    }

    /// The broker sends raw bytes.
    pub fn feed_bytes(&mut self, bytes: &[u8]) -> BytesMut {
        let mut buf = BytesMut::from(bytes);
        self.session.handle_received(self.now, &mut buf);
        buf
    }

    /// Everything the session transmitted since the last call, decoded.
    pub fn sent(&mut self) -> Vec<Packet> {
        let mut buf = BytesMut::new();
        self.session.poll_transmit(&mut buf);
        let mut packets = Vec::new();
        while !buf.is_empty() {
            match crate::codec::decode(&mut buf, self.version(), PROTOCOL_MAX_PACKET_SIZE) {
                Ok(Some(packet)) => packets.push(packet),
                other => panic!("session sent undecodable bytes: {other:?}"),
            }
        }
        packets
    }

    /// Every event since the last call.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// Publishes and returns the request id (QoS 1/2).
    pub fn publish(&mut self, topic: &str, qos: QoS) -> RequestId {
        self.session
            .publish(self.now, publish_to(topic, qos))
            .unwrap()
            .expect("QoS 1/2 publish has a request id")
    }

    /// The broker delivers a message; returns the event's token.
    pub fn deliver(&mut self, topic: &str, qos: QoS, packet_id: u16) -> Option<AckToken> {
        let mut publish = publish_to(topic, qos);
        publish.packet_id = (qos != QoS::AtMostOnce).then_some(packet_id);
        self.feed(Packet::Publish(publish));
        match self.events().as_slice() {
            [Event::Message { ack, .. }] => *ack,
            other => panic!("expected one Message, got {other:?}"),
        }
    }

    /// The last event must be `Closed`; returns its reason.
    pub fn closed_reason(&mut self) -> CloseReason {
        match self.events().pop() {
            Some(Event::Closed { reason }) => reason,
            other => panic!("expected Closed last, got {other:?}"),
        }
    }

    /// Asserts the internal invariants of the session.
    pub fn check(&self) {
        self.session.check_invariants();
    }
}

/// A PUBLISH to `topic` with a small payload.
pub(super) fn publish_to(topic: &str, qos: QoS) -> Publish {
    Publish {
        topic: topic.to_owned(),
        qos,
        payload: Bytes::from_static(b"payload"),
        ..Publish::default()
    }
}

pub(super) fn puback(packet_id: u16) -> Packet {
    Packet::PubAck(response(packet_id, ReasonCode::SUCCESS))
}

pub(super) fn pubrec(packet_id: u16) -> Packet {
    Packet::PubRec(response(packet_id, ReasonCode::SUCCESS))
}

pub(super) fn pubrel(packet_id: u16) -> Packet {
    Packet::PubRel(response(packet_id, ReasonCode::SUCCESS))
}

pub(super) fn pubcomp(packet_id: u16) -> Packet {
    Packet::PubComp(response(packet_id, ReasonCode::SUCCESS))
}

pub(super) fn response(packet_id: u16, reason_code: ReasonCode) -> PubResponse {
    PubResponse {
        packet_id,
        reason_code,
        properties: ReasonProperties::default(),
    }
}

/// The packet identifier of a PUBLISH the session sent.
pub(super) fn sent_publish(packet: &Packet) -> &Publish {
    match packet {
        Packet::Publish(publish) => publish,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

pub(super) fn sent_publish_id(packet: &Packet) -> u16 {
    sent_publish(packet).packet_id.expect("QoS > 0")
}

/// The completion events of publishes, as (request, reason code or error).
pub(super) fn completions(events: &[Event]) -> Vec<(RequestId, Result<ReasonCode, ReasonCode>)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::PublishCompleted { id, result } => Some((
                *id,
                result
                    .as_ref()
                    .map(|ack| ack.reason_code)
                    .map_err(|rejected| rejected.reason_code),
            )),
            _ => None,
        })
        .collect()
}

impl ClientSession {
    /// Panics when an internal invariant does not hold.
    pub(crate) fn check_invariants(&self) {
        // Every held packet id belongs to exactly one outgoing flow.
        for id in self.outgoing.keys() {
            assert!(self.ids.contains(*id), "publish id {id} not held");
            assert!(!self.requests.contains_key(id), "id {id} used twice");
        }
        for id in self.requests.keys() {
            assert!(self.ids.contains(*id), "request id {id} not held");
        }
        assert_eq!(
            self.ids.in_use(),
            self.outgoing.len() + self.requests.len(),
            "held ids match pending flows"
        );
        for (id, entry) in &self.outgoing {
            assert_eq!(entry.publish.packet_id, Some(*id));
        }
        // The send quota.
        let in_window = self.outgoing.values().filter(|e| e.in_window).count();
        assert_eq!(in_window, self.in_window);
        if let Some(negotiated) = &self.negotiated {
            assert!(self.in_window <= usize::from(negotiated.receive_maximum));
        }
        if self.state != SessionState::Connected {
            assert_eq!(self.in_window, 0);
        }
        let mut seen = std::collections::HashSet::new();
        for id in &self.waiting {
            assert!(seen.insert(*id), "id {id} waits twice");
            let entry = self.outgoing.get(id).expect("waiting id is pending");
            assert!(!entry.in_window);
        }
        // Our Receive Maximum (5.0) limits the flows of this connection.
        let this_connection = self
            .incoming
            .values()
            .filter(|state| match state {
                IncomingState::Qos2Received {
                    this_connection, ..
                } => *this_connection,
                _ => true,
            })
            .count();
        assert_eq!(this_connection, self.incoming_quota_used);
        if self.config.protocol == ProtocolVersion::V5 {
            assert!(self.incoming_quota_used <= usize::from(self.config.receive_maximum()));
        }
        if self.state != SessionState::Connected {
            assert!(self.ack_queue.is_empty());
        }
        // Every unsent ack is for an id still in flight.
        for slot in &self.ack_queue {
            if slot.kind != AckKind::PubrecAgain {
                assert!(self.incoming.contains_key(&slot.packet_id));
            }
        }
        let owed = self
            .ack_queue
            .iter()
            .filter(|slot| slot.kind != AckKind::PubrecAgain)
            .count();
        assert!(owed <= self.incoming.len());
    }
}
