//! The one task that owns a client's connection (DESIGN.md, "One task owns a
//! connection").
//!
//! It holds the transport, the engine ([`ClientSession`]), the router, every
//! caller waiting for an answer and the write buffer. Handles reach it over
//! the bounded command queue (publish, subscribe, …, answered on oneshots;
//! `Drop` impls queue a detach past the bound), and over an unbounded channel
//! of fire-and-forget notices (message acks, request cancellation), made when
//! first needed.
//!
//! Each turn of the loop takes one input — bytes from the socket, commands
//! (all that are ready: write coalescing), notices, a timer, room in a full
//! subscription queue — then drains the engine's events, delivers messages and
//! appends what the engine has to send to one buffer, written as the socket
//! takes it. Reading stops while a message waits for room in its
//! subscription's queue (TCP backpressure); writing, commands and timers go on.
//!
//! An idle connection is cheap: the task holds little inline (rarely used
//! state is boxed on use, see `Seldom`), reading waits without a buffer, and
//! the buffers a burst grew are given back at quiet moments
//! (`release_idle_memory`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Sleep;
use tracing::{debug, info, trace, warn, Instrument};
use zmqtt_proto::session::{
    AckToken, ClientSession, CloseReason, Event, IdHasher, RequestError, RequestId, SessionConfig,
    SessionState,
};
use zmqtt_proto::topic::ValidTopicName;
use zmqtt_proto::{
    Auth, ConnAck, Disconnect, ProtocolVersion, Publish, QoS, RetainHandling, SubAck,
    SubscribeFilter, UnsubAck, UnsubscribeProperties,
};

use super::command::{
    queue, Command, Control, QueueRx, QueueTx, RequestKey, Room, SubKey, SubscribeSpec, Subscribed,
};
use super::mapping;
use super::queue::CommandRx;
use super::transport::{self, Transport};
use crate::builder::ClientOptions;
use crate::client::{is_reply_topic, ConnectionState, ReplyId, Status};
use crate::error::{Error, Result};
use crate::message::{Message, PendingAck};
use crate::router::Router;
use crate::status::StatusCell;
use crate::subscription::UnsubscribeResult;

/// Stop taking commands while this much is waiting to be written.
const OUT_HIGH_WATER: usize = 1 << 20;
/// The read buffer of a connection that data flows on.
const READ_CHUNK: usize = 64 * 1024;
/// Reads land in a stack buffer of this size while the read buffer has less
/// room than that (an idle connection holds none): waiting for data costs no
/// heap memory, and only a read that fills it grows the buffer to a chunk.
const STACK_READ: usize = 4 * 1024;
/// A century ahead: the deadline of a timer that is not armed yet.
const UNARMED_TIMER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// How long the last bytes (a DISCONNECT) may take to leave when closing.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

const CLIENT: &str = "zmqtt::client";
const PROTOCOL: &str = "zmqtt::protocol";

/// A map keyed by locally generated integers (subscription keys, the
/// engine's request ids): sequential, never chosen by the network, so the
/// engine's stateless multiplicative hash serves (and keeps each map small).
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Everything a driver is made from.
pub(crate) struct DriverParts {
    pub options: Arc<ClientOptions>,
    pub config: Arc<SessionConfig>,
    pub status: Arc<StatusCell<Status>>,
    pub commands: CommandRx,
    /// Names the client's generated response topic (see `Shared::reply_id`).
    pub reply_id: ReplyId,
    /// The status generation this driver owns.
    pub generation: u64,
    /// Connections of the client's earlier runs: `connection_id` keeps
    /// counting across `connect()` calls.
    pub connections_before: u64,
}

/// One subscription as the driver knows it.
struct SubEntry {
    spec: SubscribeSpec,
    filters: Vec<String>,
    tx: QueueTx,
    /// Until handed to the caller with the SUBACK.
    rx: Option<QueueRx>,
    /// The caller of `subscribe()`, until SUBACK.
    initial: Option<oneshot::Sender<Result<Subscribed>>>,
}

/// What a SUBSCRIBE in flight is for.
enum SubRequest {
    Initial(SubKey),
    Resubscribe(SubKey),
    Reply(String),
}

struct UnsubRequest {
    reply: Option<oneshot::Sender<Result<UnsubscribeResult>>>,
    filters: Vec<String>,
}

struct PublishWaiter {
    reply: oneshot::Sender<Result<()>>,
    /// Released when the publish ends.
    _slot: Option<OwnedSemaphorePermit>,
}

/// A QoS 1/2 publish made while not connected; sent after the next CONNACK.
struct Parked {
    publish: Publish,
    waiter: PublishWaiter,
}

/// A message read from the socket, not yet handed out.
struct Inbound {
    publish: Publish,
    token: Option<AckToken>,
    /// The transport it arrived on; a token is only good on that one.
    epoch: u64,
}

/// A message of a resumed session that no subscription claimed yet.
struct Held {
    inbound: Inbound,
    deadline: Instant,
}

struct PendingRequest {
    reply: oneshot::Sender<Result<Message>>,
    /// Not yet published (the response topic is being subscribed).
    publish: Option<Publish>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReplyState {
    Idle,
    Subscribing,
    Active,
}

struct ReplyTopic {
    users: usize,
    state: ReplyState,
    /// The client's generated topic: stays subscribed once used.
    permanent: bool,
}

/// Completes when a blocked subscription's queue has room (or is gone).
type RoomWait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// State a connection running undisturbed does not hold, boxed on first use so
/// that it does not weigh on every driver task: the first `connect()` caller
/// until CONNACK, how a connection ended, publishes parked while offline,
/// messages held for a resumed session's subscriptions, pending pings,
/// unsubscribes and 5.0 requests, `reset()` and `disconnect()` callers.
/// Dropped again once empty (see `release_idle_memory`).
#[derive(Default)]
struct Seldom {
    /// QoS 1/2 publishes made while not connected, in order.
    parked: VecDeque<Parked>,
    /// Messages of a resumed session that no subscription claimed yet.
    held: VecDeque<Held>,
    requests: BTreeMap<RequestKey, PendingRequest>,
    reply_topics: BTreeMap<String, ReplyTopic>,
    request_publishes: BTreeMap<RequestId, RequestKey>,
    /// `reset()` callers, answered once the connection they dropped is closed.
    reset_replies: Vec<oneshot::Sender<Result<()>>>,
    unsub_requests: BTreeMap<RequestId, UnsubRequest>,
    /// `ping()` callers.
    pings: BTreeMap<RequestId, oneshot::Sender<Result<()>>>,
    /// The `disconnect()` caller, answered once the client stopped.
    disconnect_reply: Option<oneshot::Sender<Result<()>>>,
    /// Until when a resumed session's unclaimed messages are held.
    replay_until: Option<Instant>,
    /// The caller of the first `connect()`, until the first CONNACK.
    first: Option<oneshot::Sender<Result<()>>>,
    /// How the engine closed the current connection.
    close_reason: Option<CloseReason>,
    /// The broker refused the current connection.
    refusal: Option<Error>,
}

impl Seldom {
    fn is_empty(&self) -> bool {
        self.parked.is_empty()
            && self.held.is_empty()
            && self.requests.is_empty()
            && self.reply_topics.is_empty()
            && self.request_publishes.is_empty()
            && self.reset_replies.is_empty()
            && self.unsub_requests.is_empty()
            && self.pings.is_empty()
            && self.disconnect_reply.is_none()
            && self.replay_until.is_none()
            && self.first.is_none()
            && self.close_reason.is_none()
            && self.refusal.is_none()
    }
}

/// How a connection ended.
enum ConnectionEnd {
    /// The client stopped (disconnect, every handle dropped); all is settled.
    Stopped,
    /// The connection failed; `established` when CONNACK had accepted it.
    Failed { error: Error, established: bool },
}

pub(crate) struct Driver {
    options: Arc<ClientOptions>,
    session: ClientSession,
    version: ProtocolVersion,
    status: Arc<StatusCell<Status>>,
    generation: u64,
    commands: CommandRx,
    /// False once every command sender is gone (all handles dropped).
    commands_open: bool,
    /// The control channel, once a handle or a manual-ack message needed it
    /// (see `CommandTx::control`).
    control_rx: Option<mpsc::UnboundedReceiver<Control>>,
    control: Option<mpsc::UnboundedSender<Control>>,

