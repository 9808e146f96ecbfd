//! Command arguments written on a command line, in qmp-shell's `key=value` syntax.
//!
//! `qmp device_add driver=virtio-net-pci id=net0 addr.bus=pci.0 opts={"a":1}`: each token is
//! `key=value`, split at the first `=`. The value is read as qmp-shell's `_parse_value` does:
//!
//! | value                                   | becomes                                          |
//! |-----------------------------------------|--------------------------------------------------|
//! | a Python `int()`: `42`, `-7`, `+1_000`  | a JSON integer (64-bit; larger is an error)      |
//! | `true` / `false`, in any case           | a boolean                                        |
//! | `null`, in any case                     | null (an addition: qmp-shell sends `"null"`)     |
//! | a decimal float: `1.5`, `-2e3`, `.5`    | a JSON number (an addition: qmp-shell sends a string) |
//! | starting with `{` or `[`: JSON          | that JSON value                                  |
//! | ... else a Python literal (`['a', 'b']`, `{'x': True}`, with `true`/`false`/`null` too) | its JSON form |
//! | anything else, and `{`/`[` text that parses as neither | the text, as a string             |
//!
//! A dotted key nests: `a.b=1 a.c=2` sends `{"a": {"b": 1, "c": 2}}`; the same key twice, or
//! a key used both as a value and as a parent, is an error. Each key starts from the top
//! (qmp-shell's `_cli_expr` has a bug there: after `a.b=1`, a later `c=2` lands in `a`). To send a text that would be read
//! as a number or boolean as a string, give the arguments as JSON (`--args`).
//!
//! The one-shot command also takes the seed tool's `--key=value` and `--flag` (true), and
//! `--args '{...}'` for the whole object: see [`parse_command_line`].
//!
//! Nesting is capped at [`MAX_DEPTH`] levels, what QEMU's own limit leaves: a dotted key of more parts, a
//! literal nested deeper, or a value that with its dotted key's objects would be, is an error
//! ([`ArgError::TooDeep`]), never a stack overflow. Nothing here recurses on the input's
//! depth; what does (serde_json's printing, cloning and dropping of a value) is bounded by it.

use std::fmt;

use serde_json::{Map, Value};

use crate::pyliteral::{self, LitError};

/// QEMU's JSON parser refuses nesting deeper than this (its `MAX_NESTING`), counting the
/// request object itself.
pub const QEMU_MAX_NESTING: usize = 1024;

/// The deepest nesting accepted in arguments from a command line or a shell line, counting the
/// `arguments` object as the first level: QEMU's limit less the request object around it, so
/// that whatever is accepted here is also accepted by QEMU once sent. A dotted key's parts
/// (`a.b.c=1` is three levels: the arguments object, `a` and `b`), and a literal's containers
/// below its key (`x=[[1]]` is three), add up.
pub const MAX_DEPTH: usize = QEMU_MAX_NESTING - 1;

/// Why command-line arguments could not be turned into a QMP `arguments` object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgError {
    /// A token without `=`.
    NotKeyValue(String),
    /// A dotted path where some key is both a value and a parent (`a=1 a.b=2`).
    LeafAndParent(String),
    /// The same key given twice.
    Duplicate(String),
    /// A value that parses but cannot be sent as JSON (a big integer, a Python set, ...).
    Unrepresentable {
        /// The key whose value it is.
        key: String,
        /// What the value is.
        what: String,
    },
    /// `--args` without a JSON object after it.
    ArgsNotObject(String),
    /// Nesting deeper than [`MAX_DEPTH`] levels: a dotted key, a literal, or both together.
    TooDeep {
        /// The key (for `--args`, the option's name), cut short when long.
        key: String,
    },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::NotKeyValue(t) => write!(f, "expected a key=value pair, got '{t}'"),
            ArgError::LeafAndParent(k) => write!(f, "cannot use \"{k}\" as both leaf and non-leaf key"),
            ArgError::Duplicate(k) => write!(f, "cannot set \"{k}\" multiple times"),
            ArgError::Unrepresentable { key, what } => {
                write!(f, "the value of \"{key}\" cannot be sent as JSON: {what}")
            }
            ArgError::ArgsNotObject(why) => write!(f, "--args needs a JSON object: {why}"),
            ArgError::TooDeep { key } => {
                write!(f, "\"{key}\" nests deeper than {MAX_DEPTH} levels, the limit")
            }
        }
    }
}

