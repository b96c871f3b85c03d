//! Everything that touches the network: transport, the driver task, reconnects.

pub(crate) mod command;
pub(crate) mod driver;
pub(crate) mod mapping;
pub(crate) mod queue;
pub mod reconnect;
pub(crate) mod transport;
