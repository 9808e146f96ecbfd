//! Monitor control (`qapi/control.json`): negotiation, version, the command list, quit.

use serde::{Deserialize, Serialize};

use crate::Empty;

qapi_enum! {
    /// A QMP capability a client may enable in `qmp_capabilities` (QAPI `QMPCapability`).
    pub enum QmpCapability {
        /// Out-of-band execution (`exec-oob`).
        Oob = "oob",
    }
}

/// Leaves capabilities negotiation mode and enables the given capabilities
/// (`qmp_capabilities`). A connected [`Client`](crate::Client) normally does this itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QmpCapabilities {
    /// Capabilities to enable; `None` enables none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable: Option<Vec<QmpCapability>>,
}
command!(QmpCapabilities, "qmp_capabilities", Empty);

impl QmpCapabilities {
    /// Negotiation enabling `oob`, which the server must have offered in its greeting.
    pub fn with_oob() -> Self {
        QmpCapabilities { enable: Some(vec![QmpCapability::Oob]) }
    }
}

unit_command! {
    /// Returns the QEMU version (`query-version`); the same value as in the greeting.
    QueryVersion, "query-version", VersionInfo
}

/// The answer of `query-version`: the version triple and the distributor's package string.
pub type VersionInfo = qmp_proto::Version;

unit_command! {
    /// Lists the commands the server supports (`query-commands`).
    QueryCommands, "query-commands", Vec<CommandInfo>
}

/// One entry of `query-commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// The command's name.
    pub name: String,
}

unit_command! {
    /// Requests QEMU to exit immediately (`quit`); the connection closes right after the reply.
    Quit, "quit", Empty
}
