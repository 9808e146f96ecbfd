//! The QAPI reader and code generator of the qmp toolkit (not published).
//!
//! It reads QEMU's QAPI schema sources (the JSON-like language of `qapi/*.json`: single
//! quotes, `#` comments, `include`, `if`, `features`, structs, unions, alternates, commands,
//! events) for several QEMU versions, merges them into one [`model::Model`] where every item
//! carries the versions it exists in, and generates the typed Rust of the `qmp` crates from
//! that model. The repository commits the model and the generated Rust, never QEMU's sources
//! or their documentation text.
#![warn(missing_docs)]

pub mod build;
pub mod emit;
pub mod merge;
pub mod model;
pub mod parse;
pub mod read;
pub mod truth;

pub use parse::Error;
