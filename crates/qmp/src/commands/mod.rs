//! Typed QMP commands: one type per command, whose value is the command's `arguments` and
//! whose [`Command::Output`](crate::Command::Output) is the decoded `return`.
//!
//! Members and types follow QEMU 7.2's QAPI schema (`qapi/*.json`), checked against what the
//! real binaries answer to `query-qmp-schema`. Argument structs name each member as QAPI does
//! (`#[serde(rename = "job-id")]`) and leave optional members out when they are `None`.
//! Decoding is lenient where a newer QEMU might differ: unknown members of a returned object
//! are ignored, and every QAPI enum has an `Other(String)` case for values this crate does not
//! know.
//!
//! ```no_run
//! use qmp::commands::{BlockStream, QueryJobs, QueryStatus, RunState};
//!
//! # async fn demo(client: qmp::Client) -> Result<(), qmp::Error> {
//! let status = client.execute(QueryStatus).await?;
//! if status.status == RunState::Running {
//!     println!("running");
//! }
//! client.execute(BlockStream::new("top0").job_id("job0").speed(1 << 20)).await?;
//! for job in client.execute(QueryJobs).await? {
//!     println!("{} {} {}/{}", job.id, job.status, job.current_progress, job.total_progress);
//! }
//! # Ok(()) }
//! ```
//!
//! Open-ended commands take JSON where QAPI has a large union: [`BlockdevAdd`] wraps the
//! options object (with helpers for the `file`, `qcow2`, `raw` and `null-co` drivers),
//! [`DeviceAdd`] carries free-form properties, [`Transaction`] takes `{type, data}` actions and
//! [`QueryQmpSchema`] decodes each entry by its `meta-type`, keeping members it does not know.

/// Declares a QAPI enum that keeps unknown values: each known value gets a variant, and any
/// other string decodes as `Other(value)` so a newer QEMU never breaks decoding.
macro_rules! qapi_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::commands::from_wire_str(d, "a QAPI enum value")
            }
        }
    };
}

pub(crate) use qapi_enum;

/// Deserializes a string into `T` through its `From<&str>`, without allocating for the string
/// (serde's `Cow<str>` always allocates). `what` names the expected value in errors.
pub(crate) fn from_wire_str<'de, D, T>(d: D, what: &'static str) -> Result<T, D::Error>
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

/// Implements [`Command`](crate::Command) for a type: its wire name and its output.
macro_rules! command {
    ($ty:ty, $name:literal, $out:ty) => {
        impl crate::Command for $ty {
            const NAME: &'static str = $name;
            type Output = $out;
        }
    };
    ($ty:ty, $name:literal, $out:ty, allow_oob) => {
        impl crate::Command for $ty {
            const NAME: &'static str = $name;
            type Output = $out;
            const ALLOW_OOB: bool = true;
        }
    };
}

/// Declares a command without arguments as a unit struct (it serialises as `null`, so the
/// request carries no `arguments`).
macro_rules! unit_command {
    ($(#[$meta:meta])* $ty:ident, $name:literal, $out:ty $(, $oob:ident)?) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
        pub struct $ty;
        command!($ty, $name, $out $(, $oob)?);
    };
}

/// Builder-style setters for optional members: `fn member(self, value) -> Self` sets
/// `Some(value)`.
macro_rules! setters {
    ($ty:ident { $( $field:ident : $t:ty ),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                pub fn $field(mut self, value: impl Into<$t>) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )*
        }
    };
}

mod block;
mod control;
mod job;
mod migration;
mod misc;
mod qom;
mod run_state;
mod schema;
mod transaction;

pub use block::*;
pub use control::*;
pub use job::*;
pub use migration::*;
pub use misc::*;
pub use qom::*;
pub use run_state::*;
pub use schema::*;
pub use transaction::*;

#[cfg(test)]
mod tests;
