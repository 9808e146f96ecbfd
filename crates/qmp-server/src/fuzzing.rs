//! Entry points for the `server_input` fuzz target (`fuzz/fuzz_targets/server_input.rs`) and
//! its cargo-test runner: the connection's input stage (QEMU's lexer and streamer, then the
//! parser) without a socket or a runtime. Not part of the API.

use serde_json::Value;

use crate::input::{Input, Item};

pub use crate::input::MAX_NESTING;

/// One result of the input stage, owned, so that runs can be compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A complete top-level value as the lexer cut it, and what the parser made of it.
    Value {
        /// The value's bytes.
        bytes: Vec<u8>,
        /// Whether some string in it is single-quoted.
        single_quoted: bool,
        /// The parsed value, or QEMU's error text.
        parsed: Result<Value, String>,
    },
    /// Input refused before parsing (QEMU's error text).
    Error(String),
}

/// A connection's input state, fed the way the server feeds it.
#[derive(Debug)]
pub struct Stream {
    input: Input,
}

impl Stream {
    /// An empty stream whose values may not exceed `max_size` bytes.
    pub fn new(max_size: usize) -> Self {
        Stream { input: Input::new(max_size) }
    }

    /// Appends one read's bytes, then appends every value or error now complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Out>) {
        self.input.buffer_mut().extend_from_slice(bytes);
        while let Some(item) = self.input.next_item() {
            out.push(match item {
                Item::Value { bytes, single_quoted } => Out::Value {
                    bytes: bytes.to_vec(),
                    single_quoted,
                    parsed: crate::parse::parse_value(bytes, single_quoted),
                },
                Item::Error(e) => Out::Error(e),
            });
        }
    }

    /// The bytes held between reads (after the compaction the server does before each read).
    pub fn buffered(&mut self) -> usize {
        self.input.buffer_mut().len()
    }
}

/// The parser's QEMU-mirroring path alone, which the server takes when serde_json refuses
/// a value; where serde_json accepts one, the two must agree.
pub fn parse_like_qemu(bytes: &[u8]) -> Result<Value, String> {
    crate::parse::parse_like_qemu(bytes)
}
