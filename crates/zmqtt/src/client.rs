//! [`Client`]: the handle every operation goes through.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Semaphore};
use zmqtt_proto::session::SessionConfig;
use zmqtt_proto::{
    Auth, AuthProperties, ConnAckProperties, Disconnect, DisconnectProperties, Packet,
    ProtocolVersion, Publish, PublishProperties, QoS, ReasonCode, RetainHandling, SubscribeFilter,
    SubscribeProperties, SubscriptionOptions,
};

use crate::builder::ClientOptions;
use crate::connection::command::{Command, Control, SubscribeSpec};
use crate::connection::driver::{self, DriverParts};
use crate::connection::queue::{command_queue, CommandTx};
use crate::error::{Error, Result};
use crate::request::RequestBuilder;
use crate::status::StatusCell;
use crate::subscription::Subscription;
use crate::topic::Topic;
use crate::version::{Protocol, V5};

/// QoS 1/2 publishes accepted and not yet completed, per client. More wait for
/// a slot (backpressure on the caller), so memory stays bounded even when the
/// broker is slow or the connection is down.
const MAX_PENDING_PUBLISHES: usize = 4096;

/// Commands waiting for the driver task.
const COMMAND_CHANNEL_CAPACITY: usize = 1024;

/// The default of [`Client::ping`]'s timeout in SPEC 1.3.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the client stands with the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Not running: never connected, `disconnect()` was called, or the
    /// connection was lost for good.
    Disconnected,
    /// The first connection attempt(s) of [`Client::connect`].
    Connecting,
    /// CONNACK accepted; operations go to the broker.
    Connected,
    /// The connection was lost; attempting to restore it.
    Reconnecting,
}

/// What the broker said when it accepted the connection (SPEC 1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// 1 for the first successful connection of this client, then 2, 3, …
    pub connection_id: u64,
    /// The broker resumed an existing session.
    pub session_present: bool,
    /// The CONNACK return / reason code (0 = accepted).
    pub return_code: ReasonCode,
    /// 5.0 CONNACK properties; `None` on 3.1.1. Boxed: a 3.1.1 client (and
    /// every idle connection) does not carry their room.
    pub properties: Option<Box<ConnAckProperties>>,
    /// Our client id, or the one the broker assigned.
    pub effective_client_id: String,
    /// The keep alive in force (the broker's Server Keep Alive wins).
    pub effective_keepalive: u16,
    /// 5.0: the session expiry in force; `None` on 3.1.1.
    pub effective_session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 publishes may await acknowledgement at once (the
    /// broker's Receive Maximum; 65535 when it sets none).
    pub receive_maximum: u16,
    /// The highest QoS the broker accepts.
    pub maximum_qos: QoS,
    /// Whether the broker accepts retained messages.
    pub retain_available: bool,
    /// The largest packet the broker accepts, `None` for no limit.
    pub maximum_packet_size: Option<u32>,
}

/// Shared status, published by the driver, read by every handle.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub state: ConnectionState,
    pub info: Option<ConnectionInfo>,
    /// Why the last driver stopped (`None` after `disconnect()`).
    pub stop_error: Option<Arc<Error>>,
    /// Which driver this describes: each `connect()` that starts one bumps
    /// it, so a stopping driver cannot overwrite its successor's status.
    pub generation: u64,
}

/// The channels to the running driver task, for callers that also send
/// control notices (see `Client::link`).
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub commands: CommandTx,
    pub control: mpsc::UnboundedSender<Control>,
}

impl Link {
    /// Hands a command to the driver and waits for its answer.
    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        self.commands.call(make).await
    }
}

pub(crate) fn not_connected() -> Error {
    Error::disconnected("not connected")
}