impl std::error::Error for ArgError {}

/// Builds a QMP `arguments` object from qmp-shell `key=value` tokens.
///
/// ```ignore
/// let args = parse_arguments(&["device=job0", "speed=1024", "opts.force=true"])?;
/// assert_eq!(Value::Object(args), json!({"device": "job0", "speed": 1024, "opts": {"force": true}}));
/// ```
#[allow(dead_code)] // the shell's line parser (crate::shell) calls it
pub fn parse_arguments<S: AsRef<str>>(tokens: &[S]) -> Result<Map<String, Value>, ArgError> {
    let mut map = Map::new();
    for token in tokens {
        add_key_value(&mut map, token.as_ref())?;
    }
    Ok(map)
}

/// Builds the arguments of the one-shot command: qmp-shell's `key=value`, plus the seed's
/// `--key=value` (the same value syntax) and `--flag` (true), and `--args JSON` or
/// `--args=JSON` giving an object whose members join the others.
pub fn parse_command_line<S: AsRef<str>>(tokens: &[S]) -> Result<Map<String, Value>, ArgError> {
    let mut map = Map::new();
    let mut tokens = tokens.iter().map(AsRef::as_ref);
    while let Some(token) = tokens.next() {
        if token == "--args" {
            let json = tokens.next().ok_or_else(|| ArgError::ArgsNotObject("nothing follows it".into()))?;
            add_object(&mut map, json)?;
        } else if let Some(json) = token.strip_prefix("--args=") {
            add_object(&mut map, json)?;
        } else if let Some(rest) = token.strip_prefix("--") {
            if rest.contains('=') {
                add_key_value(&mut map, rest)?;
            } else {
                insert_dotted(&mut map, rest, Value::Bool(true))?;
            }
        } else {
            add_key_value(&mut map, token)?;
        }
    }
    Ok(map)
}

/// Adds one `key=value` token.
fn add_key_value(map: &mut Map<String, Value>, token: &str) -> Result<(), ArgError> {
    let (key, text) = token.split_once('=').ok_or_else(|| ArgError::NotKeyValue(token.to_owned()))?;
    // A key too deep on its own is refused before its value is read.
    let parts = check_key_depth(key)?;
    let value = match read_value(text) {
        Ok(v) => v,
        Err(ValueError::Unrepresentable(what)) => {
            return Err(ArgError::Unrepresentable { key: key.to_owned(), what })
        }
        Err(ValueError::TooDeep) => return Err(too_deep(key)),
    };
    // The value sits below the key's last part: its own levels add to the parents'.
    if parts + nesting(&value) > MAX_DEPTH {
        return Err(too_deep(key));
    }
    insert_dotted(map, key, value)
}