    /// Bytes read and not yet decoded; empty and unallocated while idle.
    read_buf: BytesMut,
    out: BytesMut,
    /// Give back the memory kept for reuse at the end of this turn: the
    /// connection just went quiet (CONNACK, keepalive timer).
    release_memory: bool,

    router: Router,
    subs: IdMap<SubKey, SubEntry>,
    next_key: SubKey,

    publishes: IdMap<RequestId, PublishWaiter>,
    // Maps that are empty most of the time are B-trees: smaller inline than
    // hash maps, and holding no memory once empty.
    sub_requests: BTreeMap<RequestId, SubRequest>,

    /// Made on first use (see `Seldom`).
    seldom: Option<Box<Seldom>>,
    default_reply_id: ReplyId,

    inbound: VecDeque<Inbound>,
    /// The subscription whose full queue holds up delivery (and reading).
    blocked: Option<SubKey>,
    /// While `blocked`: completes once its queue has room. Boxed and kept
    /// across turns: most connections never block, so the task does not
    /// carry it inline.
    room: Option<RoomWait>,

    /// Transport counter.
    epoch: u64,
    /// CONNACK accepted on the current transport.
    connected: bool,
    /// `disconnect()` was called or every handle is gone.
    stop_requested: bool,
    connections_before: u64,
    /// `connection_id` of the current (or last) connection.
    connection_id: u64,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Driver {
    pub(crate) fn new(parts: DriverParts, first: oneshot::Sender<Result<()>>) -> Result<Driver> {
        let version = parts.config.protocol;
        let session =
            ClientSession::new(parts.config).map_err(|error| Error::invalid(error.to_string()))?;
        Ok(Driver {
            session,
            version,
            status: parts.status,
            generation: parts.generation,
            commands: parts.commands,
            commands_open: true,
            control_rx: None,
            control: None,
            read_buf: BytesMut::new(),
            out: BytesMut::new(),
            release_memory: false,
            router: Router::default(),
            subs: IdMap::default(),
            next_key: 0,
            publishes: IdMap::default(),
            sub_requests: BTreeMap::new(),
            seldom: Some(Box::new(Seldom {
                first: Some(first),
                ..Seldom::default()
            })),
            default_reply_id: parts.reply_id,
            inbound: VecDeque::new(),
            blocked: None,
            room: None,
            epoch: 0,
            connected: false,
            stop_requested: false,
            connections_before: parts.connections_before,
            connection_id: 0,
            options: parts.options,
        })
    }

    fn v5(&self) -> bool {
        self.version == ProtocolVersion::V5
    }

    /// The seldom-used state, made on first use.
    fn seldom(&mut self) -> &mut Seldom {
        self.seldom.get_or_insert_with(Box::default)
    }

    /// When the first held message's time is up.
    fn held_deadline(&self) -> Option<Instant> {
        let seldom = self.seldom.as_deref()?;
        seldom.held.front().map(|held| held.deadline)
    }

    /// Whether a pending request uses `topic` as its response topic.
    fn is_reply_topic_in_use(&self, topic: &str) -> bool {
        self.seldom
            .as_deref()
            .is_some_and(|seldom| seldom.reply_topics.contains_key(topic))
    }

    /// Runs until the client stops. A plain function returning the future
    /// (not an `async fn`): the driver is then moved into the task once,
    /// not held twice by nested futures.
    pub(crate) fn run(mut self) -> impl Future<Output = ()> + Send + 'static {
        let span = tracing::info_span!(
            target: CLIENT,
            "zmqtt",
            host = %self.options.host,
            port = self.options.port,
            client_id = %self.session.config().client_id,
        );
        async move { self.run_attempts().await }.instrument(span)
    }

    /// Connection attempts with back-off, then connections, until stopped.
    async fn run_attempts(&mut self) {
        // The driver's one timer, kept for its whole life (see `arm_timer`);
        // armed by the first deadline, which is sooner than this.
        let timer = tokio::time::sleep(UNARMED_TIMER);
        tokio::pin!(timer);
        let mut outage_attempts: u32 = 0;
        let mut ever_connected = false;
        // Boxed: it is kept across the awaits below, in the task.
        let mut last_error: Option<Box<Error>> = None;
        loop {
            let very_first = !ever_connected && outage_attempts == 0;
            if !very_first && !self.options.reconnect.may_retry(outage_attempts) {
                let error = last_error
                    .map_or_else(|| Error::disconnected("connection lost"), |error| *error);
                if ever_connected {
                    warn!(target: CLIENT, %error, "giving up reconnecting");
                }
                self.finish(Some(error));
                return;
            }
            let delay = self
                .options
                .reconnect
                .delay_before(outage_attempts.saturating_add(u32::from(ever_connected)));
            if !delay.is_zero() {
                info!(target: CLIENT, ?delay, attempt = outage_attempts.saturating_add(1), "reconnecting after a delay");
                let delay = Box::pin(tokio::time::sleep(delay));
                if self.wait_offline(delay, timer.as_mut()).await.is_none() {
                    return;
                }
            }
            outage_attempts = outage_attempts.saturating_add(1);
            let options = Arc::clone(&self.options);
            // Boxed: opening (TLS handshake included) is a large future that
            // would otherwise stay part of the task for its whole life.
            let opening = Box::pin(async move {
                transport::open(
                    &options.host,
                    options.port,
                    options.tls(),
                    options.connect_timeout,
                )
                .await
            });
            let transport = match self.wait_offline(opening, timer.as_mut()).await {
                None => return,
                Some(Ok(transport)) => transport,
                Some(Err(error)) => {
                    warn!(target: CLIENT, %error, "cannot open the connection");
                    if !error.is_retryable() {
                        self.finish(Some(error));
                        return;
                    }
                    last_error = Some(Box::new(error));
                    continue;
                }
            };
            // Split here, not in `run_connection`: an argument stays part of
            // the task's state for as long as the connection lasts.
            let (reader, writer) = tokio::io::split(transport);
            match self.run_connection(reader, writer, timer.as_mut()).await {
                ConnectionEnd::Stopped => return,
                ConnectionEnd::Failed { error, established } => {
                    if established {
                        warn!(target: CLIENT, %error, "connection lost");
                        ever_connected = true;
                        outage_attempts = 0;
                        if self.options.reconnect.enabled {
                            self.set_state(ConnectionState::Reconnecting);
                        }
                    } else {
                        warn!(target: CLIENT, %error, "connection attempt failed");
                        if !error.is_retryable() {
                            self.finish(Some(error));
                            return;
                        }
                    }
                    last_error = Some(Box::new(error));
                }
            }
        }
    }

    fn set_state(&self, state: ConnectionState) {
        self.update_status(|status| status.state = state);
    }

    /// Changes the shared status, unless a newer driver owns it.
    fn update_status(&self, change: impl FnOnce(&mut Status)) {
        let generation = self.generation;
        self.status.send_if_modified(|status| {
            if status.generation != generation {
                return false;
            }
            change(status);
            true
        });
    }

    // ------------------------------------------------------------------
    // Without a connection
    // ------------------------------------------------------------------

    /// Waits for `future` while answering commands as "not connected"
    /// (QoS 1/2 publishes are parked). `None` when the client stopped
    /// meanwhile (already settled).
    async fn wait_offline<F: Future + Unpin>(
        &mut self,
        mut future: F,
        mut timer: Pin<&mut Sleep>,
    ) -> Option<F::Output> {
        loop {
            let deadline = self.held_deadline();
            let timed = Self::arm_timer(timer.as_mut(), deadline);
            self.prepare_room();
            tokio::select! {
                output = &mut future => return Some(output),
                command = self.commands.recv(), if self.commands_open => match command {
                    Some(command) => self.command_offline(command),
                    None => {
                        self.commands_open = false;
                        self.stop_requested = true;
                    }
                },
                Some(control) = recv_control(&mut self.control_rx) => self.handle_control(control),
                () = timer.as_mut(), if timed => self.expire_held(now()),
                () = wait_room(&mut self.room) => {}
            }
            self.deliver(now());
            if self.stop_requested {
                self.finish(None);
                return None;
            }
        }
    }

