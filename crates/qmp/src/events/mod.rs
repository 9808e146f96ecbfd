//! Typed QMP events: a data type per event, [`QemuEvent`] to decode any event at once, and
//! [`EventExt::parse`] to decode one kind.
//!
//! Members follow QEMU 7.2's QAPI schema; members QAPI marks optional are `Option`. Covered:
//! the events of QEMU's original `qmp-events.txt` (run state, devices, block jobs, balloon,
//! VNC, SPICE) plus `JOB_STATUS_CHANGE`.
//!
//! ```
//! use qmp::events::{EventExt, QemuEvent, JobStatusChange};
//! use qmp::commands::JobStatus;
//! use qmp::proto::Message;
//!
//! let line = br#"{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "JOB_STATUS_CHANGE", "data": {"status": "running", "id": "job0"}}"#;
//! let Ok(Message::Event(event)) = Message::from_slice(line) else { panic!("an event") };
//!
//! // Every event at once:
//! match QemuEvent::from_event(&event) {
//!     QemuEvent::JobStatusChange(change) => assert_eq!(change.status, JobStatus::Running),
//!     other => panic!("unexpected {other:?}"),
//! }
//! // Or one kind (None when the name differs):
//! let change: JobStatusChange = event.parse().expect("named JOB_STATUS_CHANGE").expect("valid data");
//! assert_eq!(change.id, "job0");
//! ```
//!
//! Decoding never fails as a whole: [`QemuEvent::from_event`] turns an unknown name, and a
//! known name whose data does not fit its type (a missing or mistyped member), into
//! [`QemuEvent::Other`]. Unknown members are ignored, and unknown enum values decode as the
//! enum's `Other(String)`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commands::{JobStatus, JobType};
use crate::proto::Event;

mod types;

pub use types::*;

/// An event's data type: decodable from the event's `data`, and tied to the event's name.
pub trait EventData: DeserializeOwned {
    /// The event's name on the wire, such as `BLOCK_JOB_COMPLETED`.
    const NAME: &'static str;
}

/// Decoding of an [`Event`] into a typed [`EventData`].
pub trait EventExt {
    /// The data decoded as `T`: `None` when the event is not `T::NAME`, `Some(Err)` when
    /// its data does not fit `T`.
    fn parse<T: EventData>(&self) -> Option<Result<T, serde_json::Error>>;
}

impl EventExt for Event {
    fn parse<T: EventData>(&self) -> Option<Result<T, serde_json::Error>> {
        (self.name == T::NAME).then(|| self.data_as::<T>())
    }
}

