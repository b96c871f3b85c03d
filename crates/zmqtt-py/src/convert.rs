//! Conversions between the dataclasses of `zmqtt._types` / `zmqtt._options`
//! and the Rust types of `zmqtt`. Values arrive validated by the Python layer;
//! what still does not fit raises `ValueError` / `TypeError` / `OverflowError`.

use std::time::Duration;

use bytes::Bytes;
use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};
use zmqtt::{
    ConnAckProperties, PublishProperties, QoS, ReconnectConfig, TlsConfig, TlsVersion, Will,
    WillProperties,
};

use crate::errors::{self, types};

/// Payloads from this size on are copied with the GIL released.
pub(crate) const LARGE_PAYLOAD: usize = 64 * 1024;

fn attr<'py, T: FromPyObjectOwned<'py>>(object: &Bound<'py, PyAny>, name: &str) -> PyResult<T> {
    object.getattr(name)?.extract::<T>().map_err(Into::into)
}

/// `bytes` as [`Bytes`] (copied; large ones without holding the GIL).
pub(crate) fn bytes_of(py: Python<'_>, data: &Bound<'_, PyBytes>) -> Bytes {
    let slice = data.as_bytes();
    if slice.len() >= LARGE_PAYLOAD {
        py.detach(|| Bytes::copy_from_slice(slice))
    } else {
        Bytes::copy_from_slice(slice)
    }
}

/// An instance of the Python class `class` made from keyword arguments
/// (the dataclasses of `zmqtt._types`).
fn instance(py: Python<'_>, class: &Py<PyAny>, kwargs: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
    Ok(class.bind(py).call((), Some(kwargs))?.unbind())
}

fn optional_bytes(object: &Bound<'_, PyAny>, name: &str) -> PyResult<Option<Bytes>> {
    let value = object.getattr(name)?;
    if value.is_none() {
        return Ok(None);
    }
    let data = value.cast::<PyBytes>()?;
    Ok(Some(Bytes::copy_from_slice(data.as_bytes())))
}

/// A topic name or filter as UTF-8; a `str` that has none (lone surrogates)
/// is an invalid topic (`MQTTInvalidTopicError`), as SPEC 1.4 says.
pub(crate) fn topic_text<'a>(
    py: Python<'_>,
    text: &'a Bound<'_, PyString>,
    kind: &str,
) -> PyResult<&'a str> {
    text.to_str().map_err(|_| {
        let shown = text
            .repr()
            .map_or_else(|_| String::from("?"), |repr| repr.to_string());
        errors::invalid_topic_message(py, format!("{kind} is not valid UTF-8: {shown}"))
    })
}

/// A number of seconds as a [`Duration`].
pub(crate) fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a finite, non-negative number of seconds"
        ))
    })
}

/// An `int` (or `QoS` member) as a [`QoS`].
pub(crate) fn qos(value: u8) -> PyResult<QoS> {
    QoS::from_u8(value)
        .ok_or_else(|| PyValueError::new_err(format!("qos must be 0, 1 or 2, got {value}")))
}

/// The options of a client, read from `zmqtt._options.ClientOptions`.
pub(crate) struct Options {
    pub v5: bool,
    pub client_id: String,
    pub keepalive: u16,
    pub clean_session: bool,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub will: Option<Will>,
    pub tls: Option<TlsConfig>,
    pub reconnect: ReconnectConfig,
    pub connect_timeout: Duration,
    pub session_expiry_interval: u32,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub user_properties: Vec<(String, String)>,
    pub request_response_information: Option<bool>,
    pub request_problem_information: Option<bool>,
    pub stripped_prefixes: Vec<String>,
    pub max_pending_requests: usize,
    pub session_replay_buffer_size: usize,
    pub session_replay_timeout: Duration,
}

impl Options {
    pub(crate) fn read(options: &Bound<'_, PyAny>) -> PyResult<Options> {
        let version: String = attr(options, "version")?;
        let v5 = match version.as_str() {
            "5.0" => true,
            "3.1.1" => false,
            other => {
                return Err(PyValueError::new_err(format!(
                    "version must be \"3.1.1\" or \"5.0\", got {other:?}"
                )))
            }
        };
        let will = options.getattr("will")?;
        let tls = options.getattr("tls")?;
        Ok(Options {
            v5,
            client_id: attr(options, "client_id")?,
            keepalive: attr(options, "keepalive")?,
            clean_session: attr(options, "clean_session")?,
            username: attr(options, "username")?,
            password: optional_bytes(options, "password")?,
            will: if will.is_none() {
                None
            } else {
                Some(read_will(&will)?)
            },
            tls: if tls.is_none() {
                None
            } else {
                Some(read_tls(&tls)?)
            },
            reconnect: read_reconnect(&options.getattr("reconnect")?)?,
            connect_timeout: seconds(
                "mqtt_connect_timeout",
                attr(options, "mqtt_connect_timeout")?,
            )?,
            session_expiry_interval: attr(options, "session_expiry_interval")?,
            receive_maximum: attr(options, "receive_maximum")?,
            maximum_packet_size: attr(options, "maximum_packet_size")?,
            user_properties: attr(options, "user_properties")?,
            request_response_information: attr(options, "request_response_information")?,
            request_problem_information: attr(options, "request_problem_information")?,
            stripped_prefixes: attr(options, "stripped_prefixes")?,
            max_pending_requests: attr(options, "max_pending_requests")?,
            session_replay_buffer_size: attr(options, "session_replay_buffer_size")?,
            session_replay_timeout: seconds(
                "session_replay_timeout",
                attr(options, "session_replay_timeout")?,
            )?,
        })
    }
}

