//! Miscellaneous commands (`qapi/misc.json`, `qapi/yank.json`): HMP passthrough, file
//! descriptor passing and fd sets, yank instances.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::Empty;

/// Runs a human monitor (HMP) command line and returns its output (`human-monitor-command`).
/// The output uses `\r\n` line ends, as QEMU prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HumanMonitorCommand {
    /// The HMP command line, such as `info status`.
    #[serde(rename = "command-line")]
    pub command_line: String,
    /// The CPU to make current for the command; the monitor's current CPU when `None`.
    #[serde(rename = "cpu-index", skip_serializing_if = "Option::is_none")]
    pub cpu_index: Option<i64>,
}
command!(HumanMonitorCommand, "human-monitor-command", String);

impl HumanMonitorCommand {
    /// Runs `command_line` on the current CPU.
    pub fn new(command_line: impl Into<String>) -> Self {
        HumanMonitorCommand { command_line: command_line.into(), cpu_index: None }
    }
}

/// Receives a file descriptor sent with the command (SCM_RIGHTS) and names it `fdname`
/// (`getfd`). Send it with [`Client::execute_with_fds`](crate::Client::execute_with_fds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Getfd {
    /// The name to give the descriptor.
    pub fdname: String,
}
command!(Getfd, "getfd", Empty);

impl Getfd {
    /// Names the descriptor sent with the command `fdname`.
    pub fn new(fdname: impl Into<String>) -> Self {
        Getfd { fdname: fdname.into() }
    }
}

/// Closes a file descriptor previously received with `getfd` (`closefd`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Closefd {
    /// The descriptor's name.
    pub fdname: String,
}
command!(Closefd, "closefd", Empty);

impl Closefd {
    /// Closes the descriptor named `fdname`.
    pub fn new(fdname: impl Into<String>) -> Self {
        Closefd { fdname: fdname.into() }
    }
}

/// Adds a file descriptor sent with the command (SCM_RIGHTS) to an fd set (`add-fd`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AddFd {
    /// The fd set to add to; a new set is created when `None`.
    #[serde(rename = "fdset-id", skip_serializing_if = "Option::is_none")]
    pub fdset_id: Option<i64>,
    /// Free text stored with the descriptor, shown by `query-fdsets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opaque: Option<String>,
}
command!(AddFd, "add-fd", AddfdInfo);

/// The answer of `add-fd`: where the descriptor went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddfdInfo {
    /// The fd set holding it.
    #[serde(rename = "fdset-id")]
    pub fdset_id: i64,
    /// The descriptor's number inside QEMU.
    pub fd: i64,
}

/// Removes one descriptor, or a whole fd set, from QEMU's fd sets (`remove-fd`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoveFd {
    /// The fd set.
    #[serde(rename = "fdset-id")]
    pub fdset_id: i64,
    /// The descriptor to remove; every descriptor of the set when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i64>,
}
command!(RemoveFd, "remove-fd", Empty);

unit_command! {
    /// Lists the fd sets and their descriptors (`query-fdsets`).
    QueryFdsets, "query-fdsets", Vec<FdsetInfo>
}

/// One fd set of `query-fdsets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdsetInfo {
    /// The set's id.
    #[serde(rename = "fdset-id")]
    pub fdset_id: i64,
    /// Its descriptors.
    pub fds: Vec<FdsetFdInfo>,
}

/// One descriptor of an fd set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdsetFdInfo {
    /// The descriptor's number inside QEMU.
    pub fd: i64,
    /// The text given to `add-fd`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opaque: Option<String>,
}

unit_command! {
    /// Lists the instances that `yank` can act on (`query-yank`); allowed out of band.
    QueryYank, "query-yank", Vec<YankInstance>, allow_oob
}

/// Something `yank` can unblock (QAPI union `YankInstance`, tagged by `type`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum YankInstance {
    /// A block node's network connection.
    BlockNode {
        /// The node's name.
        node_name: String,
    },
    /// A character device's connection.
    Chardev {
        /// The chardev's id.
        id: String,
    },
    /// The migration connection.
    Migration,
    /// A type this crate does not know, kept whole (including `type`).
    Other(Map<String, Value>),
}

impl<'de> Deserialize<'de> for YankInstance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = Map::<String, Value>::deserialize(d)?;
        let member = |name: &str| match map.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(D::Error::custom(format_args!("yank instance without string member `{name}`"))),
        };
        Ok(match map.get("type").and_then(Value::as_str) {
            Some("block-node") => YankInstance::BlockNode { node_name: member("node-name")? },
            Some("chardev") => YankInstance::Chardev { id: member("id")? },
            Some("migration") => YankInstance::Migration,
            Some(_) => YankInstance::Other(map),
            None => return Err(D::Error::missing_field("type")),
        })
    }
}

impl Serialize for YankInstance {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let value = match self {
            YankInstance::BlockNode { node_name } => {
                serde_json::json!({"type": "block-node", "node-name": node_name})
            }
            YankInstance::Chardev { id } => serde_json::json!({"type": "chardev", "id": id}),
            YankInstance::Migration => serde_json::json!({"type": "migration"}),
            YankInstance::Other(map) => return map.serialize(s),
        };
        value.serialize(s)
    }
}
