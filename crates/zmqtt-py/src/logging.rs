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

use log::LevelFilter;
use pyo3::Python;
use pyo3_log::{Caching, Logger, ResetHandle};

static RESET: OnceLock<ResetHandle> = OnceLock::new();

/// Installs the bridge once: zmqtt's own records from DEBUG up, other crates'
/// (rustls, …) from WARNING up.
pub(crate) fn init(py: Python<'_>) {
    if RESET.get().is_some() {
        return;
    }
    let Ok(logger) = Logger::new(py, Caching::LoggersAndLevels) else {
        return;
    };
    let installed = logger
        .filter(LevelFilter::Warn)
        .filter_target("zmqtt".to_owned(), LevelFilter::Debug)
        .install();
    if let Ok(handle) = installed {
        let _ = RESET.set(handle);
    }
}

/// Forgets the cached Python loggers and levels.
pub(crate) fn refresh() {
    if let Some(handle) = RESET.get() {
        handle.reset();
    }
}
