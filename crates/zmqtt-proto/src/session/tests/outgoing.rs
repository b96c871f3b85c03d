//! Outgoing publishes (QoS 0/1/2, quota, packet ids, aliases, local refusals)
//! and subscribe / unsubscribe.

use super::*;

#[test]
fn qos0_is_written_at_once_without_request_or_event() {
    let mut broker = Broker::v311();
    broker.connect();
    let mut publish = publish_to("a/b", QoS::AtMostOnce);
    publish.dup = true; // ignored: MQTT-3.3.1-2, DUP is 0 for QoS 0
    publish.packet_id = Some(9); // ignored
    assert_eq!(broker.session.publish(broker.now, publish), Ok(None));
    let sent = broker.sent();
    let written = sent_publish(&sent[0]);
    assert_eq!(written.topic, "a/b");
    assert!(!written.dup);
    assert_eq!(written.packet_id, None);
    assert_eq!(written.payload, Bytes::from_static(b"payload"));
    assert!(broker.events().is_empty());
    assert_eq!(broker.session.pending_publishes(), 0);
}

#[test]
fn qos1_flow_publish_puback() {
    let mut broker = Broker::v311();
    broker.connect();
    let id = broker.publish("a/b", QoS::AtLeastOnce);
    let sent = broker.sent();
    assert_eq!(sent.len(), 1);
    let written = sent_publish(&sent[0]);
    assert_eq!(written.qos, QoS::AtLeastOnce);
    assert!(!written.dup);
    let packet_id = written.packet_id.unwrap();
    assert_ne!(packet_id, 0, "MQTT-2.3.1-1");
    assert!(broker.events().is_empty());
    assert_eq!(broker.session.inflight_publishes(), 1);

    broker.feed(puback(packet_id));
    assert_eq!(
        completions(&broker.events()),
        vec![(id, Ok(ReasonCode::SUCCESS))]
    );
    assert_eq!(broker.session.pending_publishes(), 0);
    assert_eq!(broker.session.inflight_publishes(), 0);
    assert_eq!(broker.session.available_packet_ids(), 65535);
    assert!(broker.sent().is_empty());
    broker.check();
}

#[test]
fn qos2_flow_publish_pubrec_pubrel_pubcomp() {
    let mut broker = Broker::v5();
    broker.connect();
    let id = broker.publish("a/b", QoS::ExactlyOnce);
    let packet_id = sent_publish_id(&broker.sent()[0]);

    broker.feed(pubrec(packet_id));
    assert!(broker.events().is_empty(), "not complete before PUBCOMP");
    assert_eq!(
        broker.sent(),
        vec![Packet::PubRel(response(packet_id, ReasonCode::SUCCESS))]
    );
    // A repeated PUBREC is answered again.
    broker.feed(pubrec(packet_id));
    assert_eq!(
        broker.sent(),
        vec![Packet::PubRel(response(packet_id, ReasonCode::SUCCESS))]
    );

    broker.feed(pubcomp(packet_id));
    assert_eq!(
        completions(&broker.events()),
        vec![(id, Ok(ReasonCode::SUCCESS))]
    );
    assert_eq!(broker.session.available_packet_ids(), 65535);
    broker.check();
}