    fn command_offline(&mut self, command: Command) {
        self.drain_controls();
        match command {
            Command::Detach(key) => self.detach(key),
            Command::ControlChannel(control_rx) => self.control_rx = Some(control_rx),
            // Nobody waits for its outcome.
            Command::PublishQos0 { .. } => {}
            Command::Publish {
                publish,
                reply,
                slot,
            } => {
                if publish.qos == QoS::AtMostOnce {
                    let _ = reply.send(Err(not_connected()));
                } else if !reply.is_closed() || slot.is_some() {
                    self.seldom().parked.push_back(Parked {
                        publish: *publish,
                        waiter: PublishWaiter { reply, _slot: slot },
                    });
                }
            }
            Command::Subscribe { reply, .. } => {
                let _ = reply.send(Err(not_connected()));
            }
            Command::Unsubscribe { key, reply, .. } => {
                self.remove_sub(key);
                let _ = reply.send(Err(not_connected()));
            }
            Command::Ping { reply } | Command::Auth { reply, .. } => {
                let _ = reply.send(Err(not_connected()));
            }
            Command::Request { reply, .. } => {
                let _ = reply.send(Err(not_connected()));
            }
            Command::Disconnect { reply, .. } => {
                self.stop_requested = true;
                self.seldom().disconnect_reply = Some(reply);
            }
            // Nothing to drop.
            Command::Reset { reply } => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    // ------------------------------------------------------------------
    // One connection
    // ------------------------------------------------------------------

    async fn run_connection(
        &mut self,
        mut reader: ReadHalf<Transport>,
        mut writer: WriteHalf<Transport>,
        mut timer: Pin<&mut Sleep>,
    ) -> ConnectionEnd {
        self.epoch += 1;
        self.connected = false;
        if let Some(seldom) = self.seldom.as_deref_mut() {
            seldom.close_reason = None;
            seldom.refusal = None;
        }
        self.session.handle_transport_open(now());
        debug!(target: PROTOCOL, "transport open, CONNECT queued");
        self.after_input(now());
        let mut io_error: Option<io::Error> = None;
        let mut needs_flush = false;
        while matches!(
            self.session.state(),
            SessionState::Connecting | SessionState::Connected
        ) {
            let deadline = self.next_deadline();
            let timed = Self::arm_timer(timer.as_mut(), deadline);
            // Reading stops while a subscription queue is full (TCP
            // backpressure) and while our own writes are backed up: acks
            // generated by what we read must not grow `out` without bound.
            let reading = self.blocked.is_none() && self.out.len() < OUT_HIGH_WATER;
            let take_commands = self.commands_open && self.out.len() < OUT_HIGH_WATER;
            self.prepare_room();
            tokio::select! {
                biased;
                written = write_some(&mut writer, &mut self.out), if !self.out.is_empty() || needs_flush => match written {
                    Ok(flushed) => needs_flush = !flushed,
                    Err(error) => {
                        io_error = Some(error);
                        self.session.handle_transport_closed(now());
                    }
                },
                Some(control) = recv_control(&mut self.control_rx) => {
                    self.handle_control(control);
                    self.drain_controls();
                },
                read = read_some(&mut reader, &mut self.read_buf), if reading => match read {
                    Ok(0) => {
                        debug!(target: PROTOCOL, "the broker closed the connection");
                        self.session.handle_transport_closed(now());
                    }
                    Ok(count) => {
                        trace!(target: PROTOCOL, bytes = count, "read");
                        self.session.handle_received(now(), &mut self.read_buf);
                        if count < STACK_READ && self.read_buf.is_empty() {
                            // Little traffic, all of it decoded: release the
                            // buffer (its bytes live on in the messages) so an
                            // idle connection holds none; a busy one keeps it.
                            self.read_buf = BytesMut::new();
                        }
                    }
                    Err(error) => {
                        io_error = Some(error);
                        self.session.handle_transport_closed(now());
                    }
                },
                command = self.commands.recv(), if take_commands => match command {
                    Some(command) => {
                        let now = now();
                        self.handle_command(now, command);
                        while self.out.len() < OUT_HIGH_WATER {
                            match self.commands.try_recv() {
                                Some(command) => self.handle_command(now, command),
                                None => break,
                            }
                        }
                    }
                    None => {
                        // Every handle is gone: leave politely.
                        self.commands_open = false;
                        self.stop_requested = true;
                        let _ = self.session.disconnect(now(), Disconnect::default());
                    }
                },
                () = timer.as_mut(), if timed => self.on_timer(now()),
                () = wait_room(&mut self.room) => {}
            }
            self.after_input(now());
        }
        // Closed: let the last bytes (a DISCONNECT) go, then close the socket.
        if io_error.is_none() {
            let last = self.out.split();
            timer
                .as_mut()
                .reset(tokio::time::Instant::now() + CLOSE_FLUSH_TIMEOUT);
            // Boxed: needed once per connection, it would otherwise add to
            // the task's size for the connection's whole life.
            let flush = Box::pin(async move {
                writer.write_all(&last).await?;
                writer.shutdown().await
            });
            tokio::select! {
                _ = flush => {}
                () = timer.as_mut() => {}
            }
        }
        self.out.clear();
        self.read_buf.clear();
        self.session.handle_transport_closed(now());
        self.after_input(now());
        self.out.clear();
        self.end_connection(io_error)
    }

    /// Settles a connection that ended.
    fn end_connection(&mut self, io_error: Option<io::Error>) -> ConnectionEnd {
        let established = self.connected;
        self.connected = false;
        if let Some(seldom) = self.seldom.as_deref_mut() {
            seldom.replay_until = None;
        }
        // Tokens of this transport are dead: the broker sends those messages
        // again on a resumed session. QoS 0 messages stay to be delivered.
        let epoch = self.epoch;
        self.inbound
            .retain(|item| item.token.is_none() || item.epoch != epoch);
        if let Some(seldom) = self.seldom.as_deref_mut() {
            seldom
                .held
                .retain(|held| held.inbound.token.is_none() || held.inbound.epoch != epoch);
            for topic in seldom.reply_topics.values_mut() {
                topic.state = ReplyState::Idle;
            }
        }
        self.deliver(now());
        if self.stop_requested {
            self.finish(None);
            return ConnectionEnd::Stopped;
        }
        let negotiated_keep_alive = self.session.negotiated().map(|n| n.keep_alive);
        let ping_timeout = negotiated_keep_alive
            .and_then(|keep_alive| self.session.config().ping_timeout.resolve(keep_alive));
        let (refusal, close_reason) = match self.seldom.as_deref_mut() {
            Some(seldom) => (seldom.refusal.take(), seldom.close_reason.take()),
            None => (None, None),
        };
        let error = match (refusal, close_reason, io_error) {
            (Some(refusal), _, _) => refusal,
            (None, Some(CloseReason::TransportClosed) | None, Some(error)) => {
                crate::tls::io_error(error)
            }
            (None, Some(reason), _) => mapping::close_error(
                reason,
                self.version,
                ping_timeout,
                self.options.connect_timeout,
            ),
            (None, None, None) => Error::disconnected("connection closed"),
        };
        let reset_replies = self
            .seldom
            .as_deref_mut()
            .map(|seldom| std::mem::take(&mut seldom.reset_replies))
            .unwrap_or_default();
        let reset = !reset_replies.is_empty();
        for reply in reset_replies {
            let _ = reply.send(Ok(()));
        }
        let error = match error {
            Error::Disconnected { reason_code, .. } if reset => Error::Disconnected {
                reason: "reset() dropped the connection".into(),
                reason_code,
            },
            Error::Disconnected {
                reason,
                reason_code,
            } if reason == "connection closed" => Error::Disconnected {
                reason: if established {
                    "connection closed by the broker".into()
                } else {
                    "connection closed before CONNACK".into()
                },
                reason_code,
            },
            other => other,
        };
        ConnectionEnd::Failed { error, established }
    }

    /// The client stops: every waiting caller is answered, subscriptions end.
    fn finish(&mut self, error: Option<Error>) {
        let reason = match &error {
            None => "disconnect() was called".to_owned(),
            Some(error) => format!("the client stopped: {error}"),
        };
        // A broker's 5.0 DISCONNECT reason code stays available to every
        // waiter, not only in the text.
        let reason_code = match &error {
            Some(Error::Disconnected { reason_code, .. }) => *reason_code,
            _ => None,
        };
        let stopped = || Error::Disconnected {
            reason: reason.clone(),
            reason_code,
        };
        // The status first: whoever sees a call fail or a subscription end
        // below finds the reason already there.
        let stop_error = error.as_ref().map(|error| Arc::new(error.duplicate()));
        self.update_status(|status| {
            status.state = ConnectionState::Disconnected;
            status.stop_error = stop_error;
        });
        // No new commands from here on (a later `connect()` starts a new
        // driver); those already queued are answered below.
        self.commands.close();
        while let Some(command) = self.commands.try_recv() {
            match command {
                Command::Disconnect { reply, .. } => {
                    let _ = reply.send(Ok(()));
                }
                other => self.command_offline(other),
            }
        }
        self.session.clear_session();
        while let Some(event) = self.session.poll_event() {
            if let Event::RequestFailed { id, .. } = event {
                if let Some(waiter) = self.publishes.remove(&id) {
                    let _ = waiter.reply.send(Err(stopped()));
                }
            }
        }
        for (_, waiter) in self.publishes.drain() {
            let _ = waiter.reply.send(Err(stopped()));
        }
        let seldom = self.seldom.take().map(|seldom| *seldom).unwrap_or_default();
        for parked in seldom.parked {
            let _ = parked.waiter.reply.send(Err(stopped()));
        }
        for (_, ping) in seldom.pings {
            let _ = ping.send(Err(stopped()));
        }
        for (_, request) in seldom.unsub_requests {
            if let Some(reply) = request.reply {
                let _ = reply.send(Err(stopped()));
            }
        }
        self.sub_requests.clear();
        for (_, request) in seldom.requests {
            let _ = request.reply.send(Err(stopped()));
        }
        for reply in seldom.reset_replies {
            let _ = reply.send(Err(stopped()));
        }
        for (_, entry) in self.subs.drain() {
            if let Some(initial) = entry.initial {
                let _ = initial.send(Err(stopped()));
            }
        }
        self.inbound.clear();
        self.blocked = None;
        self.room = None;
        if let Some(first) = seldom.first {
            let _ = first.send(Err(match &error {
                Some(error) => error.duplicate(),
                None => stopped(),
            }));
        }
        match &error {
            None => info!(target: CLIENT, "disconnected"),
            Some(error) => warn!(target: CLIENT, %error, "stopped"),
        }
        if let Some(reply) = seldom.disconnect_reply {
            let _ = reply.send(Ok(()));
        }
    }

    // ------------------------------------------------------------------
    // Inputs
    // ------------------------------------------------------------------

    fn handle_command(&mut self, now: Instant, command: Command) {
        // Notices sent before this command (an abandoned request, a message
        // acknowledged) take effect first, whichever channel the driver
        // happened to poll.
        self.drain_controls();
        // The hot path, matched by reference: the command is not moved again.
        if let (
            Command::PublishQos0 {
                topic,
                payload,
                retain,
            },
            true,
        ) = (&command, self.connected)
        {
            // `try_send()` checked the topic (`check_qos0`), so the engine
            // need not scan it again; a refusal here has nobody to tell.
            let topic = ValidTopicName::checked_before(topic.as_str());
            if let Err(error) = self
                .session
                .publish_qos0_valid(now, topic, payload, *retain)
            {
                debug!(target: CLIENT, %error, "QoS 0 publish refused");
            }
            return;
        }
        let command = match command {
            Command::Detach(key) => return self.detach(key),
            Command::ControlChannel(control_rx) => {
                self.control_rx = Some(control_rx);
                return;
            }
            other => other,
        };
        if let Command::Disconnect { disconnect, reply } = command {
            match self.session.disconnect(now, *disconnect) {
                Ok(()) => {
                    info!(target: CLIENT, "disconnecting");
                    self.stop_requested = true;
                    self.seldom().disconnect_reply = Some(reply);
                }
                Err(error) => {
                    let _ = reply.send(Err(mapping::command_error(error)));
                }
            }
            return;
        }
        if !self.connected {
            self.command_offline(command);
            return;
        }
        match command {
            Command::PublishQos0 { .. } => {
                // Offline it went to `command_offline`; connected, to the top.
            }
            Command::Publish {
                publish,
                reply,
                slot,
            } => self.publish(now, *publish, PublishWaiter { reply, _slot: slot }),
            Command::Subscribe { spec, reply } => self.subscribe(now, *spec, reply),
            Command::Unsubscribe {
                key,
                properties,
                reply,
            } => self.unsubscribe(now, key, *properties, reply),
            Command::Ping { reply } => match self.session.ping(now) {
                Ok(id) => {
                    self.seldom().pings.insert(id, reply);
                }
                Err(error) => {
                    let _ = reply.send(Err(mapping::command_error(error)));
                }
            },
            Command::Auth { auth, reply } => {
                let _ = reply.send(self.auth(now, *auth));
            }
            Command::Request {
                publish,
                key,
                reply,
            } => self.request(now, *publish, key, reply),
            Command::Reset { reply } => {
                info!(target: CLIENT, "reset(): dropping the connection");
                self.seldom().reset_replies.push(reply);
                self.session.handle_transport_closed(now);
            }
            Command::Disconnect { .. } | Command::Detach(_) | Command::ControlChannel(_) => {}
        }
    }

    fn auth(&mut self, now: Instant, auth: Auth) -> Result<()> {
        self.session.auth(now, auth).map_err(mapping::command_error)
    }

    fn publish(&mut self, now: Instant, publish: Publish, waiter: PublishWaiter) {
        match self.session.publish(now, publish) {
            Ok(None) => {
                let _ = waiter.reply.send(Ok(()));
            }
            Ok(Some(id)) => {
                self.publishes.insert(id, waiter);
            }
            Err(error) => {
                let _ = waiter.reply.send(Err(mapping::command_error(error)));
            }
        }
    }

    /// Handles the notices waiting on the control channel.
    fn drain_controls(&mut self) {
        while let Some(control) = self.control_rx.as_mut().and_then(|rx| rx.try_recv().ok()) {
            self.handle_control(control);
        }
    }

    /// The sender of the control channel, for a manual-ack message.
    fn control_sender(&mut self) -> mpsc::UnboundedSender<Control> {
        if let Some(control) = &self.control {
            return control.clone();
        }
        let (control, control_rx) = self.commands.control();
        if let Some(control_rx) = control_rx {
            self.control_rx = Some(control_rx);
        }
        self.control = Some(control.clone());
        control
    }

    /// A subscription was dropped or detached: local delivery stops.
    fn detach(&mut self, key: SubKey) {
        if self.remove_sub(key) {
            debug!(target: CLIENT, key, "subscription detached");
        }
    }

    fn handle_control(&mut self, control: Control) {
        let now = now();
        match control {
            Control::Ack(token) => {
                self.session.acknowledge(now, token);
            }
            Control::Abandon(token) => {
                if self.session.abandon(now, token) {
                    debug!(target: PROTOCOL, "message dropped unacknowledged");
                }
            }
            Control::CancelRequest(key) => {
                // Only a request whose caller is gone: the guard of a refused
                // duplicate names the same key as the live request it hit.
                let Some(seldom) = self.seldom.as_deref_mut() else {
                    return;
                };
                let abandoned = seldom
                    .requests
                    .get(&key)
                    .is_some_and(|request| request.reply.is_closed());
                if abandoned && seldom.requests.remove(&key).is_some() {
                    self.release_reply_topic(now, &key.0);
                }
            }
        }
    }

    fn on_timer(&mut self, now: Instant) {
        self.session.handle_timeout(now);
        self.expire_held(now);
        // Mostly the keepalive: nothing was sent for a while.
        self.release_memory = true;
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.session.poll_timeout(), self.held_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// After every input: the engine's events, deliveries, bytes to send.
    fn after_input(&mut self, now: Instant) {
        loop {
            let mut any = false;
            // Calls failed because the connection closed are answered after
            // the `Closed` event that follows them, so that they can say why.
            let mut closed_under = Vec::new();
            while let Some(event) = self.session.poll_event() {
                any = true;
                match event {
                    Event::RequestFailed {
                        id,
                        error: RequestError::ConnectionClosed,
                    } => closed_under.push(id),
                    other => self.on_event(now, other),
                }
            }
            for id in closed_under {
                self.on_request_failed(now, id, RequestError::ConnectionClosed);
            }
            self.deliver(now);
            if !any {
                break;
            }
        }
        self.session.poll_transmit(&mut self.out);
        if std::mem::take(&mut self.release_memory) {
            self.release_idle_memory(now);
        }
    }

    /// Gives back the memory kept for reuse by whatever is empty now, so that
    /// a quiet connection costs little; it is allocated again when needed.
    /// Called at moments that are rare while data flows (CONNACK, the
    /// keepalive timer), so busy connections keep their buffers.
    fn release_idle_memory(&mut self, now: Instant) {
        if self.read_buf.is_empty() {
            self.read_buf = BytesMut::new();
        }
        if self.out.is_empty() {
            self.out = BytesMut::new();
        }
        if self.inbound.is_empty() {
            self.inbound = VecDeque::new();
        }
        if let Some(seldom) = self.seldom.as_deref_mut() {
            if seldom.replay_until.is_some_and(|until| until <= now) {
                seldom.replay_until = None;
            }
            if seldom.is_empty() {
                self.seldom = None;
            }
        }
        self.commands.release_memory();
        // An empty map shrinks to no allocation at all.
        if self.publishes.is_empty() {
            self.publishes.shrink_to_fit();
        }
        self.session.release_idle_memory();
    }

    // ------------------------------------------------------------------
    // Engine events
    // ------------------------------------------------------------------

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected {
                connack,
                negotiated,
            } => self.on_connected(now, &connack, &negotiated),
            Event::ConnectRefused(connack) => {
                let error = mapping::connect_refused(*connack, self.version);
                warn!(target: CLIENT, %error, "connection refused");
                self.seldom().refusal = Some(error);
            }
            Event::Message { publish, ack } => {
                debug!(
                    target: PROTOCOL,
                    topic = %publish.topic,
                    qos = publish.qos as u8,
                    bytes = publish.payload.len(),
                    "PUBLISH received"
                );
                self.inbound.push_back(Inbound {
                    publish,
                    token: ack,
                    epoch: self.epoch,
                });
            }
            Event::PublishCompleted { id, result } => {
                let result = result.map(|_| ()).map_err(mapping::publish_rejected);
                if let Some(waiter) = self.publishes.remove(&id) {
                    let _ = waiter.reply.send(result);
                } else if let Some(key) = self.remove_request_publish(id) {
                    if let Err(error) = result {
                        self.fail_request(now, &key, error);
                    }
                }
            }
            Event::SubscribeCompleted { id, suback } => self.on_suback(now, id, suback),
            Event::UnsubscribeCompleted { id, unsuback } => self.on_unsuback(id, unsuback),
            Event::Pong { id } => {
                if let Some(reply) = self.remove_ping(id) {
                    let _ = reply.send(Ok(()));
                }
            }
            Event::RequestFailed { id, error } => self.on_request_failed(now, id, error),
            Event::AuthReceived(auth) => {
                debug!(
                    target: PROTOCOL,
                    reason = %auth.reason_code,
                    method = ?auth.properties.authentication_method,
                    "AUTH received"
                );
            }
            Event::Closed { reason } => {
                debug!(target: PROTOCOL, %reason, "connection closed");
                self.seldom().close_reason = Some(reason);
            }
            other => debug!(target: PROTOCOL, event = ?other, "unhandled event"),
        }
    }

    fn on_connected(
        &mut self,
        now: Instant,
        connack: &ConnAck,
        negotiated: &zmqtt_proto::session::Negotiated,
    ) {
        self.connected = true;
        // The handshake is over; most connections now idle for a while.
        self.release_memory = true;
        let mut info = mapping::connection_info(connack, negotiated, self.v5());
        info.connection_id = info.connection_id.saturating_add(self.connections_before);
        self.connection_id = info.connection_id;
        info!(
            target: CLIENT,
            connection_id = info.connection_id,
            session_present = info.session_present,
            client_id = %info.effective_client_id,
            "connected"
        );
        self.update_status(|status| {
            status.state = ConnectionState::Connected;
            status.info = Some(info);
            status.stop_error = None;
        });
        if let Some(first) = self
            .seldom
            .as_deref_mut()
            .and_then(|seldom| seldom.first.take())
        {
            let _ = first.send(Ok(()));
        }
        let session_present = negotiated.session_present;
        let replay_until = session_present
            .then(|| now.checked_add(self.options.session_replay_timeout))
            .flatten();
        if replay_until.is_some() {
            self.seldom().replay_until = replay_until;
        } else if let Some(seldom) = self.seldom.as_deref_mut() {
            seldom.replay_until = None;
        }
        // Every live subscription again (SPEC 1.5), in registration order.
        let mut keys: Vec<SubKey> = self
            .subs
            .iter()
            .filter(|(_, entry)| entry.initial.is_none())
            .map(|(key, _)| *key)
            .collect();
        keys.sort_unstable();
        for key in keys {
            let Some(entry) = self.subs.get(&key) else {
                continue;
            };
            let mut filters = entry.spec.filters.clone();
            if session_present {
                // The broker kept the subscription: no second copy of the
                // retained messages.
                for filter in &mut filters {
                    if filter.options.retain_handling == RetainHandling::SendOnSubscribe
                        && self.version == ProtocolVersion::V5
                    {
                        filter.options.retain_handling = RetainHandling::SendIfNotExists;
                    }
                }
            }
            match self
                .session
                .subscribe(now, filters, entry.spec.properties.clone())
            {
                Ok(id) => {
                    self.sub_requests.insert(id, SubRequest::Resubscribe(key));
                }
                Err(error) => {
                    warn!(target: CLIENT, %error, filters = ?entry.filters, "cannot subscribe again");
                }
            }
        }
        let (topics, parked) = match self.seldom.as_deref_mut() {
            Some(seldom) => (
                seldom.reply_topics.keys().cloned().collect(),
                std::mem::take(&mut seldom.parked),
            ),
            None => (Vec::new(), VecDeque::new()),
        };
        for topic in topics {
            self.subscribe_reply_topic(now, &topic);
        }
        for parked in parked {
            self.publish(now, parked.publish, parked.waiter);
        }
    }

    /// The error of a call that ended without an answer: the broker's
    /// DISCONNECT when that closed the connection.
    fn request_error(&self, error: RequestError) -> Error {
        let close_reason = self
            .seldom
            .as_deref()
            .and_then(|seldom| seldom.close_reason.as_ref());
        match (&error, close_reason) {
            (RequestError::ConnectionClosed, Some(reason @ CloseReason::ServerDisconnect(_))) => {
                mapping::close_error(
                    reason.clone(),
                    self.version,
                    None,
                    self.options.connect_timeout,
                )
            }
            _ => mapping::request_error(error),
        }
    }

    fn on_request_failed(&mut self, now: Instant, id: RequestId, error: RequestError) {
        let request_error = |driver: &Self| driver.request_error(error.clone());
        if let Some(waiter) = self.publishes.remove(&id) {
            let _ = waiter.reply.send(Err(request_error(self)));
        } else if let Some(key) = self.remove_request_publish(id) {
            let error = request_error(self);
            self.fail_request(now, &key, error);
        } else if let Some(request) = self.sub_requests.remove(&id) {
            match request {
                SubRequest::Initial(key) => {
                    if let Some(entry) = self.subs.remove(&key) {
                        self.router.remove(key);
                        if let Some(initial) = entry.initial {
                            let _ = initial.send(Err(request_error(self)));
                        }
                    }
                }
                // Subscribed again after the next CONNACK.
                SubRequest::Resubscribe(_) => {}
                SubRequest::Reply(topic) => {
                    if let Some(entry) = self.seldom().reply_topics.get_mut(&topic) {
                        entry.state = ReplyState::Idle;
                    }
                }
            }
        } else if let Some(request) = self.remove_unsub_request(id) {
            if let Some(reply) = request.reply {
                let _ = reply.send(Err(request_error(self)));
            }
        } else if let Some(reply) = self.remove_ping(id) {
            let _ = reply.send(Err(request_error(self)));
        }
    }

    // ------------------------------------------------------------------
    // Subscriptions
    // ------------------------------------------------------------------

    fn subscribe(
        &mut self,
        now: Instant,
        spec: SubscribeSpec,
        reply: oneshot::Sender<Result<Subscribed>>,
    ) {
        if reply.is_closed() {
            return;
        }
        self.next_key += 1;
        let key = self.next_key;
        let filters: Vec<String> = spec.filters.iter().map(|f| f.filter.clone()).collect();
        match self.router.insert(
            key,
            &filters,
            spec.properties.subscription_identifier,
            &self.options.stripped_prefixes,
        ) {
            Ok(duplicates) => {
                for (filter, owner) in duplicates {
                    let abandoned = self
                        .subs
                        .get(&owner)
                        .and_then(|entry| entry.initial.as_ref())
                        .is_some_and(|initial| initial.is_closed());
                    if abandoned {
                        // Its caller gave up before the SUBACK: it goes then.
                        continue;
                    }
                    warn!(
                        target: CLIENT,
                        %filter,
                        "another live subscription already has this topic filter; \
                         the new one receives nothing for it (subscription {owner} gets the messages)"
                    );
                }
            }
            Err(error) => {
                let _ = reply.send(Err(Error::InvalidTopic(error)));
                return;
            }
        }
        match self
            .session
            .subscribe(now, spec.filters.clone(), spec.properties.clone())
        {
            Ok(id) => {
                let (tx, rx) = queue(spec.receive_buffer_size);
                debug!(target: PROTOCOL, ?filters, "SUBSCRIBE sent");
                self.sub_requests.insert(id, SubRequest::Initial(key));
                self.subs.insert(
                    key,
                    SubEntry {
                        spec,
                        filters,
                        tx,
                        rx: Some(rx),
                        initial: Some(reply),
                    },
                );
            }
            Err(error) => {
                self.router.remove(key);
                let _ = reply.send(Err(mapping::command_error(error)));
            }
        }
    }

    fn on_suback(&mut self, now: Instant, id: RequestId, suback: SubAck) {
        let Some(request) = self.sub_requests.remove(&id) else {
            return;
        };
        match request {
            SubRequest::Initial(key) => self.initial_suback(now, key, suback),
            SubRequest::Resubscribe(key) => {
                let Some(entry) = self.subs.get(&key) else {
                    return;
                };
                let failures = failures(&entry.filters, &suback.reason_codes);
                if !failures.is_empty() {
                    warn!(target: CLIENT, ?failures, "the broker refused to subscribe again");
                }
            }
            SubRequest::Reply(topic) => {
                let refused = suback.reason_codes.iter().any(|code| code.is_failure());
                if refused {
                    let error = Error::Subscribe {
                        failures: failures(std::slice::from_ref(&topic), &suback.reason_codes),
                        reason_string: suback.properties.reason_string.clone(),
                    };
                    self.fail_requests_on(&topic, &error);
                    return;
                }
                let seldom = self.seldom();
                if let Some(entry) = seldom.reply_topics.get_mut(&topic) {
                    entry.state = ReplyState::Active;
                }
                let keys: Vec<RequestKey> = seldom
                    .requests
                    .iter()
                    .filter(|(key, request)| key.0 == topic && request.publish.is_some())
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in keys {
                    self.publish_request(now, &key);
                }
            }
        }
    }

    fn initial_suback(&mut self, now: Instant, key: SubKey, suback: SubAck) {
        let Some(entry) = self.subs.get_mut(&key) else {
            return;
        };
        let Some(initial) = entry.initial.take() else {
            return;
        };
        let failures = failures(&entry.filters, &suback.reason_codes);
        if !failures.is_empty() {
            let granted: Vec<String> = entry
                .filters
                .iter()
                .zip(&suback.reason_codes)
                .filter(|(_, code)| !code.is_failure())
                .map(|(filter, _)| filter.clone())
                .collect();
            self.remove_sub(key);
            let _ = initial.send(Err(Error::Subscribe {
                failures,
                reason_string: suback.properties.reason_string,
            }));
            let unused = self.unused_filters(granted, key);
            self.unsubscribe_internal(now, unused);
            return;
        }
        let Some(rx) = entry.rx.take() else {
            return;
        };
        let subscribed = Subscribed {
            key,
            queue: rx,
            granted: suback.reason_codes,
        };
        if initial.send(Ok(subscribed)).is_err() {
            // The caller gave up waiting: do not leak the subscription.
            let filters = entry.filters.clone();
            self.remove_sub(key);
            let unused = self.unused_filters(filters, key);
            self.unsubscribe_internal(now, unused);
            return;
        }
        debug!(target: CLIENT, key, "subscribed");
        self.claim_held(now);
    }

    fn unsubscribe(
        &mut self,
        now: Instant,
        key: SubKey,
        properties: UnsubscribeProperties,
        reply: oneshot::Sender<Result<UnsubscribeResult>>,
    ) {
        let Some(entry) = self.subs.get(&key) else {
            let _ = reply.send(Ok(UnsubscribeResult::default()));
            return;
        };
        let filters = entry.filters.clone();
        self.remove_sub(key);
        let filters = self.unused_filters(filters, key);
        if filters.is_empty() {
            let _ = reply.send(Ok(UnsubscribeResult::default()));
            return;
        }
        match self.session.unsubscribe(now, filters.clone(), properties) {
            Ok(id) => {
                debug!(target: PROTOCOL, ?filters, "UNSUBSCRIBE sent");
                self.seldom().unsub_requests.insert(
                    id,
                    UnsubRequest {
                        reply: Some(reply),
                        filters,
                    },
                );
            }
            Err(error) => {
                let _ = reply.send(Err(mapping::command_error(error)));
            }
        }
    }

    fn on_unsuback(&mut self, id: RequestId, unsuback: UnsubAck) {
        let Some(request) = self.remove_unsub_request(id) else {
            return;
        };
        if let Some(reply) = request.reply {
            let _ = reply.send(Ok(UnsubscribeResult {
                topic_filters: request.filters,
                reason_codes: unsuback.reason_codes,
                properties: unsuback.properties,
            }));
        }
    }

    /// Removes a subscription locally (no packet). Its queue closes once
    /// drained. Returns whether it existed.
    fn remove_sub(&mut self, key: SubKey) -> bool {
        self.router.remove(key);
        if self.blocked == Some(key) {
            self.room = None;
        }
        // A delivery blocked on it is routed again by the next `deliver`.
        self.subs.remove(&key).is_some()
    }

    /// The filters of `filters` that no other live subscription (nor a
    /// pending request's response topic) holds, so they can be unsubscribed.
    fn unused_filters(&self, filters: Vec<String>, except: SubKey) -> Vec<String> {
        filters
            .into_iter()
            .filter(|filter| {
                !self.router.filter_in_use(filter, except) && !self.is_reply_topic_in_use(filter)
            })
            .collect()
    }

    /// UNSUBSCRIBE nobody waits for.
    fn unsubscribe_internal(&mut self, now: Instant, filters: Vec<String>) {
        if filters.is_empty() || !self.connected {
            return;
        }
        match self
            .session
            .unsubscribe(now, filters.clone(), UnsubscribeProperties::default())
        {
            Ok(id) => {
                self.seldom().unsub_requests.insert(
                    id,
                    UnsubRequest {
                        reply: None,
                        filters,
                    },
                );
            }
            Err(error) => debug!(target: CLIENT, %error, "cannot unsubscribe"),
        }
    }

    // ------------------------------------------------------------------
    // Delivery
    // ------------------------------------------------------------------

    /// Arms `timer` for `deadline` unless it is armed for an earlier one
    /// already; returns whether the timer is to be waited for. A timer that
    /// fires early finds nothing due and is armed again: cheaper than taking
    /// it out of and back into the timer wheel on every turn while the
    /// deadline keeps moving (the keepalive moves with every packet sent).
    fn arm_timer(timer: Pin<&mut Sleep>, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            return false;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if timer.is_elapsed() || deadline < timer.deadline() {
            timer.reset(deadline);
        }
        true
    }

    /// Makes the room waiter of the blocked subscription, if there is one and
    /// it has none yet.
    fn prepare_room(&mut self) {
        if self.room.is_some() {
            return;
        }
        if let Some(SubEntry {
            tx: QueueTx::Bounded(tx),
            ..
        }) = self.blocked.and_then(|key| self.subs.get(&key))
        {
            let tx = tx.clone();
            // The permit is returned at once: this driver is the only
            // sender, so the room stays until it pushes.
            self.room = Some(Box::pin(async move { drop(tx.reserve().await) }));
        }
    }

    fn set_blocked(&mut self, now: Instant, blocked: Option<SubKey>) {
        if self.blocked.is_some() != blocked.is_some() {
            self.session.set_receive_paused(now, blocked.is_some());
            trace!(target: CLIENT, paused = blocked.is_some(), "socket reading");
        }
        if self.blocked != blocked {
            // Its sender clone must not outlive the subscription it waits on.
            self.room = None;
        }
        self.blocked = blocked;
    }

    /// Hands out waiting messages in arrival order until one finds its
    /// subscription's queue full.
    fn deliver(&mut self, now: Instant) {
        while let Some(item) = self.inbound.front() {
            if item.token.is_some() && item.epoch != self.epoch {
                // A QoS 1/2 message of an earlier transport: sent again.
                self.inbound.pop_front();
                continue;
            }
            if let Some(key) = self.reply_key(&item.publish) {
                let Some(item) = self.inbound.pop_front() else {
                    break;
                };
                self.deliver_reply(now, key, item);
                continue;
            }
            let identifiers = &item.publish.properties.subscription_identifiers;
            let Some(route) = self.router.route(&item.publish.topic, identifiers) else {
                let Some(item) = self.inbound.pop_front() else {
                    break;
                };
                self.unrouted(now, item);
                continue;
            };
            let Some(entry) = self.subs.get(&route.key) else {
                // Registered but unknown: cannot happen; do not spin.
                self.router.remove(route.key);
                continue;
            };
            match entry.tx.room() {
                Room::Full => {
                    self.set_blocked(now, Some(route.key));
                    return;
                }
                Room::Closed => {
                    // Its Subscription was dropped: route again without it.
                    self.remove_sub(route.key);
                    continue;
                }
                Room::Yes => {}
            }
            let auto_ack = entry.spec.auto_ack;
            let Some(item) = self.inbound.pop_front() else {
                break;
            };
            if route.tied {
                trace!(target: CLIENT, topic = %item.publish.topic, "tie between subscriptions");
            }
            let pending = match item.token {
                Some(token) if auto_ack => {
                    self.session.acknowledge(now, token);
                    None
                }
                Some(token) => Some(PendingAck::new(
                    token,
                    self.control_sender(),
                    Arc::clone(&self.status),
                    self.connection_id,
                )),
                None => None,
            };
            let message = Message::new(item.publish, self.v5(), pending);
            if let Some(entry) = self.subs.get(&route.key) {
                entry.tx.push(message);
            }
        }
        self.set_blocked(now, None);
    }

    /// A message no subscription matches: held for a while in a resumed
    /// session's replay window, otherwise acknowledged and dropped.
    fn unrouted(&mut self, now: Instant, item: Inbound) {
        let in_window = self
            .seldom
            .as_deref()
            .and_then(|seldom| seldom.replay_until)
            .is_some_and(|until| now < until);
        if in_window {
            let limit = self.options.session_replay_buffer_size;
            let held = self.seldom.as_deref().map_or(0, |seldom| seldom.held.len());
            if limit == 0 || held < limit {
                trace!(target: CLIENT, topic = %item.publish.topic, "held for a later subscription");
                let deadline = now
                    .checked_add(self.options.session_replay_timeout)
                    .unwrap_or(now);
                self.seldom().held.push_back(Held {
                    inbound: item,
                    deadline,
                });
                return;
            }
            warn!(
                target: CLIENT,
                topic = %item.publish.topic,
                "session replay buffer full; message dropped unacknowledged"
            );
            if let Some(token) = item.token {
                self.session.abandon(now, token);
            }
            return;
        }
        debug!(target: CLIENT, topic = %item.publish.topic, "no subscription matches; message dropped");
        if let Some(token) = item.token {
            self.session.acknowledge(now, token);
        }
    }

    /// Held messages that a subscription now matches go out first, in order.
    fn claim_held(&mut self, now: Instant) {
        let Some(seldom) = self.seldom.as_deref_mut() else {
            return;
        };
        if seldom.held.is_empty() {
            return;
        }
        let mut claimed = Vec::new();
        let mut kept = VecDeque::new();
        for held in std::mem::take(&mut seldom.held) {
            let identifiers = &held.inbound.publish.properties.subscription_identifiers;
            if self
                .router
                .route(&held.inbound.publish.topic, identifiers)
                .is_some()
            {
                claimed.push(held.inbound);
            } else {
                kept.push_back(held);
            }
        }
        self.seldom().held = kept;
        for item in claimed.into_iter().rev() {
            self.inbound.push_front(item);
        }
        self.deliver(now);
    }

    /// Drops held messages whose time is up, unacknowledged.
    fn expire_held(&mut self, now: Instant) {
        while self.held_deadline().is_some_and(|deadline| deadline <= now) {
            let Some(held) = self
                .seldom
                .as_deref_mut()
                .and_then(|seldom| seldom.held.pop_front())
            else {
                break;
            };
            debug!(
                target: CLIENT,
                topic = %held.inbound.publish.topic,
                "no subscription claimed a replayed message in time; dropped unacknowledged"
            );
            if let (Some(token), true) = (held.inbound.token, held.inbound.epoch == self.epoch) {
                self.session.abandon(now, token);
            }
        }
    }

    // ------------------------------------------------------------------
    // Request / response (5.0)
    // ------------------------------------------------------------------

    fn request(
        &mut self,
        now: Instant,
        publish: Publish,
        key: RequestKey,
        reply: oneshot::Sender<Result<Message>>,
    ) {
        if reply.is_closed() {
            return;
        }
        let permanent = is_reply_topic(&key.0, &self.default_reply_id);
        let seldom = self.seldom();
        if seldom.requests.contains_key(&key) {
            let _ = reply.send(Err(Error::invalid(
                "a request with this response topic and correlation data is already pending",
            )));
            return;
        }
        let topic = key.0.clone();
        seldom.requests.insert(
            key.clone(),
            PendingRequest {
                reply,
                publish: Some(publish),
            },
        );
        let entry = seldom
            .reply_topics
            .entry(topic.clone())
            .or_insert(ReplyTopic {
                users: 0,
                state: ReplyState::Idle,
                permanent,
            });
        entry.users += 1;
        match entry.state {
            ReplyState::Active => self.publish_request(now, &key),
            ReplyState::Subscribing => {}
            ReplyState::Idle => self.subscribe_reply_topic(now, &topic),
        }
    }

    fn subscribe_reply_topic(&mut self, now: Instant, topic: &str) {
        let filters = vec![SubscribeFilter {
            filter: topic.to_owned(),
            options: zmqtt_proto::SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        }];
        match self.session.subscribe(now, filters, Default::default()) {
            Ok(id) => {
                self.sub_requests
                    .insert(id, SubRequest::Reply(topic.to_owned()));
                if let Some(entry) = self.seldom().reply_topics.get_mut(topic) {
                    entry.state = ReplyState::Subscribing;
                }
            }
            Err(error) => {
                let error = mapping::command_error(error);
                self.fail_requests_on(topic, &error);
            }
        }
    }

    /// Fails every request waiting on the response topic `topic` (it could
    /// not be subscribed) and forgets the topic.
    fn fail_requests_on(&mut self, topic: &str, error: &Error) {
        let seldom = self.seldom();
        let keys: Vec<RequestKey> = seldom
            .requests
            .keys()
            .filter(|key| key.0 == topic)
            .cloned()
            .collect();
        seldom.reply_topics.remove(topic);
        for key in keys {
            if let Some(request) = seldom.requests.remove(&key) {
                let _ = request.reply.send(Err(error.duplicate()));
            }
        }
    }

    fn remove_ping(&mut self, id: RequestId) -> Option<oneshot::Sender<Result<()>>> {
        self.seldom.as_deref_mut()?.pings.remove(&id)
    }

    fn remove_unsub_request(&mut self, id: RequestId) -> Option<UnsubRequest> {
        self.seldom.as_deref_mut()?.unsub_requests.remove(&id)
    }

    fn remove_request_publish(&mut self, id: RequestId) -> Option<RequestKey> {
        self.seldom.as_deref_mut()?.request_publishes.remove(&id)
    }

    fn publish_request(&mut self, now: Instant, key: &RequestKey) {
        let Some(publish) = self
            .seldom()
            .requests
            .get_mut(key)
            .and_then(|request| request.publish.take())
        else {
            return;
        };
        match self.session.publish(now, publish) {
            Ok(Some(id)) => {
                self.seldom().request_publishes.insert(id, key.clone());
            }
            Ok(None) => {}
            Err(error) => self.fail_request(now, key, mapping::command_error(error)),
        }
    }

    fn fail_request(&mut self, now: Instant, key: &RequestKey, error: Error) {
        if let Some(request) = self.seldom().requests.remove(key) {
            let _ = request.reply.send(Err(error));
            self.release_reply_topic(now, &key.0);
        }
    }

    /// One request fewer uses `topic`; unsubscribes a caller-named topic
    /// nobody uses any more.
    fn release_reply_topic(&mut self, now: Instant, topic: &str) {
        let seldom = self.seldom();
        let Some(entry) = seldom.reply_topics.get_mut(topic) else {
            return;
        };
        entry.users = entry.users.saturating_sub(1);
        if entry.users > 0 || entry.permanent {
            return;
        }
        let subscribed = entry.state != ReplyState::Idle;
        seldom.reply_topics.remove(topic);
        if subscribed && !self.router.filter_in_use(topic, 0) {
            self.unsubscribe_internal(now, vec![topic.to_owned()]);
        }
    }

    /// The pending request an incoming message answers, if any.
    fn reply_key(&self, publish: &Publish) -> Option<RequestKey> {
        let correlation = publish.properties.correlation_data.as_ref()?;
        let requests = &self.seldom.as_deref()?.requests;
        if requests.is_empty() {
            return None;
        }
        let key = (publish.topic.clone(), correlation.clone());
        let request = requests.get(&key)?;
        request.publish.is_none().then_some(key)
    }

    fn deliver_reply(&mut self, now: Instant, key: RequestKey, item: Inbound) {
        if let Some(token) = item.token {
            self.session.acknowledge(now, token);
        }
        if let Some(request) = self.seldom().requests.remove(&key) {
            let message = Message::new(item.publish, self.v5(), None);
            let _ = request.reply.send(Ok(message));
            self.release_reply_topic(now, &key.0);
        }
    }
}

/// Refused filters of a SUBACK, with their codes.
fn failures(
    filters: &[String],
    codes: &[zmqtt_proto::ReasonCode],
) -> std::collections::BTreeMap<String, u8> {
    filters
        .iter()
        .zip(codes)
        .filter(|(_, code)| code.is_failure())
        .map(|(filter, code)| (filter.clone(), code.0))
        .collect()
}

fn not_connected() -> Error {
    Error::disconnected("not connected")
}

/// Writes some of `out`, or flushes once it is empty. `Ok(true)` when flushed.
/// A plain poll function: no nested future to keep in the task.
fn write_some<'a, W: AsyncWrite + Unpin>(
    writer: &'a mut W,
    out: &'a mut BytesMut,
) -> impl Future<Output = io::Result<bool>> + 'a {
    std::future::poll_fn(move |cx| {
        if out.is_empty() {
            ready!(Pin::new(&mut *writer).poll_flush(cx))?;
            return Poll::Ready(Ok(true));
        }
        match ready!(Pin::new(&mut *writer).poll_write(cx, out))? {
            0 => Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero))),
            written => {
                out.advance(written.min(out.len()));
                Poll::Ready(Ok(false))
            }
        }
    })
}

