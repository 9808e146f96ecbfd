//! The `secret` object (`object-add qom-type=secret`): its checks as QEMU 7.2 completes it
//! (found by running it): `data` and `file` exclusive, one of them required; a file that
//! cannot be read; base64 `data` with characters outside the alphabet; a `keyid` naming no
//! secret, or one whose key is not 32 bytes. A secret encrypted with a valid key and `iv`
//! is taken as it is (the simulator does not decrypt it).

use qmp_proto::{ErrorClass, QmpError};
use serde_json::Value;

use crate::server::Args;

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

/// The secret's bytes as QEMU loads them: `data`, or the contents of `file`, decoded from
/// base64 when `format` says so. `key` finds another secret's bytes by id (for `keyid`).
pub(crate) fn load(args: &Args, key: impl Fn(&str) -> Option<Vec<u8>>) -> Result<Vec<u8>, QmpError> {
    let text = |name: &str| args.get(name).and_then(Value::as_str);
    let raw = match (text("data"), text("file")) {
        (Some(_), Some(_)) => return Err(generic("'file' and 'data' are mutually exclusive")),
        (None, None) => return Err(generic("Either 'file' or 'data' must be provided")),
        (Some(data), None) => data.as_bytes().to_vec(),
        (None, Some(path)) => read_bounded(path)?,
    };
    let bytes = if text("format") == Some("base64") { base64(&raw)? } else { raw };
    if let Some(id) = text("keyid") {
        let key = key(id).ok_or_else(|| generic(format!("No secret with id '{id}'")))?;
        if key.len() != 32 {
            return Err(generic("Key should be 32 bytes in length"));
        }
        if text("iv").is_none() {
            return Err(generic("IV is required to decrypt secret"));
        }
    }
    Ok(bytes)
}

/// The most of a secret file the simulator reads (QEMU reads any file whole; `/dev/zero`
/// must not take the simulator's memory).
const MAX_FILE: u64 = 1 << 20;

fn read_bounded(path: &str) -> Result<Vec<u8>, QmpError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| {
        // GLib's text, within QEMU's.
        let why = super::strerror(&e);
        generic(format!("Unable to read {path}: Failed to open file \u{201c}{path}\u{201d}: {why}"))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(generic(format!("The simulator reads secret files of at most {MAX_FILE} bytes")));
    }
    Ok(bytes)
}

/// Standard base64 (with `=` padding), as GLib decodes it.
fn base64(text: &[u8]) -> Result<Vec<u8>, QmpError> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let body = text.strip_suffix(b"==").or_else(|| text.strip_suffix(b"=")).unwrap_or(text);
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in body {
        let v = value(c).ok_or_else(|| generic("Base64 data contains invalid characters"))?;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_decoded_and_bad_characters_refused() {
        assert_eq!(base64(b"c2VjcmV0").unwrap(), b"secret");
        assert_eq!(base64(b"YQ==").unwrap(), b"a");
        assert_eq!(base64(b"!!!").unwrap_err().desc, "Base64 data contains invalid characters");
    }
}
