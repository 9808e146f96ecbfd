//! CPU placement. A serial round trip between two processes costs very different amounts
//! when the scheduler puts both ends on one CPU (a context switch each way) or on two (a
//! cross-CPU wake-up each way, slow in a VM). Pinning both ends makes each regime repeatable,
//! so the serial measure is also taken in each.

use std::io;
use std::sync::OnceLock;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs the process may use, as it started (before any pinning).
fn original() -> &'static Option<CpuSet> {
    static ORIGINAL: OnceLock<Option<CpuSet>> = OnceLock::new();
    ORIGINAL.get_or_init(|| sched_getaffinity(Pid::from_raw(0)).ok())
}

/// Records the CPUs the process may use; call before any pinning.
pub fn init() {
    let _ = original();
}

/// How many CPUs the process may use (as it started, whatever pinning is in force now).
pub fn cpus() -> usize {
    match original() {
        Some(set) => (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).count().max(1),
        None => 1,
    }
}

/// The `n`th CPU the process may use (wrapping), for pinning.
pub fn nth(n: usize) -> usize {
    let Some(set) = original() else { return 0 };
    let all: Vec<usize> = (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect();
    if all.is_empty() {
        0
    } else {
        all[n % all.len()]
    }
}

/// Restricts process/thread `pid` (0: the calling thread) to `cpu`, or gives it back every
/// CPU the process started with, with `None`. Threads it creates afterwards inherit this.
pub fn set(pid: u32, cpu: Option<usize>) -> io::Result<()> {
    let set = match (cpu, original()) {
        (Some(c), _) => {
            let mut set = CpuSet::new();
            set.set(c).map_err(io::Error::from)?;
            set
        }
        (None, Some(orig)) => *orig,
        (None, None) => return Ok(()),
    };
    sched_setaffinity(Pid::from_raw(pid as i32), &set).map_err(io::Error::from)
}
