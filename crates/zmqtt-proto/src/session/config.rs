//! What a session sends in CONNECT and the local timing policies.

use std::time::Duration;

use bytes::Bytes;

use crate::codec::{self, EncodeError};
use crate::packet::{Connect, ConnectProperties, LastWill, Packet, ProtocolVersion};
use crate::topic::{self, TopicError};

/// The largest packet the protocol can express: a 268,435,455-byte remaining
/// length plus the 1-byte header and the 4-byte length field. Used when no
/// Maximum Packet Size was negotiated.
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 268_435_455 + 5;

/// The longest time the default ping timeout policy waits for PINGRESP.
pub const DEFAULT_PING_TIMEOUT_CAP: Duration = Duration::from_secs(30);

/// The default time allowed between opening the transport and CONNACK.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a PINGREQ may stay unanswered before the connection counts as dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PingTimeout {
    /// Half the effective keep alive, at most 30 s; no limit when keep alive is 0.
    #[default]
    Auto,
    /// A fixed limit, whatever the keep alive.
    After(Duration),
    /// Never give up on a PINGRESP (the transport's own timeouts still apply).
    Never,
}

impl PingTimeout {
    /// The limit for a connection whose effective keep alive is `keep_alive` seconds.
    pub fn resolve(self, keep_alive: u16) -> Option<Duration> {
        match self {
            PingTimeout::Auto if keep_alive == 0 => None,
            PingTimeout::Auto => Some(
                Duration::from_millis(u64::from(keep_alive) * 500).min(DEFAULT_PING_TIMEOUT_CAP),
            ),
            PingTimeout::After(limit) => Some(limit),
            PingTimeout::Never => None,
        }
    }
}

/// Everything the session needs to (re)connect: the CONNECT contents and the
/// local timing policies. The same CONNECT (Will included) is sent on every
/// connection of the session. `Debug` leaves out the password and the Will
/// payload.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The protocol spoken on every connection of this session.
    pub protocol: ProtocolVersion,
    /// Empty lets the broker assign one (3.1.1 then requires `clean_start`).
    pub client_id: String,
    /// Keep alive in seconds; 0 disables keepalive pings.
    pub keep_alive: u16,
    /// 3.1.1 Clean Session / 5.0 Clean Start.
    pub clean_start: bool,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    /// Sent in every CONNECT, so it survives reconnects. Boxed: large and
    /// rarely set, and a client keeps its configuration for its whole life.
    pub will: Option<Box<LastWill>>,
    /// 5.0 CONNECT properties (session expiry, Receive Maximum, Maximum Packet
    /// Size, Topic Alias Maximum, request flags, user properties, authentication).
    /// Must stay at its default on 3.1.1.
    pub connect_properties: ConnectProperties,
    /// How long an unanswered PINGREQ is tolerated.
    pub ping_timeout: PingTimeout,
    /// How long CONNACK may take after the transport opened; `None` waits forever.
    pub connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let will = self.will.as_ref().map(|will| {
            (
                &will.topic,
                will.qos,
                will.retain,
                format!("<{} payload bytes>", will.payload.len()),
            )
        });
        f.debug_struct("SessionConfig")
            .field("protocol", &self.protocol)
            .field("client_id", &self.client_id)
            .field("keep_alive", &self.keep_alive)
            .field("clean_start", &self.clean_start)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("will", &will)
            .field("connect_properties", &self.connect_properties)
            .field("ping_timeout", &self.ping_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            protocol: ProtocolVersion::V311,
            client_id: String::new(),
            keep_alive: 60,
            clean_start: true,
            username: None,
            password: None,
            will: None,
            connect_properties: ConnectProperties::default(),
            ping_timeout: PingTimeout::Auto,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
        }
    }
}

