//! The guest-agent client: a connection to qemu-ga that synchronises on connect and again
//! whenever the channel may hold something it did not ask for, runs one call at a time (the
//! agent handles one at a time, and a call given up midway must not leave its reply in the
//! next call's way), and knows which commands may take long and which answer nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, MutexGuard};

use crate::address::IntoAddress;
use crate::builder::ClientBuilder;
use crate::call::{Call, Json, Returns, Typed};
use crate::client::decode_as;
use crate::connection::Answer;
use crate::ga::exec::{Step, Waiting};
use crate::ga::policy::{self, Clean};
use crate::ga::{file, sync, AgentInfo, Exec, ExecOutput, Progress};
use crate::{Client, Command, Error, Result};

/// A client of the guest agent (qemu-ga): cheap to clone; its calls, from any number of
/// tasks, go to the agent one at a time.
///
/// ```no_run
/// # async fn demo() -> Result<(), qmp::Error> {
/// use qmp::ga::{commands::GuestGetOsinfo, Agent, Exec};
///
/// let agent = Agent::connect("/run/vm1-qga.sock").await?;
/// let os = agent.execute(GuestGetOsinfo {}).await?;
/// println!("{:?}", os.pretty_name);
/// let out = agent.exec(&Exec::new("/bin/uname").args(["-r"])).await?;
/// print!("{}", String::from_utf8_lossy(&out.stdout));
/// # Ok(()) }
/// ```
///
/// # Behaviour
/// - Connecting synchronises (`guest-sync-delimited`, after a 0xFF that resets the agent's
///   parser); so does the next call after a timeout, a call dropped before its answer, or
///   anything unasked-for in the channel (garbage, a reply meant for an earlier client).
/// - Calls time out after [`policy::DEFAULT_TIMEOUT`] unless the agent or the call says
///   otherwise; freezing and trimming file systems get at least [`policy::SLOW_TIMEOUT`].
/// - `guest-shutdown` and the suspends answer nothing when they succeed: their call is
///   followed by a synchronisation, and the sync's answer (or the channel closing, as the
///   guest goes down) is their success; their error, when they fail, is the call's.
#[derive(Clone)]
pub struct Agent {
    client: Client,
    clean: Arc<Mutex<Clean>>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("timeout", &self.timeout)
            .field("closed", &self.client.is_closed())
            .finish()
    }
}

impl Agent {
    /// Connects to the agent at `addr` (the unix socket of QEMU's chardev for the guest's
    /// agent port, or qemu-ga's own `unix-listen` socket) and synchronises.
    pub async fn connect(addr: impl IntoAddress) -> Result<Agent> {
        Agent::connect_with(Client::builder(), addr).await
    }

    /// Connects with `builder`'s settings ([`wait`](ClientBuilder::wait), a timeout for every
    /// call, a message size limit); the handshake settings are the agent's (none).
    pub async fn connect_with(builder: ClientBuilder, addr: impl IntoAddress) -> Result<Agent> {
        let timeout = builder.timeout.or(Some(policy::DEFAULT_TIMEOUT));
        let client = builder.negotiate(false).await_greeting(false).connect(addr).await?;
        Agent::over(client, timeout).await
    }

    /// An agent over a connection made without a handshake
    /// (`Client::builder().negotiate(false).await_greeting(false)`: over a stream or an
    /// inherited fd); synchronises first.
    pub async fn from_client(client: Client) -> Result<Agent> {
        let timeout = client.timeout.or(Some(policy::DEFAULT_TIMEOUT));
        Agent::over(client, timeout).await
    }

    async fn over(client: Client, timeout: Option<Duration>) -> Result<Agent> {
        let agent = Agent { client, clean: Arc::new(Mutex::new(Clean::default())), timeout };
        drop(agent.turn().await?);
        Ok(agent)
    }

