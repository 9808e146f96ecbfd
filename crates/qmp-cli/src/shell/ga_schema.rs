//! The guest agent's schema for `help COMMAND` and argument completion. qemu-ga has no
//! `query-qmp-schema`, so the shell builds the same kind of [`Schema`] from the generated
//! facts of the agent's QAPI schema ([`qmp::ga::generated::facts::SCHEMA`]): the slice of the
//! version nearest the agent's, for a Linux guest unless the agent's commands say Windows.
//! It describes the commands; which ones the agent has, and has enabled, is `guest-info`'s
//! to say. It is never used to refuse a line: it is the model's, not the agent's own.

use qmp::commands::SchemaInfo;
use qmp::ga::generated::facts::SCHEMA;
use qmp::ga::AgentInfo;
use qmp::qapi::{Build, MemberDef, Slice, TypeDef};
use qmp::Schema;
use serde_json::{json, Value};

/// The conditions of a Linux qemu-ga build (symbols sorted, as [`Build`] wants them).
static LINUX: Build = Build {
    name: "a Linux guest",
    symbols: &[
        ("CONFIG_FREEBSD", false),
        ("CONFIG_FSFREEZE", true),
        ("CONFIG_FSTRIM", true),
        ("CONFIG_LIBUDEV", true),
        ("CONFIG_LINUX", true),
        ("CONFIG_POSIX", true),
        ("CONFIG_WIN32", false),
        ("HAVE_GETIFADDRS", true),
        ("HAVE_UTMPX", true),
    ],
};

/// The conditions of a Windows qemu-ga build.
static WINDOWS: Build = Build {
    name: "a Windows guest",
    symbols: &[
        ("CONFIG_FREEBSD", false),
        ("CONFIG_FSFREEZE", false),
        ("CONFIG_FSTRIM", false),
        ("CONFIG_LIBUDEV", false),
        ("CONFIG_LINUX", false),
        ("CONFIG_POSIX", false),
        ("CONFIG_WIN32", true),
        ("HAVE_GETIFADDRS", false),
        ("HAVE_UTMPX", false),
    ],
};

/// The name of the empty object type (QEMU's introspection calls it "0").
const EMPTY: &str = "q_empty";

/// The schema for the agent `info` describes.
pub fn for_agent(info: &AgentInfo) -> Schema {
    // From 9.1 on, guest-get-devices exists only on Windows and guest-get-cpustats only on
    // Linux; older agents list both everywhere, and are taken for Linux.
    let windows = info.supports("guest-get-devices") && !info.supports("guest-get-cpustats");
    let build = if windows { &WINDOWS } else { &LINUX };
    let version = nearest_version(&info.version);
    // Every version named comes from the facts' own list.
    let slice = SCHEMA.slice(version, build).expect("a version of the facts");
    Schema::from_entries(entries(&slice))
}

/// The facts' version for an agent's: the newest one not newer than it by major.minor, the
/// oldest for an older agent, the newest for one that does not say.
fn nearest_version(agent: &str) -> &'static str {
    let key = |v: &str| -> Option<(u32, u32)> {
        let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next()??))
    };
    let newest = SCHEMA.versions[SCHEMA.versions.len() - 1];
    let Some(want) = key(agent) else { return newest };
    SCHEMA
        .versions
        .iter()
        .rev()
        .copied()
        .find(|v| key(v).is_some_and(|k| k <= want))
        .unwrap_or(SCHEMA.versions[0])
}

/// `query-qmp-schema`'s entries for the slice's commands and the types they reach, under
/// their own names (QEMU would mask the types' as numbers).
fn entries(slice: &Slice<'_>) -> Vec<SchemaInfo> {
    let mut out = vec![json!({"name": EMPTY, "meta-type": "object", "members": []})];
    let mut todo: Vec<&'static str> = Vec::new();
    for cmd in slice.commands() {
        let arg = cmd.args.unwrap_or(EMPTY);
        let ret = cmd.returns.unwrap_or(EMPTY);
        out.push(json!({"name": cmd.name, "meta-type": "command", "arg-type": arg, "ret-type": ret}));
        todo.extend([arg, ret]);
    }
    let mut done: Vec<&str> = vec![EMPTY];
    while let Some(name) = todo.pop() {
        if done.contains(&name) {
            continue;
        }
        done.push(name);
        let Some(def) = slice.ty(name) else { continue };
        let (entry, refers) = entry(name, def);
        out.push(entry);
        todo.extend(refers);
    }
    // Each was made here in the shape the reader takes.
    out.into_iter().filter_map(|e| serde_json::from_value(e).ok()).collect()
}

