//! [`ClientBuilder`]: every connection parameter of SPEC 1.1, no I/O.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use zmqtt_proto::session::{ConfigError, PingTimeout, SessionConfig};
use zmqtt_proto::topic::DEFAULT_STRIPPED_PREFIXES;
use zmqtt_proto::{ConnectProperties, LastWill, ProtocolVersion, QoS, WillProperties};

use crate::client::Client;
use crate::connection::reconnect::ReconnectConfig;
use crate::error::{Error, Result};
use crate::tls::Tls;
use crate::version::{Protocol, V311, V5};

/// The default TCP port of MQTT.
pub const DEFAULT_PORT: u16 = 1883;

/// The Will message: published by the broker when the client goes away
/// without a DISCONNECT (SPEC 1.6). Sent in every CONNECT, so it survives
/// reconnects.
///
/// ```
/// use zmqtt::{QoS, Will};
///
/// let will = Will::new("status/app", "offline").qos(QoS::AtLeastOnce).retain(true);
/// assert_eq!(will.topic, "status/app");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Will {
    /// Topic name (no wildcards).
    pub topic: String,
    /// The message.
    pub payload: Bytes,
    /// Its QoS.
    pub qos: QoS,
    /// Whether the broker retains it.
    pub retain: bool,
    /// 5.0 Will properties (delay, expiry, content type, …); an error on 3.1.1.
    pub properties: Option<WillProperties>,
}

/// Shows the payload's size, never its bytes.
impl std::fmt::Debug for Will {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Will")
            .field("topic", &self.topic)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("properties", &self.properties)
            .finish()
    }
}

impl Will {
    /// A QoS 0, non-retained Will.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Will {
        Will {
            topic: topic.into(),
            payload: payload.into(),
            ..Will::default()
        }
    }

    /// Sets the QoS.
    pub fn qos(mut self, qos: QoS) -> Will {
        self.qos = qos;
        self
    }

    /// Sets the RETAIN flag.
    pub fn retain(mut self, retain: bool) -> Will {
        self.retain = retain;
        self
    }

    /// Sets 5.0 Will properties (the client must be [`V5`]).
    pub fn properties(mut self, properties: WillProperties) -> Will {
        self.properties = Some(properties);
        self
    }
}

/// What a client keeps of its options once built: the transport and local
/// policies. The CONNECT contents live in the engine's `SessionConfig`, made
/// once by `build()` and shared with every session, so the client holds them
/// once. Kept small: every client carries one (W7).
pub(crate) struct ClientOptions {
    pub host: String,
    pub port: u16,
    /// `None` for plain TCP (most clients): the TLS settings are large.
    tls: Option<Box<Tls>>,
    pub reconnect: ReconnectConfig,
    pub connect_timeout: Duration,
    /// Shared: every client with the default prefixes points at one list.
    pub stripped_prefixes: Arc<[String]>,
    pub max_pending_requests: usize,
    pub session_replay_buffer_size: usize,
    pub session_replay_timeout: Duration,
}

impl ClientOptions {
    /// The TLS settings ([`Tls::Off`] unless set).
    pub(crate) fn tls(&self) -> &Tls {
        static OFF: Tls = Tls::Off;
        self.tls.as_deref().unwrap_or(&OFF)
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls().is_enabled())
            .field("reconnect", &self.reconnect)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// The default stripped prefixes, made once and shared by every client that
/// keeps them.
fn default_stripped_prefixes() -> Arc<[String]> {
    static DEFAULT: OnceLock<Arc<[String]>> = OnceLock::new();
    Arc::clone(DEFAULT.get_or_init(|| {
        DEFAULT_STRIPPED_PREFIXES
            .iter()
            .map(|prefix| (*prefix).to_owned())
            .collect()
    }))
}

/// Everything a builder records; split by `build()` into [`ClientOptions`]
/// and the engine's `SessionConfig`.
#[derive(Clone)]
struct BuilderOptions {
    host: String,
    port: u16,
    client_id: String,
    keepalive: u16,
    clean_session: bool,
    username: Option<String>,
    password: Option<Bytes>,
    will: Option<Will>,
    tls: Tls,
    reconnect: ReconnectConfig,
    connect_timeout: Duration,
    ping_timeout: PingTimeout,
    session_expiry_interval: u32,
    receive_maximum: Option<u16>,
    maximum_packet_size: Option<u32>,
    topic_alias_maximum: Option<u16>,
    user_properties: Vec<(String, String)>,
    request_response_information: Option<bool>,
    request_problem_information: Option<bool>,
    authentication_method: Option<String>,
    authentication_data: Option<Bytes>,
    stripped_prefixes: Arc<[String]>,
    max_pending_requests: usize,
    session_replay_buffer_size: usize,
    session_replay_timeout: Duration,
}

impl fmt::Debug for BuilderOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password, nor the authentication data.
        f.debug_struct("ClientOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("keepalive", &self.keepalive)
            .field("clean_session", &self.clean_session)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("will", &self.will.as_ref().map(|will| &will.topic))
            .field("tls", &self.tls.is_enabled())
            .field("reconnect", &self.reconnect)
            .field("connect_timeout", &self.connect_timeout)
            .field("session_expiry_interval", &self.session_expiry_interval)
            .field("receive_maximum", &self.receive_maximum)
            .field("maximum_packet_size", &self.maximum_packet_size)
            .field("authentication_method", &self.authentication_method)
            .finish_non_exhaustive()
    }
}

