//! Decoding a reply frame into a command's return type, in one pass: the path every typed
//! call takes.

use qmp_proto::QmpError;

/// Why a reply did not give the command's return value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The server answered with an error (class and description kept).
    #[error("{0}")]
    Qmp(#[from] QmpError),
    /// The reply is not a QMP reply: not UTF-8, or with neither or both of `return` and
    /// `error`.
    #[error("protocol error: {0}")]
    Malformed(String),
    /// The reply, or its `return`, did not decode into the expected type.
    #[error("{context}: {source}")]
    Json {
        /// What was being decoded.
        context: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// A reply's two shapes, read in one pass straight into the caller's type.
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "T: serde::Deserialize<'de>"))]
struct Wire<T> {
    // Present-ness, not value, decides: `"return": null` is a return of null.
    #[serde(rename = "return", default = "none", deserialize_with = "crate::qapi_support::present")]
    ret: Option<T>,
    error: Option<QmpError>,
}

fn none<T>() -> Option<T> {
    None
}

/// Decodes one framed reply (`{"return": ...}` or `{"error": ...}`) straight into `T` in one
/// pass: the server's error becomes [`ReplyError::Qmp`]. `name` is the command, for error
/// messages.
///
/// ```
/// let status: serde_json::Value =
///     qmp_qapi::decode_reply("query-status", br#"{"return": {"status": "running"}, "id": 1}"#).unwrap();
/// assert_eq!(status["status"], "running");
/// let err = qmp_qapi::decode_reply::<serde_json::Value>("x", br#"{"return": 1, "error": {"class": "GenericError", "desc": "d"}, "id": 1}"#);
/// assert!(matches!(err, Err(qmp_qapi::ReplyError::Malformed(_))));
/// ```
pub fn decode_reply<T: serde::de::DeserializeOwned>(name: &str, frame: &[u8]) -> Result<T, ReplyError> {
    decode_member(frame).unwrap_or_else(|| decode_whole(name, frame))
}

/// The full pass: the reply object decoded as a whole.
fn decode_whole<T: serde::de::DeserializeOwned>(name: &str, frame: &[u8]) -> Result<T, ReplyError> {
    // One UTF-8 check of the whole frame, then `from_str`: `from_slice` checks every string on
    // its own, which costs a quarter of a large reply's decode.
    let text = std::str::from_utf8(frame)
        .map_err(|e| ReplyError::Malformed(format!("the reply to {name} is not UTF-8: {e}")))?;
    let w: Wire<T> = serde_json::from_str(text).map_err(|source| ReplyError::Json {
        context: format!("cannot decode the return of {name}"),
        source,
    })?;
    match (w.ret, w.error) {
        (Some(v), None) => Ok(v),
        (None, Some(e)) => Err(ReplyError::Qmp(e)),
        _ => {
            Err(ReplyError::Malformed(format!("a reply to {name} with neither or both of return and error")))
        }
    }
}

/// A reply in QEMU's exact shape, `{"return": V, "id": N}` or `{"error": E, "id": N}`, with
/// V (or E) decoded on its own: no pass over the member names or the id. `None` when the frame
/// has another shape or V does not decode, for [`decode_reply`]'s full pass to decide (and to
/// word any error as it always has): a lone value that decodes is the member's value, as JSON
/// values end where they end, and whatever else the object held would be inside V and fail it.
fn decode_member<T: serde::de::DeserializeOwned>(frame: &[u8]) -> Option<Result<T, ReplyError>> {
    match member_text(frame)? {
        (Member::Return, value) => serde_json::from_str::<T>(value).ok().map(Ok),
        (Member::Error, value) => {
            serde_json::from_str::<QmpError>(value).ok().map(|e| Err(ReplyError::Qmp(e)))
        }
    }
}

/// Which member a reply in QEMU's exact shape carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// `return`.
    Return,
    /// `error`.
    Error,
}