/// One type's entry, and the types it names.
fn entry(name: &'static str, def: TypeDef) -> (Value, Vec<&'static str>) {
    let members = |ms: &[MemberDef]| -> Vec<Value> {
        ms.iter()
            .map(|m| {
                if m.optional {
                    json!({"name": m.name, "type": m.ty, "default": null})
                } else {
                    json!({"name": m.name, "type": m.ty})
                }
            })
            .collect()
    };
    let member_types = |ms: &[MemberDef]| ms.iter().map(|m| m.ty).collect::<Vec<_>>();
    match def {
        TypeDef::Builtin(b) => {
            (json!({"name": name, "meta-type": "builtin", "json-type": json_type(b)}), vec![])
        }
        TypeDef::Array(el) => (json!({"name": name, "meta-type": "array", "element-type": el}), vec![el]),
        TypeDef::Enum { values } => {
            let named: Vec<Value> = values.iter().map(|v| json!({"name": v})).collect();
            (json!({"name": name, "meta-type": "enum", "values": values, "members": named}), vec![])
        }
        TypeDef::Struct { members: ms } => {
            (json!({"name": name, "meta-type": "object", "members": members(&ms)}), member_types(&ms))
        }
        TypeDef::Union { members: ms, discriminator, variants } => {
            let cases: Vec<Value> = variants.iter().map(|c| json!({"case": c.name, "type": c.ty})).collect();
            let mut refers = member_types(&ms);
            refers.extend(variants.iter().map(|c| c.ty));
            let e = json!({"name": name, "meta-type": "object", "members": members(&ms),
                "tag": discriminator, "variants": cases});
            (e, refers)
        }
        TypeDef::Alternate { alternatives } => {
            let branches: Vec<Value> = alternatives.iter().map(|c| json!({"type": c.ty})).collect();
            let refers = alternatives.iter().map(|c| c.ty).collect();
            (json!({"name": name, "meta-type": "alternate", "members": branches}), refers)
        }
    }
}

/// The JSON type of a QAPI built-in, as introspection names it.
fn json_type(builtin: &str) -> &'static str {
    match builtin {
        "str" | "QType" => "string",
        "number" => "number",
        "bool" => "boolean",
        "null" => "null",
        "any" => "value",
        _ => "int",
    }
}

#[cfg(test)]
mod tests {
    use qmp::ga::CommandState;

    use super::*;
    use crate::shell::schema::describe_command;

    fn agent(version: &str, commands: &[&str]) -> AgentInfo {
        let mut commands: Vec<CommandState> = commands
            .iter()
            .map(|n| CommandState { name: n.to_string(), enabled: true, success_response: true })
            .collect();
        commands.sort_by(|a, b| a.name.cmp(&b.name));
        AgentInfo { version: version.into(), commands }
    }

    #[test]
    fn the_version_nearest_the_agents() {
        assert_eq!(nearest_version("7.2.22"), "7.2.0");
        assert_eq!(nearest_version("8.1.5"), "8.1.0");
        assert_eq!(nearest_version("9.2.0"), "9.2.0-rc2");
        assert_eq!(nearest_version("10.0.0"), "9.2.0-rc2");
        assert_eq!(nearest_version("6.2.0"), "7.2.0");
        assert_eq!(nearest_version("who knows"), "9.2.0-rc2");
    }

    #[test]
    fn commands_arguments_and_returns() {
        let s = for_agent(&agent("8.2.0", &["guest-exec", "guest-ping"]));
        assert!(s.has_command("guest-ping") && s.has_command("guest-file-open"));
        let exec = describe_command(&s, "guest-exec").unwrap();
        assert!(exec.contains("path: string\n"), "{exec}");
        assert!(exec.contains("arg: array of string (optional)"), "{exec}");
        // An alternate (8.1 on) and an enum.
        assert!(
            exec.contains("capture-output: bool or enum (none|stdout|stderr|separated|merged)"),
            "{exec}"
        );
        assert!(exec.contains("returns: object\n  pid: int"), "{exec}");
        let ping = describe_command(&s, "guest-ping").unwrap();
        assert!(ping.contains("(no arguments)") && ping.contains("returns: nothing"), "{ping}");
        let open = describe_command(&s, "guest-file-open").unwrap();
        assert!(open.contains("returns: int"), "{open}");
        // 7.2 had no capture-output modes.
        let old = describe_command(&for_agent(&agent("7.2.22", &[])), "guest-exec").unwrap();
        assert!(old.contains("capture-output: bool (optional)"), "{old}");
    }

    #[test]
    fn a_windows_agent_gets_windows_types() {
        let linux = for_agent(&agent("9.1.0", &["guest-get-cpustats"]));
        let windows = for_agent(&agent("9.1.0", &["guest-get-devices"]));
        assert!(linux.has_command("guest-get-cpustats") && !linux.has_command("guest-get-devices"));
        assert!(windows.has_command("guest-get-devices") && !windows.has_command("guest-get-cpustats"));
        let merged = |s: &Schema| describe_command(s, "guest-exec").unwrap().contains("merged");
        assert!(merged(&linux) && !merged(&windows));
    }
}
