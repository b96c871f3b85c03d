//! 5.0 request / response: [`RequestBuilder`] (made by `Client::request`).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};
use zmqtt_proto::{Publish, PublishProperties, QoS};

use crate::client::{not_connected, random_bytes, Client, Shared};
use crate::connection::command::{Command, Control, RequestKey};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::version::V5;

/// The default time a request waits for its reply.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A request being prepared; `.await` it for the reply (SPEC 1.9).
///
/// The response topic is the client's own generated one unless
/// `properties.response_topic` names another (no wildcards); the correlation
/// data is 16 random bytes unless `properties.correlation_data` is set. The
/// response topic is subscribed before the request is published. The first
/// message on it carrying the correlation data is the reply, delivered to
/// this request only; other messages there go to the normal routing.
///
/// Fails with [`Error::InvalidArgument`] when the same (response topic,
/// correlation data) pair is already pending, [`Error::Timeout`] when no reply
/// came in time, [`Error::Disconnected`] when the client is disconnected.
/// Dropping the future cleans up (the pending entry, and the response topic's
/// subscription when it was the last user of a topic named by the caller).
#[must_use = "a request does nothing until awaited"]
pub struct RequestBuilder<'a> {
    client: &'a Client<V5>,
    topic: String,
    payload: Bytes,
    qos: QoS,
    timeout: Duration,
    properties: PublishProperties,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("topic", &self.topic)
            .field("payload_len", &self.payload.len())
            .field("qos", &self.qos)
            .field("timeout", &self.timeout)
            .field("properties", &self.properties)
            .finish()
    }
}

impl<'a> RequestBuilder<'a> {
    pub(crate) fn new(client: &'a Client<V5>, topic: String, payload: Bytes) -> Self {
        RequestBuilder {
            client,
            topic,
            payload,
            qos: QoS::AtMostOnce,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            properties: PublishProperties::default(),
        }
    }

    /// QoS of the request publish (default [`QoS::AtMostOnce`]).
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// How long to wait for the reply, subscribing and publishing included
    /// (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// PUBLISH properties; `response_topic` and `correlation_data`, when set,
    /// are used instead of generated ones.
    pub fn properties(mut self, properties: PublishProperties) -> Self {
        self.properties = properties;
        self
    }
}

impl<'a> IntoFuture for RequestBuilder<'a> {
    type Output = Result<Message>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Message>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let timeout = self.timeout;
            match tokio::time::timeout(timeout, self.run()).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout {
                    what: "a reply",
                    after: timeout,
                }),
            }
        })
    }
}

impl RequestBuilder<'_> {
    async fn run(self) -> Result<Message> {
        zmqtt_proto::topic::validate_topic_name(&self.topic)?;
        let mut properties = self.properties;
        let response_topic = match properties.response_topic.take() {
            Some(topic) => {
                zmqtt_proto::topic::validate_topic_name(&topic)?;
                topic
            }
            None => self.client.shared().reply_topic.clone(),
        };
        let correlation = properties
            .correlation_data
            .take()
            .unwrap_or_else(|| Bytes::copy_from_slice(&random_bytes::<16>()));
        properties.response_topic = Some(response_topic.clone());
        properties.correlation_data = Some(correlation.clone());
        let publish = Publish {
            topic: self.topic,
            payload: self.payload,
            qos: self.qos,
            properties,
            ..Publish::default()
        };
        let shared = self.client.shared();
        let _slot = request_slots(shared)
            .acquire_owned()
            .await
            .map_err(|_| not_connected())?;
        let link = self.client.link()?;
        let key: RequestKey = (response_topic, correlation);
        let mut guard = CancelGuard {
            control: link.control.clone(),
            key: Some(key.clone()),
        };
        let result = link
            .call(|reply| Command::Request {
                publish: Box::new(publish),
                key,
                reply,
            })
            .await;
        // The driver has forgotten the request once it answered.
        guard.key = None;
        result
    }
}

/// Tells the driver to forget a request whose caller gave up (timeout, drop).
struct CancelGuard {
    control: mpsc::UnboundedSender<Control>,
    key: Option<RequestKey>,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let _ = self.control.send(Control::CancelRequest(key));
        }
    }
}

/// The client's `max_pending_requests` slots, made by its first request:
/// most clients never make one and do not pay for the semaphore.
fn request_slots(shared: &Shared) -> Arc<Semaphore> {
    let slots = shared.request_slots.get_or_init(|| {
        let permits = shared
            .options
            .max_pending_requests
            .clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Semaphore::new(permits))
    });
    Arc::clone(slots)
}
