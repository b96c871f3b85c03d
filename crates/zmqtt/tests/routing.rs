//! SPEC 1.7 routing against mosquitto: one message goes to exactly one
//! subscription, the one with the most specific matching filter; 5.0
//! subscription identifiers decide first; a filter held twice goes to the
//! first; `$share/<group>/f` matches on `f`.

mod support;

use support::{broker_with, connect_v311, connect_v5, publish_qos1, step, unique_topic};
use zmqtt::{Client, Protocol, QoS, Subscription};
use zmqtt_testbed::BrokerOptions;

fn no_duplicates() -> BrokerOptions {
    // One copy per client even when several of its subscriptions match.
    BrokerOptions::new().allow_duplicate_messages(false)
}

/// Payloads received until (and without) the sentinel "end".
async fn until_end(sub: &mut Subscription) -> Vec<String> {
    let mut payloads = Vec::new();
    loop {
        let message = step(sub.recv()).await.expect("subscription ended");
        let payload = message.payload_str().unwrap().to_owned();
        if payload == "end" {
            return payloads;
        }
        payloads.push(format!("{}={payload}", message.topic));
    }
}

/// `copies`: how many copies the broker sends of a message that matches `n`
/// of the client's subscriptions (mosquitto sends one per subscription to 5.0
/// clients, whatever `allow_duplicate_messages` says).
async fn most_specific_filter_wins<V: Protocol>(client: &Client<V>, copies: fn(usize) -> usize) {
    let base = unique_topic("routing");
    // Registered least specific first: registration order must not matter.
    let mut any = step(client.subscribe([format!("{base}/#")])).await.unwrap();
    let mut plus = step(client.subscribe([format!("{base}/+/x")]))
        .await
        .unwrap();
    let mut exact = step(client.subscribe([format!("{base}/a/x")]))
        .await
        .unwrap();
    for (level, payload) in [("a/x", "1"), ("b/x", "2"), ("c/y", "3")] {
        let topic = format!("{base}/{level}");
        publish_qos1(client, topic.as_str(), payload).await;
    }
    for level in ["a/x", "b/x", "c/y"] {
        let topic = format!("{base}/{level}");
        step(client.publish(topic.as_str(), "end").qos(QoS::AtLeastOnce))
            .await
            .unwrap();
    }
    // Every copy goes to the most specific matching subscription.
    assert_eq!(
        until_end(&mut exact).await,
        vec![format!("{base}/a/x=1"); copies(3)]
    );
    assert_eq!(
        until_end(&mut plus).await,
        vec![format!("{base}/b/x=2"); copies(2)]
    );
    assert_eq!(
        until_end(&mut any).await,
        vec![format!("{base}/c/y=3"); copies(1)]
    );
}

#[tokio::test]
async fn most_specific_filter_wins_v311() {
    let broker = broker_with(no_duplicates());
    let client = connect_v311(broker.port()).await;
    most_specific_filter_wins(&client, |_| 1).await;
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn most_specific_filter_wins_v5() {
    let broker = broker_with(no_duplicates());
    let client = connect_v5(broker.port()).await;
    most_specific_filter_wins(&client, |matching| matching).await;
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn same_filter_twice_goes_to_the_first_until_it_stops() {
    let broker = broker_with(no_duplicates());
    let client = connect_v311(broker.port()).await;
    let topic = unique_topic("routing/same");
    let own = format!("{topic}-second-only");
    let first = step(client.subscribe([topic.as_str()])).await.unwrap();
    let mut second = step(client.subscribe([topic.as_str(), own.as_str()]))
        .await
        .unwrap();
    let mut first = first;
    step(client.publish(topic.as_str(), "m1")).await.unwrap();
    step(client.publish(own.as_str(), "end")).await.unwrap();
    assert!(
        until_end(&mut second).await.is_empty(),
        "the second gets nothing"
    );
    let message = step(first.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("m1"));

    // Stopping the first keeps the filter at the broker (the second holds it)
    // and hands its messages to the second.
    let result = step(first.stop()).await.unwrap();
    assert!(
        result.topic_filters.is_empty(),
        "no UNSUBSCRIBE for a shared filter"
    );
    step(client.publish(topic.as_str(), "m2")).await.unwrap();
    step(client.publish(own.as_str(), "end")).await.unwrap();
    assert_eq!(until_end(&mut second).await, [format!("{topic}=m2")]);
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn shared_subscription_matches_on_its_inner_filter() {
    let broker = broker_with(no_duplicates());
    let client = connect_v5(broker.port()).await;
    let base = unique_topic("routing/share");
    let mut shared = step(client.subscribe([format!("$share/group/{base}/+")]))
        .await
        .unwrap();
    let mut wider = step(client.subscribe([format!("{base}/#")])).await.unwrap();
    step(client.publish(format!("{base}/a"), "to-shared"))
        .await
        .unwrap();
    step(client.publish(format!("{base}/a/b"), "to-wider"))
        .await
        .unwrap();
    let message = step(shared.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("to-shared"));
    let message = step(wider.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("to-wider"));
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn subscription_identifiers_decide_before_specificity() {
    // With duplicates allowed, mosquitto sends one copy per matching
    // subscription, each carrying that subscription's identifier: each copy
    // goes to the subscription it names, not twice to the most specific one.
    let broker = broker_with(BrokerOptions::new().allow_duplicate_messages(true));
    let client = connect_v5(broker.port()).await;
    let base = unique_topic("routing/ids");
    let mut wide = step(
        client
            .subscribe([format!("{base}/#")])
            .subscription_identifier(7),
    )
    .await
    .unwrap();
    let mut narrow = step(
        client
            .subscribe([format!("{base}/x")])
            .subscription_identifier(9),
    )
    .await
    .unwrap();
    publish_qos1(&client, format!("{base}/x"), "both").await;
    let to_wide = step(wide.recv()).await.unwrap();
    let to_narrow = step(narrow.recv()).await.unwrap();
    assert_eq!(
        to_wide.properties.unwrap().subscription_identifiers,
        vec![7]
    );
    assert_eq!(
        to_narrow.properties.unwrap().subscription_identifiers,
        vec![9]
    );
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn unmatched_messages_are_acknowledged_and_dropped() {
    let broker = broker_with(no_duplicates());
    let client = connect_v311(broker.port()).await;
    let topic = unique_topic("routing/unmatched");
    let sub = step(client.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    // Stop local delivery but keep the broker's subscription.
    sub.detach().await;
    for n in 0..5 {
        publish_qos1(&client, topic.as_str(), format!("{n}")).await;
    }
    // A new subscription gets what is published after it, not the dropped ones.
    let mut again = step(client.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    publish_qos1(&client, topic.as_str(), "after").await;
    let message = step(again.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("after"));
    // The connection is healthy: nothing was left unacknowledged.
    step(client.ping(std::time::Duration::from_secs(5)))
        .await
        .unwrap();
    step(client.disconnect()).await.unwrap();
}
