//! Hand-written conveniences on the generated types, for the common cases: block nodes of the
//! `file`, `qcow2`, `raw` and `null-co` drivers, node references given by name, free-form
//! `device_add` properties, `oob` negotiation, and transaction actions built from their
//! arguments. Each is an `impl` on a type of [`crate::types`] or [`crate::commands`], so what
//! they build is the generated value itself.

use serde_json::Value;

use crate::generated::commands::{BlockdevAdd, DeviceAdd, QmpCapabilities, Transaction};
use crate::generated::types::{
    Abort, AbortWrapper, ActionCompletionMode, BlockDirtyBitmap, BlockDirtyBitmapAdd,
    BlockDirtyBitmapAddWrapper, BlockDirtyBitmapWrapper, BlockdevBackup, BlockdevBackupWrapper,
    BlockdevOptions, BlockdevOptionsBranch, BlockdevOptionsFile, BlockdevOptionsNull, BlockdevOptionsQcow2,
    BlockdevOptionsRaw, BlockdevRef, BlockdevRefOrNull, BlockdevSnapshot, BlockdevSnapshotInternal,
    BlockdevSnapshotInternalWrapper, BlockdevSnapshotSync, BlockdevSnapshotSyncWrapper,
    BlockdevSnapshotWrapper, MirrorSyncMode, QMPCapability, TransactionAction, TransactionActionBranch,
    TransactionProperties,
};

impl BlockdevOptions {
    /// Options of the driver `branch` chose, with every common member (`node-name`,
    /// `read-only`, `cache`...) absent.
    pub fn of(branch: BlockdevOptionsBranch) -> Self {
        BlockdevOptions {
            node_name: None,
            discard: None,
            cache: None,
            read_only: None,
            auto_read_only: None,
            force_share: None,
            detect_zeroes: None,
            branch,
        }
    }

    /// Sets `node-name`.
    pub fn node_name(mut self, node_name: impl Into<String>) -> Self {
        self.node_name = Some(node_name.into());
        self
    }

    /// Sets `read-only`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = Some(read_only);
        self
    }
}

/// Creating block nodes of the common drivers.
///
/// ```
/// use qmp_qapi::commands::BlockdevAdd;
///
/// let file = BlockdevAdd::file("f0", "/images/disk.qcow2");
/// let disk = BlockdevAdd::qcow2("disk0", "f0").read_only(true);
/// assert_eq!(
///     qmp_qapi::serde_json::to_value(&disk).unwrap(),
///     qmp_qapi::serde_json::json!({"driver": "qcow2", "node-name": "disk0", "file": "f0", "read-only": true}),
/// );
/// # let _ = file;
/// ```
impl BlockdevAdd {
    /// A node named `node_name` of the driver `branch` chose (any driver, with all its
    /// members: `BlockdevOptionsBranch::Blkdebug(..)`...).
    pub fn node(node_name: impl Into<String>, branch: BlockdevOptionsBranch) -> Self {
        BlockdevAdd(BlockdevOptions::of(branch).node_name(node_name))
    }

    /// A `file` node opening the host file `filename`.
    pub fn file(node_name: impl Into<String>, filename: impl Into<String>) -> Self {
        BlockdevAdd::node(node_name, BlockdevOptionsBranch::File(BlockdevOptionsFile::new(filename)))
    }

    /// A `qcow2` node whose image is `file` (a node's name, or a definition).
    pub fn qcow2(node_name: impl Into<String>, file: impl Into<BlockdevRef>) -> Self {
        let options = BlockdevOptionsQcow2::new(file.into());
        BlockdevAdd::node(node_name, BlockdevOptionsBranch::Qcow2(Box::new(options)))
    }

    /// A `raw` node over `file` (a node's name, or a definition).
    pub fn raw(node_name: impl Into<String>, file: impl Into<BlockdevRef>) -> Self {
        let options = BlockdevOptionsRaw::new(file.into());
        BlockdevAdd::node(node_name, BlockdevOptionsBranch::Raw(Box::new(options)))
    }

    /// A `null-co` node of `size` bytes: reads return zeroes (`read-zeroes`), writes are
    /// discarded.
    pub fn null_co(node_name: impl Into<String>, size: i64) -> Self {
        let options = BlockdevOptionsNull::new().size(size).read_zeroes(true);
        BlockdevAdd::node(node_name, BlockdevOptionsBranch::NullCo(options))
    }

    /// Opens the node read-only (`read-only`).
    pub fn read_only(self, read_only: bool) -> Self {
        BlockdevAdd(self.0.read_only(read_only))
    }
}

impl From<BlockdevOptions> for BlockdevRef {
    fn from(options: BlockdevOptions) -> Self {
        BlockdevRef::Definition(Box::new(options))
    }
}

impl From<&str> for BlockdevRef {
    /// A reference to the node of that name.
    fn from(node_name: &str) -> Self {
        BlockdevRef::Reference(node_name.to_owned())
    }
}

