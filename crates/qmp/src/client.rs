//! The client handle, its builder, and the listener for server mode.

use std::future::Future;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use qmp_proto::client::CloseReason;
use qmp_proto::{Event, Greeting};
use serde::Serialize;

use crate::builder::ClientBuilder;
use tokio::sync::{oneshot, Notify};

use crate::address::IntoAddress;
use crate::call::{Call, Json, Returns, Typed};
use crate::commands::QueryQmpSchema;
use crate::connection::{Answer, AnswerRx, Outbox};
use crate::error::{Error, Result};
use crate::schema::Schema;
use crate::subscription::{CloseSlot, EventFilter, Subscriber, Subscription};
use crate::Command;

/// State every handle of one connection shares.
pub(crate) struct Shared {
    pub(crate) outbox: Mutex<Outbox>,
    /// Wakes the connection task: the outbox went from empty to not, or the handles are gone.
    pub(crate) wake: Notify,
    /// Set when subscribers wait in the outbox, so the task takes them before reading on.
    pub(crate) new_subscribers: AtomicBool,
    /// Set when the last client handle is dropped.
    pub(crate) clients_gone: AtomicBool,
    /// Set by the connection task when the greeting comes.
    pub(crate) greeting: OnceLock<Greeting>,
    pub(crate) oob: AtomicBool,
    pub(crate) fd_passing: bool,
    pub(crate) event_queue: usize,
    /// Why the connection closed: the core's reason, published once by the task (or by
    /// [`Shared::lock_outbox`] when a request's encoding panicked).
    pub(crate) closed: CloseSlot,
    pub(crate) closed_flag: AtomicBool,
    pub(crate) closed_notify: Notify,
    /// `query-qmp-schema`, fetched by the first [`Client::schema`] and kept.
    pub(crate) schema: tokio::sync::OnceCell<Arc<Schema>>,
    /// [`ClientBuilder::check_arguments`].
    pub(crate) check_arguments: bool,
    /// The core's count of inputs passed over ([`qmp_proto::client::ClientCore::skipped`]).
    pub(crate) skipped: AtomicU64,
}

impl Shared {
    /// The outbox. A panic while it was held (a caller's `Serialize` impl, mid-request) may
    /// have left a partial request in it, so a poisoned outbox ends the connection.
    pub(crate) fn lock_outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|poisoned| {
            let mut ob = poisoned.into_inner();
            ob.out.clear();
            let _ = self.closed.set(CloseReason::EncodingPanicked);
            ob
        })
    }

    /// Why the connection closed (a task that ended without saying is `DriverStopped`).
    pub(crate) fn closed_reason(&self) -> CloseReason {
        self.closed.get().cloned().unwrap_or(CloseReason::DriverStopped)
    }
}

/// A handle to one QMP connection: cheap to clone, and usable from many tasks at once. Every
/// call gets a unique `id`, so any number may be in flight (pipelined) and each reply reaches
/// its own caller.
///
/// ```no_run
/// # async fn demo() -> Result<(), qmp::Error> {
/// use qmp::commands::QueryStatus;
///
/// let client = qmp::Client::connect("/run/qemu/vm1.qmp").await?;
/// let status = client.call_raw("query-status", serde_json::Value::Null).send().await?;
/// println!("{status}");
/// # Ok(()) }
/// ```
///
/// # Behaviour
/// - One task, spawned on the current tokio runtime, owns the socket; it ends when the peer
///   hangs up or when the last handle is dropped.
/// - Dropping a call's future (or its timeout running out) never mismatches later replies:
///   replies are routed by `id` and a late one is discarded.
/// - When the connection ends, every pending call fails at once with
///   [`Error::Disconnected`] and every subscription ends with
///   [`RecvError::Closed`](crate::RecvError::Closed).
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    /// Dropped with the last handle, which ends the connection task.
    pub(crate) _alive: Arc<Alive>,
    pub(crate) timeout: Option<Duration>,
}

