//! Typed QMP commands: one type per command, whose value is the command's `arguments` and
//! whose [`Command::Output`](crate::Command::Output) is the decoded `return`.
//!
//! Every command of QEMU 7.2 to 9.2 is here, generated (see [`crate::generated`]); their
//! argument and return types are in [`crate::types`]. Arguments name each member as QAPI does
//! (`job-id`) and leave optional members out when they are `None`; a command without
//! arguments is a unit struct; `new` takes the required members and every optional member
//! has a setter named after it.
//!
//! Kept by hand beside the generated commands, conveniences for common cases:
//! [`BlockdevAdd::file`], [`BlockdevAdd::qcow2`], [`BlockdevAdd::raw`],
//! [`BlockdevAdd::null_co`] (and node references from a name), [`DeviceAdd::property`] for a
//! device's free-form properties, [`QmpCapabilities::with_oob`],
//! [`Transaction::completion_mode`] and the
//! [`TransactionAction`](crate::types::TransactionAction) builders.

/// Deserializes a string into `T` through its `From<&str>`, without allocating for the string
/// (serde's `Cow<str>` always allocates). `what` names the expected value in errors.
///
/// ```
/// use qmp_qapi::types::RunState;
/// let mut de = serde_json::Deserializer::from_str(r#""paused""#);
/// let state: RunState = qmp_qapi::commands::from_wire_str(&mut de, "a run state").unwrap();
/// assert_eq!(state, RunState::Paused);
/// ```
pub fn from_wire_str<'de, D, T>(d: D, what: &'static str) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: for<'a> From<&'a str>,
{
    struct Wire<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: for<'a> From<&'a str>> serde::de::Visitor<'_> for Wire<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            Ok(T::from(v))
        }
    }
    d.deserialize_str(Wire(what, std::marker::PhantomData))
}

pub use crate::generated::commands::*;

mod extras;
