//! Incoming messages: acknowledgement tokens and their order, QoS 2 duplicate
//! suppression, our Receive Maximum, topic aliases.

use super::*;

fn v5_with(properties: ConnectProperties) -> Broker {
    let mut broker = Broker::new(SessionConfig {
        connect_properties: properties,
        ..SessionConfig::new(ProtocolVersion::V5, "c")
    });
    broker.connect();
    broker
}

#[test]
fn qos0_message_has_no_token_and_needs_no_ack() {
    let mut broker = Broker::v311();
    broker.connect();
    let mut publish = publish_to("a/b", QoS::AtMostOnce);
    publish.retain = true;
    broker.feed(Packet::Publish(publish.clone()));
    assert_eq!(broker.events(), vec![Event::Message { publish, ack: None }]);
    assert!(broker.sent().is_empty());
}

#[test]
fn qos1_auto_ack_sends_puback_at_once() {
    let mut broker = Broker::v311();
    broker.connect();
    let token = broker.deliver("a", QoS::AtLeastOnce, 7).unwrap();
    assert!(broker.sent().is_empty(), "no PUBACK before the ack");
    assert!(broker.session.acknowledge(broker.now, token));
    assert_eq!(broker.sent(), vec![puback(7)]);
    assert_eq!(broker.session.unacknowledged_incoming(), 0);
    // Acking again is a no-op.
    assert!(!broker.session.acknowledge(broker.now, token));
    assert!(broker.sent().is_empty());
    broker.check();
}

#[test]
fn acks_leave_in_publish_arrival_order_mqtt_4_6_0_2_and_4_6_0_3() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut broker = Broker::new(SessionConfig::new(version, "c"));
        broker.connect();
        let first = broker.deliver("a", QoS::AtLeastOnce, 10).unwrap();
        let second = broker.deliver("b", QoS::ExactlyOnce, 11).unwrap();
        let third = broker.deliver("c", QoS::AtLeastOnce, 12).unwrap();
        assert!(broker.session.acknowledge(broker.now, third));
        assert!(broker.session.acknowledge(broker.now, second));
        assert!(broker.sent().is_empty(), "held until the first is acked");
        // Given twice while held: still one ack.
        assert!(!broker.session.acknowledge(broker.now, third));
        assert!(broker.session.acknowledge(broker.now, first));
        assert_eq!(broker.sent(), vec![puback(10), pubrec(11), puback(12)]);
        broker.check();
    }
}

#[test]
fn qos2_pubrec_after_ack_and_pubcomp_on_pubrel() {
    let mut broker = Broker::v5();
    broker.connect();
    let token = broker.deliver("a", QoS::ExactlyOnce, 3).unwrap();
    assert!(broker.sent().is_empty());
    broker.session.acknowledge(broker.now, token);
    assert_eq!(broker.sent(), vec![pubrec(3)]);
    assert_eq!(broker.session.unacknowledged_incoming(), 1, "until PUBCOMP");
    broker.feed(pubrel(3));
    assert_eq!(broker.sent(), vec![pubcomp(3)]);
    assert_eq!(broker.session.unacknowledged_incoming(), 0);
    assert!(broker.events().is_empty());
}

#[test]
fn qos2_retransmission_before_ack_is_not_delivered_again_mqtt_4_3_3_9() {
    let mut broker = Broker::v311();
    broker.connect();
    let token = broker.deliver("a", QoS::ExactlyOnce, 3).unwrap();
    let mut again = publish_to("a", QoS::ExactlyOnce);
    again.packet_id = Some(3);
    again.dup = true;
    broker.feed(Packet::Publish(again));
    assert!(broker.events().is_empty(), "not delivered twice");
    assert!(broker.sent().is_empty());
    broker.session.acknowledge(broker.now, token);
    assert_eq!(broker.sent(), vec![pubrec(3)], "one PUBREC answers both");
}

