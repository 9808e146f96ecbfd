//! Synchronising with the guest agent. Its channel outlives any one client, so it may still
//! hold a half-written request or the reply meant for a client that gave up. The cure is
//! qemu-ga's own: a 0xFF byte, which makes the agent drop any partial request (and answer it
//! with a parse error, skipped), then `guest-sync-delimited` with a random token, whose reply
//! the agent starts with 0xFF (skipped too: a core without a handshake skips stray bytes).
//! A reply carrying another token is a stale one: the exchange is tried again.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

/// How many stale `guest-sync-delimited` replies are skipped before giving up.
pub(crate) const ATTEMPTS: usize = 3;

/// The byte that resets the agent's parser.
pub(crate) const RESET: u8 = 0xFF;

/// A fresh token for `guest-sync-delimited`: random, and within JSON's exact integers.
pub(crate) fn token() -> i64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let h = RandomState::new().hash_one((n, std::time::SystemTime::now()));
    (h & ((1 << 53) - 1)) as i64
}

/// The last token sent and what came back for it, for [`out_of_sync`].
pub(crate) type Last = (i64, serde_json::Value);

/// What the answer to attempt `attempt` (from 1) with `token` means: `Ok(true)` when it
/// carries the token; `Ok(false)` to try again (a reply meant for an earlier client came in
/// its place, error or not); `Err` for a failure that ends the sync.
pub(crate) fn answered(
    attempt: usize,
    token: i64,
    answer: crate::Result<serde_json::Value>,
    last: &mut Last,
) -> crate::Result<bool> {
    match answer {
        Ok(v) if v.as_i64() == Some(token) => Ok(true),
        Ok(v) => {
            *last = (token, v);
            Ok(false)
        }
        Err(e @ crate::Error::Qmp(_)) if attempt == ATTEMPTS => Err(e),
        Err(crate::Error::Qmp(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The error when every attempt was answered with another token.
pub(crate) fn out_of_sync(last: Last) -> crate::Error {
    crate::Error::Protocol(crate::ProtocolFault::AgentOutOfSync { sent: last.0, answered: last.1 })
}