#[test]
fn v5_puback_failure_completes_with_the_reason_and_frees_the_id() {
    let mut broker = Broker::v5();
    broker.connect();
    let id = broker.publish("a/b", QoS::AtLeastOnce);
    let packet_id = sent_publish_id(&broker.sent()[0]);
    let mut refusal = response(packet_id, ReasonCode::NOT_AUTHORIZED);
    refusal.properties.reason_string = Some("acl".into());
    broker.feed(Packet::PubAck(refusal));
    match broker.events().as_slice() {
        [Event::PublishCompleted {
            id: done,
            result: Err(rejected),
        }] => {
            assert_eq!(*done, id);
            assert_eq!(rejected.reason_code, ReasonCode::NOT_AUTHORIZED);
            assert_eq!(rejected.properties.reason_string.as_deref(), Some("acl"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(broker.session.available_packet_ids(), 65535);
}

#[test]
fn v5_puback_no_matching_subscribers_is_a_success() {
    let mut broker = Broker::v5();
    broker.connect();
    let id = broker.publish("a/b", QoS::AtLeastOnce);
    let packet_id = sent_publish_id(&broker.sent()[0]);
    broker.feed(Packet::PubAck(response(
        packet_id,
        ReasonCode::NO_MATCHING_SUBSCRIBERS,
    )));
    assert_eq!(
        completions(&broker.events()),
        vec![(id, Ok(ReasonCode::NO_MATCHING_SUBSCRIBERS))]
    );
}

#[test]
fn v5_failed_pubrec_ends_the_flow_without_pubrel() {
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        receive_maximum: Some(1),
        ..ConnAckProperties::default()
    });
    let first = broker.publish("a", QoS::ExactlyOnce);
    let second = broker.publish("b", QoS::ExactlyOnce);
    let sent = broker.sent();
    assert_eq!(sent.len(), 1, "quota of 1");
    let packet_id = sent_publish_id(&sent[0]);
    broker.feed(Packet::PubRec(response(
        packet_id,
        ReasonCode::QUOTA_EXCEEDED,
    )));
    assert_eq!(
        completions(&broker.events()),
        vec![(first, Err(ReasonCode::QUOTA_EXCEEDED))]
    );
    // No PUBREL; the quota freed lets the second one go.
    let sent = broker.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent_publish(&sent[0]).topic, "b");
    let _ = second;
    broker.check();
}

#[test]
fn receive_maximum_holds_qos1_2_in_a_fifo_but_never_qos0() {
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        receive_maximum: Some(2),
        ..ConnAckProperties::default()
    });
    let a = broker.publish("a", QoS::AtLeastOnce);
    let b = broker.publish("b", QoS::ExactlyOnce);
    let c = broker.publish("c", QoS::AtLeastOnce);
    let d = broker.publish("d", QoS::AtLeastOnce);
    let sent = broker.sent();
    let topics: Vec<_> = sent.iter().map(|p| sent_publish(p).topic.clone()).collect();
    assert_eq!(
        topics,
        ["a", "b"],
        "MQTT-3.3.4-7: at most Receive Maximum in flight"
    );
    assert_eq!(broker.session.waiting_publishes(), 2);
    assert_eq!(broker.session.inflight_publishes(), 2);

    // QoS 0 is not subject to the quota.
    broker
        .session
        .publish(broker.now, publish_to("zero", QoS::AtMostOnce))
        .unwrap();
    assert_eq!(sent_publish(&broker.sent()[0]).topic, "zero");

    // PUBREC does not free quota: the QoS 2 flow is unfinished.
    let b_id = sent_publish_id(&sent[1]);
    broker.feed(pubrec(b_id));
    assert!(matches!(broker.sent().as_slice(), [Packet::PubRel(_)]));
    assert_eq!(broker.session.waiting_publishes(), 2);

    // PUBACK of "a" lets "c" go (FIFO).
    broker.feed(puback(sent_publish_id(&sent[0])));
    let next = broker.sent();
    assert_eq!(next.len(), 1);
    assert_eq!(sent_publish(&next[0]).topic, "c");
    // PUBCOMP of "b" lets "d" go.
    broker.feed(pubcomp(b_id));
    let last = broker.sent();
    assert_eq!(sent_publish(&last[0]).topic, "d");
    assert_eq!(broker.session.waiting_publishes(), 0);
    assert_eq!(
        completions(&broker.events()),
        vec![(a, Ok(ReasonCode::SUCCESS)), (b, Ok(ReasonCode::SUCCESS))]
    );
    let _ = (c, d);
    broker.check();
}

