//! Block nodes and devices (`qapi/block-core.json`, `qapi/block.json`): adding and removing
//! nodes, and the `query-block` / `query-named-block-nodes` views.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Empty;

/// Creates a block node (`blockdev-add`). Its options are QAPI's `BlockdevOptions`, a union
/// over some forty drivers, so this type holds the options as a JSON object, with helpers for
/// common drivers and [`set`](BlockdevAdd::set) for anything else.
///
/// ```
/// use qmp::commands::BlockdevAdd;
///
/// let file = BlockdevAdd::file("f0", "/images/disk.qcow2");
/// let disk = BlockdevAdd::qcow2("disk0", "f0").read_only(true);
/// assert_eq!(
///     serde_json::to_value(&disk).unwrap(),
///     serde_json::json!({"driver": "qcow2", "node-name": "disk0", "file": "f0", "read-only": true}),
/// );
/// # let _ = file;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct BlockdevAdd {
    /// The options object: `driver`, `node-name` and the driver's own members.
    pub options: Map<String, Value>,
}
command!(BlockdevAdd, "blockdev-add", Empty);

impl BlockdevAdd {
    /// A node of `driver` named `node_name`, with no other options yet.
    pub fn new(driver: impl Into<String>, node_name: impl Into<String>) -> Self {
        BlockdevAdd::default().set("driver", driver.into()).set("node-name", node_name.into())
    }

    /// A `file` node opening the host file `filename`.
    pub fn file(node_name: impl Into<String>, filename: impl Into<String>) -> Self {
        BlockdevAdd::new("file", node_name).set("filename", filename.into())
    }

    /// A `qcow2` node whose image is the node named `file` (a reference, not a definition).
    pub fn qcow2(node_name: impl Into<String>, file: impl Into<String>) -> Self {
        BlockdevAdd::new("qcow2", node_name).set("file", file.into())
    }

    /// A `raw` node over the node named `file`.
    pub fn raw(node_name: impl Into<String>, file: impl Into<String>) -> Self {
        BlockdevAdd::new("raw", node_name).set("file", file.into())
    }

    /// A `null-co` node: reads return zeroes (with `read-zeroes`) and writes are discarded;
    /// `size` is its length in bytes.
    pub fn null_co(node_name: impl Into<String>, size: u64) -> Self {
        BlockdevAdd::new("null-co", node_name).set("size", size).set("read-zeroes", true)
    }

    /// Opens the node read-only (`read-only`).
    pub fn read_only(self, read_only: bool) -> Self {
        self.set("read-only", read_only)
    }

    /// Sets any option, replacing an earlier value of the same name.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }
}

impl From<Map<String, Value>> for BlockdevAdd {
    fn from(options: Map<String, Value>) -> Self {
        BlockdevAdd { options }
    }
}

/// Deletes a block node created with `blockdev-add` that nothing uses any more
/// (`blockdev-del`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockdevDel {
    /// The node's name.
    #[serde(rename = "node-name")]
    pub node_name: String,
}
command!(BlockdevDel, "blockdev-del", Empty);

impl BlockdevDel {
    /// Deletes the node `node_name`.
    pub fn new(node_name: impl Into<String>) -> Self {
        BlockdevDel { node_name: node_name.into() }
    }
}

unit_command! {
    /// Lists the block devices (guest drives and their media) (`query-block`).
    QueryBlock, "query-block", Vec<BlockInfo>
}

/// Lists every named block node (`query-named-block-nodes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueryNamedBlockNodes {
    /// When true, leaves out the backing chain inside each node's `image`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flat: Option<bool>,
}
command!(QueryNamedBlockNodes, "query-named-block-nodes", Vec<BlockDeviceInfo>);

qapi_enum! {
    /// The I/O status of a device or job (QAPI `BlockDeviceIoStatus`).
    pub enum BlockDeviceIoStatus {
        /// No error.
        Ok = "ok",
        /// An I/O error happened.
        Failed = "failed",
        /// The host ran out of space.
        Nospace = "nospace",
    }
}

qapi_enum! {
    /// Whether zero writes are detected and optimised (QAPI `BlockdevDetectZeroesOptions`).
    pub enum BlockdevDetectZeroesOptions {
        /// Disabled.
        Off = "off",
        /// Enabled.
        On = "on",
        /// Enabled, and zero writes become discards where allowed.
        Unmap = "unmap",
    }
}

/// A block device, as listed by `query-block`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// The device's name (its `-drive` id; may be empty for `-blockdev` setups).
    pub device: String,
    /// The qdev id or QOM path of the guest device, if attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdev: Option<String>,
    /// The device type, always `unknown` nowadays.
    #[serde(rename = "type")]
    pub kind: String,
    /// True when the medium is removable.
    pub removable: bool,
    /// True when the guest has locked the tray.
    pub locked: bool,
    /// The inserted medium's node, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inserted: Option<BlockDeviceInfo>,
    /// Whether the tray is open (removable devices only).
    #[serde(rename = "tray_open", default, skip_serializing_if = "Option::is_none")]
    pub tray_open: Option<bool>,
    /// The device's I/O status (when `werror`/`rerror` stop the VM).
    #[serde(rename = "io-status", default, skip_serializing_if = "Option::is_none")]
    pub io_status: Option<BlockDeviceIoStatus>,
}

