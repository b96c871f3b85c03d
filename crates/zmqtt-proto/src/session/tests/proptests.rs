//! The session driven by a model broker that answers in random order, mixed
//! with arbitrary packets, random bytes, commands, reconnects and time. It must
//! never panic, only transmit decodable packets, never put a packet id in use
//! twice on the wire, keep the in-flight count within the broker's Receive
//! Maximum, and keep its internal invariants.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;
use crate::codec::strategies;

#[derive(Clone, Debug)]
enum Action {
    /// The model broker answers the n-th outstanding flow (any order).
    Respond {
        index: usize,
        fail: bool,
    },
    /// The model broker delivers a message with a free packet id.
    Deliver {
        qos: QoS,
        topic: usize,
        alias: Option<u16>,
    },
    /// The broker retransmits an earlier delivery (same id, DUP).
    Redeliver(usize),
    /// The broker sends an arbitrary well-formed packet.
    Chaos(Packet),
    /// The broker sends arbitrary bytes.
    Garbage(Vec<u8>),
    Publish {
        qos: QoS,
        topic: usize,
        alias: Option<u16>,
    },
    Subscribe,
    Unsubscribe,
    Ping,
    /// Acknowledge the n-th token received so far.
    Ack(usize),
    /// Abandon the n-th token received so far.
    Abandon(usize),
    /// The driver stops or resumes reading.
    PauseReceive(bool),
    Advance(u64),
    /// Transport lost, then a new connection with this CONNACK.
    Reconnect {
        session_present: bool,
        receive_maximum: u16,
    },
    TransportClosed,
    Disconnect,
    ClearSession,
}

const TOPICS: [&str; 3] = ["a", "b/c", ""];

/// Mostly no alias, mostly valid ones, sometimes 0 or above the maximum (2).
fn alias() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![
        8 => Just(None),
        3 => (1u16..=2).prop_map(Some),
        1 => (0u16..=3).prop_map(Some),
    ]
}

/// Arbitrary packets, minus answers to our outgoing flows: those the model
/// broker sends, and a random one could end a flow behind the model's back.
fn chaos(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    strategies::packet(version).prop_filter("not an answer to an outgoing flow", |p| {
        !matches!(
            p,
            Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubComp(_)
                | Packet::SubAck(_)
                | Packet::UnsubAck(_)
        )
    })
}

fn action(version: ProtocolVersion) -> impl Strategy<Value = Action> {
    prop_oneof![
        14 => (any::<usize>(), prop::bool::weighted(0.1))
            .prop_map(|(index, fail)| Action::Respond { index, fail }),
        6 => (strategies::qos(), 0usize..2, alias())
            .prop_map(|(qos, topic, alias)| Action::Deliver { qos, topic, alias }),
        1 => any::<usize>().prop_map(Action::Redeliver),
        1 => chaos(version).prop_map(Action::Chaos),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Action::Garbage),
        10 => (strategies::qos(), 0usize..3, alias())
            .prop_map(|(qos, topic, alias)| Action::Publish { qos, topic, alias }),
        2 => Just(Action::Subscribe),
        1 => Just(Action::Unsubscribe),
        1 => Just(Action::Ping),
        6 => any::<usize>().prop_map(Action::Ack),
        2 => any::<usize>().prop_map(Action::Abandon),
        1 => any::<bool>().prop_map(Action::PauseReceive),
        3 => (0u64..8).prop_map(Action::Advance),
        3 => (any::<bool>(), 1u16..=4).prop_map(|(session_present, receive_maximum)| {
            Action::Reconnect { session_present, receive_maximum }
        }),
        1 => Just(Action::TransportClosed),
        1 => Just(Action::Disconnect),
        1 => Just(Action::ClearSession),
    ]
}

fn scenario() -> impl Strategy<Value = (ProtocolVersion, Vec<Action>)> {
    strategies::version().prop_flat_map(|version| {
        (
            Just(version),
            prop::collection::vec(action(version), 1..120),
        )
    })
}

