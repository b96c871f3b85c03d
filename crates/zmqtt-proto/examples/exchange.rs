//! The engine on its own: a client session talks to a small scripted broker in
//! memory (connect, subscribe, publish at QoS 0/1/2, receive its own messages,
//! ping, disconnect). Every packet is printed as decoded and as bytes.
//!
//! Run with `cargo run -p zmqtt-proto --example exchange [-- 3.1.1|5.0]`.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zmqtt_proto::codec::{decode, encode};
use zmqtt_proto::session::{ClientSession, Event, SessionConfig};
use zmqtt_proto::{
    ConnAck, Disconnect, Packet, ProtocolVersion, PubResponse, Publish, PublishProperties, QoS,
    ReasonCode, SubAck, SubscribeFilter, SubscribeProperties, SubscriptionOptions,
};

/// A broker that answers each packet the way a real one would, for one client
/// subscribed to everything it publishes.
struct ScriptedBroker {
    version: ProtocolVersion,
    next_packet_id: u16,
}

impl ScriptedBroker {
    fn answer(&mut self, packet: &Packet) -> Vec<Packet> {
        match packet {
            Packet::Connect(_) => vec![Packet::ConnAck(ConnAck::default())],
            Packet::Subscribe(subscribe) => vec![Packet::SubAck(SubAck {
                packet_id: subscribe.packet_id,
                reason_codes: subscribe
                    .filters
                    .iter()
                    .map(|f| ReasonCode(f.options.qos as u8))
                    .collect(),
                ..SubAck::default()
            })],
            Packet::Publish(publish) => {
                let mut replies = Vec::new();
                let ack = |packet_id| PubResponse {
                    packet_id,
                    ..PubResponse::default()
                };
                match (publish.qos, publish.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => replies.push(Packet::PubAck(ack(id))),
                    (QoS::ExactlyOnce, Some(id)) => replies.push(Packet::PubRec(ack(id))),
                    _ => {}
                }
                // Deliver it back to the (only) subscriber.
                let packet_id = (publish.qos != QoS::AtMostOnce).then(|| {
                    self.next_packet_id += 1;
                    self.next_packet_id
                });
                replies.push(Packet::Publish(Publish {
                    dup: false,
                    packet_id,
                    ..publish.clone()
                }));
                replies
            }
            Packet::PubRel(rel) => vec![Packet::PubComp(PubResponse {
                packet_id: rel.packet_id,
                ..PubResponse::default()
            })],
            Packet::PubRec(rec) => vec![Packet::PubRel(PubResponse {
                packet_id: rec.packet_id,
                ..PubResponse::default()
            })],
            Packet::PingReq => vec![Packet::PingResp],
            _ => Vec::new(),
        }
    }
}

fn show(direction: &str, bytes: &[u8], packet: &Packet) {
    let hex: Vec<String> = bytes.iter().take(48).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 48 { " …" } else { "" };
    println!("{direction} {packet:?}");
    println!("      [{} bytes] {}{more}", bytes.len(), hex.join(" "));
}

/// Moves everything the client has to send to the broker and the answers back,
/// until both sides are quiet. Returns the client's events.
fn pump(
    client: &mut ClientSession,
    broker: &mut ScriptedBroker,
    now: Instant,
) -> Result<Vec<Event>, Box<dyn std::error::Error>> {
    let version = broker.version;
    let mut events = Vec::new();
    loop {
        let mut to_broker = BytesMut::new();
        client.poll_transmit(&mut to_broker);
        while let Some(event) = client.poll_event() {
            if let Event::Message {
                ack: Some(token), ..
            } = &event
            {
                client.acknowledge(now, *token);
            }
            events.push(event);
        }
        client.poll_transmit(&mut to_broker);
        if to_broker.is_empty() {
            return Ok(events);
        }
        let mut to_client = BytesMut::new();
        while !to_broker.is_empty() {
            let before = to_broker.clone();
            let packet = decode(&mut to_broker, version, u32::MAX)?.ok_or("partial packet")?;
            show("C → B", &before[..before.len() - to_broker.len()], &packet);
            for reply in broker.answer(&packet) {
                let start = to_client.len();
                encode(&reply, version, &mut to_client)?;
                show("B → C", &to_client[start..], &reply);
            }
        }
        client.handle_received(now, &mut to_client);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let version = match std::env::args().nth(1).as_deref() {
        None | Some("5.0") => ProtocolVersion::V5,
        Some("3.1.1") => ProtocolVersion::V311,
        Some(other) => return Err(format!("unknown version {other:?}: use 3.1.1 or 5.0").into()),
    };
    println!("zmqtt-proto demo: a client session and a scripted broker, MQTT {version:?}\n");

    let mut client = ClientSession::new(SessionConfig::new(version, "zmqtt-demo"))?;
    let mut broker = ScriptedBroker {
        version,
        next_packet_id: 0,
    };
    // The engine never reads the clock: the caller passes the time in.
    let start = Instant::now();

    client.handle_transport_open(start);
    for event in pump(&mut client, &mut broker, start)? {
        println!("  event: {event:?}");
    }

    let filter = SubscribeFilter {
        filter: "demo/#".into(),
        options: SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            ..SubscriptionOptions::default()
        },
    };
    client.subscribe(start, vec![filter], SubscribeProperties::default())?;
    for event in pump(&mut client, &mut broker, start)? {
        println!("  event: {event:?}");
    }

    let mut received = 0;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let properties = match version {
            ProtocolVersion::V5 => PublishProperties {
                content_type: Some("text/plain".into()),
                ..PublishProperties::default()
            },
            ProtocolVersion::V311 => PublishProperties::default(),
        };
        client.publish(
            start,
            Publish {
                topic: format!("demo/qos{}", qos as u8),
                qos,
                payload: Bytes::from(format!("hello at {qos:?}")),
                properties,
                ..Publish::default()
            },
        )?;
        for event in pump(&mut client, &mut broker, start)? {
            if let Event::Message { publish, .. } = &event {
                received += 1;
                println!(
                    "  received on {:?}: {:?}",
                    publish.topic,
                    String::from_utf8_lossy(&publish.payload)
                );
            } else {
                println!("  event: {event:?}");
            }
        }
    }

    // Sixty idle seconds later the keepalive is due: the session sends PINGREQ.
    let later = start + Duration::from_secs(60);
    println!("\n(60 s pass without traffic)");
    client.handle_timeout(later);
    pump(&mut client, &mut broker, later)?;

    client.disconnect(later, Disconnect::default())?;
    pump(&mut client, &mut broker, later)?;
    println!(
        "\nreceived {received} of 3 messages; session state: {:?}",
        client.state()
    );
    if received != 3 {
        return Err("the demo did not receive all its messages".into());
    }
    Ok(())
}
