//! Async client for the QEMU Monitor Protocol (placeholder while the client lands).
#![warn(missing_docs)]

mod command;
pub mod commands;
pub mod events;

pub use command::{Command, Empty};
