//! The one task that owns a client's connection (DESIGN.md, "One task owns a
//! connection").
//!
//! It holds the transport, the engine ([`ClientSession`]), the router, every
//! caller waiting for an answer and the write buffer. Handles reach it over
//! two channels: bounded commands (publish, subscribe, …) that are answered on
//! oneshots, and unbounded fire-and-forget notices (acks, detach, request
//! cancellation) that `Drop` impls can send.
//!
//! Each turn of the loop takes one input — bytes from the socket, commands
//! (all that are ready: write coalescing), notices, a timer, room in a full
//! subscription queue — then drains the engine's events, delivers messages and
//! appends what the engine has to send to one buffer, written as the socket
//! takes it. Reading stops while a message waits for room in its
//! subscription's queue (TCP backpressure); writing, commands and timers go on.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};
use tracing::{debug, info, trace, warn, Instrument};
use zmqtt_proto::session::{
    AckToken, ClientSession, CloseReason, Event, RequestError, RequestId, SessionConfig,
    SessionState,
};
use zmqtt_proto::{
    Auth, ConnAck, Disconnect, ProtocolVersion, Publish, QoS, RetainHandling, SubAck,
    SubscribeFilter, UnsubAck, UnsubscribeProperties,
};

use super::command::{
    queue, Command, Control, QueueRx, QueueTx, RequestKey, Room, SubKey, SubscribeSpec, Subscribed,
};
use super::mapping;
use super::transport::{self, Transport};
use crate::builder::ClientOptions;
use crate::client::{ConnectionState, Status};
use crate::error::{Error, Result};
use crate::message::{Message, PendingAck};
use crate::router::Router;
use crate::subscription::UnsubscribeResult;

/// Stop taking commands while this much is waiting to be written.
const OUT_HIGH_WATER: usize = 1 << 20;
/// Read at least this much at a time.
const READ_CHUNK: usize = 64 * 1024;
/// How long the last bytes (a DISCONNECT) may take to leave when closing.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

const CLIENT: &str = "zmqtt::client";
const PROTOCOL: &str = "zmqtt::protocol";

/// Everything a driver is made from.
pub(crate) struct DriverParts {
    pub options: Arc<ClientOptions>,
    pub config: SessionConfig,
    pub status: Arc<watch::Sender<Status>>,
    pub commands: mpsc::Receiver<Command>,
    pub control_rx: mpsc::UnboundedReceiver<Control>,
    pub control: mpsc::UnboundedSender<Control>,
    pub reply_topic: String,
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
    status: Arc<watch::Sender<Status>>,
    generation: u64,
    commands: mpsc::Receiver<Command>,
    /// False once every command sender is gone (all handles dropped).
    commands_open: bool,
    control_rx: mpsc::UnboundedReceiver<Control>,
    control: mpsc::UnboundedSender<Control>,
    first: Option<oneshot::Sender<Result<()>>>,

    read_buf: BytesMut,
    out: BytesMut,

    router: Router,
    subs: HashMap<SubKey, SubEntry>,
    next_key: SubKey,

    publishes: HashMap<RequestId, PublishWaiter>,
    sub_requests: HashMap<RequestId, SubRequest>,
    unsub_requests: HashMap<RequestId, UnsubRequest>,
    pings: HashMap<RequestId, oneshot::Sender<Result<()>>>,
    parked: VecDeque<Parked>,

    requests: HashMap<RequestKey, PendingRequest>,
    reply_topics: HashMap<String, ReplyTopic>,
    request_publishes: HashMap<RequestId, RequestKey>,
    default_reply_topic: String,

    inbound: VecDeque<Inbound>,
    /// The subscription whose full queue holds up delivery (and reading).
    blocked: Option<SubKey>,
    held: VecDeque<Held>,
    replay_until: Option<Instant>,

