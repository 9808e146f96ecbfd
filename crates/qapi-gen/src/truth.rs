//! Which `if` conditions a build of QEMU has: the one truth table of the repository, for
//! Debian's QEMU 7.2 on x86_64 Linux. The live test (`tests/live_qemu.rs`) checks it against
//! that build's own `query-qmp-schema` on every run, and the emitter writes it, expanded to
//! every symbol of the schema's conditions, into the generated facts
//! (`qmp::generated::facts::DEBIAN_X86_64`), where the simulator evaluates the 7.2 slice
//! with it.

use crate::model::Cond;

/// A build: the config symbols it sets or not. A `TARGET_*` symbol not listed is another
/// binary's and false; any other symbol not listed is unknown.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    /// A name for reports (`debian-x86_64`).
    pub name: &'static str,
    /// The symbols the schema's conditions use, and whether the build has them.
    pub symbols: &'static [(&'static str, bool)],
    /// Whether the binary has a target at all (`qemu-storage-daemon` has none: every
    /// `TARGET_*` is false there, listed or not).
    pub has_target: bool,
}

/// The config symbols of the `if` conditions that QEMU 7.2's schema puts on what
/// `qemu-system-x86_64` can reach, and whether Debian's build (Linux host, x86_64 target)
/// has them: read off QEMU's own introspection, and checked by it on every run of the live
/// test (a wrong entry is a difference nothing explains). `TARGET_*` other than
/// `TARGET_I386` are other binaries' and false.
pub const DEBIAN_X86_64: Build = Build {
    name: "debian-x86_64",
    symbols: &[
        ("CONFIG_BLKIO", false),
        ("CONFIG_COCOA", false),
        ("CONFIG_CURSES", true),
        ("CONFIG_DBUS_DISPLAY", true),
        ("CONFIG_FDT", true),
        ("CONFIG_FUSE", true),
        ("CONFIG_GBM", true),
        ("CONFIG_GTK", true),
        ("CONFIG_LIBPMEM", true),
        ("CONFIG_LINUX", true),
        ("CONFIG_LINUX_IO_URING", true),
        ("CONFIG_OPENGL", true),
        ("CONFIG_POSIX", true),
        ("CONFIG_REPLICATION", true),
        ("CONFIG_SDL", true),
        ("CONFIG_SECRET_KEYRING", true),
        ("CONFIG_SPICE", true),
        ("CONFIG_SPICE_PROTOCOL", true),
        ("CONFIG_TPM", true),
        ("CONFIG_TCG", true),
        ("CONFIG_VDUSE_BLK_EXPORT", true),
        ("CONFIG_VHOST_CRYPTO", true),
        ("CONFIG_VHOST_USER_BLK_SERVER", true),
        ("CONFIG_VMNET", false),
        ("CONFIG_VNC", true),
        ("CONFIG_ZSTD", true),
        ("HAVE_HOST_BLOCK_DEVICE", true),
        ("HAVE_IPPROTO_MPTCP", true),
        ("TARGET_I386", true),
    ],
    has_target: true,
};

/// The commands Debian's `qemu-storage-daemon` 7.2 offers, by name: its schema takes only some
/// of QEMU's QAPI modules, which the schema sources here do not record, so the names are read
/// off its own `query-qmp-schema`, and the live test checks them against it on every run.
pub const STORAGE_DAEMON_COMMANDS: &[&str] = &[
    "block-commit",
    "block-dirty-bitmap-add",
    "block-dirty-bitmap-clear",
    "block-dirty-bitmap-disable",
    "block-dirty-bitmap-enable",
    "block-dirty-bitmap-merge",
    "block-dirty-bitmap-remove",
    "block-export-add",
    "block-export-del",
    "block-job-cancel",
    "block-job-complete",
    "block-job-dismiss",
    "block-job-finalize",
    "block-job-pause",
    "block-job-resume",
    "block-job-set-speed",
    "block-set-write-threshold",
    "block-stream",
    "block_resize",
    "blockdev-add",
    "blockdev-backup",
    "blockdev-create",
    "blockdev-del",
    "blockdev-mirror",
    "blockdev-reopen",
    "blockdev-snapshot",
    "blockdev-snapshot-delete-internal-sync",
    "blockdev-snapshot-internal-sync",
    "blockdev-snapshot-sync",
    "change-backing-file",
    "chardev-add",
    "chardev-change",
    "chardev-remove",
    "chardev-send-break",
    "drive-backup",
    "drive-mirror",
    "job-cancel",
    "job-complete",
    "job-dismiss",
    "job-finalize",
    "job-pause",
    "job-resume",
    "nbd-server-add",
    "nbd-server-remove",
    "nbd-server-start",
    "nbd-server-stop",
    "object-add",
    "object-del",
    "qmp_capabilities",
    "qom-get",
    "qom-list",
    "qom-list-properties",
    "qom-list-types",
    "qom-set",
    "query-block",
    "query-block-exports",
    "query-block-jobs",
    "query-blockstats",
    "query-chardev",
    "query-chardev-backends",
    "query-commands",
    "query-jobs",
    "query-named-block-nodes",
    "query-qmp-schema",
    "query-version",
    "quit",
    "ringbuf-read",
    "ringbuf-write",
    "transaction",
    "x-blockdev-amend",
    "x-blockdev-change",
    "x-blockdev-set-iothread",
    "x-debug-block-dirty-bitmap-sha256",
    "x-debug-query-block-graph",
];