/// Adds the members of a whole arguments object given with `--args`.
fn add_object(map: &mut Map<String, Value>, text: &str) -> Result<(), ArgError> {
    let value = match read_value(text) {
        Ok(Value::Object(obj)) => obj,
        Ok(other) => return Err(ArgError::ArgsNotObject(format!("got {}", kind_of(&other)))),
        Err(ValueError::Unrepresentable(what)) => return Err(ArgError::ArgsNotObject(what)),
        Err(ValueError::TooDeep) => return Err(too_deep("--args")),
    };
    for (key, v) in value {
        // Top-level members only: a member named "a.b" is a key with a dot, not a path.
        insert_path(map, &[key.as_str()], v)?;
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string (not valid JSON or Python)",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads one value the way qmp-shell's `_parse_value` does (see the module docs).
///
/// Errors name what the value is when it parses but cannot be sent, or that it nests deeper
/// than [`MAX_DEPTH`].
#[allow(dead_code)] // the tests and the shell_args fuzz target call it; the rest uses read_value
pub fn parse_value(text: &str) -> Result<Value, String> {
    read_value(text).map_err(|e| match e {
        ValueError::Unrepresentable(what) => what,
        ValueError::TooDeep => format!("a value nested deeper than {MAX_DEPTH} levels, the limit"),
    })
}

/// Why [`read_value`] gave no value.
enum ValueError {
    /// It parses but cannot be sent; the text says what it is.
    Unrepresentable(String),
    /// It nests deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl From<String> for ValueError {
    fn from(what: String) -> Self {
        ValueError::Unrepresentable(what)
    }
}

/// [`parse_value`], telling a value too deep apart from one that cannot be sent.
fn read_value(text: &str) -> Result<Value, ValueError> {
    if let Some(n) = python_int(text) {
        return Ok(n.map(Value::Number).ok_or_else(|| "an integer beyond 64 bits".to_owned())?);
    }
    if text.eq_ignore_ascii_case("true") {
        return Ok(Value::Bool(true));
    }
    if text.eq_ignore_ascii_case("false") {
        return Ok(Value::Bool(false));
    }
    if text.eq_ignore_ascii_case("null") {
        return Ok(Value::Null);
    }
    if let Some(f) = decimal_float(text) {
        return Ok(serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| "an infinite number".to_owned())?);
    }
    if text.starts_with(['{', '[']) {
        // serde_json refuses nesting deeper than 128 levels: such JSON is read by the Python
        // literal parser (JSON's names included), which goes to MAX_DEPTH.
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            if has_huge_integer(text) {
                // serde_json would have rounded it into a float.
                return Err(ValueError::Unrepresentable("an integer beyond 64 bits".into()));
            }
            return Ok(v);
        }
        match pyliteral::parse(text) {
            Ok(v) => return Ok(v),
            Err(LitError::NotJson(what)) => return Err(ValueError::Unrepresentable(what)),
            Err(LitError::TooDeep) => return Err(ValueError::TooDeep),
            Err(LitError::Syntax) => {}
        }
    }
    Ok(Value::String(text.to_owned()))
}

/// How many arrays and objects nest in `v` (`[[1]]` is two), counted without recursion.
pub fn nesting(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, above)) = stack.pop() {
        let level = above + 1;
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, level))),
            Value::Object(members) => stack.extend(members.values().map(|c| (c, level))),
            _ => continue,
        }
        deepest = deepest.max(level);
    }
    deepest
}

/// The number of parts of dotted `key`, or [`ArgError::TooDeep`] past [`MAX_DEPTH`].
fn check_key_depth(key: &str) -> Result<usize, ArgError> {
    let parts = key.bytes().filter(|&b| b == b'.').count() + 1;
    if parts > MAX_DEPTH {
        return Err(too_deep(key));
    }
    Ok(parts)
}

/// [`ArgError::TooDeep`] for `key`, cut to its first 40 characters (a key that deep is long).
fn too_deep(key: &str) -> ArgError {
    let key = match key.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &key[..end]),
        None => key.to_owned(),
    };
    ArgError::TooDeep { key }
}

/// True when valid JSON `text` holds an integer literal outside i64/u64.
fn has_huge_integer(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    i += 1;
                }
                let number = &text[start..i];
                let integral = !number.contains(['.', 'e', 'E']);
                if integral && number.parse::<i64>().is_err() && number.parse::<u64>().is_err() {
                    return true;
                }
            }
            _ => i += 1,
        }
    }
    false
}

/// Python's `int(text)`: blanks around, an optional sign, decimal digits with single
/// underscores between them. `Some(None)` is an integer beyond 64 bits.
fn python_int(text: &str) -> Option<Option<serde_json::Number>> {
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let bytes = digits.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes.first()?.is_ascii_digit()
        && bytes.last()?.is_ascii_digit()
        && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_')
        && !digits.contains("__");
    if !well_formed {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let n = if negative {
        format!("-{clean}").parse::<i64>().ok().map(Into::into)
    } else {
        clean.parse::<u64>().ok().map(Into::into)
    };
    // `-0` and leading zeros are fine: int("007") == 7.
    Some(n)
}

/// A plain decimal float (`1.5`, `-.5`, `2e3`, `1E-2`); not `inf`, `nan` or hex.
fn decimal_float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let has_point = mantissa.contains('.');
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = match exponent {
        None => has_point,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
    };
    if mantissa_ok && exponent_ok {
        text.parse().ok()
    } else {
        None
    }
}

