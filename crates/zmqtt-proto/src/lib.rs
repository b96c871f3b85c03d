//! `zmqtt-proto`: the sans-IO MQTT 3.1.1 / 5.0 engine behind zmqtt.
//!
//! Nothing in this crate opens a socket, spawns a task or reads a clock: bytes
//! and the current time go in, bytes to send, events and the next deadline come
//! out. The drivers (the tokio client, the Python package) only move bytes.
//!
//! - [`packet`]: the data model of every control packet.
//! - [`reason`]: reason codes with their spec names.
//! - [`codec`]: strict encoder and decoder for both protocol versions.
//! - [`topic`]: topic name / filter validation, matching, routing index.
//! - [`session`]: the client session state machine.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod codec;
pub mod packet;
pub mod reason;
pub mod session;
pub mod topic;

pub use packet::*;
pub use reason::ReasonCode;