pub(crate) struct Shared {
    pub options: Arc<ClientOptions>,
    /// The engine's configuration, made once by `build()` and shared with the
    /// session of every `connect()`; or why the options can never make one
    /// (reported by `connect()`; boxed: rare).
    pub config: std::result::Result<Arc<SessionConfig>, Box<Error>>,
    pub protocol: ProtocolVersion,
    pub status: Arc<StatusCell<Status>>,
    /// The command queue of the running (or last) driver.
    pub commands: Mutex<Option<CommandTx>>,
    /// Made by the first QoS 1/2 publish: clients that never send one do not
    /// pay for it.
    pub publish_slots: OnceLock<Arc<Semaphore>>,
    /// Made by the first `request()` (see `request::request_slots`).
    pub request_slots: OnceLock<Arc<Semaphore>>,
    /// The response topic of `request()` calls that name none.
    pub reply_topic: String,
    /// The random part of `reply_topic`: the driver recognises the topic by
    /// it, without a copy of its own.
    pub reply_id: ReplyId,
}

impl Shared {
    /// Queues a command without waiting (and without cloning the queue):
    /// `Ok(false)` when the queue is full.
    fn try_send(&self, command: Command) -> Result<bool> {
        let guard = self
            .commands
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(commands) = guard.as_ref() else {
            return Err(not_connected());
        };
        match commands.try_send(command) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => Ok(false),
            Err(TrySendError::Closed(_)) => Err(not_connected()),
        }
    }

    /// The command queue of the running driver.
    fn commands(&self) -> Option<CommandTx> {
        let guard = self
            .commands
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .as_ref()
            .filter(|commands| !commands.is_closed())
            .cloned()
    }
}

/// A connection to one broker: a cheap `Clone + Send + Sync` handle over one
/// shared engine (SPEC 2). Made by [`create_client`](crate::create_client).
///
/// One tokio task owns the socket; every handle (clones of the client,
/// [`Subscription`]s, [`Message`](crate::Message)s) talks to it over channels, so dropping a
/// future only abandons the wait: nothing is half-sent.
///
/// `V` is [`V311`](crate::V311) or [`V5`]; the 5.0 operations exist only on
/// `Client<V5>`.
pub struct Client<V> {
    shared: Arc<Shared>,
    version: PhantomData<fn() -> V>,
}

impl<V> Clone for Client<V> {
    fn clone(&self) -> Self {
        Client {
            shared: Arc::clone(&self.shared),
            version: PhantomData,
        }
    }
}

impl<V: Protocol> fmt::Debug for Client<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("version", &V::VERSION)
            .field("host", &self.shared.options.host)
            .field("port", &self.shared.options.port)
            .field("state", &self.state())
            .finish()
    }
}

