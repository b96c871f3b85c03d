//! Keepalive pings, PINGRESP timeout, user pings, Server Keep Alive.

use super::*;

fn with_keep_alive(version: ProtocolVersion, keep_alive: u16) -> Broker {
    Broker::new(SessionConfig {
        keep_alive,
        ..SessionConfig::new(version, "c")
    })
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn pingreq_when_nothing_was_sent_for_keep_alive_mqtt_3_1_2_23() {
    let mut broker = with_keep_alive(ProtocolVersion::V311, 10);
    broker.connect();
    // CONNECT went out at 0: first ping due at 10.
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(10)));
    broker.advance_and_tick(9 * SEC);
    assert!(broker.sent().is_empty());
    broker.advance_and_tick(SEC);
    assert_eq!(broker.sent(), vec![Packet::PingReq]);
    broker.feed(Packet::PingResp);
    assert!(broker.events().is_empty(), "keepalive pings are silent");
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(20)));
}

#[test]
fn ping_when_either_direction_is_idle_for_keep_alive() {
    // MQTT-3.1.2-23 bounds how long we may stay silent; a broker that goes
    // silent is only noticed through a PINGRESP that never comes, so a long
    // enough silence from the broker triggers a ping as well.
    let mut broker = with_keep_alive(ProtocolVersion::V5, 10);
    broker.connect(); // CONNECT sent and CONNACK received at 0
    broker.advance(4 * SEC);
    broker
        .session
        .publish(broker.now, publish_to("a", QoS::AtMostOnce))
        .unwrap();
    broker.sent();
    // Nothing received since 0: the ping is due at 10 despite the send at 4.
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(10)));
    broker.advance(2 * SEC);
    broker.feed(Packet::Publish(publish_to("in", QoS::AtMostOnce)));
    broker.events();
    // Received at 6, sent at 4: the send is now the older.
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(14)));
    // An acknowledgement is a send too (the QoS 1 PUBLISH arrives at 6).
    let token = broker.deliver("in", QoS::AtLeastOnce, 1).unwrap();
    broker.advance(SEC);
    broker.session.acknowledge(broker.now, token);
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(16)));
    broker.advance_and_tick(10 * SEC);
    assert_eq!(broker.sent(), vec![puback(1), Packet::PingReq]);
}

#[test]
fn a_publisher_that_never_hears_back_detects_the_silent_broker() {
    // Publishing QoS 0 every second keeps the sending side busy; the broker
    // answers nothing. The keepalive ping goes out at 10 and, unanswered,
    // closes the connection at the ping timeout (keep alive / 2).
    let mut broker = with_keep_alive(ProtocolVersion::V311, 10);
    broker.connect();
    for _ in 0..10 {
        broker.advance_and_tick(SEC);
        broker
            .session
            .publish(broker.now, publish_to("a", QoS::AtMostOnce))
            .unwrap();
    }
    assert!(broker.sent().contains(&Packet::PingReq));
    for _ in 0..5 {
        broker.advance_and_tick(SEC);
        if broker.session.state() == SessionState::Connected {
            broker
                .session
                .publish(broker.now, publish_to("a", QoS::AtMostOnce))
                .unwrap();
        }
    }
    assert_eq!(broker.session.state(), SessionState::Closed);
    assert_eq!(broker.closed_reason(), CloseReason::KeepAliveTimeout);
}

#[test]
fn no_pingresp_within_the_ping_timeout_closes() {
    // Default policy: keep alive / 2 = 5 s.
    let mut broker = with_keep_alive(ProtocolVersion::V5, 10);
    broker.connect();
    broker.advance_and_tick(10 * SEC);
    assert_eq!(broker.sent(), vec![Packet::PingReq]);
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(15)));
    broker.advance_and_tick(4 * SEC);
    assert_eq!(broker.session.state(), SessionState::Connected);
    broker.advance_and_tick(SEC);
    assert_eq!(broker.closed_reason(), CloseReason::KeepAliveTimeout);
    assert_eq!(broker.session.state(), SessionState::Closed);
    assert!(broker.sent().is_empty(), "the connection is presumed dead");
    assert_eq!(broker.session.poll_timeout(), None);
}