#[test]
fn qos2_retransmission_after_pubrec_is_acknowledged_not_delivered_mqtt_4_3_3_9() {
    let mut broker = Broker::v5();
    broker.connect();
    let token = broker.deliver("a", QoS::ExactlyOnce, 3).unwrap();
    broker.session.acknowledge(broker.now, token);
    assert_eq!(broker.sent(), vec![pubrec(3)]);
    let mut again = publish_to("a", QoS::ExactlyOnce);
    again.packet_id = Some(3);
    again.dup = true;
    broker.feed(Packet::Publish(again.clone()));
    assert!(broker.events().is_empty(), "method B: no second delivery");
    assert_eq!(broker.sent(), vec![pubrec(3)]);
    // Even without DUP the id still awaits PUBREL.
    again.dup = false;
    broker.feed(Packet::Publish(again));
    assert!(broker.events().is_empty());
    assert_eq!(broker.sent(), vec![pubrec(3)]);
    // After PUBREL/PUBCOMP the id starts a new message.
    broker.feed(pubrel(3));
    assert_eq!(broker.sent(), vec![pubcomp(3)]);
    assert!(broker.deliver("new", QoS::ExactlyOnce, 3).is_some());
    broker.check();
}

#[test]
fn qos2_retransmission_after_pubrec_waits_behind_earlier_acks() {
    let mut broker = Broker::v5();
    broker.connect();
    let first = broker.deliver("a", QoS::ExactlyOnce, 1).unwrap();
    broker.session.acknowledge(broker.now, first);
    assert_eq!(broker.sent(), vec![pubrec(1)]);
    let held = broker.deliver("b", QoS::AtLeastOnce, 2).unwrap();
    let mut again = publish_to("a", QoS::ExactlyOnce);
    again.packet_id = Some(1);
    broker.feed(Packet::Publish(again));
    assert!(broker.sent().is_empty(), "PUBREC again after PUBACK 2");
    broker.session.acknowledge(broker.now, held);
    assert_eq!(broker.sent(), vec![puback(2), pubrec(1)]);
}

#[test]
fn stale_pubrec_is_not_sent_once_the_flow_completed() {
    // The repeated PUBREC is held behind an unacked message; meanwhile PUBREL
    // completes the flow and the broker reuses the id: the stale PUBREC must
    // not acknowledge the new message.
    let mut broker = Broker::v5();
    broker.connect();
    let first = broker.deliver("a", QoS::ExactlyOnce, 1).unwrap();
    broker.session.acknowledge(broker.now, first);
    broker.sent();
    let held = broker.deliver("b", QoS::AtLeastOnce, 2).unwrap();
    let mut again = publish_to("a", QoS::ExactlyOnce);
    again.packet_id = Some(1);
    broker.feed(Packet::Publish(again));
    broker.feed(pubrel(1));
    assert_eq!(broker.sent(), vec![pubcomp(1)]);
    let reused = broker.deliver("c", QoS::ExactlyOnce, 1).unwrap();
    broker.session.acknowledge(broker.now, held);
    assert_eq!(
        broker.sent(),
        vec![puback(2)],
        "no PUBREC for the new id 1 yet"
    );
    broker.session.acknowledge(broker.now, reused);
    assert_eq!(broker.sent(), vec![pubrec(1)]);
    broker.check();
}

#[test]
fn qos1_retransmission_of_an_unacked_id_is_not_delivered_twice() {
    let mut broker = Broker::v311();
    broker.connect();
    let token = broker.deliver("a", QoS::AtLeastOnce, 4).unwrap();
    let mut again = publish_to("a", QoS::AtLeastOnce);
    again.packet_id = Some(4);
    again.dup = true;
    broker.feed(Packet::Publish(again));
    assert!(broker.events().is_empty());
    broker.session.acknowledge(broker.now, token);
    assert_eq!(broker.sent(), vec![puback(4)], "exactly one PUBACK");
}

#[test]
fn qos1_publish_reusing_a_qos2_id_in_flight_is_a_protocol_error() {
    let mut broker = Broker::v5();
    broker.connect();
    broker.deliver("a", QoS::ExactlyOnce, 4).unwrap();
    let mut clash = publish_to("a", QoS::AtLeastOnce);
    clash.packet_id = Some(4);
    broker.feed(Packet::Publish(clash));
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::AckMismatch { packet_id: 4, .. })
    ));
}

#[test]
fn pubrel_for_an_unknown_id_gets_pubcomp() {
    // 5.0: PUBCOMP with 0x92 Packet Identifier not found.
    let mut broker = Broker::v5();
    broker.connect();
    broker.feed(pubrel(9));
    assert_eq!(
        broker.sent(),
        vec![Packet::PubComp(response(
            9,
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        ))]
    );
    // 3.1.1: a plain PUBCOMP.
    let mut broker = Broker::v311();
    broker.connect();
    broker.feed(pubrel(9));
    assert_eq!(broker.sent(), vec![pubcomp(9)]);
    assert_eq!(broker.session.state(), SessionState::Connected);
}