/// Sets `key` (split at dots into a path) to `value`, creating parent objects. A key of more
/// than [`MAX_DEPTH`] parts is [`ArgError::TooDeep`]; the walk is a loop, not a recursion.
pub fn insert_dotted(map: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), ArgError> {
    check_key_depth(key)?;
    let path: Vec<&str> = key.split('.').collect();
    insert_path(map, &path, value)
}

/// qmp-shell's `_cli_expr`: walks `path` (iteratively), refusing a value used as a parent and
/// a key set twice. An object value may gain members from later dotted keys
/// (`a={"b":1} a.c=2`).
fn insert_path(map: &mut Map<String, Value>, path: &[&str], value: Value) -> Result<(), ArgError> {
    let Some((leaf, parents)) = path.split_last() else { return Ok(()) };
    let mut node = map;
    for (i, name) in parents.iter().enumerate() {
        let entry = node.entry(name.to_string()).or_insert_with(|| Value::Object(Map::new()));
        node = match entry {
            Value::Object(child) => child,
            _ => return Err(ArgError::LeafAndParent(path[..=i].join("."))),
        };
    }
    match node.get(*leaf) {
        Some(Value::Object(_)) => Err(ArgError::LeafAndParent(path.join("."))),
        Some(_) => Err(ArgError::Duplicate(path.join("."))),
        None => {
            node.insert(leaf.to_string(), value);
            Ok(())
        }
    }
}

/// The stack of the threads the depth tests run on: smaller than the shell's worker thread
/// (a tokio blocking thread, [`crate::WORKER_STACK`]). Optimised, reading, printing and dropping arguments at
/// the limit fits in 256 KiB; an unoptimised build's frames are several times larger
/// (serde_json's printing and dropping of a 1024-deep object take over 1 MiB there), so its
/// tests get 1.5 MiB, still under the worker's. A deep `clone` (or `json!`, which copies by
/// serialising) of a 1024-deep object takes more than either: the tests do neither.
#[cfg(test)]
pub(crate) const SMALL_STACK: usize = if cfg!(debug_assertions) { 1536 << 10 } else { 256 << 10 };

/// Runs `f` on a thread with a [`SMALL_STACK`], passing on its panic.
#[cfg(test)]
pub(crate) fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::Builder::new().stack_size(SMALL_STACK).spawn(f).expect("spawn a test thread");
    thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// `key` of `n` dotted parts, `a.a.….a`.
#[cfg(test)]
pub(crate) fn dotted(n: usize) -> String {
    vec!["a"; n].join(".")
}

