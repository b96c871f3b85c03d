//! The one error type of the client, mirroring SPEC 1.10.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use zmqtt_proto::codec::DecodeError;
use zmqtt_proto::topic::TopicError;
use zmqtt_proto::{ConnAckProperties, QoS, ReasonCode};

/// Everything a zmqtt call can fail with.
///
/// Causes from the network or TLS are kept as sources (`std::error::Error::source`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broker refused the connection (CONNACK with a failure code). Never retried.
    #[error("connection refused by the broker: {reason}{}", fmt_reason_string(.reason_string))]
    Connect {
        /// 3.1.1 return code (1..=5) or 5.0 reason code (≥ 0x80).
        return_code: u8,
        /// The spec name of `return_code`.
        reason: &'static str,
        /// 5.0: the broker's Reason String.
        reason_string: Option<String>,
        /// 5.0: Server Reference (another broker to use), if given.
        server_reference: Option<String>,
        /// 5.0: all CONNACK properties.
        properties: Option<Box<ConnAckProperties>>,
    },

    /// The broker broke the protocol (malformed or unexpected packet).
    #[error("protocol error: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
        /// The reason code sent in the 5.0 DISCONNECT, when one was sent.
        reason_code: Option<ReasonCode>,
        /// The decoder's error, when the bytes were at fault.
        #[source]
        source: Option<DecodeError>,
    },

    /// Not connected, or the connection was lost while the call waited.
    #[error("disconnected: {reason}")]
    Disconnected {
        /// Why: "not connected", the broker's DISCONNECT reason, the I/O error, …
        reason: String,
        /// The broker's 5.0 DISCONNECT reason code, when it sent one.
        reason_code: Option<ReasonCode>,
    },

    /// A PINGRESP, CONNACK or reply did not come in time.
    #[error("timed out waiting for {what} after {after:?}")]
    Timeout {
        /// "CONNACK", "PINGRESP", "a reply", …
        what: &'static str,
        /// How long was waited.
        after: Duration,
    },

    /// The broker refused one or more filters of a SUBSCRIBE (code ≥ 0x80).
    #[error("subscription refused: {}", fmt_failures(.failures))]
    Subscribe {
        /// Refused filter → reason code.
        failures: BTreeMap<String, u8>,
        /// 5.0: the broker's Reason String.
        reason_string: Option<String>,
    },

    /// The broker answered a QoS 1/2 publish with a failure (5.0, code ≥ 0x80).
    #[error("publish refused: 0x{reason_code:02X} {reason_name}{}", fmt_reason_string(.reason_string))]
    Publish {
        /// The PUBACK / PUBREC reason code.
        reason_code: u8,
        /// Its spec name.
        reason_name: &'static str,
        /// 5.0: the broker's Reason String.
        reason_string: Option<String>,
    },

    /// The requested QoS is above the broker's Maximum QoS (refused locally).
    #[error("QoS {} exceeds the broker's maximum QoS {}", *.requested as u8, *.maximum as u8)]
    QoSExceeded {
        /// What the caller asked for.
        requested: QoS,
        /// What the broker allows.
        maximum: QoS,
    },

    /// `retain` was set but the broker said Retain Available = 0 (refused locally).
    #[error("the broker does not support retained messages")]
    RetainNotAvailable,

    /// A topic name or filter is not valid (refused locally, before any I/O).
    #[error(transparent)]
    InvalidTopic(#[from] TopicError),

    /// A packet would exceed the broker's Maximum Packet Size (refused locally).
    #[error("packet of {size} bytes exceeds the broker's maximum packet size of {maximum} bytes")]
    PacketTooLarge {
        /// Encoded size of the packet.
        size: usize,
        /// The broker's Maximum Packet Size.
        maximum: u32,
    },

    /// A caller error: an option out of range, a 5.0-only value on 3.1.1, …
    #[error("{0}")]
    InvalidArgument(String),

    /// Network failure (connect, read, write, name resolution).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// TLS failure: handshake, certificate verification, bad key/cert files.
    #[error("TLS error: {message}")]
    Tls {
        /// What failed, in words (e.g. "certificate not valid for name 'x'").
        message: String,
        /// The rustls error, when there is one.
        #[source]
        source: Option<rustls::Error>,
    },

    /// The client was shut down (its `disconnect()` was called, or every handle dropped).
    #[error("the client is closed")]
    Closed,
}