#[test]
fn pubrel_before_our_pubrec_is_a_protocol_error() {
    let mut broker = Broker::v5();
    broker.connect();
    broker.deliver("a", QoS::ExactlyOnce, 2).unwrap();
    broker.feed(pubrel(2));
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::AckMismatch {
            packet: PacketType::PubRel,
            ..
        })
    ));
}

#[test]
fn exceeding_our_receive_maximum_disconnects_with_0x93() {
    let mut broker = v5_with(ConnectProperties {
        receive_maximum: Some(2),
        ..ConnectProperties::default()
    });
    let first = broker.deliver("a", QoS::AtLeastOnce, 1).unwrap();
    let second = broker.deliver("b", QoS::ExactlyOnce, 2).unwrap();
    broker.session.acknowledge(broker.now, first);
    broker.session.acknowledge(broker.now, second);
    assert_eq!(broker.sent(), vec![puback(1), pubrec(2)]);
    // QoS 2 still counts until PUBCOMP; QoS 1 freed its slot.
    broker.deliver("c", QoS::AtLeastOnce, 3).unwrap();
    assert_eq!(broker.session.unacknowledged_incoming(), 2);
    // QoS 0 never counts.
    assert!(broker.deliver("zero", QoS::AtMostOnce, 0).is_none());

    let mut excess = publish_to("d", QoS::AtLeastOnce);
    excess.packet_id = Some(4);
    broker.feed(Packet::Publish(excess));
    let sent = broker.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED),
        "{sent:?}"
    );
    assert_eq!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::ReceiveMaximumExceeded(2))
    );
    broker.check();
}

#[test]
fn v311_has_no_receive_maximum() {
    let mut broker = Broker::v311();
    broker.connect();
    for id in 1..=300 {
        broker.deliver("a", QoS::AtLeastOnce, id).unwrap();
    }
    assert_eq!(broker.session.unacknowledged_incoming(), 300);
    assert_eq!(broker.session.state(), SessionState::Connected);
}

fn aliased(topic: &str, alias: u16) -> Packet {
    let mut publish = publish_to(topic, QoS::AtMostOnce);
    publish.properties.topic_alias = Some(alias);
    Packet::Publish(publish)
}

fn message_topic(events: &[Event]) -> &str {
    match events {
        [Event::Message { publish, .. }] => &publish.topic,
        other => panic!("{other:?}"),
    }
}

#[test]
fn incoming_topic_alias_is_set_then_resolved() {
    let mut broker = v5_with(ConnectProperties {
        topic_alias_maximum: Some(3),
        ..ConnectProperties::default()
    });
    broker.feed(aliased("a/b", 1));
    assert_eq!(message_topic(&broker.events()), "a/b");
    broker.feed(aliased("", 1));
    assert_eq!(message_topic(&broker.events()), "a/b");
    broker.feed(aliased("c/d", 1));
    assert_eq!(message_topic(&broker.events()), "c/d");
    broker.feed(aliased("", 1));
    assert_eq!(message_topic(&broker.events()), "c/d");
    broker.feed(aliased("x", 3));
    assert_eq!(message_topic(&broker.events()), "x");
}

fn assert_alias_error(broker: &mut Broker) {
    let sent = broker.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::TOPIC_ALIAS_INVALID),
        "{sent:?}"
    );
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::TopicAliasInvalid { .. })
    ));
}

#[test]
fn invalid_incoming_topic_aliases_disconnect_with_0x94() {
    // MQTT 5.0 3.3.2.3.4: alias above our Topic Alias Maximum, or an alias
    // alone that was never set, is answered with DISCONNECT 0x94.
    let properties = ConnectProperties {
        topic_alias_maximum: Some(3),
        ..ConnectProperties::default()
    };
    for packet in [aliased("a", 4), aliased("", 2)] {
        let mut broker = v5_with(properties.clone());
        broker.feed(packet);
        assert_alias_error(&mut broker);
    }
    // Without a Topic Alias Maximum, any alias is invalid.
    let mut broker = Broker::v5();
    broker.connect();
    broker.feed(aliased("a", 1));
    assert_alias_error(&mut broker);
}