/// Tells the connection task when the last client handle is gone.
pub(crate) struct Alive(pub(crate) Arc<Shared>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.clients_gone.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("oob", &self.oob_enabled())
            .field("closed", &self.is_closed())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// Connects with the default settings: waits for the greeting, negotiates, and enables
    /// out-of-band execution when the server offers it.
    pub async fn connect(addr: impl IntoAddress) -> Result<Client> {
        ClientBuilder::new().connect(addr).await
    }

    /// A builder for other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The server's greeting: `None` until it comes, and for a server that sends none (the
    /// guest agent). Without [`await_greeting`](ClientBuilder::await_greeting) it may come
    /// after `connect` has returned (QEMU sends it at once).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.shared.greeting.get()
    }

    /// True when out-of-band execution was negotiated.
    pub fn oob_enabled(&self) -> bool {
        self.shared.oob.load(Ordering::Relaxed)
    }

    /// A handle to the same connection whose calls time out after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client { shared: Arc::clone(&self.shared), _alive: Arc::clone(&self._alive), timeout: Some(timeout) }
    }

    /// A handle to the same connection whose calls wait as long as it takes.
    pub fn without_timeout(&self) -> Client {
        Client { shared: Arc::clone(&self.shared), _alive: Arc::clone(&self._alive), timeout: None }
    }

    /// Runs a typed command: the common case of [`call`](Self::call).
    pub async fn execute<C: Command>(&self, cmd: C) -> Result<C::Output> {
        let answer = self.call_with(C::NAME, &cmd, false, &[], self.timeout).await?;
        decode_typed::<C>(answer)
    }

    /// A call of a typed command, with options to set before [`Call::send`]:
    /// `client.call(cmd).oob().timeout(d).send().await`.
    pub fn call<C: Command>(&self, cmd: C) -> Call<'_, Client, C, Typed<C>> {
        Call::new(self, C::NAME, cmd)
    }

    /// A call of any command by name, with any `Serialize` arguments (a JSON object, or
    /// `Value::Null` / `()` for none), returning a [`serde_json::Value`] (or raw JSON, with
    /// [`Call::raw_json`]).
    ///
    /// ```no_run
    /// # async fn demo(client: qmp::Client) -> Result<(), qmp::Error> {
    /// let status = client.call_raw("query-status", ()).send().await?;
    /// assert!(status["running"].is_boolean());
    /// # Ok(()) }
    /// ```
    pub fn call_raw<'a, A: Serialize>(&'a self, name: &'a str, args: A) -> Call<'a, Client, A, Json> {
        Call::new(self, name, args)
    }

    /// The server's schema (`query-qmp-schema`), fetched by the first call on this
    /// connection and kept for every handle of it; calls that run at the same time share one
    /// fetch. A fetch that fails is tried again by the next call.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp::Error> {
    /// let client = qmp::Client::connect("/run/qemu/vm1.qmp").await?;
    /// let schema = client.schema().await?;
    /// if schema.has_argument("blockdev-add", "locking") {
    ///     println!("file locking can be chosen");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn schema(&self) -> Result<Arc<Schema>> {
        let fetch = || async {
            let answer = self.send(QueryQmpSchema::NAME, &QueryQmpSchema, false, &[], self.timeout).await?;
            Ok::<_, Error>(Arc::new(Schema::from_entries(decode_typed::<QueryQmpSchema>(answer)?)))
        };
        self.shared.schema.get_or_try_init(fetch).await.cloned()
    }

    pub(crate) async fn call_with<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        if self.shared.check_arguments {
            // Boxed, so that an unchecked call's future stays as small as it was.
            Box::pin(self.check_arguments(name, args)).await?;
        }
        self.send(name, args, oob, fds, timeout).await
    }

    /// [`ClientBuilder::check_arguments`]: `args` against the schema, fetched first if need be.
    async fn check_arguments<A: Serialize + ?Sized>(&self, name: &str, args: &A) -> Result<()> {
        if UNCHECKED.contains(&name) {
            return Ok(());
        }
        let schema = self.schema().await.map_err(|e| unchecked(name, e))?;
        check_against(&schema, name, args)
    }

    pub(crate) async fn send<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        let rx = self.enqueue(name, args, oob, fds)?;
        self.answer(rx, timeout).await
    }

    /// Puts a request in the outbox (requests go out in the order they were enqueued) and
    /// returns where its answer will come.
    pub(crate) fn enqueue<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        oob: bool,
        fds: &[BorrowedFd<'_>],
    ) -> Result<AnswerRx> {
        if oob && !self.oob_enabled() {
            return Err(Error::Unsupported(format!(
                "cannot run {name} out of band: oob was not negotiated on this connection"
            )));
        }
        if !fds.is_empty() && !self.shared.fd_passing {
            return Err(Error::Unsupported("passing file descriptors needs a unix socket".into()));
        }
        let fds = if fds.is_empty() {
            Vec::new() // most calls: no fds, and no fallible collect to go through
        } else {
            fds.iter().map(|fd| fd.try_clone_to_owned()).collect::<std::io::Result<Vec<_>>>()?
        };
        let (reply, rx) = oneshot::channel();
        {
            let mut ob = self.shared.lock_outbox();
            if let Some(why) = self.shared.closed.get() {
                return Err(Error::Disconnected(why.clone()));
            }
            // Counted under the lock already held: no atomic of its own.
            let id = ob.next_id;
            ob.next_id += 1;
            let was_empty = ob.out.is_empty();
            let at = ob.out.len();
            // Encoded straight into the outbox; on error, encode_request leaves it as it was.
            qmp_proto::encode_request(&mut ob.out, name, args, Some(&id), oob).map_err(|source| {
                Error::Json { context: format!("cannot encode the arguments of {name}"), source }
            })?;
            if !fds.is_empty() {
                ob.fd_marks.push_back((at, fds));
            }
            ob.calls.push((id, reply));
            drop(ob);
            if was_empty {
                self.shared.wake.notify_one();
            }
        }
        Ok(rx)
    }

    /// Waits up to `timeout` for an enqueued request's answer.
    pub(crate) async fn answer(&self, rx: AnswerRx, timeout: Option<Duration>) -> Result<Answer> {
        let answer = match timeout {
            Some(t) => tokio::time::timeout(t, rx).await.map_err(|_| Error::Timeout)?,
            None => rx.await,
        };
        answer.map_err(|_| Error::Disconnected(self.shared.closed_reason()))?.map_err(|e| *e)
    }

    /// Synchronises with the guest agent (qemu-ga), as every agent client should after
    /// connecting and after a timeout: sends a 0xFF byte, which makes the agent drop any
    /// partial request left in its channel, then `guest-sync-delimited` with a random token,
    /// and waits for the reply that carries that token. Whatever the channel held before
    /// (garbage, the agent's answer to the 0xFF, a reply meant for an earlier client) is
    /// skipped. Connect without a handshake for the agent
    /// (`Client::builder().negotiate(false).await_greeting(false)`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp::Error> {
    /// let agent = qmp::Client::builder().negotiate(false).await_greeting(false).connect("/run/qga.sock").await?;
    /// agent.guest_sync().await?;
    /// agent.execute(qmp::ga::commands::GuestPing {}).await?;
    /// # Ok(()) }
    /// ```
    pub async fn guest_sync(&self) -> Result<()> {
        use crate::ga::sync;
        {
            let mut ob = self.shared.lock_outbox();
            if let Some(why) = self.shared.closed.get() {
                return Err(Error::Disconnected(why.clone()));
            }
            let was_empty = ob.out.is_empty();
            ob.out.push(sync::RESET);
            drop(ob);
            if was_empty {
                self.shared.wake.notify_one();
            }
        }
        let mut last = (0, serde_json::Value::Null);
        for attempt in 1..=sync::ATTEMPTS {
            let token = sync::token();
            let answer = self.call_raw("guest-sync-delimited", serde_json::json!({"id": token})).send().await;
            if sync::answered(attempt, token, answer, &mut last)? {
                return Ok(());
            }
        }
        Err(sync::out_of_sync(last))
    }

    /// Subscribes to the events `filter` selects, from now on (including those caused by any
    /// command sent after this call).
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        let sub = Subscriber::new(filter, self.shared.event_queue, Arc::clone(&self.shared.closed));
        let mut ob = self.shared.lock_outbox();
        // Once closed, the subscription sees the reason at once.
        if self.shared.closed.get().is_none() {
            ob.subscribers.push(Arc::clone(&sub));
            self.shared.new_subscribers.store(true, Ordering::Relaxed);
        }
        drop(ob);
        Subscription::new(sub)
    }

    /// Subscribes to every event.
    pub fn events(&self) -> Subscription {
        self.subscribe(EventFilter::any())
    }

    /// Waits up to `timeout` for the next event `filter` selects. The subscription is made
    /// when this is *called*, not when it is awaited, so an event caused by a command run in
    /// between is not missed:
    ///
    /// ```no_run
    /// # async fn demo(client: qmp::Client) -> Result<(), qmp::Error> {
    /// use std::time::Duration;
    /// use qmp::EventFilter;
    ///
    /// let stopped = client.wait_for(EventFilter::name("STOP"), Duration::from_secs(5));
    /// client.call_raw("stop", serde_json::Value::Null).send().await?;
    /// let event = stopped.await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for(
        &self,
        filter: EventFilter,
        timeout: Duration,
    ) -> impl Future<Output = Result<Arc<Event>>> + Send + 'static {
        let mut sub = self.subscribe(filter);
        async move { sub.next_within(timeout).await }
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed_flag.load(Ordering::Acquire)
    }

    /// Resolves when the connection ends; returns why.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.shared.closed_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return self.shared.closed_reason();
            }
            notified.await;
        }
    }
}