impl BuilderOptions {
    fn new(host: String) -> BuilderOptions {
        BuilderOptions {
            host,
            port: DEFAULT_PORT,
            client_id: String::new(),
            keepalive: 60,
            clean_session: true,
            username: None,
            password: None,
            will: None,
            tls: Tls::Off,
            reconnect: ReconnectConfig::default(),
            connect_timeout: Duration::from_secs(30),
            ping_timeout: PingTimeout::Auto,
            session_expiry_interval: 0,
            receive_maximum: None,
            maximum_packet_size: None,
            topic_alias_maximum: None,
            user_properties: Vec::new(),
            request_response_information: None,
            request_problem_information: None,
            authentication_method: None,
            authentication_data: None,
            stripped_prefixes: default_stripped_prefixes(),
            max_pending_requests: 1000,
            session_replay_buffer_size: 1000,
            session_replay_timeout: Duration::from_secs(30),
        }
    }

    /// What the client keeps besides the engine's configuration.
    fn into_client_options(self) -> ClientOptions {
        ClientOptions {
            host: self.host,
            port: self.port,
            tls: self.tls.is_enabled().then(|| Box::new(self.tls)),
            reconnect: self.reconnect,
            connect_timeout: self.connect_timeout,
            stripped_prefixes: self.stripped_prefixes,
            max_pending_requests: self.max_pending_requests,
            session_replay_buffer_size: self.session_replay_buffer_size,
            session_replay_timeout: self.session_replay_timeout,
        }
    }

    /// Checks every option and makes the engine's configuration. Nothing here
    /// does I/O; every error names the option in the words of the API.
    fn session_config(&self, protocol: ProtocolVersion) -> Result<SessionConfig> {
        if self.host.is_empty() {
            return Err(Error::invalid("host must not be empty"));
        }
        if self.port == 0 {
            return Err(Error::invalid("port must be in 1..=65535"));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::invalid("mqtt_connect_timeout must be positive"));
        }
        if self.max_pending_requests == 0 {
            return Err(Error::invalid("max_pending_requests must be positive"));
        }
        if self.session_replay_timeout.is_zero() {
            return Err(Error::invalid("session_replay_timeout must be positive"));
        }
        self.reconnect.validate()?;
        let v5 = protocol == ProtocolVersion::V5;
        if self.receive_maximum == Some(0) {
            return Err(Error::invalid("receive_maximum must be in 1..=65535"));
        }
        if self.maximum_packet_size == Some(0) {
            return Err(Error::invalid("maximum_packet_size must be positive"));
        }
        let will = match &self.will {
            None => None,
            Some(will) => {
                if !v5 && will.properties.is_some() {
                    return Err(Error::invalid("will properties require MQTT 5.0"));
                }
                zmqtt_proto::topic::validate_topic_name(&will.topic)?;
                Some(Box::new(LastWill {
                    topic: will.topic.clone(),
                    payload: will.payload.clone(),
                    qos: will.qos,
                    retain: will.retain,
                    properties: will.properties.clone().unwrap_or_default(),
                }))
            }
        };
        let connect_properties = if v5 {
            ConnectProperties {
                session_expiry_interval: (self.session_expiry_interval != 0)
                    .then_some(self.session_expiry_interval),
                receive_maximum: self.receive_maximum,
                maximum_packet_size: self.maximum_packet_size,
                topic_alias_maximum: self.topic_alias_maximum,
                request_response_information: self.request_response_information,
                request_problem_information: self.request_problem_information,
                user_properties: self.user_properties.clone(),
                authentication_method: self.authentication_method.clone(),
                authentication_data: self.authentication_data.clone(),
            }
        } else {
            ConnectProperties::default()
        };
        let config = SessionConfig {
            protocol,
            client_id: self.client_id.clone(),
            keep_alive: self.keepalive,
            clean_start: self.clean_session,
            username: self.username.clone(),
            password: self.password.clone(),
            will,
            connect_properties,
            ping_timeout: self.ping_timeout,
            connect_timeout: Some(self.connect_timeout),
        };
        config.validate().map_err(config_error)?;
        Ok(config)
    }
}