impl From<String> for BlockdevRef {
    /// A reference to the node of that name.
    fn from(node_name: String) -> Self {
        BlockdevRef::Reference(node_name)
    }
}

impl From<&str> for BlockdevRefOrNull {
    /// A reference to the node of that name.
    fn from(node_name: &str) -> Self {
        BlockdevRefOrNull::Reference(node_name.to_owned())
    }
}

impl DeviceAdd {
    /// Sets one of the device's own properties (QAPI leaves them free-form), replacing an
    /// earlier value of the same name.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.unknown_members.insert(name.into(), value.into());
        self
    }
}

impl QmpCapabilities {
    /// Negotiation enabling out-of-band execution (`{"enable": ["oob"]}`).
    pub fn with_oob() -> Self {
        QmpCapabilities::new().enable(vec![QMPCapability::Oob])
    }
}

/// Transactions built from their actions' arguments.
///
/// ```
/// use qmp_qapi::commands::Transaction;
/// use qmp_qapi::types::TransactionAction;
///
/// let tx = Transaction::new(vec![
///     TransactionAction::block_dirty_bitmap_add("top0", "bitmap0"),
///     TransactionAction::blockdev_snapshot("top0", "overlay0"),
/// ]);
/// assert_eq!(
///     qmp_qapi::serde_json::to_value(&tx).unwrap()["actions"][1],
///     qmp_qapi::serde_json::json!({"type": "blockdev-snapshot", "data": {"node": "top0", "overlay": "overlay0"}}),
/// );
/// ```
impl Transaction {
    /// Sets how the jobs the actions start complete (`properties.completion-mode`).
    pub fn completion_mode(self, mode: ActionCompletionMode) -> Self {
        self.properties(TransactionProperties::new().completion_mode(mode))
    }
}

impl TransactionAction {
    /// The action of `branch`.
    pub fn of(branch: TransactionActionBranch) -> Self {
        TransactionAction { branch }
    }

    /// Makes the whole transaction fail; useful in tests.
    pub fn abort() -> Self {
        TransactionAction::of(TransactionActionBranch::Abort(AbortWrapper::new(Abort::new())))
    }

    /// Adds a dirty bitmap `name` to `node`.
    pub fn block_dirty_bitmap_add(node: impl Into<String>, name: impl Into<String>) -> Self {
        let data = BlockDirtyBitmapAdd::new(node, name);
        TransactionAction::of(TransactionActionBranch::BlockDirtyBitmapAdd(BlockDirtyBitmapAddWrapper::new(
            data,
        )))
    }

    /// Removes the dirty bitmap `name` from `node`.
    pub fn block_dirty_bitmap_remove(node: impl Into<String>, name: impl Into<String>) -> Self {
        let data = BlockDirtyBitmapWrapper::new(BlockDirtyBitmap::new(node, name));
        TransactionAction::of(TransactionActionBranch::BlockDirtyBitmapRemove(data))
    }

    /// Clears the dirty bitmap `name` of `node`.
    pub fn block_dirty_bitmap_clear(node: impl Into<String>, name: impl Into<String>) -> Self {
        let data = BlockDirtyBitmapWrapper::new(BlockDirtyBitmap::new(node, name));
        TransactionAction::of(TransactionActionBranch::BlockDirtyBitmapClear(data))
    }

    /// Makes the existing node `overlay` the new top of `node`'s chain.
    pub fn blockdev_snapshot(node: impl Into<String>, overlay: impl Into<String>) -> Self {
        let data = BlockdevSnapshotWrapper::new(BlockdevSnapshot::new(node, overlay));
        TransactionAction::of(TransactionActionBranch::BlockdevSnapshot(data))
    }

    /// Creates the image `snapshot_file` in `format` and makes it the new top of `node_name`.
    pub fn blockdev_snapshot_sync(
        node_name: impl Into<String>,
        snapshot_file: impl Into<String>,
        format: impl Into<String>,
    ) -> Self {
        let data = BlockdevSnapshotSync::new(snapshot_file).node_name(node_name).format(format);
        TransactionAction::of(TransactionActionBranch::BlockdevSnapshotSync(
            BlockdevSnapshotSyncWrapper::new(data),
        ))
    }

    /// Takes an internal snapshot `name` of `device`.
    pub fn blockdev_snapshot_internal_sync(device: impl Into<String>, name: impl Into<String>) -> Self {
        let data = BlockdevSnapshotInternalWrapper::new(BlockdevSnapshotInternal::new(device, name));
        TransactionAction::of(TransactionActionBranch::BlockdevSnapshotInternalSync(data))
    }

    /// Starts a backup job `job_id` copying `device` to the existing node `target`.
    pub fn blockdev_backup(
        job_id: impl Into<String>,
        device: impl Into<String>,
        target: impl Into<String>,
        sync: MirrorSyncMode,
    ) -> Self {
        let data = BlockdevBackup::new(device, sync, target).job_id(job_id);
        TransactionAction::of(TransactionActionBranch::BlockdevBackup(BlockdevBackupWrapper::new(data)))
    }
}
