//! The native module `zmqtt._zmqtt`: the Rust client of the `zmqtt` crate
//! behind the contract of `python/zmqtt/_zmqtt.pyi`.
//!
//! This layer converts types and maps errors; the protocol lives in the
//! `zmqtt` and `zmqtt-proto` crates. Its rules (DESIGN.md):
//!
//! - one shared multi-thread tokio runtime runs every client's driver task;
//! - every call arrives on the event loop's thread with the GIL held and
//!   returns without blocking it: fast paths (`publish_nowait`,
//!   `try_recv_batch`, `topic_matches`) finish synchronously, everything else
//!   returns an `asyncio.Future` (see [`bridge`]);
//! - no Python code runs on a tokio thread: results are converted to Python
//!   objects on the loop's thread, in the callback that resolves the future;
//! - Rust logging (`log` records of the `tracing` events of `zmqtt`) reaches
//!   the Python loggers `zmqtt.client` / `zmqtt.protocol` through pyo3-log.

#![forbid(unsafe_code)]

mod bridge;
mod client;
mod convert;
mod errors;
mod logging;
mod message;
mod shutdown;
mod subscription;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyString;

pub use client::NativeClient;
pub use message::Message;
pub use subscription::NativeSubscription;

/// Whether `topic` matches `topic_filter` by the client's routing rule
/// (SPEC 1.7). Raises `MQTTInvalidTopicError` for an invalid filter.
#[pyfunction]
fn topic_matches(
    py: Python<'_>,
    topic_filter: &Bound<'_, PyString>,
    topic: &Bound<'_, PyString>,
    stripped_prefixes: Vec<PyBackedStr>,
) -> PyResult<bool> {
    let topic_filter = convert::topic_text(py, topic_filter, "Topic filter")?;
    zmqtt_proto::topic::validate_topic_filter(topic_filter)
        .map_err(|error| errors::invalid_topic(py, &error))?;
    // A topic that is no UTF-8 is no valid topic: nothing matches it.
    let Ok(topic) = topic.to_str() else {
        return Ok(false);
    };
    Ok(zmqtt::topic_matches(
        topic_filter,
        topic,
        &stripped_prefixes,
    ))
}

/// Raises `MQTTInvalidTopicError` unless `topic` is a valid topic name.
#[pyfunction]
fn validate_topic_name(py: Python<'_>, topic: &Bound<'_, PyString>) -> PyResult<()> {
    let topic = convert::topic_text(py, topic, "Topic name")?;
    zmqtt_proto::topic::validate_topic_name(topic)
        .map_err(|error| errors::invalid_topic(py, &error))
}

/// Raises `MQTTInvalidTopicError` unless `topic_filter` is a valid topic filter.
#[pyfunction]
fn validate_topic_filter(py: Python<'_>, topic_filter: &Bound<'_, PyString>) -> PyResult<()> {
    let topic_filter = convert::topic_text(py, topic_filter, "Topic filter")?;
    zmqtt_proto::topic::validate_topic_filter(topic_filter)
        .map_err(|error| errors::invalid_topic(py, &error))
}

/// The module `zmqtt._zmqtt`.
#[pymodule]
fn _zmqtt(module: &Bound<'_, PyModule>) -> PyResult<()> {
    bridge::init_runtime()?;
    shutdown::install(module.py())?;
    logging::init(module.py());
    module.add_class::<NativeClient>()?;
    module.add_class::<NativeSubscription>()?;
    module.add_class::<Message>()?;
    module.add_function(wrap_pyfunction!(topic_matches, module)?)?;
    module.add_function(wrap_pyfunction!(validate_topic_name, module)?)?;
    module.add_function(wrap_pyfunction!(validate_topic_filter, module)?)?;
    // The stub (`_zmqtt.pyi`) is the module's interface; it has no `__all__`.
    module.delattr("__all__")?;
    Ok(())
}
