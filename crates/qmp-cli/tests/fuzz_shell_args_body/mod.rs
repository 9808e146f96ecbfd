//! The body of the `shell_args` fuzz target (`fuzz/fuzz_targets/shell_args.rs` includes this
//! file, and `crate::shell::parse`'s tests run it over generated inputs): qmp-shell's argument
//! syntax as the shell reads a line (`tokenize`, `parse_key_values`, `parse_json_line`,
//! `LineParser`) and as the one-shot command reads its words (`parse_command_line`,
//! `parse_value`, `insert_dotted`).
//!
//! The input is text (invalid UTF-8 replaced), one shell line per `\n`. It checks, for any
//! input:
//! - nothing panics, whatever the line (transactions and all, through one `LineParser`);
//! - tokenizing is stable: the tokens joined by spaces tokenize to the same tokens;
//! - whatever is built nests at most `MAX_DEPTH` levels (plus the arguments object), and
//!   re-serialises: its JSON reads back as the same value;
//! - `parse_value` agrees with serde_json on JSON objects and arrays (but for integers beyond
//!   64 bits, which it refuses rather than round);
//! - `insert_dotted` puts the value where the key's path says, in as many levels as the key
//!   has parts, or refuses a key deeper than `MAX_DEPTH`.
#![allow(dead_code)] // each binary that includes this uses a different part

use serde_json::{json, Map, Value};

use crate::args::{insert_dotted, nesting, parse_command_line, parse_value, MAX_DEPTH};
use crate::shell::parse::{parse_json_line, parse_key_values, tokenize, LineParser, Parsed};

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut shell = LineParser::new();
    for line in text.split('\n') {
        check_line(&mut shell, line);
    }
}

/// Checks one line through every reader.
pub fn check_line(shell: &mut LineParser, line: &str) {
    match shell.parse(line) {
        Ok(Parsed::Request(req)) => check_args(&req.to_json(), 1),
        Ok(Parsed::Nothing | Parsed::Help(_)) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(req) = parse_json_line(line) {
        check_args(&req.to_json(), 1);
    }
    if let Ok(tokens) = tokenize(line) {
        assert!(tokens.iter().all(|t| !t.is_empty()), "an empty token from {line:?}");
        assert_eq!(tokenize(&tokens.join(" ")), Ok(tokens.clone()), "tokens of {line:?} do not re-tokenize");
        if let Ok(args) = parse_key_values(&tokens) {
            check_args(&Value::Object(args), 0);
        }
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match parse_command_line(&words) {
        Ok(args) => check_args(&Value::Object(args), 0),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    for word in &words {
        let (key, text) = word.split_once('=').unwrap_or((word, word));
        check_value(text);
        check_insert(key);
    }
}

/// A value built from arguments: bounded in depth (`around` levels of request around the
/// arguments object), and it re-serialises.
pub fn check_args(v: &Value, around: usize) {
    let depth = nesting(v);
    assert!(depth <= MAX_DEPTH + 1 + around, "arguments nested {depth} deep");
    round_trip(v);
}

/// `parse_value` on one text: a value that re-serialises, agreeing with serde_json on JSON.
pub fn check_value(text: &str) {
    let ours = parse_value(text);
    if let Ok(v) = &ours {
        assert!(nesting(v) <= MAX_DEPTH, "{text:?} nested {} deep", nesting(v));
        round_trip(v);
    }
    if text.starts_with(['{', '[']) {
        if let Ok(reference) = serde_json::from_str::<Value>(text) {
            match &ours {
                Ok(v) => assert!(same(v, &reference), "{text:?}: ours {v}, serde_json {reference}"),
                Err(e) => {
                    assert!(e.contains("beyond 64 bits"), "{text:?}: serde_json reads {reference}; ours: {e}")
                }
            }
        }
    }
}

/// `insert_dotted` on a fresh object: the value lands at the key's path.
pub fn check_insert(key: &str) {
    let mut map = Map::new();
    let parts: Vec<&str> = key.split('.').collect();
    match insert_dotted(&mut map, key, json!("leaf")) {
        Ok(()) => {
            assert!(parts.len() <= MAX_DEPTH, "a key of {} parts taken", parts.len());
            let mut node = &Value::Object(map);
            for part in &parts {
                node = node.get(part).unwrap_or_else(|| panic!("{key:?}: no {part:?} on the path"));
            }
            assert_eq!(node, &json!("leaf"), "{key:?}");
        }
        Err(e) => assert!(parts.len() > MAX_DEPTH, "{key:?} refused on a fresh object: {e}"),
    }
}

/// `v` printed as JSON reads back as `v`: through serde_json, or the Python-literal parser
/// when too deep for serde_json's reader, or member by member when too deep for that (a
/// request around arguments at the limit).
pub fn round_trip(v: &Value) {
    assert!(serde_json::to_string(v).is_ok(), "a value serialises");
    let mut values = vec![v];
    while let Some(v) = values.pop() {
        let depth = nesting(v);
        if depth > MAX_DEPTH {
            match v {
                Value::Array(items) => values.extend(items),
                Value::Object(members) => values.extend(members.values()),
                _ => {}
            }
            continue;
        }
        let text = serde_json::to_string(v).expect("a value serialises");
        let again = if depth < 128 {
            serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{text} does not read back: {e}"))
        } else {
            crate::pyliteral::parse(&text).unwrap_or_else(|e| panic!("{text} does not read back: {e:?}"))
        };
        assert!(same(v, &again), "{text} read back as {again}");
    }
}

/// Equal JSON values, floats allowed the last-digit difference of serde_json's default float
/// reading.
pub fn same(a: &Value, b: &Value) -> bool {
    let mut pairs = vec![(a, b)];
    while let Some((a, b)) = pairs.pop() {
        let equal = match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                x == y || (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
            }
            (Value::Array(x), Value::Array(y)) => {
                pairs.extend(x.iter().zip(y));
                x.len() == y.len()
            }
            (Value::Object(x), Value::Object(y)) => {
                let keys = x.len() == y.len() && x.keys().all(|k| y.contains_key(k));
                pairs.extend(x.iter().filter_map(|(k, v)| Some((v, y.get(k)?))));
                keys
            }
            _ => a == b,
        };
        if !equal {
            return false;
        }
    }
    true
}

/// Pieces of the syntax, for generated inputs: punctuation of keys, quotes and literals,
/// the shell's own words, numbers, and odd characters.
pub const PIECES: &[&str] = &[
    "=",
    ".",
    " ",
    "\t",
    "\n",
    "\"",
    "'",
    "\\",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    ":",
    ";",
    "!",
    "a",
    "b.c",
    "x=",
    "k=v",
    "transaction(",
    ")",
    "help",
    "--args",
    "--",
    "--f",
    "true",
    "False",
    "null",
    "None",
    "1",
    "-2.5e3",
    "1_000",
    "0x10",
    "1j",
    "99999999999999999999",
    "1e999",
    "'a b'",
    "\"x\\\"y\"",
    "\"\\u00e9\"",
    "{'a': 1}",
    "{\"a\": [1, 2]}",
    "[1, 'x', None]",
    "{1, 2}",
    "(1,)",
    "b'x'",
    "\\n",
    "é",
    "\u{3000}",
    "{\"execute\": \"x\", \"arguments\": {\"a\": 1}}",
    "{'execute': 'y'}",
    "[[[[",
    "]]]]",
    "a.a.a.a",
];
