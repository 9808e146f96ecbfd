//! The guest agent's QAPI (qemu-ga's schema), typed: every command of qemu-ga 7.2 to 9.2 in
//! [`commands`], its types in [`types`], and the [`registry`] of them, from
//! [`qmp_qapi::ga`]; the schema's facts in [`generated::facts`].
//!
//! ```
//! use qmp::ga::commands::GuestPing;
//! use qmp::Command;
//! assert_eq!(GuestPing::NAME, "guest-ping");
//! ```

/// The generated guest-agent API, and its facts as static data.
pub mod generated {
    pub use qmp_qapi::ga::generated::{commands, registry, types};
    pub mod facts;
}

pub use generated::{commands, registry, types};

mod exec;
pub(crate) mod sync;

pub(crate) use exec::{
    finished as exec_finished, next_poll as exec_next_poll, status_request as exec_status_request,
};
pub use exec::{Exec, ExecOutput, ExitStatus};
