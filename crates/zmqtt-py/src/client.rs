//! `NativeClient`: one `zmqtt::Client` (3.1.1 or 5.0) behind the calls of
//! `zmqtt._client.MQTTClient`.

use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use zmqtt::{Client, ClientBuilder, ConnectionState, Error, Protocol, RetainHandling, V311, V5};

use crate::bridge;
use crate::convert::{self, Options};
use crate::errors;
use crate::logging;
use crate::message::Message;
use crate::subscription::{NativeSubscription, SubscribeSpec};

/// The client of either protocol version (the version is a type parameter in
/// Rust, a value in Python).
#[derive(Clone, Debug)]
pub(crate) enum AnyClient {
    V311(Client<V311>),
    V5(Client<V5>),
}

/// Runs `$body` with `$client` bound to the client of either version.
macro_rules! with_client {
    ($any:expr, $client:ident => $body:expr) => {
        match $any {
            AnyClient::V311($client) => $body,
            AnyClient::V5($client) => $body,
        }
    };
}

impl AnyClient {
    pub(crate) fn is_v5(&self) -> bool {
        matches!(self, AnyClient::V5(_))
    }

    fn state(&self) -> ConnectionState {
        with_client!(self, client => client.state())
    }

    fn connection_info(&self) -> Option<zmqtt::ConnectionInfo> {
        with_client!(self, client => client.connection_info())
    }
}

fn configure<V: Protocol>(
    builder: ClientBuilder<V>,
    options: &Options,
    port: u16,
) -> ClientBuilder<V> {
    let mut builder = builder
        .port(port)
        .client_id(options.client_id.clone())
        .keepalive(options.keepalive)
        .clean_session(options.clean_session)
        .reconnect(options.reconnect.clone())
        .connect_timeout(options.connect_timeout)
        .stripped_prefixes(options.stripped_prefixes.iter().cloned())
        .session_replay_buffer_size(options.session_replay_buffer_size)
        .session_replay_timeout(options.session_replay_timeout);
    if let Some(username) = &options.username {
        builder = builder.username(username.clone());
    }
    if let Some(password) = &options.password {
        builder = builder.password(password);
    }
    if let Some(will) = &options.will {
        builder = builder.will(will.clone());
    }
    if let Some(tls) = &options.tls {
        builder = builder.tls(tls.clone());
    }
    builder
}

fn build(host: &str, port: u16, options: &Options) -> zmqtt::Result<AnyClient> {
    let builder = configure(zmqtt::create_client(host), options, port);
    if !options.v5 {
        return builder.try_build().map(AnyClient::V311);
    }
    let mut builder = builder
        .v5()
        .session_expiry_interval(options.session_expiry_interval)
        .user_properties(options.user_properties.iter().cloned())
        .max_pending_requests(options.max_pending_requests);
    if let Some(receive_maximum) = options.receive_maximum {
        builder = builder.receive_maximum(receive_maximum);
    }
    if let Some(maximum_packet_size) = options.maximum_packet_size {
        builder = builder.maximum_packet_size(maximum_packet_size);
    }
    if let Some(request) = options.request_response_information {
        builder = builder.request_response_information(request);
    }
    if let Some(request) = options.request_problem_information {
        builder = builder.request_problem_information(request);
    }
    builder.try_build().map(AnyClient::V5)
}

fn requires_v5(what: &str) -> PyErr {
    PyRuntimeError::new_err(format!("{what} requires MQTT 5.0"))
}

fn none(py: Python<'_>, outcome: zmqtt::Result<()>) -> PyResult<Py<PyAny>> {
    match outcome {
        Ok(()) => Ok(py.None()),
        Err(error) => Err(errors::to_pyerr(py, &error)),
    }
}

/// One client: its options, its connection driver (a tokio task while
/// connected), its subscriptions and pending calls. Built without any I/O.
#[pyclass(frozen, module = "zmqtt._zmqtt")]
pub struct NativeClient {
    client: AnyClient,
}

