//! Finding the server and connecting to it, shared by the one-shot command and the shell:
//! the address, or a socket inherited as a file descriptor (`--fd`); TLS for `tls:HOST:PORT`
//! (`--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-server-name`); waiting for a server that is
//! starting (`--wait`).

use std::future::Future;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use qmp::{Address, Client, ClientBuilder, SocketKind};

use crate::error::{CliError, TimedOut};
use crate::GlobalOpts;

/// How to reach the server besides its address; given before the command (and, for the
/// shell, after `shell` too).
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Connection")]
pub struct ConnectOpts {
    /// Retry connecting for up to SECONDS while the socket does not exist or the connection is
    /// refused (a QEMU that is starting); counts within --timeout. Running out is exit code 3
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_timeout, conflicts_with = "fd", allow_negative_numbers = true)]
    pub wait: Option<Duration>,

    /// Talk on the socket inherited as file descriptor N (connected, unix or TCP; a listening
    /// one: take the first peer that connects) instead of connecting to an address
    #[arg(long, value_name = "N", value_parser = parse_fd, conflicts_with_all = ["socket", "sim"])]
    pub fd: Option<InheritedFd>,

    /// For a tls:HOST:PORT address: the CA certificate (PEM) that signed the server's, as
    /// QEMU's ca-cert.pem
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// For tls:HOST:PORT: a client certificate (PEM) to present, for a QEMU with
    /// verify-peer=yes (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// For tls:HOST:PORT: the client certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// For tls:HOST:PORT: the name the server's certificate must be valid for [default: HOST]
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
}

impl ConnectOpts {
    /// These options with `over`'s wherever `over` gives one (the shell's own over the
    /// global ones).
    pub fn overridden_by(&self, over: &ConnectOpts) -> ConnectOpts {
        ConnectOpts {
            wait: over.wait.or(self.wait),
            fd: over.fd.or(self.fd),
            tls_ca: over.tls_ca.clone().or_else(|| self.tls_ca.clone()),
            tls_cert: over.tls_cert.clone().or_else(|| self.tls_cert.clone()),
            tls_key: over.tls_key.clone().or_else(|| self.tls_key.clone()),
            tls_server_name: over.tls_server_name.clone().or_else(|| self.tls_server_name.clone()),
        }
    }

    /// Whether any TLS option is given.
    pub fn any_tls(&self) -> bool {
        self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_server_name.is_some()
    }

    /// The builder with TLS and waiting as these options say for `address`; TLS options for
    /// another kind of address, or a `tls:` address without a CA, are usage errors, and so
    /// is a PEM file that is missing, unreadable or holds no certificate or key.
    fn configure(&self, mut builder: ClientBuilder, address: &Address) -> Result<ClientBuilder, CliError> {
        if let Some(wait) = self.wait {
            builder = builder.wait(wait);
        }
        Ok(match self.tls_config(address)? {
            Some(tls) => builder.tls(tls),
            None => builder,
        })
    }

    /// The TLS configuration the options give for `address` (`None` for a plain address);
    /// a usage error for TLS options without a tls: address, or a tls: address without a CA.
    pub fn tls_config(&self, address: &Address) -> Result<Option<qmp::TlsConfig>, CliError> {
        match address {
            Address::Tls(_) => {
                let Some(ca) = &self.tls_ca else {
                    return Err(CliError::Usage(format!(
                        "{address} needs --tls-ca FILE: the CA certificate that signed the server's (QEMU's ca-cert.pem)"
                    )));
                };
                let mut tls = qmp::TlsConfig::builder().ca_file(ca);
                if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
                    tls = tls.client_cert_files(cert, key);
                }
                if let Some(name) = &self.tls_server_name {
                    tls = tls.server_name(name);
                }
                Ok(Some(tls.build().map_err(|e| CliError::Usage(e.to_string()))?))
            }
            _ if self.any_tls() => Err(CliError::Usage(format!(
                "--tls-ca, --tls-cert, --tls-key and --tls-server-name are for tls:HOST:PORT addresses, not {address}"
            ))),
            _ => Ok(None),
        }
    }
}

/// A socket the process inherited, checked when the command line is read (before this
/// process opens any descriptor of its own): open, and a stream socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InheritedFd {
    /// The descriptor's number.
    pub fd: i32,
    /// What it is.
    pub kind: SocketKind,
}

