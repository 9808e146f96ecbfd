//! The [`Command`] trait: a typed QMP command, its name, its arguments and its return type.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A typed QMP command. The value itself serialises as the command's `arguments` (a unit
/// struct or a struct with no fields serialises as nothing, so `arguments` is left out).
///
/// Implement it for commands this crate does not cover:
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize)]
/// struct QueryKvm {}
///
/// #[derive(Deserialize)]
/// struct KvmInfo { enabled: bool, present: bool }
///
/// impl qmp_qapi::Command for QueryKvm {
///     const NAME: &'static str = "query-kvm";
///     type Output = KvmInfo;
/// }
/// ```
pub trait Command: Serialize {
    /// The command's name on the wire, such as `query-status`.
    const NAME: &'static str;
    /// What the command returns, decoded from `return`.
    type Output: DeserializeOwned;
    /// True when the command may run out of band (`exec-oob`); QEMU's schema marks such
    /// commands with `allow-oob: true`.
    const ALLOW_OOB: bool = false;

    /// Decodes a whole reply frame to this command (`{"return": ...}` or `{"error": ...}`)
    /// into its output, the server's error becoming [`ReplyError::Qmp`](crate::ReplyError::Qmp).
    /// The default is [`decode_reply`](crate::decode_reply); a command whose return is large
    /// may read it faster, as the `qmp` crate's `QueryQmpSchema` does.
    fn decode_reply(frame: &[u8]) -> Result<Self::Output, crate::ReplyError> {
        crate::decode_reply(Self::NAME, frame)
    }
}

/// The return of commands that return nothing (`{}`); accepts any JSON value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Empty;

impl<'de> serde::Deserialize<'de> for Empty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Empty)
    }
}
