//! Session resume: resend with DUP and the same ids, PUBREL phase, quota on
//! resends, failure when the broker lost the session.

use super::*;

fn persistent(version: ProtocolVersion) -> Broker {
    Broker::new(SessionConfig {
        clean_start: false,
        ..SessionConfig::new(version, "c")
    })
}

fn resumed() -> ConnAck {
    ConnAck {
        session_present: true,
        ..ConnAck::default()
    }
}

/// Publishes A (QoS 1), B (QoS 2, PUBREC received), C (QoS 1), then loses the
/// transport. Returns the request ids and packet ids.
fn three_in_flight(broker: &mut Broker) -> ([RequestId; 3], [u16; 3]) {
    broker.connect();
    let a = broker.publish("a", QoS::AtLeastOnce);
    let b = broker.publish("b", QoS::ExactlyOnce);
    let c = broker.publish("c", QoS::AtLeastOnce);
    let sent = broker.sent();
    let ids = [
        sent_publish_id(&sent[0]),
        sent_publish_id(&sent[1]),
        sent_publish_id(&sent[2]),
    ];
    broker.feed(pubrec(ids[1]));
    assert!(matches!(broker.sent().as_slice(), [Packet::PubRel(_)]));
    broker.session.handle_transport_closed(broker.now);
    assert_eq!(
        broker.events(),
        vec![Event::Closed {
            reason: CloseReason::TransportClosed
        }],
        "publishes survive the connection"
    );
    assert_eq!(broker.session.pending_publishes(), 3);
    broker.check();
    ([a, b, c], ids)
}

#[test]
fn resumed_session_resends_in_order_with_dup_and_same_ids_mqtt_4_4_0_1_mqtt_3_3_1_1() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut broker = persistent(version);
        let ([a, b, c], ids) = three_in_flight(&mut broker);
        broker.connect_with(resumed());
        let sent = broker.sent();
        assert_eq!(sent.len(), 3, "{sent:?}");
        let first = sent_publish(&sent[0]);
        assert_eq!(
            (first.topic.as_str(), first.packet_id, first.dup),
            ("a", Some(ids[0]), true)
        );
        // MQTT-4.6.0-1 order; the QoS 2 flow resumes at PUBREL.
        assert_eq!(
            sent[1],
            Packet::PubRel(response(ids[1], ReasonCode::SUCCESS))
        );
        let third = sent_publish(&sent[2]);
        assert_eq!(
            (third.topic.as_str(), third.packet_id, third.dup),
            ("c", Some(ids[2]), true)
        );
        assert_eq!(third.payload, Bytes::from_static(b"payload"));

        broker.feed(puback(ids[2]));
        broker.feed(pubcomp(ids[1]));
        broker.feed(puback(ids[0]));
        assert_eq!(
            completions(&broker.events()),
            vec![
                (c, Ok(ReasonCode::SUCCESS)),
                (b, Ok(ReasonCode::SUCCESS)),
                (a, Ok(ReasonCode::SUCCESS))
            ]
        );
        assert_eq!(broker.session.available_packet_ids(), 65535);
        broker.check();
    }
}

#[test]
fn resends_respect_the_new_receive_maximum() {
    let mut broker = persistent(ProtocolVersion::V5);
    let (_, ids) = three_in_flight(&mut broker);
    broker.connect_with(ConnAck {
        session_present: true,
        properties: ConnAckProperties {
            receive_maximum: Some(1),
            ..ConnAckProperties::default()
        },
        ..ConnAck::default()
    });
    let sent = broker.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent_publish_id(&sent[0]), ids[0]);
    assert_eq!(broker.session.waiting_publishes(), 2);
    broker.feed(puback(ids[0]));
    assert_eq!(
        broker.sent(),
        vec![Packet::PubRel(response(ids[1], ReasonCode::SUCCESS))]
    );
    broker.feed(pubcomp(ids[1]));
    let sent = broker.sent();
    assert_eq!(sent_publish_id(&sent[0]), ids[2]);
    assert!(sent_publish(&sent[0]).dup);
    broker.check();
}