/// Commands never checked against the schema: negotiation (the schema cannot be had before
/// it), and the schema itself.
pub(crate) const UNCHECKED: &[&str] = &["qmp_capabilities", "query-qmp-schema"];

/// A schema the server refuses (no `query-qmp-schema`: the guest agent, a small server) leaves
/// nothing to check against: [`Error::Unsupported`] saying so, not the refusal of a command
/// the caller never ran. Other failures (a disconnect, a timeout) stay as they are.
pub(crate) fn unchecked(name: &str, e: Error) -> Error {
    match e {
        Error::Qmp(q) => Error::Unsupported(format!(
            "cannot check the arguments of {name}: the server refused query-qmp-schema ({q})"
        )),
        other => other,
    }
}

/// Checks a call's arguments for [`ClientBuilder::check_arguments`]. A command the schema does
/// not have is left for the server to refuse (`CommandNotFound`, as without the check).
pub(crate) fn check_against<A: Serialize + ?Sized>(schema: &Schema, name: &str, args: &A) -> Result<()> {
    if !schema.has_command(name) {
        return Ok(());
    }
    let value = serde_json::to_value(args).map_err(|source| Error::Json {
        context: format!("cannot encode the arguments of {name}"),
        source,
    })?;
    schema
        .validate_arguments(name, &value)
        .map_err(|problems| Error::InvalidArguments { command: name.to_owned(), problems })
}

