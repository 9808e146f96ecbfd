//! `qmp ga exec [--env K=V]... [--input FILE|-] -- PROGRAM [ARG...]`: runs a program in the
//! guest as `ssh host cmd` would, from our side: its stdout and stderr written to ours as they
//! were, and its exit code ours (128+N for a signal).

use std::io::{Read, Write};
use std::process::ExitCode;

use crate::error::CliError;

/// `qmp ga exec`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// An environment entry for the program (it gets only those given); repeatable
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<String>,

    /// Data for the program's standard input: a file, or - for ours [default: none]
    #[arg(long, value_name = "FILE")]
    pub input: Option<String>,

    /// The program (a path in the guest: the agent does not search PATH) and its arguments
    #[arg(required = true, last = true, value_name = "PROGRAM")]
    pub command: Vec<String>,
}

fn parse_env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Runs it; the exit code is the program's.
pub fn run(ga: &super::GaArgs, args: &ExecArgs) -> Result<ExitCode, CliError> {
    let (program, rest) =
        args.command.split_first().ok_or_else(|| CliError::Usage("no program given".into()))?;
    let mut run =
        qmp::ga::Exec::new(program.clone()).args(rest.iter().cloned()).env(args.env.iter().cloned());
    if let Some(from) = &args.input {
        run = run.input(read_input(from)?);
    }
    let out = crate::block_on(super::bounded(ga, true, async {
        let agent = super::connect(ga).await?;
        Ok(agent.without_timeout().exec(&run).await?)
    }))?;
    let wrote = std::io::stdout()
        .lock()
        .write_all(&out.stdout)
        .and_then(|()| std::io::stdout().flush())
        .and_then(|()| std::io::stderr().lock().write_all(&out.stderr));
    if let Err(e) = wrote {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(CliError::Output(e));
        }
    }
    if out.truncated {
        eprintln!("qmp: the agent cut the program's output short (it keeps at most 16 MiB of each stream)");
    }
    // Exit codes are a byte; a shell reports code 256 as 0, and so do we.
    Ok(ExitCode::from(out.status.shell_code().rem_euclid(256) as u8))
}

fn read_input(from: &str) -> Result<Vec<u8>, CliError> {
    let mut data = Vec::new();
    let read = if from == "-" {
        std::io::stdin().lock().read_to_end(&mut data).map(drop)
    } else {
        std::fs::File::open(from).and_then(|mut f| f.read_to_end(&mut data)).map(drop)
    };
    read.map_err(|e| CliError::Usage(format!("--input {from}: {e}")))?;
    Ok(data)
}
