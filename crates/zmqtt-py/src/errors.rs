//! The Python classes the native module builds (imported once, lazily) and
//! the mapping of [`zmqtt::Error`] onto the exceptions of `zmqtt._errors`,
//! as the contract in `_zmqtt.pyi` lists it.

use std::io;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use zmqtt::Error;
use zmqtt_proto::topic::TopicError;

use crate::convert;

/// Classes of `zmqtt._errors`, `zmqtt._types` and `ssl`, and the `QoS` members.
pub(crate) struct Types {
    pub mqtt_error: Py<PyAny>,
    pub connect_error: Py<PyAny>,
    pub protocol_error: Py<PyAny>,
    pub disconnected_error: Py<PyAny>,
    pub timeout_error: Py<PyAny>,
    pub subscribe_error: Py<PyAny>,
    pub publish_error: Py<PyAny>,
    pub qos_exceeded_error: Py<PyAny>,
    pub retain_not_available_error: Py<PyAny>,
    pub invalid_topic_error: Py<PyAny>,
    pub ssl_error: Py<PyAny>,
    pub ssl_cert_verification_error: Py<PyAny>,
    pub connection_info: Py<PyAny>,
    pub connack_properties: Py<PyAny>,
    pub publish_properties: Py<PyAny>,
    pub unsubscribe_result: Py<PyAny>,
    pub unsuback_properties: Py<PyAny>,
    /// `QoS.AT_MOST_ONCE`, `AT_LEAST_ONCE`, `EXACTLY_ONCE`.
    pub qos: [Py<PyAny>; 3],
}

static TYPES: PyOnceLock<Types> = PyOnceLock::new();

/// `ssl.SSL_ERROR_SSL`, the errno of the ssl module's own protocol errors.
const SSL_ERROR_SSL: i32 = 1;

/// The classes, imported at first use (the `zmqtt` package imports this
/// module while it initialises, so not at module import).
pub(crate) fn types(py: Python<'_>) -> PyResult<&Types> {
    TYPES.get_or_try_init(py, || {
        let errors = py.import("zmqtt._errors")?;
        let types = py.import("zmqtt._types")?;
        let ssl = py.import("ssl")?;
        let qos = types.getattr("QoS")?;
        let get = |module: &Bound<'_, PyModule>, name: &str| -> PyResult<Py<PyAny>> {
            Ok(module.getattr(name)?.unbind())
        };
        Ok(Types {
            mqtt_error: get(&errors, "MQTTError")?,
            connect_error: get(&errors, "MQTTConnectError")?,
            protocol_error: get(&errors, "MQTTProtocolError")?,
            disconnected_error: get(&errors, "MQTTDisconnectedError")?,
            timeout_error: get(&errors, "MQTTTimeoutError")?,
            subscribe_error: get(&errors, "MQTTSubscribeError")?,
            publish_error: get(&errors, "MQTTPublishError")?,
            qos_exceeded_error: get(&errors, "MQTTQoSExceededError")?,
            retain_not_available_error: get(&errors, "MQTTRetainNotAvailableError")?,
            invalid_topic_error: get(&errors, "MQTTInvalidTopicError")?,
            ssl_error: get(&ssl, "SSLError")?,
            ssl_cert_verification_error: get(&ssl, "SSLCertVerificationError")?,
            connection_info: get(&types, "ConnectionInfo")?,
            connack_properties: get(&types, "ConnAckProperties")?,
            publish_properties: get(&types, "PublishProperties")?,
            unsubscribe_result: get(&types, "UnsubscribeResult")?,
            unsuback_properties: get(&types, "UnsubAckProperties")?,
            qos: [
                qos.getattr("AT_MOST_ONCE")?.unbind(),
                qos.getattr("AT_LEAST_ONCE")?.unbind(),
                qos.getattr("EXACTLY_ONCE")?.unbind(),
            ],
        })
    })
}

impl Types {
    /// The `zmqtt.QoS` member of `qos`.
    pub(crate) fn qos_member<'py>(&self, py: Python<'py>, qos: zmqtt::QoS) -> Bound<'py, PyAny> {
        let index = match qos {
            zmqtt::QoS::AtMostOnce => 0,
            zmqtt::QoS::AtLeastOnce => 1,
            zmqtt::QoS::ExactlyOnce => 2,
        };
        self.qos[index].bind(py).clone()
    }
}

/// Errors raised by the call itself (before any I/O) rather than through its
/// future: caller mistakes and what the broker's limits refuse locally.
pub(crate) fn is_validation(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidTopic(_)
            | Error::InvalidArgument(_)
            | Error::QoSExceeded { .. }
            | Error::RetainNotAvailable
            | Error::PacketTooLarge { .. }
    )
}

