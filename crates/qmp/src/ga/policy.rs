//! What a guest-agent client must know of the commands beyond their types: how long each may
//! take, and which answer nothing when they succeed. Both come from the schema's facts or
//! from what the commands do, not from a list kept by hand.

use std::time::Duration;

use crate::qapi::Kind;

/// How long an agent call may take when neither the call nor the agent says otherwise: the
/// agent answers most commands at once, and a guest whose agent is not running never does.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long synchronising may take: the agent answers `guest-sync-delimited` at once when
/// it runs at all.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// The commands that wait on the guest's file systems: freezing flushes every one of them,
/// and trimming walks their free space. Both can take minutes on a busy guest.
const SLOW: &[&str] =
    &["guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw", "guest-fstrim"];

/// The bound on the slow commands.
pub const SLOW_TIMEOUT: Duration = Duration::from_secs(600);

/// The timeout for a call of `name` given the agent's own (`None`: no limit): the slow
/// commands get at least [`SLOW_TIMEOUT`].
pub fn timeout_for(name: &str, agent: Option<Duration>) -> Option<Duration> {
    match agent {
        Some(t) if SLOW.contains(&name) => Some(t.max(SLOW_TIMEOUT)),
        other => other,
    }
}

/// True for the commands the agent answers only when they fail (`guest-shutdown`, the
/// suspends): the schema's `success-response: false`.
///
/// ```
/// assert!(qmp::ga::gives_no_reply("guest-shutdown"));
/// assert!(qmp::ga::gives_no_reply("guest-suspend-ram"));
/// assert!(!qmp::ga::gives_no_reply("guest-ping"));
/// ```
pub fn gives_no_reply(name: &str) -> bool {
    matches!(
        crate::ga::generated::facts::SCHEMA.get(name).map(|e| e.kind),
        Some(Kind::Command { no_success_response: true, .. })
    )
}

/// Whether the channel is known to hold nothing but what this client asked for: the core's
/// skip count ([`qmp_proto::client::ClientCore::skipped`]) when it was last known clean.
/// Anything the core passes over after that (garbage, a reply no call waits for), a timeout,
/// or a call given up midway, means synchronising before the next call.
#[derive(Debug, Default)]
pub(crate) struct Clean(Option<u64>);

impl Clean {
    /// True when no synchronisation is needed before the next call.
    pub(crate) fn holds(&self, skipped: u64) -> bool {
        self.0 == Some(skipped)
    }

    /// Marks the channel clean as of `skipped` (after a synchronisation).
    pub(crate) fn set(&mut self, skipped: u64) {
        self.0 = Some(skipped);
    }

    /// Starts a call: the channel counts as dirty until [`Clean::finish`] says otherwise, so a
    /// call dropped midway leaves it dirty.
    pub(crate) fn start(&mut self) -> Option<u64> {
        self.0.take()
    }

    /// Ends a call that began clean at `before`: still clean when it got its answer (an
    /// error from the agent included) and nothing was skipped meanwhile.
    pub(crate) fn finish<T>(&mut self, before: Option<u64>, skipped: u64, outcome: &crate::Result<T>) {
        let answered = match outcome {
            Ok(_) | Err(crate::Error::Qmp(_)) => true,
            Err(_) => false,
        };
        if answered && before == Some(skipped) {
            self.0 = Some(skipped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_commands_get_longer_and_no_limit_stays_none() {
        let t = Some(Duration::from_secs(5));
        assert_eq!(timeout_for("guest-ping", t), t);
        assert_eq!(timeout_for("guest-fsfreeze-freeze", t), Some(SLOW_TIMEOUT));
        assert_eq!(
            timeout_for("guest-fstrim", Some(Duration::from_secs(900))),
            Some(Duration::from_secs(900))
        );
        assert_eq!(timeout_for("guest-fstrim", None), None);
    }

    #[test]
    fn every_command_that_gives_no_reply_is_a_shutdown_or_a_suspend() {
        let names: Vec<&str> = crate::ga::generated::facts::SCHEMA
            .entities
            .iter()
            .filter(|e| gives_no_reply(e.name))
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names,
            ["guest-shutdown", "guest-suspend-disk", "guest-suspend-hybrid", "guest-suspend-ram"]
        );
    }

    #[test]
    fn a_call_keeps_the_channel_clean_only_when_answered_with_nothing_skipped() {
        let mut clean = Clean::default();
        assert!(!clean.holds(0));
        clean.set(3);
        assert!(clean.holds(3) && !clean.holds(4));
        let before = clean.start();
        assert!(!clean.holds(3), "dirty while the call runs");
        clean.finish(before, 3, &Ok::<(), crate::Error>(()));
        assert!(clean.holds(3));
        let before = clean.start();
        clean.finish(before, 4, &Ok::<(), crate::Error>(()));
        assert!(!clean.holds(4), "something was skipped during the call");
        clean.set(4);
        let before = clean.start();
        clean.finish::<()>(before, 4, &Err(crate::Error::Timeout));
        assert!(!clean.holds(4), "a timeout leaves the reply in the channel");
    }
}