/// Reads what the transport has into `buf`: straight into its spare room when
/// it has enough, else through a stack buffer, so that a connection waiting
/// for data holds no read buffer. A read that fills the stack buffer (more is
/// likely waiting) grows `buf` to a whole chunk.
fn read_some<'a, R: AsyncRead + Unpin>(
    reader: &'a mut R,
    buf: &'a mut BytesMut,
) -> impl Future<Output = io::Result<usize>> + 'a {
    std::future::poll_fn(move |cx| {
        if buf.capacity() - buf.len() >= STACK_READ {
            return std::pin::pin!(reader.read_buf(&mut *buf)).poll(cx);
        }
        let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
        let mut landed = ReadBuf::uninit(&mut stack);
        ready!(Pin::new(&mut *reader).poll_read(cx, &mut landed))?;
        let data = landed.filled();
        if data.len() == STACK_READ {
            buf.reserve(READ_CHUNK);
        }
        buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    })
}

// The futures below are plain poll functions rather than `async fn`s: a
// `select!` keeps every branch's future in the task while it waits, and
// these hold nothing but their borrow.

/// The next notice on the control channel; never, while there is none.
fn recv_control(
    control_rx: &mut Option<mpsc::UnboundedReceiver<Control>>,
) -> impl Future<Output = Option<Control>> + '_ {
    std::future::poll_fn(move |cx| match control_rx {
        Some(control_rx) => control_rx.poll_recv(cx),
        None => Poll::Pending,
    })
}

