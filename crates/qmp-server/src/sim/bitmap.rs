//! Dirty bitmaps on the simulated block nodes: `block-dirty-bitmap-add`, `-remove`, `-clear`,
//! `-enable`, `-disable`, alone or as `transaction` actions, with QEMU 7.2's checks, their
//! order and their texts (measured on qemu-storage-daemon; `differential_transaction`
//! compares them live). Nothing writes to a simulated node, so every count stays 0.

use std::collections::BTreeMap;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use crate::server::Args;

/// QEMU's default granularity for the simulator's drivers (their clusters are at most 64 KiB).
const DEFAULT_GRANULARITY: u64 = 65536;

#[derive(Debug, Clone)]
pub(crate) struct Bitmap {
    name: String,
    granularity: u64,
    recording: bool,
    persistent: bool,
    /// Held by a transaction that removes it (QEMU marks it busy until the commit).
    busy: bool,
}

/// Every node's bitmaps, newest first (the order QEMU lists them in).
#[derive(Debug, Clone, Default)]
pub(crate) struct Bitmaps {
    by_node: BTreeMap<String, Vec<Bitmap>>,
}

/// The longest bitmap name QEMU takes, in bytes.
const MAX_NAME_SIZE: usize = 1023;

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

/// The node a bitmap command names: `Some(driver)` when it exists.
pub(crate) type NodeDriver<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Bitmaps {
    /// `block-dirty-bitmap-add`; `driver_of` says whether a node exists and its driver.
    pub fn add(&mut self, args: &Args, driver_of: NodeDriver<'_>) -> Result<(), QmpError> {
        let node = args["node"].as_str().unwrap_or_default();
        let name = args["name"].as_str().unwrap_or_default();
        // A uint32 member: the framework has refused a wider value already.
        let granularity = args.get("granularity").and_then(Value::as_u64);
        if name.is_empty() {
            return Err(generic("Bitmap name cannot be empty"));
        }
        let Some(driver) = driver_of(node) else {
            return Err(generic(format!("Cannot find device='{node}' nor node-name='{node}'")));
        };
        if let Some(g) = granularity {
            if g < 512 || !g.is_power_of_two() {
                return Err(generic("Granularity must be power of 2 and at least 512"));
            }
        }
        let persistent = args.get("persistent").and_then(Value::as_bool).unwrap_or(false);
        if persistent && driver != "qcow2" {
            return Err(generic(format!(
                "Can't store persistent bitmaps to {node}: Operation not supported"
            )));
        }
        let list = self.by_node.entry(node.to_string()).or_default();
        if list.iter().any(|b| b.name == name) {
            return Err(generic(format!("Bitmap already exists: {name}")));
        }
        if name.len() > MAX_NAME_SIZE {
            return Err(generic(format!("Bitmap name too long: {name}")));
        }
        let disabled = args.get("disabled").and_then(Value::as_bool).unwrap_or(false);
        list.insert(
            0,
            Bitmap {
                name: name.to_string(),
                granularity: granularity.unwrap_or(DEFAULT_GRANULARITY),
                recording: !disabled,
                persistent,
                busy: false,
            },
        );
        Ok(())
    }

    /// The bitmap `args` names, not busy, as QEMU looks it up for every other command.
    fn lookup(&mut self, args: &Args, exists: NodeDriver<'_>) -> Result<&mut Bitmap, QmpError> {
        let node = args["node"].as_str().unwrap_or_default();
        let name = args["name"].as_str().unwrap_or_default();
        if exists(node).is_none() {
            return Err(generic(format!("Node '{node}' not found")));
        }
        let list = self.by_node.entry(node.to_string()).or_default();
        // A job's anonymous bitmap is never found by name.
        let Some(bitmap) = list.iter_mut().find(|b| !b.name.is_empty() && b.name == name) else {
            return Err(generic(format!("Dirty bitmap '{name}' not found")));
        };
        if bitmap.busy {
            return Err(generic(format!(
                "Bitmap '{name}' is currently in use by another operation and cannot be used"
            )));
        }
        Ok(bitmap)
    }

    /// `block-dirty-bitmap-remove`; in a transaction (`hold`) it is only marked busy, and
    /// [`commit`](Bitmaps::commit) removes it.
    pub fn remove(&mut self, args: &Args, exists: NodeDriver<'_>, hold: bool) -> Result<(), QmpError> {
        let bitmap = self.lookup(args, exists)?;
        bitmap.busy = true;
        if !hold {
            self.commit();
        }
        Ok(())
    }

    /// `block-dirty-bitmap-clear` (nothing is ever dirty, so only the checks remain).
    pub fn clear(&mut self, args: &Args, exists: NodeDriver<'_>) -> Result<(), QmpError> {
        self.lookup(args, exists).map(|_| ())
    }

    /// `block-dirty-bitmap-enable` (`on`) and `-disable`.
    pub fn set_recording(&mut self, args: &Args, exists: NodeDriver<'_>, on: bool) -> Result<(), QmpError> {
        self.lookup(args, exists)?.recording = on;
        Ok(())
    }

    /// Removes the bitmaps a transaction held for removal.
    pub fn commit(&mut self) {
        for list in self.by_node.values_mut() {
            list.retain(|b| !b.busy);
        }
    }

    /// A node is gone: so are its bitmaps.
    pub fn node_deleted(&mut self, node: &str) {
        self.by_node.remove(node);
    }

    /// `dirty-bitmaps` of `query-named-block-nodes` for `node`, when it has any.
    pub fn info(&self, node: &str) -> Option<Value> {
        let list = self.by_node.get(node).filter(|l| !l.is_empty())?;
        let out = list
            .iter()
            .map(|b| {
                let mut v = json!({"name": b.name, "recording": b.recording, "persistent": b.persistent,
                       "busy": b.busy, "granularity": b.granularity, "count": 0});
                if b.name.is_empty() {
                    // A job's own bitmap has no name, and QEMU lists none.
                    v.as_object_mut().map(|m| m.remove("name"));
                }
                v
            })
            .collect();
        Some(Value::Array(out))
    }

    /// The anonymous bitmap a mirror job keeps on its source node while it runs.
    pub fn add_anonymous(&mut self, node: &str, granularity: u64) {
        let bitmap =
            Bitmap { name: String::new(), granularity, recording: true, persistent: false, busy: false };
        self.by_node.entry(node.to_string()).or_default().insert(0, bitmap);
    }

    /// The job's bitmap goes with the job.
    pub fn remove_anonymous(&mut self, node: &str) {
        if let Some(list) = self.by_node.get_mut(node) {
            list.retain(|b| !b.name.is_empty());
        }
    }
}