/// Declares [`QemuEvent`] and its decoding from one table of `Variant(Type) = "NAME"`.
macro_rules! qemu_events {
    ($( $(#[$meta:meta])* $variant:ident = $name:literal, )*) => {
        /// Any QMP event, decoded by name; see [`QemuEvent::from_event`].
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum QemuEvent {
            $( $(#[$meta])* $variant($variant), )*
            /// An event this crate does not know, or whose data did not decode into its type.
            Other {
                /// The event's name.
                name: String,
                /// Its data (`Null` when it had none).
                data: Value,
            },
        }

        $( impl EventData for $variant { const NAME: &'static str = $name; } )*

        impl QemuEvent {
            /// Decodes `event`; never fails. An unknown name gives [`QemuEvent::Other`], and
            /// so does a known name whose data does not decode into its type (for example a
            /// member of the wrong type, or a required member that is missing), keeping the
            /// data for inspection. Unknown members are ignored.
            pub fn from_event(event: &Event) -> QemuEvent {
                let decoded = match event.name.as_str() {
                    $( $name => event.data_as::<$variant>().map(QemuEvent::$variant).ok(), )*
                    _ => None,
                };
                decoded.unwrap_or_else(|| QemuEvent::Other {
                    name: event.name.clone(),
                    data: event.data_value(),
                })
            }

            /// The event's name on the wire.
            pub fn name(&self) -> &str {
                match self {
                    $( QemuEvent::$variant(_) => $name, )*
                    QemuEvent::Other { name, .. } => name,
                }
            }
        }
    };
}

qemu_events! {
    /// `SHUTDOWN`.
    Shutdown = "SHUTDOWN",
    /// `POWERDOWN`.
    Powerdown = "POWERDOWN",
    /// `RESET`.
    Reset = "RESET",
    /// `STOP`.
    Stop = "STOP",
    /// `RESUME`.
    Resume = "RESUME",
    /// `SUSPEND`.
    Suspend = "SUSPEND",
    /// `SUSPEND_DISK`.
    SuspendDisk = "SUSPEND_DISK",
    /// `WAKEUP`.
    Wakeup = "WAKEUP",
    /// `RTC_CHANGE`.
    RtcChange = "RTC_CHANGE",
    /// `WATCHDOG`.
    Watchdog = "WATCHDOG",
    /// `DEVICE_DELETED`.
    DeviceDeleted = "DEVICE_DELETED",
    /// `DEVICE_TRAY_MOVED`.
    DeviceTrayMoved = "DEVICE_TRAY_MOVED",
    /// `BLOCK_IO_ERROR`.
    BlockIoError = "BLOCK_IO_ERROR",
    /// `BLOCK_JOB_COMPLETED`.
    BlockJobCompleted = "BLOCK_JOB_COMPLETED",
    /// `BLOCK_JOB_CANCELLED`.
    BlockJobCancelled = "BLOCK_JOB_CANCELLED",
    /// `BLOCK_JOB_ERROR`.
    BlockJobError = "BLOCK_JOB_ERROR",
    /// `BLOCK_JOB_READY`.
    BlockJobReady = "BLOCK_JOB_READY",
    /// `BALLOON_CHANGE`.
    BalloonChange = "BALLOON_CHANGE",
    /// `VNC_CONNECTED`.
    VncConnected = "VNC_CONNECTED",
    /// `VNC_INITIALIZED`.
    VncInitialized = "VNC_INITIALIZED",
    /// `VNC_DISCONNECTED`.
    VncDisconnected = "VNC_DISCONNECTED",
    /// `SPICE_CONNECTED`.
    SpiceConnected = "SPICE_CONNECTED",
    /// `SPICE_INITIALIZED`.
    SpiceInitialized = "SPICE_INITIALIZED",
    /// `SPICE_DISCONNECTED`.
    SpiceDisconnected = "SPICE_DISCONNECTED",
    /// `SPICE_MIGRATE_COMPLETED`.
    SpiceMigrateCompleted = "SPICE_MIGRATE_COMPLETED",
    /// `JOB_STATUS_CHANGE`.
    JobStatusChange = "JOB_STATUS_CHANGE",
}

/// Emitted when QEMU is about to exit after the VM shut down (`SHUTDOWN`); with
/// `-no-shutdown` a `STOP` follows instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shutdown {
    /// True when the guest asked for it, false when the host did.
    pub guest: bool,
    /// What caused it.
    pub reason: ShutdownCause,
}

/// Emitted when the VM is powered down through the power control system, such as ACPI
/// (`POWERDOWN`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Powerdown {}

/// Emitted when the VM is reset (`RESET`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reset {
    /// True when the guest asked for it, false when the host did.
    pub guest: bool,
    /// What caused it.
    pub reason: ShutdownCause,
}

/// Emitted when the VM is stopped (`STOP`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {}

/// Emitted when the VM resumes execution (`RESUME`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {}

/// Emitted when the guest enters a suspended state, ACPI S3 (`SUSPEND`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspend {}

/// Emitted when the guest suspends to disk, ACPI S4; QEMU exits next (`SUSPEND_DISK`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspendDisk {}

/// Emitted when the guest wakes up from suspend (`WAKEUP`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wakeup {}

/// Emitted when the guest changes its real-time clock (`RTC_CHANGE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcChange {
    /// Offset in seconds between the base time and the new RTC time.
    pub offset: i64,
    /// The QOM path of the RTC device (QEMU 7.2 and later).
    #[serde(rename = "qom-path")]
    pub qom_path: String,
}

/// Emitted when the watchdog device's timer expires (`WATCHDOG`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watchdog {
    /// What QEMU does about it.
    pub action: WatchdogAction,
}

/// Emitted when a device has been removed, after the guest acknowledged `device_del`
/// (`DEVICE_DELETED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDeleted {
    /// The device's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The device's QOM path.
    pub path: String,
}

/// Emitted when a removable device's tray opens or closes (`DEVICE_TRAY_MOVED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTrayMoved {
    /// The block device's name (empty for `-blockdev` setups).
    pub device: String,
    /// The guest device's qdev id or QOM path.
    pub id: String,
    /// True when the tray is now open.
    #[serde(rename = "tray-open")]
    pub tray_open: bool,
}