fn config_error(error: ConfigError) -> Error {
    match error {
        ConfigError::InvalidWillTopic(topic) => Error::InvalidTopic(topic),
        ConfigError::OutOfRange(what) => Error::invalid(format!("{what} is out of range")),
        other => Error::invalid(other.to_string()),
    }
}

/// Builds a [`Client`]; made by [`create_client`](crate::create_client).
///
/// Every setter only records a value: [`build`](Self::build) does no I/O and
/// never fails. Options are checked once, before any I/O: an invalid one
/// (out of range, a password without a user name on 3.1.1, Will properties on
/// 3.1.1, …) makes [`Client::connect`] fail with [`Error::InvalidArgument`] or
/// [`Error::InvalidTopic`]. Use [`try_build`](Self::try_build) to get that
/// error at build time instead.
///
/// The version is a type parameter: `ClientBuilder<V311>` by default,
/// [`v5`](Self::v5) switches to `ClientBuilder<V5>`, which adds the 5.0 CONNECT
/// options.
///
/// ```
/// use std::time::Duration;
/// use zmqtt::{create_client, QoS, ReconnectConfig, Will};
///
/// let client = create_client("broker.example.com")
///     .port(1883)
///     .client_id("sensor-7")
///     .keepalive(30)
///     .clean_session(false)
///     .credentials("user", "secret")
///     .will(Will::new("sensors/7/status", "gone").qos(QoS::AtLeastOnce))
///     .reconnect(ReconnectConfig { max_attempts: None, ..ReconnectConfig::default() })
///     .connect_timeout(Duration::from_secs(10))
///     .build();
/// assert!(client.connection_info().is_none()); // nothing happened yet
///
/// let v5 = create_client("broker.example.com")
///     .v5()
///     .session_expiry_interval(3600)
///     .receive_maximum(100)
///     .user_property("app", "demo")
///     .build();
/// # drop(v5);
/// ```
pub struct ClientBuilder<V> {
    options: BuilderOptions,
    version: PhantomData<fn() -> V>,
}

impl<V> fmt::Debug for ClientBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("options", &self.options)
            .finish()
    }
}

impl<V> Clone for ClientBuilder<V> {
    fn clone(&self) -> Self {
        ClientBuilder {
            options: self.options.clone(),
            version: PhantomData,
        }
    }
}

impl ClientBuilder<V311> {
    pub(crate) fn new(host: impl Into<String>) -> Self {
        ClientBuilder {
            options: BuilderOptions::new(host.into()),
            version: PhantomData,
        }
    }

    /// Switches to MQTT 5.0, keeping every option set so far.
    pub fn v5(self) -> ClientBuilder<V5> {
        ClientBuilder {
            options: self.options,
            version: PhantomData,
        }
    }
}

impl<V: Protocol> ClientBuilder<V> {
    /// TCP port (default 1883; 8883 is usual for TLS).
    pub fn port(mut self, port: u16) -> Self {
        self.options.port = port;
        self
    }

