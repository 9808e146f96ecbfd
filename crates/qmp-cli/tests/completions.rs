//! `qmp completions SHELL` and `qmp man`: generated from the same clap definition as the
//! parser, checked by the shells themselves and by man.

mod support;

use std::process::{Command, Stdio};

use support::qmp;

/// Runs `program args` with `input` on stdin; returns (success, stderr).
fn check(program: &str, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn bash_accepts_the_completion_script_and_it_knows_the_commands() {
    let out = qmp(&["completions", "bash"]);
    out.assert_code(0);
    for word in ["shell", "launch", "sim", "hmp", "ga", "--socket", "--timeout"] {
        assert!(out.stdout.contains(word), "{word} missing from the bash script");
    }
    let (ok, err) = check("bash", &["-n"], &out.stdout);
    assert!(ok, "bash -n: {err}");
}

#[test]
fn zsh_and_fish_accept_theirs_when_installed_and_every_shell_has_one() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = qmp(&["completions", shell]);
        out.assert_code(0);
        assert!(out.stdout.len() > 500, "{shell}: {:?}", out.stdout);
    }
    if installed("zsh") {
        let (ok, err) = check("zsh", &["-n"], &qmp(&["completions", "zsh"]).stdout);
        assert!(ok, "zsh -n: {err}");
    }
    if installed("fish") {
        let (ok, err) = check("fish", &["--no-execute"], &qmp(&["completions", "fish"]).stdout);
        assert!(ok, "fish --no-execute: {err}");
    }
    qmp(&["completions", "tcsh"]).assert_code(2);
}

#[test]
fn man_renders_the_page_without_warnings() {
    let out = qmp(&["man"]);
    out.assert_code(0);
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH qmp 1"),
        "{:?}",
        &out.stdout[..100.min(out.stdout.len())]
    );
    let dir = qmp_testkit::tempdir();
    let page = dir.path().join("qmp.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let rendered = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("man is needed (scripts/install-deps.sh installs man-db)");
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    // Bold and underline come as overstrikes (`X\bX`, `_\bX`) when not on a terminal.
    let mut text = String::new();
    for c in String::from_utf8_lossy(&rendered.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    assert!(rendered.status.success(), "man failed: {warnings}");
    assert_eq!(warnings, "", "man's warnings");
    for needle in ["qmp", "--socket", "--timeout", "Exit codes"] {
        assert!(text.contains(needle), "{needle} missing from the rendered page");
    }
}

#[test]
fn version_says_what_a_bug_report_needs() {
    let out = qmp(&["--version"]);
    out.assert_code(0);
    assert!(out.stdout.starts_with(&format!("qmp {}", env!("CARGO_PKG_VERSION"))), "{}", out.stdout);
    assert!(out.stdout.contains("commit "), "built in a git checkout: {}", out.stdout);
    assert!(out.stdout.contains("QEMU 7.2.0 to 9.2.0"), "{}", out.stdout);
    assert!(out.stdout.contains("qemu-ga"), "{}", out.stdout);
}