fn read_will(will: &Bound<'_, PyAny>) -> PyResult<Will> {
    let properties = will.getattr("properties")?;
    Ok(Will {
        topic: attr(will, "topic")?,
        payload: optional_bytes(will, "payload")?.unwrap_or_default(),
        qos: qos(attr(will, "qos")?)?,
        retain: attr(will, "retain")?,
        properties: if properties.is_none() {
            None
        } else {
            Some(WillProperties {
                will_delay_interval: attr(&properties, "will_delay_interval")?,
                payload_format_indicator: attr(&properties, "payload_format_indicator")?,
                message_expiry_interval: attr(&properties, "message_expiry_interval")?,
                content_type: attr(&properties, "content_type")?,
                response_topic: attr(&properties, "response_topic")?,
                correlation_data: optional_bytes(&properties, "correlation_data")?,
                user_properties: attr(&properties, "user_properties")?,
            })
        },
    })
}

fn read_tls(tls: &Bound<'_, PyAny>) -> PyResult<TlsConfig> {
    let min_version: String = attr(tls, "min_version")?;
    let alpn: Vec<Vec<u8>> = tls
        .getattr("alpn")?
        .try_iter()?
        .map(|protocol| Ok(protocol?.cast::<PyBytes>()?.as_bytes().to_vec()))
        .collect::<PyResult<_>>()?;
    let ca_pem = optional_bytes(tls, "ca_pem")?.map(|pem| pem.to_vec());
    let verify: bool = attr(tls, "verify_certificates")?;
    let check_hostname: bool = attr(tls, "check_hostname")?;
    Ok(TlsConfig {
        ca_file: attr::<Option<String>>(tls, "ca_file")?.map(Into::into),
        ca_pem,
        cert_file: attr::<Option<String>>(tls, "cert_file")?.map(Into::into),
        key_file: attr::<Option<String>>(tls, "key_file")?.map(Into::into),
        server_name: attr(tls, "server_name")?,
        alpn,
        use_system_roots: attr(tls, "use_system_roots")?,
        min_version: match min_version.as_str() {
            "1.3" => TlsVersion::Tls1_3,
            "1.2" => TlsVersion::Tls1_2,
            other => {
                return Err(PyValueError::new_err(format!(
                    "TLS min_version must be \"1.2\" or \"1.3\", got {other:?}"
                )))
            }
        },
        danger_accept_invalid_certs: !verify,
        danger_accept_invalid_hostnames: !verify || !check_hostname,
    })
}

fn read_reconnect(reconnect: &Bound<'_, PyAny>) -> PyResult<ReconnectConfig> {
    Ok(ReconnectConfig {
        enabled: attr(reconnect, "enabled")?,
        initial_delay: seconds("initial_delay", attr(reconnect, "initial_delay")?)?,
        max_delay: seconds("max_delay", attr(reconnect, "max_delay")?)?,
        backoff_factor: attr(reconnect, "backoff_factor")?,
        max_attempts: attr(reconnect, "max_attempts")?,
    })
}

/// A `zmqtt.PublishProperties` to send (`subscription_identifier` is refused
/// by the Python layer: only brokers set it).
pub(crate) fn read_publish_properties(
    properties: &Bound<'_, PyAny>,
) -> PyResult<PublishProperties> {
    let identifier: Option<u32> = attr(properties, "subscription_identifier")?;
    Ok(PublishProperties {
        payload_format_indicator: attr(properties, "payload_format_indicator")?,
        message_expiry_interval: attr(properties, "message_expiry_interval")?,
        topic_alias: attr(properties, "topic_alias")?,
        response_topic: attr(properties, "response_topic")?,
        correlation_data: optional_bytes(properties, "correlation_data")?,
        user_properties: attr(properties, "user_properties")?,
        subscription_identifiers: identifier.into_iter().collect(),
        content_type: attr(properties, "content_type")?,
    })
}

// ------------------------------------------------------------------ to Python

fn user_properties<'py>(
    py: Python<'py>,
    pairs: &[(String, String)],
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
}

fn optional_pybytes<'py>(py: Python<'py>, data: &Option<Bytes>) -> Option<Bound<'py, PyBytes>> {
    data.as_ref().map(|data| PyBytes::new(py, data))
}