impl NativeClient {
    /// The broker limits and the topic are checked by the Rust client in the
    /// first poll of the publish (see `bridge`), so they raise from the call.
    fn publish_future(
        &self,
        topic: String,
        payload: Bytes,
        qos: zmqtt::QoS,
        retain: bool,
        properties: Option<zmqtt::PublishProperties>,
    ) -> PyResult<impl std::future::Future<Output = zmqtt::Result<()>> + Send + 'static> {
        let client = self.client.clone();
        if properties.is_some() && !client.is_v5() {
            return Err(requires_v5("properties"));
        }
        Ok(async move {
            match &client {
                AnyClient::V311(client) => {
                    client.publish(topic, payload).qos(qos).retain(retain).await
                }
                AnyClient::V5(client) => {
                    let publish = client.publish(topic, payload).qos(qos).retain(retain);
                    match properties {
                        Some(properties) => publish.properties(properties).await,
                        None => publish.await,
                    }
                }
            }
        })
    }
}

#[pymethods]
impl NativeClient {
    /// Keeps host, port and options; `ValueError` for anything the engine
    /// still refuses. Starts nothing.
    #[new]
    fn new(py: Python<'_>, host: &str, port: u16, options: &Bound<'_, PyAny>) -> PyResult<Self> {
        let options = Options::read(options)?;
        let client = build(host, port, &options).map_err(|error| errors::to_pyerr(py, &error))?;
        Ok(NativeClient { client })
    }

    /// The CONNACK summary of the current connection; `None` when not connected.
    #[getter]
    fn connection_info(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.client.state() != ConnectionState::Connected {
            return Ok(py.None());
        }
        match self.client.connection_info() {
            Some(info) => convert::connection_info(py, &info),
            None => Ok(py.None()),
        }
    }

