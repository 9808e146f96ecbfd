//! The guest agent (qemu-ga): the client ([`Agent`]; [`crate::blocking::Agent`] without
//! async), and its QAPI typed: every command of qemu-ga 7.2 to 9.2 in [`commands`], its types
//! in [`types`], and the [`registry`] of them, from [`qmp_qapi::ga`]; the schema's facts in
//! [`generated::facts`]. Helpers where the raw commands are painful: [`Agent::exec`] (a
//! program run to its end, its output decoded), [`Agent::download`] and [`Agent::upload`]
//! (files of any size, in chunks), [`Agent::info`].
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

mod agent;
pub(crate) mod exec;
pub mod file;
mod info;
pub mod policy;
pub(crate) mod sync;

pub use agent::Agent;
pub use exec::{Exec, ExecOutput, ExitStatus};
pub use file::Progress;
pub use info::{AgentInfo, CommandState};
pub use policy::gives_no_reply;
