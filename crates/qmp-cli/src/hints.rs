//! Help for the mistakes a new user makes first: an option of `qmp`'s written after COMMAND
//! (where every word is an argument), and a server that is not where the address says.

use std::path::Path;

use clap::CommandFactory;

use crate::error::CliError;

/// The usage error for an option of `qmp`'s found among COMMAND's arguments, with the command
/// line as it should have been; `None` when every word is an argument. A `--name` counts as
/// an option only when COMMAND has no argument called `name` (`--key=value` is argument
/// syntax); a `-x` always does.
pub fn misplaced_option(command: &str, tokens: &[String]) -> Option<CliError> {
    let cli = crate::Cli::command();
    let options: Vec<&clap::Arg> = cli.get_arguments().filter(|a| !a.is_positional()).collect();
    for (i, token) in tokens.iter().enumerate() {
        let found = if let Some(long) = token.strip_prefix("--") {
            let name = long.split_once('=').map_or(long, |(n, _)| n);
            if name.is_empty() || command_has_argument(command, name) {
                continue;
            }
            options.iter().find(|a| {
                a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            })
        } else if let Some(short) = token.strip_prefix('-').filter(|s| s.len() == 1) {
            let c = short.chars().next()?;
            options.iter().find(|a| a.get_short() == Some(c))
        } else {
            continue;
        };
        let Some(option) = found else { continue };
        // The option's value, when it takes one and it was not written with '='.
        let takes_value = option.get_action().takes_values();
        let with_value = takes_value && !token.contains('=') && i + 1 < tokens.len();
        let moved = if with_value { &tokens[i..i + 2] } else { &tokens[i..i + 1] };
        let rest: Vec<&String> = tokens
            .iter()
            .enumerate()
            .filter(|(j, _)| *j < i || *j >= i + moved.len())
            .map(|(_, t)| t)
            .collect();
        let before = words_before_command(tokens.len() + 1);
        let line: Vec<String> = std::iter::once("qmp".to_owned())
            .chain(before)
            .chain(moved.iter().cloned())
            .chain(std::iter::once(command.to_owned()))
            .chain(rest.into_iter().cloned())
            .map(|w| quote(&w))
            .collect();
        return Some(CliError::Usage(format!(
            "{token} is an option of qmp's, and options go before COMMAND (after it, every word is an argument of {command}): {}",
            line.join(" ")
        )));
    }
    None
}

/// The words this process was given before COMMAND, whose own words (COMMAND and its
/// arguments) are the last `command_words` of the command line.
fn words_before_command(command_words: usize) -> Vec<String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    argv[..argv.len().saturating_sub(command_words)].to_vec()
}

/// True when the QAPI schema (any version) gives `command` an argument called `name`.
fn command_has_argument(command: &str, name: &str) -> bool {
    use qmp::qapi::Kind;
    let schema = &qmp::generated::facts::SCHEMA;
    let Some(Kind::Command { args: Some(args), .. }) = schema.get(command).map(|e| e.kind) else {
        return false;
    };
    // A struct's members and its bases' (a short chain; bounded all the same).
    let mut ty = Some(args);
    for _ in 0..16 {
        let Some(Kind::Struct { base, members }) = ty.and_then(|t| schema.get(t)).map(|e| e.kind) else {
            // A union or an alternate as the arguments: assume the name may be one.
            return ty.is_some();
        };
        if members.iter().any(|m| m.name == name) {
            return true;
        }
        ty = base;
    }
    false
}

/// `w` as a shell would need it written.
fn quote(w: &str) -> String {
    let plain = !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// Who should be listening at a unix socket path, for the hint in a connection error.
#[derive(Debug, Clone, Copy)]
pub enum Listener {
    /// QEMU's monitor.
    Monitor,
    /// The guest agent's channel.
    Agent,
}

/// A connection error for a unix socket path, saying what is at the path and how to get a
/// listener there.
pub fn unix_connect_error(path: &Path, source: &std::io::Error, listener: Listener) -> CliError {
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display();
    let start = match listener {
        Listener::Monitor => format!(
            "start QEMU with `-qmp unix:{shown},server=on,wait=off` (or give --wait SECONDS while it starts)"
        ),
        Listener::Agent => format!(
            "give the guest's agent port a socket there, `-chardev socket,path={shown},server=on,wait=off,id=qga0` \
             (see `qmp ga --help`), or start qemu-ga with `-m unix-listen -p {shown}`"
        ),
    };
    let what = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("{shown} does not exist: {start}"),
        Ok(m) if m.file_type().is_socket() => match source.kind() {
            std::io::ErrorKind::ConnectionRefused => format!(
                "nothing accepts connections on the socket {shown} (a QEMU that exited leaves its socket behind): {start}"
            ),
            std::io::ErrorKind::PermissionDenied => format!("no permission to connect to {shown}: {source}"),
            _ => format!("cannot connect to {shown}: {source}"),
        },
        Ok(m) => {
            let kind = if m.is_dir() {
                "a directory"
            } else if m.is_file() {
                "a regular file"
            } else {
                "not a socket"
            };
            format!("{shown} is {kind}, not a socket: is the path right? (it should be a socket: {start})")
        }
        Err(e) => format!("cannot connect to {shown}: {source} ({e})"),
    };
    CliError::Connection(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_named_like_options_stay_arguments() {
        // block-job-set-speed has no argument "pretty"; query-status has none at all.
        assert!(command_has_argument("block-job-set-speed", "speed"));
        assert!(!command_has_argument("block-job-set-speed", "pretty"));
        assert!(!command_has_argument("query-status", "timeout"));
        // blockdev-backup's arguments have a base (BackupCommon).
        assert!(command_has_argument("blockdev-backup", "target"));
        assert!(command_has_argument("blockdev-backup", "sync"));
    }

    #[test]
    fn words_are_quoted_only_when_they_must_be() {
        assert_eq!(quote("/run/vm.qmp"), "/run/vm.qmp");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