/// The events Debian's `qemu-storage-daemon` 7.2 declares, by name (as [`STORAGE_DAEMON_COMMANDS`]).
pub const STORAGE_DAEMON_EVENTS: &[&str] = &[
    "BLOCK_EXPORT_DELETED",
    "BLOCK_IMAGE_CORRUPTED",
    "BLOCK_IO_ERROR",
    "BLOCK_JOB_CANCELLED",
    "BLOCK_JOB_COMPLETED",
    "BLOCK_JOB_ERROR",
    "BLOCK_JOB_PENDING",
    "BLOCK_JOB_READY",
    "BLOCK_WRITE_THRESHOLD",
    "JOB_STATUS_CHANGE",
    "QUORUM_FAILURE",
    "QUORUM_REPORT_BAD",
    "VSERPORT_CHANGE",
];

impl Build {
    /// Whether the build has `symbol`; `None` when the table does not say.
    pub fn symbol(&self, symbol: &str) -> Option<bool> {
        let target = symbol.starts_with("TARGET_");
        if target && !self.has_target {
            return Some(false);
        }
        match self.symbols.iter().find(|(s, _)| *s == symbol) {
            Some((_, v)) => Some(*v),
            None => target.then_some(false),
        }
    }

    /// The same host with no target (`qemu-storage-daemon`): every `TARGET_*` false.
    pub fn without_targets(&self) -> Build {
        Build { has_target: false, ..*self }
    }

    /// Evaluates `cond`; an unknown symbol is an error naming it. Conditions nest at most as
    /// deeply as the reader allows (64), so the recursion is bounded.
    pub fn eval(&self, cond: &Cond) -> Result<bool, String> {
        Ok(match cond {
            Cond::Name(n) => self.symbol(n).ok_or_else(|| n.clone())?,
            Cond::All(v) => {
                let mut all = true;
                for c in v {
                    all &= self.eval(c)?;
                }
                all
            }
            Cond::Any(v) => {
                let mut any = false;
                for c in v {
                    any |= self.eval(c)?;
                }
                any
            }
            Cond::Not(c) => !self.eval(c)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_symbols_then_other_targets() {
        let b = DEBIAN_X86_64;
        assert_eq!(b.symbol("CONFIG_LINUX"), Some(true));
        assert_eq!(b.symbol("TARGET_I386"), Some(true));
        assert_eq!(b.symbol("TARGET_S390X"), Some(false));
        assert_eq!(b.symbol("CONFIG_NOPE"), None);
        let sd = b.without_targets();
        assert_eq!(sd.symbol("TARGET_I386"), Some(false));
        assert_eq!(sd.symbol("CONFIG_LINUX"), Some(true));
        let c = Cond::All(vec![
            Cond::Name("CONFIG_LINUX".into()),
            Cond::Not(Box::new(Cond::Name("TARGET_ARM".into()))),
        ]);
        assert_eq!(b.eval(&c), Ok(true));
        assert_eq!(b.eval(&Cond::Any(vec![Cond::Name("X".into())])), Err("X".into()));
    }
}
