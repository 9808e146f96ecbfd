//! `qmp-bench --ga-copy`: copying a file into and out of real qemu-ga (Debian's 7.2, started
//! here with its dangerous commands blocked), with `qmp ga cp` and with qemu.qmp's client
//! through the same agent, in one run. Every copy is checked byte for byte. Each figure is
//! the best of three; the agent's own CPU time for the copy is shown beside it, since the
//! agent's JSON parsing and base64 work bound every client from below.

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The qemu.qmp copy script, run as `python SCRIPT SOCKET in|out LOCAL GUEST CHUNK`.
const SCRIPT: &str = include_str!("../scripts/qemu_qmp_ga_copy.py");

const MIB: usize = 1 << 20;

/// One way of copying, measured.
struct Row {
    what: String,
    seconds: f64,
    agent_seconds: f64,
}

/// Runs the comparison on a file of `mib` MiB and prints the table.
pub fn run(mib: usize) -> io::Result<()> {
    let ga = qmp_testkit::Peer::qemu_ga();
    let sock = ga.socket(0).to_path_buf();
    let dir = tempfile::Builder::new().prefix("qmp-bench-ga-").tempdir()?;
    let d = dir.path();
    let data = pseudo_random(mib * MIB);
    let local = d.join("local.bin");
    std::fs::write(&local, &data)?;
    let python = crate::external::python_with_qemu_qmp()?;
    let script = d.join("qemu_qmp_ga_copy.py");
    std::fs::write(&script, SCRIPT)?;
    let qmp = crate::external::qmp_binary()?;
    let agent_cpu = || cpu_seconds(ga.pid());

    let ours_in = |dst: &Path| -> io::Result<f64> {
        run_timed(Command::new(&qmp).arg("ga").arg("-s").arg(&sock).arg("cp").arg(&local).arg(guest(dst)))
    };
    let ours_out = |src: &Path, to: &Path| -> io::Result<f64> {
        run_timed(Command::new(&qmp).arg("ga").arg("-s").arg(&sock).arg("cp").arg(guest(src)).arg(to))
    };
    let py = |way: &str, local: &Path, guest: &Path, chunk: usize| -> io::Result<f64> {
        let out = Command::new(&python)
            .arg(&script)
            .arg(&sock)
            .arg(way)
            .arg(local)
            .arg(guest)
            .arg(chunk.to_string())
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!("the qemu.qmp copy script failed: {}", out.status)));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(io::Error::other)?;
        v["seconds"].as_f64().ok_or_else(|| io::Error::other("the script printed no seconds"))
    };

    let mut rows = Vec::new();
    let mut best = |what: String, f: &mut dyn FnMut() -> io::Result<f64>, check: &Path| -> io::Result<()> {
        let mut row = Row { what, seconds: f64::INFINITY, agent_seconds: 0.0 };
        for _ in 0..3 {
            let before = agent_cpu()?;
            let s = f()?;
            let agent = agent_cpu()? - before;
            if std::fs::read(check)? != data {
                return Err(io::Error::other(format!("{}: the copy differs from the original", row.what)));
            }
            if s < row.seconds {
                (row.seconds, row.agent_seconds) = (s, agent);
            }
        }
        rows.push(row);
        Ok(())
    };
    let (g_ours, g_py, back) = (d.join("guest-ours.bin"), d.join("guest-py.bin"), d.join("back.bin"));
    best("in: qmp ga cp (4 MiB chunks, one in flight ahead)".into(), &mut || ours_in(&g_ours), &g_ours)?;
    best("in: qemu.qmp, 4 MiB chunks".into(), &mut || py("in", &local, &g_py, 4 * MIB), &g_py)?;
    best("in: qemu.qmp, 64 KiB chunks".into(), &mut || py("in", &local, &g_py, 64 << 10), &g_py)?;
    best(
        "out: qmp ga cp (4 MiB chunks, one in flight ahead)".into(),
        &mut || ours_out(&g_ours, &back),
        &back,
    )?;
    best("out: qemu.qmp, 4 MiB chunks".into(), &mut || py("out", &back, &g_ours, 4 * MIB), &back)?;
    best("out: qemu.qmp, 64 KiB chunks".into(), &mut || py("out", &back, &g_ours, 64 << 10), &back)?;
    best("out: qemu.qmp, the agent's default count".into(), &mut || py("out", &back, &g_ours, 0), &back)?;

    println!("guest-agent file copy, {mib} MiB, best of 3 (qemu-ga {}):", agent_version(&sock)?);
    println!("{:<52} {:>9} {:>9} {:>11} {:>9}", "", "seconds", "MB/s", "agent CPU", "vs ours");
    for half in ["in:", "out:"] {
        let ours = rows.iter().find(|r| r.what.starts_with(half)).map_or(f64::NAN, |r| r.seconds);
        for r in rows.iter().filter(|r| r.what.starts_with(half)) {
            println!(
                "{:<52} {:>9.3} {:>9.1} {:>10.2}s {:>8.2}x",
                r.what,
                r.seconds,
                (mib * MIB) as f64 / r.seconds / 1e6,
                r.agent_seconds,
                r.seconds / ours
            );
        }
    }
    Ok(())
}

fn guest(p: &Path) -> String {
    format!("guest:{}", p.display())
}

/// Wall seconds of a command that must succeed, its output discarded.
fn run_timed(cmd: &mut Command) -> io::Result<f64> {
    let t = Instant::now();
    let status = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).status()?;
    if !status.success() {
        return Err(io::Error::other(format!("{cmd:?} failed: {status}")));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The CPU time (user and system) the process has used, from /proc.
fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let field = |i: usize| rest.split_whitespace().nth(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    Ok((field(11) + field(12)) / ticks)
}

fn agent_version(sock: &Path) -> io::Result<String> {
    let agent = qmp::blocking::Agent::connect(sock).map_err(io::Error::other)?;
    Ok(agent.info().map_err(io::Error::other)?.version)
}

/// Bytes that do not compress or repeat in step with any chunk size.
fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