impl<V: Protocol> Client<V> {
    pub(crate) fn new(options: ClientOptions, config: Result<SessionConfig>) -> Client<V> {
        let status = Status {
            state: ConnectionState::Disconnected,
            info: None,
            stop_error: None,
            generation: 0,
        };
        let reply_id = random_bytes();
        let reply_topic = reply_topic(&reply_id);
        Client {
            shared: Arc::new(Shared {
                options: Arc::new(options),
                config: config.map(Arc::new).map_err(Box::new),
                protocol: V::VERSION,
                status: Arc::new(StatusCell::new(status)),
                commands: Mutex::new(None),
                publish_slots: OnceLock::new(),
                request_slots: OnceLock::new(),
                reply_topic,
                reply_id,
            }),
            version: PhantomData,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The command queue and the control channel of the running driver;
    /// the control channel is made by the first call (most clients never
    /// need one).
    pub(crate) fn link(&self) -> Result<Link> {
        let commands = self.commands()?;
        let control = commands.control().ok_or_else(not_connected)?;
        Ok(Link { commands, control })
    }

    /// The command queue of the running driver.
    pub(crate) fn commands(&self) -> Result<CommandTx> {
        self.shared.commands().ok_or_else(not_connected)
    }

    /// Connects: opens the socket (TLS included), sends CONNECT and returns
    /// once the broker accepted it (SPEC 1.3).
    ///
    /// Network errors and CONNACK timeouts are retried as the
    /// [`ReconnectConfig`](crate::ReconnectConfig) says; a refusal
    /// ([`Error::Connect`]) is returned at once. Invalid options fail here,
    /// before any I/O. Calling it while connected does nothing; while a
    /// connection is being made, it waits for that one. Must run inside a
    /// tokio runtime. Dropping the future does not stop the attempts: use
    /// [`disconnect`](Self::disconnect).
    pub async fn connect(&self) -> Result<()> {
        let config = match &self.shared.config {
            Ok(config) => config,
            Err(error) => return Err(error.duplicate()),
        };
        let first = {
            let mut running = self
                .shared
                .commands
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match running.as_ref().filter(|commands| !commands.is_closed()) {
                Some(_) => None,
                None => {
                    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                        Error::invalid("connect() must be called within a tokio runtime")
                    })?;
                    let (commands, command_rx) = command_queue(COMMAND_CHANNEL_CAPACITY);
                    let (first_tx, first_rx) = oneshot::channel();
                    let mut generation = 0;
                    let mut connections_before = 0;
                    self.shared.status.send_modify(|status| {
                        connections_before =
                            status.info.as_ref().map_or(0, |info| info.connection_id);
                        status.generation += 1;
                        generation = status.generation;
                        status.state = ConnectionState::Connecting;
                        status.stop_error = None;
                    });
                    let parts = DriverParts {
                        options: Arc::clone(&self.shared.options),
                        config: Arc::clone(config),
                        status: Arc::clone(&self.shared.status),
                        commands: command_rx,
                        reply_id: self.shared.reply_id,
                        generation,
                        connections_before,
                    };
                    let driver = match driver::Driver::new(parts, first_tx) {
                        Ok(driver) => driver,
                        Err(error) => {
                            self.shared.status.send_modify(|status| {
                                status.state = ConnectionState::Disconnected;
                            });
                            return Err(error);
                        }
                    };
                    runtime.spawn(driver.run());
                    *running = Some(commands);
                    Some(first_rx)
                }
            }
        };
        match first {
            Some(first) => first
                .await
                .unwrap_or_else(|_| Err(Error::disconnected("the connection task ended"))),
            None => self.wait_connected().await,
        }
    }

    /// Waits until the running driver is connected, or has stopped.
    async fn wait_connected(&self) -> Result<()> {
        let result = self
            .shared
            .status
            .wait_for(|status| {
                matches!(
                    status.state,
                    ConnectionState::Connected | ConnectionState::Disconnected
                )
                .then(|| (status.state, status.stop_error.clone()))
            })
            .await;
        match result {
            (ConnectionState::Connected, _) => Ok(()),
            (_, Some(error)) => Err(error.duplicate()),
            _ => Err(not_connected()),
        }
    }

    /// Sends DISCONNECT and closes the socket. Pending calls fail with
    /// [`Error::Disconnected`], subscriptions end. Safe when the connection
    /// is already lost, and twice.
    pub async fn disconnect(&self) -> Result<()> {
        self.disconnect_packet(Disconnect::default()).await
    }

    async fn disconnect_packet(&self, disconnect: Disconnect) -> Result<()> {
        let Some(commands) = self.shared.commands() else {
            return Ok(());
        };
        match commands
            .call(|reply| Command::Disconnect {
                disconnect: Box::new(disconnect),
                reply,
            })
            .await
        {
            Err(Error::Disconnected { .. }) => Ok(()),
            other => other,
        }
    }

    /// Drops the current connection as if it had been lost (no DISCONNECT is
    /// sent, so the broker publishes the Will): the client reconnects as its
    /// [`ReconnectConfig`](crate::ReconnectConfig) says and subscribes every
    /// live [`Subscription`] again. For a connection that still answers pings
    /// but no longer delivers. Returns once the old connection is closed;
    /// does nothing when not connected.
    pub async fn reset(&self) -> Result<()> {
        let Some(commands) = self.shared.commands() else {
            return Ok(());
        };
        match commands.call(|reply| Command::Reset { reply }).await {
            Err(Error::Disconnected { .. }) => Ok(()),
            other => other,
        }
    }