#[test]
fn packet_ids_never_collide_with_out_of_order_acks_mqtt_2_3_1_2() {
    let mut broker = Broker::v311();
    broker.connect();
    // Requests by packet id, as the broker sees them.
    let mut in_use: HashMap<u16, RequestId> = HashMap::new();
    let mut state: u32 = 12345;
    let mut next_random = move || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 16) as usize
    };
    for round in 0..2000 {
        if in_use.len() < 50 && next_random() % 3 != 0 {
            let id = if round % 7 == 0 {
                broker
                    .session
                    .subscribe(
                        broker.now,
                        vec![SubscribeFilter {
                            filter: "x/#".into(),
                            options: SubscriptionOptions::default(),
                        }],
                        SubscribeProperties::default(),
                    )
                    .unwrap()
            } else {
                broker.publish("t", QoS::AtLeastOnce)
            };
            let packet_id = match &broker.sent()[0] {
                Packet::Publish(p) => p.packet_id.unwrap(),
                Packet::Subscribe(s) => s.packet_id,
                other => panic!("{other:?}"),
            };
            assert!(
                in_use.insert(packet_id, id).is_none(),
                "packet id {packet_id} reused while in use"
            );
        } else if !in_use.is_empty() {
            // Acknowledge a random pending one.
            let mut ids: Vec<u16> = in_use.keys().copied().collect();
            ids.sort_unstable();
            let packet_id = ids[next_random() % ids.len()];
            let request = in_use.remove(&packet_id).unwrap();
            let events = broker.events();
            assert!(events.is_empty());
            broker.feed(puback(packet_id));
            broker.feed(Packet::SubAck(SubAck {
                packet_id,
                reason_codes: vec![ReasonCode::GRANTED_QOS_0],
                properties: ReasonProperties::default(),
            }));
            let done: Vec<RequestId> = broker
                .events()
                .iter()
                .map(|event| match event {
                    Event::PublishCompleted { id, result } => {
                        assert!(result.is_ok());
                        *id
                    }
                    Event::SubscribeCompleted { id, .. } => *id,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(done, vec![request], "the ack completes exactly its request");
        }
        broker.check();
    }
}

#[test]
fn packet_id_pool_exhaustion_refuses_new_requests() {
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        receive_maximum: Some(1),
        ..ConnAckProperties::default()
    });
    for _ in 0..65535 {
        broker.publish("t", QoS::AtLeastOnce);
    }
    assert_eq!(broker.session.waiting_publishes(), 65534);
    assert_eq!(broker.session.available_packet_ids(), 0);
    assert_eq!(
        broker
            .session
            .publish(broker.now, publish_to("t", QoS::AtLeastOnce)),
        Err(CommandError::NoPacketIdentifier)
    );
    assert_eq!(
        broker.session.subscribe(
            broker.now,
            vec![SubscribeFilter {
                filter: "a".into(),
                options: SubscriptionOptions::default()
            }],
            SubscribeProperties::default()
        ),
        Err(CommandError::NoPacketIdentifier)
    );
    // QoS 0 needs no identifier.
    assert_eq!(
        broker
            .session
            .publish(broker.now, publish_to("t", QoS::AtMostOnce)),
        Ok(None)
    );
    broker.check();
}

#[test]
fn unknown_acks_are_ignored_and_mismatched_ones_are_protocol_errors() {
    let mut broker = Broker::v5();
    broker.connect();
    broker.feed(puback(77));
    broker.feed(pubcomp(77));
    assert!(broker.events().is_empty());
    assert_eq!(broker.session.state(), SessionState::Connected);

    broker.publish("q2", QoS::ExactlyOnce);
    let packet_id = sent_publish_id(&broker.sent()[0]);
    broker.feed(puback(packet_id));
    assert_eq!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::AckMismatch {
            packet: PacketType::PubAck,
            packet_id,
            context: "is not a QoS 1 publish"
        })
    );
    assert!(
        matches!(broker.sent().as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PROTOCOL_ERROR)
    );

    let mut broker = Broker::v5();
    broker.connect();
    broker.publish("q2", QoS::ExactlyOnce);
    let packet_id = sent_publish_id(&broker.sent()[0]);
    broker.feed(pubcomp(packet_id));
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::AckMismatch {
            packet: PacketType::PubComp,
            ..
        })
    ));
}

#[test]
fn pubrec_for_an_unknown_id_is_released() {
    let mut broker = Broker::v5();
    broker.connect();
    broker.feed(pubrec(5));
    assert_eq!(
        broker.sent(),
        vec![Packet::PubRel(response(
            5,
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        ))]
    );
    let mut broker = Broker::v311();
    broker.connect();
    broker.feed(pubrec(5));
    assert_eq!(
        broker.sent(),
        vec![Packet::PubRel(response(5, ReasonCode::SUCCESS))]
    );
}

