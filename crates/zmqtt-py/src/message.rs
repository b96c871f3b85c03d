//! `Message`: a received PUBLISH, immutable. Its fields become Python objects
//! only when read (and are kept then), so a batch of messages crosses into
//! Python as cheap wrappers around the Rust values.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString};

use crate::convert::{self, LARGE_PAYLOAD};
use crate::errors::{self, types};

// Most messages are received ones: boxing those would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Source {
    /// From the broker; `routed_by` is the subscription identifier of the
    /// subscription that received it, if it has one.
    Received {
        message: zmqtt::Message,
        routed_by: Option<u32>,
    },
    /// Made by the application: the Python values are in the caches.
    Local { qos: zmqtt::QoS, retain: bool },
}

/// A received PUBLISH (immutable). Also constructible by applications (e.g. in
/// tests); such a message's `ack()` does nothing.
#[pyclass(frozen, module = "zmqtt._zmqtt")]
pub struct Message {
    source: Source,
    topic: PyOnceLock<Py<PyString>>,
    payload: PyOnceLock<Py<PyBytes>>,
    properties: PyOnceLock<Py<PyAny>>,
}

impl Message {
    /// Wraps a message handed out by the client.
    pub(crate) fn received(message: zmqtt::Message, routed_by: Option<u32>) -> Message {
        Message {
            source: Source::Received { message, routed_by },
            topic: PyOnceLock::new(),
            payload: PyOnceLock::new(),
            properties: PyOnceLock::new(),
        }
    }

    fn payload_len(&self, py: Python<'_>) -> usize {
        match &self.source {
            Source::Received { message, .. } => message.payload.len(),
            Source::Local { .. } => self
                .payload
                .get(py)
                .map_or(0, |payload| payload.bind(py).as_bytes().len()),
        }
    }
}

#[pymethods]
impl Message {
    /// Defaults: `qos=QoS.AT_MOST_ONCE`, `retain=False`, `properties=None`.
    #[new]
    #[pyo3(
        signature = (topic, payload, qos = None, retain = false, properties = None),
        text_signature = "(topic, payload, qos=..., retain=False, properties=None)"
    )]
    fn new(
        py: Python<'_>,
        topic: Bound<'_, PyString>,
        payload: Bound<'_, PyBytes>,
        qos: Option<u8>,
        retain: bool,
        properties: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Message> {
        let qos = match qos {
            None => zmqtt::QoS::AtMostOnce,
            Some(value) => zmqtt::QoS::from_u8(value).ok_or_else(|| {
                PyValueError::new_err(format!("qos must be 0, 1 or 2, got {value}"))
            })?,
        };
        let message = Message {
            source: Source::Local { qos, retain },
            topic: PyOnceLock::new(),
            payload: PyOnceLock::new(),
            properties: PyOnceLock::new(),
        };
        let _ = message.topic.set(py, topic.unbind());
        let _ = message.payload.set(py, payload.unbind());
        let properties = properties.map_or_else(|| py.None(), Bound::unbind);
        let _ = message.properties.set(py, properties);
        Ok(message)
    }

    /// The topic it was published to (aliases resolved).
    #[getter]
    fn topic(&self, py: Python<'_>) -> Py<PyString> {
        self.topic
            .get_or_init(py, || {
                let text = match &self.source {
                    Source::Received { message, .. } => message.topic.as_str(),
                    Source::Local { .. } => "",
                };
                PyString::new(py, text).unbind()
            })
            .clone_ref(py)
    }

    /// The payload.
    #[getter]
    fn payload(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let payload = self
            .payload
            .get_or_try_init(py, || -> PyResult<Py<PyBytes>> {
                let data: &[u8] = match &self.source {
                    Source::Received { message, .. } => &message.payload,
                    Source::Local { .. } => &[],
                };
                if data.len() < LARGE_PAYLOAD {
                    return Ok(PyBytes::new(py, data).unbind());
                }
                // The new object is nobody else's yet: fill it without the GIL.
                let bytes = PyBytes::new_with(py, data.len(), |buffer| {
                    py.detach(|| buffer.copy_from_slice(data));
                    Ok(())
                })?;
                Ok(bytes.unbind())
            })?;
        Ok(payload.clone_ref(py))
    }

    /// The QoS it was delivered with (a `zmqtt.QoS` member).
    #[getter]
    fn qos<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let qos = match &self.source {
            Source::Received { message, .. } => message.qos,
            Source::Local { qos, .. } => *qos,
        };
        Ok(types(py)?.qos_member(py, qos))
    }

    /// The retain flag as delivered.
    #[getter]
    fn retain(&self) -> bool {
        match &self.source {
            Source::Received { message, .. } => message.retain,
            Source::Local { retain, .. } => *retain,
        }
    }

    /// 5.0 properties (a `PublishProperties`, possibly empty); `None` on 3.1.1.
    #[getter]
    fn properties(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let properties = self.properties.get_or_try_init(py, || match &self.source {
            Source::Received { message, routed_by } => match &message.properties {
                Some(properties) => convert::publish_properties(py, properties, *routed_by),
                None => Ok(py.None()),
            },
            Source::Local { .. } => Ok(py.None()),
        })?;
        Ok(properties.clone_ref(py))
    }

    /// Acknowledges it (PUBACK for QoS 1, PUBREC for QoS 2), in the order the
    /// spec requires. Idempotent; does nothing with `auto_ack=True`, for QoS 0
    /// and for messages made by applications.
    async fn ack(&self) -> PyResult<()> {
        if let Source::Received { message, .. } = &self.source {
            if let Err(error) = message.ack().await {
                return Err(Python::attach(|py| errors::to_pyerr(py, &error)));
            }
        }
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let topic = self.topic(py).bind(py).repr()?.to_string();
        let qos = match &self.source {
            Source::Received { message, .. } => message.qos as u8,
            Source::Local { qos, .. } => *qos as u8,
        };
        let retain = if self.retain() { "True" } else { "False" };
        Ok(format!(
            "<Message topic={topic} qos={qos} retain={retain} payload=<{} bytes>>",
            self.payload_len(py)
        ))
    }
}