impl Error {
    /// True for errors a reconnect may cure (network, timeouts); false for
    /// refusals and caller errors.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Io(_) | Error::Timeout { .. } | Error::Disconnected { .. } | Error::Tls { .. }
        ) && !self.is_tls_verification_failure()
    }

    /// The server's certificate did not verify, or the server rejected ours:
    /// trying again cannot help.
    fn is_tls_verification_failure(&self) -> bool {
        use rustls::AlertDescription as Alert;
        matches!(
            self,
            Error::Tls {
                source: Some(
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::NoCertificatesPresented
                        | rustls::Error::AlertReceived(
                            Alert::CertificateRequired
                                | Alert::BadCertificate
                                | Alert::UnsupportedCertificate
                                | Alert::CertificateRevoked
                                | Alert::CertificateExpired
                                | Alert::CertificateUnknown
                                | Alert::UnknownCA
                                | Alert::AccessDenied
                        )
                ),
                ..
            }
        )
    }

    pub(crate) fn disconnected(reason: impl Into<String>) -> Error {
        Error::Disconnected {
            reason: reason.into(),
            reason_code: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument(message.into())
    }

    /// A copy for a second waiter (one failure often ends many calls). An I/O
    /// error is re-created with the same kind and message; everything else is
    /// cloned as it is.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Connect {
                return_code,
                reason,
                reason_string,
                server_reference,
                properties,
            } => Error::Connect {
                return_code: *return_code,
                reason,
                reason_string: reason_string.clone(),
                server_reference: server_reference.clone(),
                properties: properties.clone(),
            },
            Error::Protocol {
                message,
                reason_code,
                source,
            } => Error::Protocol {
                message: message.clone(),
                reason_code: *reason_code,
                source: source.clone(),
            },
            Error::Disconnected {
                reason,
                reason_code,
            } => Error::Disconnected {
                reason: reason.clone(),
                reason_code: *reason_code,
            },
            Error::Timeout { what, after } => Error::Timeout {
                what,
                after: *after,
            },
            Error::Subscribe {
                failures,
                reason_string,
            } => Error::Subscribe {
                failures: failures.clone(),
                reason_string: reason_string.clone(),
            },
            Error::Publish {
                reason_code,
                reason_name,
                reason_string,
            } => Error::Publish {
                reason_code: *reason_code,
                reason_name,
                reason_string: reason_string.clone(),
            },
            Error::QoSExceeded { requested, maximum } => Error::QoSExceeded {
                requested: *requested,
                maximum: *maximum,
            },
            Error::RetainNotAvailable => Error::RetainNotAvailable,
            Error::InvalidTopic(error) => Error::InvalidTopic(error.clone()),
            Error::PacketTooLarge { size, maximum } => Error::PacketTooLarge {
                size: *size,
                maximum: *maximum,
            },
            Error::InvalidArgument(message) => Error::InvalidArgument(message.clone()),
            Error::Io(error) => Error::Io(io::Error::new(error.kind(), error.to_string())),
            Error::Tls { message, source } => Error::Tls {
                message: message.clone(),
                source: source.clone(),
            },
            Error::Closed => Error::Closed,
        }
    }
}

fn fmt_reason_string(reason_string: &Option<String>) -> String {
    match reason_string {
        Some(text) => format!(" ({text})"),
        None => String::new(),
    }
}

fn fmt_failures(failures: &BTreeMap<String, u8>) -> String {
    failures
        .iter()
        .map(|(filter, code)| format!("'{filter}': 0x{code:02X} {}", ReasonCode(*code).name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
