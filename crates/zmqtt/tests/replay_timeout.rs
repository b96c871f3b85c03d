//! SPEC 1.1 `session_replay_timeout`: a message of a resumed session that no
//! subscription claims in time is dropped *unacknowledged*, so the broker
//! sends it again on the next resume (DESIGN: `ClientSession::abandon`).

mod support;

use std::time::Duration;

use support::{broker, leave_a_subscription, persistent, publish_qos1, step, unique_topic};
use zmqtt::{create_client, Client, ClientBuilder, Protocol, QoS, V311};

/// The short replay timeout of the client under test.
const REPLAY_TIMEOUT: Duration = Duration::from_millis(300);

/// `first` leaves a persistent subscription; "held" is queued for it;
/// `second` (short replay timeout) resumes, subscribes only after the
/// timeout; `third` resumes again and gets "held" once more.
async fn unclaimed_message_is_dropped_unacknowledged<V: Protocol>(
    first: Client<V>,
    second: Client<V>,
    third: Client<V>,
    publisher: Client<V>,
) {
    let topic = unique_topic("replay-timeout");
    leave_a_subscription(&first, &topic).await;
    step(publisher.connect()).await.unwrap();
    publish_qos1(&publisher, topic.as_str(), "held").await;

    step(second.connect()).await.unwrap();
    assert!(second.connection_info().unwrap().session_present);
    // mosquitto sends the queued message right after CONNACK, before it
    // answers this ping: once the ping is back, "held" is in the client.
    step(second.ping(Duration::from_secs(5))).await.unwrap();
    // The timeout itself is what is tested: let it pass.
    tokio::time::sleep(REPLAY_TIMEOUT * 2).await;
    let mut late = step(second.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    publish_qos1(&publisher, topic.as_str(), "live").await;
    let message = step(late.recv()).await.unwrap();
    assert_eq!(
        message.payload_str(),
        Some("live"),
        "the expired message is not handed to a later subscription"
    );
    // "live" was acknowledged although "held" before it was not: the
    // abandoned message no longer holds back later acknowledgements.
    step(second.ping(Duration::from_secs(5))).await.unwrap();
    step(second.disconnect()).await.unwrap();

    step(third.connect()).await.unwrap();
    assert!(third.connection_info().unwrap().session_present);
    let mut sub = step(third.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let again = step(sub.recv()).await.unwrap();
    assert_eq!(
        again.payload_str(),
        Some("held"),
        "sent again by the broker"
    );
    publish_qos1(&publisher, topic.as_str(), "after").await;
    let next = step(sub.recv()).await.unwrap();
    assert_eq!(
        next.payload_str(),
        Some("after"),
        "\"live\" is not sent again"
    );
    step(third.disconnect()).await.unwrap();
    step(publisher.disconnect()).await.unwrap();
}

#[tokio::test]
async fn unclaimed_message_is_dropped_unacknowledged_v311() {
    let broker = broker();
    let port = broker.port();
    let id = unique_topic("replay-timeout-311").replace('/', "-");
    unclaimed_message_is_dropped_unacknowledged(
        persistent(port, &id).build(),
        persistent(port, &id)
            .session_replay_timeout(REPLAY_TIMEOUT)
            .build(),
        persistent(port, &id).build(),
        create_client("127.0.0.1").port(port).build(),
    )
    .await;
}

#[tokio::test]
async fn unclaimed_message_is_dropped_unacknowledged_v5() {
    let broker = broker();
    let port = broker.port();
    let id = unique_topic("replay-timeout-5").replace('/', "-");
    let v5 = |builder: ClientBuilder<V311>| builder.v5().session_expiry_interval(600).build();
    unclaimed_message_is_dropped_unacknowledged(
        v5(persistent(port, &id)),
        v5(persistent(port, &id).session_replay_timeout(REPLAY_TIMEOUT)),
        v5(persistent(port, &id)),
        create_client("127.0.0.1").port(port).v5().build(),
    )
    .await;
}
