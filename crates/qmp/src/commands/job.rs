//! Block jobs and generic jobs (`qapi/block-core.json`, `qapi/job.json`): starting stream,
//! commit and mirror jobs, controlling them, and listing them.

use serde::{Deserialize, Serialize};

use super::BlockDeviceIoStatus;
use crate::Empty;

qapi_enum! {
    /// A job's kind (QAPI `JobType`).
    pub enum JobType {
        /// `block-commit`.
        Commit = "commit",
        /// `block-stream`.
        Stream = "stream",
        /// `blockdev-mirror` / `drive-mirror`.
        Mirror = "mirror",
        /// `blockdev-backup` / `drive-backup`.
        Backup = "backup",
        /// `blockdev-create`.
        Create = "create",
        /// `x-blockdev-amend`.
        Amend = "amend",
        /// `snapshot-load`.
        SnapshotLoad = "snapshot-load",
        /// `snapshot-save`.
        SnapshotSave = "snapshot-save",
        /// `snapshot-delete`.
        SnapshotDelete = "snapshot-delete",
    }
}

qapi_enum! {
    /// A job's state in its life cycle (QAPI `JobStatus`).
    pub enum JobStatus {
        /// Erroneous, should never be seen.
        Undefined = "undefined",
        /// Created, not started yet.
        Created = "created",
        /// Running.
        Running = "running",
        /// Paused by request or error.
        Paused = "paused",
        /// Ready to complete (mirror, commit of the active layer).
        Ready = "ready",
        /// Ready but paused.
        Standby = "standby",
        /// Done, waiting for the other jobs of its transaction.
        Waiting = "waiting",
        /// Waiting for `job-finalize` (when `auto-finalize` is off).
        Pending = "pending",
        /// Failing or being cancelled.
        Aborting = "aborting",
        /// Finished, waiting for `job-dismiss` (when `auto-dismiss` is off).
        Concluded = "concluded",
        /// Gone: removed from the job list.
        Null = "null",
    }
}

qapi_enum! {
    /// What a job does on an I/O error (QAPI `BlockdevOnError`).
    pub enum BlockdevOnError {
        /// Report the error to the guest or job.
        Report = "report",
        /// Ignore it and carry on.
        Ignore = "ignore",
        /// Stop on "no space", report other errors.
        Enospc = "enospc",
        /// Pause the job (or VM).
        Stop = "stop",
        /// Follow the device's own `werror`/`rerror` setting.
        Auto = "auto",
    }
}

qapi_enum! {
    /// Which part of the source a mirror or backup copies (QAPI `MirrorSyncMode`).
    pub enum MirrorSyncMode {
        /// The top image only.
        Top = "top",
        /// The whole backing chain.
        Full = "full",
        /// Nothing up front: only new writes.
        None = "none",
        /// What a dirty bitmap marks, then clear it.
        Incremental = "incremental",
        /// What a dirty bitmap marks.
        Bitmap = "bitmap",
    }
}

qapi_enum! {
    /// How a mirror treats guest writes while it runs (QAPI `MirrorCopyMode`).
    pub enum MirrorCopyMode {
        /// Copy in the background.
        Background = "background",
        /// Write to both source and target before completing a guest write.
        WriteBlocking = "write-blocking",
    }
}

/// Copies data from a backing chain into a node, then drops the backing files copied from
/// (`block-stream`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockStream {
    /// The job's id; defaults to the device name.
    #[serde(rename = "job-id", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The device or node to stream into.
    pub device: String,
    /// The backing file to stop at, by filename (deprecated in favour of `base-node`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The backing node to stop at (it is kept).
    #[serde(rename = "base-node", skip_serializing_if = "Option::is_none")]
    pub base_node: Option<String>,
    /// The backing file string to write into the image after the job.
    #[serde(rename = "backing-file", skip_serializing_if = "Option::is_none")]
    pub backing_file: Option<String>,
    /// The last node to copy from (exclusive of `base`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bottom: Option<String>,
    /// Rate limit in bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<i64>,
    /// What to do on I/O errors.
    #[serde(rename = "on-error", skip_serializing_if = "Option::is_none")]
    pub on_error: Option<BlockdevOnError>,
    /// The name of the filter node the job inserts.
    #[serde(rename = "filter-node-name", skip_serializing_if = "Option::is_none")]
    pub filter_node_name: Option<String>,
    /// False to wait for `job-finalize` before finishing.
    #[serde(rename = "auto-finalize", skip_serializing_if = "Option::is_none")]
    pub auto_finalize: Option<bool>,
    /// False to keep the concluded job until `job-dismiss`.
    #[serde(rename = "auto-dismiss", skip_serializing_if = "Option::is_none")]
    pub auto_dismiss: Option<bool>,
}
command!(BlockStream, "block-stream", Empty);

