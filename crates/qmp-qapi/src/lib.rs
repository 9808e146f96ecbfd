//! QEMU's QAPI as Rust: every command, event and type of the QEMU Monitor Protocol of QEMU
//! 7.2 to 9.2 (qemu-system and qemu-storage-daemon), and of its guest agent, generated from
//! QEMU's own schema by the workspace's `qapi-gen` from the committed model
//! (`crates/qmp-qapi/model.json`).
//!
//! Most users reach these through the `qmp` crate, which re-exports them as `qmp::commands`,
//! `qmp::events`, `qmp::types` and `qmp::ga`, and sends them. This crate holds only the
//! values and their encoding, with no I/O, so that it builds apart from (and in parallel
//! with) the clients.
//!
//! Decoding is tolerant of version skew: a member some version lacks is an `Option`, a
//! member no version has is kept in the struct's `unknown_members`, an enum value no version
//! has decodes as the enum's `Other(String)`, and a union variant or alternate no version has
//! as its `Other`. Each item's doc says which versions have it.
//!
//! ```
//! use qmp_qapi::commands::BlockStream;
//! use qmp_qapi::Command;
//!
//! let args = BlockStream::new("top0").job_id("job0").speed(1 << 20);
//! assert_eq!(BlockStream::NAME, "block-stream");
//! assert_eq!(
//!     serde_json::to_string(&args).unwrap(),
//!     r#"{"job-id":"job0","device":"top0","speed":1048576}"#
//! );
//! ```

#![warn(missing_docs)]

mod command;
pub mod commands;
pub mod events;
pub mod ga;
pub mod generated;
mod qapi_support;
pub mod reply;
pub mod types;

pub use command::{Command, Empty};
pub use qmp_proto::Event;
pub use reply::{decode_reply, ReplyError};
pub use serde_json;