/// `zmqtt.ConnAckProperties`.
pub(crate) fn connack_properties(
    py: Python<'_>,
    properties: &ConnAckProperties,
) -> PyResult<Py<PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item(
        "session_expiry_interval",
        properties.session_expiry_interval,
    )?;
    kwargs.set_item("receive_maximum", properties.receive_maximum)?;
    kwargs.set_item("maximum_qos", properties.maximum_qos.map(|qos| qos as u8))?;
    kwargs.set_item("retain_available", properties.retain_available)?;
    kwargs.set_item("maximum_packet_size", properties.maximum_packet_size)?;
    kwargs.set_item(
        "assigned_client_identifier",
        properties.assigned_client_identifier.as_deref(),
    )?;
    kwargs.set_item("topic_alias_maximum", properties.topic_alias_maximum)?;
    kwargs.set_item("reason_string", properties.reason_string.as_deref())?;
    kwargs.set_item(
        "wildcard_subscription_available",
        properties.wildcard_subscription_available,
    )?;
    kwargs.set_item(
        "subscription_identifier_available",
        properties.subscription_identifiers_available,
    )?;
    kwargs.set_item(
        "shared_subscription_available",
        properties.shared_subscription_available,
    )?;
    kwargs.set_item("server_keep_alive", properties.server_keep_alive)?;
    kwargs.set_item(
        "response_information",
        properties.response_information.as_deref(),
    )?;
    kwargs.set_item("server_reference", properties.server_reference.as_deref())?;
    kwargs.set_item(
        "authentication_method",
        properties.authentication_method.as_deref(),
    )?;
    kwargs.set_item(
        "authentication_data",
        optional_pybytes(py, &properties.authentication_data),
    )?;
    kwargs.set_item(
        "user_properties",
        user_properties(py, &properties.user_properties)?,
    )?;
    instance(py, &types(py)?.connack_properties, &kwargs)
}

/// `zmqtt.ConnectionInfo`.
pub(crate) fn connection_info(py: Python<'_>, info: &zmqtt::ConnectionInfo) -> PyResult<Py<PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("connection_id", info.connection_id)?;
    kwargs.set_item("session_present", info.session_present)?;
    kwargs.set_item("return_code", info.return_code.0)?;
    let properties = match &info.properties {
        Some(properties) => connack_properties(py, properties)?,
        None => py.None(),
    };
    kwargs.set_item("properties", properties)?;
    kwargs.set_item("effective_client_id", info.effective_client_id.as_str())?;
    kwargs.set_item("effective_keepalive", info.effective_keepalive)?;
    kwargs.set_item(
        "effective_session_expiry_interval",
        info.effective_session_expiry_interval,
    )?;
    instance(py, &types(py)?.connection_info, &kwargs)
}

/// `zmqtt.PublishProperties` of a received message; `subscription_identifier`
/// is `routed_by` when the message carries it, else its first identifier.
pub(crate) fn publish_properties(
    py: Python<'_>,
    properties: &PublishProperties,
    routed_by: Option<u32>,
) -> PyResult<Py<PyAny>> {
    let identifiers = &properties.subscription_identifiers;
    let identifier = routed_by
        .filter(|id| identifiers.contains(id))
        .or_else(|| identifiers.first().copied());
    let kwargs = PyDict::new(py);
    kwargs.set_item(
        "payload_format_indicator",
        properties.payload_format_indicator,
    )?;
    kwargs.set_item(
        "message_expiry_interval",
        properties.message_expiry_interval,
    )?;
    kwargs.set_item("topic_alias", properties.topic_alias)?;
    kwargs.set_item("response_topic", properties.response_topic.as_deref())?;
    kwargs.set_item(
        "correlation_data",
        optional_pybytes(py, &properties.correlation_data),
    )?;
    kwargs.set_item("subscription_identifier", identifier)?;
    kwargs.set_item("content_type", properties.content_type.as_deref())?;
    kwargs.set_item(
        "user_properties",
        user_properties(py, &properties.user_properties)?,
    )?;
    instance(py, &types(py)?.publish_properties, &kwargs)
}

/// `zmqtt.UnsubscribeResult`, or `None` when no UNSUBSCRIBE was sent (every
/// filter is still held by another subscription).
pub(crate) fn unsubscribe_result(
    py: Python<'_>,
    result: &zmqtt::UnsubscribeResult,
    v5: bool,
) -> PyResult<Py<PyAny>> {
    if result.topic_filters.is_empty() {
        return Ok(py.None());
    }
    let types = types(py)?;
    let properties = if v5 {
        let kwargs = PyDict::new(py);
        kwargs.set_item("reason_string", result.properties.reason_string.as_deref())?;
        kwargs.set_item(
            "user_properties",
            user_properties(py, &result.properties.user_properties)?,
        )?;
        instance(py, &types.unsuback_properties, &kwargs)?
    } else {
        py.None()
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("topic_filters", PyTuple::new(py, &result.topic_filters)?)?;
    kwargs.set_item(
        "reason_codes",
        PyTuple::new(py, result.reason_codes.iter().map(|code| code.0))?,
    )?;
    kwargs.set_item("properties", properties)?;
    instance(py, &types.unsubscribe_result, &kwargs)
}
