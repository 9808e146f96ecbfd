//! One way to make a call on either client: [`Client::call`](crate::Client::call) or
//! [`call_raw`](crate::Client::call_raw) make a [`Call`], whose options (`oob`, `fds`,
//! `timeout`, `raw_json`) are set by chaining, and `send` runs it (`.send().await` on the
//! async client, `.send()` on the blocking one). `execute(cmd)` stays the typed common case.
//!
//! `send` is an `async fn` rather than the call being awaited itself (`IntoFuture`): its
//! future could only be named boxed, an allocation per call.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use qmp_proto::{RawValue, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::Command;

/// A call being made: a command (typed or by name), its options, and how its return is
/// decoded (`R`: [`Typed`], [`Json`] or [`RawJson`]). `C` is the client it is made on.
///
/// ```no_run
/// # async fn demo(client: qmp::Client, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), qmp::Error> {
/// use std::time::Duration;
/// use qmp::commands::{Getfd, QueryStatus};
/// use serde_json::json;
///
/// let status = client.execute(QueryStatus {}).await?;                      // typed, common case
/// let status = client.call(QueryStatus {}).timeout(Duration::from_secs(5)).send().await?;
/// let name = client.call_raw("query-name", json!({})).send().await?;       // serde_json::Value
/// client.call(Getfd::new("fd0")).fds(&[fd]).send().await?;                 // SCM_RIGHTS
/// client.call_raw("yank", json!({"instances": []})).oob().send().await?;   // exec-oob
/// let raw = client.call_raw("query-version", ()).raw_json().send().await?; // Box<RawValue>
/// # Ok(()) }
/// ```
#[must_use = "a call does nothing until it is sent"]
pub struct Call<'a, C, A, R> {
    pub(crate) client: &'a C,
    pub(crate) name: &'a str,
    pub(crate) args: A,
    pub(crate) oob: bool,
    pub(crate) fds: &'a [BorrowedFd<'a>],
    /// `None`: the client's own timeout.
    pub(crate) timeout: Option<Option<Duration>>,
    pub(crate) returns: PhantomData<fn() -> R>,
}

impl<'a, C, A, R> Call<'a, C, A, R> {
    pub(crate) fn new(client: &'a C, name: &'a str, args: A) -> Self {
        Call { client, name, args, oob: false, fds: &[], timeout: None, returns: PhantomData }
    }

    /// Runs the command out of band (`exec-oob`): the command must allow it and oob must have
    /// been negotiated, else the call fails with [`Error::Unsupported`] before sending.
    pub fn oob(mut self) -> Self {
        self.oob = true;
        self
    }

    /// Passes file descriptors with the request (SCM_RIGHTS; unix sockets only), as `getfd`
    /// and `add-fd` need.
    pub fn fds(mut self, fds: &'a [BorrowedFd<'a>]) -> Self {
        self.fds = fds;
        self
    }

    /// Bounds this call's wait for its reply (instead of the client's timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(Some(timeout));
        self
    }

    /// Waits as long as it takes (instead of the client's timeout).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = Some(None);
        self
    }

    /// Returns the `return` member as raw JSON, undecoded.
    pub fn raw_json(self) -> Call<'a, C, A, RawJson> {
        let Call { client, name, args, oob, fds, timeout, .. } = self;
        Call { client, name, args, oob, fds, timeout, returns: PhantomData }
    }

    /// The timeout in force: this call's, else the client's.
    pub(crate) fn timeout_or(&self, client: Option<Duration>) -> Option<Duration> {
        self.timeout.unwrap_or(client)
    }
}

/// How a call's return is decoded: from a reply's frame (QEMU's shape, one pass) or from a
/// parsed reply (any other shape).
pub trait Returns {
    /// What the call returns.
    type Output;
    /// Decodes a reply in QEMU's shape, for the command `name`.
    fn from_frame(name: &str, frame: &[u8]) -> Result<Self::Output>;
    /// Decodes a parsed reply, for the command `name`.
    fn from_parsed(name: &str, reply: Response) -> Result<Self::Output>;
}

/// A typed command's output ([`Command::Output`]), decoded by the command's own decoder.
pub struct Typed<T>(PhantomData<fn() -> T>);
/// The return as a [`serde_json::Value`].
pub struct Json;
/// The return as raw JSON ([`RawValue`]), undecoded.
pub struct RawJson;

impl<T: Command> Returns for Typed<T> {
    type Output = T::Output;
    fn from_frame(_: &str, frame: &[u8]) -> Result<T::Output> {
        Ok(T::decode_reply(frame)?)
    }
    fn from_parsed(name: &str, reply: Response) -> Result<T::Output> {
        decode_parsed(name, reply)
    }
}

impl Returns for Json {
    type Output = Value;
    fn from_frame(name: &str, frame: &[u8]) -> Result<Value> {
        crate::decode_reply(name, frame)
    }
    fn from_parsed(name: &str, reply: Response) -> Result<Value> {
        decode_parsed(name, reply)
    }
}

impl Returns for RawJson {
    type Output = Box<RawValue>;
    fn from_frame(name: &str, frame: &[u8]) -> Result<Box<RawValue>> {
        crate::decode_reply(name, frame)
    }
    fn from_parsed(_: &str, reply: Response) -> Result<Box<RawValue>> {
        reply.result.map_err(Error::Qmp)
    }
}

fn decode_parsed<T: DeserializeOwned>(name: &str, reply: Response) -> Result<T> {
    let raw = reply.result.map_err(Error::Qmp)?;
    serde_json::from_str(raw.get())
        .map_err(|source| Error::Json { context: format!("cannot decode the return of {name}"), source })
}