impl BlockStream {
    /// Streams into `device`, with every option left to QEMU.
    pub fn new(device: impl Into<String>) -> Self {
        BlockStream { device: device.into(), ..BlockStream::default() }
    }
}
setters!(BlockStream {
    job_id: String,
    base: String,
    base_node: String,
    backing_file: String,
    bottom: String,
    speed: i64,
    on_error: BlockdevOnError,
    filter_node_name: String,
    auto_finalize: bool,
    auto_dismiss: bool,
});

/// Merges an image into one of its backing files (`block-commit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockCommit {
    /// The job's id; defaults to the device name.
    #[serde(rename = "job-id", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The device or node whose chain is committed.
    pub device: String,
    /// The node to commit into; the bottom of the chain when unset.
    #[serde(rename = "base-node", skip_serializing_if = "Option::is_none")]
    pub base_node: Option<String>,
    /// The file to commit into, by filename (deprecated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The top node to commit; the active layer when unset.
    #[serde(rename = "top-node", skip_serializing_if = "Option::is_none")]
    pub top_node: Option<String>,
    /// The top file to commit, by filename (deprecated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<String>,
    /// The backing file string to write into the overlay of `top`.
    #[serde(rename = "backing-file", skip_serializing_if = "Option::is_none")]
    pub backing_file: Option<String>,
    /// Rate limit in bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<i64>,
    /// What to do on I/O errors.
    #[serde(rename = "on-error", skip_serializing_if = "Option::is_none")]
    pub on_error: Option<BlockdevOnError>,
    /// The name of the filter node the job inserts.
    #[serde(rename = "filter-node-name", skip_serializing_if = "Option::is_none")]
    pub filter_node_name: Option<String>,
    /// False to wait for `job-finalize` before finishing.
    #[serde(rename = "auto-finalize", skip_serializing_if = "Option::is_none")]
    pub auto_finalize: Option<bool>,
    /// False to keep the concluded job until `job-dismiss`.
    #[serde(rename = "auto-dismiss", skip_serializing_if = "Option::is_none")]
    pub auto_dismiss: Option<bool>,
}
command!(BlockCommit, "block-commit", Empty);

impl BlockCommit {
    /// Commits the chain of `device`, with every option left to QEMU.
    pub fn new(device: impl Into<String>) -> Self {
        BlockCommit { device: device.into(), ..BlockCommit::default() }
    }
}
setters!(BlockCommit {
    job_id: String,
    base_node: String,
    base: String,
    top_node: String,
    top: String,
    backing_file: String,
    speed: i64,
    on_error: BlockdevOnError,
    filter_node_name: String,
    auto_finalize: bool,
    auto_dismiss: bool,
});

/// Mirrors a node to another existing node (`blockdev-mirror`); the job becomes ready when
/// both are in sync, and `block-job-complete` then switches over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockdevMirror {
    /// The job's id; defaults to the device name.
    #[serde(rename = "job-id", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The source device or node.
    pub device: String,
    /// The target node.
    pub target: String,
    /// The node the target replaces on completion (defaults to the source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// What to copy.
    pub sync: MirrorSyncMode,
    /// Rate limit in bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<i64>,
    /// Dirty-tracking granularity in bytes (a power of two, 512 B to 64 MiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granularity: Option<i64>,
    /// Maximum bytes in flight.
    #[serde(rename = "buf-size", skip_serializing_if = "Option::is_none")]
    pub buf_size: Option<i64>,
    /// What to do on source I/O errors.
    #[serde(rename = "on-source-error", skip_serializing_if = "Option::is_none")]
    pub on_source_error: Option<BlockdevOnError>,
    /// What to do on target I/O errors.
    #[serde(rename = "on-target-error", skip_serializing_if = "Option::is_none")]
    pub on_target_error: Option<BlockdevOnError>,
    /// The name of the filter node the job inserts.
    #[serde(rename = "filter-node-name", skip_serializing_if = "Option::is_none")]
    pub filter_node_name: Option<String>,
    /// How guest writes are handled while mirroring.
    #[serde(rename = "copy-mode", skip_serializing_if = "Option::is_none")]
    pub copy_mode: Option<MirrorCopyMode>,
    /// False to wait for `job-finalize` before finishing.
    #[serde(rename = "auto-finalize", skip_serializing_if = "Option::is_none")]
    pub auto_finalize: Option<bool>,
    /// False to keep the concluded job until `job-dismiss`.
    #[serde(rename = "auto-dismiss", skip_serializing_if = "Option::is_none")]
    pub auto_dismiss: Option<bool>,
}
command!(BlockdevMirror, "blockdev-mirror", Empty);

