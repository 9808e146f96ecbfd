//! Atomic groups of block operations (`qapi/transaction.json`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::MirrorSyncMode;
use crate::Empty;

/// Runs several actions atomically: all succeed or none takes effect (`transaction`).
///
/// ```
/// use qmp::commands::{Transaction, TransactionAction};
///
/// let tx = Transaction::new(vec![
///     TransactionAction::block_dirty_bitmap_add("top0", "bitmap0"),
///     TransactionAction::blockdev_snapshot("top0", "overlay0"),
/// ]);
/// assert_eq!(
///     serde_json::to_value(&tx).unwrap()["actions"][1],
///     serde_json::json!({"type": "blockdev-snapshot", "data": {"node": "top0", "overlay": "overlay0"}}),
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Transaction {
    /// The actions, run in order.
    pub actions: Vec<TransactionAction>,
    /// Options for the whole transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<TransactionProperties>,
}
command!(Transaction, "transaction", Empty);

impl Transaction {
    /// A transaction of `actions` with default properties.
    pub fn new(actions: Vec<TransactionAction>) -> Self {
        Transaction { actions, properties: None }
    }

    /// Sets how the jobs the actions start complete.
    pub fn completion_mode(mut self, mode: ActionCompletionMode) -> Self {
        self.properties = Some(TransactionProperties { completion_mode: Some(mode) });
        self
    }
}

/// Options of a `transaction` (QAPI `TransactionProperties`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionProperties {
    /// How the jobs started by the actions complete.
    #[serde(rename = "completion-mode", default, skip_serializing_if = "Option::is_none")]
    pub completion_mode: Option<ActionCompletionMode>,
}

qapi_enum! {
    /// How the jobs of a transaction complete (QAPI `ActionCompletionMode`).
    pub enum ActionCompletionMode {
        /// Each job completes on its own.
        Individual = "individual",
        /// If one job fails, all are cancelled.
        Grouped = "grouped",
    }
}

/// One action of a `transaction`: `{"type": ..., "data": {...}}` (QAPI union
/// `TransactionAction`). The helpers build the common ones; [`TransactionAction::new`]
/// builds any other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionAction {
    /// The action, named like the command it mirrors, such as `blockdev-snapshot-sync`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The action's arguments, as the command of the same name takes them.
    pub data: Map<String, Value>,
}

impl TransactionAction {
    /// An action of type `kind` with arguments `data`.
    pub fn new(kind: impl Into<String>, data: Map<String, Value>) -> Self {
        TransactionAction { kind: kind.into(), data }
    }

    /// Builds an action from a JSON object literal; `data` must be an object (anything
    /// else is sent as no arguments).
    fn of(kind: &str, data: Value) -> Self {
        let data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        TransactionAction::new(kind, data)
    }

    /// Makes the whole transaction fail; useful in tests.
    pub fn abort() -> Self {
        TransactionAction::of("abort", json!({}))
    }

    /// Adds a dirty bitmap `name` to `node`.
    pub fn block_dirty_bitmap_add(node: impl Into<String>, name: impl Into<String>) -> Self {
        TransactionAction::of("block-dirty-bitmap-add", json!({"node": node.into(), "name": name.into()}))
    }

    /// Removes the dirty bitmap `name` from `node`.
    pub fn block_dirty_bitmap_remove(node: impl Into<String>, name: impl Into<String>) -> Self {
        TransactionAction::of("block-dirty-bitmap-remove", json!({"node": node.into(), "name": name.into()}))
    }

    /// Clears the dirty bitmap `name` of `node`.
    pub fn block_dirty_bitmap_clear(node: impl Into<String>, name: impl Into<String>) -> Self {
        TransactionAction::of("block-dirty-bitmap-clear", json!({"node": node.into(), "name": name.into()}))
    }

    /// Makes the existing node `overlay` the new top of `node`'s chain.
    pub fn blockdev_snapshot(node: impl Into<String>, overlay: impl Into<String>) -> Self {
        TransactionAction::of("blockdev-snapshot", json!({"node": node.into(), "overlay": overlay.into()}))
    }

    /// Creates the image `snapshot_file` in `format` and makes it the new top of `node_name`.
    pub fn blockdev_snapshot_sync(
        node_name: impl Into<String>,
        snapshot_file: impl Into<String>,
        format: impl Into<String>,
    ) -> Self {
        TransactionAction::of(
            "blockdev-snapshot-sync",
            json!({"node-name": node_name.into(), "snapshot-file": snapshot_file.into(), "format": format.into()}),
        )
    }

    /// Takes an internal snapshot `name` of `device`.
    pub fn blockdev_snapshot_internal_sync(device: impl Into<String>, name: impl Into<String>) -> Self {
        TransactionAction::of(
            "blockdev-snapshot-internal-sync",
            json!({"device": device.into(), "name": name.into()}),
        )
    }

    /// Starts a backup job copying `device` to the existing node `target`.
    pub fn blockdev_backup(
        job_id: impl Into<String>,
        device: impl Into<String>,
        target: impl Into<String>,
        sync: MirrorSyncMode,
    ) -> Self {
        TransactionAction::of(
            "blockdev-backup",
            json!({"job-id": job_id.into(), "device": device.into(), "target": target.into(), "sync": sync}),
        )
    }
}
