//! Starts real QEMU peers for tests: `qemu-system-x86_64 -machine none` and
//! `qemu-storage-daemon` over a qcow2 chain, QEMU with a TLS monitor over certificates made
//! for the test ([`tls`]), and qemu-ga, the guest agent, on a unix socket or on a serial
//! channel of pseudo-terminals ([`Peer::qemu_ga_serial`]). A missing binary is a test failure
//! with a message saying how to install it, never a skip: the real peer is the contract.
#![warn(missing_docs)]

pub mod tls;
mod waiting;

pub use waiting::{
    greet_monitors, spawn_quiet, spawn_storage_daemon, storage_daemon_monitor, waiting_tcp, waiting_unix,
    Listener,
};

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to install what these peers need.
pub const INSTALL_HINT: &str =
    "install QEMU: scripts/install-deps.sh (Debian: apt-get install qemu-system-x86 qemu-utils)";

/// Panics with an install hint unless `bin` is on PATH.
pub fn require(bin: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(bin);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{bin} not found on PATH; {INSTALL_HINT}");
}

/// A running QEMU process with its QMP socket(s), killed and reaped on drop.
pub struct Peer {
    child: Child,
    dir: tempfile::TempDir,
    sockets: Vec<PathBuf>,
    /// The TCP port of a TLS monitor ([`Peer::qemu_tls`]).
    tls_port: Option<u16>,
}

impl Peer {
    /// `qemu-system-x86_64 -machine none -nodefaults -display none` with `monitors` QMP
    /// server sockets (each serves one client at a time), returned once each has greeted a
    /// first client ([`greet_monitors`]).
    pub fn qemu(monitors: usize) -> Peer {
        Self::qemu_with(monitors, &[])
    }

    /// As [`Peer::qemu`], with extra arguments.
    pub fn qemu_with(monitors: usize, extra: &[&str]) -> Peer {
        let bin = require("qemu-system-x86_64");
        let dir = tempdir();
        let sockets: Vec<PathBuf> = (0..monitors).map(|i| dir.path().join(format!("qmp{i}.sock"))).collect();
        let mut cmd = Command::new(bin);
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none", "-name", "testvm"]);
        for s in &sockets {
            cmd.arg("-qmp").arg(waiting_unix(s));
        }
        cmd.args(extra);
        let mut child = spawn_quiet(cmd);
        greet_monitors(&mut child, &sockets.iter().map(|s| Listener::Unix(s)).collect::<Vec<_>>());
        Peer { child, dir, sockets, tls_port: None }
    }

    /// `qemu-system-x86_64 -machine none` whose only monitor is QMP over TLS on 127.0.0.1:
    /// `-object tls-creds-x509,id=tls0,dir=DIR,endpoint=server,verify-peer=yes|no` and
    /// `-chardev socket,id=mon0,host=127.0.0.1,port=P,server=on,wait=off,tls-creds=tls0
    /// -mon chardev=mon0,mode=control`, DIR being `certs.server_dir()`. Returns once the
    /// port listens (checked in /proc/net/tcp, without taking the monitor); the address is
    /// [`Peer::tls_address`]. A port taken by someone else between picking and QEMU's bind is
    /// tried again with another.
    pub fn qemu_tls(certs: &tls::Certs, verify_peer: bool) -> Peer {
        let bin = require("qemu-system-x86_64");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args(["-machine", "none", "-nodefaults", "-display", "none", "-name", "testvm"]);
            cmd.arg("-object").arg(format!(
                "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer={}",
                certs.server_dir().display(),
                if verify_peer { "yes" } else { "no" }
            ));
            cmd.arg("-chardev")
                .arg(format!("socket,id=mon0,host=127.0.0.1,port={port},server=on,wait=on,tls-creds=tls0"));
            cmd.args(["-mon", "chardev=mon0,mode=control"]);
            let mut peer =
                Peer { child: spawn_quiet(cmd), dir: tempdir(), sockets: Vec::new(), tls_port: Some(port) };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                // Listening on the port, and by this QEMU (not another test's that took it).
                if tcp_listening_by(port, peer.pid()) {
                    return peer;
                }
                if let Ok(Some(status)) = peer.child.try_wait() {
                    last = format!("QEMU exited at start-up ({status}); port {port} taken?");
                    break;
                }
                assert!(Instant::now() < deadline, "QEMU did not listen on its TLS monitor within 20 s");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        panic!("cannot start QEMU with a TLS monitor: {last}");
    }

