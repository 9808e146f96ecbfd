//! VM run state (`qapi/run-state.json`, `qapi/misc.json`): status, name, stop/cont, reset,
//! power-down.

use serde::{Deserialize, Serialize};

use crate::Empty;

qapi_enum! {
    /// The VM's run state (QAPI `RunState`).
    pub enum RunState {
        /// QEMU is running on a debugger.
        Debug = "debug",
        /// Waiting for an incoming migration.
        Inmigrate = "inmigrate",
        /// An internal error stopped the guest; a reset is needed.
        InternalError = "internal-error",
        /// An I/O error paused the guest.
        IoError = "io-error",
        /// Paused by request (`stop`).
        Paused = "paused",
        /// Paused after an outgoing migration finished.
        Postmigrate = "postmigrate",
        /// Not started yet (`-S`).
        Prelaunch = "prelaunch",
        /// Paused to finish a migration.
        FinishMigrate = "finish-migrate",
        /// Paused while restoring a snapshot.
        RestoreVm = "restore-vm",
        /// Running.
        Running = "running",
        /// Paused while saving a snapshot.
        SaveVm = "save-vm",
        /// Shut down (with `-no-shutdown`).
        Shutdown = "shutdown",
        /// Suspended (ACPI S3).
        Suspended = "suspended",
        /// Paused by the watchdog.
        Watchdog = "watchdog",
        /// The guest panicked.
        GuestPanicked = "guest-panicked",
        /// In COLO fault-tolerance mode.
        Colo = "colo",
    }
}

unit_command! {
    /// Returns the VM's run status (`query-status`).
    QueryStatus, "query-status", StatusInfo
}

/// The answer of `query-status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// True when the guest's CPUs are running.
    pub running: bool,
    /// True when QEMU runs in single-step mode. Deprecated after 7.2 and later removed, so
    /// it reads as `false` when a newer QEMU leaves it out.
    #[serde(default)]
    pub singlestep: bool,
    /// The detailed run state.
    pub status: RunState,
}

unit_command! {
    /// Returns the guest's name, as given with `-name` (`query-name`).
    QueryName, "query-name", NameInfo
}

/// The answer of `query-name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameInfo {
    /// The name; absent when none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

unit_command! {
    /// Stops all guest CPUs (`stop`); a `STOP` event precedes the reply.
    Stop, "stop", Empty
}

unit_command! {
    /// Resumes guest execution (`cont`); a `RESUME` event follows.
    Cont, "cont", Empty
}

unit_command! {
    /// Performs a hard reset of the VM (`system_reset`).
    SystemReset, "system_reset", Empty
}

unit_command! {
    /// Requests a graceful power-down of the guest, as by pressing the power button
    /// (`system_powerdown`); the guest may ignore it.
    SystemPowerdown, "system_powerdown", Empty
}
