//! 5.0 request / response (SPEC 1.9) against mosquitto.

mod support;

use std::future::IntoFuture;
use std::time::Duration;

use bytes::Bytes;
use support::{broker, step, unique_topic};
use zmqtt::{create_client, Client, Error, PublishProperties, QoS, ReconnectConfig, V5};

async fn connect(port: u16, max_pending_requests: usize) -> Client<V5> {
    let client = create_client("127.0.0.1")
        .v5()
        .port(port)
        .max_pending_requests(max_pending_requests)
        .reconnect(ReconnectConfig::disabled())
        .build();
    step(client.connect()).await.unwrap();
    client
}

/// A responder on `topic`: answers each request with "re: <payload>" on its
/// response topic, carrying its correlation data. Ends with its client.
async fn spawn_responder(port: u16, topic: &str) -> Client<V5> {
    let responder = connect(port, 1).await;
    let mut requests = step(responder.subscribe([topic]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let client = responder.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let payload = format!("re: {}", request.payload_str().unwrap_or(""));
            let Some(properties) = request.properties else {
                continue;
            };
            let Some(reply_to) = properties.response_topic else {
                continue;
            };
            let reply = PublishProperties {
                correlation_data: properties.correlation_data,
                ..Default::default()
            };
            let _ = client
                .publish(reply_to, payload)
                .qos(QoS::AtLeastOnce)
                .properties(reply)
                .await;
        }
    });
    responder
}

