//! Finding the server and connecting to it, shared by the one-shot command and the shell.

use std::future::Future;

use qmp::{Address, Client};

use crate::error::{CliError, TimedOut};
use crate::GlobalOpts;

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
    let address = resolve_address(global)?;
    Client::builder().connect(address).await.map_err(connect_error)
}

/// A QMP error while connecting is a failed negotiation: a connection error, not the
/// command's (exit code 3, not 1).
fn connect_error(e: qmp::Error) -> CliError {
    match e {
        qmp::Error::Qmp(q) => CliError::Connection(format!("negotiation failed: {q}")),
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
        let _ = sim.serve_stream(theirs).await;
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
