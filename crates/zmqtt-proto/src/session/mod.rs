//! The client session state machine: packet identifiers, QoS 1/2 flows in both
//! directions, flow control, resend after a resumed session, keepalive.
//!
//! [`ClientSession`] owns no socket and reads no clock. The driver (the tokio
//! client, the Python package) moves bytes and passes the current time; the
//! session decides what to send and reports what happened.
//!
//! # Call order
//!
//! 1. Create one [`ClientSession`] per client with [`ClientSession::new`]. It
//!    lives across connections: reconnecting reuses it, so unacknowledged
//!    publishes and incoming QoS 2 state survive.
//! 2. When a transport is up, call [`handle_transport_open`](ClientSession::handle_transport_open)
//!    (queues CONNECT, Will included, on every connection).
//! 3. After **every** input — [`handle_received`](ClientSession::handle_received),
//!    [`handle_timeout`](ClientSession::handle_timeout), a command such as
//!    [`publish`](ClientSession::publish) or [`acknowledge`](ClientSession::acknowledge) —
//!    the driver:
//!    - drains [`poll_event`](ClientSession::poll_event) until `None`;
//!    - calls [`poll_transmit`](ClientSession::poll_transmit) and writes what it
//!      returns to the transport in one write;
//!    - re-arms its timer from [`poll_timeout`](ClientSession::poll_timeout) and
//!      calls [`handle_timeout`](ClientSession::handle_timeout) when it fires.
//! 4. After [`Event::Closed`] (state [`SessionState::Closed`]) the driver writes
//!    the bytes still returned by `poll_transmit` (a 5.0 DISCONNECT, say), closes
//!    the transport and calls [`handle_transport_closed`](ClientSession::handle_transport_closed).
//!    When the transport fails on its own, it calls `handle_transport_closed`
//!    directly (a `Closed { reason: TransportClosed }` event follows).
//! 5. To reconnect, go back to step 2 with the same session.
//!
//! Two inputs serve a driver that applies backpressure: while it stops reading
//! the transport (a consumer is slow) it calls
//! [`set_receive_paused`](ClientSession::set_receive_paused), which suspends the
//! PINGRESP deadline; a received message it drops without acknowledging it
//! goes to [`abandon`](ClientSession::abandon), so that later
//! acknowledgements are not held behind it.
//!
//! Commands are accepted only while [`SessionState::Connected`]
//! ([`CommandError::NotConnected`] otherwise), because the broker's limits
//! (Maximum QoS, Maximum Packet Size, …) are known only after CONNACK.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::BytesMut;
//! use zmqtt_proto::session::{ClientSession, Event, SessionConfig, SessionState};
//! use zmqtt_proto::{ProtocolVersion, Publish, QoS};
//!
//! let mut session = ClientSession::new(SessionConfig::new(ProtocolVersion::V311, "demo"))?;
//! let start = Instant::now(); // the driver reads the clock, the engine never does
//!
//! session.handle_transport_open(start);
//! let mut to_socket = BytesMut::new();
//! session.poll_transmit(&mut to_socket);
//! assert_eq!(to_socket[0], 0x10); // CONNECT, to be written to the socket
//! to_socket.clear();
//!
//! // Bytes read from the socket: CONNACK, accepted.
//! let mut from_socket = BytesMut::from(&[0x20, 0x02, 0x00, 0x00][..]);
//! session.handle_received(start, &mut from_socket);
//! assert!(matches!(session.poll_event(), Some(Event::Connected { .. })));
//! assert_eq!(session.state(), SessionState::Connected);
//!
//! // A QoS 1 publish gets a request id; its PUBLISH is ready to write.
//! let publish = Publish {
//!     topic: "sensors/1".into(),
//!     qos: QoS::AtLeastOnce,
//!     payload: "21.5".into(),
//!     ..Publish::default()
//! };
//! let id = session.publish(start, publish)?.expect("QoS 1 has a request id");
//! session.poll_transmit(&mut to_socket);
//! assert_eq!(to_socket[0], 0x32); // PUBLISH, QoS 1
//!
//! // PUBACK for packet identifier 1 completes it.
//! let mut from_socket = BytesMut::from(&[0x40, 0x02, 0x00, 0x01][..]);
//! session.handle_received(start, &mut from_socket);
//! match session.poll_event() {
//!     Some(Event::PublishCompleted { id: done, result }) => {
//!         assert_eq!(done, id);
//!         assert!(result.is_ok());
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // Nothing else to do until the keepalive ping is due (60 s after the last send).
//! assert_eq!(session.poll_timeout(), Some(start + Duration::from_secs(60)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod event;
mod packet_id;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

pub use config::{
    ConfigError, PingTimeout, SessionConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PING_TIMEOUT_CAP,
    PROTOCOL_MAX_PACKET_SIZE,
};
pub use event::{
    AckToken, CloseReason, CommandError, Event, Negotiated, ProtocolViolation, PublishAck,
    PublishRejected, RequestError, RequestId,
};

use crate::codec::{self, DecodeError, EncodeError};
use crate::packet::{
    Auth, ConnAck, Disconnect, Packet, PacketType, ProtocolVersion, PubResponse, Publish, QoS,
    SubAck, Subscribe, SubscribeFilter, SubscribeProperties, SubscriptionOptions, UnsubAck,
    Unsubscribe, UnsubscribeProperties,
};
use crate::reason::ReasonCode;
use crate::topic::{self, ValidTopicName};
pub use packet_id::IdHasher;
use packet_id::{PacketIdMap, PacketIdPool};

/// The largest 5.0 Subscription Identifier (a variable byte integer).
const MAX_SUBSCRIPTION_IDENTIFIER: u32 = 268_435_455;

/// Where the session stands with its current transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// No transport. Session state (unacknowledged publishes) is kept.
    Disconnected,
    /// CONNECT queued, waiting for CONNACK.
    Connecting,
    /// CONNACK accepted; commands are taken.
    Connected,
    /// The connection is over (DISCONNECT, refusal, error, timeout); the driver
    /// flushes `poll_transmit`, closes the transport and calls
    /// `handle_transport_closed`.
    Closed,
}

/// Where an outgoing QoS 1/2 publish is in its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutgoingPhase {
    /// Waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    AwaitingAck,
    /// PUBREL sent, waiting for PUBCOMP (QoS 2).
    AwaitingComp,
}

/// One QoS 1/2 publish we sent (or will send), keyed by its packet identifier.
#[derive(Debug)]
struct OutgoingPublish {
    request: RequestId,
    /// With the packet identifier set and the full topic (aliases resolved).
    publish: Publish,
    phase: OutgoingPhase,
    /// Ever written to a transport: a resend carries DUP=1, and a lost session
    /// makes its fate unknown.
    transmitted: bool,
    /// Occupies a unit of the send quota on the current connection.
    in_window: bool,
    /// Acceptance order, for resending in the original order (MQTT-4.6.0-1).
    seq: u64,
    /// Encoded size in its largest form (full topic), checked against the
    /// broker's Maximum Packet Size.
    size: usize,
}

/// What an outgoing packet identifier of SUBSCRIBE / UNSUBSCRIBE waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestKind {
    Subscribe,
    Unsubscribe,
}

#[derive(Debug)]
struct PendingRequest {
    request: RequestId,
    kind: RequestKind,
    filter_count: usize,
}

#[derive(Debug)]
struct PendingPing {
    /// `None` for a keepalive ping.
    request: Option<RequestId>,
    sent_at: Instant,
}

