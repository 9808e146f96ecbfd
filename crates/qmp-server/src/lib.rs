//! A framework for serving the QEMU Monitor Protocol, and a simulated QEMU built on it.
//!
//! The framework speaks QMP as QEMU 7.2 does, byte for byte: the greeting, capabilities
//! negotiation, the order in which a request is checked and the text of every error, the
//! JSON output format (member order included), and QEMU's input quirks (single-quoted
//! strings, no newline needed, several objects per line, a 0xFF byte or control character
//! resetting the parser). You register commands with their argument types; arguments are
//! checked before your handler runs, and `query-commands` and `query-qmp-schema` are generated
//! from what you registered.
//!
//! ```
//! use qmp_server::{CommandSpec, Server, schema::Ty};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! let server = Server::builder()
//!     .command(CommandSpec::new("echo").arg("text", Ty::Str), |args| {
//!         Ok(json!({"text": args["text"]}))
//!     })
//!     .command_async(CommandSpec::new("slow-echo").arg("text", Ty::Str), |args| async move {
//!         tokio::time::sleep(std::time::Duration::from_millis(1)).await;
//!         Ok(args["text"].clone())
//!     })
//!     .build();
//!
//! // Serve one in-memory connection and talk to it.
//! let (client, conn) = tokio::io::duplex(4096);
//! tokio::spawn({ let s = server.clone(); async move { s.serve_stream(conn).await } });
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let (mut rd, mut wr) = tokio::io::split(client);
//! wr.write_all(b"{'execute': 'qmp_capabilities'}{\"execute\": \"echo\", \"arguments\": {\"text\": \"hi\"}}").await?;
//! let mut got = Vec::new();
//! while got.iter().filter(|&&b| b == b'\n').count() < 3 {
//!     let mut buf = [0u8; 1024];
//!     let n = rd.read(&mut buf).await?;
//!     got.extend_from_slice(&buf[..n]);
//! }
//! assert!(got.ends_with(b"{\"return\": {}}\r\n{\"return\": {\"text\": \"hi\"}}\r\n"));
//! # Ok(()) }
//! ```
//!
//! [`sim::Simulator`] is a simulated QEMU built on this framework (run states, block nodes
//! and jobs, devices, migration, a small human monitor), for tests and demos without QEMU;
//! `qmp sim` serves one ([`sim::run_sim_cli`]). The test suite checks both against real QEMU
//! 7.2 transcript by transcript.
//!
//! # Behaviour
//! - One task per connection owns the socket; replies to in-band commands go out in request
//!   order, in one write per batch of input. Sync handlers run on that task; async handlers
//!   run there too, one at a time per connection, while the connection keeps reading.
//! - With `oob` negotiated, `exec-oob` requests for commands declared
//!   [`allow_oob`](CommandSpec::allow_oob) run as soon as they are read, ahead of queued
//!   in-band work.
//! - [`Events::emit`] never blocks; each negotiated client receives every event, and an event
//!   emitted by a command goes out before that command's reply. A client more than
//!   [`ServerBuilder::event_capacity`] events behind loses the oldest.
//! - Input larger than [`ServerBuilder::max_message_size`] is answered with QEMU's
//!   "JSON token size limit exceeded" and dropped; memory stays bounded.
//! - Backpressure: while 1 MiB of replies and events waits to be written to a client, its
//!   connection takes no more requests, and while its output is blocked it reads no more
//!   input (QEMU's monitor stops reading too), so a client that sends without reading costs
//!   the server a bounded amount of memory, not a copy of every reply. A client that does
//!   not read its events loses the oldest instead (see above).
//! - Unix listeners from [`bind_unix`] are created with mode 0600.
//! - Unlike QEMU's monitor socket, which serves one client at a time, a listener serves many
//!   clients at once, up to [`ServerBuilder::max_connections`] (default
//!   [`DEFAULT_MAX_CONNECTIONS`]); a client over the cap is sent one QMP `GenericError` object
//!   instead of a greeting and closed.
//! - A listener keeps accepting whatever `accept()` fails with: out of file descriptors
//!   (`EMFILE`) it pauses, retries, and serves the waiting clients as soon as descriptors are
//!   freed, logging one `tracing` warning per episode and one info line when it recovers.
//! - Descriptors a client passes over a unix socket (SCM_RIGHTS; [`Server::serve_unix`],
//!   [`Server::serve_unix_monitor`], [`Server::serve_unix_stream`]) are held as QEMU's
//!   monitor holds them: the latest message's batch, until a command registered with
//!   [`ServerBuilder::command_with_context`] takes it ([`Context::take_fd`]) or the client
//!   leaves. [`ServerBuilder::on_client`] tells when clients come and go and monitors end.
//! - A handler that panics takes its connection down (the client sees a disconnect); other
//!   connections are unaffected.
//! - Where QEMU's output depends on hash-table order (an object's member order, which of
//!   several unexpected members an error names), the same order is reproduced; see [`qjson`].
#![warn(missing_docs)]

mod conn;
mod fds;
#[doc(hidden)]
pub mod fuzzing;
mod input;
mod parse;
pub mod proxy;
pub mod qjson;
pub mod replay;
pub mod schema;
mod server;
pub mod sim;

pub use fds::{ClientEvent, Context, MonitorId};
pub use qmp_proto::{ErrorClass, QmpError};
pub use server::{
    bind_unix, bind_unix_mode, Args, CommandSpec, Events, Reply, ReplyFuture, Server, ServerBuilder,
    VersionInfo, DEFAULT_MAX_CONNECTIONS,
};