    /// What the broker said in the CONNACK of the current (or last)
    /// connection; `None` before the first.
    pub fn connection_info(&self) -> Option<ConnectionInfo> {
        self.shared.status.borrow().info.clone()
    }

    /// Where the client stands.
    pub fn state(&self) -> ConnectionState {
        self.shared.status.borrow().state
    }

    /// Waits until the client stops running and returns why: `None` after
    /// [`disconnect`](Self::disconnect), the error otherwise (for example the
    /// last one when reconnecting gave up). Returns at once when the client
    /// is not running.
    pub async fn stopped(&self) -> Option<Error> {
        let stopped = self
            .shared
            .status
            .wait_for(|status| {
                (status.state == ConnectionState::Disconnected).then(|| status.stop_error.clone())
            })
            .await;
        stopped.map(|error| error.duplicate())
    }

    /// Sends PINGREQ and returns the round-trip time once PINGRESP arrives
    /// (SPEC 1.3); [`Error::Timeout`] after `timeout` (SPEC default:
    /// [`DEFAULT_PING_TIMEOUT`]). Concurrent pings are fine.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration> {
        let commands = self.commands()?;
        let started = tokio::time::Instant::now();
        match tokio::time::timeout(timeout, commands.call(|reply| Command::Ping { reply })).await {
            Ok(result) => result.map(|()| started.elapsed()),
            Err(_) => Err(Error::Timeout {
                what: "PINGRESP",
                after: timeout,
            }),
        }
    }

    /// Publishes `payload` to `topic` (SPEC 1.4). Set `.qos()`, `.retain()`
    /// (and on 5.0 `.properties()`), then `.await`:
    ///
    /// - QoS 0 completes once the packet is queued for the socket;
    /// - QoS 1 on PUBACK, QoS 2 on PUBCOMP. A QoS 1/2 publish made while the
    ///   client reconnects waits for the connection; one in flight when the
    ///   connection dropped is sent again if the broker resumes the session.
    ///
    /// Refused before any I/O: an invalid topic ([`Error::InvalidTopic`]),
    /// QoS above the broker's maximum ([`Error::QoSExceeded`]), retain when the
    /// broker has none ([`Error::RetainNotAvailable`]), a packet larger than the
    /// broker accepts ([`Error::PacketTooLarge`]).
    ///
    /// ```no_run
    /// # async fn demo(client: zmqtt::Client<zmqtt::V311>) -> zmqtt::Result<()> {
    /// use zmqtt::QoS;
    /// client.publish("sensors/1", "21.5").qos(QoS::AtLeastOnce).retain(true).await?;
    /// # Ok(()) }
    /// ```
    pub fn publish(
        &self,
        topic: impl Into<Topic>,
        payload: impl Into<Bytes>,
    ) -> PublishBuilder<'_, V> {
        PublishBuilder {
            client: self,
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            v5_properties: None,
        }
    }

    /// Subscribes to one or more topic filters (SPEC 1.7). Set the options,
    /// then `.await` for a [`Subscription`] once the broker granted them.
    ///
    /// ```no_run
    /// # async fn demo(client: zmqtt::Client<zmqtt::V311>) -> zmqtt::Result<()> {
    /// use zmqtt::QoS;
    /// let mut sub = client.subscribe(["sensors/+/temp", "alerts/#"]).qos(QoS::AtLeastOnce).await?;
    /// while let Some(message) = sub.recv().await {
    ///     println!("{}: {} bytes", message.topic, message.payload.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe<S: Into<String>>(
        &self,
        filters: impl IntoIterator<Item = S>,
    ) -> SubscribeBuilder<'_, V> {
        SubscribeBuilder {
            client: self,
            filters: filters.into_iter().map(Into::into).collect(),
            options: SubscriptionOptions::default(),
            properties: SubscribeProperties::default(),
            auto_ack: true,
            receive_buffer_size: 1000,
        }
    }
}