    /// `qemu-system-x86_64 -machine none` with its QMP monitor at `socket` (server mode),
    /// returned at once, without waiting for the socket: for tests of clients that wait for a
    /// server that is starting. [`Peer::socket`]`(0)` is `socket`.
    pub fn qemu_at(socket: &Path) -> Peer {
        let mut cmd = Command::new(require("qemu-system-x86_64"));
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none", "-name", "testvm"]);
        // wait=on: the client under test is QEMU's first, accepted before the monitor exists
        // (see greet_monitors for the start-up race that this avoids).
        cmd.arg("-qmp").arg(waiting_unix(socket));
        Peer { child: spawn_quiet(cmd), dir: tempdir(), sockets: vec![socket.to_owned()], tls_port: None }
    }

    /// `qemu-system-x86_64 -machine none` with extra arguments (a `-qmp unix:PATH` that
    /// connects to a listener of the test's, a `-qmp tcp:...` monitor), returned at once.
    pub fn qemu_unwaited(extra: &[&str]) -> Peer {
        let mut cmd = Command::new(require("qemu-system-x86_64"));
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none", "-name", "testvm"]);
        cmd.args(extra);
        Peer { child: spawn_quiet(cmd), dir: tempdir(), sockets: Vec::new(), tls_port: None }
    }

    /// `qemu-system-x86_64 -machine none` whose QMP monitor is the connected socket `fd`
    /// (`-chardev socket,id=mon0,fd=N -mon chardev=mon0,mode=control`): the test keeps the
    /// other end of a socket pair, as a manager that hands QEMU its monitor does. `fd` stays
    /// open across QEMU's exec (its FD_CLOEXEC is cleared in the child only) and is closed
    /// here once QEMU has it.
    pub fn qemu_on_fd(fd: std::os::fd::OwnedFd) -> Peer {
        use std::os::fd::AsRawFd;
        let raw = fd.as_raw_fd();
        let mut cmd = Command::new(require("qemu-system-x86_64"));
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none", "-name", "testvm"]);
        cmd.arg("-chardev").arg(format!("socket,id=mon0,fd={raw}"));
        cmd.args(["-mon", "chardev=mon0,mode=control"]);
        keep_open_across_exec(&mut cmd, raw);
        let peer = Peer { child: spawn_quiet(cmd), dir: tempdir(), sockets: Vec::new(), tls_port: None };
        drop(fd);
        peer
    }

    /// `tls:127.0.0.1:PORT` of a [`Peer::qemu_tls`].
    pub fn tls_address(&self) -> String {
        format!("tls:127.0.0.1:{}", self.tls_port())
    }