/// What the broker owes the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owed {
    PubAck(u16),
    PubRec(u16),
    PubComp(u16),
    SubAck(u16, usize),
    UnsubAck(u16),
    PingResp,
    /// PUBREL for a delivery the client PUBREC-ed.
    PubRel(u16),
}

impl Owed {
    /// The client-side packet id this answer completes, if an outgoing flow.
    fn client_flow_id(self) -> Option<u16> {
        match self {
            Owed::PubAck(id) | Owed::PubRec(id) | Owed::PubComp(id) => Some(id),
            Owed::SubAck(id, _) | Owed::UnsubAck(id) => Some(id),
            Owed::PingResp | Owed::PubRel(_) => None,
        }
    }

    fn is_publish_flow(self) -> bool {
        matches!(self, Owed::PubAck(_) | Owed::PubRec(_) | Owed::PubComp(_))
    }
}

/// A broker that answers what it owes, when told to, in any order.
struct ModelBroker {
    version: ProtocolVersion,
    owed: Vec<Owed>,
    /// Our (the broker's) packet ids in use for deliveries.
    delivering: HashMap<u16, Publish>,
    /// Deliveries the client PUBREC-ed (PUBREL owed, again after a resume).
    received: HashSet<u16>,
    receive_maximum: u16,
    connected: bool,
}

impl ModelBroker {
    fn reset_connection(&mut self) {
        self.owed.clear();
        self.connected = false;
    }

    /// Learns from what the client sent; checks the wire-level invariants.
    fn observe(&mut self, sent: &[Packet]) {
        for packet in sent {
            match packet {
                Packet::Publish(publish) => {
                    assert_eq!(publish.packet_id.is_some(), publish.qos != QoS::AtMostOnce);
                    let Some(id) = publish.packet_id else {
                        continue;
                    };
                    // MQTT-2.3.1-2: a new flow never uses an id still in use.
                    let in_use: HashSet<u16> = self
                        .owed
                        .iter()
                        .filter_map(|o| o.client_flow_id())
                        .collect();
                    assert!(!in_use.contains(&id), "packet id {id} reused while in use");
                    self.owed.push(match publish.qos {
                        QoS::AtLeastOnce => Owed::PubAck(id),
                        _ => Owed::PubRec(id),
                    });
                }
                Packet::PubRel(rel) if rel.reason_code == ReasonCode::SUCCESS => {
                    self.owed.push(Owed::PubComp(rel.packet_id));
                }
                Packet::Subscribe(subscribe) => {
                    let in_use: HashSet<u16> = self
                        .owed
                        .iter()
                        .filter_map(|o| o.client_flow_id())
                        .collect();
                    assert!(!in_use.contains(&subscribe.packet_id));
                    self.owed
                        .push(Owed::SubAck(subscribe.packet_id, subscribe.filters.len()));
                }
                Packet::Unsubscribe(unsubscribe) => {
                    let in_use: HashSet<u16> = self
                        .owed
                        .iter()
                        .filter_map(|o| o.client_flow_id())
                        .collect();
                    assert!(!in_use.contains(&unsubscribe.packet_id));
                    self.owed.push(Owed::UnsubAck(unsubscribe.packet_id));
                }
                Packet::PingReq => self.owed.push(Owed::PingResp),
                Packet::PubAck(ack) => {
                    self.delivering.remove(&ack.packet_id);
                }
                Packet::PubRec(rec) => {
                    self.received.insert(rec.packet_id);
                    if !self.owed.contains(&Owed::PubRel(rec.packet_id)) {
                        self.owed.push(Owed::PubRel(rec.packet_id));
                    }
                }
                Packet::PubComp(comp) => {
                    self.delivering.remove(&comp.packet_id);
                    self.received.remove(&comp.packet_id);
                }
                Packet::Disconnect(_) => self.reset_connection(),
                _ => {}
            }
        }
        // MQTT-3.3.4-7: in-flight QoS 1/2 publishes within Receive Maximum.
        let in_flight = self.owed.iter().filter(|o| o.is_publish_flow()).count();
        if self.version == ProtocolVersion::V5 {
            assert!(
                in_flight <= usize::from(self.receive_maximum),
                "{in_flight} in flight, Receive Maximum {}",
                self.receive_maximum
            );
        }
    }