    /// A handle to the same agent whose calls time out after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Agent {
        Agent { timeout: Some(timeout), ..self.clone() }
    }

    /// A handle to the same agent whose calls wait as long as they take.
    pub fn without_timeout(&self) -> Agent {
        Agent { timeout: None, ..self.clone() }
    }

    /// The connection under the agent (for [`Client::closed`] and the like; calls made on it
    /// bypass the agent's turn-taking).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs a typed command.
    pub async fn execute<C: Command>(&self, cmd: C) -> Result<C::Output> {
        let answer = self.send(C::NAME, &cmd, None).await?;
        decode_as::<Typed<C>>(C::NAME, answer)
    }

    /// A call of a typed command, with a timeout of its own:
    /// `agent.call(cmd).timeout(d).send().await`.
    pub fn call<C: Command>(&self, cmd: C) -> Call<'_, Agent, C, Typed<C>> {
        Call::new(self, C::NAME, cmd)
    }

    /// A call of any command by name, returning JSON.
    ///
    /// ```no_run
    /// # async fn demo(agent: qmp::ga::Agent) -> Result<(), qmp::Error> {
    /// let host = agent.call_raw("guest-get-host-name", ()).send().await?;
    /// println!("{}", host["host-name"]);
    /// # Ok(()) }
    /// ```
    pub fn call_raw<'a, A: Serialize>(&'a self, name: &'a str, args: A) -> Call<'a, Agent, A, Json> {
        Call::new(self, name, args)
    }

    /// Synchronises now, whether or not the channel is known clean.
    pub async fn sync(&self) -> Result<()> {
        let mut clean = self.clean.lock().await;
        clean.start();
        self.resync(&mut clean).await
    }

    /// The agent's version and commands (`guest-info`).
    pub async fn info(&self) -> Result<AgentInfo> {
        Ok(self.execute(crate::ga::commands::GuestInfo {}).await?.into())
    }

    /// Runs a program in the guest (`guest-exec`), waits for it to exit (polling
    /// `guest-exec-status`, 1 ms doubling to 100 ms), and returns how it ended and its
    /// decoded output. Other calls may run between the polls.
    pub async fn exec(&self, run: &Exec) -> Result<ExecOutput> {
        let pid = self.execute(run.request()).await?.pid;
        let mut waiting = Waiting::new(run, pid);
        loop {
            match waiting.after(self.execute(waiting.request()).await?)? {
                Step::Done(out) => return Ok(out),
                Step::Sleep(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Reads a whole file of the guest's.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.download(path, &mut out, |_| {}).await?;
        Ok(out)
    }

    /// Writes `data` to a file of the guest's, replacing what it held.
    pub async fn write_file(&self, path: &str, data: &[u8]) -> Result<()> {
        self.upload(path, data, |_| {}).await.map(drop)
    }

    /// Copies a file of the guest's to `to`, [`file::CHUNK`] bytes a call with the next read
    /// already asked for, calling `progress` after each chunk; returns the bytes copied.
    /// The whole copy is one turn: no other call runs in its middle.
    pub async fn download<W: AsyncWrite + Unpin>(
        &self,
        path: &str,
        mut to: W,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        self.with_file(file::open_read(path), |agent, handle| async move {
            let total = file::size(&agent.run_typed(file::seek(handle, true)).await?);
            agent.run_typed(file::seek(handle, false)).await?;
            let mut done = 0u64;
            let mut chunk = Vec::with_capacity(file::CHUNK);
            // perf: with the next read in flight while this one is decoded and written, the
            // agent is never idle waiting for us.
            let mut next = Some(agent.enqueue(&file::read(handle))?);
            while let Some(rx) = next.take() {
                let read = agent.await_typed::<crate::ga::commands::GuestFileRead>(rx).await?;
                chunk.clear();
                let eof = file::take_chunk(read, &mut chunk)?;
                if !eof {
                    next = Some(agent.enqueue(&file::read(handle))?);
                }
                to.write_all(&chunk).await?;
                done += chunk.len() as u64;
                progress(Progress { done, total: total.filter(|&t| t >= done) });
            }
            to.flush().await?;
            Ok(done)
        })
        .await
    }

    /// Copies `from` into a file of the guest's (created, or truncated), [`file::CHUNK`] bytes
    /// a call with the next write already sent, calling `progress` after each chunk; returns
    /// the bytes copied.
    pub async fn upload<R: AsyncRead + Unpin>(
        &self,
        path: &str,
        mut from: R,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        self.with_file(file::open_write(path), |agent, handle| async move {
            let mut done = 0u64;
            let mut chunk = vec![0; file::CHUNK];
            let mut in_flight: Option<(crate::connection::AnswerRx, usize)> = None;
            loop {
                let n = read_full(&mut from, &mut chunk).await?;
                let sent =
                    if n > 0 { Some((agent.enqueue(&file::write(handle, &chunk[..n]))?, n)) } else { None };
                if let Some((rx, len)) = in_flight.take() {
                    let written = agent.await_typed::<crate::ga::commands::GuestFileWrite>(rx).await?;
                    file::check_written(written, len)?;
                    done += len as u64;
                    progress(Progress { done, total: None });
                }
                match sent {
                    Some(next) => in_flight = Some(next),
                    None => return Ok(done),
                }
            }
        })
        .await
    }

    /// Opens a file with `open`, runs `body` on its handle within one turn, and closes it
    /// whatever came of `body`.
    async fn with_file<'a, T, F, Fut>(
        &'a self,
        open: crate::ga::commands::GuestFileOpen,
        body: F,
    ) -> Result<T>
    where
        F: FnOnce(InTurn<'a>, i64) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut clean = self.turn().await?;
        let before = clean.start();
        let turn = InTurn { agent: self };
        let outcome = async {
            let handle = turn.run_typed(open).await?;
            let result = body(turn, handle).await;
            let closed = turn.run_typed(file::close(handle)).await;
            let value = result?;
            closed?;
            Ok(value)
        }
        .await;
        clean.finish(before, self.skipped(), &outcome);
        outcome
    }

    /// Sends one call in its turn: synchronising first when needed, with the timeout the
    /// call, the command or the agent gives.
    pub(crate) async fn send<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        timeout: Option<Option<Duration>>,
    ) -> Result<Answer> {
        let mut clean = self.turn().await?;
        let timeout = timeout.unwrap_or_else(|| policy::timeout_for(name, self.timeout));
        let before = clean.start();
        let outcome = if policy::gives_no_reply(name) {
            self.send_unanswered(name, args, timeout).await
        } else {
            self.client.send(name, args, false, &[], timeout).await
        };
        clean.finish(before, self.skipped(), &outcome);
        outcome
    }

    /// A command that answers only when it fails, followed by a sync: qemu-ga handles
    /// requests in order, so the sync's answer coming first means the command was taken.
    async fn send_unanswered<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        let taken = || Answer::Frame(b"{\"return\": {}}".to_vec());
        let cmd = self.client.enqueue(name, args, false, &[])?;
        let token = sync::token();
        let synced =
            self.client.enqueue("guest-sync-delimited", &serde_json::json!({"id": token}), false, &[])?;
        tokio::select! {
            biased;
            answer = self.client.answer(cmd, None) => answer,
            answer = self.client.answer(synced, timeout) => match answer {
                Ok(_) => Ok(taken()),
                // The guest went down, or is going: the command was taken. The channel is
                // left dirty (the caller sees a timeout's cost as a sync next time).
                Err(Error::Disconnected(_) | Error::Timeout) => Ok(taken()),
                Err(e) => Err(e),
            },
        }
    }

    /// Takes the turn, synchronising first unless the channel is known clean.
    async fn turn(&self) -> Result<MutexGuard<'_, Clean>> {
        let mut clean = self.clean.lock().await;
        if !clean.holds(self.skipped()) {
            self.resync(&mut clean).await?;
        }
        Ok(clean)
    }

    async fn resync(&self, clean: &mut Clean) -> Result<()> {
        let bound = self.timeout.map_or(policy::SYNC_TIMEOUT, |t| t.min(policy::SYNC_TIMEOUT));
        self.client.with_timeout(bound).guest_sync().await.map_err(|e| match e {
            Error::Timeout => Error::Protocol(crate::ProtocolFault::AgentSilent { after: bound }),
            other => other,
        })?;
        clean.set(self.skipped());
        Ok(())
    }

    fn skipped(&self) -> u64 {
        self.client.shared.skipped.load(Ordering::Relaxed)
    }
}

