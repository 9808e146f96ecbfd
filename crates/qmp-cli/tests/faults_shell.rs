//! The shell's files and its end, tried as an unlucky operator and a local attacker would:
//! the `-l` log and the history are private (0600 under a wide-open umask), appended to,
//! never written through a symlink planted at their path, and readable by Python's
//! qmp-shell; SIGTERM and SIGHUP end `qmp shell` and `qmp launch` as Ctrl-D does, with QEMU
//! stopped and the private socket directory removed; and a `qmp launch` killed outright
//! leaves no QEMU running as an orphan. QEMU is required (scripts/install-deps.sh).

mod support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::pty::Pty;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

/// `qmp shell --sim ARGS` with `script` on its stdin, under umask 000.
fn piped_shell(args: &[&str], script: &str) -> support::Output {
    let mut full = vec!["shell", "--sim"];
    full.extend_from_slice(args);
    let mut cmd = support::command(&full);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    support::finish(child, Duration::from_secs(20))
}

#[test]
fn the_shell_log_is_created_0600_and_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("session.log");
    let log_arg = log.to_str().unwrap();
    piped_shell(&["-l", log_arg], "query-status\n").assert_code(0);
    assert_eq!(mode(&log), 0o600, "the log holds every request and reply");
    piped_shell(&["-l", log_arg], "query-name\n").assert_code(0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("query-status") && text.contains("query-name"), "the first session kept: {text:?}");
}

#[test]
fn the_shell_log_never_follows_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let log = dir.path().join("session.log");
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    let out = piped_shell(&["-l", log.to_str().unwrap()], "query-status\n");
    out.assert_code(2);
    assert!(out.stderr.contains("symbolic link"), "{:?}", out.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "not truncated, not written");
}

/// A shell on a pty, against the simulator, with `home` as HOME.
fn pty_shell(home: &Path) -> Pty {
    let mut sh = Pty::spawn(&["shell", "--sim"], home, &[]);
    sh.prompt();
    sh
}

fn history(home: &Path) -> PathBuf {
    home.join(".qmp-shell_history")
}

#[test]
fn the_history_is_private_plain_and_read_by_pythons_readline() {
    let home = tempfile::tempdir().unwrap();
    let mut sh = pty_shell(home.path());
    sh.line("query-name");
    sh.line("query-status");
    sh.send("\x04");
    assert!(sh.wait().success());
    let path = history(home.path());
    assert_eq!(mode(&path), 0o600);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "query-name\nquery-status\n", "no header line");
    // Python's qmp-shell loads it with readline: exactly our two entries, nothing stray.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import readline, sys; readline.read_history_file(sys.argv[1]); \
             n = readline.get_current_history_length(); \
             print(n, *[readline.get_history_item(i) for i in range(1, n + 1)], sep='|')",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2|query-name|query-status");
}

#[test]
fn an_older_history_with_a_header_is_tidied_and_kept() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(history(home.path()), "#V2\nquery-version\n").unwrap();
    let mut sh = pty_shell(home.path());
    sh.line("query-name");
    sh.send("\x04");
    assert!(sh.wait().success());
    assert_eq!(std::fs::read_to_string(history(home.path())).unwrap(), "query-version\nquery-name\n");
}

#[test]
fn the_history_never_follows_a_planted_symlink() {
    let home = tempfile::tempdir().unwrap();
    let victim = home.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, history(home.path())).unwrap();
    let mut sh = Pty::spawn(&["shell", "--sim"], home.path(), &[]);
    sh.expect("not using the history");
    sh.prompt();
    sh.line("query-name");
    sh.send("\x04");
    assert!(sh.wait().success());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn sigterm_and_sighup_end_the_shell_as_ctrl_d_does() {
    for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGHUP, 129)] {
        let home = tempfile::tempdir().unwrap();
        let mut sh = pty_shell(home.path());
        kill(Pid::from_raw(sh.child.id() as i32), signal).unwrap();
        assert_eq!(sh.wait().code(), Some(code), "{signal}");
        sh.expect(&format!("ended by {signal}"));
    }
}

/// The pid of `parent`'s child process, once it has one.
fn child_of(parent: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children =
            std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no child process");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True once `pid` has exited (gone, or a zombie waiting for its reaper).
fn has_exited(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) => {
                return true
            }
            Ok(_) if Instant::now() > deadline => return false,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn launch_dirs(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("qmp-launch-"))
        .collect()
}

fn launch(tmp: &Path) -> (Pty, u32) {
    let mut sh = Pty::spawn(
        &["launch", "--", "qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none"],
        tmp,
        &[("TMPDIR", tmp)],
    );
    sh.expect("Connected to QEMU 7.");
    sh.prompt();
    let qemu = child_of(sh.child.id());
    assert_eq!(launch_dirs(tmp).len(), 1);
    (sh, qemu)
}

#[test]
fn sigterm_and_sighup_end_qmp_launch_with_qemu_stopped_and_the_socket_removed() {
    for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGHUP, 129)] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut sh, qemu) = launch(tmp.path());
        kill(Pid::from_raw(sh.child.id() as i32), signal).unwrap();
        assert_eq!(sh.wait().code(), Some(code), "{signal}");
        assert!(has_exited(qemu, Duration::from_secs(5)), "QEMU {qemu} still runs after {signal}");
        assert!(launch_dirs(tmp.path()).is_empty(), "socket directory left behind after {signal}");
    }
}

#[test]
fn a_killed_qmp_launch_leaves_no_orphan_qemu() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut sh, qemu) = launch(tmp.path());
    kill(Pid::from_raw(sh.child.id() as i32), Signal::SIGKILL).unwrap();
    sh.wait();
    assert!(has_exited(qemu, Duration::from_secs(5)), "QEMU {qemu} runs on as an orphan");
}
