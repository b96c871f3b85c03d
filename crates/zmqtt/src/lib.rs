//! zmqtt: a fast, complete MQTT 3.1.1 and 5.0 client for tokio.
//!
//! The protocol work happens in the sans-IO engine
//! [`zmqtt_proto`](https://docs.rs/zmqtt-proto); this crate drives it with one
//! tokio task per client. The protocol version is a type parameter, so the
//! compiler refuses 5.0 features on a 3.1.1 client:
//!
//! ```no_run
//! use futures::StreamExt;
//! use zmqtt::{PublishProperties, QoS, ReconnectConfig, Tls};
//!
//! # async fn demo() -> zmqtt::Result<()> {
//! let client = zmqtt::create_client("localhost")      // ClientBuilder<V311>
//!     .port(1883)
//!     .client_id("my-app")
//!     .tls(Tls::Off)
//!     .reconnect(ReconnectConfig::default())
//!     .build();                                       // Client<V311>, no I/O yet
//! client.connect().await?;
//! client.publish("test", "hello").qos(QoS::AtLeastOnce).await?;
//! client.disconnect().await?;
//!
//! let v5 = zmqtt::create_client("localhost").v5().session_expiry_interval(3600).build();
//! v5.connect().await?;
//! v5.publish("data", b"payload".as_slice())
//!     .properties(PublishProperties { message_expiry_interval: Some(60), ..Default::default() })
//!     .await?;
//! let mut sub = v5.subscribe(["sensors/#"]).qos(QoS::AtLeastOnce).auto_ack(false).await?;
//! while let Some(msg) = sub.next().await {
//!     println!("{}: {:?}", msg.topic, msg.payload);
//!     msg.ack().await?;
//! }
//! v5.disconnect().await?;
//! # Ok(()) }
//! ```
//!
//! Logging goes through `tracing`: target `zmqtt::client` for the connection
//! lifecycle and routing warnings, `zmqtt::protocol` for packets (debug /
//! trace). Credentials and payloads are never logged.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod builder;
mod client;
mod connection;
mod error;
mod message;
mod request;
mod router;
mod status;
mod subscription;
mod tls;
mod topic;
mod version;

pub use builder::{ClientBuilder, Will, DEFAULT_PORT};
pub use client::{
    Client, ConnectionInfo, ConnectionState, PublishBuilder, SubscribeBuilder, DEFAULT_PING_TIMEOUT,
};
pub use connection::reconnect::ReconnectConfig;
pub use error::{Error, Result};
pub use message::Message;
pub use request::{RequestBuilder, DEFAULT_REQUEST_TIMEOUT};
pub use subscription::{Subscription, UnsubscribeResult};
pub use tls::{Tls, TlsConfig, TlsVersion};
pub use topic::Topic;
pub use version::{Protocol, V311, V5};

pub use zmqtt_proto::topic::DEFAULT_STRIPPED_PREFIXES;
pub use zmqtt_proto::{
    AuthProperties, ConnAckProperties, DisconnectProperties, PublishProperties, QoS, ReasonCode,
    ReasonProperties, RetainHandling, WillProperties,
};

/// Starts building a client for `host` (MQTT 3.1.1 unless
/// [`ClientBuilder::v5`] is called). Does no I/O.
pub fn create_client(host: impl Into<String>) -> ClientBuilder<V311> {
    ClientBuilder::new(host)
}

/// Whether a message on `topic` matches the subscription `filter` the way the
/// client routes (SPEC 1.7): `$share/<group>/f` and the stripped prefixes
/// (`$queue`, `$exclusive` by default, see [`DEFAULT_STRIPPED_PREFIXES`])
/// match on `f`; `+` and `#` never match a topic starting with `$` at the
/// first level.
///
/// ```
/// assert!(zmqtt::topic_matches("$share/g/a/+", "a/b", zmqtt::DEFAULT_STRIPPED_PREFIXES));
/// assert!(!zmqtt::topic_matches("#", "$SYS/load", zmqtt::DEFAULT_STRIPPED_PREFIXES));
/// ```
pub fn topic_matches(filter: &str, topic: &str, stripped_prefixes: &[impl AsRef<str>]) -> bool {
    zmqtt_proto::topic::topic_matches(filter, topic, stripped_prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}

    #[test]
    fn handles_and_errors_cross_threads() {
        send_sync::<Client<V311>>();
        send_sync::<Client<V5>>();
        send_sync::<Message>();
        send_sync::<Error>();
        send_sync::<ConnectionInfo>();
        fn subscription_is_send<T: Send>() {}
        subscription_is_send::<Subscription>();
    }

    #[test]
    fn every_future_of_the_api_is_send() {
        use std::future::IntoFuture;
        let client = create_client("h").build();
        let v5 = create_client("h").v5().build();
        send(&client.connect());
        send(&client.disconnect());
        send(&client.ping(DEFAULT_PING_TIMEOUT));
        send(&client.stopped());
        send(&client.publish("t", "x").into_future());
        send(&client.subscribe(["t"]).into_future());
        send(&v5.request("t", "x").into_future());
        send(&v5.auth("m", None));
        send(&v5.disconnect_with(ReasonCode::SUCCESS, DisconnectProperties::default()));
    }

    #[test]
    fn topic_matches_follows_the_routing_rules() {
        let prefixes = DEFAULT_STRIPPED_PREFIXES;
        assert!(topic_matches("a/+/c", "a/b/c", prefixes));
        assert!(topic_matches("$queue/a/#", "a/b", prefixes));
        assert!(topic_matches("$share/g/a/#", "a", prefixes));
        assert!(!topic_matches("+/x", "$SYS/x", prefixes), "MQTT-4.7.2-1");
        assert!(!topic_matches("$queue/a", "a", &[] as &[&str]));
    }
}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/connecting.md")]
pub struct ConnectingGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/publishing.md")]
pub struct PublishingGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/subscribing.md")]
pub struct SubscribingGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/acknowledgement.md")]
pub struct AcknowledgementGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/reconnection.md")]
pub struct ReconnectionGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/errors.md")]
pub struct ErrorsGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/mqtt5.md")]
pub struct Mqtt5Guide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/tls.md")]
pub struct TlsGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/logging.md")]
pub struct LoggingGuide;
