//! `transaction` over the simulator's dirty bitmaps, all or nothing as QEMU 7.2 runs it: each
//! action is prepared in order; the first that fails undoes every earlier one and its error is
//! the reply; a removal takes effect only once every action has been prepared (until then the
//! bitmap is busy, and still there). `abort` always fails. With `completion-mode: grouped`,
//! every bitmap action refuses, as QEMU's do; the argument checks (action types, `data`) come
//! from the declared schema, before anything runs. The bitmap commands alone are the same
//! actions outside a transaction.

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use super::block::Block;
use crate::server::{Args, Reply};

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

/// The actions the simulator implements (the others are declared, and refused when run).
const BITMAP_ACTIONS: &[&str] = &[
    "block-dirty-bitmap-add",
    "block-dirty-bitmap-remove",
    "block-dirty-bitmap-clear",
    "block-dirty-bitmap-enable",
    "block-dirty-bitmap-disable",
];

/// Runs bitmap action `kind` on `data`; `hold` keeps a removal pending for the commit.
fn bitmap_action(block: &mut Block, kind: &str, data: &Args, hold: bool) -> Result<(), QmpError> {
    let (bitmaps, driver_of) = block.bitmaps();
    match kind {
        "block-dirty-bitmap-add" => bitmaps.add(data, &driver_of),
        "block-dirty-bitmap-remove" => bitmaps.remove(data, &driver_of, hold),
        "block-dirty-bitmap-clear" => bitmaps.clear(data, &driver_of),
        "block-dirty-bitmap-enable" => bitmaps.set_recording(data, &driver_of, true),
        "block-dirty-bitmap-disable" => bitmaps.set_recording(data, &driver_of, false),
        other => Err(generic(format!("transaction action '{other}' is not supported by the simulator"))),
    }
}

/// A bitmap command on its own (`kind` is its name).
pub(crate) fn bitmap_command(block: &mut Block, kind: &str, args: &Args) -> Reply {
    bitmap_action(block, kind, args, false).map(|()| json!({}))
}

/// `transaction`.
pub(crate) fn transaction(block: &mut Block, args: &Args) -> Reply {
    let grouped = args
        .get("properties")
        .and_then(|p| p.get("completion-mode"))
        .and_then(Value::as_str)
        .is_some_and(|m| m == "grouped");
    let actions = args.get("actions").and_then(Value::as_array).cloned().unwrap_or_default();
    let before = block.bitmaps().0.clone();
    let empty = Args::new();
    for action in &actions {
        let kind = action["type"].as_str().unwrap_or_default();
        let data = action.get("data").and_then(Value::as_object).unwrap_or(&empty);
        let result = if kind == "abort" {
            Err(generic("Transaction aborted using Abort action"))
        } else if grouped && BITMAP_ACTIONS.contains(&kind) {
            Err(generic(format!(
                "Action '{kind}' does not support Transaction property completion-mode = grouped"
            )))
        } else {
            bitmap_action(block, kind, data, true)
        };
        if let Err(e) = result {
            *block.bitmaps().0 = before;
            return Err(e);
        }
    }
    block.bitmaps().0.commit();
    Ok(json!({}))
}