    /// Client identifier; empty (the default) lets the broker assign one,
    /// which on 3.1.1 requires a clean session.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.options.client_id = client_id.into();
        self
    }

    /// Keep alive in seconds (default 60); 0 disables keepalive pings.
    pub fn keepalive(mut self, seconds: u16) -> Self {
        self.options.keepalive = seconds;
        self
    }

    /// 3.1.1 Clean Session / 5.0 Clean Start (default true).
    pub fn clean_session(mut self, clean: bool) -> Self {
        self.options.clean_session = clean;
        self
    }

    /// User name and password.
    pub fn credentials(self, username: impl Into<String>, password: impl AsRef<[u8]>) -> Self {
        self.username(username).password(password)
    }

    /// User name alone.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.options.username = Some(username.into());
        self
    }

    /// Password (on 3.1.1 only together with a user name). Never logged.
    pub fn password(mut self, password: impl AsRef<[u8]>) -> Self {
        self.options.password = Some(Bytes::copy_from_slice(password.as_ref()));
        self
    }

    /// The Will message, sent in every CONNECT (also on reconnects).
    pub fn will(mut self, will: Will) -> Self {
        self.options.will = Some(will);
        self
    }

    /// TLS: [`Tls::Off`] (default), [`Tls::System`], a `rustls::ClientConfig`, a
    /// [`TlsConfig`](crate::TlsConfig), or a `bool`.
    pub fn tls(mut self, tls: impl Into<Tls>) -> Self {
        self.options.tls = tls.into();
        self
    }

    /// Reconnection policy (SPEC 1.5).
    pub fn reconnect(mut self, reconnect: ReconnectConfig) -> Self {
        self.options.reconnect = reconnect;
        self
    }

    /// How long opening the socket (TLS included) and then waiting for CONNACK
    /// may each take (SPEC `mqtt_connect_timeout`, default 30 s; must be > 0).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How long a PINGREQ may stay unanswered before the connection counts as
    /// lost. Default: half the keep alive, at most 30 s.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.options.ping_timeout = PingTimeout::After(timeout);
        self
    }

    /// Group-less subscription prefixes the broker strips before delivery
    /// (default `$queue`, `$exclusive`); `$share/<group>/` is always understood.
    pub fn stripped_prefixes<S: Into<String>>(
        mut self,
        prefixes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.options.stripped_prefixes = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// How many messages of a resumed session that arrive before a matching
    /// subscription exists are held for one (default 1000; 0 = unbounded).
    pub fn session_replay_buffer_size(mut self, messages: usize) -> Self {
        self.options.session_replay_buffer_size = messages;
        self
    }

    /// How long such messages are held (default 30 s); then they are dropped
    /// unacknowledged, so the broker sends them again on the next resume.
    pub fn session_replay_timeout(mut self, timeout: Duration) -> Self {
        self.options.session_replay_timeout = timeout;
        self
    }

    /// Makes the client. No I/O; invalid options surface from
    /// [`Client::connect`].
    pub fn build(self) -> Client<V> {
        let checked = self.options.session_config(V::VERSION);
        Client::new(self.options.into_client_options(), checked)
    }

    /// Makes the client, or reports the first invalid option. No I/O.
    pub fn try_build(self) -> Result<Client<V>> {
        let config = self.options.session_config(V::VERSION)?;
        Ok(Client::new(self.options.into_client_options(), Ok(config)))
    }
}

impl ClientBuilder<V5> {
    /// Session Expiry Interval in seconds (default 0: the session ends with the
    /// connection; `u32::MAX`: never expires).
    pub fn session_expiry_interval(mut self, seconds: u32) -> Self {
        self.options.session_expiry_interval = seconds;
        self
    }

    /// How many unacknowledged QoS 1/2 messages the broker may have in flight
    /// to us (manual-ack messages count); 1..=65535. A broker exceeding it is
    /// disconnected with 0x93.
    pub fn receive_maximum(mut self, messages: u16) -> Self {
        self.options.receive_maximum = Some(messages);
        self
    }

    /// The largest packet we accept; a broker exceeding it is disconnected
    /// with 0x95.
    pub fn maximum_packet_size(mut self, bytes: u32) -> Self {
        self.options.maximum_packet_size = Some(bytes);
        self
    }

    /// How many topic aliases the broker may use towards us (default 0: none).
    /// Incoming aliases are resolved transparently.
    pub fn topic_alias_maximum(mut self, aliases: u16) -> Self {
        self.options.topic_alias_maximum = Some(aliases);
        self
    }

