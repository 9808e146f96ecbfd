//! The guest agent's QAPI (qemu-ga's schema), typed: every command of qemu-ga 7.2 to 9.2 in
//! [`commands`], its types in [`types`], and the [`registry`] of them, generated from the
//! committed model like the monitor's API.
//!
//! ```
//! use qmp_qapi::ga::commands::GuestPing;
//! use qmp_qapi::Command;
//! assert_eq!(GuestPing::NAME, "guest-ping");
//! ```

pub mod generated;

pub use generated::{commands, registry, types};
