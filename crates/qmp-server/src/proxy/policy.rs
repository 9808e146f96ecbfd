//! Which commands a listener lets through: allow and deny lists of glob patterns.

use std::fmt;

/// The commands one listener may send on, as allow and deny lists of glob patterns (`*` any
/// run of characters, `?` one character).
///
/// A command is refused when it matches a deny pattern; otherwise it is let through when
/// it matches an allow pattern, or when there are no allow patterns at all. So
/// `deny=quit` alone allows everything but `quit`, and `allow=query-*` alone allows only
/// queries. `qmp_capabilities` is the proxy's own business and never subject to policy.
///
/// ```
/// use qmp_server::proxy::Policy;
///
/// let p = Policy::allow_all().deny("quit").deny("system_*");
/// assert!(p.permits("stop") && !p.permits("quit") && !p.permits("system_reset"));
///
/// let ro = Policy::read_only();
/// assert!(ro.permits("query-status") && ro.permits("qom-get") && !ro.permits("stop"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allow: Vec<String>,
    deny: Vec<String>,
}

/// Commands that read and change nothing, besides every `query-*` and `x-query-*`.
const READ_ONLY: &[&str] = &[
    "query-*",
    "x-query-*",
    "qom-list",
    "qom-get",
    "qom-list-types",
    "qom-list-properties",
    "device-list-properties",
];

impl Policy {
    /// Every command allowed.
    pub fn allow_all() -> Self {
        Policy::default()
    }

    /// The read-only preset: `query-*`, `x-query-*`, `qom-list`, `qom-get`,
    /// `qom-list-types`, `qom-list-properties` and `device-list-properties`; everything
    /// else (including `human-monitor-command`, which can change anything) refused.
    pub fn read_only() -> Self {
        Policy { allow: READ_ONLY.iter().map(|s| s.to_string()).collect(), deny: Vec::new() }
    }

    /// Adds an allow pattern.
    pub fn allow(mut self, pattern: impl Into<String>) -> Self {
        self.allow.push(pattern.into());
        self
    }

    /// Adds a deny pattern.
    pub fn deny(mut self, pattern: impl Into<String>) -> Self {
        self.deny.push(pattern.into());
        self
    }

    /// Whether `command` may be sent.
    pub fn permits(&self, command: &str) -> bool {
        if self.deny.iter().any(|p| glob_match(p, command)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|p| glob_match(p, command))
    }

    /// True when nothing is refused.
    pub fn is_allow_all(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "allow={:?} deny={:?}", self.allow, self.deny)
    }
}

/// `*` and `?` matching without recursion (the classic backtrack-to-last-star loop), so
/// its cost is bounded by `pattern.len() * text.len()` whatever the input.
///
/// ```
/// use qmp_server::proxy::glob_match;
/// assert!(glob_match("query-*", "query-status"));
/// assert!(glob_match("block-job-?ause", "block-job-pause"));
/// assert!(!glob_match("query-*", "quit"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("query-*", "query-status"));
        assert!(glob_match("*", ""));
        assert!(glob_match("q?m-*t", "qom-get"));
        assert!(!glob_match("query-*", "stop"));
        assert!(!glob_match("a*b", "aXbY"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match(&"*a".repeat(50), &"a".repeat(40)));
    }

    #[test]
    fn deny_wins_and_allow_lists_narrow() {
        let p = Policy::allow_all().allow("query-*").deny("query-migrate");
        assert!(p.permits("query-status"));
        assert!(!p.permits("query-migrate"));
        assert!(!p.permits("stop"));
        assert!(Policy::allow_all().permits("quit"));
        assert!(!Policy::read_only().permits("human-monitor-command"));
    }
}