#[test]
fn local_refusals_send_nothing_and_hold_no_id() {
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        maximum_qos: Some(QoS::AtLeastOnce),
        retain_available: Some(false),
        maximum_packet_size: Some(100),
        topic_alias_maximum: Some(3),
        ..ConnAckProperties::default()
    });
    let now = broker.now;
    let mut try_publish = |publish: Publish| broker.session.publish(now, publish);

    assert_eq!(
        try_publish(publish_to("a", QoS::ExactlyOnce)),
        Err(CommandError::QoSNotSupported {
            requested: QoS::ExactlyOnce,
            maximum: QoS::AtLeastOnce
        })
    );
    let mut retained = publish_to("a", QoS::AtMostOnce);
    retained.retain = true;
    assert_eq!(try_publish(retained), Err(CommandError::RetainNotAvailable));

    let mut big = publish_to("a", QoS::AtLeastOnce);
    big.payload = Bytes::from(vec![0u8; 200]);
    assert!(matches!(
        try_publish(big),
        Err(CommandError::PacketTooLarge { maximum: 100, .. })
    ));
    // Exactly at the limit is fine: 2 header + 3 topic + 2 id + 1 props + payload.
    let mut fits = publish_to("a", QoS::AtLeastOnce);
    fits.payload = Bytes::from(vec![0u8; 92]);
    assert!(try_publish(fits).is_ok());

    assert!(matches!(
        try_publish(publish_to("a/+", QoS::AtMostOnce)),
        Err(CommandError::InvalidTopic(_))
    ));
    assert!(matches!(
        try_publish(publish_to("", QoS::AtMostOnce)),
        Err(CommandError::InvalidTopic(_))
    ));
    let alias = |alias: u16, topic: &str| {
        let mut publish = publish_to(topic, QoS::AtMostOnce);
        publish.properties.topic_alias = Some(alias);
        publish
    };
    assert!(matches!(
        try_publish(alias(0, "a")),
        Err(CommandError::TopicAliasInvalid { alias: 0, .. })
    ));
    assert!(matches!(
        try_publish(alias(4, "a")),
        Err(CommandError::TopicAliasInvalid { alias: 4, .. })
    ));
    assert!(matches!(
        try_publish(alias(2, "")),
        Err(CommandError::TopicAliasInvalid { alias: 2, .. })
    ));
    let mut with_sub_id = publish_to("a", QoS::AtMostOnce);
    with_sub_id.properties.subscription_identifiers = vec![1];
    assert!(matches!(
        try_publish(with_sub_id),
        Err(CommandError::Invalid(_))
    ));

    let sent = broker.sent();
    assert_eq!(sent.len(), 1, "only the packet that fits went out");
    assert_eq!(broker.session.pending_publishes(), 1);
    assert_eq!(broker.session.available_packet_ids(), 65534);
    broker.check();
}

#[test]
fn v5_only_fields_are_refused_on_v311() {
    let mut broker = Broker::v311();
    broker.connect();
    let mut publish = publish_to("a", QoS::AtMostOnce);
    publish.properties.message_expiry_interval = Some(5);
    assert_eq!(
        broker.session.publish(broker.now, publish),
        Err(CommandError::RequiresV5("publish properties"))
    );
    let filter = SubscribeFilter {
        filter: "a".into(),
        options: SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::default()
        },
    };
    assert!(matches!(
        broker
            .session
            .subscribe(broker.now, vec![filter], SubscribeProperties::default()),
        Err(CommandError::RequiresV5(_))
    ));
    let properties = SubscribeProperties {
        subscription_identifier: Some(3),
        ..SubscribeProperties::default()
    };
    let plain = SubscribeFilter {
        filter: "a".into(),
        options: SubscriptionOptions::default(),
    };
    assert!(matches!(
        broker
            .session
            .subscribe(broker.now, vec![plain], properties),
        Err(CommandError::RequiresV5(_))
    ));
    let properties = UnsubscribeProperties {
        user_properties: vec![("k".into(), "v".into())],
    };
    assert!(matches!(
        broker
            .session
            .unsubscribe(broker.now, vec!["a".into()], properties),
        Err(CommandError::RequiresV5(_))
    ));
    assert!(broker.sent().is_empty());
}

