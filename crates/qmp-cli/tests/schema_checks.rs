//! The one-shot command checks its arguments against the live schema before sending (exit 2,
//! naming the problem), with `--no-check` to send them as they are; against a real QEMU that
//! each test starts, and the simulator.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use support::{qmp, Qemu};

/// Runs `qmp ARGS` with `script` on its stdin (the shell reads a piped script line by line).
fn with_stdin(args: &[&str], script: &str) -> support::Output {
    let mut child = support::command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    support::finish(child, Duration::from_secs(20))
}

#[test]
fn an_unknown_member_is_a_usage_error_naming_it() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "blockdev-add", "driver=null-co", "node-name=n0", "bogus=1"]);
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "qmp: blockdev-add: unknown member 'bogus' (--no-check sends it anyway)\n");
    // Nothing was sent: the same node can be added now.
    let out = qmp(&["-s", qemu.sock(), "blockdev-add", "driver=null-co", "node-name=n0"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "{}\n");
    let nodes = qmp(&["-s", qemu.sock(), "query-named-block-nodes"]);
    nodes.assert_code(0);
    assert!(nodes.stdout.contains("\"node-name\":\"n0\""), "{nodes:?}");
}

#[test]
fn no_check_sends_it_and_qemu_answers() {
    let qemu = Qemu::start();
    let out =
        qmp(&["-s", qemu.sock(), "--no-check", "blockdev-add", "driver=null-co", "node-name=n0", "bogus=1"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "GenericError: Parameter 'bogus' is unexpected\n");
}

#[test]
fn a_wrong_type_and_a_bad_enum_value_are_named() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "blockdev-add", "driver=null-co", "node-name=n0", "size=big"]);
    out.assert_code(2);
    assert_eq!(
        out.stderr,
        "qmp: blockdev-add: 'size': expected int, got string \"big\" (--no-check sends it anyway)\n"
    );
    let out =
        qmp(&["-s", qemu.sock(), "blockdev-add", "driver=null-co", "node-name=n0", "detect-zeroes=maybe"]);
    out.assert_code(2);
    assert!(
        out.stderr.starts_with("qmp: blockdev-add: 'detect-zeroes': 'maybe' is not one of off|on|unmap"),
        "{out:?}"
    );
    // A nested path, and a tag naming no variant.
    let out = qmp(&["-s", qemu.sock(), "blockdev-add", "driver=raw", "node-name=r0", "file.driver=nul-co"]);
    out.assert_code(2);
    assert!(out.stderr.starts_with("qmp: blockdev-add: 'file.driver': no variant 'nul-co'"), "{out:?}");
    let out = qmp(&["-s", qemu.sock(), "blockdev-add", "driver=file", "node-name=f0"]);
    out.assert_code(2);
    assert!(out.stderr.contains("missing required member 'filename' (string)"), "{out:?}");
}

#[test]
fn unknown_commands_and_commands_without_arguments_go_to_qemu() {
    let qemu = Qemu::start();
    // Not pre-empted: QEMU's own CommandNotFound, exit 1, as without the check.
    let out = qmp(&["-s", qemu.sock(), "no-such-command", "x=1"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "CommandNotFound: The command no-such-command has not been found\n");
    // Without arguments there is nothing to check (and no schema to fetch).
    let out = qmp(&["-s", qemu.sock(), "block-job-cancel"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "GenericError: Parameter 'device' is missing\n");
    // hmp is not checked.
    let out = qmp(&["-s", qemu.sock(), "hmp", "info", "status"]);
    out.assert_code(0);
}

#[test]
fn the_simulator_is_checked_too() {
    let out = qmp(&["--sim", "blockdev-add", "driver=null-co", "node-name=n0", "bogus=1"]);
    out.assert_code(2);
    assert!(out.stderr.contains("unknown member 'bogus'"), "{out:?}");
    let out = qmp(&["--sim", "blockdev-add", "driver=null-co", "node-name=n0"]);
    out.assert_code(0);
    let out = qmp(&["--sim", "--no-check", "blockdev-add", "driver=null-co", "node-name=n0", "bogus=1"]);
    out.assert_code(1);
}

#[test]
fn the_shell_checks_each_line_unless_no_check() {
    let qemu = Qemu::start();
    let script = "block-dirty-bitmap-add node=x\nblockdev-add driver=null-co node-name=n0 filename=/x\n";
    let out = with_stdin(&["-s", qemu.sock(), "shell"], script);
    out.assert_code(0);
    assert!(out.stderr.contains("Not sent: missing required argument 'name' (string)"), "{out:?}");
    assert!(
        out.stderr.contains(
            "Not sent: unknown argument 'filename' (a member when driver=file, driver=host_cdrom, driver=host_device)"
        ),
        "{out:?}"
    );
    assert!(!out.stdout.contains("\"error\""), "{out:?}");
    let out = with_stdin(&["-s", qemu.sock(), "--no-check", "shell"], script);
    out.assert_code(0);
    assert!(!out.stderr.contains("Not sent"), "{out:?}");
    assert!(out.stdout.contains("Parameter 'name' is missing"), "{out:?}");
    assert!(out.stdout.contains("Parameter 'filename' is unexpected"), "{out:?}");
}
