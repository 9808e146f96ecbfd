//! The body of the `pyliteral` fuzz target (`fuzz/fuzz_targets/pyliteral.rs` includes this
//! file, and `crate::pyliteral`'s tests run it over generated inputs): the Python-literal
//! parser qmp-shell's values fall back to.
//!
//! The input is text (invalid UTF-8 replaced). It checks, for any input:
//! - nothing panics, and nothing overflows the stack (the parser keeps its own stack, and
//!   refuses nesting past `MAX_DEPTH` as `TooDeep`);
//! - a literal read nests at most `MAX_DEPTH` levels and re-serialises: its JSON reads back,
//!   through this parser and (when shallow enough) serde_json, as the same value;
//! - it agrees with serde_json on JSON objects and arrays, JSON being Python with lower-case
//!   names, except where Python itself differs: `\/` (Python keeps the backslash), a
//!   surrogate pair written as two `\u` escapes (two lone surrogates in Python, refused
//!   here), and integers beyond 64 bits (refused here, rounded by serde_json).
#![allow(dead_code)] // each binary that includes this uses a different part

use serde_json::Value;

use crate::args::{nesting, MAX_DEPTH};
use crate::pyliteral::{parse, LitError};

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    check(&String::from_utf8_lossy(data));
}

/// Checks one text.
pub fn check(text: &str) {
    let ours = parse(text);
    if let Ok(v) = &ours {
        assert!(nesting(v) <= MAX_DEPTH, "{text:?} read {} deep", nesting(v));
        let json = serde_json::to_string(v).expect("a value serialises");
        let again =
            parse(&json).unwrap_or_else(|e| panic!("{json} (from {text:?}) does not read back: {e:?}"));
        assert!(same(v, &again), "{json} read back as {again}");
        if nesting(v) < 128 {
            let by_serde: Value = serde_json::from_str(&json).expect("serde_json reads its own output");
            assert!(same(v, &by_serde), "{json} is {by_serde} to serde_json");
        }
    }
    if text.starts_with(['{', '[']) && !text.contains("\\/") {
        if let Ok(reference) = serde_json::from_str::<Value>(text) {
            match &ours {
                Ok(v) => assert!(same(v, &reference), "{text:?}: ours {v}, serde_json {reference}"),
                Err(LitError::NotJson(why))
                    if why.contains("beyond 64 bits") || why.contains("surrogate") => {}
                Err(e) => panic!("{text:?}: serde_json reads {reference}; ours: {e:?}"),
            }
        }
    }
}

/// Equal JSON values, floats allowed the last-digit difference of serde_json's default float
/// reading (and 0 equal to -0, an integer to Python and a float to serde_json).
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

/// Pieces of Python's literal syntax, for generated inputs.
pub const PIECES: &[&str] = &[
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    " ",
    "\n",
    "\t",
    "\\\n",
    "#c\n",
    "'",
    "\"",
    "'''",
    "\\",
    "r'",
    "b'",
    "f'",
    "u'",
    "Rb\"",
    "True",
    "False",
    "None",
    "true",
    "false",
    "null",
    "x",
    "1",
    "0",
    "-",
    "+",
    "0x1f",
    "0o7",
    "0b1",
    "1_0",
    "007",
    "1.5e-3",
    ".5",
    "5.",
    "1e",
    "1j",
    "2J",
    "...",
    "'a'",
    "\"b c\"",
    "'\\x41'",
    "'\\u00e9'",
    "'\\U0001F600'",
    "'\\N{BULLET}'",
    "'\\ud800'",
    "'\\101'",
    "'\\q'",
    "{1, 2}",
    "{'k': 1}",
    "[1, 2,]",
    "(1,)",
    "()",
    "99999999999999999999999999999999999999999",
    "1e999",
    "\"\\/\"",
    "é",
    "\u{2028}",
];