    /// Transport counter.
    epoch: u64,
    /// CONNACK accepted on the current transport.
    connected: bool,
    close_reason: Option<CloseReason>,
    refusal: Option<Error>,
    /// `disconnect()` was called or every handle is gone.
    stop_requested: bool,
    disconnect_reply: Option<oneshot::Sender<Result<()>>>,
    /// `reset()` callers, answered once the connection they dropped is closed.
    reset_replies: Vec<oneshot::Sender<Result<()>>>,
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
        let router = Router::new(&parts.options.stripped_prefixes);
        Ok(Driver {
            session,
            version,
            status: parts.status,
            generation: parts.generation,
            commands: parts.commands,
            commands_open: true,
            control_rx: parts.control_rx,
            control: parts.control,
            first: Some(first),
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            out: BytesMut::new(),
            router,
            subs: HashMap::new(),
            next_key: 0,
            publishes: HashMap::new(),
            sub_requests: HashMap::new(),
            unsub_requests: HashMap::new(),
            pings: HashMap::new(),
            parked: VecDeque::new(),
            requests: HashMap::new(),
            reply_topics: HashMap::new(),
            request_publishes: HashMap::new(),
            default_reply_topic: parts.reply_topic,
            inbound: VecDeque::new(),
            blocked: None,
            held: VecDeque::new(),
            replay_until: None,
            epoch: 0,
            connected: false,
            close_reason: None,
            refusal: None,
            stop_requested: false,
            disconnect_reply: None,
            reset_replies: Vec::new(),
            connections_before: parts.connections_before,
            connection_id: 0,
            options: parts.options,
        })
    }

    fn v5(&self) -> bool {
        self.version == ProtocolVersion::V5
    }

    /// Runs until the client stops.
    pub(crate) async fn run(mut self) {
        let span = tracing::info_span!(
            target: CLIENT,
            "zmqtt",
            host = %self.options.host,
            port = self.options.port,
            client_id = %self.options.client_id,
        );
        async move { self.run_attempts().await }
            .instrument(span)
            .await;
    }

    /// Connection attempts with back-off, then connections, until stopped.
    async fn run_attempts(&mut self) {
        let mut outage_attempts: u32 = 0;
        let mut ever_connected = false;
        let mut last_error: Option<Error> = None;
        loop {
            let very_first = !ever_connected && outage_attempts == 0;
            if !very_first && !self.options.reconnect.may_retry(outage_attempts) {
                let error = last_error.unwrap_or_else(|| Error::disconnected("connection lost"));
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
                if self.wait_offline(tokio::time::sleep(delay)).await.is_none() {
                    return;
                }
            }
            outage_attempts = outage_attempts.saturating_add(1);
            let options = Arc::clone(&self.options);
            let opening = async move {
                transport::open(
                    &options.host,
                    options.port,
                    &options.tls,
                    options.connect_timeout,
                )
                .await
            };
            let transport = match self.wait_offline(opening).await {
                None => return,
                Some(Ok(transport)) => transport,
                Some(Err(error)) => {
                    warn!(target: CLIENT, %error, "cannot open the connection");
                    if !error.is_retryable() {
                        self.finish(Some(error));
                        return;
                    }
                    last_error = Some(error);
                    continue;
                }
            };
            match self.run_connection(transport).await {
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
                    last_error = Some(error);
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
    async fn wait_offline<F: Future>(&mut self, future: F) -> Option<F::Output> {
        tokio::pin!(future);
        loop {
            let timer = self.held.front().map(|held| held.deadline);
            let room = self.room_waiter();
            tokio::select! {
                output = &mut future => return Some(output),
                command = self.commands.recv(), if self.commands_open => match command {
                    Some(command) => self.command_offline(command),
                    None => {
                        self.commands_open = false;
                        self.stop_requested = true;
                    }
                },
                Some(control) = self.control_rx.recv() => self.handle_control(control),
                () = sleep_until(timer), if timer.is_some() => self.expire_held(now()),
                () = room => {}
            }
            self.deliver(now());
            if self.stop_requested {
                self.finish(None);
                return None;
            }
        }
    }

    fn command_offline(&mut self, command: Command) {
        while let Ok(control) = self.control_rx.try_recv() {
            self.handle_control(control);
        }
        match command {
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
                    self.parked.push_back(Parked {
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
                self.disconnect_reply = Some(reply);
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

    async fn run_connection(&mut self, transport: Transport) -> ConnectionEnd {
        let (mut reader, mut writer) = tokio::io::split(transport);
        self.epoch += 1;
        self.connected = false;
        self.close_reason = None;
        self.refusal = None;
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
            // Reading stops while a subscription queue is full (TCP
            // backpressure) and while our own writes are backed up: acks
            // generated by what we read must not grow `out` without bound.
            let reading = self.blocked.is_none() && self.out.len() < OUT_HIGH_WATER;
            let take_commands = self.commands_open && self.out.len() < OUT_HIGH_WATER;
            if reading && self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
                self.read_buf.reserve(READ_CHUNK);
            }
            let room = self.room_waiter();
            tokio::select! {
                biased;
                written = write_some(&mut writer, &mut self.out), if !self.out.is_empty() || needs_flush => match written {
                    Ok(flushed) => needs_flush = !flushed,
                    Err(error) => {
                        io_error = Some(error);
                        self.session.handle_transport_closed(now());
                    }
                },
                Some(control) = self.control_rx.recv() => {
                    self.handle_control(control);
                    while let Ok(control) = self.control_rx.try_recv() {
                        self.handle_control(control);
                    }
                },
                read = reader.read_buf(&mut self.read_buf), if reading => match read {
                    Ok(0) => {
                        debug!(target: PROTOCOL, "the broker closed the connection");
                        self.session.handle_transport_closed(now());
                    }
                    Ok(count) => {
                        trace!(target: PROTOCOL, bytes = count, "read");
                        self.session.handle_received(now(), &mut self.read_buf);
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
                                Ok(command) => self.handle_command(now, command),
                                Err(_) => break,
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
                () = sleep_until(deadline), if deadline.is_some() => self.on_timer(now()),
                () = room => {}
            }
            self.after_input(now());
        }
        // Closed: let the last bytes (a DISCONNECT) go, then close the socket.
        if io_error.is_none() {
            let last = self.out.split();
            let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, async {
                writer.write_all(&last).await?;
                writer.shutdown().await
            })
            .await;
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
        self.replay_until = None;
        // Tokens of this transport are dead: the broker sends those messages
        // again on a resumed session. QoS 0 messages stay to be delivered.
        let epoch = self.epoch;
        self.inbound
            .retain(|item| item.token.is_none() || item.epoch != epoch);
        self.held
            .retain(|held| held.inbound.token.is_none() || held.inbound.epoch != epoch);
        self.deliver(now());
        for topic in self.reply_topics.values_mut() {
            topic.state = ReplyState::Idle;
        }
        if self.stop_requested {
            self.finish(None);
            return ConnectionEnd::Stopped;
        }
        let negotiated_keep_alive = self.session.negotiated().map(|n| n.keep_alive);
        let ping_timeout = negotiated_keep_alive
            .and_then(|keep_alive| self.session.config().ping_timeout.resolve(keep_alive));
        let error = match (self.refusal.take(), self.close_reason.take(), io_error) {
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
        let reset = !self.reset_replies.is_empty();
        for reply in self.reset_replies.drain(..) {
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
        while let Ok(command) = self.commands.try_recv() {
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
        for parked in self.parked.drain(..) {
            let _ = parked.waiter.reply.send(Err(stopped()));
        }
        for (_, ping) in self.pings.drain() {
            let _ = ping.send(Err(stopped()));
        }
        for (_, request) in self.unsub_requests.drain() {
            if let Some(reply) = request.reply {
                let _ = reply.send(Err(stopped()));
            }
        }
        self.sub_requests.clear();
        for (_, request) in self.requests.drain() {
            let _ = request.reply.send(Err(stopped()));
        }
        self.reply_topics.clear();
        self.request_publishes.clear();
        for (_, entry) in self.subs.drain() {
            if let Some(initial) = entry.initial {
                let _ = initial.send(Err(stopped()));
            }
        }
        self.inbound.clear();
        self.held.clear();
        self.blocked = None;
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(match &error {
                Some(error) => error.duplicate(),
                None => stopped(),
            }));
        }
        match &error {
            None => info!(target: CLIENT, "disconnected"),
            Some(error) => warn!(target: CLIENT, %error, "stopped"),
        }
        if let Some(reply) = self.disconnect_reply.take() {
            let _ = reply.send(Ok(()));
        }
    }

    // ------------------------------------------------------------------
    // Inputs
    // ------------------------------------------------------------------

    fn handle_command(&mut self, now: Instant, command: Command) {
        // Notices sent before this command (a dropped subscription or request)
        // take effect first, whichever channel the driver happened to poll.
        while let Ok(control) = self.control_rx.try_recv() {
            self.handle_control(control);
        }
        if let Command::Disconnect { disconnect, reply } = command {
            match self.session.disconnect(now, *disconnect) {
                Ok(()) => {
                    info!(target: CLIENT, "disconnecting");
                    self.stop_requested = true;
                    self.disconnect_reply = Some(reply);
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
            Command::PublishQos0 {
                topic,
                payload,
                retain,
            } => {
                // Checked by `try_send()`; a refusal here has nobody to tell.
                if let Err(error) = self.session.publish_qos0(now, &topic, &payload, retain) {
                    debug!(target: CLIENT, %error, "QoS 0 publish refused");
                }
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
                    self.pings.insert(id, reply);
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
                self.reset_replies.push(reply);
                self.session.handle_transport_closed(now);
            }
            Command::Disconnect { .. } => {}
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
            Control::Detach(key) => {
                if self.remove_sub(key) {
                    debug!(target: CLIENT, key, "subscription detached");
                }
            }
            Control::CancelRequest(key) => {
                // Only a request whose caller is gone: the guard of a refused
                // duplicate names the same key as the live request it hit.
                let abandoned = self
                    .requests
                    .get(&key)
                    .is_some_and(|request| request.reply.is_closed());
                if abandoned && self.requests.remove(&key).is_some() {
                    self.release_reply_topic(now, &key.0);
                }
            }
        }
    }

    fn on_timer(&mut self, now: Instant) {
        self.session.handle_timeout(now);
        self.expire_held(now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let held = self.held.front().map(|held| held.deadline);
        match (self.session.poll_timeout(), held) {
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
                self.refusal = Some(error);
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
                } else if let Some(key) = self.request_publishes.remove(&id) {
                    if let Err(error) = result {
                        self.fail_request(now, &key, error);
                    }
                }
            }
            Event::SubscribeCompleted { id, suback } => self.on_suback(now, id, suback),
            Event::UnsubscribeCompleted { id, unsuback } => self.on_unsuback(id, unsuback),
            Event::Pong { id } => {
                if let Some(reply) = self.pings.remove(&id) {
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
                self.close_reason = Some(reason);
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
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        let session_present = negotiated.session_present;
        self.replay_until = session_present
            .then(|| now.checked_add(self.options.session_replay_timeout))
            .flatten();
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
        let topics: Vec<String> = self.reply_topics.keys().cloned().collect();
        for topic in topics {
            self.subscribe_reply_topic(now, &topic);
        }
        for parked in std::mem::take(&mut self.parked) {
            self.publish(now, parked.publish, parked.waiter);
        }
    }

    /// The error of a call that ended without an answer: the broker's
    /// DISCONNECT when that closed the connection.
    fn request_error(&self, error: RequestError) -> Error {
        match (&error, &self.close_reason) {
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
        } else if let Some(key) = self.request_publishes.remove(&id) {
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
                    if let Some(entry) = self.reply_topics.get_mut(&topic) {
                        entry.state = ReplyState::Idle;
                    }
                }
            }
        } else if let Some(request) = self.unsub_requests.remove(&id) {
            if let Some(reply) = request.reply {
                let _ = reply.send(Err(request_error(self)));
            }
        } else if let Some(reply) = self.pings.remove(&id) {
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
        match self
            .router
            .insert(key, &filters, spec.properties.subscription_identifier)
        {
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
                    let keys: Vec<RequestKey> = self
                        .requests
                        .keys()
                        .filter(|key| key.0 == topic)
                        .cloned()
                        .collect();
                    self.reply_topics.remove(&topic);
                    for key in keys {
                        if let Some(request) = self.requests.remove(&key) {
                            let _ = request.reply.send(Err(error.duplicate()));
                        }
                    }
                    return;
                }
                if let Some(entry) = self.reply_topics.get_mut(&topic) {
                    entry.state = ReplyState::Active;
                }
                let keys: Vec<RequestKey> = self
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
                self.unsub_requests.insert(
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
        let Some(request) = self.unsub_requests.remove(&id) else {
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
        // A delivery blocked on it is routed again by the next `deliver`.
        self.subs.remove(&key).is_some()
    }

    /// The filters of `filters` that no other live subscription (nor a
    /// pending request's response topic) holds, so they can be unsubscribed.
    fn unused_filters(&self, filters: Vec<String>, except: SubKey) -> Vec<String> {
        filters
            .into_iter()
            .filter(|filter| {
                !self.router.filter_in_use(filter, except)
                    && !self.reply_topics.contains_key(filter)
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
                self.unsub_requests.insert(
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

    /// A future that completes when the blocked subscription has room (or is
    /// gone); pending forever when nothing is blocked.
    fn room_waiter(&self) -> impl Future<Output = ()> + 'static {
        let sender = match self.blocked.and_then(|key| self.subs.get(&key)) {
            Some(SubEntry {
                tx: QueueTx::Bounded(tx),
                ..
            }) => Some(tx.clone()),
            _ => None,
        };
        async move {
            match sender {
                // The permit is returned at once: this driver is the only
                // sender, so the room stays until it pushes.
                Some(tx) => drop(tx.reserve().await),
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn set_blocked(&mut self, now: Instant, blocked: Option<SubKey>) {
        if self.blocked.is_some() != blocked.is_some() {
            self.session.set_receive_paused(now, blocked.is_some());
            trace!(target: CLIENT, paused = blocked.is_some(), "socket reading");
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
                    self.control.clone(),
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
        let in_window = self.replay_until.is_some_and(|until| now < until);
        if in_window {
            let limit = self.options.session_replay_buffer_size;
            if limit == 0 || self.held.len() < limit {
                trace!(target: CLIENT, topic = %item.publish.topic, "held for a later subscription");
                let deadline = now
                    .checked_add(self.options.session_replay_timeout)
                    .unwrap_or(now);
                self.held.push_back(Held {
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
        if self.held.is_empty() {
            return;
        }
        let mut claimed = Vec::new();
        let mut kept = VecDeque::new();
        for held in self.held.drain(..) {
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
        self.held = kept;
        for item in claimed.into_iter().rev() {
            self.inbound.push_front(item);
        }
        self.deliver(now);
    }

    /// Drops held messages whose time is up, unacknowledged.
    fn expire_held(&mut self, now: Instant) {
        while self.held.front().is_some_and(|held| held.deadline <= now) {
            let Some(held) = self.held.pop_front() else {
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
        if self.requests.contains_key(&key) {
            let _ = reply.send(Err(Error::invalid(
                "a request with this response topic and correlation data is already pending",
            )));
            return;
        }
        let topic = key.0.clone();
        self.requests.insert(
            key.clone(),
            PendingRequest {
                reply,
                publish: Some(publish),
            },
        );
        let permanent = topic == self.default_reply_topic;
        let entry = self
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
                if let Some(entry) = self.reply_topics.get_mut(topic) {
                    entry.state = ReplyState::Subscribing;
                }
            }
            Err(error) => {
                let error = mapping::command_error(error);
                let keys: Vec<RequestKey> = self
                    .requests
                    .keys()
                    .filter(|key| key.0 == topic)
                    .cloned()
                    .collect();
                self.reply_topics.remove(topic);
                for key in keys {
                    if let Some(request) = self.requests.remove(&key) {
                        let _ = request.reply.send(Err(error.duplicate()));
                    }
                }
            }
        }
    }

    fn publish_request(&mut self, now: Instant, key: &RequestKey) {
        let Some(publish) = self
            .requests
            .get_mut(key)
            .and_then(|request| request.publish.take())
        else {
            return;
        };
        match self.session.publish(now, publish) {
            Ok(Some(id)) => {
                self.request_publishes.insert(id, key.clone());
            }
            Ok(None) => {}
            Err(error) => self.fail_request(now, key, mapping::command_error(error)),
        }
    }

    fn fail_request(&mut self, now: Instant, key: &RequestKey, error: Error) {
        if let Some(request) = self.requests.remove(key) {
            let _ = request.reply.send(Err(error));
            self.release_reply_topic(now, &key.0);
        }
    }

    /// One request fewer uses `topic`; unsubscribes a caller-named topic
    /// nobody uses any more.
    fn release_reply_topic(&mut self, now: Instant, topic: &str) {
        let Some(entry) = self.reply_topics.get_mut(topic) else {
            return;
        };
        entry.users = entry.users.saturating_sub(1);
        if entry.users > 0 || entry.permanent {
            return;
        }
        let subscribed = entry.state != ReplyState::Idle;
        self.reply_topics.remove(topic);
        if subscribed && !self.router.filter_in_use(topic, 0) {
            self.unsubscribe_internal(now, vec![topic.to_owned()]);
        }
    }

    /// The pending request an incoming message answers, if any.
    fn reply_key(&self, publish: &Publish) -> Option<RequestKey> {
        let correlation = publish.properties.correlation_data.as_ref()?;
        if self.requests.is_empty() {
            return None;
        }
        let key = (publish.topic.clone(), correlation.clone());
        let request = self.requests.get(&key)?;
        request.publish.is_none().then_some(key)
    }

    fn deliver_reply(&mut self, now: Instant, key: RequestKey, item: Inbound) {
        if let Some(token) = item.token {
            self.session.acknowledge(now, token);
        }
        if let Some(request) = self.requests.remove(&key) {
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
async fn write_some<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut BytesMut,
) -> io::Result<bool> {
    if out.is_empty() {
        writer.flush().await?;
        return Ok(true);
    }
    match writer.write_buf(out).await? {
        0 => Err(io::Error::from(io::ErrorKind::WriteZero)),
        _ => Ok(false),
    }
}

/// Sleeps until `deadline`; forever for `None` (the branch is then disabled).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
        None => std::future::pending::<()>().await,
    }
}