    /// The TCP port of a [`Peer::qemu_tls`].
    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("a peer started with Peer::qemu_tls")
    }

    /// `qemu-storage-daemon` serving `monitors` QMP sockets, with block nodes over a qcow2
    /// chain made by qemu-img: `base.qcow2` (64 MiB, its first 32 MiB written) under
    /// `top.qcow2`; nodes `f0` (file) and `top0` (qcow2). Block jobs can run on `top0`.
    pub fn storage_daemon(monitors: usize) -> Peer {
        let bin = require("qemu-storage-daemon");
        let dir = tempdir();
        let base = dir.path().join("base.qcow2");
        let top = dir.path().join("top.qcow2");
        run("qemu-img", &["create", "-q", "-f", "qcow2", path_str(&base), "64M"]);
        run("qemu-io", &["-c", "write -q 0 32M", path_str(&base)]);
        run(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", "-b", path_str(&base), "-F", "qcow2", path_str(&top)],
        );
        let sockets: Vec<PathBuf> = (0..monitors).map(|i| dir.path().join(format!("qsd{i}.sock"))).collect();
        let mut cmd = Command::new(bin);
        for (i, s) in sockets.iter().enumerate() {
            cmd.args(storage_daemon_monitor(s, &format!("m{i}")));
        }
        cmd.arg("--blockdev").arg(format!("driver=file,filename={},node-name=f0", top.display()));
        cmd.arg("--blockdev").arg("driver=qcow2,file=f0,node-name=top0");
        let child = spawn_storage_daemon(cmd, &sockets);
        Peer { child, dir, sockets, tls_port: None }
    }

    /// qemu-ga, the guest agent, run on this host (it acts on this machine, as root) and
    /// listening on a unix socket, with every command that could harm the host blocked
    /// ([`GA_BLOCKED`]); its state files are in the peer's temporary directory.
    pub fn qemu_ga() -> Peer {
        let bin = require("qemu-ga");
        let dir = tempdir();
        let socket = dir.path().join("qga.sock");
        let mut cmd = Command::new(bin);
        cmd.arg("-m").arg("unix-listen").arg("-p").arg(&socket);
        cmd.arg("-t").arg(dir.path()).arg("-f").arg(dir.path().join("qga.pid"));
        cmd.arg("-b").arg(GA_BLOCKED.join(","));
        let peer = Peer { child: spawn_quiet(cmd), dir, sockets: vec![socket], tls_port: None };
        peer.wait_for_sockets();
        peer
    }

    /// qemu-ga on a serial channel, as a guest agent on a guest's serial port looks from the
    /// host (QEMU's `-chardev pty`): two pseudo-terminals joined by a relay thread (what
    /// `socat pty pty` does), qemu-ga started with `-m isa-serial -p` on one's terminal end,
    /// the client to open the other's ([`SerialAgent::path`]). Every command that could harm
    /// the host is blocked ([`GA_BLOCKED`]), as for [`Peer::qemu_ga`]. Returns once the agent
    /// answers on the channel (qemu-ga flushes its input when it opens the terminal, so
    /// anything sent earlier is lost).
    pub fn qemu_ga_serial() -> SerialAgent {
        let bin = require("qemu-ga");
        let agent_end = Pty::open();
        let client_end = Pty::open();
        let dir = tempdir();
        let mut cmd = Command::new(bin);
        cmd.arg("-m").arg("isa-serial").arg("-p").arg(&agent_end.path);
        cmd.arg("-t").arg(dir.path()).arg("-f").arg(dir.path().join("qga.pid"));
        cmd.arg("-b").arg(GA_BLOCKED.join(","));
        let mut peer = Peer { child: spawn_quiet(cmd), dir, sockets: Vec::new(), tls_port: None };
        agent_end.wait_for_agent(&mut peer);
        let relay = Relay::start(agent_end, client_end);
        SerialAgent { peer, relay }
    }

    /// Waits until every socket is *listening*: QEMU creates the file at bind(), a moment
    /// before listen(), and a connect in between is refused.
    fn wait_for_sockets(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.sockets.iter().all(|s| is_listening(s)) {
            assert!(Instant::now() < deadline, "QEMU did not listen on its QMP sockets within 20 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The path of monitor socket `i`.
    pub fn socket(&self, i: usize) -> &Path {
        &self.sockets[i]
    }

    /// The peer's temporary directory (images, sockets).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: &str) {
        run("kill", &[&format!("-{sig}"), &self.pid().to_string()]);
    }

    /// Waits for the process to exit by itself (up to `timeout`); returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// qemu-ga on a serial channel of two pseudo-terminals and a relay ([`Peer::qemu_ga_serial`]).
/// The channel lives as long as this does, whoever opens and closes its client end: what
/// the agent sends while no client reads waits in it, as it does in a guest's serial port.
/// Dropping it kills the agent and stops the relay.
pub struct SerialAgent {
    /// Declared first, so dropped first: the agent is killed before its channel goes.
    peer: Peer,
    relay: Relay,
}

impl SerialAgent {
    /// The terminal the client opens (`serial:PATH`), in raw mode.
    pub fn path(&self) -> &Path {
        &self.relay.client.path
    }

    /// The qemu-ga process.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Stops carrying bytes either way (they wait in the terminals) until [`resume`](Self::resume):
    /// an agent that has stopped answering.
    pub fn pause(&self) {
        self.relay.set_paused(true);
    }

    /// Carries bytes again, those that waited first.
    pub fn resume(&self) {
        self.relay.set_paused(false);
    }

    /// How many bytes wait at the client's end, sent by the agent and read by no client.
    pub fn unread(&self) -> usize {
        let mut n: nix::libc::c_int = 0;
        // SAFETY: TIOCINQ writes one int, the terminal's input queue length, through the
        // pointer, which is valid for the call.
        let r = unsafe { nix::libc::ioctl(self.relay.client.slave.as_raw_fd(), nix::libc::TIOCINQ, &mut n) };
        assert!(r == 0, "TIOCINQ: {}", std::io::Error::last_os_error());
        n as usize
    }
}

/// A pseudo-terminal: the master (the relay's side) and the terminal (slave) end.
struct Pty {
    master: nix::pty::PtyMaster,
    /// The terminal end, held open for the channel's lifetime: a master whose terminal is
    /// open nowhere fails its reads (EIO) and a client closing its end would end the channel;
    /// held, what the relay writes waits for the next client, as in a serial port.
    slave: std::fs::File,
    path: PathBuf,
}

impl Pty {
    /// A new pseudo-terminal in raw mode. posix_openpt and open(2) rather than openpty(3): they
    /// take O_CLOEXEC at creation, so no child that another test thread spawns meanwhile
    /// inherits the descriptors (an inherited master would keep the channel open).
    fn open() -> Pty {
        use nix::fcntl::OFlag;
        use nix::sys::termios;
        let master =
            nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                .expect("posix_openpt");
        nix::pty::grantpt(&master).expect("grantpt");
        nix::pty::unlockpt(&master).expect("unlockpt");
        let path = PathBuf::from(nix::pty::ptsname_r(&master).expect("ptsname"));
        let slave = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(nix::libc::O_NOCTTY)
                .open(&path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        };
        // Raw before anyone uses it: no echo, no line editing, no byte translated.
        let mut t = termios::tcgetattr(&slave).expect("tcgetattr");
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(&slave, termios::SetArg::TCSANOW, &t).expect("tcsetattr");
        Pty { master, slave, path }
    }

    /// Pings the agent through this (its) terminal until it answers, then reads until it has
    /// been quiet for a moment, so that no answer to an extra ping is left for the client.
    fn wait_for_agent(&self, peer: &mut Peer) {
        const PING: &[u8] = b"{\"execute\":\"guest-ping\"}\n";
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        let mut answered = false;
        while !answered {
            assert!(Instant::now() < deadline, "qemu-ga did not answer on its serial port within 20 s");
            if let Ok(Some(status)) = peer.child.try_wait() {
                panic!("qemu-ga exited at start-up ({status})");
            }
            write_all(self.master.as_fd(), PING);
            // A ping sent before qemu-ga opened (and flushed) the terminal is never answered:
            // one more after a pause.
            answered = read_for(self.master.as_fd(), Duration::from_millis(100), &mut got);
            answered = answered && got.windows(14).any(|w| w == b"{\"return\": {}}");
        }
        while read_for(self.master.as_fd(), Duration::from_millis(200), &mut got) {}
    }
}

/// Reads from non-blocking `fd` into `got` what comes within `quiet`; false when nothing did.
fn read_for(fd: std::os::fd::BorrowedFd<'_>, quiet: Duration, got: &mut Vec<u8>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(quiet).expect("a short timeout");
    if poll(&mut fds, ms).expect("poll") == 0 {
        return false;
    }
    let mut buf = [0u8; 4096];
    match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
        Ok(n) => {
            got.extend_from_slice(&buf[..n]);
            n > 0
        }
        Err(nix::errno::Errno::EAGAIN) => true,
        Err(e) => panic!("read from the agent's terminal: {e}"),
    }
}

/// Writes all of `bytes` to non-blocking `fd`, waiting for room.
fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut bytes: &[u8]) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                poll(&mut fds, PollTimeout::from(100u8)).expect("poll");
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("write to a terminal: {e}"),
        }
    }
}