#[test]
fn outgoing_topic_alias_is_set_then_used_alone() {
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        topic_alias_maximum: Some(5),
        ..ConnAckProperties::default()
    });
    let with_alias = |topic: &str, alias: u16| {
        let mut publish = publish_to(topic, QoS::AtMostOnce);
        publish.properties.topic_alias = Some(alias);
        publish
    };
    let now = broker.now;
    broker.session.publish(now, with_alias("a/b", 1)).unwrap();
    broker.session.publish(now, with_alias("", 1)).unwrap();
    broker.session.publish(now, with_alias("a/b", 1)).unwrap();
    broker.session.publish(now, with_alias("c", 1)).unwrap();
    let wire: Vec<(String, Option<u16>)> = broker
        .sent()
        .iter()
        .map(|p| {
            let p = sent_publish(p);
            (p.topic.clone(), p.properties.topic_alias)
        })
        .collect();
    assert_eq!(
        wire,
        vec![
            ("a/b".into(), Some(1)),
            ("".into(), Some(1)),
            ("".into(), Some(1)),
            ("c".into(), Some(1)),
        ]
    );
}

#[test]
fn alias_only_publish_waiting_for_quota_keeps_its_topic() {
    // The alias is set by a QoS 1 publish still waiting for quota: a QoS 0
    // publish using it alone must carry the topic, or the broker could not
    // resolve it.
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        topic_alias_maximum: Some(5),
        receive_maximum: Some(1),
        ..ConnAckProperties::default()
    });
    broker.publish("first", QoS::AtLeastOnce);
    let first_id = sent_publish_id(&broker.sent()[0]);
    let mut set = publish_to("a/b", QoS::AtLeastOnce);
    set.properties.topic_alias = Some(2);
    broker.session.publish(broker.now, set).unwrap();
    assert!(broker.sent().is_empty(), "waiting for quota");
    let mut alone = publish_to("", QoS::AtMostOnce);
    alone.properties.topic_alias = Some(2);
    broker.session.publish(broker.now, alone).unwrap();
    let sent = broker.sent();
    assert_eq!(sent_publish(&sent[0]).topic, "a/b");
    broker.feed(puback(first_id));
    let sent = broker.sent();
    let released = sent_publish(&sent[0]);
    assert_eq!(released.topic, "", "the broker knows alias 2 by now");
    assert_eq!(released.properties.topic_alias, Some(2));
}

fn filter(name: &str) -> SubscribeFilter {
    SubscribeFilter {
        filter: name.into(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..SubscriptionOptions::default()
        },
    }
}

#[test]
fn subscribe_and_unsubscribe_complete_on_their_acks() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut broker = Broker::new(SessionConfig::new(version, "c"));
        broker.connect();
        let sub = broker
            .session
            .subscribe(
                broker.now,
                vec![filter("a/#"), filter("b/+")],
                SubscribeProperties::default(),
            )
            .unwrap();
        let sent = broker.sent();
        let Packet::Subscribe(subscribe) = &sent[0] else {
            panic!("{sent:?}")
        };
        assert_eq!(subscribe.filters, vec![filter("a/#"), filter("b/+")]);
        let suback = SubAck {
            packet_id: subscribe.packet_id,
            reason_codes: vec![ReasonCode::GRANTED_QOS_1, ReasonCode(0x80)],
            properties: ReasonProperties::default(),
        };
        broker.feed(Packet::SubAck(suback.clone()));
        assert_eq!(
            broker.events(),
            vec![Event::SubscribeCompleted { id: sub, suback }]
        );

        let unsub = broker
            .session
            .unsubscribe(
                broker.now,
                vec!["a/#".into()],
                UnsubscribeProperties::default(),
            )
            .unwrap();
        let sent = broker.sent();
        let Packet::Unsubscribe(unsubscribe) = &sent[0] else {
            panic!("{sent:?}")
        };
        let unsuback = UnsubAck {
            packet_id: unsubscribe.packet_id,
            reason_codes: match version {
                ProtocolVersion::V5 => vec![ReasonCode::SUCCESS],
                ProtocolVersion::V311 => vec![],
            },
            properties: ReasonProperties::default(),
        };
        broker.feed(Packet::UnsubAck(unsuback.clone()));
        assert_eq!(
            broker.events(),
            vec![Event::UnsubscribeCompleted {
                id: unsub,
                unsuback
            }]
        );
        assert_eq!(broker.session.available_packet_ids(), 65535);
        broker.check();
    }
}

