//! `qmp-bench-idle --socket P --mode M`: a small program that connects to P, runs one
//! `query-status`, and idles (until killed, its stdin closes, or the peer goes away), so the bench can read its resident
//! memory. A separate binary, so the figure is the client's (and its runtime's) and not the
//! benchmark's. Modes: `multi-thread` (`#[tokio::main]`'s default runtime), `current-thread`,
//! `blocking` (`qmp::blocking::Client`), and `floor` (a raw std socket, for reference).

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let (Some(socket), mode) = (opt("--socket").map(PathBuf::from), opt("--mode").unwrap_or_default()) else {
        eprintln!("usage: qmp-bench-idle --socket PATH --mode multi-thread|current-thread|blocking|floor");
        return ExitCode::from(2);
    };
    match run(&socket, &mode) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qmp-bench-idle: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(socket: &std::path::Path, mode: &str) -> io::Result<()> {
    let err = |e: qmp::Error| io::Error::other(e.to_string());
    match mode {
        "floor" => {
            let mut s = std::os::unix::net::UnixStream::connect(socket)?;
            s.write_all(b"{\"execute\":\"qmp_capabilities\"}{\"execute\":\"query-status\"}")?;
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while got.iter().filter(|&&b| b == b'\n').count() < 3 {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    return Err(io::Error::other("the peer closed the connection"));
                }
                got.extend_from_slice(&buf[..n]);
            }
            idle()
        }
        "blocking" => {
            let c = qmp::blocking::Client::connect(socket).map_err(err)?;
            c.execute(qmp::commands::QueryStatus).map_err(err)?;
            idle()
        }
        "current-thread" | "multi-thread" => {
            let rt = if mode == "current-thread" {
                tokio::runtime::Builder::new_current_thread().enable_all().build()?
            } else {
                tokio::runtime::Builder::new_multi_thread().enable_all().build()?
            };
            rt.block_on(async {
                let c = qmp::Client::connect(socket).await.map_err(err)?;
                c.execute(qmp::commands::QueryStatus).await.map_err(err)?;
                // Idle on the runtime, as an application awaiting something would; the bench
                // kills this process, and it ends by itself when the peer goes away.
                println!("ready");
                io::stdout().flush()?;
                c.closed().await;
                Ok(())
            })
        }
        other => Err(io::Error::other(format!("unknown mode {other:?}"))),
    }
}

/// Says "ready", then waits for stdin to close (the bench holds the other end).
fn idle() -> io::Result<()> {
    println!("ready");
    io::stdout().flush()?;
    let mut sink = Vec::new();
    io::stdin().read_to_end(&mut sink)?;
    Ok(())
}
