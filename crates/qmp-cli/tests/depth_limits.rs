//! Arguments nested past the limit (1023 levels counting the arguments object: what QEMU's
//! 1024 leave once the request object is around them) are a usage error, not a crash; at the
//! limit they are sent and answered. Before the limit existed,
//! `qmp x a.a.….a=1` with ~60,000 levels aborted the binary with a stack overflow (exit 134),
//! and ~15,000 the shell (its worker thread has a smaller stack). The real binary, against its
//! in-process simulator (`--sim`), so that no QEMU is needed.
//!
//! One argument may hold at most 128 KiB on Linux (`MAX_ARG_STRLEN`), so the deepest keys
//! here are written with empty parts (`....=1`, one byte a level, as qmp-shell allows) and the
//! deepest literals left unclosed (the limit is met long before their end).

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use support::{command, finish, qmp, Output};

/// The deepest arguments the binary sends (its `args::MAX_DEPTH`), counting the arguments
/// object as the first level.
const LIMIT: usize = 1023;

/// A dotted key of `n` parts named `a`.
fn dotted(n: usize) -> String {
    vec!["a"; n].join(".")
}

/// `n` nested lists around `1`.
fn nested(n: usize) -> String {
    format!("{}1{}", "[".repeat(n), "]".repeat(n))
}

/// Exit code 2 and the limit named, one line on stderr.
#[track_caller]
fn assert_usage_error(out: &Output) {
    out.assert_code(2);
    assert!(out.stderr.contains("deeper than 1023 levels"), "{:.300}", out.stderr);
    assert!(out.stderr.len() < 300, "a short message, not the argument back: {:.300}", out.stderr);
}

/// Sent, and answered: within QEMU's limit, the simulator (as QEMU) reads the request and
/// answers `x` with CommandNotFound (exit 1), never a JSON nesting error without an id.
#[track_caller]
fn assert_sent(out: &Output) {
    out.assert_code(1);
    assert!(out.stderr.starts_with("CommandNotFound"), "{:.300}", out.stderr);
}

fn one_shot(args: &[&str]) -> Output {
    qmp(&[&["--sim", "--timeout", "3", "x"][..], args].concat())
}

#[test]
fn deeply_dotted_key_is_a_usage_error_not_a_stack_overflow() {
    let empty_parts = ".".repeat(100_000 - 1);
    assert_usage_error(&one_shot(&[&format!("{empty_parts}=1")]));
    assert_usage_error(&one_shot(&[&format!("--{empty_parts}=1")]));
    assert_usage_error(&one_shot(&[&format!("--{empty_parts}")]));
    assert_usage_error(&one_shot(&[&format!("{}=1", dotted(60_000))]));
    assert_usage_error(&one_shot(&[&format!("{}=1", dotted(LIMIT + 1))]));
}

#[test]
fn a_dotted_key_at_the_limit_is_sent() {
    assert_sent(&one_shot(&[&format!("{}=1", dotted(LIMIT))]));
}

#[test]
fn deeply_nested_literal_is_a_usage_error_not_a_stack_overflow() {
    assert_usage_error(&one_shot(&[&format!("x={}", "[".repeat(100_000))]));
    assert_usage_error(&one_shot(&[&format!("x={}", nested(60_000))]));
    assert_usage_error(&one_shot(&[&format!("x={}", "{'a':".repeat(20_000))]));
    assert_usage_error(&one_shot(&[&format!("x={}", nested(LIMIT))]));
    // The key's parts and the literal's levels count together.
    assert_usage_error(&one_shot(&[&format!("{}={}", dotted(LIMIT - 10), nested(11))]));
}

#[test]
fn a_nested_literal_at_the_limit_is_sent() {
    assert_sent(&one_shot(&[&format!("x={}", nested(LIMIT - 1))]));
    assert_sent(&one_shot(&[&format!("{}={}", dotted(LIMIT - 10), nested(10))]));
}

#[test]
fn deep_json_in_args_is_a_usage_error_not_a_stack_overflow() {
    // Deeper than serde_json's 128 levels, JSON is read by the Python-literal parser.
    assert_usage_error(&one_shot(&["--args", &format!(r#"{{"a": {}}}"#, "[".repeat(100_000))]));
    assert_usage_error(&one_shot(&[&format!(r#"--args={{"a": {}}}"#, nested(60_000))]));
    assert_usage_error(&one_shot(&["--args", &format!(r#"{{"a": {}}}"#, nested(LIMIT))]));
    assert_sent(&one_shot(&["--args", &format!(r#"{{"a": {}}}"#, nested(LIMIT - 1))]));
}

#[test]
fn deep_lines_in_the_shell_are_errors_not_a_stack_overflow() {
    let lines = [
        format!("x {}=1", dotted(100_000)),
        format!("x v={}", nested(100_000)),
        format!("x v={}", "{'a':".repeat(100_000)),
        format!("transaction( a {}=1 )", dotted(100_000)),
        // At the limit: sent, and answered.
        format!("!x v={}", nested(LIMIT - 1)),
        "query-status".to_owned(),
    ];
    let mut child = command(&["shell", "--sim"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = lines.join("\n") + "\n";
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = finish(child, Duration::from_secs(20));
    out.assert_code(0);
    assert!(!out.stderr.contains("overflow"), "{:.300}", out.stderr);
    assert_eq!(out.stderr.matches("deeper than 1023 levels").count(), 4, "{:.2000}", out.stderr);
    assert!(out.stdout.contains("CommandNotFound"), "{:.2000}", out.stdout);
    assert!(out.stdout.contains("\"status\": \"running\""), "the shell went on: {:.2000}", out.stdout);
}
