//! The guest-agent client without async: [`crate::ga::Agent`]'s behaviour over the blocking
//! connection. Its calls take turns on a mutex; file copies move one chunk a call.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use super::{decode_as, Client, Reply};
use crate::address::IntoAddress;
use crate::builder::ClientBuilder;
use crate::call::{Call, Json, Returns, Typed};
use crate::ga::commands::{GuestFileRead, GuestFileWrite, GuestInfo};
use crate::ga::exec::{Step, Waiting};
use crate::ga::policy::{self, Clean};
use crate::ga::{file, sync, AgentInfo, Exec, ExecOutput, Progress};
use crate::{Command, Error, Result};

/// A blocking client of the guest agent (qemu-ga); it behaves as [`crate::ga::Agent`] does.
///
/// ```no_run
/// # fn demo() -> Result<(), qmp::Error> {
/// let agent = qmp::blocking::Agent::connect("/run/vm1-qga.sock")?;
/// agent.execute(qmp::ga::commands::GuestPing {})?;
/// let hosts = agent.read_file("/etc/hosts")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Agent {
    client: Client,
    clean: Arc<Mutex<Clean>>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Agent").field("timeout", &self.timeout).finish()
    }
}

impl Agent {
    /// Connects to the agent at `addr` and synchronises.
    pub fn connect(addr: impl IntoAddress) -> Result<Agent> {
        Agent::connect_with(ClientBuilder::new(), addr)
    }

    /// Connects with `builder`'s settings (the handshake settings are the agent's: none).
    pub fn connect_with(builder: ClientBuilder, addr: impl IntoAddress) -> Result<Agent> {
        let timeout = builder.timeout.or(Some(policy::DEFAULT_TIMEOUT));
        let client = Client::connect_with(builder.negotiate(false).await_greeting(false), addr)?;
        Agent::over(client, timeout)
    }

    /// An agent over a connection made without a handshake; synchronises first.
    pub fn from_client(client: Client) -> Result<Agent> {
        let timeout = client.timeout.or(Some(policy::DEFAULT_TIMEOUT));
        Agent::over(client, timeout)
    }

    fn over(client: Client, timeout: Option<Duration>) -> Result<Agent> {
        let agent = Agent { client, clean: Arc::new(Mutex::new(Clean::default())), timeout };
        drop(agent.turn()?);
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

    /// Runs a typed command.
    pub fn execute<C: Command>(&self, cmd: C) -> Result<C::Output> {
        let reply = self.send(C::NAME, &cmd, None)?;
        decode_as::<Typed<C>>(C::NAME, reply)
    }

    /// A call of a typed command, with a timeout of its own.
    pub fn call<C: Command>(&self, cmd: C) -> Call<'_, Agent, C, Typed<C>> {
        Call::new(self, C::NAME, cmd)
    }

    /// A call of any command by name, returning JSON.
    pub fn call_raw<'a, A: Serialize>(&'a self, name: &'a str, args: A) -> Call<'a, Agent, A, Json> {
        Call::new(self, name, args)
    }

    /// Synchronises now, whether or not the channel is known clean.
    pub fn sync(&self) -> Result<()> {
        let mut clean = self.lock();
        clean.start();
        self.resync(&mut clean)
    }

    /// The agent's version and commands (`guest-info`).
    pub fn info(&self) -> Result<AgentInfo> {
        Ok(self.execute(GuestInfo {})?.into())
    }

    /// Runs a program in the guest and waits for it to exit, as [`crate::ga::Agent::exec`].
    pub fn exec(&self, run: &Exec) -> Result<ExecOutput> {
        let pid = self.execute(run.request())?.pid;
        let mut waiting = Waiting::new(run, pid);
        loop {
            match waiting.after(self.execute(waiting.request())?)? {
                Step::Done(out) => return Ok(out),
                Step::Sleep(wait) => std::thread::sleep(wait),
            }
        }
    }