/// `--fd N`: N must be an open descriptor and a unix or TCP stream socket.
fn parse_fd(s: &str) -> Result<InheritedFd, String> {
    let fd: i32 = s.trim().parse().map_err(|_| format!("{s:?} is not a file descriptor number"))?;
    if fd < 0 {
        return Err(format!("{fd} is not a file descriptor number"));
    }
    if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return Err(format!("fd {fd} is not open (a parent must leave it open across exec: no FD_CLOEXEC)"));
    }
    // SAFETY: fd is open (F_GETFD succeeded) and nothing closes it while it is borrowed here.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let kind = qmp::socket_kind(borrowed).map_err(|e| format!("fd {fd} is {e}"))?;
    Ok(InheritedFd { fd, kind })
}

/// A descriptor to send with the command (`--pass-fd N`), checked when the command line is
/// read (before this process opens any descriptor of its own): open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassFd(i32);

/// `--pass-fd N`: N must be an open descriptor of this process, inherited from its parent.
pub fn parse_pass_fd(s: &str) -> Result<PassFd, String> {
    let fd: i32 = s.trim().parse().map_err(|_| format!("{s:?} is not a file descriptor number"))?;
    if fd < 0 {
        return Err(format!("{fd} is not a file descriptor number"));
    }
    if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return Err(format!(
            "fd {fd} is not open (open it for qmp, as the shell's `{fd}</path/to/file` does, and leave it open across exec)"
        ));
    }
    Ok(PassFd(fd))
}

impl PassFd {
    /// The descriptor's number.
    pub fn number(self) -> i32 {
        self.0
    }