#[test]
fn suback_with_wrong_reason_count_is_a_protocol_error_mqtt_3_9_3_1() {
    let mut broker = Broker::v5();
    broker.connect();
    broker
        .session
        .subscribe(
            broker.now,
            vec![filter("a"), filter("b")],
            SubscribeProperties::default(),
        )
        .unwrap();
    let Packet::Subscribe(subscribe) = &broker.sent()[0] else {
        panic!()
    };
    broker.feed(Packet::SubAck(SubAck {
        packet_id: subscribe.packet_id,
        reason_codes: vec![ReasonCode::GRANTED_QOS_0],
        properties: ReasonProperties::default(),
    }));
    let events = broker.events();
    assert!(matches!(
        events.last(),
        Some(Event::Closed {
            reason: CloseReason::ProtocolViolation(ProtocolViolation::ReasonCountMismatch {
                expected: 2,
                got: 1,
                ..
            })
        })
    ));
    // The pending subscribe fails with the connection.
    assert!(matches!(
        events[0],
        Event::RequestFailed {
            error: RequestError::ConnectionClosed,
            ..
        }
    ));
}

#[test]
fn suback_for_an_unsubscribe_is_a_protocol_error() {
    let mut broker = Broker::v5();
    broker.connect();
    broker
        .session
        .unsubscribe(
            broker.now,
            vec!["a".into()],
            UnsubscribeProperties::default(),
        )
        .unwrap();
    let Packet::Unsubscribe(unsubscribe) = &broker.sent()[0] else {
        panic!()
    };
    broker.feed(Packet::SubAck(SubAck {
        packet_id: unsubscribe.packet_id,
        reason_codes: vec![ReasonCode::GRANTED_QOS_0],
        properties: ReasonProperties::default(),
    }));
    assert!(matches!(
        broker.closed_reason(),
        CloseReason::ProtocolViolation(ProtocolViolation::AckMismatch {
            packet: PacketType::SubAck,
            ..
        })
    ));
}

#[test]
fn subscribe_refusals() {
    let mut broker = Broker::v5();
    broker.connect_props(ConnAckProperties {
        maximum_packet_size: Some(30),
        ..ConnAckProperties::default()
    });
    let now = broker.now;
    let session = &mut broker.session;
    assert_eq!(
        session.subscribe(now, vec![], SubscribeProperties::default()),
        Err(CommandError::NoTopicFilters)
    );
    assert!(matches!(
        session.subscribe(now, vec![filter("a/#/b")], SubscribeProperties::default()),
        Err(CommandError::InvalidTopicFilter(_))
    ));
    let properties = SubscribeProperties {
        subscription_identifier: Some(0),
        ..SubscribeProperties::default()
    };
    assert!(matches!(
        session.subscribe(now, vec![filter("a")], properties),
        Err(CommandError::Invalid(_))
    ));
    assert!(matches!(
        session.subscribe(
            now,
            vec![filter(&"x".repeat(40))],
            SubscribeProperties::default()
        ),
        Err(CommandError::PacketTooLarge { maximum: 30, .. })
    ));
    assert!(matches!(
        session.unsubscribe(now, vec![], UnsubscribeProperties::default()),
        Err(CommandError::NoTopicFilters)
    ));
    assert!(matches!(
        session.unsubscribe(now, vec!["#/a".into()], UnsubscribeProperties::default()),
        Err(CommandError::InvalidTopicFilter(_))
    ));
    assert!(broker.sent().is_empty());
    assert_eq!(broker.session.available_packet_ids(), 65535);
}

