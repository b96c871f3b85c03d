//! Rust `log` records into Python's `logging` (pyo3-log).
//!
//! The `zmqtt` crate logs with `tracing` (its `log` feature turns events into
//! `log` records when no tracing subscriber is installed), with the targets
//! `zmqtt::client` and `zmqtt::protocol`, which pyo3-log hands to the Python
//! loggers `zmqtt.client` and `zmqtt.protocol`.
//!
//! pyo3-log caches each logger and its level, so that a disabled record costs
//! a lookup and no GIL on the tokio threads. The cache is reset at every
//! `connect()`, so that levels set before connecting take effect.

use std::sync::OnceLock;

use log::{LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3_log::{Caching, Logger, ResetHandle};

use crate::shutdown;

static RESET: OnceLock<ResetHandle> = OnceLock::new();

/// pyo3-log's logger, kept away from a Python that is shutting down.
struct Guarded(Logger);

impl Log for Guarded {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !shutdown::python_gone() && self.0.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if let Some(_entry) = shutdown::enter() {
            self.0.log(record);
        }
    }

    fn flush(&self) {}
}

/// Installs the bridge once: zmqtt's own records from DEBUG up, other crates'
/// (rustls, …) from WARNING up.
pub(crate) fn init(py: Python<'_>) {
    if RESET.get().is_some() {
        return;
    }
    let Ok(logger) = Logger::new(py, Caching::LoggersAndLevels) else {
        return;
    };
    let logger = logger
        .filter(LevelFilter::Warn)
        .filter_target("zmqtt".to_owned(), LevelFilter::Debug);
    let handle = logger.reset_handle();
    if log::set_boxed_logger(Box::new(Guarded(logger))).is_ok() {
        log::set_max_level(LevelFilter::Debug);
        let _ = RESET.set(handle);
    }
}

/// Forgets the cached Python loggers and levels.
pub(crate) fn refresh() {
    if let Some(handle) = RESET.get() {
        handle.reset();
    }
}