/// The thread that joins two pseudo-terminals' masters, copying bytes both ways.
struct Relay {
    client: Pty,
    /// The agent's pty, kept (its terminal end held open) for the relay's lifetime.
    _agent: Arc<Pty>,
    paused: Arc<AtomicBool>,
    /// Written to wake the thread (pause, resume); closed to stop it.
    control: Option<std::os::unix::net::UnixStream>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(agent: Pty, client: Pty) -> Relay {
        let agent = Arc::new(agent);
        let paused = Arc::new(AtomicBool::new(false));
        let (control, wake) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let client_master = client.master.as_fd().try_clone_to_owned().expect("dup");
        let thread = {
            let (agent, paused) = (Arc::clone(&agent), Arc::clone(&paused));
            std::thread::spawn(move || relay(agent.master.as_fd(), client_master.as_fd(), wake, &paused))
        };
        Relay { client, _agent: agent, paused, control: Some(control), thread: Some(thread) }
    }

    fn set_paused(&self, yes: bool) {
        use std::io::Write;
        self.paused.store(yes, Ordering::SeqCst);
        let _ = self.control.as_ref().expect("the relay runs").write_all(b"!");
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        drop(self.control.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies bytes between the masters `a` and `b` (non-blocking) until `control` closes, each
/// way through a buffer of its own: a side that takes nothing (a full terminal no client
/// reads) holds up only its own direction, and the stop is never held up.
fn relay(
    a: std::os::fd::BorrowedFd<'_>,
    b: std::os::fd::BorrowedFd<'_>,
    mut control: std::os::unix::net::UnixStream,
    paused: &AtomicBool,
) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::io::Read;
    let (mut a_to_b, mut b_to_a): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 4096];
    loop {
        let running = !paused.load(Ordering::SeqCst);
        let wants = |pending_in: &Vec<u8>, pending_out: &Vec<u8>| {
            let mut f = PollFlags::empty();
            if running && pending_in.is_empty() {
                f |= PollFlags::POLLIN;
            }
            if running && !pending_out.is_empty() {
                f |= PollFlags::POLLOUT;
            }
            f
        };
        let mut fds = [
            PollFd::new(control.as_fd(), PollFlags::POLLIN),
            PollFd::new(a, wants(&a_to_b, &b_to_a)),
            PollFd::new(b, wants(&b_to_a, &a_to_b)),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("relay poll: {e}"),
        }
        if fds[0].any().unwrap_or(false) {
            let mut byte = [0u8; 64];
            if matches!(control.read(&mut byte), Ok(0) | Err(_)) {
                return;
            }
            continue;
        }
        if paused.load(Ordering::SeqCst) {
            continue;
        }
        for (from, to, pending) in [(a, b, &mut a_to_b), (b, a, &mut b_to_a)] {
            if pending.is_empty() {
                match nix::unistd::read(from.as_raw_fd(), &mut buf) {
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                    // EIO: no terminal end open (cannot happen: both are held).
                    Err(e) => panic!("relay read: {e}"),
                }
            }
            if !pending.is_empty() {
                match nix::unistd::write(to, pending) {
                    Ok(n) => drop(pending.drain(..n)),
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                    Err(e) => panic!("relay write: {e}"),
                }
            }
        }
    }
}

/// The guest-agent commands [`Peer::qemu_ga`] blocks: everything that would shut down,
/// suspend, freeze, trim or reconfigure this host, or change its users, keys or clock.
pub const GA_BLOCKED: &[&str] = &[
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
    "guest-fsfreeze-freeze",
    "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-thaw",
    "guest-fstrim",
    "guest-set-user-password",
    "guest-set-vcpus",
    "guest-set-memory-blocks",
    "guest-set-time",
    "guest-ssh-add-authorized-keys",
    "guest-ssh-remove-authorized-keys",
    "guest-network-set-interface",
];

/// True when a unix socket at `path` is listening, read from /proc/net/unix (a probe
/// connection would take QEMU's one client slot).
pub fn is_listening(path: &Path) -> bool {
    /// `__SO_ACCEPTCON` in /proc/net/unix's Flags column: the socket is listening.
    const ACCEPTCON: u32 = 1 << 16;
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return path.exists();
    };
    let want = path.to_string_lossy();
    table.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() >= 8
            && cols[7] == want
            && u32::from_str_radix(cols[3], 16).is_ok_and(|flags| flags & ACCEPTCON != 0)
    })
}