/// The text of V in a reply in QEMU's exact shape, `{"return": V, "id": N}` or
/// `{"error": E, "id": N}` (spaces optional, N all digits); `None` for any other shape or
/// for text that is not UTF-8. V itself is not checked: it is JSON only if it decodes. For a
/// [`Command::decode_reply`](crate::Command::decode_reply) with a scanner of its own.
///
/// ```
/// use qmp_qapi::reply::{member_text, Member};
/// assert_eq!(member_text(br#"{"return": {}, "id": 7}"#), Some((Member::Return, "{}")));
/// assert_eq!(member_text(br#"{"id": 7, "return": {}}"#), None);
/// ```
pub fn member_text(frame: &[u8]) -> Option<(Member, &str)> {
    let (member, rest) = match frame {
        [b'{', b'"', b'r', b'e', b't', b'u', b'r', b'n', b'"', rest @ ..] => (Member::Return, rest),
        [b'{', b'"', b'e', b'r', b'r', b'o', b'r', b'"', rest @ ..] => (Member::Error, rest),
        _ => return None,
    };
    let rest = rest.strip_prefix(b": ").or_else(|| rest.strip_prefix(b":"))?;
    // `, "id": N}` (spaces optional, as fast_reply_id reads it), N all digits.
    let body = rest.strip_suffix(b"}")?;
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let head = &body[..body.len() - digits];
    let head = head.strip_suffix(b" ").unwrap_or(head);
    let head = head.strip_suffix(b"\"id\":")?;
    let head = head.strip_suffix(b" ").unwrap_or(head);
    let value = head.strip_suffix(b",")?;
    Some((member, qmp_proto::utf8_text(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut must give what the full pass gives, errors included.
    fn same<T: serde::de::DeserializeOwned + std::fmt::Debug>(frame: &[u8]) {
        let (short, whole) = (decode_reply::<T>("x", frame), decode_whole::<T>("x", frame));
        assert_eq!(format!("{short:?}"), format!("{whole:?}"), "{}", String::from_utf8_lossy(frame));
    }

    #[test]
    fn replies_decode_alike_with_and_without_the_shortcut() {
        let frames: &[&[u8]] = &[
            br#"{"return": {"status": "running", "singlestep": false, "running": true}, "id": 12345}"#,
            br#"{"return":{"status":"paused","singlestep":false,"running":false},"id":7}"#,
            br#"{"return": {"status": "running", "id": 1, "running": true}, "id": 2}"#,
            br#"{"return": {"a": "x\", \"id\": 3}"}, "id": 3}"#,
            br#"{"return": {}, "id": 1}"#,
            br#"{"return": null, "id": 1}"#,
            br#"{"return": [1, 2], "id": 1}"#,
            br#"{"return": 1, "error": {"class": "GenericError", "desc": "d"}, "id": 1}"#,
            br#"{"return": 1, "return": 2, "id": 1}"#,
            br#"{"return": 1 , "id": 1}"#,
            br#"{"return" : 1, "id": 1}"#,
            br#"{"return": , "id": 1}"#,
            br#"{"return": 1, "id": "a"}"#,
            br#"{"return": {"status": "nope", "singlestep": false, "running": true}, "id": 1}"#,
            br#"{"error": {"class": "CommandNotFound", "desc": "The command x has not been found"}, "id": 4}"#,
            br#"{"error": {"class": "GenericError"}, "id": 4}"#,
            br#"{"error": null, "id": 4}"#,
            br#"{"error": {"class": "GenericError", "desc": "d"}, "return": {}, "id": 4}"#,
            b"{\"return\": \"\xff\", \"id\": 1}",
            br#"{"return": "\u00e9\n", "id": 9}"#,
        ];
        // QEMU's shape takes the shortcut (else this test would compare the full pass with itself).
        assert!(decode_member::<crate::types::StatusInfo>(frames[0]).is_some_and(|r| r.is_ok()));
        assert!(decode_member::<serde_json::Value>(frames[14]).is_some_and(|r| r.is_err()));
        for frame in frames {
            same::<serde_json::Value>(frame);
            same::<Option<serde_json::Value>>(frame);
            same::<crate::types::StatusInfo>(frame);
            same::<std::collections::BTreeMap<String, serde_json::Value>>(frame);
            same::<Option<u32>>(frame);
            same::<Box<serde_json::value::RawValue>>(frame);
        }
    }
}