#[test]
fn publishes_never_sent_go_out_without_dup_after_resume() {
    let mut broker = persistent(ProtocolVersion::V5);
    broker.connect_props(ConnAckProperties {
        receive_maximum: Some(1),
        ..ConnAckProperties::default()
    });
    broker.publish("sent", QoS::AtLeastOnce);
    broker.publish("waiting", QoS::AtLeastOnce);
    assert_eq!(broker.sent().len(), 1);
    broker.session.handle_transport_closed(broker.now);
    broker.connect_with(resumed());
    let sent = broker.sent();
    assert_eq!(sent.len(), 2);
    assert!(sent_publish(&sent[0]).dup);
    assert_eq!(sent_publish(&sent[1]).topic, "waiting");
    assert!(!sent_publish(&sent[1]).dup, "it was never sent before");
}

#[test]
fn lost_session_fails_sent_publishes_and_sends_unsent_ones() {
    let mut broker = persistent(ProtocolVersion::V311);
    broker.connect_props(ConnAckProperties::default());
    let sent_one = broker.publish("sent", QoS::AtLeastOnce);
    let released = broker.publish("released", QoS::ExactlyOnce);
    let sent = broker.sent();
    broker.feed(pubrec(sent_publish_id(&sent[1])));
    broker.sent();
    broker.session.handle_transport_closed(broker.now);
    broker.events();
    // A fresh session: the broker does not know them.
    broker.open();
    broker.feed(Packet::ConnAck(ConnAck::default()));
    let events = broker.events();
    assert!(matches!(events[0], Event::Connected { .. }));
    assert_eq!(
        events[1..],
        [
            Event::RequestFailed {
                id: sent_one,
                error: RequestError::SessionLost
            },
            Event::RequestFailed {
                id: released,
                error: RequestError::SessionLost
            }
        ]
    );
    assert!(broker.sent().is_empty());
    assert_eq!(broker.session.pending_publishes(), 0);
    assert_eq!(broker.session.available_packet_ids(), 65535);
    broker.check();

    // Never-sent publishes are not lost: they go out on the new session.
    let mut broker = persistent(ProtocolVersion::V5);
    broker.connect_props(ConnAckProperties {
        receive_maximum: Some(1),
        ..ConnAckProperties::default()
    });
    let first = broker.publish("first", QoS::AtLeastOnce);
    let second = broker.publish("second", QoS::AtLeastOnce);
    broker.sent();
    broker.session.handle_transport_closed(broker.now);
    broker.events();
    broker.connect();
    let events = broker.events();
    assert_eq!(
        events,
        vec![Event::RequestFailed {
            id: first,
            error: RequestError::SessionLost
        }]
    );
    let sent = broker.sent();
    assert_eq!(sent_publish(&sent[0]).topic, "second");
    assert!(!sent_publish(&sent[0]).dup);
    broker.feed(puback(sent_publish_id(&sent[0])));
    assert_eq!(
        completions(&broker.events()),
        vec![(second, Ok(ReasonCode::SUCCESS))]
    );
}

#[test]
fn incoming_qos2_state_survives_a_resumed_session() {
    let mut broker = persistent(ProtocolVersion::V5);
    broker.connect();
    let token = broker.deliver("a", QoS::ExactlyOnce, 3).unwrap();
    broker.session.acknowledge(broker.now, token);
    assert_eq!(broker.sent(), vec![pubrec(3)]);
    broker.session.handle_transport_closed(broker.now);
    broker.connect_with(resumed());
    // The broker may resend the PUBLISH (PUBREC lost): not delivered again.
    let mut again = publish_to("a", QoS::ExactlyOnce);
    again.packet_id = Some(3);
    again.dup = true;
    broker.feed(Packet::Publish(again));
    assert!(broker.events().is_empty());
    assert_eq!(broker.sent(), vec![pubrec(3)]);
    broker.feed(pubrel(3));
    assert_eq!(broker.sent(), vec![pubcomp(3)]);
}

