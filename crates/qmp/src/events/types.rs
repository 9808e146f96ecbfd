//! Enums and structs the events share: causes, actions, VNC and SPICE endpoints.

use serde::{Deserialize, Serialize};

use crate::commands::qapi_enum;

qapi_enum! {
    /// Why the VM shut down or reset (QAPI `ShutdownCause`).
    pub enum ShutdownCause {
        /// No shutdown request pending.
        None = "none",
        /// An error stopped QEMU.
        HostError = "host-error",
        /// `quit`.
        HostQmpQuit = "host-qmp-quit",
        /// `system_reset`.
        HostQmpSystemReset = "host-qmp-system-reset",
        /// A signal, such as SIGTERM.
        HostSignal = "host-signal",
        /// The UI (a window closed).
        HostUi = "host-ui",
        /// The guest shut down.
        GuestShutdown = "guest-shutdown",
        /// The guest reset.
        GuestReset = "guest-reset",
        /// The guest panicked.
        GuestPanic = "guest-panic",
        /// A subsystem reset, such as a device's.
        SubsystemReset = "subsystem-reset",
        /// A snapshot was loaded.
        SnapshotLoad = "snapshot-load",
    }
}

qapi_enum! {
    /// What QEMU does when the watchdog expires (QAPI `WatchdogAction`).
    pub enum WatchdogAction {
        /// Reset the VM.
        Reset = "reset",
        /// Shut it down gracefully.
        Shutdown = "shutdown",
        /// Power it off.
        Poweroff = "poweroff",
        /// Pause it.
        Pause = "pause",
        /// Print a debug message and carry on.
        Debug = "debug",
        /// Do nothing.
        None = "none",
        /// Inject an NMI.
        InjectNmi = "inject-nmi",
    }
}

qapi_enum! {
    /// The kind of I/O that failed (QAPI `IoOperationType`).
    pub enum IoOperationType {
        /// A read.
        Read = "read",
        /// A write.
        Write = "write",
    }
}

qapi_enum! {
    /// What is done about an I/O error (QAPI `BlockErrorAction`).
    pub enum BlockErrorAction {
        /// Ignored.
        Ignore = "ignore",
        /// Reported to the guest or job.
        Report = "report",
        /// The VM or job is stopped.
        Stop = "stop",
    }
}

qapi_enum! {
    /// A network address's family (QAPI `NetworkAddressFamily`).
    pub enum NetworkAddressFamily {
        /// IPv4.
        Ipv4 = "ipv4",
        /// IPv6.
        Ipv6 = "ipv6",
        /// A Unix socket.
        Unix = "unix",
        /// VSOCK.
        Vsock = "vsock",
        /// Something else.
        Unknown = "unknown",
    }
}

/// A VNC endpoint (QAPI `VncBasicInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncBasicInfo {
    /// The host address (or Unix socket path).
    pub host: String,
    /// The port (empty for Unix sockets).
    pub service: String,
    /// The address family.
    pub family: NetworkAddressFamily,
    /// True for a WebSocket connection.
    pub websocket: bool,
}

/// The VNC server's side (QAPI `VncServerInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncServerInfo {
    /// The listening endpoint.
    #[serde(flatten)]
    pub base: VncBasicInfo,
    /// The authentication method, such as `none` or `vnc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// A VNC client after authentication (QAPI `VncClientInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncClientInfo {
    /// The client's endpoint.
    #[serde(flatten)]
    pub base: VncBasicInfo,
    /// The client's x509 distinguished name, with TLS client certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_dname: Option<String>,
    /// The SASL user name, with SASL authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_username: Option<String>,
}

/// A SPICE endpoint (QAPI `SpiceBasicInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceBasicInfo {
    /// The host address.
    pub host: String,
    /// The port.
    pub port: String,
    /// The address family.
    pub family: NetworkAddressFamily,
}

/// The SPICE server's side (QAPI `SpiceServerInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceServerInfo {
    /// The listening endpoint.
    #[serde(flatten)]
    pub base: SpiceBasicInfo,
    /// The authentication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// A SPICE channel of a client (QAPI `SpiceChannel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiceChannel {
    /// The client's endpoint.
    #[serde(flatten)]
    pub base: SpiceBasicInfo,
    /// The SPICE connection id, shared by a client's channels.
    #[serde(rename = "connection-id")]
    pub connection_id: i64,
    /// The channel type (SPICE protocol numbering).
    #[serde(rename = "channel-type")]
    pub channel_type: i64,
    /// The channel id.
    #[serde(rename = "channel-id")]
    pub channel_id: i64,
    /// True when the channel is encrypted.
    pub tls: bool,
}
