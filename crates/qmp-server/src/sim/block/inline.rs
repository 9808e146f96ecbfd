//! Child nodes given inline (`"file": {"driver": "file", ...}`) rather than by node name, as
//! QEMU 7.2 takes them (found by running it):
//! - the whole request is checked before any node is opened, an inline child's members
//!   named by their path (`file.filename`, `file.file.driver`);
//! - each child is opened before its parent, and named `#block` + a counter + two random
//!   digits unless it has a `node-name` of its own; the counter is the one QEMU's implicit
//!   filter nodes use, and a node that fails after being named has used up its number;
//! - a child inherits the parent's `read-only` and `cache` flags unless it sets its own;
//! - inline children belong to their parent, not to the monitor: `blockdev-del` refuses
//!   them ("Node X is not owned by the monitor"), deleting the parent deletes them, and a
//!   request that fails drops the children it had opened.

use qmp_proto::QmpError;
use serde_json::{Map, Value};

use super::generic;
use crate::sim::qapi;

/// How deep inline children may nest here (QEMU has no limit of its own; opening them
/// recurses, so the simulator bounds it).
pub(super) const MAX_DEPTH: usize = 16;

/// The members of `driver`'s options that hold a child node, and whether `null` is allowed
/// there (`BlockdevRef` or `BlockdevRefOrNull`).
pub(super) fn child_members(driver: &str) -> &'static [(&'static str, bool)] {
    match driver {
        "raw" => &[("file", false)],
        "qcow2" => &[("file", false), ("backing", true)],
        _ => &[],
    }
}

/// Checks every inline child of `args` against `blockdev-add`'s options, depth first in
/// member order, as QEMU's input visitor does before anything is opened. Iterative: the
/// nesting comes from the request.
pub(super) fn check(args: &Map<String, Value>) -> Result<(), QmpError> {
    let mut stack: Vec<(&Map<String, Value>, String, usize)> = vec![(args, String::new(), 0)];
    while let Some((obj, path, depth)) = stack.pop() {
        let driver = obj.get("driver").and_then(Value::as_str).unwrap_or_default();
        let mut found = Vec::new();
        for (member, nullable) in child_members(driver) {
            let at = if path.is_empty() { member.to_string() } else { format!("{path}.{member}") };
            match obj.get(*member) {
                None | Some(Value::String(_)) => {}
                Some(Value::Null) if *nullable => {}
                Some(Value::Object(child)) => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(generic(format!(
                            "The simulator opens inline child nodes at most {MAX_DEPTH} deep ('{at}')"
                        )));
                    }
                    qapi::blockdev_options().check_at(child, &at)?;
                    found.push((child, at, depth + 1));
                }
                Some(_) => {
                    let expected = if *nullable { "BlockdevRefOrNull" } else { "BlockdevRef" };
                    return Err(generic(format!("Invalid parameter type for '{at}', expected: {expected}")));
                }
            }
        }
        // The first member's subtree is checked first.
        stack.extend(found.into_iter().rev());
    }
    Ok(())
}