/// `MQTTInvalidTopicError` for a topic the engine refused.
pub(crate) fn invalid_topic(py: Python<'_>, error: &TopicError) -> PyErr {
    to_pyerr(py, &Error::InvalidTopic(error.clone()))
}

/// `MQTTInvalidTopicError(message)`.
pub(crate) fn invalid_topic_message(py: Python<'_>, message: String) -> PyErr {
    let built = types(py).and_then(|types| {
        types
            .invalid_topic_error
            .bind(py)
            .call1((message.as_str(),))
    });
    match built {
        Ok(exception) => PyErr::from_value(exception),
        Err(failure) => failure,
    }
}

/// The Python exception for `error`, by the contract's mapping.
pub(crate) fn to_pyerr(py: Python<'_>, error: &Error) -> PyErr {
    match build(py, error) {
        Ok(error) => error,
        // zmqtt._errors could not be imported or a constructor failed: say so.
        Err(failure) => {
            let fallback = PyRuntimeError::new_err(error.to_string());
            fallback.set_cause(py, Some(failure));
            fallback
        }
    }
}

fn build(py: Python<'_>, error: &Error) -> PyResult<PyErr> {
    let types = types(py)?;
    let kwargs = PyDict::new(py);
    let exception = match error {
        Error::Connect {
            return_code,
            reason,
            properties,
            ..
        } => {
            let properties = match properties {
                Some(properties) => convert::connack_properties(py, properties)?,
                None => py.None(),
            };
            kwargs.set_item("properties", properties)?;
            kwargs.set_item("reason_name", *reason)?;
            types
                .connect_error
                .bind(py)
                .call((*return_code,), Some(&kwargs))?
        }
        Error::Protocol {
            message,
            reason_code,
            ..
        } => {
            kwargs.set_item("reason_code", reason_code.map(|code| code.0))?;
            types
                .protocol_error
                .bind(py)
                .call((message.as_str(),), Some(&kwargs))?
        }
        Error::Disconnected {
            reason,
            reason_code,
        } => {
            kwargs.set_item("reason_code", reason_code.map(|code| code.0))?;
            types
                .disconnected_error
                .bind(py)
                .call((reason.as_str(),), Some(&kwargs))?
        }
        Error::Closed => types
            .disconnected_error
            .bind(py)
            .call1((error.to_string(),))?,
        Error::Timeout { .. } => types.timeout_error.bind(py).call1((error.to_string(),))?,
        Error::Subscribe {
            failures,
            reason_string,
        } => {
            let failures_dict = PyDict::new(py);
            for (filter, code) in failures {
                failures_dict.set_item(filter, *code)?;
            }
            kwargs.set_item("reason_string", reason_string.as_deref())?;
            types
                .subscribe_error
                .bind(py)
                .call((failures_dict,), Some(&kwargs))?
        }
        Error::Publish {
            reason_code,
            reason_name,
            reason_string,
        } => types.publish_error.bind(py).call1((
            *reason_code,
            *reason_name,
            reason_string.as_deref(),
        ))?,
        Error::PacketTooLarge { size, maximum } => types.publish_error.bind(py).call1((
            0x95u8,
            "Packet too large",
            format!("{size} bytes exceeds the broker's maximum packet size of {maximum} bytes"),
        ))?,
        Error::QoSExceeded { requested, maximum } => types.qos_exceeded_error.bind(py).call1((
            types.qos_member(py, *requested),
            types.qos_member(py, *maximum),
        ))?,
        Error::RetainNotAvailable => types.retain_not_available_error.bind(py).call0()?,
        Error::InvalidTopic(topic) => types
            .invalid_topic_error
            .bind(py)
            .call1((topic.to_string(),))?,
        Error::InvalidArgument(message) => return Ok(PyValueError::new_err(message.clone())),
        Error::Io(io_error) => {
            // A copy with the same kind (and so the same OSError subclass).
            return Ok(PyErr::from(io::Error::new(
                io_error.kind(),
                io_error.to_string(),
            )));
        }
        Error::Tls { message, source } => {
            let mut text = format!("TLS error: {message}");
            let (class, hint) = match source {
                Some(rustls::Error::InvalidCertificate(_)) => {
                    (&types.ssl_cert_verification_error, false)
                }
                Some(rustls::Error::AlertReceived(
                    rustls::AlertDescription::CertificateRequired,
                )) => (&types.ssl_error, true),
                _ => (
                    &types.ssl_error,
                    message.contains("requires a client certificate"),
                ),
            };
            if hint {
                text.push_str(
                    "; mutual TLS needs tls=zmqtt.TLSConfig(cert_file=..., key_file=...)",
                );
            }
            // (errno, message), as the ssl module raises them: str() is the message.
            class.bind(py).call1((SSL_ERROR_SSL, text))?
        }
        other => types.mqtt_error.bind(py).call1((other.to_string(),))?,
    };
    Ok(PyErr::from_value(exception))
}
