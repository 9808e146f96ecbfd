//! Typed QMP commands: one type per command, whose value is the command's `arguments` and
//! whose [`Command::Output`](crate::Command::Output) is the decoded `return`.
//!
//! Every command of QEMU 7.2 to 9.2 is here, generated from QEMU's QAPI schema (see
//! [`crate::generated`]); their argument and return types are in [`crate::types`]. Each item's
//! doc says which of those versions have it. Arguments name each member as QAPI does
//! (`job-id`) and leave optional members out when they are `None`; a command without
//! arguments is a unit struct; `new` takes the required members and every optional member has
//! a setter named after it.
//!
//! Decoding is tolerant of version skew: a member some version lacks is an `Option`, a member
//! no version has is kept in the struct's `unknown_members`, an enum value no version has
//! decodes as the enum's `Other(String)`, and a union variant or alternate no version has as
//! its `Other`. A reply from a QEMU older or newer than this build therefore still decodes.
//!
//! ```no_run
//! use qmp::commands::{BlockStream, QueryJobs, QueryStatus};
//! use qmp::types::RunState;
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
//! Kept by hand beside the generated commands:
//! - [`QueryQmpSchema`] and its [`SchemaInfo`] family: the schema reply is the largest QEMU
//!   sends, so it has its own scanner, and [`crate::Schema`] is built on these types (the
//!   generated `QueryQmpSchema` is shadowed by this one).
//! - Conveniences on the generated types for common cases: [`BlockdevAdd::file`],
//!   [`BlockdevAdd::qcow2`], [`BlockdevAdd::raw`], [`BlockdevAdd::null_co`] (and node
//!   references from a name), [`DeviceAdd::property`] for a device's free-form properties,
//!   [`QmpCapabilities::with_oob`], [`Transaction::completion_mode`] and the
//!   [`TransactionAction`](crate::types::TransactionAction) builders.

pub use qmp_qapi::commands::*;

mod schema;

// Named, so that they shadow the generated `QueryQmpSchema` of the glob above.
pub use schema::{
    QueryQmpSchema, SchemaInfo, SchemaInfoAlternate, SchemaInfoAlternateMember, SchemaInfoArray,
    SchemaInfoBuiltin, SchemaInfoCommand, SchemaInfoEnum, SchemaInfoEnumMember, SchemaInfoEvent,
    SchemaInfoObject, SchemaInfoObjectMember, SchemaInfoObjectVariant, SchemaMeta, SchemaStr,
};

#[cfg(test)]
mod tests;