#[tokio::test]
async fn request_gets_its_reply() {
    let broker = broker();
    let service = unique_topic("request/echo");
    let responder = spawn_responder(broker.port(), &service).await;
    let client = connect(broker.port(), 1000).await;
    let reply = step(client.request(service.as_str(), "hello"))
        .await
        .unwrap();
    assert_eq!(reply.payload_str(), Some("re: hello"));
    // A second one on the same (generated) response topic.
    let reply = step(
        client
            .request(service.as_str(), "again")
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    assert_eq!(reply.payload_str(), Some("re: again"));
    step(client.disconnect()).await.unwrap();
    step(responder.disconnect()).await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_reply() {
    let broker = broker();
    let service = unique_topic("request/concurrent");
    let responder = spawn_responder(broker.port(), &service).await;
    let client = connect(broker.port(), 1000).await;
    let requests = (0..20).map(|n| {
        let client = client.clone();
        let service = service.clone();
        async move {
            let reply = client.request(service, format!("{n}")).await.unwrap();
            assert_eq!(reply.payload_str(), Some(format!("re: {n}").as_str()));
        }
    });
    step(futures::future::join_all(requests)).await;
    step(client.disconnect()).await.unwrap();
    step(responder.disconnect()).await.unwrap();
}

#[tokio::test]
async fn caller_chosen_response_topic_and_correlation_data_are_used() {
    let broker = broker();
    let service = unique_topic("request/custom");
    let responder = spawn_responder(broker.port(), &service).await;
    let client = connect(broker.port(), 1000).await;
    let reply_topic = unique_topic("request/custom-replies");
    let properties = PublishProperties {
        response_topic: Some(reply_topic.clone()),
        correlation_data: Some(Bytes::from_static(b"corr-1")),
        ..Default::default()
    };
    let reply = step(client.request(service.as_str(), "x").properties(properties))
        .await
        .unwrap();
    assert_eq!(reply.topic, reply_topic);
    assert_eq!(
        reply.properties.unwrap().correlation_data.as_deref(),
        Some(&b"corr-1"[..])
    );

    let wildcard = PublishProperties {
        response_topic: Some("replies/+".into()),
        ..Default::default()
    };
    assert!(matches!(
        step(client.request(service.as_str(), "x").properties(wildcard)).await,
        Err(Error::InvalidTopic(_))
    ));
    step(client.disconnect()).await.unwrap();
    step(responder.disconnect()).await.unwrap();
}

#[tokio::test]
async fn same_pending_pair_is_refused_and_a_timed_out_request_is_cleaned_up() {
    let broker = broker();
    let client = connect(broker.port(), 1000).await;
    let nobody = unique_topic("request/nobody");
    let reply_topic = unique_topic("request/replies");
    let properties = PublishProperties {
        response_topic: Some(reply_topic.clone()),
        correlation_data: Some(Bytes::from_static(b"same")),
        ..Default::default()
    };
    let first = client
        .request(nobody.as_str(), "1")
        .properties(properties.clone())
        .timeout(Duration::from_millis(300));
    let second = async {
        // Once the first is registered (its subscription made), the same
        // pair again is refused.
        tokio::task::yield_now().await;
        client
            .request(nobody.as_str(), "2")
            .properties(properties.clone())
            .timeout(Duration::from_secs(5))
            .await
    };
    let (first, second) = step(async { tokio::join!(first, second) }).await;
    match first {
        Err(Error::Timeout { what, after }) => {
            assert_eq!(what, "a reply");
            assert_eq!(after, Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    match second {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("already pending")),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The timed-out request is forgotten: the pair can be used again, and a
    // reply to it now reaches the new request.
    let responder = spawn_responder(broker.port(), &nobody).await;
    let reply = step(client.request(nobody.as_str(), "3").properties(properties))
        .await
        .unwrap();
    assert_eq!(reply.payload_str(), Some("re: 3"));
    step(client.disconnect()).await.unwrap();
    step(responder.disconnect()).await.unwrap();
}

#[tokio::test]
async fn unmatched_replies_fall_through_to_normal_routing() {
    let broker = broker();
    let client = connect(broker.port(), 1000).await;
    let reply_topic = unique_topic("request/fallthrough");
    let mut watcher = step(
        client
            .subscribe([reply_topic.as_str()])
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    let service = unique_topic("request/fallthrough-service");
    let responder = spawn_responder(broker.port(), &service).await;
    // A message on the response topic with other correlation data.
    let stray = PublishProperties {
        correlation_data: Some(Bytes::from_static(b"not-a-request")),
        ..Default::default()
    };
    step(
        responder
            .publish(reply_topic.as_str(), "stray")
            .qos(QoS::AtLeastOnce)
            .properties(stray),
    )
    .await
    .unwrap();
    let message = step(watcher.recv()).await.unwrap();
    assert_eq!(message.payload_str(), Some("stray"));
    // A real request using that topic: its reply goes to the request only.
    let properties = PublishProperties {
        response_topic: Some(reply_topic.clone()),
        ..Default::default()
    };
    let reply = step(client.request(service.as_str(), "q").properties(properties))
        .await
        .unwrap();
    assert_eq!(reply.payload_str(), Some("re: q"));
    step(responder.publish(reply_topic.as_str(), "later"))
        .await
        .unwrap();
    let message = step(watcher.recv()).await.unwrap();
    assert_eq!(
        message.payload_str(),
        Some("later"),
        "the reply was not seen here"
    );
    step(client.disconnect()).await.unwrap();
    step(responder.disconnect()).await.unwrap();
}

#[tokio::test]
async fn max_pending_requests_makes_further_calls_wait() {
    let broker = broker();
    let service = unique_topic("request/limited");
    let responder = spawn_responder(broker.port(), &service).await;
    let client = connect(broker.port(), 1).await;
    let nobody = unique_topic("request/limited-nobody");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let slow = {
        let client = client.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let result = client
                .request(nobody, "unanswered")
                .timeout(Duration::from_millis(300))
                .await;
            assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
            done.send("slow").unwrap();
        })
    };
    // Let the slow request take the only slot.
    tokio::task::yield_now().await;
    let fast = {
        let client = client.clone();
        tokio::spawn(async move {
            let reply = client.request(service, "quick").await.unwrap();
            assert_eq!(reply.payload_str(), Some("re: quick"));
            done_tx.send("fast").unwrap();
        })
    };
    step(slow).await.unwrap();
    step(fast).await.unwrap();
    assert_eq!(done_rx.recv().await, Some("slow"));
    assert_eq!(
        done_rx.recv().await,
        Some("fast"),
        "the second waited for the slot"
    );
    step(client.disconnect()).await.unwrap();
    step(responder.disconnect()).await.unwrap();
}

#[tokio::test]
async fn disconnect_ends_pending_requests() {
    let broker = broker();
    let client = connect(broker.port(), 10).await;
    let nobody = unique_topic("request/ended");
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.request(nobody, "x").await })
    };
    // Wait until the request is in flight: its response topic subscribed.
    tokio::task::yield_now().await;
    step(client.ping(Duration::from_secs(5))).await.unwrap();
    step(client.disconnect()).await.unwrap();
    let result = step(pending).await.unwrap();
    assert!(
        matches!(result, Err(Error::Disconnected { .. })),
        "{result:?}"
    );
}

/// A duplicate that gives up (a zero timeout, or dropped) must not take the
/// live request it collided with down with it: its cancellation names the
/// same (response topic, correlation data) pair.
#[tokio::test]
async fn an_abandoned_duplicate_leaves_the_original_request_pending() {
    let broker = broker();
    let client = connect(broker.port(), 1000).await;
    let service = unique_topic("request/slow");
    let properties = PublishProperties {
        response_topic: Some(unique_topic("request/replies")),
        correlation_data: Some(Bytes::from_static(b"same")),
        ..Default::default()
    };
    // A service answering by hand, so the original stays pending meanwhile.
    let service_client = connect(broker.port(), 1).await;
    let mut requests = step(
        service_client
            .subscribe([service.as_str()])
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    let original = client
        .request(service.as_str(), "original")
        .properties(properties.clone())
        .timeout(Duration::from_secs(10));
    let duplicates_then_answer = async {
        // The original reached the service: it is registered and pending.
        let request = requests.recv().await.expect("the original request");
        for _ in 0..3 {
            // Handed over on its first poll, then dropped before the answer.
            let mut duplicate = Box::pin(
                client
                    .request(service.as_str(), "abandoned")
                    .properties(properties.clone())
                    .into_future(),
            );
            assert!(futures::poll!(duplicate.as_mut()).is_pending());
            drop(duplicate);
        }
        // The same pair is still taken by the original.
        let again = client
            .request(service.as_str(), "again")
            .properties(properties.clone());
        assert!(matches!(again.await, Err(Error::InvalidArgument(_))));
        let asked = request.properties.expect("5.0 properties");
        let reply = PublishProperties {
            correlation_data: asked.correlation_data,
            ..Default::default()
        };
        service_client
            .publish(
                asked.response_topic.expect("a response topic"),
                "re: original",
            )
            .qos(QoS::AtLeastOnce)
            .properties(reply)
            .await
            .unwrap();
    };
    let (reply, ()) = step(async { tokio::join!(original, duplicates_then_answer) }).await;
    assert_eq!(reply.unwrap().payload_str(), Some("re: original"));
    step(client.disconnect()).await.unwrap();
    step(service_client.disconnect()).await.unwrap();
}
