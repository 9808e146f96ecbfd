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

/// The members of each object of `json`, in the order written, depth first.
fn key_order(json: &str) -> Vec<Vec<String>> {
    fn walk(v: &serde_json::Value, out: &mut Vec<Vec<String>>) {
        match v {
            serde_json::Value::Object(m) => {
                out.push(m.keys().cloned().collect());
                m.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json:?}")), &mut out);
    out
}

/// What QEMU itself writes for `command`, read off a raw socket.
fn raw_return(socket: &std::path::Path, command: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "{{\"execute\":\"qmp_capabilities\"}}{{\"execute\":\"{command}\"}}").unwrap();
    let mut lines = BufReader::new(s).lines();
    lines.next(); // the greeting
    lines.next(); // qmp_capabilities's reply
    let reply: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    reply["return"].to_string()
}

#[test]
fn json_comes_out_in_qemus_member_order_from_qemu_and_from_the_simulator() {
    let qemu = qmp_testkit::Peer::qemu(2);
    for command in ["query-version", "query-status", "query-kvm", "query-machines"] {
        let want = key_order(&raw_return(qemu.socket(1), command));
        let out = qmp(&["-s", qemu.socket(0).to_str().unwrap(), command]);
        out.assert_code(0);
        assert_eq!(key_order(&out.stdout), want, "{command}: {}", out.stdout);
        let pretty = qmp(&["--pretty", "-s", qemu.socket(0).to_str().unwrap(), command]);
        assert_eq!(key_order(&pretty.stdout), want, "{command} --pretty");
    }
    // The simulator answers in QEMU's order too.
    for command in ["query-version", "query-status"] {
        let want = key_order(&raw_return(qemu.socket(1), command));
        let out = qmp(&["--sim", command]);
        assert_eq!(key_order(&out.stdout), want, "--sim {command}: {}", out.stdout);
    }
}

/// `scripts/run.sh`, the README's main job, with no QEMU given: the simulator, said on stderr;
/// the first build's progress shown, a build with nothing to do quiet.
#[test]
fn run_sh_says_it_uses_the_simulator_and_shows_the_first_build() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built_before = root.join("target/release/qmp").exists();
    let run = || {
        let out = std::process::Command::new("bash")
            .arg(root.join("scripts/run.sh"))
            .env_remove("QMP_SOCKET")
            .env_remove("QMP_PATH")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"status\"") && stdout.contains("running"), "{stdout}");
    assert!(stderr.contains("using the built-in simulated QEMU"), "{stderr}");
    if !built_before {
        assert!(stderr.contains("building qmp") && stderr.contains("Compiling"), "{stderr}");
    }
    let (code, _, stderr) = run();
    assert_eq!(code, Some(0));
    assert!(
        !stderr.contains("building qmp") && !stderr.contains("Compiling"),
        "a second run builds nothing: {stderr}"
    );
}
