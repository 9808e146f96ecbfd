//! The QEMU Monitor Protocol's wire layer: the message model and a streaming framer and
//! encoder, with no I/O and no async runtime, shared by the `qmp` client and `qmp-server`.
//!
//! ```
//! use qmp_proto::{Framer, Message};
//!
//! let mut framer = Framer::new();
//! // QEMU's greeting and a reply, arriving in one read with CRLF line ends.
//! framer.extend(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \
//!                \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n{\"return\": {}}\r\n");
//! let mut messages = Vec::new();
//! while let Some(frame) = framer.next_frame().unwrap() {
//!     messages.push(Message::from_slice(frame.bytes).unwrap());
//! }
//! assert!(matches!(&messages[0], Message::Greeting(g) if g.offers_oob()));
//! assert!(matches!(&messages[1], Message::Response(r) if r.result.is_ok()));
//! ```
//!
//! # Behaviour
//! - The framer cuts values whether or not a newline ends them; see [`Framer`].
//! - A value over the size cap (16 MiB by default) or the depth cap is reported once as a
//!   [`FrameError`] and skipped; memory stays bounded.
//! - Decoding keeps unknown members in `extra` and unknown messages as
//!   [`Message::Unknown`]: a newer server never breaks an older client.
#![warn(missing_docs)]

pub mod client;
mod encode;
mod framer;
mod message;
mod qemu_event;

pub use encode::{
    encode_error, encode_event, encode_greeting, encode_request, encode_return, standardize_quotes,
};
pub use framer::{Frame, FrameError, Framer, DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_SIZE};
pub use message::{
    utf8_text, DecodeError, ErrorClass, Event, Greeting, Message, QmpError, Request, Response, Timestamp,
    Version, VersionTriple,
};
pub use serde_json::value::RawValue;