#[test]
fn qos0_from_parts_sends_the_bytes_of_publish() {
    for mut broker in [Broker::v311(), Broker::v5()] {
        broker.connect();
        for retain in [false, true] {
            let mut publish = publish_to("parts/topic", QoS::AtMostOnce);
            publish.retain = retain;
            assert_eq!(broker.session.publish(broker.now, publish), Ok(None));
            let mut via_publish = BytesMut::new();
            broker.session.poll_transmit(&mut via_publish);
            assert_eq!(
                broker
                    .session
                    .publish_qos0(broker.now, "parts/topic", b"payload", retain),
                Ok(())
            );
            let mut via_parts = BytesMut::new();
            broker.session.poll_transmit(&mut via_parts);
            assert!(!via_parts.is_empty());
            assert_eq!(via_parts, via_publish);
            // A topic checked before: the same bytes again.
            let topic = crate::topic::ValidTopicName::new("parts/topic").unwrap();
            assert_eq!(
                broker
                    .session
                    .publish_qos0_valid(broker.now, topic, b"payload", retain),
                Ok(())
            );
            let mut via_valid = BytesMut::new();
            broker.session.poll_transmit(&mut via_valid);
            assert_eq!(via_valid, via_publish);
            assert!(broker.events().is_empty());
            assert_eq!(broker.session.pending_publishes(), 0);
        }
    }
}

#[test]
fn qos0_from_parts_refuses_what_publish_refuses() {
    let mut broker = Broker::v5();
    assert_eq!(
        broker.session.publish_qos0(broker.now, "a", b"", false),
        Err(CommandError::NotConnected)
    );
    broker.connect_props(ConnAckProperties {
        retain_available: Some(false),
        maximum_packet_size: Some(20),
        ..ConnAckProperties::default()
    });
    // MQTT-4.7.1-1 (wildcards), MQTT-4.7.3-1 (empty), MQTT-4.7.3-2 (U+0000).
    for topic in ["a/+", "sensors/#", "", "abcdefgh/\0"] {
        assert!(
            matches!(
                broker.session.publish_qos0(broker.now, topic, b"", false),
                Err(CommandError::InvalidTopic(_))
            ),
            "{topic:?}"
        );
    }
    assert_eq!(
        broker.session.publish_qos0(broker.now, "a", b"", true),
        Err(CommandError::RetainNotAvailable)
    );
    assert!(matches!(
        broker
            .session
            .publish_qos0(broker.now, "a", &[0u8; 32], false),
        Err(CommandError::PacketTooLarge { maximum: 20, .. })
    ));
    assert!(broker.sent().is_empty());
}

#[test]
fn releasing_idle_memory_changes_nothing_observable() {
    let mut broker = Broker::v311();
    broker.connect();
    broker.session.release_idle_memory();
    let first = broker.publish("a/b", QoS::AtLeastOnce);
    let first_id = sent_publish_id(&broker.sent()[0]);
    // Mid-flow: the held identifier, the pending publish and its quota stay.
    broker.session.release_idle_memory();
    broker.check();
    assert_eq!(broker.session.available_packet_ids(), 65534);
    let second = broker.publish("a/b", QoS::AtLeastOnce);
    let second_id = sent_publish_id(&broker.sent()[0]);
    assert_ne!(second_id, first_id, "MQTT-2.3.1-2");
    broker.feed(puback(first_id));
    broker.feed(puback(second_id));
    assert_eq!(
        completions(&broker.events()),
        vec![
            (first, Ok(ReasonCode::SUCCESS)),
            (second, Ok(ReasonCode::SUCCESS))
        ]
    );
    // Idle again: everything given back, and identifiers keep going round.
    broker.session.release_idle_memory();
    broker.check();
    assert_eq!(broker.session.available_packet_ids(), 65535);
    broker.publish("a/b", QoS::AtLeastOnce);
    let third_id = sent_publish_id(&broker.sent()[0]);
    assert!(third_id > second_id, "round-robin survives the release");
    // A keepalive ping still goes out and is answered.
    broker.advance_and_tick(Duration::from_secs(60));
    broker.session.release_idle_memory();
    assert_eq!(broker.sent(), vec![Packet::PingReq]);
    broker.feed(Packet::PingResp);
    assert!(broker.session.is_live());
}
