//! CPU placement. A serial round trip between two processes costs very different amounts
//! when the scheduler puts both ends on one CPU (a context switch each way) or on two (a
//! cross-CPU wake-up each way, slow in a VM). Pinning both ends makes each regime repeatable,
//! so the serial measure is also taken in each.

use std::io;

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Restricts process/thread `pid` (0: the calling thread) to `cpu`, or lets it run on every
/// CPU with `None`. Threads it creates afterwards inherit the setting.
pub fn set(pid: u32, cpu: Option<usize>) -> io::Result<()> {
    let mut set = CpuSet::new();
    match cpu {
        Some(c) => set.set(c).map_err(io::Error::from)?,
        None => {
            for c in 0..crate::helpers::num_cpus().min(CpuSet::count()) {
                set.set(c).map_err(io::Error::from)?;
            }
        }
    }
    sched_setaffinity(Pid::from_raw(pid as i32), &set).map_err(io::Error::from)
}
