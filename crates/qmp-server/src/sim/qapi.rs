//! Argument and event declarations copied from QEMU 7.2's QAPI schema (as
//! `qemu-system-x86_64` reports it), member order included: QEMU checks members in
//! declaration order, so the order decides which error a bad request gets. The test
//! `differential_schema` compares these with the real binary's `query-qmp-schema`.
//! Members typed [`Ty::Any`] are QAPI alternates or objects the simulator does not check.

use crate::schema::{Struct, Ty};
use crate::server::CommandSpec;

/// `BlockdevDriver` as built into Debian's QEMU 7.2.
const BLOCK_DRIVERS: &[&str] = &[
    "blkdebug",
    "blklogwrites",
    "blkreplay",
    "blkverify",
    "bochs",
    "cloop",
    "compress",
    "copy-before-write",
    "copy-on-read",
    "dmg",
    "file",
    "snapshot-access",
    "ftp",
    "ftps",
    "gluster",
    "host_cdrom",
    "host_device",
    "http",
    "https",
    "iscsi",
    "luks",
    "nbd",
    "nfs",
    "null-aio",
    "null-co",
    "nvme",
    "parallels",
    "preallocate",
    "qcow",
    "qcow2",
    "qed",
    "quorum",
    "raw",
    "rbd",
    "replication",
    "ssh",
    "throttle",
    "vdi",
    "vhdx",
    "vmdk",
    "vpc",
    "vvfat",
];

const JOB_STATUS: &[&str] = &[
    "undefined",
    "created",
    "running",
    "paused",
    "ready",
    "standby",
    "waiting",
    "pending",
    "aborting",
    "concluded",
    "null",
];

const SHUTDOWN_CAUSE: &[&str] = &[
    "none",
    "host-error",
    "host-qmp-quit",
    "host-qmp-system-reset",
    "host-signal",
    "host-ui",
    "guest-shutdown",
    "guest-reset",
    "guest-panic",
    "subsystem-reset",
    "snapshot-load",
];

const JOB_TYPE: &[&str] = &[
    "commit",
    "stream",
    "mirror",
    "backup",
    "create",
    "amend",
    "snapshot-load",
    "snapshot-save",
    "snapshot-delete",
];

fn on_error() -> Ty {
    Ty::enumeration("BlockdevOnError", ["report", "ignore", "enospc", "stop", "auto"])
}

/// `blockdev-add`'s `BlockdevOptions`, with the variants the simulator implements.
pub(crate) fn blockdev_add_args() -> Struct {
    let base = Struct::new()
        .member("driver", Ty::enumeration("BlockdevDriver", BLOCK_DRIVERS.iter().copied()))
        .optional("node-name", Ty::Str)
        .optional("discard", Ty::enumeration("BlockdevDiscardOptions", ["ignore", "unmap"]))
        .optional(
            "cache",
            Ty::object(Struct::new().optional("direct", Ty::Bool).optional("no-flush", Ty::Bool)),
        )
        .optional("read-only", Ty::Bool)
        .optional("auto-read-only", Ty::Bool)
        .optional("force-share", Ty::Bool)
        .optional("detect-zeroes", Ty::enumeration("BlockdevDetectZeroesOptions", ["off", "on", "unmap"]));
    let file = Struct::new()
        .member("filename", Ty::Str)
        .optional("pr-manager", Ty::Str)
        .optional("locking", Ty::enumeration("OnOffAuto", ["auto", "on", "off"]))
        .optional("aio", Ty::enumeration("BlockdevAioOptions", ["threads", "native", "io_uring"]))
        .optional("aio-max-batch", Ty::Int)
        .optional("drop-cache", Ty::Bool)
        .optional("x-check-cache-dropped", Ty::Bool);
    let qcow2 = Struct::new()
        .member("file", Ty::Any)
        .optional("backing", Ty::Any)
        .optional("lazy-refcounts", Ty::Bool)
        .optional("pass-discard-request", Ty::Bool)
        .optional("pass-discard-snapshot", Ty::Bool)
        .optional("pass-discard-other", Ty::Bool)
        .optional("overlap-check", Ty::Any)
        .optional("cache-size", Ty::Int)
        .optional("l2-cache-size", Ty::Int)
        .optional("l2-cache-entry-size", Ty::Int)
        .optional("refcount-cache-size", Ty::Int)
        .optional("cache-clean-interval", Ty::Int)
        .optional("encrypt", Ty::Any)
        .optional("data-file", Ty::Any);
    let null = Struct::new()
        .optional("size", Ty::Int)
        .optional("latency-ns", Ty::Uint)
        .optional("read-zeroes", Ty::Bool);
    base.union(
        "driver",
        vec![
            ("file".into(), file),
            ("qcow2".into(), qcow2),
            ("null-co".into(), null.clone()),
            ("null-aio".into(), null),
        ],
    )
}