    /// Connects; resolves with the `ConnectionInfo` once CONNACK accepted it.
    fn connect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // Levels set on the Python loggers since the last connect() count.
        logging::refresh();
        let client = self.client.clone();
        bridge::future(
            py,
            async move {
                with_client!(&client, client => client.connect().await)?;
                Ok(client.connection_info())
            },
            |py, outcome| match outcome {
                Ok(Some(info)) => convert::connection_info(py, &info),
                Ok(None) => Ok(py.None()),
                Err(error) => Err(errors::to_pyerr(py, &error)),
            },
        )
    }

    /// Sends DISCONNECT and closes the socket. Never raises.
    fn disconnect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        bridge::future(
            py,
            async move {
                if let Err(error) = with_client!(&client, client => client.disconnect().await) {
                    log::debug!(target: "zmqtt::client", "disconnect(): {error}");
                }
                Ok(())
            },
            none,
        )
    }

    /// Drops the current connection as if it had been lost.
    fn reset<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        bridge::future(
            py,
            async move { with_client!(&client, client => client.reset().await) },
            none,
        )
    }

    /// Resolves when the current run stops for good: `None` after
    /// `disconnect()`, the error that ended it otherwise. Never raises.
    fn stopped<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        bridge::future(
            py,
            async move { Ok(with_client!(&client, client => client.stopped().await)) },
            |py, outcome: zmqtt::Result<Option<Error>>| match outcome {
                Ok(Some(error)) => Ok(errors::to_pyerr(py, &error).into_value(py).into_any()),
                _ => Ok(py.None()),
            },
        )
    }

    /// QoS 0 fast path: `True` when queued, `False` when the command queue is
    /// full (the caller then awaits `publish`).
    fn publish_nowait(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyString>,
        payload: &Bound<'_, PyBytes>,
        retain: bool,
        properties: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        // Borrowed: a short topic is copied inline, without an allocation.
        let topic = convert::topic_text(py, topic, "Topic name")?;
        let payload = convert::bytes_of(py, payload);
        let queued = match &self.client {
            AnyClient::V311(client) => {
                if properties.is_some() {
                    return Err(requires_v5("properties"));
                }
                client.publish(topic, payload).retain(retain).try_send()
            }
            AnyClient::V5(client) => {
                let publish = client.publish(topic, payload).retain(retain);
                match properties {
                    Some(properties) => publish
                        .properties(convert::read_publish_properties(properties)?)
                        .try_send(),
                    None => publish.try_send(),
                }
            }
        };
        queued.map_err(|error| errors::to_pyerr(py, &error))
    }

    /// Publishes at `qos`; validation errors raise at once, the outcome
    /// arrives through the future.
    fn publish<'py>(
        &self,
        py: Python<'py>,
        topic: &Bound<'_, PyString>,
        payload: &Bound<'_, PyBytes>,
        qos: u8,
        retain: bool,
        properties: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let topic = convert::topic_text(py, topic, "Topic name")?.to_owned();
        let qos = convert::qos(qos)?;
        let properties = properties
            .map(convert::read_publish_properties)
            .transpose()?;
        let payload = convert::bytes_of(py, payload);
        let publishing = self.publish_future(topic, payload, qos, retain, properties)?;
        bridge::future(py, publishing, none)
    }

    /// Sends PINGREQ; resolves with the round trip in seconds.
    fn ping<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = convert::seconds("timeout", timeout)?;
        let client = self.client.clone();
        bridge::future(
            py,
            async move {
                with_client!(&client, client => client.ping(timeout).await)
                    .map(|round_trip| round_trip.as_secs_f64())
            },
            |py, outcome| match outcome {
                Ok(seconds) => Ok(seconds.into_pyobject(py)?.into_any().unbind()),
                Err(error) => Err(errors::to_pyerr(py, &error)),
            },
        )
    }

    /// Makes a subscription without any I/O; validates every filter now.
    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        py: Python<'_>,
        filters: Vec<Bound<'_, PyString>>,
        qos: u8,
        auto_ack: bool,
        receive_buffer_size: usize,
        no_local: bool,
        retain_as_published: bool,
        retain_handling: u8,
        subscription_identifier: Option<u32>,
    ) -> PyResult<NativeSubscription> {
        if filters.is_empty() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "subscribe() needs at least one topic filter",
            ));
        }
        let filters = filters
            .iter()
            .map(|filter| {
                let filter = convert::topic_text(py, filter, "Topic filter")?;
                zmqtt_proto::topic::validate_topic_filter(filter)
                    .map_err(|error| errors::invalid_topic(py, &error))?;
                Ok(filter.to_owned())
            })
            .collect::<PyResult<Vec<String>>>()?;
        let retain_handling = RetainHandling::from_u8(retain_handling).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "retain_handling must be 0, 1 or 2, got {retain_handling}"
            ))
        })?;
        if !self.client.is_v5()
            && (no_local
                || retain_as_published
                || retain_handling != RetainHandling::SendOnSubscribe
                || subscription_identifier.is_some())
        {
            return Err(requires_v5(
                "no_local, retain_as_published, retain_handling and subscription_identifier",
            ));
        }
        let spec = SubscribeSpec {
            filters,
            qos: convert::qos(qos)?,
            auto_ack,
            receive_buffer_size,
            no_local,
            retain_as_published,
            retain_handling,
            subscription_identifier,
        };
        Ok(NativeSubscription::new(self.client.clone(), spec))
    }

    /// 5.0 request/response: resolves with the first matching reply.
    fn request<'py>(
        &self,
        py: Python<'py>,
        topic: &Bound<'_, PyString>,
        payload: &Bound<'_, PyBytes>,
        qos: u8,
        timeout: f64,
        properties: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let AnyClient::V5(client) = &self.client else {
            return Err(requires_v5("request()"));
        };
        let client = client.clone();
        let topic = convert::topic_text(py, topic, "Topic name")?.to_owned();
        let qos = convert::qos(qos)?;
        let timeout: Duration = convert::seconds("timeout", timeout)?;
        let properties = properties
            .map(convert::read_publish_properties)
            .transpose()?;
        let payload = convert::bytes_of(py, payload);
        bridge::future(
            py,
            async move {
                let request = client.request(topic, payload).qos(qos).timeout(timeout);
                match properties {
                    Some(properties) => request.properties(properties).await,
                    None => request.await,
                }
            },
            |py, outcome| match outcome {
                Ok(message) => Ok(Bound::new(py, Message::received(message, None))?
                    .into_any()
                    .unbind()),
                // The reply's timeout is asyncio's (SPEC 1.9), not MQTT's.
                Err(Error::Timeout {
                    what: "a reply",
                    after,
                }) => Err(PyTimeoutError::new_err(format!(
                    "no reply within {:.3} s",
                    after.as_secs_f64()
                ))),
                Err(error) => Err(errors::to_pyerr(py, &error)),
            },
        )
    }

    /// 5.0: sends one AUTH packet (reason 0x18); resolves once it is queued.
    fn auth<'py>(
        &self,
        py: Python<'py>,
        method: String,
        data: Option<&Bound<'_, PyBytes>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let AnyClient::V5(client) = &self.client else {
            return Err(requires_v5("auth()"));
        };
        let client = client.clone();
        let data = data.map(|data| Bytes::copy_from_slice(data.as_bytes()));
        bridge::future(py, async move { client.auth(method, data).await }, none)
    }

    fn __repr__(&self) -> String {
        format!("<NativeClient {:?}>", self.client)
    }
}