impl Client<V5> {
    /// Sends one AUTH packet (reason 0x18, Continue authentication) with this
    /// method and data (SPEC 1.9). The client must have been built with
    /// [`ClientBuilder::authentication`](crate::ClientBuilder::authentication).
    pub async fn auth(&self, method: impl Into<String>, data: Option<Bytes>) -> Result<()> {
        let auth = Auth {
            reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: AuthProperties {
                authentication_method: Some(method.into()),
                authentication_data: data,
                ..AuthProperties::default()
            },
        };
        self.commands()?
            .call(|reply| Command::Auth {
                auth: Box::new(auth),
                reply,
            })
            .await
    }

    /// Sends a request and waits for its reply (SPEC 1.9): subscribes to the
    /// response topic, publishes with Response Topic and Correlation Data, and
    /// returns the first message on that topic carrying that correlation data.
    ///
    /// ```no_run
    /// # async fn demo(client: zmqtt::Client<zmqtt::V5>) -> zmqtt::Result<()> {
    /// use std::time::Duration;
    /// let reply = client.request("services/time", "now").timeout(Duration::from_secs(5)).await?;
    /// println!("{:?}", reply.payload_str());
    /// # Ok(()) }
    /// ```
    pub fn request(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> RequestBuilder<'_> {
        RequestBuilder::new(self, topic.into(), payload.into())
    }

    /// Like [`disconnect`](Client::disconnect), with a 5.0 reason code (e.g.
    /// 0x04 to have the broker publish the Will) and properties.
    pub async fn disconnect_with(
        &self,
        reason_code: ReasonCode,
        properties: DisconnectProperties,
    ) -> Result<()> {
        self.disconnect_packet(Disconnect {
            reason_code,
            properties,
        })
        .await
    }
}

/// A publish being prepared; made by [`Client::publish`]. `.await` it.
#[must_use = "a publish does nothing until awaited"]
pub struct PublishBuilder<'a, V> {
    client: &'a Client<V>,
    topic: Topic,
    payload: Bytes,
    qos: QoS,
    retain: bool,
    /// 5.0 properties, boxed and only when set: the builder stays small.
    /// (Not named `properties`, so that calling `.properties()` on a 3.1.1
    /// builder reports the method as 5.0-only, not as a private field.)
    v5_properties: Option<Box<PublishProperties>>,
}

impl<V: Protocol> fmt::Debug for PublishBuilder<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishBuilder")
            .field("topic", &self.topic)
            .field("payload_len", &self.payload.len())
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .finish()
    }
}

impl<V: Protocol> PublishBuilder<'_, V> {
    /// Quality of service (default [`QoS::AtMostOnce`]).
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// Asks the broker to retain the message (default false).
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }
}

impl<V: Protocol> PublishBuilder<'_, V> {
    /// Queues a QoS 0 publish for the socket without waiting: the fast path
    /// for fire-and-forget messages (no task, no answer to wait for).
    ///
    /// Checks what `.await` checks first (the topic, the broker's Retain
    /// Available and Maximum Packet Size). `Ok(true)`: queued. `Ok(false)`:
    /// the client's command queue is full; `.await` a publish instead, which
    /// waits for room. Fails with [`Error::Disconnected`] unless connected
    /// (also while reconnecting) and with [`Error::InvalidArgument`] for QoS
    /// 1/2, whose outcome must be awaited.
    ///
    /// ```no_run
    /// # fn demo(client: &zmqtt::Client<zmqtt::V311>) -> zmqtt::Result<()> {
    /// if !client.publish("metrics/cpu", "0.7").try_send()? {
    ///     // Queue full: fall back to `client.publish(...).await`.
    /// }
    /// # Ok(()) }
    /// ```
    pub fn try_send(self) -> Result<bool> {
        let PublishBuilder {
            client,
            topic,
            payload,
            qos,
            retain,
            v5_properties,
        } = self;
        if qos != QoS::AtMostOnce {
            return Err(Error::invalid(
                "try_send() queues QoS 0 publishes only; await a QoS 1 or 2 publish",
            ));
        }
        let shared = client.shared();
        let command = match v5_properties {
            // The common case: a small command the driver encodes from its parts.
            None => {
                check_qos0(shared, topic.as_str(), payload.len(), retain)?;
                Command::PublishQos0 {
                    topic,
                    payload,
                    retain,
                }
            }
            Some(properties) => {
                let publish = Publish {
                    topic: topic.into_string(),
                    payload,
                    retain,
                    properties: *properties,
                    ..Publish::default()
                };
                let publish = check_publish(shared, publish)?;
                if shared.status.borrow().state != ConnectionState::Connected {
                    return Err(not_connected());
                }
                // Nobody waits for the answer of a QoS 0 publish checked above.
                let (reply, _) = oneshot::channel();
                Command::Publish {
                    publish: Box::new(publish),
                    reply,
                    slot: None,
                }
            }
        };
        shared.try_send(command)
    }

    /// The publish as the engine takes it.
    fn into_publish(self) -> Publish {
        Publish {
            topic: self.topic.into_string(),
            payload: self.payload,
            qos: self.qos,
            retain: self.retain,
            properties: self.v5_properties.map(|boxed| *boxed).unwrap_or_default(),
            ..Publish::default()
        }
    }
}

