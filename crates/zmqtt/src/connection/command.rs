//! What handles send to the driver task.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use zmqtt_proto::session::AckToken;
use zmqtt_proto::{
    Auth, Disconnect, Publish, ReasonCode, SubscribeFilter, SubscribeProperties,
    UnsubscribeProperties,
};

use crate::error::Result;
use crate::message::Message;
use crate::subscription::UnsubscribeResult;
use crate::topic::Topic;

/// Names one subscription inside a driver (registration order).
pub(crate) type SubKey = u64;

/// A pending `request()`: its response topic and correlation data.
pub(crate) type RequestKey = (String, Bytes);

/// Calls that need an answer, over the bounded command channel.
///
/// Kept small (large parts boxed): every queued command is moved into the
/// channel and out again, so its size is paid per message.
#[derive(Debug)]
pub(crate) enum Command {
    /// A QoS 0 publish without properties from `try_send()`: nobody waits
    /// for its outcome, so it carries no answer channel.
    PublishQos0 {
        /// Inline when short: a QoS 0 publish allocates nothing.
        topic: Topic,
        payload: Bytes,
        retain: bool,
    },
    Publish {
        publish: Box<Publish>,
        reply: oneshot::Sender<Result<()>>,
        /// QoS 1/2: held until the publish completes (bounds pending publishes).
        slot: Option<OwnedSemaphorePermit>,
    },
    Subscribe {
        spec: Box<SubscribeSpec>,
        reply: oneshot::Sender<Result<Subscribed>>,
    },
    Unsubscribe {
        key: SubKey,
        properties: Box<UnsubscribeProperties>,
        reply: oneshot::Sender<Result<UnsubscribeResult>>,
    },
    Ping {
        reply: oneshot::Sender<Result<()>>,
    },
    Request {
        publish: Box<Publish>,
        key: RequestKey,
        reply: oneshot::Sender<Result<Message>>,
    },
    Auth {
        auth: Box<Auth>,
        reply: oneshot::Sender<Result<()>>,
    },
    Disconnect {
        disconnect: Box<Disconnect>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Drop the connection as if it were lost; answered once it is closed.
    Reset {
        reply: oneshot::Sender<Result<()>>,
    },
    /// Stop local delivery of a subscription without UNSUBSCRIBE (it was
    /// detached or dropped). Queued even when the queue is full: `Drop`
    /// sends it.
    Detach(SubKey),
    /// The receiver of the control channel, made by the first handle that
    /// needed the channel (see `CommandTx::control`).
    ControlChannel(mpsc::UnboundedReceiver<Control>),
}

/// Fire-and-forget notices of messages and requests, over an unbounded
/// channel so that `Drop` impls can send them. Their number is bounded by the
/// live handles that send them. The channel is made on first use: most
/// clients never need it.
#[derive(Debug)]
pub(crate) enum Control {
    Ack(AckToken),
    Abandon(AckToken),
    /// A `request()` gave up (timeout, cancelled).
    CancelRequest(RequestKey),
}

/// What a `subscribe()` asks for.
#[derive(Debug, Clone)]
pub(crate) struct SubscribeSpec {
    pub filters: Vec<SubscribeFilter>,
    pub properties: SubscribeProperties,
    pub auto_ack: bool,
    /// 0 = unbounded.
    pub receive_buffer_size: usize,
}

/// The answer to a successful subscribe.
#[derive(Debug)]
pub(crate) struct Subscribed {
    pub key: SubKey,
    pub queue: QueueRx,
    pub granted: Vec<ReasonCode>,
}

/// The sending side of a subscription's queue (driver).
#[derive(Debug, Clone)]
pub(crate) enum QueueTx {
    Bounded(mpsc::Sender<Message>),
    Unbounded(mpsc::UnboundedSender<Message>),
}

/// The receiving side of a subscription's queue (the `Subscription`).
#[derive(Debug)]
pub(crate) enum QueueRx {
    Bounded(mpsc::Receiver<Message>),
    Unbounded(mpsc::UnboundedReceiver<Message>),
}

/// A subscription queue of `capacity` messages (0 = unbounded).
pub(crate) fn queue(capacity: usize) -> (QueueTx, QueueRx) {
    if capacity == 0 {
        let (tx, rx) = mpsc::unbounded_channel();
        (QueueTx::Unbounded(tx), QueueRx::Unbounded(rx))
    } else {
        let (tx, rx) = mpsc::channel(capacity.min(tokio::sync::Semaphore::MAX_PERMITS));
        (QueueTx::Bounded(tx), QueueRx::Bounded(rx))
    }
}

/// Whether a queue can take a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    Yes,
    Full,
    Closed,
}

impl QueueTx {
    pub(crate) fn room(&self) -> Room {
        match self {
            QueueTx::Bounded(tx) if tx.is_closed() => Room::Closed,
            QueueTx::Bounded(tx) if tx.capacity() == 0 => Room::Full,
            QueueTx::Unbounded(tx) if tx.is_closed() => Room::Closed,
            _ => Room::Yes,
        }
    }

    /// Puts a message in a queue that has room (checked with `room`).
    pub(crate) fn push(&self, message: Message) -> bool {
        match self {
            QueueTx::Bounded(tx) => tx.try_send(message).is_ok(),
            QueueTx::Unbounded(tx) => tx.send(message).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every queued command is moved into the queue and out again: the
    /// large parts stay boxed; only a QoS 0 publish's inline topic (64
    /// bytes, cheaper to move than to allocate) makes a command bigger.
    #[test]
    fn a_command_stays_small() {
        let without_topic = std::mem::size_of::<Command>() - std::mem::size_of::<Topic>();
        assert!(without_topic <= 6 * std::mem::size_of::<usize>());
    }
}