    /// Reads a whole file of the guest's.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.download(path, &mut out, |_| {})?;
        Ok(out)
    }

    /// Writes `data` to a file of the guest's, replacing what it held.
    pub fn write_file(&self, path: &str, data: &[u8]) -> Result<()> {
        self.upload(path, data, |_| {}).map(drop)
    }

    /// Copies a file of the guest's to `to`, calling `progress` after each chunk; returns the
    /// bytes copied.
    pub fn download<W: Write>(
        &self,
        path: &str,
        mut to: W,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        self.with_file(file::open_read(path), |turn, handle| {
            let total = file::size(&turn.run(file::seek(handle, true))?);
            turn.run(file::seek(handle, false))?;
            let (mut done, mut chunk) = (0u64, Vec::with_capacity(file::CHUNK));
            loop {
                chunk.clear();
                let eof = file::take_chunk(turn.run::<GuestFileRead>(file::read(handle))?, &mut chunk)?;
                to.write_all(&chunk)?;
                done += chunk.len() as u64;
                progress(Progress { done, total: total.filter(|&t| t >= done) });
                if eof {
                    to.flush()?;
                    return Ok(done);
                }
            }
        })
    }

    /// Copies `from` into a file of the guest's (created, or truncated), calling `progress`
    /// after each chunk; returns the bytes copied.
    pub fn upload<R: Read>(
        &self,
        path: &str,
        mut from: R,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        self.with_file(file::open_write(path), |turn, handle| {
            let (mut done, mut chunk) = (0u64, vec![0; file::CHUNK]);
            loop {
                let n = read_full(&mut from, &mut chunk)?;
                if n == 0 {
                    return Ok(done);
                }
                file::check_written(turn.run::<GuestFileWrite>(file::write(handle, &chunk[..n]))?, n)?;
                done += n as u64;
                progress(Progress { done, total: None });
            }
        })
    }

    fn with_file<T>(
        &self,
        open: crate::ga::commands::GuestFileOpen,
        body: impl FnOnce(InTurn<'_>, i64) -> Result<T>,
    ) -> Result<T> {
        let mut clean = self.turn()?;
        let before = clean.start();
        let turn = InTurn { agent: self };
        let outcome = turn.run(open).and_then(|handle| {
            let result = body(turn, handle);
            let closed = turn.run(file::close(handle));
            let value = result?;
            closed?;
            Ok(value)
        });
        clean.finish(before, self.client.conn.skipped(), &outcome);
        outcome
    }

    fn send<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        timeout: Option<Option<Duration>>,
    ) -> Result<Reply> {
        let mut clean = self.turn()?;
        let timeout = timeout.unwrap_or_else(|| policy::timeout_for(name, self.timeout));
        let before = clean.start();
        let outcome = if policy::gives_no_reply(name) {
            self.send_unanswered(name, args, timeout)
        } else {
            self.client.send(name, args, false, &[], timeout)
        };
        clean.finish(before, self.client.conn.skipped(), &outcome);
        outcome
    }

    /// A command that answers only when it fails, then a sync, as the async agent does.
    fn send_unanswered<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        timeout: Option<Duration>,
    ) -> Result<Reply> {
        let id = self.client.conn.send_only(name, args)?;
        let token = sync::token();
        let synced =
            self.client.send("guest-sync-delimited", &serde_json::json!({"id": token}), false, &[], timeout);
        if let Some(reply) = self.client.conn.take_reply(id) {
            return Ok(reply);
        }
        match synced {
            Ok(_) | Err(Error::Disconnected(_) | Error::Timeout) => {
                Ok(Reply::Frame(b"{\"return\": {}}".to_vec()))
            }
            Err(e) => Err(e),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Clean> {
        // A panic in another call's thread leaves the flag as it was: dirty at worst.
        self.clean.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn turn(&self) -> Result<MutexGuard<'_, Clean>> {
        let mut clean = self.lock();
        if !clean.holds(self.client.conn.skipped()) {
            self.resync(&mut clean)?;
        }
        Ok(clean)
    }

    fn resync(&self, clean: &mut Clean) -> Result<()> {
        let bound = self.timeout.map_or(policy::SYNC_TIMEOUT, |t| t.min(policy::SYNC_TIMEOUT));
        self.client.with_timeout(bound).guest_sync().map_err(|e| match e {
            Error::Timeout => Error::Protocol(crate::ProtocolFault::AgentSilent { after: bound }),
            other => other,
        })?;
        clean.set(self.client.conn.skipped());
        Ok(())
    }
}

/// The agent while a turn is held.
#[derive(Clone, Copy)]
struct InTurn<'a> {
    agent: &'a Agent,
}

impl InTurn<'_> {
    fn run<C: Command>(&self, cmd: C) -> Result<C::Output> {
        let timeout = policy::timeout_for(C::NAME, self.agent.timeout);
        let reply = self.agent.client.send(C::NAME, &cmd, false, &[], timeout)?;
        decode_as::<Typed<C>>(C::NAME, reply)
    }
}

fn read_full<R: Read>(from: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match from.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<A: Serialize, R: Returns> Call<'_, Agent, A, R> {
    /// Sends the call in its turn and waits for its return.
    pub fn send(self) -> Result<R::Output> {
        let reply = self.client.send(self.name, &self.args, self.timeout)?;
        decode_as::<R>(self.name, reply)
    }
}
