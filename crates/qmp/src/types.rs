//! The types of QEMU's QAPI schema, 7.2 to 9.2: the structs, enums, unions and alternates that
//! commands take and return and events carry, generated (see [`crate::generated`]). Each
//! item's doc says which of those versions have it; decoding is tolerant of version skew (see
//! [`crate::commands`]).

pub use qmp_qapi::types::*;
