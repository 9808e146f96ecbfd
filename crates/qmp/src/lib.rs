//! An async (tokio) client for the QEMU Monitor Protocol, with typed commands and events, raw
//! JSON when you need it, event subscriptions, fd passing, and a blocking client.
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp::{Client, EventFilter};
//!
//! # async fn demo() -> Result<(), qmp::Error> {
//! let client = Client::connect("unix:/run/qemu/vm1.qmp").await?;
//! println!("QEMU {}", client.greeting().unwrap().version.qemu);
//!
//! // Any number of calls may be in flight; each reply reaches its own caller.
//! let (a, b) = tokio::join!(
//!     client.call_raw("query-status", serde_json::Value::Null).send(),
//!     client.call_raw("query-name", serde_json::Value::Null).send(),
//! );
//! println!("{} {}", a?, b?);
//!
//! // Events: subscribe before causing them.
//! let mut stops = client.subscribe(EventFilter::name("STOP"));
//! client.call_raw("stop", serde_json::Value::Null).send().await?;
//! let stop = stops.recv().await.expect("a STOP event");
//! println!("stopped at {:?}", stop.timestamp);
//! # Ok(()) }
//! ```
//!
//! # Behaviour
//! - **Ordering**: replies are matched to calls by `id`; events reach each subscriber in the
//!   order the server sent them. An event a command causes is seen by any subscription made
//!   before the command was sent.
//! - **Cancellation**: dropping a call's future, or its timeout running out, abandons only
//!   that call; its late reply is discarded.
//! - **Slow subscribers**: each has a bounded queue; on overflow the oldest events are dropped
//!   and the next `recv` reports how many were lost. Replies are never held up.
//! - **Disconnect**: when the peer closes or dies, every pending call fails at once with
//!   [`Error::Disconnected`], and every subscription ends with [`RecvError::Closed`].
#![warn(missing_docs)]

mod address;
pub mod blocking;
mod builder;
mod call;
mod client;
pub mod commands;
mod connection;
mod error;
pub mod events;
mod fd;
pub mod ga;
mod listener;
/// The generated API: [`qmp_qapi::generated`]'s commands, events, types and registry, and
/// here the schema's facts as static data ([`generated::facts`], read by [`qapi`]).
pub mod generated {
    pub use qmp_qapi::generated::{commands, events, registry, types};
    pub mod facts;
}
pub mod qapi;
mod reply;
pub mod schema;
mod serial;
mod subscription;
pub mod tls;
mod transport;
pub mod types;
mod vsock;
mod wait;

pub use address::{Address, AddressError, IntoAddress};
pub use builder::{ClientBuilder, DEFAULT_NEGOTIATION_TIMEOUT};
pub use call::{Call, Json, RawJson, Returns, Typed};
pub use client::{decode_reply, Client};
pub use error::{Error, NegotiationStep, ProtocolFault, Result};
pub use events::{EventData, EventExt, QemuEvent};
pub use fd::{socket_kind, SocketKind};
/// The trait [`Subscription`] implements, re-exported to combine it with other streams.
pub use futures_core::Stream;
pub use listener::Listener;
/// Why a connection closed, and what it was doing when an I/O error closed it.
pub use qmp_proto::client::{CloseReason, IoStage};
/// The generated QAPI types, commands and events as a crate of their own.
pub use qmp_qapi;
pub use qmp_qapi::{Command, Empty, ReplyError};
pub use schema::{Schema, SchemaProblem};
pub use subscription::{EventFilter, RecvError, Subscription};
pub use tls::{TlsConfig, TlsConfigBuilder, TlsError};

/// The protocol core: message model, framer and encoders.
pub use qmp_proto as proto;
pub use qmp_proto::{ErrorClass, Event, Greeting, QmpError, Timestamp};
/// serde_json, as this crate uses it: for a program's own [`Command`] impls and raw calls.
pub use serde_json;