#[test]
fn pingresp_in_time_keeps_the_connection() {
    let mut broker = with_keep_alive(ProtocolVersion::V311, 10);
    broker.connect();
    broker.advance_and_tick(10 * SEC);
    broker.sent();
    broker.advance_and_tick(4 * SEC);
    broker.feed(Packet::PingResp);
    broker.advance_and_tick(2 * SEC);
    assert_eq!(broker.session.state(), SessionState::Connected);
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(20)));
}

#[test]
fn ping_timeout_policy() {
    assert_eq!(PingTimeout::Auto.resolve(10), Some(5 * SEC));
    assert_eq!(
        PingTimeout::Auto.resolve(1),
        Some(Duration::from_millis(500))
    );
    assert_eq!(
        PingTimeout::Auto.resolve(120),
        Some(30 * SEC),
        "capped at 30 s"
    );
    assert_eq!(PingTimeout::Auto.resolve(0), None);
    assert_eq!(PingTimeout::After(3 * SEC).resolve(0), Some(3 * SEC));
    assert_eq!(PingTimeout::Never.resolve(60), None);

    let mut broker = Broker::new(SessionConfig {
        keep_alive: 10,
        ping_timeout: PingTimeout::Never,
        ..SessionConfig::new(ProtocolVersion::V311, "c")
    });
    broker.connect();
    broker.advance_and_tick(10 * SEC);
    broker.advance_and_tick(9 * SEC);
    assert_eq!(broker.session.state(), SessionState::Connected);
    broker.advance_and_tick(SEC);
    assert_eq!(
        broker.sent(),
        vec![Packet::PingReq, Packet::PingReq],
        "keep alive is still honoured"
    );
}

#[test]
fn keep_alive_zero_disables_pings() {
    let mut broker = with_keep_alive(ProtocolVersion::V311, 0);
    broker.connect();
    assert_eq!(broker.session.poll_timeout(), None);
    broker.advance_and_tick(3600 * SEC);
    assert!(broker.sent().is_empty());
    assert_eq!(broker.session.state(), SessionState::Connected);
}

#[test]
fn server_keep_alive_wins_over_ours() {
    let mut broker = with_keep_alive(ProtocolVersion::V5, 60);
    let negotiated = broker.connect_props(ConnAckProperties {
        server_keep_alive: Some(5),
        ..ConnAckProperties::default()
    });
    assert_eq!(negotiated.keep_alive, 5);
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(5)));
    broker.advance_and_tick(5 * SEC);
    assert_eq!(broker.sent(), vec![Packet::PingReq]);
    // The ping timeout follows the effective keep alive: 2.5 s.
    assert_eq!(
        broker.session.poll_timeout(),
        Some(broker.at(7) + Duration::from_millis(500))
    );

    // Server Keep Alive 0 disables keepalive.
    let mut broker = with_keep_alive(ProtocolVersion::V5, 60);
    broker.connect_props(ConnAckProperties {
        server_keep_alive: Some(0),
        ..ConnAckProperties::default()
    });
    assert_eq!(broker.session.poll_timeout(), None);
}

#[test]
fn user_pings_are_matched_first_in_first_out() {
    let mut broker = with_keep_alive(ProtocolVersion::V311, 10);
    broker.connect();
    broker.advance(SEC);
    let first = broker.session.ping(broker.now).unwrap();
    let second = broker.session.ping(broker.now).unwrap();
    assert_ne!(first, second);
    assert_eq!(broker.sent(), vec![Packet::PingReq, Packet::PingReq]);
    // The user ping counts as a send for keep alive.
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(6)));
    broker.feed(Packet::PingResp);
    assert_eq!(broker.events(), vec![Event::Pong { id: first }]);
    broker.feed(Packet::PingResp);
    assert_eq!(broker.events(), vec![Event::Pong { id: second }]);
    // A stray PINGRESP is ignored.
    broker.feed(Packet::PingResp);
    assert!(broker.events().is_empty());
    assert_eq!(broker.session.state(), SessionState::Connected);
}