impl PublishBuilder<'_, V5> {
    /// 5.0 PUBLISH properties (expiry, content type, response topic, …).
    pub fn properties(mut self, properties: PublishProperties) -> Self {
        self.v5_properties = Some(Box::new(properties));
        self
    }
}

impl<'a, V: Protocol> IntoFuture for PublishBuilder<'a, V> {
    type Output = Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        let shared = self.client.shared();
        Box::pin(publish(shared, self.into_publish()))
    }
}

/// Checks a publish locally, then hands it to the driver and waits for its end.
pub(crate) async fn publish(shared: &Shared, publish: Publish) -> Result<()> {
    let publish = check_publish(shared, publish)?;
    let commands = shared.commands().ok_or_else(not_connected)?;
    let slot = match publish.qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(
            Arc::clone(
                shared
                    .publish_slots
                    .get_or_init(|| Arc::new(Semaphore::new(MAX_PENDING_PUBLISHES))),
            )
            .acquire_owned()
            .await
            .map_err(|_| not_connected())?,
        ),
    };
    commands
        .call(|reply| Command::Publish {
            publish: Box::new(publish),
            reply,
            slot,
        })
        .await
}

/// What [`check_publish`] checks, for a QoS 0 publish without properties
/// given by its parts, and then that the client is connected (`try_send()`).
fn check_qos0(shared: &Shared, topic: &str, payload_len: usize, retain: bool) -> Result<()> {
    zmqtt_proto::topic::validate_topic_name(topic)?;
    let status = shared.status.borrow();
    if status.state != ConnectionState::Connected {
        return Err(not_connected());
    }
    let Some(info) = &status.info else {
        return Ok(());
    };
    if retain && !info.retain_available {
        return Err(Error::RetainNotAvailable);
    }
    let Some(maximum) = info.maximum_packet_size else {
        return Ok(());
    };
    match zmqtt_proto::codec::qos0_publish_len(topic, payload_len, shared.protocol) {
        Ok(size) if size > maximum as usize => Err(Error::PacketTooLarge { size, maximum }),
        // An encoding problem is reported by the engine, in its words.
        _ => Ok(()),
    }
}

