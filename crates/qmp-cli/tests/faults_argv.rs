//! Random command lines to the built binary: whatever the words (options in any order,
//! missing or odd values, argument syntax of every kind, broken literals, invalid UTF-8),
//! `qmp` must end by itself with one of its documented exit codes (0 to 4), never a panic,
//! an abort, a signal or a hang. Words are drawn from the binary's own vocabulary (so the
//! cases reach past the option parser) and mixed with arbitrary text. `sim` and `launch`
//! are left out: they serve or start QEMU until told to stop, by design.

mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Stdio;
use std::time::Duration;

use proptest::prelude::*;

const WORDS: &[&str] = &[
    "-s",
    "--socket",
    "--path=/nonexistent/q.sock",
    "/nonexistent/q.sock",
    "unix:",
    "tcp:",
    "localhost:1",
    "--timeout",
    "0",
    "0.5",
    "-1",
    "nan",
    "1e999",
    "--pretty",
    "--compact",
    "--sim",
    "-h",
    "--help",
    "-V",
    "--version",
    "hmp",
    "--cpu-index",
    "info status",
    "shell",
    "-H",
    "-p",
    "-v",
    "-N",
    "-l",
    "help",
    "query-status",
    "query-name",
    "query-commands",
    "stop",
    "cont",
    "quit",
    "x",
    "",
    "--",
    "-",
    "=",
    "a=1",
    "a=",
    "=1",
    "a.b.c=2",
    "a..b=1",
    ".a=1",
    "a.=1",
    "a=1.5",
    "a=-0",
    "a=true",
    "a=NULL",
    "a=[1, 2]",
    "a={'b': True}",
    "a=[[[",
    "a={\"b\":",
    "a='x",
    "--args",
    "{}",
    "[]",
    "{\"a\": 1}",
    "{'a': None}",
    "--key",
    "--key=value",
    "--args={",
    "a=\u{e9}",
    "a=\u{202e}",
    "a=0x1F",
    "a=1_000",
    "a=99999999999999999999999",
];

/// One word: from the vocabulary, arbitrary text, or bytes that are not UTF-8.
fn word() -> impl Strategy<Value = OsString> {
    prop_oneof![
        6 => (0..WORDS.len()).prop_map(|i| OsString::from(WORDS[i])),
        2 => "[^\\x00]{0,24}".prop_map(OsString::from),
        1 => prop::collection::vec(1u8..=255, 0..12).prop_map(OsString::from_vec),
    ]
}

fn run(argv: &[OsString]) -> support::Output {
    // A `-l FILE` among the words writes FILE: in a scratch directory, not the source tree.
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = support::command(&[]);
    cmd.current_dir(scratch.path())
        .args(argv)
        .env("QMP_TIMEOUT", "5")
        .env("HOME", scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    support::finish(cmd.spawn().unwrap(), Duration::from_secs(20))
}

fn assert_documented_end(argv: &[OsString], out: &support::Output) {
    let shown: Vec<_> = argv.iter().map(|w| w.to_string_lossy()).collect();
    assert!(matches!(out.code, Some(0..=4)), "{shown:?} ended with {:?}: {:?}", out.code, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{shown:?} panicked: {:?}", out.stderr);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_command_lines_end_with_a_documented_exit_code(
        mut argv in prop::collection::vec(word(), 0..8),
        target in 0..3u8,
    ) {
        // Most cases name a target, so that they get past "no address" to the command.
        match target {
            0 => argv.insert(0, "--sim".into()),
            1 => { argv.insert(0, "/nonexistent/q.sock".into()); argv.insert(0, "-s".into()); }
            _ => {}
        }
        argv.retain(|w| w != "sim" && w != "launch");
        let out = run(&argv);
        assert_documented_end(&argv, &out);
    }
}

#[test]
fn huge_and_pathological_arguments_end_with_a_documented_exit_code() {
    // Linux takes at most 128 KiB in one argument.
    let long = "a".repeat(120_000);
    let cases: Vec<Vec<OsString>> = vec![
        vec!["--sim".into(), "x".into(), format!("k={long}").into()],
        vec!["--sim".into(), long.clone().into()],
        vec!["--sim".into(), "x".into(), format!("{}=1", "a.".repeat(50_000)).into()],
        vec!["--sim".into(), "x".into(), format!("k={}", "[".repeat(50_000)).into()],
        vec!["--sim".into(), "x".into(), "--args".into(), "[".repeat(50_000).into()],
        vec!["--sim".into(), "x".into(), format!("k={}{}", "[".repeat(2000), "]".repeat(2000)).into()],
        vec!["--sim".into(), "hmp".into(), long.into()],
        vec!["--timeout".into(), "1".repeat(400).into(), "--sim".into(), "query-status".into()],
    ];
    for argv in cases {
        let out = run(&argv);
        assert_documented_end(&argv[..argv.len().min(3)], &out);
    }
}
