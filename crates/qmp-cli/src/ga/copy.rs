//! `qmp ga cp SRC DST`: copies a file into or out of the guest, one side written
//! `guest:PATH`, the other a local path or `-` (standard input or output); any size, in the
//! agent's chunks, with a progress bar when stderr is a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::CliError;

/// `qmp ga cp`'s arguments.
#[derive(clap::Args, Debug)]
pub struct CpArgs {
    /// What to copy: guest:PATH, a local path, or - for standard input
    #[arg(value_name = "SRC")]
    pub src: String,

    /// Where to: guest:PATH, a local path, or - for standard output
    #[arg(value_name = "DST")]
    pub dst: String,

    /// No progress bar, even on a terminal
    #[arg(short, long)]
    pub quiet: bool,
}

/// Which way a copy goes.
#[derive(Debug, PartialEq, Eq)]
enum Direction<'a> {
    /// Out of the guest: its path, and ours.
    Out { guest: &'a str, local: &'a str },
    /// Into the guest.
    In { local: &'a str, guest: &'a str },
}

fn direction<'a>(src: &'a str, dst: &'a str) -> Result<Direction<'a>, CliError> {
    let guest = |s: &'a str| s.strip_prefix("guest:");
    match (guest(src), guest(dst)) {
        (Some(g), None) if !g.is_empty() => Ok(Direction::Out { guest: g, local: dst }),
        (None, Some(g)) if !g.is_empty() => Ok(Direction::In { local: src, guest: g }),
        (Some(_), Some(_)) => Err(CliError::Usage("both sides are guest:PATH; one must be local".into())),
        (None, None) => Err(CliError::Usage(format!(
            "neither {src:?} nor {dst:?} is guest:PATH; write the guest's side as guest:/path/in/guest"
        ))),
        _ => Err(CliError::Usage("guest: needs a path (guest:/path/in/guest)".into())),
    }
}

/// Runs the copy.
pub fn run(ga: &super::GaArgs, args: &CpArgs) -> Result<(), CliError> {
    let way = direction(&args.src, &args.dst)?;
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(new_bar);
    let shown = bar.clone();
    let progress = move |p: qmp::ga::Progress| {
        if let Some(bar) = &shown {
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.done);
        }
    };
    let copied = crate::block_on(super::bounded(ga, true, async {
        let agent = super::connect(ga).await?;
        match way {
            Direction::Out { guest, local } => {
                let mut to = open_local_write(local).await?;
                Ok(agent.download(guest, &mut to, progress).await?)
            }
            Direction::In { local, guest } => {
                let from = open_local_read(local).await?;
                Ok(agent.upload(guest, from, progress).await?)
            }
        }
    }));
    if let Some(bar) = bar {
        match &copied {
            Ok(n) => bar.finish_with_message(format!("{} copied", indicatif::HumanBytes(*n))),
            Err(_) => bar.abandon(),
        }
    }
    copied.map(drop)
}

fn new_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn open_local_read(path: &str) -> Result<Box<dyn AsyncRead + Unpin + Send>, CliError> {
    if path == "-" {
        return Ok(Box::new(tokio::io::stdin()));
    }
    let file = tokio::fs::File::open(path).await.map_err(|e| CliError::Usage(format!("{path}: {e}")))?;
    Ok(Box::new(file))
}

async fn open_local_write(path: &str) -> Result<Box<dyn AsyncWrite + Unpin + Send>, CliError> {
    if path == "-" {
        return Ok(Box::new(tokio::io::stdout()));
    }
    let file = tokio::fs::File::create(path).await.map_err(|e| CliError::Usage(format!("{path}: {e}")))?;
    Ok(Box::new(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_side_is_the_guests() {
        assert_eq!(
            direction("guest:/etc/hosts", "h").unwrap(),
            Direction::Out { guest: "/etc/hosts", local: "h" }
        );
        assert_eq!(direction("-", "guest:/tmp/x").unwrap(), Direction::In { local: "-", guest: "/tmp/x" });
        for (src, dst) in [("a", "b"), ("guest:/a", "guest:/b"), ("guest:", "b")] {
            assert!(matches!(direction(src, dst), Err(CliError::Usage(_))), "{src} {dst}");
        }
    }
}
