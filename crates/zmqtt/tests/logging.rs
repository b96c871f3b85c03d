//! Logging through `tracing` (SPEC 1.11): routing WARNINGs, and neither
//! credentials nor payloads in the output even at TRACE level.
//!
//! Each test installs a capturing subscriber for its own thread; the tests
//! use the current-thread runtime, so the client's task logs on that thread.

mod support;

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{broker, step, unique_topic};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use zmqtt::{create_client, Error, PublishProperties, QoS, Will};

/// One event or span (its fields), as text.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    target: String,
    text: String,
}

/// A subscriber that keeps everything, at every level.
#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<Line>>>,
    next_span: Arc<AtomicU64>,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Capture {
    fn push(&self, metadata: &Metadata<'_>, text: String) {
        self.lines.lock().unwrap().push(Line {
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            text,
        });
    }

    fn lines(&self) -> Vec<Line> {
        self.lines.lock().unwrap().clone()
    }

    fn all_text(&self) -> String {
        self.lines()
            .iter()
            .map(|line| format!("{} {} {}\n", line.level, line.target, line.text))
            .collect()
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut fields);
        self.push(span.metadata(), fields.0);
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut fields = Fields("span record".into());
        values.record(&mut fields);
        self.lines.lock().unwrap().push(Line {
            level: Level::TRACE,
            target: String::new(),
            text: fields.0,
        });
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.push(event.metadata(), fields.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// SPEC 1.7: the same filter (here also the same effective filter behind
/// `$share/<group>/`) in a second live subscription gets a WARNING, and
/// only that subscription gets one.
#[tokio::test]
async fn a_duplicate_filter_is_logged_as_a_warning() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let broker = broker();
    let client = create_client("127.0.0.1").port(broker.port()).v5().build();
    step(client.connect()).await.unwrap();
    let topic = unique_topic("logging/dup");
    let other = unique_topic("logging/other");
    let _first = step(client.subscribe([topic.as_str()])).await.unwrap();
    let _wildcard = step(client.subscribe([format!("{topic}/+"), other.clone()]))
        .await
        .unwrap();
    let warnings = |capture: &Capture| -> Vec<Line> {
        capture
            .lines()
            .into_iter()
            .filter(|line| line.level == Level::WARN)
            .collect()
    };
    assert!(warnings(&capture).is_empty(), "{:?}", warnings(&capture));

    let _second = step(client.subscribe([topic.as_str()])).await.unwrap();
    let found = warnings(&capture);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].target, "zmqtt::client");
    assert!(
        found[0].text.contains(&format!("filter={topic}")),
        "{found:?}"
    );

    let _shared = step(client.subscribe([format!("$share/group/{topic}")]))
        .await
        .unwrap();
    let found = warnings(&capture);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[1]
            .text
            .contains(&format!("filter=$share/group/{topic}")),
        "{found:?}"
    );
    step(client.disconnect()).await.unwrap();
}

/// SPEC 1.11: credentials and payloads never appear in the logs, at any
/// level, through connect, publish at every QoS, delivery, acknowledgement,
/// request/response, a refused connect and the Will.
#[tokio::test]
async fn no_credentials_or_payloads_are_logged_even_at_trace() {
    const PASSWORD: &str = "pw-7d1e-never-logged";
    const PAYLOAD: &str = "payload-5c2a-never-logged";
    const WILL_PAYLOAD: &str = "will-91b3-never-logged";
    const CORRELATION: &str = "corr-0f4d-never-logged";
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let broker = broker();

    // A refused connect with a wrong password.
    let refused = create_client("127.0.0.1")
        .port(broker.password_port())
        .credentials(broker.username(), PASSWORD)
        .build();
    assert!(matches!(
        step(refused.connect()).await,
        Err(Error::Connect { .. })
    ));

    // The right password (also never logged), a Will, traffic at every QoS.
    let client = create_client("127.0.0.1")
        .port(broker.password_port())
        .credentials(broker.username(), broker.password())
        .will(Will::new(unique_topic("logging/will"), WILL_PAYLOAD))
        .v5()
        .build();
    step(client.connect()).await.unwrap();
    let topic = unique_topic("logging/traffic");
    let mut auto = step(
        client
            .subscribe([format!("{topic}/auto")])
            .qos(QoS::ExactlyOnce),
    )
    .await
    .unwrap();
    let mut manual = step(
        client
            .subscribe([format!("{topic}/manual")])
            .qos(QoS::ExactlyOnce)
            .auto_ack(false),
    )
    .await
    .unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        step(client.publish(format!("{topic}/auto"), PAYLOAD).qos(qos))
            .await
            .unwrap();
        let message = step(auto.recv()).await.unwrap();
        assert_eq!(message.payload_str(), Some(PAYLOAD));
        assert!(!format!("{message:?}").contains(PAYLOAD));
        step(client.publish(format!("{topic}/manual"), PAYLOAD).qos(qos))
            .await
            .unwrap();
        let message = step(manual.recv()).await.unwrap();
        step(message.ack()).await.unwrap();
    }
    // A request answered by a responder on the same client.
    let service = format!("{topic}/service");
    let mut requests = step(client.subscribe([service.as_str()])).await.unwrap();
    let requesting = {
        let client = client.clone();
        let service = service.clone();
        tokio::spawn(async move {
            client
                .request(service, PAYLOAD)
                .properties(PublishProperties {
                    correlation_data: Some(CORRELATION.into()),
                    ..PublishProperties::default()
                })
                .timeout(Duration::from_secs(10))
                .await
        })
    };
    let request = step(requests.recv()).await.unwrap();
    let properties = request.properties.clone().unwrap();
    step(
        client
            .publish(properties.response_topic.unwrap(), PAYLOAD)
            .properties(PublishProperties {
                correlation_data: properties.correlation_data,
                ..PublishProperties::default()
            }),
    )
    .await
    .unwrap();
    let reply = step(requesting).await.unwrap().unwrap();
    assert_eq!(reply.payload_str(), Some(PAYLOAD));
    step(client.ping(Duration::from_secs(5))).await.unwrap();
    step(client.disconnect()).await.unwrap();

    let text = capture.all_text();
    // The logs are not empty: packets and the lifecycle are there.
    assert!(capture
        .lines()
        .iter()
        .any(|line| line.target == "zmqtt::protocol" && line.level == Level::DEBUG));
    assert!(text.contains("connected"), "{text}");
    assert!(text.contains(&topic), "topics are logged: {text}");
    for secret in [
        PASSWORD,
        broker.password(),
        PAYLOAD,
        WILL_PAYLOAD,
        CORRELATION,
    ] {
        assert!(!text.contains(secret), "{secret:?} was logged:\n{text}");
    }
}