    /// The descriptor, borrowed for sending.
    pub fn borrow(self) -> BorrowedFd<'static> {
        // SAFETY: parse_pass_fd found it open when the command line was read, before this
        // process opened descriptors of its own, so it is the inherited one; the process never
        // closes it (it is not owned here, and check_pass_fds refuses the --fd socket, the one
        // inherited descriptor that is taken over), so it stays open until the process exits.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

/// `--pass-fd` needs a unix socket to the server (SCM_RIGHTS): refused, before connecting,
/// for a TCP or TLS address and for an inherited TCP socket, and for the `--fd` socket itself.
pub fn check_pass_fds(global: &GlobalOpts) -> Result<(), CliError> {
    let Some(first) = global.pass_fd.first() else { return Ok(()) };
    let needs_unix = |what: String| {
        CliError::Usage(format!(
            "--pass-fd {} sends descriptors over a unix socket (SCM_RIGHTS); {what} is not one",
            first.number()
        ))
    };
    if global.sim {
        return Ok(());
    }
    if let Some(inherited) = global.connect.fd {
        if let Some(same) = global.pass_fd.iter().find(|p| p.number() == inherited.fd) {
            return Err(CliError::Usage(format!(
                "--pass-fd {}: that is the connection's own socket (--fd {})",
                same.number(),
                inherited.fd
            )));
        }
        return match inherited.kind {
            SocketKind::UnixStream | SocketKind::UnixListener => Ok(()),
            SocketKind::TcpStream | SocketKind::TcpListener => {
                Err(needs_unix(format!("--fd {} (a TCP socket)", inherited.fd)))
            }
            _ => Err(needs_unix(format!("--fd {}", inherited.fd))),
        };
    }
    match resolve_address(global)? {
        Address::Unix(_) => Ok(()),
        other => Err(needs_unix(other.to_string())),
    }
}

/// Set once the inherited descriptor has been taken.
static FD_TAKEN: AtomicBool = AtomicBool::new(false);

impl InheritedFd {
    /// Takes ownership of the descriptor (once; it will not be passed on to children).
    fn take(self) -> Result<OwnedFd, CliError> {
        if FD_TAKEN.swap(true, Ordering::SeqCst) {
            return Err(CliError::Usage(format!("fd {} was already used", self.fd)));
        }
        // SAFETY: parse_fd found it open and a socket when the command line was read, before
        // this process opened descriptors of its own, so it is the one inherited; nothing else
        // in the process owns it, and the flag above lets it be taken only once.
        let owned = unsafe { OwnedFd::from_raw_fd(self.fd) };
        let _ = nix::fcntl::fcntl(self.fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
        Ok(owned)
    }

    async fn connect(self, builder: ClientBuilder) -> Result<Client, CliError> {
        let kind = self.kind;
        let fd = self.take()?;
        if kind.is_listening() {
            let listener = builder.listen_fd(fd).map_err(connect_error)?;
            listener.accept().await.map_err(connect_error)
        } else {
            builder.connect_fd(fd).await.map_err(connect_error)
        }
    }
}

/// Where to connect: `-s`/`--path`, else `$QMP_SOCKET`, else `$QMP_PATH` (empty means unset).
pub fn resolve_address(global: &GlobalOpts) -> Result<Address, CliError> {
    let text = match &global.socket {
        Some(s) => s.clone(),
        None => ["QMP_SOCKET", "QMP_PATH"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
            .ok_or_else(|| {
                CliError::Usage(
                    "no QMP server address: use -s ADDR, set QMP_SOCKET or QMP_PATH, or try --sim".into(),
                )
            })?,
    };
    text.parse().map_err(|e: qmp::AddressError| CliError::Usage(e.to_string()))
}

/// Connects and negotiates (oob enabled when offered), as the global options say: to the
/// server's address, or with `--sim` to a simulated QEMU in this process.
pub async fn connect(global: &GlobalOpts) -> Result<Client, CliError> {
    if global.sim {
        return connect_sim().await;
    }
    connect_with(global, Client::builder()).await
}

/// Connects with `builder`'s settings as the options say: on the inherited socket (`--fd`),
/// or to the address, with TLS and waiting as asked.
pub async fn connect_with(global: &GlobalOpts, builder: ClientBuilder) -> Result<Client, CliError> {
    let opts = &global.connect;
    if let Some(fd) = opts.fd {
        if opts.any_tls() {
            return Err(CliError::Usage(
                "--tls-ca, --tls-cert, --tls-key and --tls-server-name are for tls:HOST:PORT addresses, not --fd".into(),
            ));
        }
        return fd.connect(builder).await;
    }
    let address = resolve_address(global)?;
    let builder = opts.configure(builder, &address)?;
    tracing::debug!(%address, "connecting");
    builder.connect(address.clone()).await.map_err(|e| connect_error_at(&address, e))
}

/// [`connect_error`], saying what is at a unix path that could not be connected to.
pub fn connect_error_at(address: &Address, e: qmp::Error) -> CliError {
    match (address, e) {
        // After --wait the library's error already says what was waited for and what is there.
        (Address::Unix(path), qmp::Error::Connect { source, .. })
            if source.kind() != std::io::ErrorKind::TimedOut =>
        {
            crate::hints::unix_connect_error(path, &source, crate::hints::Listener::Monitor)
        }
        (_, e) => connect_error(e),
    }
}

/// A refused negotiation (or any QMP error while connecting) is a connection error, not the
/// command's (exit code 3, not 1).
fn connect_error(e: qmp::Error) -> CliError {
    match e {
        qmp::Error::Qmp(q) | qmp::Error::Disconnected(qmp::CloseReason::NegotiationRefused(q)) => {
            CliError::Connection(format!("negotiation failed: {q}"))
        }
        other => other.into(),
    }
}

/// A fresh simulated QEMU (crate qmp-server) served over a socket pair; the simulator lives
/// as long as its connection.
async fn connect_sim() -> Result<Client, CliError> {
    let sim = qmp_server::sim::Simulator::new();
    let (ours, theirs) = tokio::net::UnixStream::pair()
        .map_err(|e| CliError::Connection(format!("cannot make a socket pair for --sim: {e}")))?;
    tokio::spawn(async move {
        // The connection's end (the client hanging up) is the simulator's end too.
        let _ = sim.serve_unix_stream(theirs).await;
    });
    Client::builder().connect_unix_stream(ours).await.map_err(connect_error)
}

/// Runs `fut` within the command's limit (`--timeout`, `$QMP_TIMEOUT` or the default; none
/// for `--timeout 0`); running out is [`CliError::Timeout`].
pub async fn within_timeout<T>(
    global: &GlobalOpts,
    fut: impl Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    match global.command_timeout()? {
        Some((limit, source)) => tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| CliError::Timeout(Some(TimedOut { after: limit, source })))?,
        None => fut.await,
    }
}