/// The state of an incoming QoS 1/2 packet identifier (the broker's id space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IncomingState {
    /// Delivered, PUBACK not sent yet.
    Qos1Unacked,
    /// Delivered, PUBREC not sent yet.
    Qos2Unacked,
    /// PUBREC sent, waiting for PUBREL. Kept across a resumed session.
    /// `rerec_queued`: a PUBREC answering a retransmission is queued.
    /// `this_connection`: the PUBLISH arrived on the current connection, so it
    /// counts against our Receive Maximum (the broker's send quota restarts on
    /// every connection).
    Qos2Received {
        rerec_queued: bool,
        this_connection: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckKind {
    /// PUBACK (QoS 1).
    Puback,
    /// PUBREC (QoS 2).
    Pubrec,
    /// PUBREC again for a retransmitted PUBLISH whose PUBREC was already sent.
    PubrecAgain,
    /// Given up by the driver ([`ClientSession::abandon`]): nothing is sent.
    Abandoned,
}

/// One acknowledgement owed on this connection, in PUBLISH arrival order
/// (MQTT-4.6.0-2, MQTT-4.6.0-3).
#[derive(Clone, Copy, Debug)]
struct AckSlot {
    packet_id: u16,
    kind: AckKind,
    acked: bool,
}

/// The client side of an MQTT session. See the [module docs](self) for the call
/// order.
#[derive(Debug)]
pub struct ClientSession {
    /// Shared with the caller: a client that makes a session per `connect()`
    /// keeps one copy of its CONNECT contents, not one per session.
    config: Arc<SessionConfig>,
    state: SessionState,
    /// Transport counter; tags acknowledgement tokens.
    connection: u64,
    successful_connections: u64,
    next_request: u64,
    /// Encoded bytes due to the transport.
    out: BytesMut,
    events: VecDeque<Event>,
    negotiated: Option<Negotiated>,

    last_sent: Option<Instant>,
    /// When the last packet arrived on this connection.
    last_received: Option<Instant>,
    connect_deadline: Option<Instant>,
    ping_timeout: Option<Duration>,
    pings: VecDeque<PendingPing>,
    /// The driver stopped reading the transport (see `set_receive_paused`).
    receive_paused: bool,

    ids: PacketIdPool,
    outgoing: PacketIdMap<OutgoingPublish>,
    /// Packet ids of `outgoing` waiting for send quota, in order.
    waiting: VecDeque<u16>,
    /// Entries of `outgoing` holding a unit of send quota.
    in_window: usize,
    next_publish_seq: u64,
    // Maps that are empty most of the time are B-trees: smaller inline than
    // hash maps, and holding no memory once empty.
    requests: BTreeMap<u16, PendingRequest>,
    /// Aliases as the caller set them on this connection (what an alias-only
    /// publish means).
    alias_intent: BTreeMap<u16, String>,
    /// Aliases as written on this connection (what the broker knows).
    alias_wire: BTreeMap<u16, String>,

    incoming: PacketIdMap<IncomingState>,
    /// Incoming QoS 1/2 flows started on this connection and not finished:
    /// what our Receive Maximum limits.
    incoming_quota_used: usize,
    ack_queue: VecDeque<AckSlot>,
    /// Token sequence number of the front of `ack_queue`.
    ack_front_seq: u64,
    incoming_aliases: BTreeMap<u16, String>,
}

impl ClientSession {
    /// A session for `config`, not connected. Fails if the configuration can
    /// never produce a valid CONNECT.
    ///
    /// Takes the configuration by value or as an `Arc<SessionConfig>`: a
    /// driver that makes a new session per connect call shares one copy
    /// instead of cloning it (the session never changes it).
    pub fn new(config: impl Into<Arc<SessionConfig>>) -> Result<Self, ConfigError> {
        let config = config.into();
        config.validate()?;
        Ok(ClientSession {
            config,
            state: SessionState::Disconnected,
            connection: 0,
            successful_connections: 0,
            next_request: 0,
            out: BytesMut::new(),
            events: VecDeque::new(),
            negotiated: None,
            last_sent: None,
            last_received: None,
            connect_deadline: None,
            ping_timeout: None,
            pings: VecDeque::new(),
            receive_paused: false,
            ids: PacketIdPool::default(),
            outgoing: PacketIdMap::default(),
            waiting: VecDeque::new(),
            in_window: 0,
            next_publish_seq: 0,
            requests: BTreeMap::new(),
            alias_intent: BTreeMap::new(),
            alias_wire: BTreeMap::new(),
            incoming: PacketIdMap::default(),
            incoming_quota_used: 0,
            ack_queue: VecDeque::new(),
            ack_front_seq: 0,
            incoming_aliases: BTreeMap::new(),
        })
    }

    // ------------------------------------------------------------------
    // Accessors
    // ------------------------------------------------------------------

    /// The configuration the session connects with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The protocol version of every connection of this session.
    pub fn protocol(&self) -> ProtocolVersion {
        self.config.protocol
    }

    /// Where the session stands.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The values negotiated by the CONNACK of the current (or last)
    /// connection; `None` from transport open until CONNACK.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// QoS 1/2 publishes accepted and not yet completed (in flight or waiting).
    pub fn pending_publishes(&self) -> usize {
        self.outgoing.len()
    }

    /// QoS 1/2 publishes waiting for send quota. A driver stops taking publish
    /// commands when this grows past its own bound.
    pub fn waiting_publishes(&self) -> usize {
        self.waiting.len()
    }

    /// QoS 1/2 publishes holding send quota on the current connection
    /// (at most the broker's Receive Maximum).
    pub fn inflight_publishes(&self) -> usize {
        self.in_window
    }

    /// Packet identifiers still free for new QoS 1/2 publishes, subscribes and
    /// unsubscribes.
    pub fn available_packet_ids(&self) -> usize {
        self.ids.available()
    }

    /// Incoming QoS 1/2 messages not yet fully acknowledged, QoS 2 flows
    /// resumed from an earlier connection included (only those started on the
    /// current connection count against our Receive Maximum).
    pub fn unacknowledged_incoming(&self) -> usize {
        self.incoming.len()
    }

    // ------------------------------------------------------------------
    // Outputs
    // ------------------------------------------------------------------

    /// Moves every byte due to the transport into `buf` (appended; when `buf` is
    /// empty the session's buffer is swapped in without copying). Returns how
    /// many bytes were added.
    pub fn poll_transmit(&mut self, buf: &mut BytesMut) -> usize {
        let added = self.out.len();
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.extend_from_slice(&self.out);
            self.out.clear();
        }
        added
    }

    /// The next event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest moment [`handle_timeout`](Self::handle_timeout) must be
    /// called: CONNACK deadline, keepalive ping, PINGRESP deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            SessionState::Connecting => self.connect_deadline,
            SessionState::Connected => match (self.keepalive_deadline(), self.ping_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            SessionState::Disconnected | SessionState::Closed => None,
        }
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        let keep_alive = self.negotiated.as_ref()?.keep_alive;
        if keep_alive == 0 {
            return None;
        }
        // Ping when either direction has been idle for keep_alive: MQTT-3.1.2-23
        // requires it for our sending side, and a broker that went silent while
        // we keep publishing is only noticed through a PINGRESP that never comes.
        // With a ping already outstanding, its timeout is the watch.
        let sent = self.last_sent?;
        let idle_since = match self.last_received {
            Some(received) if self.pings.is_empty() => sent.min(received),
            _ => sent,
        };
        idle_since.checked_add(Duration::from_secs(u64::from(keep_alive)))
    }

    fn ping_deadline(&self) -> Option<Instant> {
        if self.receive_paused {
            // The PINGRESP may sit unread behind data we are not reading.
            return None;
        }
        let oldest = self.pings.front()?;
        oldest.sent_at.checked_add(self.ping_timeout?)
    }

    // ------------------------------------------------------------------
    // Inputs: transport and time
    // ------------------------------------------------------------------

    /// A transport to the broker is up: queue CONNECT. Ends the previous
    /// connection first if the driver did not report it closed.
    pub fn handle_transport_open(&mut self, now: Instant) {
        if matches!(
            self.state,
            SessionState::Connecting | SessionState::Connected
        ) {
            self.end_connection(CloseReason::TransportClosed);
        }
        self.out.clear();
        self.connection += 1;
        self.state = SessionState::Connecting;
        self.negotiated = None;
        self.ping_timeout = None;
        self.last_received = None;
        self.connect_deadline = self
            .config
            .connect_timeout
            .and_then(|limit| now.checked_add(limit));
        let connect = Packet::Connect(Box::new(self.config.connect_packet()));
        // Validated by `SessionConfig::validate` in `new`.
        if let Err(error) = codec::encode(&connect, self.config.protocol, &mut self.out) {
            self.encode_failed(error);
            return;
        }
        self.last_sent = Some(now);
    }

    /// The transport closed (by us after `Closed`, or under us). Everything not
    /// yet written is dropped; session state is kept for the next connection.
    pub fn handle_transport_closed(&mut self, now: Instant) {
        let _ = now;
        if matches!(
            self.state,
            SessionState::Connecting | SessionState::Connected
        ) {
            self.end_connection(CloseReason::TransportClosed);
        }
        self.state = SessionState::Disconnected;
        self.out.clear();
    }

    /// Time has reached [`poll_timeout`](Self::poll_timeout) (calling early or
    /// late is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            SessionState::Connecting => {
                if self
                    .connect_deadline
                    .is_some_and(|deadline| deadline <= now)
                {
                    self.end_connection(CloseReason::ConnectTimeout);
                }
            }
            SessionState::Connected => {
                if self.ping_deadline().is_some_and(|deadline| deadline <= now) {
                    self.end_connection(CloseReason::KeepAliveTimeout);
                    return;
                }
                // MQTT-3.1.2-23: never let keep alive pass without sending.
                if self
                    .keepalive_deadline()
                    .is_some_and(|deadline| deadline <= now)
                {
                    self.write_control(&Packet::PingReq);
                    self.pings.push_back(PendingPing {
                        request: None,
                        sent_at: now,
                    });
                    self.last_sent = Some(now);
                }
            }
            SessionState::Disconnected | SessionState::Closed => {}
        }
    }

    /// Gives back the memory the session keeps for reuse in whatever is empty
    /// now (the event queue, the transmit buffer, the pending pings and acks,
    /// empty maps, unused packet identifier pages). For a driver whose
    /// connection went quiet: an idle session then holds next to nothing.
    /// Nothing else changes; what is needed later is allocated again.
    pub fn release_idle_memory(&mut self) {
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.out.is_empty() {
            self.out = BytesMut::new();
        }
        // Holds at most the keepalive ping of an idle connection: room for
        // that one only.
        self.pings.shrink_to_fit();
        if self.waiting.is_empty() {
            self.waiting = VecDeque::new();
        }
        if self.ack_queue.is_empty() {
            self.ack_queue = VecDeque::new();
        }
        // An empty map shrinks to no allocation at all.
        if self.outgoing.is_empty() {
            self.outgoing.shrink_to_fit();
        }
        if self.incoming.is_empty() {
            self.incoming.shrink_to_fit();
        }
        self.ids.release_memory();
    }

    /// The driver stopped (`true`) or resumed (`false`) reading the transport,
    /// e.g. because the application is not consuming messages (TCP
    /// backpressure).
    ///
    /// While paused, a PINGRESP may be waiting unread behind other data, so the
    /// PINGRESP deadline is suspended; keepalive PINGREQs are still sent. On
    /// resuming, every unanswered ping gets a full ping timeout again, counted
    /// from `now`. The setting is the driver's and is kept across connections.
    pub fn set_receive_paused(&mut self, now: Instant, paused: bool) {
        if self.receive_paused && !paused {
            for ping in &mut self.pings {
                ping.sent_at = ping.sent_at.max(now);
            }
        }
        self.receive_paused = paused;
    }

    /// Whether reading is paused (see [`set_receive_paused`](Self::set_receive_paused)).
    pub fn receive_paused(&self) -> bool {
        self.receive_paused
    }

    /// Bytes read from the transport. Every complete packet at the front of
    /// `buf` is decoded (and removed) and processed; an incomplete tail stays in
    /// `buf` for the next call. Outside a live connection the bytes are dropped.
    pub fn handle_received(&mut self, now: Instant, buf: &mut BytesMut) {
        let before = self.out.len();
        let max = self.config.maximum_packet_size();
        while self.is_live() {
            match codec::decode(buf, self.config.protocol, max) {
                Ok(Some(packet)) => {
                    self.last_received = Some(now);
                    self.handle_packet(now, packet);
                }
                Ok(None) => break,
                Err(error) => {
                    self.close_on_decode_error(error);
                    break;
                }
            }
        }
        if !self.is_live() {
            buf.clear();
        }
        self.note_sent(now, before);
    }

    fn is_live(&self) -> bool {
        matches!(
            self.state,
            SessionState::Connecting | SessionState::Connected
        )
    }

    fn note_sent(&mut self, now: Instant, out_len_before: usize) {
        if self.out.len() != out_len_before {
            self.last_sent = Some(now);
        }
    }

    // ------------------------------------------------------------------
    // Commands
    // ------------------------------------------------------------------

    fn new_request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn connected(&self) -> Result<&Negotiated, CommandError> {
        match (&self.state, &self.negotiated) {
            (SessionState::Connected, Some(negotiated)) => Ok(negotiated),
            _ => Err(CommandError::NotConnected),
        }
    }

    /// Publishes a QoS 0 message without properties, encoded from borrowed
    /// parts straight into the bytes to send: what [`publish`](Self::publish)
    /// does for such a message (same checks, same bytes), without building a
    /// [`Publish`]. No event follows.
    pub fn publish_qos0(
        &mut self,
        now: Instant,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<(), CommandError> {
        self.publish_qos0_checking(now, topic, true, payload, retain)
    }

    /// [`publish_qos0`](Self::publish_qos0) to a topic name checked before.
    pub fn publish_qos0_valid(
        &mut self,
        now: Instant,
        topic: ValidTopicName<'_>,
        payload: &[u8],
        retain: bool,
    ) -> Result<(), CommandError> {
        self.publish_qos0_checking(now, topic.as_str(), false, payload, retain)
    }

    fn publish_qos0_checking(
        &mut self,
        now: Instant,
        topic: &str,
        check_topic: bool,
        payload: &[u8],
        retain: bool,
    ) -> Result<(), CommandError> {
        let negotiated = self.connected()?;
        let version = self.config.protocol;
        if retain && !negotiated.retain_available {
            return Err(CommandError::RetainNotAvailable);
        }
        if check_topic {
            topic::validate_topic_name(topic).map_err(CommandError::InvalidTopic)?;
        }
        let remaining = codec::qos0_publish_remaining(topic, payload.len(), version)
            .map_err(CommandError::Encode)?;
        if let Some(maximum) = negotiated.maximum_packet_size {
            let size = codec::packet_len(remaining);
            if size > maximum as usize {
                return Err(CommandError::PacketTooLarge { size, maximum });
            }
        }
        let before = self.out.len();
        codec::write_qos0_publish(topic, payload, retain, version, remaining, &mut self.out);
        self.note_sent(now, before);
        Ok(())
    }

    /// Publishes a message. `dup` and `packet_id` of `publish` are ignored (the
    /// session manages them).
    ///
    /// Refused locally, before anything is sent: QoS above the broker's Maximum
    /// QoS, retain when Retain Available is 0, an invalid topic, a topic alias
    /// 0, above the broker's Topic Alias Maximum or (alias alone) never set,
    /// 5.0 properties on 3.1.1, a packet larger than the broker's Maximum Packet
    /// Size.
    ///
    /// QoS 0 is written at once and returns `Ok(None)`: no event follows. QoS 1/2
    /// returns the request id of the [`Event::PublishCompleted`] (or
    /// [`Event::RequestFailed`]) to come; it waits inside the session when the
    /// broker's Receive Maximum is reached and goes out as quota frees.
    pub fn publish(
        &mut self,
        now: Instant,
        mut publish: Publish,
    ) -> Result<Option<RequestId>, CommandError> {
        let negotiated = self.connected()?;
        let version = self.config.protocol;
        if version == ProtocolVersion::V311 && !codec::publish_properties_empty(&publish.properties)
        {
            return Err(CommandError::RequiresV5("publish properties"));
        }
        if publish.qos > negotiated.maximum_qos {
            return Err(CommandError::QoSNotSupported {
                requested: publish.qos,
                maximum: negotiated.maximum_qos,
            });
        }
        if publish.retain && !negotiated.retain_available {
            return Err(CommandError::RetainNotAvailable);
        }
        if !publish.properties.subscription_identifiers.is_empty() {
            // MQTT-3.3.4-6: only the server sends subscription identifiers.
            return Err(CommandError::Invalid(
                "a client PUBLISH cannot carry subscription identifiers",
            ));
        }
        let alias = publish.properties.topic_alias;
        if let Some(alias) = alias {
            check_outgoing_alias(alias, negotiated.topic_alias_maximum)?;
        }
        let alias_only = publish.topic.is_empty() && alias.is_some();
        if alias_only {
            let known = alias.and_then(|alias| self.alias_intent.get(&alias));
            match known {
                Some(topic) => publish.topic = topic.clone(),
                None => {
                    return Err(CommandError::TopicAliasInvalid {
                        alias: alias.unwrap_or(0),
                        reason: "not set on this connection",
                    })
                }
            }
        } else {
            topic::validate_topic_name(&publish.topic).map_err(CommandError::InvalidTopic)?;
        }
        publish.dup = false;
        publish.packet_id = match publish.qos {
            QoS::AtMostOnce => None,
            // Any identifier has the same size; the real one comes below.
            QoS::AtLeastOnce | QoS::ExactlyOnce => Some(1),
        };
        let size = codec::encoded_publish_len(&publish, version).map_err(CommandError::Encode)?;
        if let Some(maximum) = negotiated.maximum_packet_size {
            if size > maximum as usize {
                return Err(CommandError::PacketTooLarge { size, maximum });
            }
        }
        let alias_max = negotiated.topic_alias_maximum;

        let packet_id = match publish.qos {
            QoS::AtMostOnce => None,
            _ => Some(
                self.ids
                    .allocate()
                    .ok_or(CommandError::NoPacketIdentifier)?,
            ),
        };
        // Accepted from here on.
        if let (Some(alias), false) = (alias, alias_only) {
            self.alias_intent.insert(alias, publish.topic.clone());
        }
        let Some(packet_id) = packet_id else {
            let before = self.out.len();
            write_publish(
                &mut publish,
                &mut self.alias_wire,
                alias_max,
                version,
                &mut self.out,
            );
            self.note_sent(now, before);
            return Ok(None);
        };
        publish.packet_id = Some(packet_id);
        let request = self.new_request();
        self.next_publish_seq += 1;
        self.outgoing.insert(
            packet_id,
            OutgoingPublish {
                request,
                publish,
                phase: OutgoingPhase::AwaitingAck,
                transmitted: false,
                in_window: false,
                seq: self.next_publish_seq,
                size,
            },
        );
        self.waiting.push_back(packet_id);
        let before = self.out.len();
        self.pump_waiting();
        self.note_sent(now, before);
        Ok(Some(request))
    }

    /// Subscribes to `filters`. Completes with [`Event::SubscribeCompleted`], or
    /// [`Event::RequestFailed`] when the connection ends first (the driver
    /// subscribes again after reconnecting).
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<SubscribeFilter>,
        properties: SubscribeProperties,
    ) -> Result<RequestId, CommandError> {
        self.connected()?;
        if filters.is_empty() {
            return Err(CommandError::NoTopicFilters);
        }
        let v311 = self.config.protocol == ProtocolVersion::V311;
        for filter in &filters {
            topic::validate_topic_filter(&filter.filter)
                .map_err(CommandError::InvalidTopicFilter)?;
            let only_qos = SubscriptionOptions {
                qos: filter.options.qos,
                ..SubscriptionOptions::default()
            };
            if v311 && filter.options != only_qos {
                return Err(CommandError::RequiresV5(
                    "no_local, retain_as_published and retain_handling",
                ));
            }
        }
        if v311 && properties != SubscribeProperties::default() {
            return Err(CommandError::RequiresV5("subscribe properties"));
        }
        if let Some(identifier) = properties.subscription_identifier {
            if identifier == 0 || identifier > MAX_SUBSCRIPTION_IDENTIFIER {
                return Err(CommandError::Invalid(
                    "subscription_identifier must be in 1..=268435455",
                ));
            }
        }
        let filter_count = filters.len();
        let packet = Packet::Subscribe(Subscribe {
            packet_id: 0,
            filters,
            properties,
        });
        self.send_request(now, packet, RequestKind::Subscribe, filter_count)
    }

    /// Unsubscribes from `filters`. Completes with
    /// [`Event::UnsubscribeCompleted`] or [`Event::RequestFailed`].
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<String>,
        properties: UnsubscribeProperties,
    ) -> Result<RequestId, CommandError> {
        self.connected()?;
        if filters.is_empty() {
            return Err(CommandError::NoTopicFilters);
        }
        for filter in &filters {
            topic::validate_topic_filter(filter).map_err(CommandError::InvalidTopicFilter)?;
        }
        if self.config.protocol == ProtocolVersion::V311
            && properties != UnsubscribeProperties::default()
        {
            return Err(CommandError::RequiresV5("unsubscribe properties"));
        }
        let filter_count = filters.len();
        let packet = Packet::Unsubscribe(Unsubscribe {
            packet_id: 0,
            filters,
            properties,
        });
        self.send_request(now, packet, RequestKind::Unsubscribe, filter_count)
    }

    /// Allocates a packet identifier for SUBSCRIBE / UNSUBSCRIBE, checks the
    /// size and writes it.
    fn send_request(
        &mut self,
        now: Instant,
        mut packet: Packet,
        kind: RequestKind,
        filter_count: usize,
    ) -> Result<RequestId, CommandError> {
        let maximum = self.connected()?.maximum_packet_size;
        let version = self.config.protocol;
        let Some(packet_id) = self.ids.allocate() else {
            return Err(CommandError::NoPacketIdentifier);
        };
        match &mut packet {
            Packet::Subscribe(subscribe) => subscribe.packet_id = packet_id,
            Packet::Unsubscribe(unsubscribe) => unsubscribe.packet_id = packet_id,
            _ => {}
        }
        let checked = codec::encoded_len(&packet, version)
            .map_err(CommandError::Encode)
            .and_then(|size| match maximum {
                Some(maximum) if size > maximum as usize => {
                    Err(CommandError::PacketTooLarge { size, maximum })
                }
                _ => Ok(()),
            })
            .and_then(|()| {
                codec::encode(&packet, version, &mut self.out).map_err(CommandError::Encode)
            });
        if let Err(error) = checked {
            self.ids.release(packet_id);
            return Err(error);
        }
        self.last_sent = Some(now);
        let request = self.new_request();
        self.requests.insert(
            packet_id,
            PendingRequest {
                request,
                kind,
                filter_count,
            },
        );
        Ok(request)
    }

    /// Sends PINGREQ; [`Event::Pong`] follows on PINGRESP (matched first in,
    /// first out with keepalive pings), or [`Event::RequestFailed`] when the
    /// connection ends. An unanswered ping also counts against the ping timeout.
    pub fn ping(&mut self, now: Instant) -> Result<RequestId, CommandError> {
        self.connected()?;
        self.write_control(&Packet::PingReq);
        self.last_sent = Some(now);
        let request = self.new_request();
        self.pings.push_back(PendingPing {
            request: Some(request),
            sent_at: now,
        });
        Ok(request)
    }

    /// Acknowledges a received QoS 1/2 message. PUBACK / PUBREC leave in the
    /// order the PUBLISH packets arrived (MQTT-4.6.0-2, MQTT-4.6.0-3): an ack
    /// given out of order is held until the earlier ones are given. Returns
    /// false (and does nothing) for a token already used or from an earlier
    /// connection.
    pub fn acknowledge(&mut self, now: Instant, token: AckToken) -> bool {
        let Some(slot) = self.ack_slot_mut(token) else {
            return false;
        };
        if slot.acked {
            return false;
        }
        slot.acked = true;
        let before = self.out.len();
        self.flush_acks();
        self.note_sent(now, before);
        true
    }

    /// Gives up on acknowledging a received QoS 1/2 message on this
    /// connection: nothing is sent for it, and the acknowledgements of later
    /// messages are no longer held behind it. The broker still counts it as
    /// unacknowledged (it keeps its share of our Receive Maximum) and sends it
    /// again when the session is resumed on a later connection.
    ///
    /// For a driver dropping a message it held unacknowledged (a session
    /// replay that no subscription claimed in time, a manual-ack message the
    /// application dropped). Returns false (and does nothing) for a token
    /// already used or from an earlier connection.
    pub fn abandon(&mut self, now: Instant, token: AckToken) -> bool {
        let Some(slot) = self.ack_slot_mut(token) else {
            return false;
        };
        if slot.acked {
            return false;
        }
        slot.acked = true;
        slot.kind = AckKind::Abandoned;
        // Nothing is written for the abandoned slot itself, but acks given
        // behind it may now go.
        let before = self.out.len();
        self.flush_acks();
        self.note_sent(now, before);
        true
    }

    /// The unsent acknowledgement slot of `token`, if it is of this connection.
    fn ack_slot_mut(&mut self, token: AckToken) -> Option<&mut AckSlot> {
        if self.state != SessionState::Connected || token.connection != self.connection {
            return None;
        }
        let offset = token.seq.checked_sub(self.ack_front_seq)?;
        let index = usize::try_from(offset).ok()?;
        self.ack_queue.get_mut(index)
    }

    /// Sends a 5.0 AUTH (continue or re-authenticate). Needs an authentication
    /// method in the CONNECT properties.
    pub fn auth(&mut self, now: Instant, auth: Auth) -> Result<(), CommandError> {
        if self.config.protocol == ProtocolVersion::V311 {
            return Err(CommandError::RequiresV5("AUTH"));
        }
        if self
            .config
            .connect_properties
            .authentication_method
            .is_none()
        {
            return Err(CommandError::AuthNotNegotiated);
        }
        if !self.is_live() {
            return Err(CommandError::NotConnected);
        }
        let packet = Packet::Auth(auth);
        let size =
            codec::encoded_len(&packet, self.config.protocol).map_err(CommandError::Encode)?;
        if let Some(maximum) = self.broker_maximum_packet_size() {
            if size > maximum as usize {
                return Err(CommandError::PacketTooLarge { size, maximum });
            }
        }
        codec::encode(&packet, self.config.protocol, &mut self.out)
            .map_err(CommandError::Encode)?;
        self.last_sent = Some(now);
        Ok(())
    }

    /// Sends DISCONNECT and ends the connection ([`Event::Closed`] with
    /// [`CloseReason::LocalDisconnect`]). `disconnect` must stay at its default
    /// on 3.1.1; on 5.0 its reason string and user properties are dropped if
    /// they would exceed the broker's Maximum Packet Size. Without a live
    /// connection this does nothing. Unacknowledged publishes stay in the
    /// session (see [`clear_session`](Self::clear_session)).
    pub fn disconnect(&mut self, now: Instant, disconnect: Disconnect) -> Result<(), CommandError> {
        if !self.is_live() {
            return Ok(());
        }
        if self.config.protocol == ProtocolVersion::V311 && disconnect != Disconnect::default() {
            return Err(CommandError::RequiresV5(
                "DISCONNECT reason code and properties",
            ));
        }
        if disconnect.properties.server_reference.is_some() {
            return Err(CommandError::Invalid(
                "server_reference is sent by the server only",
            ));
        }
        let connect_expiry = self
            .config
            .connect_properties
            .session_expiry_interval
            .unwrap_or(0);
        if connect_expiry == 0
            && disconnect
                .properties
                .session_expiry_interval
                .is_some_and(|expiry| expiry != 0)
        {
            return Err(CommandError::SessionExpiryNotAllowed);
        }
        codec::encoded_len(
            &Packet::Disconnect(disconnect.clone()),
            self.config.protocol,
        )
        .map_err(CommandError::Encode)?;
        self.write_disconnect(disconnect);
        self.last_sent = Some(now);
        self.end_connection(CloseReason::LocalDisconnect);
        Ok(())
    }

    /// Forgets the session: every pending QoS 1/2 publish fails with
    /// [`RequestError::SessionCleared`] and incoming QoS 2 state is dropped.
    /// For a driver giving up on a session (no more reconnects, or a
    /// `disconnect()` that ends the client); meant for when no connection is live.
    pub fn clear_session(&mut self) {
        let mut pending: Vec<(u64, u16)> = self
            .outgoing
            .iter()
            .map(|(id, entry)| (entry.seq, *id))
            .collect();
        pending.sort_unstable();
        for (_, packet_id) in pending {
            if let Some(entry) = self.outgoing.remove(&packet_id) {
                self.ids.release(packet_id);
                self.events.push_back(Event::RequestFailed {
                    id: entry.request,
                    error: RequestError::SessionCleared,
                });
            }
        }
        self.waiting.clear();
        self.in_window = 0;
        self.incoming.clear();
        self.incoming_quota_used = 0;
        self.drop_owed_acks();
    }

    // ------------------------------------------------------------------
    // Writing
    // ------------------------------------------------------------------

    fn broker_maximum_packet_size(&self) -> Option<u32> {
        match self.state {
            SessionState::Connected => self.negotiated.as_ref()?.maximum_packet_size,
            _ => None,
        }
    }

    /// Writes a packet that always encodes (fixed-size fields only).
    fn write_control(&mut self, packet: &Packet) {
        if let Err(error) = codec::encode(packet, self.config.protocol, &mut self.out) {
            self.encode_failed(error);
        }
    }

    fn write_pub_response(&mut self, packet_type: PacketType, packet_id: u16, code: ReasonCode) {
        let response = PubResponse {
            packet_id,
            reason_code: code,
            properties: Default::default(),
        };
        let packet = match packet_type {
            PacketType::PubAck => Packet::PubAck(response),
            PacketType::PubRec => Packet::PubRec(response),
            PacketType::PubRel => Packet::PubRel(response),
            _ => Packet::PubComp(response),
        };
        self.write_control(&packet);
    }

    /// Writes DISCONNECT: plain on 3.1.1; on 5.0 without reason string and user
    /// properties when they would exceed the broker's Maximum Packet Size
    /// (MQTT-3.14.2-3, MQTT-3.14.2-4).
    fn write_disconnect(&mut self, mut disconnect: Disconnect) {
        let version = self.config.protocol;
        if version == ProtocolVersion::V311 {
            disconnect = Disconnect::default();
        } else if let Some(maximum) = self.broker_maximum_packet_size() {
            let packet = Packet::Disconnect(disconnect.clone());
            let fits =
                codec::encoded_len(&packet, version).is_ok_and(|len| len <= maximum as usize);
            if !fits {
                disconnect.properties.reason_string = None;
                disconnect.properties.user_properties.clear();
            }
        }
        self.write_control(&Packet::Disconnect(disconnect));
    }

    /// A packet the session built itself failed to encode: a bug, reported as
    /// a close rather than a panic.
    fn encode_failed(&mut self, error: EncodeError) {
        if self.is_live() {
            self.end_connection(CloseReason::EncodeFailed(error));
        }
    }

    /// Sends waiting QoS 1/2 publishes (or PUBREL of a resumed QoS 2 flow) while
    /// the broker's Receive Maximum allows (MQTT-3.3.4-7).
    fn pump_waiting(&mut self) {
        let Some(negotiated) = self.negotiated.as_ref() else {
            return;
        };
        if self.state != SessionState::Connected {
            return;
        }
        let quota = usize::from(negotiated.receive_maximum);
        let maximum_size = negotiated.maximum_packet_size;
        let alias_max = negotiated.topic_alias_maximum;
        let version = self.config.protocol;
        while self.in_window < quota {
            let Some(packet_id) = self.waiting.pop_front() else {
                break;
            };
            let Some(entry) = self.outgoing.get_mut(&packet_id) else {
                continue;
            };
            if let Some(maximum) = maximum_size {
                if entry.phase == OutgoingPhase::AwaitingAck && entry.size > maximum as usize {
                    let size = entry.size;
                    let request = entry.request;
                    self.outgoing.remove(&packet_id);
                    self.ids.release(packet_id);
                    self.events.push_back(Event::RequestFailed {
                        id: request,
                        error: RequestError::PacketTooLarge { size, maximum },
                    });
                    continue;
                }
            }
            entry.in_window = true;
            self.in_window += 1;
            match entry.phase {
                OutgoingPhase::AwaitingComp => {
                    self.write_pub_response(PacketType::PubRel, packet_id, ReasonCode::SUCCESS);
                }
                OutgoingPhase::AwaitingAck => {
                    // MQTT-3.3.1-1: DUP=1 when this PUBLISH was sent before.
                    entry.publish.dup = entry.transmitted;
                    entry.transmitted = true;
                    write_publish(
                        &mut entry.publish,
                        &mut self.alias_wire,
                        alias_max,
                        version,
                        &mut self.out,
                    );
                }
            }
        }
    }

    /// Forgets every acknowledgement not yet written; their tokens become no-ops.
    fn drop_owed_acks(&mut self) {
        self.ack_front_seq += self.ack_queue.len() as u64;
        self.ack_queue.clear();
    }

    /// Writes every acknowledgement at the front of the queue that was given.
    fn flush_acks(&mut self) {
        while let Some(slot) = self.ack_queue.front().copied() {
            if !slot.acked {
                break;
            }
            self.ack_queue.pop_front();
            self.ack_front_seq += 1;
            let id = slot.packet_id;
            let state = self.incoming.get(&id).copied();
            match (slot.kind, state) {
                (AckKind::Puback, Some(IncomingState::Qos1Unacked)) => {
                    self.incoming.remove(&id);
                    self.incoming_quota_used = self.incoming_quota_used.saturating_sub(1);
                    self.write_pub_response(PacketType::PubAck, id, ReasonCode::SUCCESS);
                }
                (AckKind::Pubrec, Some(IncomingState::Qos2Unacked)) => {
                    self.incoming.insert(
                        id,
                        IncomingState::Qos2Received {
                            rerec_queued: false,
                            this_connection: true,
                        },
                    );
                    self.write_pub_response(PacketType::PubRec, id, ReasonCode::SUCCESS);
                }
                (
                    AckKind::PubrecAgain,
                    Some(IncomingState::Qos2Received {
                        this_connection, ..
                    }),
                ) => {
                    self.incoming.insert(
                        id,
                        IncomingState::Qos2Received {
                            rerec_queued: false,
                            this_connection,
                        },
                    );
                    self.write_pub_response(PacketType::PubRec, id, ReasonCode::SUCCESS);
                }
                // Abandoned: the flow stays unacknowledged on this connection.
                // Otherwise the flow moved on meanwhile (e.g. PUBREL already
                // answered): an acknowledgement now could hit a new flow using
                // that id.
                _ => {}
            }
        }
    }

    // ------------------------------------------------------------------
    // Ending a connection
    // ------------------------------------------------------------------

    /// Moves to `Closed`: per-connection state is dropped, requests waiting for
    /// this connection fail, session state stays. Emits `Closed`.
    fn end_connection(&mut self, reason: CloseReason) {
        self.state = SessionState::Closed;
        self.connect_deadline = None;
        for ping in std::mem::take(&mut self.pings) {
            if let Some(id) = ping.request {
                self.events.push_back(Event::RequestFailed {
                    id,
                    error: RequestError::ConnectionClosed,
                });
            }
        }
        let mut requests: Vec<(u16, PendingRequest)> =
            std::mem::take(&mut self.requests).into_iter().collect();
        requests.sort_unstable_by_key(|(_, pending)| pending.request);
        for (packet_id, pending) in requests {
            self.ids.release(packet_id);
            self.events.push_back(Event::RequestFailed {
                id: pending.request,
                error: RequestError::ConnectionClosed,
            });
        }
        // The send quota is per connection; everything is re-queued on CONNACK.
        for entry in self.outgoing.values_mut() {
            entry.in_window = false;
        }
        self.waiting.clear();
        self.in_window = 0;
        // Acknowledgements not yet written can no longer be: the broker will
        // send those PUBLISH packets again. Only PUBREC-ed QoS 2 ids survive.
        self.drop_owed_acks();
        self.incoming.retain(|_, state| {
            if let IncomingState::Qos2Received {
                rerec_queued,
                this_connection,
            } = state
            {
                *rerec_queued = false;
                *this_connection = false;
                true
            } else {
                false
            }
        });
        self.incoming_quota_used = 0;
        self.alias_intent.clear();
        self.alias_wire.clear();
        self.incoming_aliases.clear();
        self.events.push_back(Event::Closed { reason });
    }

    /// The broker broke a rule: 5.0 DISCONNECT with the matching reason code,
    /// then close. 3.1.1 has no error DISCONNECT (it would also discard the
    /// Will), so the connection is just closed.
    fn close_on_violation(&mut self, violation: ProtocolViolation) {
        if self.config.protocol == ProtocolVersion::V5 {
            let mut disconnect = Disconnect {
                reason_code: violation.reason_code(),
                ..Disconnect::default()
            };
            disconnect.properties.reason_string = Some(violation.to_string());
            self.write_disconnect(disconnect);
        }
        self.end_connection(CloseReason::ProtocolViolation(violation));
    }

    fn close_on_decode_error(&mut self, error: DecodeError) {
        if self.config.protocol == ProtocolVersion::V5 {
            let disconnect = Disconnect {
                reason_code: error.reason_code(),
                ..Disconnect::default()
            };
            self.write_disconnect(disconnect);
        }
        self.end_connection(CloseReason::Decode(error));
    }

    // ------------------------------------------------------------------
    // Incoming packets
    // ------------------------------------------------------------------

    fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if self.state == SessionState::Connecting {
            match packet {
                Packet::ConnAck(connack) => self.handle_connack(now, connack),
                Packet::Auth(auth) => self.handle_auth(auth),
                other => self.close_on_violation(ProtocolViolation::UnexpectedPacket {
                    packet: other.packet_type(),
                    context: "before CONNACK",
                }),
            }
            return;
        }
        match packet {
            Packet::ConnAck(_) => self.close_on_violation(ProtocolViolation::SecondConnAck),
            Packet::Publish(publish) => self.handle_publish(publish),
            Packet::PubAck(response) => self.handle_puback(response),
            Packet::PubRec(response) => self.handle_pubrec(response),
            Packet::PubRel(response) => self.handle_pubrel(response),
            Packet::PubComp(response) => self.handle_pubcomp(response),
            Packet::SubAck(suback) => self.handle_suback(suback),
            Packet::UnsubAck(unsuback) => self.handle_unsuback(unsuback),
            Packet::PingResp => {
                if let Some(PendingPing {
                    request: Some(id), ..
                }) = self.pings.pop_front()
                {
                    self.events.push_back(Event::Pong { id });
                }
            }
            Packet::Disconnect(disconnect) => {
                self.end_connection(CloseReason::ServerDisconnect(disconnect));
            }
            Packet::Auth(auth) => self.handle_auth(auth),
            other @ (Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq) => self.close_on_violation(ProtocolViolation::UnexpectedPacket {
                packet: other.packet_type(),
                context: "from a server",
            }),
        }
    }

    fn handle_connack(&mut self, now: Instant, connack: ConnAck) {
        let _ = now;
        let version = self.config.protocol;
        if connack.code != ReasonCode::SUCCESS {
            let code = connack.code;
            self.events
                .push_back(Event::ConnectRefused(Box::new(connack)));
            self.end_connection(CloseReason::Refused(code));
            return;
        }
        if connack.session_present && self.config.clean_start {
            // MQTT-3.2.2-4: we have no session state to resume; close.
            self.close_on_violation(ProtocolViolation::InvalidConnAck(
                "session present after a clean start",
            ));
            return;
        }
        let props = &connack.properties;
        if props.receive_maximum == Some(0) {
            self.close_on_violation(ProtocolViolation::InvalidConnAck("Receive Maximum of 0"));
            return;
        }
        if props.maximum_packet_size == Some(0) {
            self.close_on_violation(ProtocolViolation::InvalidConnAck(
                "Maximum Packet Size of 0",
            ));
            return;
        }
        self.successful_connections += 1;
        let v5 = version == ProtocolVersion::V5;
        let negotiated = Negotiated {
            connection_id: self.successful_connections,
            session_present: connack.session_present,
            client_id: props
                .assigned_client_identifier
                .clone()
                .unwrap_or_else(|| self.config.client_id.clone()),
            keep_alive: props.server_keep_alive.unwrap_or(self.config.keep_alive),
            session_expiry_interval: v5.then(|| {
                props
                    .session_expiry_interval
                    .or(self.config.connect_properties.session_expiry_interval)
                    .unwrap_or(0)
            }),
            receive_maximum: props.receive_maximum.unwrap_or(u16::MAX),
            maximum_qos: props.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: props.retain_available.unwrap_or(true),
            maximum_packet_size: props.maximum_packet_size,
            topic_alias_maximum: props.topic_alias_maximum.unwrap_or(0),
            wildcard_subscription_available: props.wildcard_subscription_available.unwrap_or(true),
            subscription_identifiers_available: props
                .subscription_identifiers_available
                .unwrap_or(true),
            shared_subscription_available: props.shared_subscription_available.unwrap_or(true),
        };
        self.ping_timeout = self.config.ping_timeout.resolve(negotiated.keep_alive);
        self.state = SessionState::Connected;
        self.connect_deadline = None;
        let session_present = negotiated.session_present;
        self.events.push_back(Event::Connected {
            connack: Box::new(connack),
            negotiated: Box::new(negotiated.clone()),
        });
        self.negotiated = Some(negotiated);

        let mut pending: Vec<(u64, u16)> = self
            .outgoing
            .iter()
            .map(|(id, entry)| (entry.seq, *id))
            .collect();
        pending.sort_unstable();
        self.waiting.clear();
        for (_, packet_id) in pending {
            let lost = !session_present
                && self
                    .outgoing
                    .get(&packet_id)
                    .is_some_and(|entry| entry.transmitted);
            if lost {
                if let Some(entry) = self.outgoing.remove(&packet_id) {
                    self.ids.release(packet_id);
                    self.events.push_back(Event::RequestFailed {
                        id: entry.request,
                        error: RequestError::SessionLost,
                    });
                }
            } else {
                // MQTT-4.4.0-1 / MQTT-4.6.0-1: resend in the original order.
                self.waiting.push_back(packet_id);
            }
        }
        if !session_present {
            self.incoming.clear();
            self.incoming_quota_used = 0;
        }
        self.pump_waiting();
    }

    fn handle_auth(&mut self, auth: Auth) {
        let Some(method) = &self.config.connect_properties.authentication_method else {
            self.close_on_violation(ProtocolViolation::UnexpectedAuth(
                "no authentication method was set in CONNECT",
            ));
            return;
        };
        if auth
            .properties
            .authentication_method
            .as_ref()
            .is_some_and(|theirs| theirs != method)
        {
            self.close_on_violation(ProtocolViolation::UnexpectedAuth(
                "authentication method differs from CONNECT",
            ));
            return;
        }
        self.events.push_back(Event::AuthReceived(auth));
    }

    /// Resolves the topic of an incoming PUBLISH (topic alias, 5.0) and checks it.
    fn resolve_incoming_topic(&mut self, publish: &mut Publish) -> Result<(), ProtocolViolation> {
        if let Some(alias) = publish.properties.topic_alias {
            let maximum = self.config.topic_alias_maximum();
            if alias == 0 || alias > maximum {
                return Err(ProtocolViolation::TopicAliasInvalid {
                    alias,
                    reason: "0 or above our Topic Alias Maximum",
                });
            }
            if publish.topic.is_empty() {
                return match self.incoming_aliases.get(&alias) {
                    Some(topic) => {
                        publish.topic = topic.clone();
                        Ok(())
                    }
                    None => Err(ProtocolViolation::TopicAliasInvalid {
                        alias,
                        reason: "never set on this connection",
                    }),
                };
            }
            topic::validate_topic_name(&publish.topic)
                .map_err(ProtocolViolation::InvalidTopicName)?;
            self.incoming_aliases.insert(alias, publish.topic.clone());
            return Ok(());
        }
        if publish.topic.is_empty() {
            return Err(ProtocolViolation::MissingTopic);
        }
        topic::validate_topic_name(&publish.topic).map_err(ProtocolViolation::InvalidTopicName)
    }

    fn handle_publish(&mut self, mut publish: Publish) {
        if let Err(violation) = self.resolve_incoming_topic(&mut publish) {
            self.close_on_violation(violation);
            return;
        }
        let (kind, fresh_state) = match publish.qos {
            QoS::AtMostOnce => {
                self.events.push_back(Event::Message { publish, ack: None });
                return;
            }
            QoS::AtLeastOnce => (AckKind::Puback, IncomingState::Qos1Unacked),
            QoS::ExactlyOnce => (AckKind::Pubrec, IncomingState::Qos2Unacked),
        };
        let Some(packet_id) = publish.packet_id else {
            self.close_on_violation(ProtocolViolation::UnexpectedPacket {
                packet: PacketType::Publish,
                context: "with QoS > 0 and no packet identifier",
            });
            return;
        };
        match (publish.qos, self.incoming.get(&packet_id).copied()) {
            (_, None) => {}
            // Same id, not acknowledged yet: a retransmission of a message the
            // application already has. Its pending ack answers both.
            (QoS::AtLeastOnce, Some(IncomingState::Qos1Unacked))
            | (QoS::ExactlyOnce, Some(IncomingState::Qos2Unacked)) => return,
            // PUBREC already sent: acknowledge again, never deliver twice
            // (MQTT-4.3.3-9, method B).
            (
                QoS::ExactlyOnce,
                Some(IncomingState::Qos2Received {
                    rerec_queued,
                    this_connection,
                }),
            ) => {
                if !rerec_queued {
                    self.incoming.insert(
                        packet_id,
                        IncomingState::Qos2Received {
                            rerec_queued: true,
                            this_connection,
                        },
                    );
                    self.ack_queue.push_back(AckSlot {
                        packet_id,
                        kind: AckKind::PubrecAgain,
                        acked: true,
                    });
                    self.flush_acks();
                }
                return;
            }
            (_, Some(_)) => {
                self.close_on_violation(ProtocolViolation::AckMismatch {
                    packet: PacketType::Publish,
                    packet_id,
                    context: "reuses an identifier of an unfinished flow of another QoS",
                });
                return;
            }
        }
        let receive_maximum = self.config.receive_maximum();
        if self.config.protocol == ProtocolVersion::V5
            && self.incoming_quota_used >= usize::from(receive_maximum)
        {
            self.close_on_violation(ProtocolViolation::ReceiveMaximumExceeded(receive_maximum));
            return;
        }
        self.incoming.insert(packet_id, fresh_state);
        self.incoming_quota_used += 1;
        let seq = self.ack_front_seq + self.ack_queue.len() as u64;
        self.ack_queue.push_back(AckSlot {
            packet_id,
            kind,
            acked: false,
        });
        self.events.push_back(Event::Message {
            publish,
            ack: Some(AckToken {
                connection: self.connection,
                seq,
            }),
        });
    }

    /// Ends an outgoing QoS 1/2 flow: frees its identifier and quota, reports it
    /// and lets a waiting publish go.
    fn complete_outgoing(&mut self, packet_id: u16, result: Result<PublishAck, PublishRejected>) {
        let Some(entry) = self.outgoing.remove(&packet_id) else {
            return;
        };
        self.ids.release(packet_id);
        if entry.in_window {
            self.in_window = self.in_window.saturating_sub(1);
        }
        self.events.push_back(Event::PublishCompleted {
            id: entry.request,
            result,
        });
        self.pump_waiting();
    }

    /// Looks up the outgoing flow an acknowledgement is for. `None` (ignore)
    /// for an unknown identifier or one not sent on this connection.
    fn outgoing_in_window(&self, packet_id: u16) -> Option<(QoS, OutgoingPhase)> {
        let entry = self.outgoing.get(&packet_id)?;
        entry.in_window.then_some((entry.publish.qos, entry.phase))
    }

    fn handle_puback(&mut self, response: PubResponse) {
        let id = response.packet_id;
        match self.outgoing_in_window(id) {
            None => {}
            Some((QoS::AtLeastOnce, _)) => {
                let result = split_ack(response);
                self.complete_outgoing(id, result);
            }
            Some(_) => self.close_on_violation(ProtocolViolation::AckMismatch {
                packet: PacketType::PubAck,
                packet_id: id,
                context: "is not a QoS 1 publish",
            }),
        }
    }

    fn handle_pubrec(&mut self, response: PubResponse) {
        let id = response.packet_id;
        match self.outgoing_in_window(id) {
            None => {
                if !self.outgoing.contains_key(&id) {
                    // Not ours (any more): release the broker's state. 5.0 says
                    // why (0x92); 3.1.1 has no reason code.
                    let code = match self.config.protocol {
                        ProtocolVersion::V5 => ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                        ProtocolVersion::V311 => ReasonCode::SUCCESS,
                    };
                    self.write_pub_response(PacketType::PubRel, id, code);
                }
            }
            Some((QoS::ExactlyOnce, OutgoingPhase::AwaitingAck)) => {
                if response.reason_code.is_failure() {
                    // A failed PUBREC ends the flow: no PUBREL.
                    let result = split_ack(response);
                    self.complete_outgoing(id, result);
                    return;
                }
                if let Some(entry) = self.outgoing.get_mut(&id) {
                    entry.phase = OutgoingPhase::AwaitingComp;
                    // The broker owns the message now; only the id is needed.
                    entry.publish.payload = bytes::Bytes::new();
                }
                // MQTT-4.6.0-4: PUBREL in PUBREC order (written at once).
                self.write_pub_response(PacketType::PubRel, id, ReasonCode::SUCCESS);
            }
            Some((QoS::ExactlyOnce, OutgoingPhase::AwaitingComp)) => {
                // A repeated PUBREC: answer it again.
                self.write_pub_response(PacketType::PubRel, id, ReasonCode::SUCCESS);
            }
            Some(_) => self.close_on_violation(ProtocolViolation::AckMismatch {
                packet: PacketType::PubRec,
                packet_id: id,
                context: "is not a QoS 2 publish",
            }),
        }
    }

    fn handle_pubcomp(&mut self, response: PubResponse) {
        let id = response.packet_id;
        match self.outgoing_in_window(id) {
            None => {}
            Some((QoS::ExactlyOnce, OutgoingPhase::AwaitingComp)) => {
                // The message was received (PUBREC): the flow succeeded, even
                // if PUBCOMP reports 0x92 after a resumed session.
                let ack = PublishAck {
                    reason_code: response.reason_code,
                    properties: response.properties,
                };
                self.complete_outgoing(id, Ok(ack));
            }
            Some(_) => self.close_on_violation(ProtocolViolation::AckMismatch {
                packet: PacketType::PubComp,
                packet_id: id,
                context: "before PUBREL was sent",
            }),
        }
    }

    fn handle_pubrel(&mut self, response: PubResponse) {
        let id = response.packet_id;
        match self.incoming.get(&id).copied() {
            Some(IncomingState::Qos2Received {
                this_connection, ..
            }) => {
                self.incoming.remove(&id);
                if this_connection {
                    self.incoming_quota_used = self.incoming_quota_used.saturating_sub(1);
                }
                self.write_pub_response(PacketType::PubComp, id, ReasonCode::SUCCESS);
            }
            None => {
                // Unknown id (e.g. PUBCOMP lost before a reconnect): complete it
                // anyway so the broker can let go; 5.0 reports 0x92.
                let code = match self.config.protocol {
                    ProtocolVersion::V5 => ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                    ProtocolVersion::V311 => ReasonCode::SUCCESS,
                };
                self.write_pub_response(PacketType::PubComp, id, code);
            }
            Some(_) => self.close_on_violation(ProtocolViolation::AckMismatch {
                packet: PacketType::PubRel,
                packet_id: id,
                context: "before PUBREC was sent",
            }),
        }
    }

    fn handle_suback(&mut self, suback: SubAck) {
        let id = suback.packet_id;
        match self.requests.get(&id) {
            None => {}
            Some(pending) if pending.kind == RequestKind::Subscribe => {
                // MQTT-3.9.3-1: one reason code per topic filter.
                if suback.reason_codes.len() != pending.filter_count {
                    let expected = pending.filter_count;
                    self.close_on_violation(ProtocolViolation::ReasonCountMismatch {
                        packet: PacketType::SubAck,
                        expected,
                        got: suback.reason_codes.len(),
                    });
                    return;
                }
                let request = pending.request;
                self.requests.remove(&id);
                self.ids.release(id);
                self.events.push_back(Event::SubscribeCompleted {
                    id: request,
                    suback,
                });
            }
            Some(_) => self.close_on_violation(ProtocolViolation::AckMismatch {
                packet: PacketType::SubAck,
                packet_id: id,
                context: "answers an UNSUBSCRIBE",
            }),
        }
    }

    fn handle_unsuback(&mut self, unsuback: UnsubAck) {
        let id = unsuback.packet_id;
        match self.requests.get(&id) {
            None => {}
            Some(pending) if pending.kind == RequestKind::Unsubscribe => {
                // MQTT-3.11.3-1 (5.0): one reason code per topic filter.
                if self.config.protocol == ProtocolVersion::V5
                    && unsuback.reason_codes.len() != pending.filter_count
                {
                    let expected = pending.filter_count;
                    self.close_on_violation(ProtocolViolation::ReasonCountMismatch {
                        packet: PacketType::UnsubAck,
                        expected,
                        got: unsuback.reason_codes.len(),
                    });
                    return;
                }
                let request = pending.request;
                self.requests.remove(&id);
                self.ids.release(id);
                self.events.push_back(Event::UnsubscribeCompleted {
                    id: request,
                    unsuback,
                });
            }
            Some(_) => self.close_on_violation(ProtocolViolation::AckMismatch {
                packet: PacketType::UnsubAck,
                packet_id: id,
                context: "answers a SUBSCRIBE",
            }),
        }
    }
}