/// `n` nested lists around `1`, `[[…[1]…]]`.
#[cfg(test)]
pub(crate) fn nested_list(n: usize) -> String {
    format!("{}1{}", "[".repeat(n), "]".repeat(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(tokens: &[&str]) -> Value {
        Value::Object(parse_arguments(tokens).unwrap_or_else(|e| panic!("{tokens:?}: {e}")))
    }

    fn value(text: &str) -> Value {
        parse_value(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn integers_as_python_int_reads_them() {
        for (t, v) in [
            ("0", json!(0)),
            ("42", json!(42)),
            ("-7", json!(-7)),
            ("+5", json!(5)),
            ("007", json!(7)),
            ("-0", json!(0)),
            ("1_000", json!(1000)),
            (" 12 ", json!(12)),
            ("18446744073709551615", json!(u64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
        ] {
            assert_eq!(value(t), v, "{t:?}");
        }
        for s in ["1__0", "_1", "1_", "0x10", "1 2", "", "-", "+", "12abc", "١٢"] {
            assert_eq!(value(s), json!(s), "{s:?} stays a string");
        }
        assert!(parse_value("18446744073709551616").is_err());
        assert!(parse_value("-9223372036854775809").is_err());
    }

    #[test]
    fn booleans_and_null_in_any_case() {
        for t in ["true", "True", "TRUE", "tRuE"] {
            assert_eq!(value(t), json!(true));
        }
        for t in ["false", "False", "FALSE"] {
            assert_eq!(value(t), json!(false));
        }
        for t in ["null", "Null", "NULL"] {
            assert_eq!(value(t), json!(null));
        }
        for s in ["yes", "on", "1true", "truee", "None", "none"] {
            assert_eq!(value(s), json!(s));
        }
    }

    #[test]
    fn decimal_floats() {
        for (t, v) in [
            ("1.5", 1.5),
            ("-0.25", -0.25),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("2.5E-1", 0.25),
            ("+1.0", 1.0),
        ] {
            assert_eq!(value(t), json!(v), "{t:?}");
        }
        for s in ["inf", "nan", "-inf", "1.2.3", "1e", "e5", ".", "1.5x", "0x1p3", "1,5", "1_0.5"] {
            assert_eq!(value(s), json!(s), "{s:?} stays a string");
        }
        assert!(parse_value("1e999").is_err());
    }

    #[test]
    fn json_objects_and_arrays() {
        assert_eq!(value(r#"{"a": [1, 2.5, "x", null, true]}"#), json!({"a": [1, 2.5, "x", null, true]}));
        assert_eq!(value("[]"), json!([]));
        assert_eq!(value("{}"), json!({}));
        assert_eq!(value(r#"["\ud83d\ude00", "\/"]"#), json!(["😀", "/"]));
        assert_eq!(
            value(r#"{"n": "99999999999999999999", "m": -1e30}"#),
            json!({"n": "99999999999999999999", "m": -1e30})
        );
        assert!(parse_value(r#"{"n": [99999999999999999999]}"#).is_err(), "never rounded into a float");
        assert!(parse_value("[-9223372036854775809]").is_err());
    }

    #[test]
    fn python_literals_when_not_json() {
        assert_eq!(value("['a', 'b']"), json!(["a", "b"]));
        assert_eq!(value("{'x': True, 'y': None, 'z': (1, 2)}"), json!({"x": true, "y": null, "z": [1, 2]}));
        assert_eq!(value("[true, false, null, 'q']"), json!([true, false, null, "q"]));
        assert_eq!(value("{'a': 1,}"), json!({"a": 1}));
        assert!(parse_value("{1, 2}").unwrap_err().contains("set"));
    }

    #[test]
    fn everything_else_is_a_string() {
        for s in [
            "hello",
            "/tmp/disk.qcow2",
            "{not valid",
            "[1, 2",
            "[nope]",
            "\"quoted\"",
            "'single'",
            "a=b",
            "",
            "{'a': x}",
        ] {
            assert_eq!(value(s), json!(s), "{s:?}");
        }
    }

    #[test]
    fn key_value_tokens_and_dotted_keys() {
        assert_eq!(args(&[]), json!({}));
        assert_eq!(args(&["device=job0", "speed=1024"]), json!({"device": "job0", "speed": 1024}));
        assert_eq!(args(&["a=b=c"]), json!({"a": "b=c"}), "split at the first =");
        assert_eq!(args(&["k="]), json!({"k": ""}));
        assert_eq!(args(&["=v"]), json!({"": "v"}));
        assert_eq!(
            args(&["a.b=1", "a.c.d=true", "a.c.e=x", "f=2"]),
            json!({"a": {"b": 1, "c": {"d": true, "e": "x"}}, "f": 2})
        );
        assert_eq!(args(&["a..b=1"]), json!({"a": {"": {"b": 1}}}), "empty path parts, as qmp-shell");
        assert_eq!(args(&[r#"a={"b": 1}"#, "a.c=2"]), json!({"a": {"b": 1, "c": 2}}));
        let owned: Vec<String> = vec!["x=1".into()];
        assert_eq!(Value::Object(parse_arguments(&owned).unwrap()), json!({"x": 1}));
    }

    #[test]
    fn errors() {
        let err = |t: &[&str]| parse_arguments(t).unwrap_err();
        assert_eq!(err(&["novalue"]), ArgError::NotKeyValue("novalue".into()));
        assert_eq!(err(&["a=1", "a=2"]), ArgError::Duplicate("a".into()));
        assert_eq!(err(&["a.b=1", "a.b=2"]), ArgError::Duplicate("a.b".into()));
        assert_eq!(err(&["a=1", "a.b=2"]), ArgError::LeafAndParent("a".into()));
        assert_eq!(err(&["a.b=1", "a.b.c=2"]), ArgError::LeafAndParent("a.b".into()));
        assert_eq!(err(&["a.b=1", "a=2"]), ArgError::LeafAndParent("a".into()));
        assert_eq!(err(&["a.b.c=1", "a.b=2"]), ArgError::LeafAndParent("a.b".into()));
        assert_eq!(err(&["a.b=1", "a={}"]), ArgError::LeafAndParent("a".into()));
        assert!(
            matches!(err(&["n=99999999999999999999"]), ArgError::Unrepresentable { key, .. } if key == "n")
        );
        assert!(matches!(err(&["s={1}"]), ArgError::Unrepresentable { .. }));

        assert_eq!(err(&["novalue"]).to_string(), "expected a key=value pair, got 'novalue'");
        assert_eq!(err(&["a=1", "a=2"]).to_string(), "cannot set \"a\" multiple times");
        assert_eq!(err(&["a=1", "a.b=2"]).to_string(), "cannot use \"a\" as both leaf and non-leaf key");
        let e: Box<dyn std::error::Error> = Box::new(err(&["x"]));
        assert!(e.to_string().contains("key=value"));
    }

    #[test]
    fn command_line_forms() {
        let cl = |t: &[&str]| parse_command_line(t).map(Value::Object);
        assert_eq!(cl(&["--device=job0", "--force"]).unwrap(), json!({"device": "job0", "force": true}));
        assert_eq!(cl(&["--speed=10", "a.b=1"]).unwrap(), json!({"speed": 10, "a": {"b": 1}}));
        assert_eq!(
            cl(&["--args", r#"{"device": "job0"}"#, "force=true"]).unwrap(),
            json!({"device": "job0", "force": true})
        );
        assert_eq!(cl(&[r#"--args={"a": {"b": 1}}"#, "a.c=2"]).unwrap(), json!({"a": {"b": 1, "c": 2}}));
        assert_eq!(cl(&["--args", "{'x': True}"]).unwrap(), json!({"x": true}));
        assert_eq!(cl(&["--args", r#"{"a.b": 1}"#]).unwrap(), json!({"a.b": 1}), "--args keys are not paths");
        assert_eq!(cl(&["--args", "{}", "--args", r#"{"y": 2}"#]).unwrap(), json!({"y": 2}));

        assert_eq!(cl(&["--args", r#"{"a": 1}"#, "a=2"]), Err(ArgError::Duplicate("a".into())));
        assert_eq!(cl(&["--x", "--x=1"]), Err(ArgError::Duplicate("x".into())));
        assert!(matches!(cl(&["--args"]), Err(ArgError::ArgsNotObject(_))));
        assert!(matches!(cl(&["--args", "[1]"]), Err(ArgError::ArgsNotObject(m)) if m.contains("array")));
        assert!(matches!(cl(&["--args", "{bad"]), Err(ArgError::ArgsNotObject(m)) if m.contains("string")));
        assert!(matches!(cl(&["--args", "{1, 2}"]), Err(ArgError::ArgsNotObject(m)) if m.contains("set")));
        assert_eq!(cl(&["plain"]), Err(ArgError::NotKeyValue("plain".into())));
    }

    fn too_deep_error(tokens: &[String]) -> ArgError {
        let e = parse_command_line(tokens).unwrap_err();
        assert!(matches!(e, ArgError::TooDeep { .. }), "{e}");
        assert!(e.to_string().contains("deeper than 1023 levels"), "{e}");
        e
    }

    #[test]
    fn deeply_dotted_key_is_a_usage_error_not_a_stack_overflow() {
        let key = dotted(100_000);
        for token in [format!("{key}=1"), format!("--{key}=1"), format!("--{key}")] {
            let e = too_deep_error(&[token]);
            assert!(e.to_string().len() < 120, "the key is cut short: {e}");
        }
        assert!(matches!(parse_arguments(&[format!("{key}=1")]), Err(ArgError::TooDeep { .. })));
        let mut map = Map::new();
        assert!(matches!(insert_dotted(&mut map, &key, json!(1)), Err(ArgError::TooDeep { .. })));
        assert!(map.is_empty());
    }

    #[test]
    fn deeply_nested_literal_is_a_usage_error_not_a_stack_overflow() {
        let deep = 100_000;
        let dict = format!("{}1{}", "{'a': ".repeat(deep), "}".repeat(deep));
        let tuples = format!("[{}1{}]", "(".repeat(deep), ",)".repeat(deep));
        for text in [nested_list(deep), "[".repeat(deep), dict, tuples] {
            too_deep_error(&[format!("x={text}")]);
            assert!(parse_value(&text).unwrap_err().contains("1023"));
        }
        let json = format!(r#"{{"a": {}}}"#, nested_list(deep));
        let e = too_deep_error(&["--args".into(), json]);
        assert_eq!(e, ArgError::TooDeep { key: "--args".into() });
    }

    /// At the limit, arguments are built, printed and dropped on a stack smaller than the
    /// shell's; one level more is the error.
    #[test]
    fn values_at_the_depth_limit_are_built_printed_and_dropped_on_a_small_stack() {
        let deep_dict = |n: usize| format!("{}1{}", "{'k': ".repeat(n), "}".repeat(n));
        let accepted = [
            vec![format!("{}=1", dotted(MAX_DEPTH))],
            vec![format!("--{}", dotted(MAX_DEPTH))],
            vec![format!("x={}", nested_list(MAX_DEPTH - 1))],
            vec![format!("x={}", deep_dict(MAX_DEPTH - 1))],
            // The key's parts and the literal's levels, together.
            vec![format!("{}={}", dotted(MAX_DEPTH - 10), nested_list(10))],
            vec![format!("{}=[1]", dotted(MAX_DEPTH - 1))],
            vec!["--args".into(), format!("{{'a': {}}}", nested_list(MAX_DEPTH - 1))],
            vec![format!("x={}", nested_list(MAX_DEPTH - 1)), format!("{}=1", dotted(MAX_DEPTH))],
        ];
        let refused = [
            vec![format!("{}=1", dotted(MAX_DEPTH + 1))],
            vec![format!("x={}", nested_list(MAX_DEPTH))],
            vec![format!("x={}", deep_dict(MAX_DEPTH))],
            vec![format!("{}={}", dotted(MAX_DEPTH - 10), nested_list(11))],
            vec![format!("{}=[1]", dotted(MAX_DEPTH))],
            vec!["--args".into(), format!("{{'a': {}}}", nested_list(MAX_DEPTH))],
        ];
        on_small_stack(move || {
            for tokens in accepted {
                let args = parse_command_line(&tokens).unwrap_or_else(|e| panic!("{e}"));
                let value = Value::Object(args);
                assert!(nesting(&value) <= MAX_DEPTH);
                assert!(serde_json::to_string_pretty(&value).unwrap().len() > MAX_DEPTH);
                // Moved into a request, not copied (`json!` would copy it by serialising,
                // recursively); the client itself writes the request with `to_writer`.
                let mut request = Map::new();
                request.insert("execute".into(), json!("x"));
                request.insert("arguments".into(), value);
                assert!(serde_json::to_string(&request).unwrap().len() > MAX_DEPTH);
                drop(request);
            }
            for tokens in refused {
                too_deep_error(&tokens);
            }
        });
    }

    #[test]
    fn nesting_counts_arrays_and_objects() {
        assert_eq!(nesting(&json!(1)), 0);
        assert_eq!(nesting(&json!([])), 1);
        assert_eq!(nesting(&json!({"a": [1, {"b": []}], "c": 2})), 4);
        assert_eq!(nesting(&parse_value(&nested_list(MAX_DEPTH)).unwrap()), MAX_DEPTH);
    }

    /// qmp-shell itself (QEMU's Python package qemu.qmp) is the reference: each value and
    /// token list in tests/data/qmp-shell-syntax.json reads as its `_parse_value` and
    /// `_cli_expr` read it, except the additions listed here.
    #[test]
    fn agrees_with_qmp_shell_itself() {
        const DATA: &str = include_str!("../tests/data/qmp-shell-syntax.json");
        const SCRIPT: &str = r#"
import json, sys
from qemu.qmp.qmp_shell import QMPShell

def unsendable(v):
    if isinstance(v, bool) or v is None or isinstance(v, float):
        return False
    if isinstance(v, int):
        return not (-2**63 <= v < 2**64)
    if isinstance(v, str):
        return any(0xD800 <= ord(c) < 0xE000 for c in v)
    if isinstance(v, (list, tuple)):
        return any(unsendable(x) for x in v)
    if isinstance(v, dict):
        return any(unsendable(x) for x in v.values())
    return True

def run(f, *a):
    try:
        v = f(*a)
        if unsendable(v):
            return {"unsendable": True}
        return {"ok": json.loads(json.dumps(v))}
    except Exception as e:
        return {"error": type(e).__name__ + ": " + str(e)}

shell = QMPShell.__new__(QMPShell)
def cli(tokens):
    # One call per token: _cli_expr keeps descending from the last token's parent (so
    # `a.b=1 c=2` sends {"a": {"b": 1, "c": 2}}), a bug not worth copying.
    d = {}
    for t in tokens:
        shell._cli_expr([t], d)
    return d

data = json.load(sys.stdin)
print(json.dumps({"values": [run(QMPShell._parse_value, v) for v in data["values"]],
                  "token_lists": [run(cli, t) for t in data["token_lists"]]}))
"#;
        // Deliberate differences: decimal floats are numbers here (qmp-shell sends the text),
        // and \N{...} escapes are refused rather than looked up in Unicode's name table.
        const ADDITIONS: &[&str] = &["1.5", "1e5", "['\\N{BULLET}']"];

        let mut child = std::process::Command::new("python3")
            .args(["-c", SCRIPT])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 is needed for this test (scripts/install-deps.sh installs it with qemu.qmp)");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), DATA.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "qmp-shell reference failed (is qemu.qmp installed?)");
        let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
        let data: Value = serde_json::from_str(DATA).unwrap();

        let agree = |theirs: &Value, ours: Result<Value, String>| match (theirs.get("ok"), ours) {
            (Some(want), Ok(got)) => want == &got,
            (None, Err(_)) => true,
            _ => false,
        };
        let mut differences = Vec::new();
        for (input, theirs) in
            data["values"].as_array().unwrap().iter().zip(reference["values"].as_array().unwrap())
        {
            let input = input.as_str().unwrap();
            let ours = parse_value(input);
            if !ADDITIONS.contains(&input) && !agree(theirs, ours.clone()) {
                differences.push(format!("value {input:?}: qmp-shell {theirs}, ours {ours:?}"));
            }
        }
        for (tokens, theirs) in
            data["token_lists"].as_array().unwrap().iter().zip(reference["token_lists"].as_array().unwrap())
        {
            let tokens: Vec<&str> = tokens.as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
            let ours = parse_arguments(&tokens).map(Value::Object).map_err(|e| e.to_string());
            if !agree(theirs, ours.clone()) {
                differences.push(format!("tokens {tokens:?}: qmp-shell {theirs}, ours {ours:?}"));
            }
        }
        assert!(differences.is_empty(), "{}", differences.join("\n"));
        assert_eq!(reference["values"].as_array().unwrap().len(), data["values"].as_array().unwrap().len());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any tokens: an object or a clear error, never a panic.
        #[test]
        fn any_tokens_get_an_answer(tokens in prop::collection::vec("[-a-c.=\\[\\]{}'\"0-9 ]{0,12}", 0..8)) {
            let _ = parse_command_line(&tokens);
            let _ = parse_arguments(&tokens);
        }

        /// Distinct plain keys with plain values always make exactly those members.
        #[test]
        fn plain_pairs_make_those_members(pairs in prop::collection::btree_map("[a-z_][a-z0-9_-]{0,8}", "[a-z/][a-z0-9/ ._-]{0,12}", 0..8)) {
            let tokens: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let map = parse_arguments(&tokens).unwrap();
            prop_assert_eq!(map.len(), pairs.len());
            for (k, v) in &pairs {
                let got = &map[k.as_str()];
                // Text that reads as a boolean or null is not a string; everything else is.
                if !["true", "false", "null"].contains(&v.to_ascii_lowercase().as_str()) {
                    prop_assert_eq!(got, &Value::String(v.clone()));
                }
            }
        }
    }
}
