//! [`Subscription`]: the messages of one `subscribe()`.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use zmqtt_proto::{ReasonCode, ReasonProperties, UnsubscribeProperties};

use crate::client::Status;
use crate::connection::command::{Command, QueueRx, SubKey, Subscribed};
use crate::connection::queue::CommandTx;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::status::StatusCell;

/// The messages of one `subscribe()` (SPEC 1.7), in arrival order.
///
/// Read them with [`recv`](Self::recv) or as a `futures::Stream`. At most
/// `receive_buffer_size` messages wait here; when full, the client stops
/// reading the socket (TCP backpressure) until there is room again.
///
/// The subscription ends (`recv` returns `None`) when the client stops:
/// [`Client::disconnect`](crate::Client::disconnect), or a lost connection that
/// could not be restored ([`error`](Self::error) then says why). After a
/// reconnect it is subscribed again and keeps what it held.
///
/// [`stop`](Self::stop) unsubscribes; [`detach`](Self::detach), and dropping
/// the subscription, only stop local delivery (no UNSUBSCRIBE, so a
/// persistent session keeps the broker's subscription). Messages still queued
/// are dropped; unacknowledged manual-ack ones are given up and sent again by
/// the broker on a resumed session.
pub struct Subscription {
    key: SubKey,
    filters: Vec<String>,
    granted: Vec<ReasonCode>,
    queue: QueueRx,
    commands: CommandTx,
    status: Arc<StatusCell<Status>>,
    /// `stop` or `detach` already told the driver.
    finished: bool,
    /// The queue reported its end.
    ended: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("filters", &self.filters)
            .field("granted", &self.granted)
            .field("queued", &self.len())
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        subscribed: Subscribed,
        filters: Vec<String>,
        commands: CommandTx,
        status: Arc<StatusCell<Status>>,
    ) -> Subscription {
        Subscription {
            key: subscribed.key,
            filters,
            granted: subscribed.granted,
            queue: subscribed.queue,
            commands,
            status,
            finished: false,
            ended: false,
        }
    }

    /// The next message; `None` once the subscription has ended and its queue
    /// is empty.
    pub async fn recv(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// A message if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        match &mut self.queue {
            QueueRx::Bounded(rx) => rx.try_recv().ok(),
            QueueRx::Unbounded(rx) => rx.try_recv().ok(),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let polled = match &mut self.queue {
            QueueRx::Bounded(rx) => rx.poll_recv(cx),
            QueueRx::Unbounded(rx) => rx.poll_recv(cx),
        };
        if let Poll::Ready(None) = polled {
            self.ended = true;
        }
        polled
    }

    /// How many messages are waiting.
    pub fn len(&self) -> usize {
        match &self.queue {
            QueueRx::Bounded(rx) => rx.len(),
            QueueRx::Unbounded(rx) => rx.len(),
        }
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the subscription has ended and its queue is drained, so that
    /// [`recv`](Self::recv) would return `None` at once ([`error`](Self::error)
    /// then says why). Never waits; with [`try_recv`](Self::try_recv) it tells
    /// "nothing yet" from "nothing ever again".
    pub fn is_finished(&self) -> bool {
        match &self.queue {
            QueueRx::Bounded(rx) => rx.is_closed() && rx.is_empty(),
            QueueRx::Unbounded(rx) => rx.is_closed() && rx.is_empty(),
        }
    }

    /// The topic filters, as given.
    pub fn filters(&self) -> &[String] {
        &self.filters
    }

    /// The SUBACK codes, one per filter: the granted QoS (0, 1, 2).
    pub fn granted(&self) -> &[ReasonCode] {
        &self.granted
    }

    /// Why the client stopped, once [`recv`](Self::recv) has returned `None`
    /// (or [`is_finished`](Self::is_finished) is true) because of a failure
    /// (`None` before that, and after a plain `disconnect()`).
    pub fn error(&self) -> Option<Error> {
        if !self.ended && !self.is_finished() {
            return None;
        }
        let status = self.status.borrow();
        status.stop_error.as_ref().map(|error| error.duplicate())
    }

    /// Unsubscribes (UNSUBSCRIBE, waits for UNSUBACK) and ends local delivery.
    /// A filter another live subscription also holds stays subscribed at the
    /// broker and is left out of the UNSUBSCRIBE (and of the result).
    ///
    /// Fails with [`Error::Disconnected`] when not connected (local delivery
    /// ends anyway).
    pub async fn stop(mut self) -> Result<UnsubscribeResult> {
        self.finished = true;
        let key = self.key;
        self.commands
            .call(|reply| Command::Unsubscribe {
                key,
                properties: Box::new(UnsubscribeProperties::default()),
                reply,
            })
            .await
    }

    /// Stops local delivery without UNSUBSCRIBE (a persistent session keeps
    /// the broker's subscription). Queued messages are dropped.
    pub async fn detach(mut self) {
        self.finished = true;
        self.commands.send_unbounded(Command::Detach(self.key));
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.finished {
            self.commands.send_unbounded(Command::Detach(self.key));
        }
    }
}

impl futures_core::Stream for Subscription {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().poll_recv(cx)
    }
}

/// The broker's answer to [`Subscription::stop`] (UNSUBACK).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UnsubscribeResult {
    /// The filters sent in the UNSUBSCRIBE.
    pub topic_filters: Vec<String>,
    /// 5.0: one code per filter (0x00 success, 0x11 no subscription existed,
    /// ≥ 0x80 failure); empty on 3.1.1.
    pub reason_codes: Vec<ReasonCode>,
    /// 5.0: reason string and user properties.
    pub properties: ReasonProperties,
}

impl UnsubscribeResult {
    /// Filters the broker refused to unsubscribe, with their codes (≥ 0x80).
    pub fn failures(&self) -> BTreeMap<String, u8> {
        self.topic_filters
            .iter()
            .zip(&self.reason_codes)
            .filter(|(_, code)| code.is_failure())
            .map(|(filter, code)| (filter.clone(), code.0))
            .collect()
    }

    /// 5.0: the broker's Reason String.
    pub fn reason_string(&self) -> Option<&str> {
        self.properties.reason_string.as_deref()
    }

    /// 5.0: the broker's user properties.
    pub fn user_properties(&self) -> &[(String, String)] {
        &self.properties.user_properties
    }
}