/// Checks an alias we are about to send against the broker's maximum.
fn check_outgoing_alias(alias: u16, maximum: u16) -> Result<(), CommandError> {
    if alias == 0 {
        return Err(CommandError::TopicAliasInvalid {
            alias,
            reason: "topic alias 0 is not allowed",
        });
    }
    if alias > maximum {
        return Err(CommandError::TopicAliasInvalid {
            alias,
            reason: "above the broker's Topic Alias Maximum",
        });
    }
    Ok(())
}

/// Splits a PUBACK / PUBREC into success or refusal (reason code ≥ 0x80).
fn split_ack(response: PubResponse) -> Result<PublishAck, PublishRejected> {
    if response.reason_code.is_failure() {
        Err(PublishRejected {
            reason_code: response.reason_code,
            properties: response.properties,
        })
    } else {
        Ok(PublishAck {
            reason_code: response.reason_code,
            properties: response.properties,
        })
    }
}

/// The encoded length of a PUBLISH, without copying it.
/// Writes a PUBLISH whose `topic` is the full topic name, applying topic
/// aliases as the broker knows them on this connection: an alias the broker
/// already maps to this topic goes alone (empty topic), otherwise topic and
/// alias go together (setting the mapping); an alias the broker of this
/// connection cannot take is dropped. `publish` is left as it was.
fn write_publish(
    publish: &mut Publish,
    wire_aliases: &mut BTreeMap<u16, String>,
    alias_maximum: u16,
    version: ProtocolVersion,
    out: &mut BytesMut,
) {
    // Measured when accepted; the form written here is never larger, so
    // encoding cannot fail.
    if let Some(alias) = publish.properties.topic_alias {
        if alias == 0 || alias > alias_maximum {
            publish.properties.topic_alias = None;
            let _ = codec::encode_publish(publish, version, out);
            publish.properties.topic_alias = Some(alias);
            return;
        }
        if wire_aliases.get(&alias) == Some(&publish.topic) {
            let topic = std::mem::take(&mut publish.topic);
            let _ = codec::encode_publish(publish, version, out);
            publish.topic = topic;
            return;
        }
        wire_aliases.insert(alias, publish.topic.clone());
    }
    let _ = codec::encode_publish(publish, version, out);
}