fn job_tail(spec: CommandSpec) -> CommandSpec {
    spec.opt("filter-node-name", Ty::Str).opt("auto-finalize", Ty::Bool).opt("auto-dismiss", Ty::Bool)
}

/// `block-stream`'s arguments, in QEMU's order.
pub(crate) fn block_stream(spec: CommandSpec) -> CommandSpec {
    job_tail(
        spec.opt("job-id", Ty::Str)
            .arg("device", Ty::Str)
            .opt("base", Ty::Str)
            .opt("base-node", Ty::Str)
            .opt("backing-file", Ty::Str)
            .opt("bottom", Ty::Str)
            .opt("speed", Ty::Int)
            .opt("on-error", on_error()),
    )
}

/// `block-commit`'s arguments, in QEMU's order.
pub(crate) fn block_commit(spec: CommandSpec) -> CommandSpec {
    job_tail(
        spec.opt("job-id", Ty::Str)
            .arg("device", Ty::Str)
            .opt("base-node", Ty::Str)
            .opt("base", Ty::Str)
            .opt("top-node", Ty::Str)
            .opt("top", Ty::Str)
            .opt("backing-file", Ty::Str)
            .opt("speed", Ty::Int)
            .opt("on-error", on_error()),
    )
}

/// `blockdev-mirror`'s arguments, in QEMU's order.
pub(crate) fn blockdev_mirror(spec: CommandSpec) -> CommandSpec {
    let sync = Ty::enumeration("MirrorSyncMode", ["top", "full", "none", "incremental", "bitmap"]);
    spec.opt("job-id", Ty::Str)
        .arg("device", Ty::Str)
        .arg("target", Ty::Str)
        .opt("replaces", Ty::Str)
        .arg("sync", sync)
        .opt("speed", Ty::Int)
        .opt("granularity", Ty::Uint)
        .opt("buf-size", Ty::Int)
        .opt("on-source-error", on_error())
        .opt("on-target-error", on_error())
        .opt("filter-node-name", Ty::Str)
        .opt("copy-mode", Ty::enumeration("MirrorCopyMode", ["background", "write-blocking"]))
        .opt("auto-finalize", Ty::Bool)
        .opt("auto-dismiss", Ty::Bool)
}

/// `migrate`'s arguments.
pub(crate) fn migrate(spec: CommandSpec) -> CommandSpec {
    spec.arg("uri", Ty::Str)
        .opt("blk", Ty::Bool)
        .opt("inc", Ty::Bool)
        .opt("detach", Ty::Bool)
        .opt("resume", Ty::Bool)
}

/// `migrate-set-capabilities`'s arguments.
pub(crate) fn migrate_set_capabilities(spec: CommandSpec) -> CommandSpec {
    let cap = Ty::enumeration("MigrationCapability", super::migration::CAPABILITIES.iter().copied());
    spec.arg(
        "capabilities",
        Ty::array(Ty::object(Struct::new().member("capability", cap).member("state", Ty::Bool))),
    )
}

/// The events the simulator emits, with their data types.
pub(crate) fn events() -> Vec<(&'static str, Struct)> {
    let reason = || {
        Struct::new()
            .member("guest", Ty::Bool)
            .member("reason", Ty::enumeration("ShutdownCause", SHUTDOWN_CAUSE.iter().copied()))
    };
    let job = || {
        Struct::new()
            .member("type", Ty::enumeration("JobType", JOB_TYPE.iter().copied()))
            .member("device", Ty::Str)
            .member("len", Ty::Int)
            .member("offset", Ty::Int)
            .member("speed", Ty::Int)
    };
    vec![
        ("STOP", Struct::new()),
        ("RESUME", Struct::new()),
        ("POWERDOWN", Struct::new()),
        ("RESET", reason()),
        ("SHUTDOWN", reason()),
        ("DEVICE_DELETED", Struct::new().optional("device", Ty::Str).member("path", Ty::Str)),
        (
            "JOB_STATUS_CHANGE",
            Struct::new()
                .member("id", Ty::Str)
                .member("status", Ty::enumeration("JobStatus", JOB_STATUS.iter().copied())),
        ),
        ("BLOCK_JOB_COMPLETED", job().optional("error", Ty::Str)),
        ("BLOCK_JOB_CANCELLED", job()),
        ("BLOCK_JOB_READY", job()),
        (
            "MIGRATION",
            Struct::new().member(
                "status",
                Ty::enumeration("MigrationStatus", super::migration::STATUSES.iter().copied()),
            ),
        ),
        ("MIGRATION_PASS", Struct::new().member("pass", Ty::Int)),
    ]
}