#[test]
fn incoming_qos2_state_is_cleared_when_the_session_is_lost() {
    let mut broker = persistent(ProtocolVersion::V5);
    broker.connect();
    let token = broker.deliver("a", QoS::ExactlyOnce, 3).unwrap();
    broker.session.acknowledge(broker.now, token);
    broker.sent();
    broker.session.handle_transport_closed(broker.now);
    broker.connect();
    assert_eq!(broker.session.unacknowledged_incoming(), 0);
    // Id 3 is free again: a new message with it is delivered.
    assert!(broker.deliver("b", QoS::ExactlyOnce, 3).is_some());
}

#[test]
fn unacked_incoming_messages_do_not_survive_the_connection() {
    let mut broker = persistent(ProtocolVersion::V5);
    broker.connect();
    broker.deliver("a", QoS::ExactlyOnce, 3).unwrap();
    broker.deliver("b", QoS::AtLeastOnce, 4).unwrap();
    broker.session.handle_transport_closed(broker.now);
    assert_eq!(broker.session.unacknowledged_incoming(), 0);
    broker.connect_with(resumed());
    // Redelivered by the broker, delivered again with new tokens.
    assert!(broker.deliver("a", QoS::ExactlyOnce, 3).is_some());
    assert!(broker.deliver("b", QoS::AtLeastOnce, 4).is_some());
}

#[test]
fn resend_uses_the_full_topic_when_the_new_broker_takes_no_alias() {
    let mut broker = persistent(ProtocolVersion::V5);
    broker.connect_props(ConnAckProperties {
        topic_alias_maximum: Some(2),
        ..ConnAckProperties::default()
    });
    let mut set = publish_to("a/b", QoS::AtMostOnce);
    set.properties.topic_alias = Some(1);
    broker.session.publish(broker.now, set).unwrap();
    let mut alone = publish_to("", QoS::AtLeastOnce);
    alone.properties.topic_alias = Some(1);
    broker.session.publish(broker.now, alone).unwrap();
    let sent = broker.sent();
    assert_eq!(
        sent_publish(&sent[1]).topic,
        "",
        "alias alone on this connection"
    );
    broker.session.handle_transport_closed(broker.now);
    broker.connect_with(resumed());
    let sent = broker.sent();
    let resent = sent_publish(&sent[0]);
    assert_eq!(resent.topic, "a/b");
    assert_eq!(resent.properties.topic_alias, None);
    assert!(resent.dup);
}

#[test]
fn resend_that_no_longer_fits_the_broker_fails() {
    let mut broker = persistent(ProtocolVersion::V5);
    broker.connect();
    let mut big = publish_to("a", QoS::AtLeastOnce);
    big.payload = Bytes::from(vec![1u8; 500]);
    let id = broker.session.publish(broker.now, big).unwrap().unwrap();
    broker.sent();
    broker.session.handle_transport_closed(broker.now);
    broker.events();
    broker.open();
    broker.feed(Packet::ConnAck(ConnAck {
        session_present: true,
        properties: ConnAckProperties {
            maximum_packet_size: Some(100),
            ..ConnAckProperties::default()
        },
        ..ConnAck::default()
    }));
    let events = broker.events();
    assert!(matches!(
        events[1],
        Event::RequestFailed {
            id: failed,
            error: RequestError::PacketTooLarge { maximum: 100, .. }
        } if failed == id
    ));
    assert!(broker.sent().is_empty());
    broker.check();
}

#[test]
fn clear_session_fails_every_pending_publish() {
    let mut broker = persistent(ProtocolVersion::V311);
    let ([a, b, c], _) = three_in_flight(&mut broker);
    broker.session.clear_session();
    let failed = |id| Event::RequestFailed {
        id,
        error: RequestError::SessionCleared,
    };
    assert_eq!(broker.events(), vec![failed(a), failed(b), failed(c)]);
    assert_eq!(broker.session.pending_publishes(), 0);
    assert_eq!(broker.session.available_packet_ids(), 65535);
    broker.connect_with(resumed());
    assert!(broker.sent().is_empty());
    broker.check();
}
