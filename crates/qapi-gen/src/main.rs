//! `qapi-gen`: reads QEMU's QAPI schemas and writes the merged model.
//!
//! ```text
//! qapi-gen model --qapi DIR [--tags v7.2.0,v8.0.0] --out FILE
//! qapi-gen model --tree QEMU_TREE [--tree ANOTHER]... --out FILE
//! ```
//!
//! Exit codes: 0 success, 1 a schema could not be read or the model not written, 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use qapi_gen::build::{self, Tree};

const USAGE: &str = "usage: qapi-gen model (--qapi DIR [--tags TAG,...] | --tree PATH...) --out FILE

  --qapi DIR     every DIR/<tag>/ holding qapi/qapi-schema.json, one version per tag
                 (named by the tag without its 'v'), oldest first
  --tags LIST    only these tags of --qapi (comma-separated: v7.2.0,v8.0.0)
  --tree PATH    a QEMU source tree (a newer release, a fork); its version is its VERSION
                 file's; repeatable, and may be given with --qapi
  --out FILE     where to write the model (- for stdout)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("qapi-gen: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            eprintln!("qapi-gen: {msg}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Run(String),
}

fn run(args: &[String]) -> Result<(), Failure> {
    let Some((cmd, rest)) = args.split_first() else { return Err(Failure::Usage("no command".into())) };
    if cmd == "-h" || cmd == "--help" {
        println!("{USAGE}");
        return Ok(());
    }
    if cmd != "model" {
        return Err(Failure::Usage(format!("unknown command '{cmd}'")));
    }
    let (mut qapi, mut tags, mut out, mut trees) = (None, None, None, Vec::new());
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (flag.as_str(), None),
        };
        if name == "-h" || name == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
        };
        match name {
            "--qapi" => qapi = Some(PathBuf::from(value()?)),
            "--tags" => tags = Some(value()?.split(',').map(str::to_string).collect::<Vec<_>>()),
            "--tree" => trees.push(PathBuf::from(value()?)),
            "--out" => out = Some(value()?),
            _ => return Err(Failure::Usage(format!("unknown option '{flag}'"))),
        }
    }
    let out = out.ok_or_else(|| Failure::Usage("--out is required".into()))?;
    if qapi.is_none() && trees.is_empty() {
        return Err(Failure::Usage("give --qapi DIR or --tree PATH".into()));
    }
    if tags.is_some() && qapi.is_none() {
        return Err(Failure::Usage("--tags selects tags of --qapi".into()));
    }
    let started = Instant::now();
    let fail = |e: qapi_gen::Error| Failure::Run(e.to_string());
    let mut all: Vec<Tree> = match &qapi {
        Some(dir) => build::tags_under(dir, tags.as_deref()).map_err(fail)?,
        None => Vec::new(),
    };
    for t in &trees {
        all.push(build::single_tree(t).map_err(fail)?);
    }
    build::sort_trees(&mut all);
    if all.is_empty() {
        return Err(Failure::Run("no tree holds qapi/qapi-schema.json".into()));
    }
    let model = build::build_model(&all).map_err(fail)?;
    let json = model.to_json();
    if out == "-" {
        print!("{json}");
    } else {
        if let Some(dir) = std::path::Path::new(&out).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::Run(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(&out, &json).map_err(|e| Failure::Run(format!("cannot write {out}: {e}")))?;
    }
    let counts: Vec<String> =
        model.schemas.iter().map(|(name, s)| format!("{name}: {} entities", s.entities.len())).collect();
    eprintln!(
        "qapi-gen: {} versions ({}), {}; {} bytes in {:.0?}",
        model.versions.len(),
        model.versions.join(" "),
        counts.join(", "),
        json.len(),
        started.elapsed()
    );
    Ok(())
}