/// Refuses locally, before anything is queued, a publish that cannot go out:
/// an invalid topic, and what the broker of the current connection said it
/// does not take (QoS above its Maximum QoS, retain without Retain
/// Available, a packet above its Maximum Packet Size). Nothing about the
/// broker is known while not connected; the engine checks again on sending.
fn check_publish(shared: &Shared, mut publish: Publish) -> Result<Publish> {
    let alias_only = publish.topic.is_empty() && publish.properties.topic_alias.is_some();
    if !alias_only {
        zmqtt_proto::topic::validate_topic_name(&publish.topic)?;
    }
    let maximum_packet_size = {
        let status = shared.status.borrow();
        let info = match (&status.state, &status.info) {
            (ConnectionState::Connected, Some(info)) => info,
            _ => return Ok(publish),
        };
        if publish.qos > info.maximum_qos {
            return Err(Error::QoSExceeded {
                requested: publish.qos,
                maximum: info.maximum_qos,
            });
        }
        if publish.retain && !info.retain_available {
            return Err(Error::RetainNotAvailable);
        }
        info.maximum_packet_size
    };
    let (Some(maximum), false) = (maximum_packet_size, alias_only) else {
        return Ok(publish);
    };
    // Measured as sent: a QoS 1/2 packet carries a (two-byte) packet id.
    let packet_id = publish.packet_id;
    publish.packet_id = (publish.qos != QoS::AtMostOnce).then_some(1);
    let packet = Packet::Publish(publish);
    let size = zmqtt_proto::codec::encoded_len(&packet, shared.protocol);
    let Packet::Publish(mut publish) = packet else {
        return Err(Error::invalid("a publish could not be measured"));
    };
    publish.packet_id = packet_id;
    match size {
        Ok(size) if size > maximum as usize => Err(Error::PacketTooLarge { size, maximum }),
        // An encoding problem is reported by the engine, in its words.
        _ => Ok(publish),
    }
}

/// A subscription being prepared; made by [`Client::subscribe`]. `.await` it.
#[must_use = "a subscription does nothing until awaited"]
pub struct SubscribeBuilder<'a, V> {
    client: &'a Client<V>,
    filters: Vec<String>,
    options: SubscriptionOptions,
    properties: SubscribeProperties,
    auto_ack: bool,
    receive_buffer_size: usize,
}

impl<V: Protocol> fmt::Debug for SubscribeBuilder<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscribeBuilder")
            .field("filters", &self.filters)
            .field("options", &self.options)
            .field("properties", &self.properties)
            .field("auto_ack", &self.auto_ack)
            .field("receive_buffer_size", &self.receive_buffer_size)
            .finish()
    }
}

impl<V: Protocol> SubscribeBuilder<'_, V> {
    /// The maximum QoS to receive with (default [`QoS::AtMostOnce`]).
    pub fn qos(mut self, qos: QoS) -> Self {
        self.options.qos = qos;
        self
    }

    /// Acknowledge messages before handing them out (default true). With
    /// false, PUBACK / PUBREC waits for [`Message::ack`](crate::Message::ack).
    pub fn auto_ack(mut self, auto_ack: bool) -> Self {
        self.auto_ack = auto_ack;
        self
    }

    /// At most this many messages wait in the subscription (default 1000;
    /// 0 = unbounded). When full, the client stops reading the socket.
    pub fn receive_buffer_size(mut self, messages: usize) -> Self {
        self.receive_buffer_size = messages;
        self
    }
}

impl SubscribeBuilder<'_, V5> {
    /// 5.0 No Local: do not receive our own publishes.
    pub fn no_local(mut self, no_local: bool) -> Self {
        self.options.no_local = no_local;
        self
    }

    /// 5.0 Retain As Published: keep the RETAIN flag as the publisher set it.
    pub fn retain_as_published(mut self, retain_as_published: bool) -> Self {
        self.options.retain_as_published = retain_as_published;
        self
    }

    /// 5.0 Retain Handling: when retained messages are sent.
    pub fn retain_handling(mut self, retain_handling: RetainHandling) -> Self {
        self.options.retain_handling = retain_handling;
        self
    }

    /// 5.0 Subscription Identifier (1..=268435455); messages carrying it are
    /// routed to this subscription first.
    pub fn subscription_identifier(mut self, identifier: u32) -> Self {
        self.properties.subscription_identifier = Some(identifier);
        self
    }

    /// Adds a SUBSCRIBE user property.
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties
            .user_properties
            .push((name.into(), value.into()));
        self
    }
}

