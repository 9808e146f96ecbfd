//! Encoders that write messages straight into a caller's buffer: no intermediate
//! `serde_json::Value`, one pass, and nothing allocated when the buffer has room.
//!
//! The envelope (member order, `", "` separators, CRLF) is QEMU's; values inside it are
//! written compactly by serde_json. `qmp-server` reproduces QEMU's formatting of nested values
//! byte for byte where a peer compares bytes.

use std::io::Write;

use serde::Serialize;

use crate::message::{Greeting, QmpError, Timestamp};

/// Appends a request to `out`: `{"execute": name, "arguments": args, "id": id}` and a newline.
/// `arguments` is left out when `args` serialises as `null` or `{}` (so a unit struct or
/// `()` means "no arguments"); `exec-oob` replaces `execute` when `oob` is true.
///
/// ```
/// let mut out = Vec::new();
/// qmp_proto::encode_request(&mut out, "stop", &(), Some(&1u64), false).unwrap();
/// assert_eq!(out, b"{\"execute\":\"stop\",\"id\":1}\n");
/// ```
pub fn encode_request<A, I>(
    out: &mut Vec<u8>,
    name: &str,
    args: &A,
    id: Option<&I>,
    oob: bool,
) -> serde_json::Result<()>
where
    A: Serialize + ?Sized,
    I: Serialize + ?Sized,
{
    let start = out.len();
    let result = (|| {
        out.extend_from_slice(if oob { b"{\"exec-oob\":" } else { b"{\"execute\":" });
        serde_json::to_writer(&mut *out, name)?;
        let mark = out.len();
        out.extend_from_slice(b",\"arguments\":");
        let args_at = out.len();
        serde_json::to_writer(&mut *out, args)?;
        let written = &out[args_at..];
        if written == b"null" || written == b"{}" {
            out.truncate(mark);
        }
        if let Some(id) = id {
            out.extend_from_slice(b",\"id\":");
            serde_json::to_writer(&mut *out, id)?;
        }
        out.extend_from_slice(b"}\n");
        Ok(())
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a successful response (`{"return": value, "id": id}` and CRLF, as QEMU ends lines).
pub fn encode_return<R, I>(out: &mut Vec<u8>, value: &R, id: Option<&I>) -> serde_json::Result<()>
where
    R: Serialize + ?Sized,
    I: Serialize + ?Sized,
{
    let start = out.len();
    let result = (|| {
        out.extend_from_slice(b"{\"return\": ");
        serde_json::to_writer(&mut *out, value)?;
        write_id_and_end(out, id)
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends an error response in QEMU's member order, `id` first:
/// `{"id": id, "error": {"class": ..., "desc": ...}}` and CRLF.
///
/// ```
/// use qmp_proto::{encode_error, ErrorClass, QmpError};
///
/// let mut out = Vec::new();
/// let e = QmpError::new(ErrorClass::CommandNotFound, "The command nope has not been found");
/// encode_error(&mut out, &e, Some(&2)).unwrap();
/// assert_eq!(
///     out,
///     &b"{\"id\": 2, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not been found\"}}\r\n"[..]
/// );
/// ```
pub fn encode_error<I>(out: &mut Vec<u8>, error: &QmpError, id: Option<&I>) -> serde_json::Result<()>
where
    I: Serialize + ?Sized,
{
    let start = out.len();
    let result = (|| {
        out.push(b'{');
        if let Some(id) = id {
            out.extend_from_slice(b"\"id\": ");
            serde_json::to_writer(&mut *out, id)?;
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"\"error\": {\"class\": ");
        serde_json::to_writer(&mut *out, error.class.as_str())?;
        out.extend_from_slice(b", \"desc\": ");
        serde_json::to_writer(&mut *out, &error.desc)?;
        for (k, v) in error.extra.iter() {
            out.extend_from_slice(b", ");
            serde_json::to_writer(&mut *out, k)?;
            out.extend_from_slice(b": ");
            serde_json::to_writer(&mut *out, v)?;
        }
        out.extend_from_slice(b"}}\r\n");
        Ok(())
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_id_and_end<I: Serialize + ?Sized>(out: &mut Vec<u8>, id: Option<&I>) -> serde_json::Result<()> {
    if let Some(id) = id {
        out.extend_from_slice(b", \"id\": ");
        serde_json::to_writer(&mut *out, id)?;
    }
    out.extend_from_slice(b"}\r\n");
    Ok(())
}

/// Appends an event in QEMU's member order: `{"timestamp": ..., "event": name, "data": ...}`
/// and CRLF. `data` is left out when it serialises as `null`.
pub fn encode_event<D>(
    out: &mut Vec<u8>,
    name: &str,
    data: &D,
    timestamp: Timestamp,
) -> serde_json::Result<()>
where
    D: Serialize + ?Sized,
{
    let start = out.len();
    let result = (|| {
        // Writing integers into a Vec cannot fail.
        let _ = write!(
            out,
            "{{\"timestamp\": {{\"seconds\": {}, \"microseconds\": {}}}, \"event\": ",
            timestamp.seconds, timestamp.microseconds
        );
        serde_json::to_writer(&mut *out, name)?;
        let mark = out.len();
        out.extend_from_slice(b", \"data\": ");
        let data_at = out.len();
        serde_json::to_writer(&mut *out, data)?;
        if &out[data_at..] == b"null" {
            out.truncate(mark);
        }
        out.extend_from_slice(b"}\r\n");
        Ok(())
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends the greeting: `{"QMP": {...}}` and CRLF.
pub fn encode_greeting(out: &mut Vec<u8>, greeting: &Greeting) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"QMP\": ");
    serde_json::to_writer(&mut *out, greeting)?;
    out.extend_from_slice(b"}\r\n");
    Ok(())
}

/// Rewrites QEMU's single-quoted strings as standard double-quoted JSON strings, leaving all
/// else as it is: `{'execute': 'stop'}` becomes `{"execute": "stop"}`. Inside a single-quoted
/// string a bare `"` is escaped; in either kind of string `\'` is a quote, as QEMU reads it.
///
/// ```
/// let out = qmp_proto::standardize_quotes(br#"{'a': 'it\'s "x"', "b": "'", "c": "\'"}"#);
/// assert_eq!(out, br#"{"a": "it's \"x\"", "b": "'", "c": "'"}"#);
/// ```
pub fn standardize_quotes(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 8);
    let mut quote: Option<u8> = None;
    let mut escape = false;
    for &b in input {
        match quote {
            None => {
                if b == b'\'' {
                    quote = Some(b'\'');
                    out.push(b'"');
                } else {
                    if b == b'"' {
                        quote = Some(b'"');
                    }
                    out.push(b);
                }
            }
            Some(q) => {
                if escape {
                    escape = false;
                    if b == b'\'' {
                        out.push(b'\'');
                    } else {
                        out.push(b'\\');
                        out.push(b);
                    }
                } else if b == b'\\' {
                    escape = true;
                } else if b == q {
                    quote = None;
                    out.push(b'"');
                } else if q == b'\'' && b == b'"' {
                    out.extend_from_slice(b"\\\"");
                } else {
                    out.push(b);
                }
            }
        }
    }
    if escape {
        out.push(b'\\');
    }
    out
}
