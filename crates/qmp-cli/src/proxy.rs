//! `qmp proxy` and `qmp replay`: the command-line side of `qmp_server::proxy` and
//! `qmp_server::replay`.

use std::path::PathBuf;
use std::time::Duration;

use qmp_server::proxy::{Listen, Policy, Proxy, Recorder, Upstream};
use qmp_server::replay::{Recording, Replay, ReplayError};

use crate::error::CliError;
use crate::GlobalOpts;

/// `qmp proxy`: many clients on one QEMU monitor.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "LISTENER SPEC: PATH[,read-only][,allow=GLOB]...[,deny=GLOB]...[,mode=OCTAL][,group=NAME|GID]

A command is refused when it matches a deny glob; otherwise it runs when it matches an allow \
glob, or when the listener has none. read-only allows query-*, x-query-*, qom-list, qom-get, \
qom-list-types, qom-list-properties and device-list-properties (allow= adds to it).

  qmp proxy --upstream /run/vm1/qmp.sock --listen /run/vm1/admin.sock \\
      --listen-read-only /run/vm1/monitor.sock \\
      --listen '/run/vm1/ops.sock,allow=query-*,allow=stop,allow=cont,mode=0660,group=kvm'"
)]
pub struct ProxyArgs {
    /// QEMU's monitor: a unix path, unix:PATH, HOST:PORT, or tls:HOST:PORT (with the global
    /// --tls-ca and, for verify-peer=yes, --tls-cert/--tls-key)
    #[arg(long, value_name = "ADDR")]
    upstream: String,

    /// Serve clients on this unix socket (see LISTENER SPEC for per-socket policy)
    #[arg(long, value_name = "SPEC", value_parser = parse_listen)]
    listen: Vec<ListenSpec>,

    /// Serve clients on this socket with the read-only policy (same SPEC)
    #[arg(long, value_name = "SPEC", value_parser = parse_listen)]
    listen_read_only: Vec<ListenSpec>,

    /// Permission bits of sockets whose SPEC gives no mode=
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode, default_value = "0600")]
    mode: u32,

    /// Group of sockets whose SPEC gives no group=
    #[arg(long, value_name = "NAME|GID")]
    group: Option<String>,

    /// Write every message in both directions to FILE (JSON lines, mode 0600)
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,

    /// When QEMU goes away, hold the clients and reconnect to it for up to SECONDS (a QEMU
    /// restarted on the same socket); each negotiated client is then sent the event
    /// __qmp_proxy.UPSTREAM_RECONNECTED. Without it, the clients are disconnected at once
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_timeout)]
    reconnect: Option<Duration>,

    /// Bytes of unread output after which a client is disconnected
    #[arg(long, value_name = "BYTES", default_value_t = qmp_server::proxy::DEFAULT_BACKLOG)]
    backlog: usize,

    /// Clients each socket serves at once; one more is sent a QMP error and disconnected
    #[arg(
        long,
        value_name = "N",
        default_value_t = qmp_server::DEFAULT_MAX_CONNECTIONS as u64,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    max_clients: u64,
}

/// `qmp replay`: serve a recording as a fake QEMU.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The record written by `qmp proxy --record`
    file: PathBuf,

    /// The unix socket to serve on
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,

    /// End (exit code 1) at the first request the recording does not have
    #[arg(long)]
    strict: bool,
}

/// One `--listen` value, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenSpec {
    path: PathBuf,
    read_only: bool,
    allow: Vec<String>,
    deny: Vec<String>,
    mode: Option<u32>,
    group: Option<String>,
}

fn parse_listen(s: &str) -> Result<ListenSpec, String> {
    let mut parts = s.split(',');
    let path = parts.next().filter(|p| !p.is_empty()).ok_or("a listener needs a socket path")?;
    let mut spec = ListenSpec {
        path: path.into(),
        read_only: false,
        allow: Vec::new(),
        deny: Vec::new(),
        mode: None,
        group: None,
    };
    for part in parts {
        match part.split_once('=') {
            None if part == "read-only" => spec.read_only = true,
            Some(("allow", g)) if !g.is_empty() => spec.allow.push(g.into()),
            Some(("deny", g)) if !g.is_empty() => spec.deny.push(g.into()),
            Some(("mode", m)) => spec.mode = Some(parse_mode(m)?),
            Some(("group", g)) if !g.is_empty() => spec.group = Some(g.into()),
            _ => {
                return Err(format!(
                    "{part:?}: expected read-only, allow=GLOB, deny=GLOB, mode=OCTAL or group=NAME"
                ))
            }
        }
    }
    Ok(spec)
}

fn parse_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("{s:?} is not a mode (octal, at most 0777)")),
    }
}

fn resolve_group(g: &str) -> Result<u32, CliError> {
    if let Ok(gid) = g.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(g) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        _ => Err(CliError::Usage(format!("--group: no group named {g:?}"))),
    }
}

