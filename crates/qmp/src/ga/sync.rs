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
