//! The protocol version as a type parameter: [`V311`] and [`V5`].
//!
//! `Client<V5>` has the MQTT 5.0 operations (`auth`, `request`, publish
//! properties, 5.0 subscribe options); `Client<V311>` does not, so misuse is a
//! compile error rather than a run-time one.

use std::fmt::Debug;

use zmqtt_proto::ProtocolVersion;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::V311 {}
    impl Sealed for super::V5 {}
}

/// A protocol version marker: [`V311`] or [`V5`]. Sealed: no other types.
pub trait Protocol: sealed::Sealed + Debug + Clone + Copy + Send + Sync + 'static {
    /// The protocol revision this marker stands for.
    const VERSION: ProtocolVersion;
}

/// MQTT 3.1.1 (protocol level 4), the default of [`create_client`](crate::create_client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct V311;

/// MQTT 5.0 (protocol level 5), chosen with [`ClientBuilder::v5`](crate::ClientBuilder::v5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct V5;

impl Protocol for V311 {
    const VERSION: ProtocolVersion = ProtocolVersion::V311;
}

impl Protocol for V5 {
    const VERSION: ProtocolVersion = ProtocolVersion::V5;
}
