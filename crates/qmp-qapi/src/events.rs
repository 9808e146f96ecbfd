//! Typed QMP events: a data type per event, [`QemuEvent`] to decode any event at once, and
//! [`EventExt::parse`] to decode one kind.
//!
//! Every event of QEMU 7.2 to 9.2 is here, generated from QEMU's QAPI schema (see
//! [`crate::generated`]); the types their members use are in [`crate::types`], and each
//! item's doc says which of those versions have it. [`EventData`] and [`EventExt`] are written
//! by hand.
//!
//! ```
//! use qmp_qapi::events::{EventExt, QemuEvent, JobStatusChange};
//! use qmp_qapi::types::JobStatus;
//! use qmp_proto::Message;
//!
//! let line = br#"{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "JOB_STATUS_CHANGE", "data": {"status": "running", "id": "job0"}}"#;
//! let Ok(Message::Event(event)) = Message::from_slice(line) else { panic!("an event") };
//!
//! // Every event at once:
//! match QemuEvent::from_event(&event) {
//!     QemuEvent::JobStatusChange(change) => assert_eq!(change.status, JobStatus::Running),
//!     other => panic!("unexpected {other:?}"),
//! }
//! // Or one kind (None when the name differs):
//! let change: JobStatusChange = event.parse().expect("named JOB_STATUS_CHANGE").expect("valid data");
//! assert_eq!(change.id, "job0");
//! ```
//!
//! Decoding is tolerant of version skew and never fails as a whole: a member some version
//! lacks is an `Option` (so an older QEMU's event still decodes as its typed variant), a
//! member no version has is kept in the data's `unknown_members`, and an enum value no
//! version has decodes as the enum's `Other(String)`. [`QemuEvent::from_event`] turns an
//! unknown name, and a known name whose data does not fit its type (a missing required or a
//! mistyped member), into [`QemuEvent::Other`] with the data kept.

use serde::de::DeserializeOwned;

use crate::Event;

pub use crate::generated::events::*;

/// An event's data type: decodable from the event's `data`, and tied to the event's name.
pub trait EventData: DeserializeOwned {
    /// The event's name on the wire, such as `BLOCK_JOB_COMPLETED`.
    const NAME: &'static str;
}

/// Decoding of an [`Event`] into a typed [`EventData`].
pub trait EventExt {
    /// The data decoded as `T`: `None` when the event is not `T::NAME`, `Some(Err)` when
    /// its data does not fit `T`.
    fn parse<T: EventData>(&self) -> Option<Result<T, serde_json::Error>>;
}

impl EventExt for Event {
    fn parse<T: EventData>(&self) -> Option<Result<T, serde_json::Error>> {
        (self.name == T::NAME).then(|| self.data_as::<T>())
    }
}