    /// The packet answering the n-th owed item.
    fn respond(&mut self, index: usize, fail: bool) -> Option<Packet> {
        if self.owed.is_empty() {
            return None;
        }
        let owed = self.owed.remove(index % self.owed.len());
        let v5 = self.version == ProtocolVersion::V5;
        let code = |failure: ReasonCode| {
            if fail && v5 {
                failure
            } else {
                ReasonCode::SUCCESS
            }
        };
        Some(match owed {
            Owed::PubAck(id) => Packet::PubAck(response(id, code(ReasonCode::NOT_AUTHORIZED))),
            Owed::PubRec(id) => {
                let code = code(ReasonCode::QUOTA_EXCEEDED);
                // A failed PUBREC ends the flow; a good one waits for PUBREL,
                // whose PUBCOMP is owed once it arrives.
                Packet::PubRec(response(id, code))
            }
            Owed::PubComp(id) => Packet::PubComp(response(id, ReasonCode::SUCCESS)),
            Owed::SubAck(id, count) => Packet::SubAck(SubAck {
                packet_id: id,
                reason_codes: vec![ReasonCode::GRANTED_QOS_1; count],
                properties: ReasonProperties::default(),
            }),
            Owed::UnsubAck(id) => Packet::UnsubAck(UnsubAck {
                packet_id: id,
                reason_codes: if v5 {
                    vec![ReasonCode::SUCCESS]
                } else {
                    vec![]
                },
                properties: ReasonProperties::default(),
            }),
            Owed::PingResp => Packet::PingResp,
            Owed::PubRel(id) => Packet::PubRel(response(id, ReasonCode::SUCCESS)),
        })
    }

    /// A new delivery with a free id, within our Receive Maximum of 3 on 5.0.
    fn deliver(&mut self, qos: QoS, topic: usize, alias: Option<u16>) -> Option<Packet> {
        let mut publish = publish_to(TOPICS[topic], qos);
        if self.version == ProtocolVersion::V5 {
            publish.properties.topic_alias = alias;
            if alias.is_some() && topic == 1 {
                publish.topic = String::new(); // alias alone
            }
        }
        if qos != QoS::AtMostOnce {
            if self.version == ProtocolVersion::V5 && self.delivering.len() >= 3 {
                return None;
            }
            let id = (1u16..=20).find(|id| !self.delivering.contains_key(id))?;
            publish.packet_id = Some(id);
            self.delivering.insert(id, publish.clone());
        }
        Some(Packet::Publish(publish))
    }
}

