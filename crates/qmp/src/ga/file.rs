//! Moving files through the agent: `guest-file-open`, then `guest-file-read` or
//! `guest-file-write` in base64 chunks, then `guest-file-close`. The steps both agent
//! clients share live here; the clients drive them.

use base64::Engine as _;

use crate::ga::commands::{GuestFileClose, GuestFileOpen, GuestFileRead, GuestFileSeek, GuestFileWrite};
use crate::ga::types::{self, GuestFileWhence, QGASeek};
use crate::{Error, ProtocolFault, Result};

/// How many bytes one `guest-file-read` or `guest-file-write` moves: 4 MiB, 5.6 MB of base64
/// in one message, well inside the agent's 48 MiB read limit and 64 MB request limit and
/// the client's 16 MiB message limit.
pub const CHUNK: usize = 4 << 20;

/// How far a transfer has come, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes moved so far.
    pub done: u64,
    /// The file's size when it is known (a download of a regular file).
    pub total: Option<u64>,
}

/// Opening `path` for reading.
pub(crate) fn open_read(path: &str) -> GuestFileOpen {
    GuestFileOpen::new(path).mode("r")
}

/// Opening `path` for writing, truncated.
pub(crate) fn open_write(path: &str) -> GuestFileOpen {
    GuestFileOpen::new(path).mode("w")
}

/// Seeking to the end (whose answer is the size) and back to the start.
pub(crate) fn seek(handle: i64, to_end: bool) -> GuestFileSeek {
    let whence = if to_end { QGASeek::End } else { QGASeek::Set };
    GuestFileSeek::new(handle, 0, GuestFileWhence::Name(whence))
}

/// The next chunk's read.
pub(crate) fn read(handle: i64) -> GuestFileRead {
    GuestFileRead::new(handle).count(CHUNK as i64)
}

/// A chunk's write.
pub(crate) fn write(handle: i64, chunk: &[u8]) -> GuestFileWrite {
    GuestFileWrite::new(handle, base64::engine::general_purpose::STANDARD.encode(chunk))
}

/// Closing the file.
pub(crate) fn close(handle: i64) -> GuestFileClose {
    GuestFileClose::new(handle)
}

/// Appends a read chunk's bytes to `out`; true at the end of the file.
pub(crate) fn take_chunk(read: types::GuestFileRead, out: &mut Vec<u8>) -> Result<bool> {
    let at = out.len();
    base64::engine::general_purpose::STANDARD
        .decode_vec(read.buf_b64.as_bytes(), out)
        .map_err(|e| malformed(format!("guest-file-read: the data is not base64: {e}")))?;
    let got = (out.len() - at) as i64;
    if got != read.count {
        return Err(malformed(format!("guest-file-read: said {} bytes, sent {got}", read.count)));
    }
    Ok(read.eof || got == 0)
}

/// Checks that a chunk of `sent` bytes was written whole.
pub(crate) fn check_written(written: types::GuestFileWrite, sent: usize) -> Result<()> {
    if written.count != sent as i64 {
        return Err(malformed(format!("guest-file-write: wrote {} of {sent} bytes", written.count)));
    }
    Ok(())
}

/// The size a seek to the end reported, when it is a size (not a pipe's or a proc file's 0).
pub(crate) fn size(seek: &types::GuestFileSeek) -> Option<u64> {
    u64::try_from(seek.position).ok().filter(|&n| n > 0)
}

fn malformed(why: String) -> Error {
    Error::Protocol(ProtocolFault::MalformedReply(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &[u8], count: i64, eof: bool) -> types::GuestFileRead {
        types::GuestFileRead {
            count,
            buf_b64: base64::engine::general_purpose::STANDARD.encode(data),
            eof,
            unknown_members: Default::default(),
        }
    }

    #[test]
    fn chunks_append_and_the_end_is_seen() {
        let mut out = b"ab".to_vec();
        assert!(!take_chunk(chunk(b"cde", 3, false), &mut out).unwrap());
        assert!(take_chunk(chunk(b"", 0, false), &mut out).unwrap(), "an empty chunk ends it");
        assert!(take_chunk(chunk(b"f", 1, true), &mut out).unwrap());
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn a_chunk_that_lies_is_an_error_not_data() {
        let mut out = Vec::new();
        let e = take_chunk(chunk(b"abc", 4, false), &mut out).unwrap_err();
        assert!(e.to_string().contains("said 4 bytes, sent 3"), "{e}");
        let mut bad = chunk(b"", 0, false);
        bad.buf_b64 = "!!!".into();
        assert!(take_chunk(bad, &mut out).unwrap_err().to_string().contains("not base64"));
        let short = types::GuestFileWrite { count: 2, eof: false, unknown_members: Default::default() };
        assert!(check_written(short, 3).unwrap_err().to_string().contains("wrote 2 of 3"));
    }
}
