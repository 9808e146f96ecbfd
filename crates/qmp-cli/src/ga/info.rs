//! `qmp ga info`: the agent's version and commands: a table on a terminal, JSON otherwise.

use std::io::{IsTerminal, Write};

use qmp::ga::AgentInfo;
use serde_json::json;

use crate::error::CliError;

/// Prints the agent's `guest-info`.
pub fn run(ga: &super::GaArgs) -> Result<(), CliError> {
    let info =
        crate::block_on(super::bounded(ga, false, async { Ok(super::connect(ga).await?.info().await?) }))?;
    let global = &ga.output();
    if std::io::stdout().is_terminal() && !global.pretty && !global.compact {
        return write_table(&info);
    }
    let commands: Vec<_> = info
        .commands
        .iter()
        .map(|c| json!({"name": c.name, "enabled": c.enabled, "success-response": c.success_response}))
        .collect();
    crate::oneshot::print_json(global, &json!({"version": info.version, "supported_commands": commands}))
}

/// The table: the version, then the commands, enabled first.
fn write_table(info: &AgentInfo) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let width = info.commands.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let enabled = info.commands.iter().filter(|c| c.enabled).count();
    let mut text =
        format!("qemu-ga {}: {} commands, {enabled} enabled\n\n", info.version, info.commands.len());
    let mut rows: Vec<_> = info.commands.iter().collect();
    rows.sort_by_key(|c| (!c.enabled, c.name.as_str()));
    for c in rows {
        let state = if c.enabled { "enabled" } else { "disabled" };
        let note = if c.success_response { "" } else { "  (no reply on success)" };
        text.push_str(&format!("  {:width$}  {state}{note}\n", c.name));
    }
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}