#[test]
fn incoming_topic_alias_zero_closes_the_connection() {
    // Alias 0 cannot be encoded, so raw bytes: PUBLISH "a", Topic Alias 0.
    // MQTT 5.0 3.3.2.3.4: Topic Alias 0 is "Topic Alias invalid" (0x94).
    let mut broker = v5_with(ConnectProperties {
        topic_alias_maximum: Some(3),
        ..ConnectProperties::default()
    });
    broker.feed_bytes(&[0x30, 0x07, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00]);
    let sent = broker.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)]
            if d.reason_code == ReasonCode::TOPIC_ALIAS_INVALID),
        "{sent:?}"
    );
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::Decode(DecodeError::TopicAliasInvalid(_))
    ));
    assert_eq!(broker.session.state(), SessionState::Closed);
}

#[test]
fn incoming_topic_aliases_are_per_connection() {
    let mut broker = v5_with(ConnectProperties {
        topic_alias_maximum: Some(3),
        ..ConnectProperties::default()
    });
    broker.feed(aliased("a/b", 1));
    broker.events();
    broker.session.handle_transport_closed(broker.now);
    broker.connect();
    broker.events();
    broker.feed(aliased("", 1));
    assert_alias_error(&mut broker);
}

#[test]
fn incoming_topic_with_wildcards_disconnects_with_0x90() {
    let mut broker = Broker::v5();
    broker.connect();
    broker.feed(Packet::Publish(publish_to("a/+", QoS::AtMostOnce)));
    let sent = broker.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::TOPIC_NAME_INVALID),
        "{sent:?}"
    );
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::InvalidTopicName(_))
    ));
    // 3.1.1: closed, no DISCONNECT.
    let mut broker = Broker::v311();
    broker.connect();
    let mut wildcard = publish_to("a/#", QoS::AtLeastOnce);
    wildcard.packet_id = Some(1);
    broker.feed(Packet::Publish(wildcard));
    assert!(broker.sent().is_empty());
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::InvalidTopicName(_))
    ));
}

#[test]
fn tokens_of_an_earlier_connection_are_ignored_and_redelivery_gets_a_new_one() {
    let config = SessionConfig {
        clean_start: false,
        ..SessionConfig::new(ProtocolVersion::V311, "c")
    };
    let mut broker = Broker::new(config);
    broker.connect();
    let old = broker.deliver("a", QoS::AtLeastOnce, 5).unwrap();
    broker.session.handle_transport_closed(broker.now);
    broker.events();
    broker.connect_with(ConnAck {
        session_present: true,
        ..ConnAck::default()
    });
    assert!(!broker.session.acknowledge(broker.now, old));
    assert!(broker.sent().is_empty());
    // The broker resends the unacknowledged PUBLISH; it is delivered again.
    let mut again = publish_to("a", QoS::AtLeastOnce);
    again.packet_id = Some(5);
    again.dup = true;
    broker.feed(Packet::Publish(again));
    let events = broker.events();
    let Some(Event::Message { ack: Some(new), .. }) = events.first() else {
        panic!("{events:?}")
    };
    assert_ne!(*new, old);
    assert!(broker.session.acknowledge(broker.now, *new));
    assert_eq!(broker.sent(), vec![puback(5)]);
}

#[test]
fn acks_after_the_connection_closed_are_no_ops() {
    let mut broker = Broker::v5();
    broker.connect();
    let token = broker.deliver("a", QoS::AtLeastOnce, 5).unwrap();
    broker
        .session
        .disconnect(broker.now, Disconnect::default())
        .unwrap();
    broker.sent();
    assert!(!broker.session.acknowledge(broker.now, token));
    assert!(broker.sent().is_empty());
}