impl<'a, V: Protocol> IntoFuture for SubscribeBuilder<'a, V> {
    type Output = Result<Subscription>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Subscription>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            if self.filters.is_empty() {
                return Err(Error::invalid("subscribe needs at least one topic filter"));
            }
            for filter in &self.filters {
                zmqtt_proto::topic::validate_topic_filter(filter)?;
            }
            if let Some(identifier) = self.properties.subscription_identifier {
                if !(1..=268_435_455).contains(&identifier) {
                    return Err(Error::invalid(
                        "subscription_identifier must be in 1..=268435455",
                    ));
                }
            }
            let spec = SubscribeSpec {
                filters: self
                    .filters
                    .iter()
                    .map(|filter| SubscribeFilter {
                        filter: filter.clone(),
                        options: self.options,
                    })
                    .collect(),
                properties: self.properties,
                auto_ack: self.auto_ack,
                receive_buffer_size: self.receive_buffer_size,
            };
            let commands = self.client.commands()?;
            let subscribed = commands
                .call(|reply| Command::Subscribe {
                    spec: Box::new(spec),
                    reply,
                })
                .await?;
            Ok(Subscription::new(
                subscribed,
                self.filters,
                commands,
                Arc::clone(&self.client.shared.status),
            ))
        })
    }
}

/// `n` random bytes from the operating system (a time-based fallback if it
/// has none).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        use std::hash::{BuildHasher, Hasher};
        let state = std::collections::hash_map::RandomState::new();
        for (index, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = state.build_hasher();
            hasher.write_usize(index);
            if let Ok(since) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                hasher.write_u128(since.as_nanos());
            }
            let value = hasher.finish().to_le_bytes();
            for (slot, byte) in chunk.iter_mut().zip(value) {
                *slot = byte;
            }
        }
    }
    bytes
}

/// The random part of a client's generated response topic.
pub(crate) type ReplyId = [u8; 12];

const REPLY_TOPIC_PREFIX: &str = "zmqtt/replies/";

/// The generated response topic: the prefix, then `id` in lower-case hex.
fn reply_topic(id: &ReplyId) -> String {
    let mut topic = String::with_capacity(REPLY_TOPIC_PREFIX.len() + 2 * id.len());
    topic.push_str(REPLY_TOPIC_PREFIX);
    for byte in id {
        topic.extend(hex_digits(*byte));
    }
    topic
}

/// Whether `topic` is the generated response topic of `id`.
pub(crate) fn is_reply_topic(topic: &str, id: &ReplyId) -> bool {
    let Some(digits) = topic.strip_prefix(REPLY_TOPIC_PREFIX) else {
        return false;
    };
    digits.len() == 2 * id.len()
        && digits
            .chars()
            .zip(id.iter().flat_map(|byte| hex_digits(*byte)))
            .all(|(seen, expected)| seen == expected)
}

/// The two lower-case hex digits of `byte`.
fn hex_digits(byte: u8) -> [char; 2] {
    let digit = |nibble: u8| char::from_digit(u32::from(nibble), 16).unwrap_or('0');
    [digit(byte >> 4), digit(byte & 0x0f)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_reply_topic_is_recognised_by_its_id_only() {
        let id: ReplyId = [
            0x00, 0x01, 0x7f, 0x80, 0xab, 0xff, 0x10, 0x2c, 0x3d, 0x4e, 0x5f, 0x9a,
        ];
        let topic = reply_topic(&id);
        assert_eq!(topic, "zmqtt/replies/00017f80abff102c3d4e5f9a");
        assert_eq!(topic.capacity(), topic.len());
        assert!(is_reply_topic(&topic, &id));
        let mut other = id;
        other[11] = 0x9b;
        assert!(!is_reply_topic(&topic, &other));
        assert!(!is_reply_topic(&topic.to_uppercase(), &id));
        assert!(!is_reply_topic(&format!("{topic}0"), &id));
        assert!(!is_reply_topic("zmqtt/replies/", &id));
        assert!(!is_reply_topic(&topic[1..], &id));
    }
}
