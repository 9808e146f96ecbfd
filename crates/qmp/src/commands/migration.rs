//! Migration (`qapi/migration.json`): starting one and following its progress.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Empty;

/// Migrates the VM to `uri` (`migrate`), such as `tcp:host:port`, `unix:/path` or
/// `exec:cmd`. The command returns at once; follow progress with `query-migrate` or the
/// `MIGRATION` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Migrate {
    /// Where to migrate to.
    pub uri: String,
    /// True to migrate the disks too (block migration; deprecated after 7.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blk: Option<bool>,
    /// True for incremental disk copy (deprecated after 7.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inc: Option<bool>,
    /// Ignored; kept for compatibility (QMP migration is always detached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detach: Option<bool>,
    /// True to resume a paused postcopy migration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<bool>,
}
command!(Migrate, "migrate", Empty);

impl Migrate {
    /// Migrates to `uri` with default options.
    pub fn new(uri: impl Into<String>) -> Self {
        Migrate { uri: uri.into(), ..Migrate::default() }
    }
}
setters!(Migrate { blk: bool, inc: bool, detach: bool, resume: bool });

qapi_enum! {
    /// The state of a migration (QAPI `MigrationStatus`).
    pub enum MigrationStatus {
        /// No migration has started.
        None = "none",
        /// Setting up.
        Setup = "setup",
        /// Being cancelled.
        Cancelling = "cancelling",
        /// Cancelled.
        Cancelled = "cancelled",
        /// Sending data.
        Active = "active",
        /// In the postcopy phase.
        PostcopyActive = "postcopy-active",
        /// Postcopy paused by a network failure.
        PostcopyPaused = "postcopy-paused",
        /// Recovering a paused postcopy.
        PostcopyRecover = "postcopy-recover",
        /// Finished.
        Completed = "completed",
        /// Failed (see `error_desc`).
        Failed = "failed",
        /// In COLO mode.
        Colo = "colo",
        /// Paused before switchover (`pause-before-switchover`).
        PreSwitchover = "pre-switchover",
        /// Migrating device state after the RAM.
        Device = "device",
        /// Waiting for unplug requests to finish.
        WaitUnplug = "wait-unplug",
    }
}

unit_command! {
    /// Returns the state and statistics of the current or last migration (`query-migrate`);
    /// an empty object when none ever ran.
    QueryMigrate, "query-migrate", MigrationInfo
}

/// The answer of `query-migrate`. Every member is optional; which ones are present depends
/// on the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrationInfo {
    /// The state; absent when no migration ever ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MigrationStatus>,
    /// RAM transfer statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram: Option<MigrationStats>,
    /// Disk transfer statistics (block migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<MigrationStats>,
    /// VFIO device statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vfio: Option<VfioStats>,
    /// XBZRLE compression cache statistics.
    #[serde(rename = "xbzrle-cache", default, skip_serializing_if = "Option::is_none")]
    pub xbzrle_cache: Option<XbzrleCacheStats>,
    /// Milliseconds since the start (or total, once finished).
    #[serde(rename = "total-time", default, skip_serializing_if = "Option::is_none")]
    pub total_time: Option<i64>,
    /// Expected downtime in milliseconds, while active.
    #[serde(rename = "expected-downtime", default, skip_serializing_if = "Option::is_none")]
    pub expected_downtime: Option<i64>,
    /// Actual downtime in milliseconds, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<i64>,
    /// Setup time in milliseconds.
    #[serde(rename = "setup-time", default, skip_serializing_if = "Option::is_none")]
    pub setup_time: Option<i64>,
    /// Current CPU throttle percentage (auto-converge).
    #[serde(rename = "cpu-throttle-percentage", default, skip_serializing_if = "Option::is_none")]
    pub cpu_throttle_percentage: Option<i64>,
    /// Why it failed.
    #[serde(rename = "error-desc", default, skip_serializing_if = "Option::is_none")]
    pub error_desc: Option<String>,
    /// What currently blocks migration.
    #[serde(rename = "blocked-reasons", default, skip_serializing_if = "Option::is_none")]
    pub blocked_reasons: Option<Vec<String>>,
    /// Total postcopy blocktime, milliseconds.
    #[serde(rename = "postcopy-blocktime", default, skip_serializing_if = "Option::is_none")]
    pub postcopy_blocktime: Option<i64>,
    /// Postcopy blocktime per vCPU, milliseconds.
    #[serde(rename = "postcopy-vcpu-blocktime", default, skip_serializing_if = "Option::is_none")]
    pub postcopy_vcpu_blocktime: Option<Vec<i64>>,
    /// Compression statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionStats>,
    /// The addresses listened on (incoming side), as QAPI `SocketAddress` objects.
    #[serde(rename = "socket-address", default, skip_serializing_if = "Option::is_none")]
    pub socket_address: Option<Vec<Value>>,
}