fn listener(spec: &ListenSpec, read_only: bool, args: &ProxyArgs) -> Result<Listen, CliError> {
    let mut policy = if read_only || spec.read_only { Policy::read_only() } else { Policy::allow_all() };
    for g in &spec.allow {
        policy = policy.allow(g);
    }
    for g in &spec.deny {
        policy = policy.deny(g);
    }
    let mut l = Listen::new(&spec.path).mode(spec.mode.unwrap_or(args.mode)).policy(policy);
    if let Some(g) = spec.group.as_ref().or(args.group.as_ref()) {
        l = l.group(resolve_group(g)?);
    }
    Ok(l)
}

/// One thread: the proxy waits on sockets and does little per message. perf: against the
/// fast peer, serial 88-89 µs a call on one thread, 97-98 on two workers; 64 in flight 4.2-4.8
/// against 4.4-5.6 (`qmp-bench --proxy`, 2026-12-03).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        // Only fails when the OS refuses an epoll fd: nothing sensible to do.
        .expect("cannot start the async runtime")
}

/// Logs at info level when RUST_LOG does not say otherwise (a proxy is a service).
fn default_logging() {
    if std::env::var_os("RUST_LOG").is_none() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("qmp_server=info"))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Runs the proxy until QEMU goes away (exit 0) or SIGINT/SIGTERM.
pub fn run_proxy(global: &GlobalOpts, args: ProxyArgs) -> Result<(), CliError> {
    if args.listen.is_empty() && args.listen_read_only.is_empty() {
        return Err(CliError::Usage("qmp proxy: give at least one --listen or --listen-read-only".into()));
    }
    let mut listeners = Vec::new();
    for s in &args.listen {
        listeners.push(listener(s, false, &args)?);
    }
    for s in &args.listen_read_only {
        listeners.push(listener(s, true, &args)?);
    }
    let recorder = match &args.record {
        Some(path) => Some(
            Recorder::create(path)
                .map_err(|e| CliError::Usage(format!("--record {}: {e}", path.display())))?,
        ),
        None => None,
    };
    default_logging();
    let mut upstream = global.clone();
    upstream.socket = Some(args.upstream.clone());
    let address = crate::connect::resolve_address(&upstream)?;
    let mut how = Upstream::default();
    if let Some(tls) = global.connect.tls_config(&address)? {
        how = how.tls(tls);
    }
    if let Some(limit) = args.reconnect {
        how = how.reconnect(limit);
    }
    runtime().block_on(async move {
        let proxy = Proxy::connect_with(&address, how)
            .await
            .map_err(|e| CliError::Connection(format!("qmp proxy: {address}: {e}")))?;
        let mut proxy = proxy.backlog(args.backlog).max_clients(args.max_clients as usize);
        for l in listeners {
            proxy = proxy.listen(l);
        }
        if let Some(r) = recorder {
            proxy = proxy.record(r);
        }
        let bound = proxy.bind().map_err(|e| CliError::Connection(format!("qmp proxy: {e}")))?;
        let paths: Vec<PathBuf> =
            args.listen.iter().chain(&args.listen_read_only).map(|s| s.path.clone()).collect();
        eprintln!("qmp proxy: serving {} on {}", args.upstream, join(&paths));
        tokio::select! {
            () = bound.serve() => Ok(()),
            () = terminated() => {
                for p in &paths {
                    let _ = std::fs::remove_file(p);
                }
                Ok(())
            }
        }
    })
}

/// Serves the recording until SIGINT/SIGTERM, or (strict) the first mismatch (exit 1).
pub fn run_replay(args: ReplayArgs) -> Result<(), CliError> {
    let recording = Recording::load(&args.file)
        .map_err(|e| CliError::Usage(format!("qmp replay: {}: {e}", args.file.display())))?;
    default_logging();
    runtime().block_on(async move {
        let server = Replay::new(recording)
            .strict(args.strict)
            .bind(&args.socket)
            .map_err(|e| CliError::Connection(format!("qmp replay: {e}")))?;
        eprintln!("qmp replay: serving {} on {}", args.file.display(), args.socket.display());
        tokio::select! {
            r = server.serve() => match r {
                // Exit code 1, as for a QMP error: the error the client was sent.
                Err(ReplayError::Mismatch(desc)) => Err(CliError::Qmp(qmp::QmpError::new(qmp::ErrorClass::GenericError, desc))),
                Err(e) => Err(CliError::Connection(format!("qmp replay: {e}"))),
                Ok(()) => Ok(()),
            },
            () = terminated() => {
                let _ = std::fs::remove_file(&args.socket);
                Ok(())
            }
        }
    })
}

async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    // Give nothing else a chance to linger.
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn join(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_specs() {
        let s = parse_listen("/run/a.sock,allow=query-*,deny=query-migrate,mode=0660,group=kvm").unwrap();
        assert_eq!(s.path, PathBuf::from("/run/a.sock"));
        assert_eq!((s.allow, s.deny), (vec!["query-*".to_string()], vec!["query-migrate".to_string()]));
        assert_eq!((s.mode, s.group.as_deref()), (Some(0o660), Some("kvm")));
        assert!(parse_listen("/run/b.sock,read-only").unwrap().read_only);
        assert!(parse_listen("/run/b.sock,bogus").is_err());
        assert!(parse_listen(",allow=x").is_err());
        assert!(parse_listen("/x,mode=999").is_err());
    }
}
