//! Typed QMP events: a data type per event, [`QemuEvent`] to decode any event at once, and
//! [`EventExt::parse`] to decode one kind; from [`qmp_qapi::events`].
//!
//! ```
//! use qmp::events::{EventExt, QemuEvent, JobStatusChange};
//! use qmp::proto::Message;
//!
//! let line = br#"{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "JOB_STATUS_CHANGE", "data": {"status": "running", "id": "job0"}}"#;
//! let Ok(Message::Event(event)) = Message::from_slice(line) else { panic!("an event") };
//! assert!(matches!(QemuEvent::from_event(&event), QemuEvent::JobStatusChange(_)));
//! let change: JobStatusChange = event.parse().expect("named JOB_STATUS_CHANGE").expect("valid data");
//! assert_eq!(change.id, "job0");
//! ```

pub use qmp_qapi::events::*;

#[cfg(test)]
mod tests;
