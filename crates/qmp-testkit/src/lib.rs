//! Starts real QEMU peers for tests: `qemu-system-x86_64 -machine none` and
//! `qemu-storage-daemon` over a qcow2 chain, and QEMU with a TLS monitor over certificates
//! made for the test ([`tls`]). A missing binary is a test failure with a message saying how
//! to install it, never a skip: the real peer is the contract.
#![warn(missing_docs)]

pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    /// server sockets (each serves one client at a time).
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
            cmd.arg("-qmp").arg(format!("unix:{},server=on,wait=off", s.display()));
        }
        cmd.args(extra);
        let peer = Peer { child: spawn(cmd), dir, sockets, tls_port: None };
        peer.wait_for_sockets();
        peer
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
                .arg(format!("socket,id=mon0,host=127.0.0.1,port={port},server=on,wait=off,tls-creds=tls0"));
            cmd.args(["-mon", "chardev=mon0,mode=control"]);
            let mut peer =
                Peer { child: spawn(cmd), dir: tempdir(), sockets: Vec::new(), tls_port: Some(port) };
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
        cmd.arg("-qmp").arg(format!("unix:{},server=on,wait=off", socket.display()));
        Peer { child: spawn(cmd), dir: tempdir(), sockets: vec![socket.to_owned()], tls_port: None }
    }

    /// `qemu-system-x86_64 -machine none` with extra arguments (a `-qmp unix:PATH` that
    /// connects to a listener of the test's, a `-qmp tcp:...` monitor), returned at once.
    pub fn qemu_unwaited(extra: &[&str]) -> Peer {
        let mut cmd = Command::new(require("qemu-system-x86_64"));
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none", "-name", "testvm"]);
        cmd.args(extra);
        Peer { child: spawn(cmd), dir: tempdir(), sockets: Vec::new(), tls_port: None }
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
        let peer = Peer { child: spawn(cmd), dir: tempdir(), sockets: Vec::new(), tls_port: None };
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
            cmd.arg("--chardev").arg(format!("socket,path={},server=on,wait=off,id=m{i}", s.display()));
            cmd.arg("--monitor").arg(format!("chardev=m{i}"));
        }
        cmd.arg("--blockdev").arg(format!("driver=file,filename={},node-name=f0", top.display()));
        cmd.arg("--blockdev").arg("driver=qcow2,file=f0,node-name=top0");
        let peer = Peer { child: spawn(cmd), dir, sockets, tls_port: None };
        peer.wait_for_sockets();
        peer
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
        let peer = Peer { child: spawn(cmd), dir, sockets: vec![socket], tls_port: None };
        peer.wait_for_sockets();
        peer
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

fn spawn(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    cmd.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}; {INSTALL_HINT}", cmd.get_program()))
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
