//! A blocking client for programs without tokio. It owns a one-worker runtime that keeps the
//! connection task running in the background, so events are received (and queued for
//! subscribers) even while the program is not calling into the client.
//!
//! ```no_run
//! # fn demo() -> Result<(), qmp::Error> {
//! let client = qmp::blocking::Client::connect("/run/qemu/vm1.qmp")?;
//! let status = client.execute_raw("query-status", serde_json::Value::Null)?;
//! println!("{status}");
//! # Ok(()) }
//! ```
//!
//! Don't call it from inside a tokio runtime: use the async [`crate::Client`] there.

use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use qmp_proto::{Event, Greeting};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::address::IntoAddress;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::subscription::{EventFilter, RecvError};
use crate::ClientBuilder;

/// A blocking handle to one QMP connection; cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
    rt: Arc<Runtime>,
}

fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("qmp-blocking")
        .enable_all()
        .build()
        .map_err(Error::Io)
}

impl Client {
    /// Connects with the default settings (see [`crate::Client::connect`]).
    pub fn connect(addr: impl IntoAddress) -> Result<Client> {
        Self::connect_with(ClientBuilder::new(), addr)
    }

    /// Connects with the builder's settings.
    pub fn connect_with(builder: ClientBuilder, addr: impl IntoAddress) -> Result<Client> {
        let rt = runtime()?;
        let addr = addr.into_address()?;
        let inner = rt.block_on(builder.connect(addr))?;
        Ok(Client { inner, rt: Arc::new(rt) })
    }

    /// Server mode: listens on `addr`, waits for one peer to connect, stops listening.
    pub fn accept_with(builder: ClientBuilder, addr: impl IntoAddress) -> Result<Client> {
        let rt = runtime()?;
        let addr = addr.into_address()?;
        let inner = rt.block_on(builder.accept(addr))?;
        Ok(Client { inner, rt: Arc::new(rt) })
    }

    /// The async handle underneath.
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// The server's greeting.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.inner.greeting()
    }

    /// True when out-of-band execution was negotiated.
    pub fn oob_enabled(&self) -> bool {
        self.inner.oob_enabled()
    }

    /// A handle whose calls time out after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client { inner: self.inner.with_timeout(timeout), rt: Arc::clone(&self.rt) }
    }

    /// Runs a typed command.
    pub fn execute<C: Command>(&self, cmd: C) -> Result<C::Output> {
        self.rt.block_on(self.inner.execute(cmd))
    }

    /// Runs a typed command out of band.
    pub fn execute_oob<C: Command>(&self, cmd: C) -> Result<C::Output> {
        self.rt.block_on(self.inner.execute_oob(cmd))
    }

    /// Runs a typed command with file descriptors attached.
    pub fn execute_with_fds<C: Command>(&self, cmd: C, fds: &[BorrowedFd<'_>]) -> Result<C::Output> {
        self.rt.block_on(self.inner.execute_with_fds(cmd, fds))
    }

    /// Runs any command by name; `args` is an object or `Value::Null`.
    pub fn execute_raw(&self, name: &str, args: Value) -> Result<Value> {
        self.rt.block_on(self.inner.execute_raw(name, args))
    }

    /// Runs any command by name out of band.
    pub fn execute_raw_oob(&self, name: &str, args: Value) -> Result<Value> {
        self.rt.block_on(self.inner.execute_raw_oob(name, args))
    }

    /// Runs any command by name with file descriptors attached.
    pub fn execute_raw_with_fds(&self, name: &str, args: Value, fds: &[BorrowedFd<'_>]) -> Result<Value> {
        self.rt.block_on(self.inner.execute_raw_with_fds(name, args, fds))
    }

    /// Subscribes to the events `filter` selects, from now on.
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        Subscription { inner: self.inner.subscribe(filter), rt: Arc::clone(&self.rt) }
    }

    /// Waits up to `timeout` for the next event `filter` selects, from now on.
    pub fn wait_for(&self, filter: EventFilter, timeout: Duration) -> Result<Arc<Event>> {
        self.rt.block_on(self.inner.wait_for(filter, timeout))
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// A blocking event subscription.
#[derive(Debug)]
pub struct Subscription {
    inner: crate::Subscription,
    rt: Arc<Runtime>,
}

impl Subscription {
    /// The next event, waiting as long as it takes (see [`crate::Subscription::recv`]).
    pub fn recv(&mut self) -> std::result::Result<Arc<Event>, RecvError> {
        self.rt.block_on(self.inner.recv())
    }

    /// The next event within `timeout`, skipping lost-event notices.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Arc<Event>> {
        self.rt.block_on(self.inner.next_within(timeout))
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<std::result::Result<Arc<Event>, RecvError>> {
        self.inner.try_recv()
    }
}