#[test]
fn user_and_keepalive_pings_share_one_queue() {
    let mut broker = with_keep_alive(ProtocolVersion::V311, 10);
    broker.connect();
    broker.advance_and_tick(10 * SEC); // keepalive ping
    let user = broker.session.ping(broker.now).unwrap();
    assert_eq!(broker.sent(), vec![Packet::PingReq, Packet::PingReq]);
    broker.feed(Packet::PingResp);
    assert!(
        broker.events().is_empty(),
        "first PINGRESP answers the keepalive ping"
    );
    broker.feed(Packet::PingResp);
    assert_eq!(broker.events(), vec![Event::Pong { id: user }]);
}

#[test]
fn unanswered_user_ping_times_out_the_connection() {
    let mut broker = with_keep_alive(ProtocolVersion::V5, 10);
    broker.connect();
    let ping = broker.session.ping(broker.now).unwrap();
    broker.advance_and_tick(5 * SEC);
    assert_eq!(
        broker.events(),
        vec![
            Event::RequestFailed {
                id: ping,
                error: RequestError::ConnectionClosed
            },
            Event::Closed {
                reason: CloseReason::KeepAliveTimeout
            }
        ]
    );
}

#[test]
fn pending_subscribe_unsubscribe_and_ping_fail_when_the_transport_closes() {
    let mut broker = Broker::v5();
    broker.connect();
    let sub = broker
        .session
        .subscribe(
            broker.now,
            vec![SubscribeFilter {
                filter: "a".into(),
                options: SubscriptionOptions::default(),
            }],
            SubscribeProperties::default(),
        )
        .unwrap();
    let unsub = broker
        .session
        .unsubscribe(
            broker.now,
            vec!["b".into()],
            UnsubscribeProperties::default(),
        )
        .unwrap();
    let ping = broker.session.ping(broker.now).unwrap();
    broker.session.handle_transport_closed(broker.now);
    let failed = |id| Event::RequestFailed {
        id,
        error: RequestError::ConnectionClosed,
    };
    assert_eq!(
        broker.events(),
        vec![
            failed(ping),
            failed(sub),
            failed(unsub),
            Event::Closed {
                reason: CloseReason::TransportClosed
            }
        ]
    );
    assert_eq!(broker.session.available_packet_ids(), 65535);
    assert!(broker.sent().is_empty());
    broker.check();
}

#[test]
fn paused_receiving_suspends_the_pingresp_deadline_but_not_pingreq() {
    let mut broker = with_keep_alive(ProtocolVersion::V311, 10);
    broker.connect();
    broker.advance_and_tick(10 * SEC);
    assert_eq!(broker.sent(), vec![Packet::PingReq]);
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(15)));
    // The driver stops reading: the PINGRESP may be queued unread.
    broker.session.set_receive_paused(broker.now, true);
    assert!(broker.session.receive_paused());
    assert_eq!(
        broker.session.poll_timeout(),
        Some(broker.at(20)),
        "only the next keepalive ping is due"
    );
    broker.advance_and_tick(10 * SEC);
    assert_eq!(broker.session.state(), SessionState::Connected);
    assert_eq!(broker.sent(), vec![Packet::PingReq], "PINGREQ still sent");
    // Reading again at 25 s: both pings get a full timeout from now.
    broker.advance(5 * SEC);
    broker.session.set_receive_paused(broker.now, false);
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(30)));
    broker.feed(Packet::PingResp);
    broker.feed(Packet::PingResp);
    broker.advance_and_tick(4 * SEC);
    assert_eq!(broker.session.state(), SessionState::Connected);
}

#[test]
fn unanswered_ping_still_times_out_after_resuming() {
    let mut broker = with_keep_alive(ProtocolVersion::V5, 10);
    broker.connect();
    broker.advance_and_tick(10 * SEC);
    broker.sent();
    broker.session.set_receive_paused(broker.now, true);
    broker.advance_and_tick(3 * SEC);
    broker.session.set_receive_paused(broker.now, false);
    assert_eq!(broker.session.poll_timeout(), Some(broker.at(18)));
    broker.advance_and_tick(5 * SEC);
    assert_eq!(broker.closed_reason(), CloseReason::KeepAliveTimeout);
}