/// Has `fd` survive `cmd`'s exec under its own number: FD_CLOEXEC is cleared in the child
/// between fork and exec (the parent's copy keeps its flag).
pub fn keep_open_across_exec(cmd: &mut Command, fd: std::os::fd::RawFd) {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl, which is
    // async-signal-safe; it allocates nothing and uses only the copied fd number.
    unsafe {
        cmd.pre_exec(move || {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map(drop).map_err(std::io::Error::from)
        });
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

/// True when something listens on TCP `port` (any local address), read from /proc/net/tcp
/// and /proc/net/tcp6 (a probe connection would take QEMU's one client slot).
pub fn tcp_listening(port: u16) -> bool {
    /// TCP_LISTEN in the `st` column.
    const LISTEN: &str = "0A";
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let Ok(table) = std::fs::read_to_string(table) else { return false };
        table.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 3
                && cols[3] == LISTEN
                && cols[1].rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok()) == Some(port)
        })
    })
}

/// True when process `pid` holds a socket listening on TCP `port`: the socket's inode from
/// /proc/net/tcp{,6} among the process's descriptors.
pub fn tcp_listening_by(port: u16, pid: u32) -> bool {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            inodes.iter().any(|inode| target == format!("socket:[{inode}]"))
        })
    })
}

/// The inodes of the sockets listening on TCP `port`.
fn listening_inodes(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(table) = std::fs::read_to_string(table) else { continue };
        for line in table.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let on_port = cols
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if cols.len() > 9 && cols[3] == "0A" && on_port == Some(port) {
                inodes.push(cols[9].to_owned());
            }
        }
    }
    inodes
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("qmp-test-").tempdir().expect("create a temporary directory")
}

fn run(bin: &str, args: &[&str]) {
    require(bin);
    let status = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    assert!(status.success(), "{bin} {args:?} failed: {status}");
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