/// A block node: its driver, image and I/O limits (QAPI `BlockDeviceInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDeviceInfo {
    /// The node's filename.
    pub file: String,
    /// The node's name.
    #[serde(rename = "node-name", default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// True when opened read-only.
    pub ro: bool,
    /// The driver, such as `qcow2` or `file`.
    pub drv: String,
    /// The backing file's name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing_file: Option<String>,
    /// How many backing files the chain has below this node.
    pub backing_file_depth: i64,
    /// True when the image is encrypted.
    pub encrypted: bool,
    /// Zero-write detection.
    pub detect_zeroes: BlockdevDetectZeroesOptions,
    /// Total throughput limit, bytes per second (0: none).
    pub bps: i64,
    /// Read throughput limit, bytes per second.
    pub bps_rd: i64,
    /// Write throughput limit, bytes per second.
    pub bps_wr: i64,
    /// Total I/O operations limit per second.
    pub iops: i64,
    /// Read operations limit per second.
    pub iops_rd: i64,
    /// Write operations limit per second.
    pub iops_wr: i64,
    /// The image's details.
    pub image: ImageInfo,
    /// Burst limits and the throttle group, when throttling is configured.
    #[serde(flatten)]
    pub throttle_bursts: ThrottleBursts,
    /// The cache mode.
    pub cache: BlockdevCacheInfo,
    /// The write threshold in bytes, 0 when unset.
    pub write_threshold: i64,
    /// The node's dirty bitmaps.
    #[serde(rename = "dirty-bitmaps", default, skip_serializing_if = "Option::is_none")]
    pub dirty_bitmaps: Option<Vec<BlockDirtyInfo>>,
}

/// The optional burst limits of a throttled node (members of QAPI `BlockDeviceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleBursts {
    /// Total throughput burst limit, bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps_max: Option<i64>,
    /// Read throughput burst limit, bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps_rd_max: Option<i64>,
    /// Write throughput burst limit, bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps_wr_max: Option<i64>,
    /// Total operations burst limit per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops_max: Option<i64>,
    /// Read operations burst limit per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops_rd_max: Option<i64>,
    /// Write operations burst limit per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops_wr_max: Option<i64>,
    /// How long, in seconds, the `bps_max` burst may last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps_max_length: Option<i64>,
    /// How long, in seconds, the `bps_rd_max` burst may last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps_rd_max_length: Option<i64>,
    /// How long, in seconds, the `bps_wr_max` burst may last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps_wr_max_length: Option<i64>,
    /// How long, in seconds, the `iops_max` burst may last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops_max_length: Option<i64>,
    /// How long, in seconds, the `iops_rd_max` burst may last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops_rd_max_length: Option<i64>,
    /// How long, in seconds, the `iops_wr_max` burst may last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops_wr_max_length: Option<i64>,
    /// The I/O size counted as one operation by the iops limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops_size: Option<i64>,
    /// The throttle group's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// An image's details (QAPI `ImageInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The image's filename.
    pub filename: String,
    /// Its format, such as `qcow2`.
    pub format: String,
    /// True when the image was not closed cleanly.
    #[serde(rename = "dirty-flag", default, skip_serializing_if = "Option::is_none")]
    pub dirty_flag: Option<bool>,
    /// Bytes used on the host.
    #[serde(rename = "actual-size", default, skip_serializing_if = "Option::is_none")]
    pub actual_size: Option<i64>,
    /// The size the guest sees, in bytes.
    #[serde(rename = "virtual-size")]
    pub virtual_size: i64,
    /// The cluster size, for formats that have one.
    #[serde(rename = "cluster-size", default, skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<i64>,
    /// True when the image is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// True when the image is compressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed: Option<bool>,
    /// The backing file's name as written in the image.
    #[serde(rename = "backing-filename", default, skip_serializing_if = "Option::is_none")]
    pub backing_filename: Option<String>,
    /// The backing file's full path.
    #[serde(rename = "full-backing-filename", default, skip_serializing_if = "Option::is_none")]
    pub full_backing_filename: Option<String>,
    /// The backing file's format.
    #[serde(rename = "backing-filename-format", default, skip_serializing_if = "Option::is_none")]
    pub backing_filename_format: Option<String>,
    /// Internal snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Vec<SnapshotInfo>>,
    /// The backing image, recursively.
    #[serde(rename = "backing-image", default, skip_serializing_if = "Option::is_none")]
    pub backing_image: Option<Box<ImageInfo>>,
    /// Format-specific details (`{"type": "qcow2", "data": {...}}`), kept as JSON.
    #[serde(rename = "format-specific", default, skip_serializing_if = "Option::is_none")]
    pub format_specific: Option<Value>,
}

/// An internal snapshot (QAPI `SnapshotInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Size of the saved VM state, in bytes.
    #[serde(rename = "vm-state-size")]
    pub vm_state_size: i64,
    /// Creation time, seconds.
    #[serde(rename = "date-sec")]
    pub date_sec: i64,
    /// Creation time, nanoseconds within the second.
    #[serde(rename = "date-nsec")]
    pub date_nsec: i64,
    /// Guest clock at creation, seconds.
    #[serde(rename = "vm-clock-sec")]
    pub vm_clock_sec: i64,
    /// Guest clock at creation, nanoseconds within the second.
    #[serde(rename = "vm-clock-nsec")]
    pub vm_clock_nsec: i64,
    /// Instruction count at creation (record/replay only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icount: Option<i64>,
}

/// A node's cache mode (QAPI `BlockdevCacheInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockdevCacheInfo {
    /// True for write-back caching.
    pub writeback: bool,
    /// True when the host page cache is bypassed (`O_DIRECT`).
    pub direct: bool,
    /// True when flush requests are ignored.
    #[serde(rename = "no-flush")]
    pub no_flush: bool,
}

/// A dirty bitmap (QAPI `BlockDirtyInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDirtyInfo {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Dirty bytes.
    pub count: i64,
    /// Bytes per bit.
    pub granularity: i64,
    /// True when it records writes.
    pub recording: bool,
    /// True when an operation is using it.
    pub busy: bool,
    /// True when it is stored in the image.
    pub persistent: bool,
    /// True when it was not saved cleanly and cannot be trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconsistent: Option<bool>,
}