#[test]
fn qos2_flows_resumed_from_an_earlier_connection_do_not_count_against_receive_maximum() {
    // The broker's send quota starts afresh on each connection; PUBREL of an
    // old flow does not use it.
    let mut broker = Broker::new(SessionConfig {
        clean_start: false,
        connect_properties: ConnectProperties {
            receive_maximum: Some(2),
            session_expiry_interval: Some(60),
            ..ConnectProperties::default()
        },
        ..SessionConfig::new(ProtocolVersion::V5, "c")
    });
    broker.connect();
    for id in [1, 2] {
        let token = broker.deliver("old", QoS::ExactlyOnce, id).unwrap();
        broker.session.acknowledge(broker.now, token);
    }
    assert_eq!(broker.sent(), vec![pubrec(1), pubrec(2)]);
    broker.session.handle_transport_closed(broker.now);
    broker.connect_with(ConnAck {
        session_present: true,
        ..ConnAck::default()
    });
    broker.deliver("new", QoS::AtLeastOnce, 3).unwrap();
    broker.deliver("new", QoS::AtLeastOnce, 4).unwrap();
    assert_eq!(broker.session.state(), SessionState::Connected);
    assert_eq!(broker.session.unacknowledged_incoming(), 4);
    broker.feed(pubrel(1));
    assert_eq!(broker.sent(), vec![pubcomp(1)]);
    // A third new flow is one too many.
    let mut excess = publish_to("new", QoS::AtLeastOnce);
    excess.packet_id = Some(5);
    broker.feed(Packet::Publish(excess));
    assert_eq!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::ReceiveMaximumExceeded(2))
    );
    broker.check();
}

#[test]
fn tokens_dropped_by_clear_session_stay_no_ops() {
    let mut broker = Broker::v311();
    broker.connect();
    let old = broker.deliver("a", QoS::AtLeastOnce, 1).unwrap();
    broker.session.clear_session();
    let new = broker.deliver("b", QoS::AtLeastOnce, 2).unwrap();
    assert!(!broker.session.acknowledge(broker.now, old));
    assert!(
        broker.sent().is_empty(),
        "the old token does not ack the new message"
    );
    assert!(broker.session.acknowledge(broker.now, new));
    assert_eq!(broker.sent(), vec![puback(2)]);
}

#[test]
fn abandoned_message_sends_nothing_and_releases_later_acks() {
    let mut broker = Broker::v5();
    broker.connect();
    let first = broker.deliver("a", QoS::AtLeastOnce, 1).unwrap();
    let second = broker.deliver("b", QoS::ExactlyOnce, 2).unwrap();
    broker.session.acknowledge(broker.now, second);
    assert!(
        broker.sent().is_empty(),
        "held behind the first (MQTT-4.6.0-2)"
    );
    assert!(broker.session.abandon(broker.now, first));
    assert_eq!(
        broker.sent(),
        vec![pubrec(2)],
        "no PUBACK for the abandoned one"
    );
    // Still unacknowledged for the broker: it keeps its quota and its id.
    assert_eq!(broker.session.unacknowledged_incoming(), 2);
    assert!(!broker.session.abandon(broker.now, first), "only once");
    assert!(
        !broker.session.acknowledge(broker.now, first),
        "cannot ack it now"
    );
    assert!(broker.sent().is_empty());
    broker.check();
}

#[test]
fn abandoned_message_is_redelivered_after_a_resumed_session() {
    let config = SessionConfig {
        clean_start: false,
        ..SessionConfig::new(ProtocolVersion::V311, "c")
    };
    let mut broker = Broker::new(config);
    broker.connect();
    let token = broker.deliver("a", QoS::AtLeastOnce, 7).unwrap();
    assert!(broker.session.abandon(broker.now, token));
    broker.session.handle_transport_closed(broker.now);
    broker.events();
    broker.connect_with(ConnAck {
        session_present: true,
        ..ConnAck::default()
    });
    let mut again = publish_to("a", QoS::AtLeastOnce);
    again.packet_id = Some(7);
    again.dup = true;
    broker.feed(Packet::Publish(again));
    let events = broker.events();
    let Some(Event::Message { ack: Some(new), .. }) = events.first() else {
        panic!("redelivery expected, got {events:?}")
    };
    assert!(broker.session.acknowledge(broker.now, *new));
    assert_eq!(broker.sent(), vec![puback(7)]);
    broker.check();
}

#[test]
fn abandoning_a_stale_token_does_nothing() {
    let mut broker = Broker::v311();
    broker.connect();
    let token = broker.deliver("a", QoS::AtLeastOnce, 3).unwrap();
    broker.session.handle_transport_closed(broker.now);
    broker.events();
    broker.connect();
    assert!(!broker.session.abandon(broker.now, token));
    assert!(broker.sent().is_empty());
}