fn run(version: ProtocolVersion, actions: Vec<Action>) {
    let connect_properties = match version {
        ProtocolVersion::V5 => ConnectProperties {
            receive_maximum: Some(3),
            topic_alias_maximum: Some(2),
            session_expiry_interval: Some(60),
            ..ConnectProperties::default()
        },
        ProtocolVersion::V311 => ConnectProperties::default(),
    };
    let mut broker = Broker::new(SessionConfig {
        keep_alive: 10,
        clean_start: false,
        connect_properties,
        ..SessionConfig::new(version, "prop")
    });
    let mut model = ModelBroker {
        version,
        owed: Vec::new(),
        delivering: HashMap::new(),
        received: HashSet::new(),
        receive_maximum: 2,
        connected: false,
    };
    let connack = |session_present: bool, receive_maximum: u16| {
        let properties = match version {
            ProtocolVersion::V5 => ConnAckProperties {
                receive_maximum: Some(receive_maximum),
                topic_alias_maximum: Some(2),
                maximum_packet_size: Some(200),
                ..ConnAckProperties::default()
            },
            ProtocolVersion::V311 => ConnAckProperties::default(),
        };
        Packet::ConnAck(ConnAck {
            session_present,
            code: ReasonCode::SUCCESS,
            properties,
        })
    };
    broker.open();
    broker.feed(connack(false, model.receive_maximum));
    model.connected = true;
    let mut tokens: Vec<AckToken> = Vec::new();

    for action in actions {
        let now = broker.now;
        let mut to_session: Option<Packet> = None;
        match action {
            Action::Respond { index, fail } => to_session = model.respond(index, fail),
            Action::Deliver { qos, topic, alias } => {
                to_session = model.deliver(qos, topic, alias);
            }
            Action::Redeliver(index) => {
                let mut ids: Vec<u16> = model.delivering.keys().copied().collect();
                ids.sort_unstable();
                if let Some(id) = ids.get(index % ids.len().max(1)) {
                    let mut again = model.delivering[id].clone();
                    again.dup = true;
                    to_session = Some(Packet::Publish(again));
                }
            }
            Action::Chaos(packet) => to_session = Some(packet),
            Action::Garbage(bytes) => {
                broker.feed_bytes(&bytes);
            }
            Action::Publish { qos, topic, alias } => {
                let mut publish = publish_to(TOPICS[topic], qos);
                if version == ProtocolVersion::V5 {
                    publish.properties.topic_alias = alias;
                }
                let _ = broker.session.publish(now, publish);
            }
            Action::Subscribe => {
                let filters = vec![SubscribeFilter {
                    filter: "a/#".into(),
                    options: SubscriptionOptions::default(),
                }];
                let _ = broker
                    .session
                    .subscribe(now, filters, SubscribeProperties::default());
            }
            Action::Unsubscribe => {
                let _ = broker.session.unsubscribe(
                    now,
                    vec!["a/#".into()],
                    UnsubscribeProperties::default(),
                );
            }
            Action::Ping => {
                let _ = broker.session.ping(now);
            }
            Action::Ack(index) => {
                if !tokens.is_empty() {
                    let token = tokens[index % tokens.len()];
                    broker.session.acknowledge(now, token);
                }
            }
            Action::Abandon(index) => {
                if !tokens.is_empty() {
                    let token = tokens[index % tokens.len()];
                    broker.session.abandon(now, token);
                }
            }
            Action::PauseReceive(paused) => broker.session.set_receive_paused(now, paused),
            Action::Advance(secs) => broker.advance_and_tick(Duration::from_secs(secs)),
            Action::Reconnect {
                session_present,
                receive_maximum,
            } => {
                broker.session.handle_transport_closed(now);
                model.reset_connection();
                broker.sent();
                broker.session.handle_transport_open(now);
                model.receive_maximum = receive_maximum;
                if session_present {
                    let mut received: Vec<u16> = model.received.iter().copied().collect();
                    received.sort_unstable();
                    model.owed.extend(received.into_iter().map(Owed::PubRel));
                } else {
                    model.delivering.clear();
                    model.received.clear();
                }
                model.observe(&broker.sent());
                to_session = Some(connack(session_present, receive_maximum));
                model.connected = true;
            }
            Action::TransportClosed => {
                broker.session.handle_transport_closed(now);
                model.reset_connection();
            }
            Action::Disconnect => {
                let _ = broker.session.disconnect(now, Disconnect::default());
            }
            Action::ClearSession => {
                broker.session.clear_session();
                // The model forgets those flows too (their ids are free again).
                model.owed.retain(|o| !o.is_publish_flow());
            }
        }
        if let Some(packet) = to_session {
            let mut buf = BytesMut::new();
            if crate::codec::encode(&packet, version, &mut buf).is_ok() {
                broker.session.handle_received(now, &mut buf);
            }
        }
        for event in broker.events() {
            if let Event::Message {
                ack: Some(token), ..
            } = event
            {
                tokens.push(token);
            }
        }
        if broker.session.state() != SessionState::Connected {
            // The model broker also drops its per-connection state.
            let sent = broker.sent();
            model.observe(&sent);
            model.reset_connection();
        } else {
            let sent = broker.sent();
            model.observe(&sent);
        }
        broker.check();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn session_survives_arbitrary_input((version, actions) in scenario()) {
        run(version, actions);
    }
}
