//! `qmp launch`: start QEMU with a QMP socket that connects back to us, then the shell.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use qmp::{Address, Client};

use super::finish::{signal_code, status_number, Launched, Terminations};
use super::repl::Peer;
use super::{start, CommonArgs};
use crate::error::code;

/// `qmp launch`'s options: the shell's, then the QEMU command line.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(after_help = super::SHELL_HELP)]
pub struct LaunchArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The QEMU command line (after `--`); `-qmp unix:SOCKET` is added to it
    /// [default: qemu-system-x86_64]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "QEMU-COMMAND")]
    pub command: Vec<String>,
}

/// A private directory (mode 0700) for the socket, named after this process.
fn socket_dir() -> std::io::Result<PathBuf> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("qmp-launch-{}-{nanos}", std::process::id()));
    qmp_unix::create_private_dir(&dir)?;
    Ok(dir)
}

/// Runs `qmp launch`: QEMU's exit status becomes ours.
pub async fn launch(args: LaunchArgs) -> ExitCode {
    let mut command = args.command.clone();
    if command.first().map(String::as_str) == Some("--") {
        command.remove(0);
    }
    if command.is_empty() {
        command.push("qemu-system-x86_64".into());
    }
    // Caught before QEMU starts, so that no moment leaves it running without us.
    let mut signals = match Terminations::catch() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("qmp: cannot catch SIGTERM and SIGHUP: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = match socket_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("qmp: cannot make a directory for the QMP socket: {e}");
            return ExitCode::from(code::CONNECTION);
        }
    };
    let socket = dir.join("qmp.sock");
    let listener = match Client::builder().listen(Address::Unix(socket.clone())) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            eprintln!("qmp: {e}");
            return ExitCode::from(code::CONNECTION);
        }
    };
    let mut spawned = Command::new(&command[0]);
    spawned
        .args(&command[1..])
        .arg("-qmp")
        .arg(format!("unix:{}", socket.display()))
        // The terminal belongs to the shell: no input, and Ctrl-C (which stops the shell's wait
        // for a reply) does not reach QEMU in its own process group. Ctrl-D quits it.
        .stdin(Stdio::null())
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only makes one
    // async-signal-safe system call (prctl).
    let spawned = unsafe {
        spawned.pre_exec(|| {
            // Should we die without cleaning up (SIGKILL, an abort), QEMU is told to exit too
            // rather than run on as an orphan. (launch runs on the thread that stays.)
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        })
    }
    .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            drop(listener);
            let _ = std::fs::remove_dir_all(&dir);
            if e.kind() == std::io::ErrorKind::NotFound {
                eprintln!("qmp: QEMU executable '{}' not found", command[0]);
            } else {
                eprintln!("qmp: cannot start '{}': {e}", command[0]);
            }
            return ExitCode::from(code::USAGE);
        }
    };
    let mut launched = Launched { child, socket_dir: dir };
    // Wait for QEMU to connect, unless it exits first (a bad option, a missing file).
    let client = {
        let accept = listener.accept();
        tokio::pin!(accept);
        loop {
            tokio::select! {
                result = &mut accept => break result,
                signal = signals.next() => {
                    launched.terminate(Duration::from_secs(10));
                    eprintln!("qmp: ended by {signal}");
                    return ExitCode::from(signal_code(signal));
                }
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    if let Ok(Some(status)) = launched.child.try_wait() {
                        launched.remove_socket();
                        eprintln!("qmp: QEMU exited before connecting ({status})");
                        return ExitCode::from(status_number(status).max(1));
                    }
                }
            }
        }
    };
    // The socket is not needed once QEMU is connected.
    drop(listener);
    match client {
        Ok(client) => start(Peer::Qmp(client), args.common.options(true), Some(launched), signals).await,
        Err(e) => {
            eprintln!("qmp: QEMU did not complete the QMP handshake: {e}");
            let _ = launched.child.kill();
            let status = launched.wait(Duration::from_secs(5));
            launched.remove_socket();
            ExitCode::from(status_number(status).max(1))
        }
    }
}
