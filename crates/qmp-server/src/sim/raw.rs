//! The `raw` format driver's node: a window (`offset`, `size`) onto its `file` child, named
//! and checked as QEMU 7.2 names and checks it (found by running it):
//! - the window must lie within the child: the offset first, then offset and size together;
//!   a size must be a whole number of 512-byte sectors (an offset need not be);
//! - a window (a non-zero offset, or any size) does not let its child be resized, which a
//!   writable qcow2 node over the same child requires: QEMU refuses whichever comes second
//!   with a permission conflict, before it checks the window;
//! - with neither `offset` nor `size`, over a protocol node named by its path, the node
//!   takes its child's filename; otherwise its filename is `json:` with its options, `offset` and
//!   `size` included whenever given (even 0), in QEMU's QDict order.

use qmp_proto::{ErrorClass, QmpError};
use serde_json::Value;

use crate::server::Args;

/// The child a raw node opens: what it needs of it.
pub(crate) struct Child<'a> {
    pub filename: &'a str,
    /// Its open options, as JSON text.
    pub options: &'a str,
    pub size: u64,
    /// Whether it is a protocol node (`file`, `null-co`, `null-aio`).
    pub protocol: bool,
}

/// A raw node's `offset` and `size` as given.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    offset: Option<u64>,
    size: Option<u64>,
}

impl Window {
    /// Reads them as the driver does, before it opens its child.
    pub fn read(args: &Args) -> Result<Window, QmpError> {
        // The schema has them as `int`; the driver reads them as sizes.
        let read = |name: &str| match args.get(name).and_then(Value::as_i64) {
            Some(n) if n < 0 => Err(QmpError::new(
                ErrorClass::GenericError,
                format!("Parameter '{name}' expects a non-negative number below 2^64"),
            )),
            n => Ok(n.map(|n| n as u64)),
        };
        Ok(Window { offset: read("offset")?, size: read("size")? })
    }

    /// Whether the node lets its child be resized: not when it shows a part of it.
    pub fn shares_resize(self) -> bool {
        self.offset.unwrap_or(0) == 0 && self.size.is_none()
    }
}

/// A raw node's filename, open options (JSON text) and size.
pub(crate) fn open(window: Window, file: Child<'_>) -> Result<(String, String, u64), QmpError> {
    let generic = |desc: String| QmpError::new(ErrorClass::GenericError, desc);
    let Window { offset: given_offset, size: given_size } = window;
    let offset = given_offset.unwrap_or(0);
    if offset > file.size {
        return Err(generic(format!(
            "Offset ({offset}) cannot be greater than size of the containing file ({})",
            file.size
        )));
    }
    if let Some(size) = given_size {
        if offset.checked_add(size).is_none_or(|end| end > file.size) {
            // QEMU's text has the two spaces.
            return Err(generic(format!(
                "The sum of offset ({offset}) and size ({size}) has to be smaller or equal to the  actual size of the containing file ({})",
                file.size
            )));
        }
        if size % 512 != 0 {
            return Err(generic("Specified size is not multiple of 512".into()));
        }
    }
    let mut options = String::from("{");
    if let Some(o) = given_offset {
        options.push_str(&format!("\"offset\": {o}, "));
    }
    options.push_str("\"driver\": \"raw\", ");
    if let Some(s) = given_size {
        options.push_str(&format!("\"size\": {s}, "));
    }
    options.push_str(&format!("\"file\": {}}}", file.options));
    let plain = given_offset.is_none()
        && given_size.is_none()
        && file.protocol
        && !file.filename.starts_with("json:");
    let filename = if plain { file.filename.to_owned() } else { format!("json:{options}") };
    Ok((filename, options, given_size.unwrap_or(file.size - offset)))
}