/// RAM or disk transfer statistics (QAPI `MigrationStats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrationStats {
    /// Bytes transferred.
    pub transferred: i64,
    /// Bytes remaining.
    pub remaining: i64,
    /// Total bytes.
    pub total: i64,
    /// Pages found to be all zero.
    pub duplicate: i64,
    /// Pages skipped (always 0; deprecated after 7.2 and later removed, hence the default).
    #[serde(default)]
    pub skipped: i64,
    /// Pages sent in full.
    pub normal: i64,
    /// Bytes of pages sent in full.
    #[serde(rename = "normal-bytes")]
    pub normal_bytes: i64,
    /// Pages dirtied per second.
    #[serde(rename = "dirty-pages-rate")]
    pub dirty_pages_rate: i64,
    /// Throughput in megabits per second.
    pub mbps: f64,
    /// Number of dirty bitmap syncs.
    #[serde(rename = "dirty-sync-count")]
    pub dirty_sync_count: i64,
    /// Page requests received from the destination in postcopy.
    #[serde(rename = "postcopy-requests")]
    pub postcopy_requests: i64,
    /// The target page size.
    #[serde(rename = "page-size")]
    pub page_size: i64,
    /// Bytes sent over multifd channels.
    #[serde(rename = "multifd-bytes")]
    pub multifd_bytes: i64,
    /// Pages sent per second.
    #[serde(rename = "pages-per-second")]
    pub pages_per_second: i64,
    /// Bytes sent in the precopy phase.
    #[serde(rename = "precopy-bytes")]
    pub precopy_bytes: i64,
    /// Bytes sent while the guest was stopped.
    #[serde(rename = "downtime-bytes")]
    pub downtime_bytes: i64,
    /// Bytes sent in the postcopy phase.
    #[serde(rename = "postcopy-bytes")]
    pub postcopy_bytes: i64,
    /// Zero-copy syncs that found no dirty pages.
    #[serde(rename = "dirty-sync-missed-zero-copy")]
    pub dirty_sync_missed_zero_copy: i64,
}

/// VFIO migration statistics (QAPI `VfioStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioStats {
    /// Bytes of VFIO device state transferred.
    pub transferred: i64,
}

/// XBZRLE cache statistics (QAPI `XBZRLECacheStats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct XbzrleCacheStats {
    /// Cache size in bytes.
    #[serde(rename = "cache-size")]
    pub cache_size: i64,
    /// Bytes sent XBZRLE-encoded.
    pub bytes: i64,
    /// Pages sent XBZRLE-encoded.
    pub pages: i64,
    /// Cache misses.
    #[serde(rename = "cache-miss")]
    pub cache_miss: i64,
    /// Cache miss rate.
    #[serde(rename = "cache-miss-rate")]
    pub cache_miss_rate: f64,
    /// Encoding rate.
    #[serde(rename = "encoding-rate")]
    pub encoding_rate: f64,
    /// Overflows.
    pub overflow: i64,
}

/// Multi-thread compression statistics (QAPI `CompressionStats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompressionStats {
    /// Pages compressed and sent.
    pub pages: i64,
    /// Times no compression thread was free.
    pub busy: i64,
    /// Rate of `busy`.
    #[serde(rename = "busy-rate")]
    pub busy_rate: f64,
    /// Bytes after compression.
    #[serde(rename = "compressed-size")]
    pub compressed_size: i64,
    /// Compression ratio.
    #[serde(rename = "compression-rate")]
    pub compression_rate: f64,
}