/// The agent while a turn is held: calls made through it do not take the turn again.
#[derive(Clone, Copy)]
struct InTurn<'a> {
    agent: &'a Agent,
}

impl InTurn<'_> {
    async fn run_typed<C: Command>(&self, cmd: C) -> Result<C::Output> {
        let rx = self.enqueue(&cmd)?;
        self.await_typed::<C>(rx).await
    }

    fn enqueue<C: Command>(&self, cmd: &C) -> Result<crate::connection::AnswerRx> {
        self.agent.client.enqueue(C::NAME, cmd, false, &[])
    }

    async fn await_typed<C: Command>(&self, rx: crate::connection::AnswerRx) -> Result<C::Output> {
        let timeout = policy::timeout_for(C::NAME, self.agent.timeout);
        decode_as::<Typed<C>>(C::NAME, self.agent.client.answer(rx, timeout).await?)
    }
}

/// Fills `buf` from `from` as far as it goes; less only at the end.
async fn read_full<R: AsyncRead + Unpin>(from: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match from.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl<A: Serialize, R: Returns> Call<'_, Agent, A, R> {
    /// Sends the call in its turn and waits for its return.
    pub async fn send(self) -> Result<R::Output> {
        let answer = self.client.send(self.name, &self.args, self.timeout).await?;
        decode_as::<R>(self.name, answer)
    }
}