/// Why a [`SessionConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// 3.1.1 lets the server assign an identifier only to a clean session (MQTT-3.1.3-7).
    #[error("an empty client_id requires clean_session=True on MQTT 3.1.1")]
    EmptyClientIdRequiresCleanStart,
    /// 3.1.1 allows a password only together with a user name (MQTT-3.1.2-22).
    #[error("a password requires a username on MQTT 3.1.1")]
    PasswordWithoutUsername,
    /// The will topic is not a valid topic name.
    #[error("invalid will topic: {0}")]
    InvalidWillTopic(TopicError),
    /// A numeric option is out of its range.
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    /// CONNECT cannot be encoded (for example a 5.0 option on 3.1.1).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl SessionConfig {
    /// A configuration for `protocol` with the defaults of the SPEC.
    pub fn new(protocol: ProtocolVersion, client_id: impl Into<String>) -> Self {
        SessionConfig {
            protocol,
            client_id: client_id.into(),
            ..SessionConfig::default()
        }
    }

    /// Checks the configuration once, so that every later CONNECT encodes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let v311 = self.protocol == ProtocolVersion::V311;
        if v311 && self.client_id.is_empty() && !self.clean_start {
            return Err(ConfigError::EmptyClientIdRequiresCleanStart);
        }
        if v311 && self.password.is_some() && self.username.is_none() {
            return Err(ConfigError::PasswordWithoutUsername);
        }
        if let Some(will) = &self.will {
            topic::validate_topic_name(&will.topic).map_err(ConfigError::InvalidWillTopic)?;
        }
        let props = &self.connect_properties;
        if props.receive_maximum == Some(0) {
            return Err(ConfigError::OutOfRange("receive_maximum"));
        }
        if props.maximum_packet_size == Some(0) {
            return Err(ConfigError::OutOfRange("maximum_packet_size"));
        }
        if self.connect_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::OutOfRange("connect_timeout"));
        }
        if self.ping_timeout == PingTimeout::After(Duration::ZERO) {
            return Err(ConfigError::OutOfRange("ping_timeout"));
        }
        codec::encoded_len(
            &Packet::Connect(Box::new(self.connect_packet())),
            self.protocol,
        )?;
        Ok(())
    }

    /// The CONNECT packet sent on every (re)connect.
    pub fn connect_packet(&self) -> Connect {
        Connect {
            protocol: self.protocol,
            client_id: self.client_id.clone(),
            keep_alive: self.keep_alive,
            clean_start: self.clean_start,
            username: self.username.clone(),
            password: self.password.clone(),
            will: self.will.as_deref().cloned(),
            properties: self.connect_properties.clone(),
        }
    }

    /// Our Receive Maximum: how many unacknowledged QoS 1/2 publishes the broker
    /// may have towards us (5.0; 65535 when not set).
    pub fn receive_maximum(&self) -> u16 {
        self.connect_properties.receive_maximum.unwrap_or(u16::MAX)
    }

    /// Our Topic Alias Maximum (5.0; 0 when not set, i.e. no incoming aliases).
    pub fn topic_alias_maximum(&self) -> u16 {
        match self.protocol {
            ProtocolVersion::V311 => 0,
            ProtocolVersion::V5 => self.connect_properties.topic_alias_maximum.unwrap_or(0),
        }
    }

    /// The largest packet we accept, given to the decoder.
    pub fn maximum_packet_size(&self) -> u32 {
        match self.protocol {
            ProtocolVersion::V311 => PROTOCOL_MAX_PACKET_SIZE,
            ProtocolVersion::V5 => self
                .connect_properties
                .maximum_packet_size
                .unwrap_or(PROTOCOL_MAX_PACKET_SIZE),
        }
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_shows_no_password_and_no_will_payload() {
        let config = SessionConfig {
            username: Some("user".into()),
            password: Some(Bytes::from_static(b"hunter2-secret")),
            will: Some(Box::new(LastWill {
                topic: "status".into(),
                payload: Bytes::from_static(b"will-payload-secret"),
                ..LastWill::default()
            })),
            ..SessionConfig::new(ProtocolVersion::V311, "c")
        };
        let shown = format!("{config:?}");
        assert!(
            shown.contains("user") && shown.contains("status"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("will-payload"), "{shown}");
    }
}