/// Waits for room in the blocked subscription's queue (see `Driver::room`);
/// forever when nothing is blocked.
fn wait_room(room: &mut Option<RoomWait>) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| match room {
        Some(wait) => {
            ready!(wait.as_mut().poll(cx));
            *room = None;
            Poll::Ready(())
        }
        None => Poll::Pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::queue::command_queue;

    fn driver() -> Driver {
        let client = crate::create_client("localhost").build();
        let shared = client.shared();
        let (_commands, commands) = command_queue(4);
        let (first, _) = oneshot::channel();
        let parts = DriverParts {
            options: Arc::clone(&shared.options),
            config: Arc::clone(shared.config.as_ref().unwrap()),
            status: Arc::clone(&shared.status),
            commands,
            reply_id: shared.reply_id,
            generation: 1,
            connections_before: 0,
        };
        Driver::new(parts, first).unwrap()
    }

    /// Every connected client holds one driver task for its whole life, so
    /// its size is paid per connection (W7: idle clients): large or rarely
    /// used state stays out of it (boxed on use). A guard against growth, with
    /// some slack for compiler versions (about 1.8 KiB today).
    #[test]
    fn the_driver_task_stays_small() {
        let task = driver().run();
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "the driver future takes {size} bytes");
    }

    #[test]
    fn an_idle_driver_holds_no_seldom_state_once_connected() {
        let mut driver = driver();
        // The `connect()` caller waits until the first CONNACK.
        assert!(driver.seldom.is_some());
        let _ = driver
            .seldom
            .as_deref_mut()
            .and_then(|seldom| seldom.first.take());
        driver.release_idle_memory(now());
        assert!(driver.seldom.is_none());
        assert!(driver.read_buf.capacity() == 0 && driver.out.capacity() == 0);
    }

    #[tokio::test]
    async fn reading_holds_no_buffer_until_data_comes_and_grows_when_it_flows() {
        let (mut reader, mut broker) = tokio::io::duplex(4 * READ_CHUNK);
        let mut buf = BytesMut::new();
        // Waiting for data allocates nothing.
        let waiting =
            tokio::time::timeout(Duration::from_millis(20), read_some(&mut reader, &mut buf)).await;
        assert!(waiting.is_err());
        assert_eq!(buf.capacity(), 0);
        // A small read takes what it needs.
        broker.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
        assert_eq!(read_some(&mut reader, &mut buf).await.unwrap(), 4);
        assert_eq!(&buf[..], &[0x20, 0x02, 0x00, 0x00]);
        assert!(buf.capacity() < STACK_READ);
        // Data that fills the stack buffer: a whole chunk from then on.
        buf.clear();
        let burst = vec![7u8; 3 * STACK_READ];
        broker.write_all(&burst).await.unwrap();
        let mut total = 0;
        while total < burst.len() {
            total += read_some(&mut reader, &mut buf).await.unwrap();
        }
        assert_eq!(&buf[..], &burst[..]);
        assert!(buf.capacity() >= READ_CHUNK);
        // End of stream.
        drop(broker);
        assert_eq!(read_some(&mut reader, &mut buf).await.unwrap(), 0);
    }
}