    /// Adds a CONNECT user property (order kept, names may repeat).
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options
            .user_properties
            .push((name.into(), value.into()));
        self
    }

    /// Replaces the CONNECT user properties.
    pub fn user_properties<N: Into<String>, T: Into<String>>(
        mut self,
        properties: impl IntoIterator<Item = (N, T)>,
    ) -> Self {
        self.options.user_properties = properties
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        self
    }

    /// The Request Response Information flag of CONNECT.
    pub fn request_response_information(mut self, request: bool) -> Self {
        self.options.request_response_information = Some(request);
        self
    }

    /// The Request Problem Information flag of CONNECT.
    pub fn request_problem_information(mut self, request: bool) -> Self {
        self.options.request_problem_information = Some(request);
        self
    }

    /// Enhanced authentication: the method (and optional initial data) sent
    /// in CONNECT. Needed for [`Client::auth`](crate::Client::auth).
    pub fn authentication(mut self, method: impl Into<String>, data: Option<Bytes>) -> Self {
        self.options.authentication_method = Some(method.into());
        self.options.authentication_data = data;
        self
    }

    /// How many `request()` calls may wait for a reply at once (default 1000);
    /// further calls wait for a free slot.
    pub fn max_pending_requests(mut self, requests: usize) -> Self {
        self.options.max_pending_requests = requests;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create_client;

    #[test]
    fn will_debug_shows_the_payload_size_not_its_bytes() {
        let will = Will::new("status/app", "offline-secret");
        let shown = format!("{will:?}");
        assert!(
            shown.contains("status/app") && shown.contains("<14 bytes>"),
            "{shown}"
        );
        assert!(!shown.contains("offline-secret"), "{shown}");
    }

    fn error_of<V: Protocol>(builder: ClientBuilder<V>) -> String {
        match builder.try_build() {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn defaults_follow_the_spec() {
        let options = create_client("h").options;
        assert_eq!(options.port, 1883);
        assert_eq!(options.keepalive, 60);
        assert!(options.clean_session);
        assert_eq!(options.client_id, "");
        assert_eq!(options.connect_timeout, Duration::from_secs(30));
        assert_eq!(*options.stripped_prefixes, ["$queue", "$exclusive"]);
        assert_eq!(options.max_pending_requests, 1000);
        assert_eq!(options.session_replay_buffer_size, 1000);
        assert_eq!(options.session_replay_timeout, Duration::from_secs(30));
        assert_eq!(options.reconnect, ReconnectConfig::default());
    }

    #[test]
    fn invalid_options_are_reported_in_the_words_of_the_api() {
        assert_eq!(
            error_of(create_client("h").connect_timeout(Duration::ZERO)),
            "mqtt_connect_timeout must be positive"
        );
        assert_eq!(
            error_of(create_client("h").v5().max_pending_requests(0)),
            "max_pending_requests must be positive"
        );
        assert_eq!(
            error_of(
                create_client("h").will(Will::new("w", "x").properties(WillProperties::default()))
            ),
            "will properties require MQTT 5.0"
        );
        assert_eq!(
            error_of(create_client("h").clean_session(false)),
            "an empty client_id requires clean_session=True on MQTT 3.1.1"
        );
        assert_eq!(
            error_of(create_client("h").password("p")),
            "a password requires a username on MQTT 3.1.1"
        );
        assert_eq!(
            error_of(create_client("h").v5().receive_maximum(0)),
            "receive_maximum must be in 1..=65535"
        );
        assert_eq!(
            error_of(create_client("h").port(0)),
            "port must be in 1..=65535"
        );
        assert!(matches!(
            create_client("h").will(Will::new("a/+", "x")).try_build(),
            Err(Error::InvalidTopic(_))
        ));
    }

    #[test]
    fn v5_allows_what_311_refuses() {
        assert!(create_client("h")
            .v5()
            .clean_session(false)
            .password("p")
            .will(Will::new("w", "x").properties(WillProperties::default()))
            .try_build()
            .is_ok());
    }

    #[test]
    fn v5_options_reach_the_connect_packet() {
        let builder = create_client("h")
            .v5()
            .session_expiry_interval(3600)
            .receive_maximum(10)
            .maximum_packet_size(1 << 20)
            .user_property("a", "1")
            .user_property("a", "2")
            .request_problem_information(false);
        let config = builder.options.session_config(ProtocolVersion::V5).unwrap();
        let props = &config.connect_properties;
        assert_eq!(props.session_expiry_interval, Some(3600));
        assert_eq!(props.receive_maximum, Some(10));
        assert_eq!(props.maximum_packet_size, Some(1 << 20));
        assert_eq!(
            props.user_properties,
            vec![("a".into(), "1".into()), ("a".into(), "2".into())]
        );
        assert_eq!(props.request_problem_information, Some(false));
        assert_eq!(props.request_response_information, None);
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let builder = create_client("h").credentials("user", "hunter2");
        let text = format!("{builder:?}");
        assert!(text.contains("user"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
