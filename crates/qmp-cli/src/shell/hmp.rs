//! HMP mode (`-H`): each line goes through `human-monitor-command`; `cpu N` switches the CPU
//! the following commands apply to, as qmp-shell does; completion comes from QEMU's `help`.

use serde_json::{json, Value};

/// The `human-monitor-command` arguments for a line, on a CPU when one was chosen (qmp-shell
/// always sends CPU 0, which QEMU refuses when the machine has no CPU).
pub fn request_args(line: &str, cpu_index: Option<i64>) -> Value {
    match cpu_index {
        Some(cpu) => json!({"command-line": line, "cpu-index": cpu}),
        None => json!({"command-line": line}),
    }
}

/// `cpu N`: `Some(Ok(N))`; `cpu` with a bad number: `Some(Err(message))`; any other line: `None`.
pub fn cpu_switch(line: &str) -> Option<Result<i64, String>> {
    let mut words = line.split_whitespace();
    if words.next() != Some("cpu") {
        return None;
    }
    Some(match words.next().map(str::parse::<i64>) {
        Some(Ok(n)) => Ok(n),
        _ => Err("cpu command takes an integer argument".into()),
    })
}

/// The completion candidates from the text of HMP's `help` and `info`: every command (the
/// long name of `name|n` pairs), `help NAME` for each, `info WHAT` for each `info` entry, and
/// `help info`. Continuation lines (starting with a tab) and `[...]` lines are skipped.
pub fn completions(help: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in help.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.is_empty() || line.starts_with('[') || line.starts_with('\t') || line.starts_with(' ') {
            continue;
        }
        let Some(first) = line.split_whitespace().next() else { continue };
        if first == "info" {
            continue;
        }
        let name = match first.split_once('|') {
            Some((a, b)) if a.len() == 1 => b,
            Some((a, _)) => a,
            None => first,
        };
        out.push(name.to_owned());
        out.push(format!("help {name}"));
    }
    for line in info.split("\r\n").flat_map(|l| l.split('\n')) {
        let mut words = line.split_whitespace();
        if let (Some("info"), Some(what)) = (words.next(), words.next()) {
            out.push(format!("info {what}"));
        }
    }
    out.push("help info".into());
    out.sort();
    out.dedup();
    out
}

/// HMP's answer as a terminal shows it: `\r\n` line ends made `\n`.
pub fn display_text(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lines() {
        assert_eq!(cpu_switch("cpu 1"), Some(Ok(1)));
        assert_eq!(cpu_switch("  cpu   0 "), Some(Ok(0)));
        assert_eq!(cpu_switch("cpu x"), Some(Err("cpu command takes an integer argument".into())));
        assert_eq!(cpu_switch("cpu"), Some(Err("cpu command takes an integer argument".into())));
        assert_eq!(cpu_switch("info cpus"), None);
        assert_eq!(cpu_switch("cpus"), None);
    }

    #[test]
    fn completions_from_help_text() {
        let help = "announce_self [interfaces] [id] -- Trigger GARP\r\n\
                    block_job_cancel [-f] device -- stop an active background block operation (use -f\r\n\
                    \t\t\t if you want to abort\r\n\
                    c|cont  -- resume emulation\r\n\
                    quit|q  -- quit the emulator\r\n\
                    info [subcommand] -- show various information\r\n\
                    [not a command]\r\n";
        let info = "info balloon  -- show balloon information\r\ninfo version  -- show the version\r\n";
        let c = completions(help, info);
        for want in [
            "announce_self",
            "help announce_self",
            "block_job_cancel",
            "cont",
            "quit",
            "help quit",
            "info balloon",
            "info version",
            "help info",
        ] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
        assert!(!c.iter().any(|x| x == "c" || x == "q" || x == "info" || x.contains("abort")), "{c:?}");
    }

    #[test]
    fn text_line_ends() {
        assert_eq!(display_text("7.2.22 (Debian)\r\n"), "7.2.22 (Debian)\n");
        assert_eq!(
            request_args("info version", Some(2)),
            json!({"command-line": "info version", "cpu-index": 2})
        );
        assert_eq!(request_args("info version", None), json!({"command-line": "info version"}));
    }
}