/// A typed command's answer: a frame goes to the command's own reply decoder.
fn decode_typed<C: Command>(answer: Answer) -> Result<C::Output> {
    decode_as::<Typed<C>>(C::NAME, answer)
}

pub(crate) fn decode_as<R: Returns>(name: &str, answer: Answer) -> Result<R::Output> {
    match answer {
        Answer::Frame(bytes) => R::from_frame(name, &bytes),
        Answer::Parsed(resp) => R::from_parsed(name, *resp),
    }
}

impl<A: Serialize, R: Returns> Call<'_, Client, A, R> {
    /// Sends the call and waits for its return.
    pub async fn send(self) -> Result<R::Output> {
        let timeout = self.timeout_or(self.client.timeout);
        let answer = self.client.call_with(self.name, &self.args, self.oob, self.fds, timeout).await?;
        decode_as::<R>(self.name, answer)
    }
}

/// Decodes one framed reply (`{"return": ...}` or `{"error": ...}`) straight into `T` in one
/// pass, as the client does with every reply in QEMU's shape: the server's error becomes
/// [`Error::Qmp`]. `name` is the command, for error messages. Useful to tools that frame a
/// stream themselves (a recording, a proxy). [`qmp_qapi::decode_reply`] with this crate's
/// error.
///
/// ```
/// let status: serde_json::Value =
///     qmp::decode_reply("query-status", br#"{"return": {"status": "running"}, "id": 1}"#).unwrap();
/// assert_eq!(status["status"], "running");
///
/// let err = qmp::decode_reply::<serde_json::Value>(
///     "nope",
///     br#"{"id": 2, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#,
/// )
/// .unwrap_err();
/// assert_eq!(err.qmp_error().unwrap().class, qmp::ErrorClass::CommandNotFound);
/// ```
pub fn decode_reply<T: serde::de::DeserializeOwned>(name: &str, frame: &[u8]) -> Result<T> {
    Ok(qmp_qapi::decode_reply(name, frame)?)
}
