//! Received messages and their acknowledgement.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use zmqtt_proto::session::AckToken;
use zmqtt_proto::{PublishProperties, QoS};

use crate::client::{ConnectionState, Status};
use crate::connection::command::Control;
use crate::error::{Error, Result};
use crate::status::StatusCell;

/// A message received from the broker (SPEC 1.8).
///
/// Cloning is cheap (the payload is shared). Clones share one acknowledgement:
/// [`ack`](Message::ack) sends it once, whichever clone calls it.
#[derive(Clone)]
pub struct Message {
    /// The topic it was published to (a topic alias already resolved).
    pub topic: String,
    /// The payload, a view of the bytes read from the socket (not copied).
    pub payload: Bytes,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// The RETAIN flag: a retained message sent because of a new subscription.
    pub retain: bool,
    /// 5.0 properties; `None` on 3.1.1.
    pub properties: Option<PublishProperties>,
    ack: Option<Arc<PendingAck>>,
}

impl Message {
    pub(crate) fn new(
        publish: zmqtt_proto::Publish,
        v5: bool,
        ack: Option<Arc<PendingAck>>,
    ) -> Message {
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: v5.then_some(publish.properties),
            ack,
        }
    }

    /// The payload as UTF-8 text, if it is valid UTF-8.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// Acknowledges the message: PUBACK (QoS 1) or PUBREC (QoS 2) is sent.
    ///
    /// Only needed for subscriptions made with `auto_ack(false)`; otherwise the
    /// client acknowledged it before handing it out and this does nothing.
    /// Idempotent. Acknowledgements leave in the order the messages arrived
    /// (MQTT-4.6.0-2, MQTT-4.6.0-3), so an early one waits for the ones
    /// before it. A message dropped without being acknowledged is given up on
    /// this connection: it sends nothing, no longer holds back later
    /// acknowledgements, and the broker sends it again on a resumed session.
    ///
    /// Fails with [`Error::Disconnected`] when the connection the message
    /// arrived on is gone (the broker sends it again on a resumed session).
    pub async fn ack(&self) -> Result<()> {
        match &self.ack {
            Some(pending) => pending.ack(),
            None => Ok(()),
        }
    }

    /// Whether the acknowledgement is still owed (manual ack, not yet sent).
    pub fn needs_ack(&self) -> bool {
        self.ack
            .as_ref()
            .is_some_and(|pending| !pending.done.load(Ordering::Acquire))
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload is left out: it may be large or private.
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("payload_len", &self.payload.len())
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("properties", &self.properties)
            .field("needs_ack", &self.needs_ack())
            .finish()
    }
}

/// The acknowledgement of one manual-ack QoS 1/2 message, shared by its clones.
pub(crate) struct PendingAck {
    token: AckToken,
    done: AtomicBool,
    control: mpsc::UnboundedSender<Control>,
    status: Arc<StatusCell<Status>>,
    /// The connection the message arrived on: its token is good there only.
    connection_id: u64,
}

impl PendingAck {
    pub(crate) fn new(
        token: AckToken,
        control: mpsc::UnboundedSender<Control>,
        status: Arc<StatusCell<Status>>,
        connection_id: u64,
    ) -> Arc<Self> {
        Arc::new(PendingAck {
            token,
            done: AtomicBool::new(false),
            control,
            status,
            connection_id,
        })
    }

    fn ack(&self) -> Result<()> {
        if self.done.load(Ordering::Acquire) {
            return Ok(());
        }
        let same_connection = {
            let status = self.status.borrow();
            status.state == ConnectionState::Connected
                && status
                    .info
                    .as_ref()
                    .is_some_and(|info| info.connection_id == self.connection_id)
        };
        if !same_connection {
            return Err(Error::disconnected(
                "the connection this message arrived on is gone; \
                 the broker sends it again on a resumed session",
            ));
        }
        if self.done.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.control
            .send(Control::Ack(self.token))
            .map_err(|_| Error::disconnected("the client has stopped"))
    }
}

impl Drop for PendingAck {
    fn drop(&mut self) {
        if !self.done.load(Ordering::Acquire) {
            // Dropped unacknowledged: let later acknowledgements go.
            let _ = self.control.send(Control::Abandon(self.token));
        }
    }
}