/// Emitted when a device's I/O fails (`BLOCK_IO_ERROR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIoError {
    /// The device's name (empty for `-blockdev` setups).
    pub device: String,
    /// The node's name, if it has one.
    #[serde(rename = "node-name", default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The failed operation.
    pub operation: IoOperationType,
    /// What QEMU does about it.
    pub action: BlockErrorAction,
    /// True when the error was "no space left".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nospace: Option<bool>,
    /// The error's text (`strerror`), for humans only.
    pub reason: String,
}

/// Emitted when a block job finishes, successfully or not (`BLOCK_JOB_COMPLETED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockJobCompleted {
    /// The job's kind.
    #[serde(rename = "type")]
    pub kind: JobType,
    /// The job's id.
    pub device: String,
    /// The work's total, bytes.
    pub len: i64,
    /// Progress when it ended, bytes.
    pub offset: i64,
    /// Its rate limit, bytes per second.
    pub speed: i64,
    /// Why it failed; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Emitted when a block job is cancelled (`BLOCK_JOB_CANCELLED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockJobCancelled {
    /// The job's kind.
    #[serde(rename = "type")]
    pub kind: JobType,
    /// The job's id.
    pub device: String,
    /// The work's total, bytes.
    pub len: i64,
    /// Progress when cancelled, bytes.
    pub offset: i64,
    /// Its rate limit, bytes per second.
    pub speed: i64,
}

/// Emitted when a block job hits an I/O error (`BLOCK_JOB_ERROR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockJobError {
    /// The job's id.
    pub device: String,
    /// The failed operation.
    pub operation: IoOperationType,
    /// What the job does about it.
    pub action: BlockErrorAction,
}

/// Emitted when a block job is ready to complete, such as a mirror in sync
/// (`BLOCK_JOB_READY`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockJobReady {
    /// The job's kind.
    #[serde(rename = "type")]
    pub kind: JobType,
    /// The job's id.
    pub device: String,
    /// The work's total, bytes.
    pub len: i64,
    /// Progress, bytes.
    pub offset: i64,
    /// Its rate limit, bytes per second.
    pub speed: i64,
}

/// Emitted when the guest's memory balloon changes size (`BALLOON_CHANGE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalloonChange {
    /// The guest's memory now, in bytes.
    pub actual: i64,
}

/// Emitted when a VNC client connects, before authentication (`VNC_CONNECTED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncConnected {
    /// The server.
    pub server: VncServerInfo,
    /// The client (not authenticated yet, so no identity).
    pub client: VncBasicInfo,
}

/// Emitted when a VNC client has authenticated and the session starts
/// (`VNC_INITIALIZED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncInitialized {
    /// The server.
    pub server: VncServerInfo,
    /// The client.
    pub client: VncClientInfo,
}

/// Emitted when a VNC client disconnects (`VNC_DISCONNECTED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncDisconnected {
    /// The server.
    pub server: VncServerInfo,
    /// The client.
    pub client: VncClientInfo,
}

/// Emitted when a SPICE client connects (`SPICE_CONNECTED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceConnected {
    /// The server.
    pub server: SpiceBasicInfo,
    /// The client.
    pub client: SpiceBasicInfo,
}

/// Emitted when a SPICE client's channel is set up (`SPICE_INITIALIZED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceInitialized {
    /// The server.
    pub server: SpiceServerInfo,
    /// The client's channel.
    pub client: SpiceChannel,
}

/// Emitted when a SPICE client disconnects (`SPICE_DISCONNECTED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceDisconnected {
    /// The server.
    pub server: SpiceBasicInfo,
    /// The client.
    pub client: SpiceBasicInfo,
}

/// Emitted when SPICE migration has completed (`SPICE_MIGRATE_COMPLETED`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceMigrateCompleted {}

/// Emitted when a job changes state (`JOB_STATUS_CHANGE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatusChange {
    /// The job's id.
    pub id: String,
    /// Its new state.
    pub status: JobStatus,
}

#[cfg(test)]
mod tests;
