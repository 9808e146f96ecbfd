//! The mistakes a new user makes first, each through the real binary: what `qmp` says must
//! point at the fix.

mod support;

use std::os::unix::net::UnixListener;

use support::qmp;

#[test]
fn an_option_after_the_command_says_options_go_first_with_the_line_corrected() {
    let out = qmp(&["query-status", "-s", "/run/vm.qmp"]);
    out.assert_code(2);
    assert!(out.stderr.contains("options go before COMMAND"), "{}", out.stderr);
    assert!(out.stderr.contains("qmp -s /run/vm.qmp query-status"), "{}", out.stderr);
    let out = qmp(&["--sim", "block-job-set-speed", "device=j", "--pretty", "speed=1"]);
    out.assert_code(2);
    assert!(out.stderr.contains("qmp --sim --pretty block-job-set-speed device=j speed=1"), "{}", out.stderr);
    let out = qmp(&["--sim", "query-status", "--timeout", "5"]);
    assert!(out.stderr.contains("qmp --sim --timeout 5 query-status"), "{}", out.stderr);
    // An argument the command has, written as a long option, is an argument: sent, and the
    // (simulated) QEMU answers it.
    let out = qmp(&["--sim", "block-job-set-speed", "--device=j", "--speed=1"]);
    assert!(!out.stderr.contains("options go before"), "{}", out.stderr);
    out.assert_code(1);
    assert!(out.stderr.contains("DeviceNotActive") || out.stderr.contains("j"), "{}", out.stderr);
}

#[test]
fn an_empty_command_name_is_a_usage_error() {
    let out = qmp(&["--sim", ""]);
    out.assert_code(2);
    assert!(out.stderr.contains("command name is empty"), "{}", out.stderr);
}

#[test]
fn a_negative_number_is_read_as_a_value_and_refused_for_what_it_is() {
    for option in ["--timeout", "--wait"] {
        let out = qmp(&[option, "-1", "--sim", "query-status"]);
        out.assert_code(2);
        assert!(out.stderr.contains("0 or more"), "{option}: {}", out.stderr);
        assert!(!out.stderr.contains("unexpected argument"), "{option}: {}", out.stderr);
    }
}

#[test]
fn a_connection_error_says_what_is_at_the_path_and_how_to_start_qemu() {
    let dir = qmp_testkit::tempdir();
    let missing = dir.path().join("missing.sock");
    let out = qmp(&["-s", missing.to_str().unwrap(), "query-status"]);
    out.assert_code(3);
    assert!(out.stderr.contains("does not exist") && out.stderr.contains("-qmp unix:"), "{}", out.stderr);
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let out = qmp(&["-s", file.to_str().unwrap(), "query-status"]);
    out.assert_code(3);
    assert!(out.stderr.contains("is a regular file, not a socket"), "{}", out.stderr);
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let out = qmp(&["-s", stale.to_str().unwrap(), "query-status"]);
    out.assert_code(3);
    assert!(out.stderr.contains("nothing accepts connections"), "{}", out.stderr);
    let out = qmp(&["ga", "-s", missing.to_str().unwrap(), "ping"]);
    out.assert_code(3);
    assert!(
        out.stderr.contains("virtserialport") || out.stderr.contains("-chardev socket"),
        "{}",
        out.stderr
    );
}

#[test]
fn help_has_no_wording_that_means_nothing_to_a_user() {
    let out = qmp(&["--help"]);
    out.assert_code(0);
    assert!(!out.stdout.contains("seed"), "{}", out.stdout);
}