impl BlockdevMirror {
    /// Mirrors `device` to `target`, copying what `sync` says.
    pub fn new(device: impl Into<String>, target: impl Into<String>, sync: MirrorSyncMode) -> Self {
        BlockdevMirror {
            job_id: None,
            device: device.into(),
            target: target.into(),
            replaces: None,
            sync,
            speed: None,
            granularity: None,
            buf_size: None,
            on_source_error: None,
            on_target_error: None,
            filter_node_name: None,
            copy_mode: None,
            auto_finalize: None,
            auto_dismiss: None,
        }
    }
}
setters!(BlockdevMirror {
    job_id: String,
    replaces: String,
    speed: i64,
    granularity: i64,
    buf_size: i64,
    on_source_error: BlockdevOnError,
    on_target_error: BlockdevOnError,
    filter_node_name: String,
    copy_mode: MirrorCopyMode,
    auto_finalize: bool,
    auto_dismiss: bool,
});

/// Stops a block job (`block-job-cancel`). A ready mirror cancelled without `force`
/// completes without switching over and reports `BLOCK_JOB_COMPLETED`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockJobCancel {
    /// The job's id.
    pub device: String,
    /// True to cancel even a paused or ready job at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}
command!(BlockJobCancel, "block-job-cancel", Empty);

impl BlockJobCancel {
    /// Cancels the job `device`.
    pub fn new(device: impl Into<String>) -> Self {
        BlockJobCancel { device: device.into(), force: None }
    }
}
setters!(BlockJobCancel { force: bool });

/// Pauses a block job (`block-job-pause`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockJobPause {
    /// The job's id.
    pub device: String,
}
command!(BlockJobPause, "block-job-pause", Empty);

impl BlockJobPause {
    /// Pauses the job `device`.
    pub fn new(device: impl Into<String>) -> Self {
        BlockJobPause { device: device.into() }
    }
}

/// Resumes a paused block job (`block-job-resume`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockJobResume {
    /// The job's id.
    pub device: String,
}
command!(BlockJobResume, "block-job-resume", Empty);

impl BlockJobResume {
    /// Resumes the job `device`.
    pub fn new(device: impl Into<String>) -> Self {
        BlockJobResume { device: device.into() }
    }
}

/// Sets a block job's rate limit (`block-job-set-speed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockJobSetSpeed {
    /// The job's id.
    pub device: String,
    /// Bytes per second; 0 for unlimited.
    pub speed: i64,
}
command!(BlockJobSetSpeed, "block-job-set-speed", Empty);

impl BlockJobSetSpeed {
    /// Limits the job `device` to `speed` bytes per second (0: unlimited).
    pub fn new(device: impl Into<String>, speed: i64) -> Self {
        BlockJobSetSpeed { device: device.into(), speed }
    }
}

/// Completes a ready job, such as a mirror, switching the device to the target
/// (`block-job-complete`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockJobComplete {
    /// The job's id.
    pub device: String,
}
command!(BlockJobComplete, "block-job-complete", Empty);

impl BlockJobComplete {
    /// Completes the job `device`.
    pub fn new(device: impl Into<String>) -> Self {
        BlockJobComplete { device: device.into() }
    }
}

unit_command! {
    /// Lists the active block jobs (`query-block-jobs`).
    QueryBlockJobs, "query-block-jobs", Vec<BlockJobInfo>
}

/// One block job of `query-block-jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockJobInfo {
    /// The job's kind (a string in QAPI; compare with [`JobType::as_str`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// The job's id.
    pub device: String,
    /// Estimated end of the work, in bytes (progress is `offset / len`).
    pub len: i64,
    /// Progress so far, in bytes.
    pub offset: i64,
    /// False when the job is sleeping (paused or rate-limited).
    pub busy: bool,
    /// True when paused by request.
    pub paused: bool,
    /// The rate limit, bytes per second.
    pub speed: i64,
    /// The job's I/O status.
    #[serde(rename = "io-status")]
    pub io_status: BlockDeviceIoStatus,
    /// True when it can be completed.
    pub ready: bool,
    /// Its life-cycle state.
    pub status: JobStatus,
    /// Whether it finalises by itself.
    #[serde(rename = "auto-finalize")]
    pub auto_finalize: bool,
    /// Whether it is dismissed by itself.
    #[serde(rename = "auto-dismiss")]
    pub auto_dismiss: bool,
    /// The error, once it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

unit_command! {
    /// Lists all jobs, block or not (`query-jobs`).
    QueryJobs, "query-jobs", Vec<JobInfo>
}

/// One job of `query-jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's id.
    pub id: String,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: JobType,
    /// Its life-cycle state.
    pub status: JobStatus,
    /// Progress so far, in arbitrary units of `total_progress`.
    #[serde(rename = "current-progress")]
    pub current_progress: i64,
    /// Estimated total, in the same units.
    #[serde(rename = "total-progress")]
    pub total_progress: i64,
    /// The error, once it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Removes a concluded job from the job list (`job-dismiss`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobDismiss {
    /// The job's id.
    pub id: String,
}
command!(JobDismiss, "job-dismiss", Empty);

impl JobDismiss {
    /// Dismisses the concluded job `id`.
    pub fn new(id: impl Into<String>) -> Self {
        JobDismiss { id: id.into() }
    }
}
