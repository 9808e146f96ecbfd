//! The shell's line syntax, as qmp-shell reads it.
//!
//! - `command key=value ...`, values as [`crate::args::parse_arguments`] reads them (integers,
//!   floats, `true`/`false` in any case, `null`, JSON or Python-literal objects and arrays,
//!   dotted keys building nested objects);
//! - a value wholly in quotes (`name="a b"`, `id='1'`) is that string, spaces included;
//! - `transaction(` opens a multi-line transaction (prompt `TRANS> `), one action per line,
//!   `)` sends them as one `transaction`; the one-line form `transaction( a k=v ; b k=v )`;
//! - a line that is a JSON object (`{"execute": ...}`) is sent as it is;
//! - `help` and `help COMMAND` are the shell's own;
//! - a leading `!` sends the line without checking it against the schema.
//!
//! Arguments nest at most [`crate::args::MAX_DEPTH`] levels (dotted keys and literals alike),
//! so a line can never overflow the shell's stack: deeper is a parse error naming the limit.
//! A JSON line is read by serde_json, whose own limit is 128 levels.

use serde_json::{Map, Value};

/// The prompt outside a transaction (qmp-shell's).
pub const PROMPT: &str = "(QEMU) ";
/// The prompt while a transaction is being typed (qmp-shell's).
pub const TRANS_PROMPT: &str = "TRANS> ";
/// The prompt of the guest agent's shell (after qmp-shell's `(QEMU) `).
pub const AGENT_PROMPT: &str = "(QGA) ";

/// A request ready to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command's name.
    pub execute: String,
    /// Its arguments (possibly empty).
    pub arguments: Map<String, Value>,
    /// Send it as an out-of-band command (`exec-oob` in a JSON line).
    pub oob: bool,
    /// Skip the schema check (the line started with `!`, or was raw JSON).
    pub force: bool,
    /// The line was a JSON object: sent as it is (the agent shell adds no `guest-` prefix).
    pub json: bool,
}

impl Request {
    /// The request as the JSON object sent on the wire (for `-v` and the log).
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        let key = if self.oob { "exec-oob" } else { "execute" };
        obj.insert(key.into(), Value::String(self.execute.clone()));
        if !self.arguments.is_empty() {
            obj.insert("arguments".into(), Value::Object(self.arguments.clone()));
        }
        Value::Object(obj)
    }
}

/// What a line amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Nothing to send: an empty line, a transaction opened, or an action queued.
    Nothing,
    /// `help` (`None`) or `help COMMAND`.
    Help(Option<String>),
    /// A request to send.
    Request(Request),
}

/// Why a line could not be read; the text says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// Splits a line into tokens the way qmp-shell does: runs of non-space characters, where a
/// quoted part (`"..."` or `'...'`, backslash escapes inside) may hold spaces. Quotes are kept in
/// the token. An unterminated quote is an error (qmp-shell silently drops it).
pub fn tokenize(line: &str) -> Result<Vec<String>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    let mut current: Option<String> = None;
    while let Some((pos, c)) = chars.next() {
        if c.is_whitespace() {
            tokens.extend(current.take());
            continue;
        }
        let tok = current.get_or_insert_with(String::new);
        tok.push(c);
        if c == '"' || c == '\'' {
            let mut closed = false;
            while let Some((_, q)) = chars.next() {
                tok.push(q);
                if q == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        tok.push(escaped);
                    }
                } else if q == c {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return err(format!("unterminated {c} quote starting at column {}", pos + 1));
            }
        }
    }
    tokens.extend(current);
    Ok(tokens)
}

/// The string inside a token that is wholly one quoted string (`"a b"`, `'x'`), escapes resolved.
fn whole_quoted(value: &str) -> Option<String> {
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    if value.len() < 2 || !value.ends_with(quote) {
        return None;
    }
    let inner = &value[1..value.len() - 1];
    // It must be one string: every inner quote of the same kind escaped.
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' if quote == '"' => out.push('\n'),
                't' if quote == '"' => out.push('\t'),
                other => out.push(other),
            },
            c if c == quote => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Marks a quoted value while the rest goes through `parse_arguments` (a string it keeps as is).
const PLACEHOLDER: &str = "\u{1}qmp-shell-quoted-";

/// Reads `key=value` tokens into an arguments object.
pub fn parse_key_values(tokens: &[String]) -> Result<Map<String, Value>, ParseError> {
    let mut quoted = Vec::new();
    let mut rewritten = Vec::with_capacity(tokens.len());
    for tok in tokens {
        match tok.split_once('=') {
            Some((key, value)) => match whole_quoted(value) {
                Some(s) => {
                    rewritten.push(format!("{key}={PLACEHOLDER}{}", quoted.len()));
                    quoted.push(s);
                }
                None => rewritten.push(tok.clone()),
            },
            None => return err(format!("expected a key=value pair, got '{tok}'")),
        }
    }
    let mut args = crate::args::parse_arguments(&rewritten).map_err(|e| ParseError(e.to_string()))?;
    if !quoted.is_empty() {
        restore_quoted(&mut args, &quoted);
    }
    Ok(args)
}

/// Puts the quoted strings back in place of their placeholders, at any depth of dotted keys
/// (walked with a stack of its own: a key may be [`crate::args::MAX_DEPTH`] parts deep).
fn restore_quoted(map: &mut Map<String, Value>, quoted: &[String]) {
    let mut objects = vec![map];
    while let Some(map) = objects.pop() {
        for value in map.values_mut() {
            match value {
                Value::String(s) => {
                    if let Some(i) = s.strip_prefix(PLACEHOLDER).and_then(|n| n.parse::<usize>().ok()) {
                        if let Some(q) = quoted.get(i) {
                            *s = q.clone();
                        }
                    }
                }
                Value::Object(inner) => objects.push(inner),
                _ => {}
            }
        }
    }
}

/// Reads a line that is a JSON object (or a Python-style one with single quotes).
pub fn parse_json_line(line: &str) -> Result<Request, ParseError> {
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(first) => {
            let std = qmp_proto::standardize_quotes(line.as_bytes());
            serde_json::from_slice(&std).map_err(|_| ParseError(format!("invalid JSON: {first}")))?
        }
    };
    let Value::Object(mut obj) = value else {
        return err("a JSON line must be an object");
    };
    let (oob, name) = match (obj.remove("execute"), obj.remove("exec-oob")) {
        (Some(Value::String(n)), None) => (false, n),
        (None, Some(Value::String(n))) => (true, n),
        (None, None) => return err("a JSON request needs \"execute\": \"COMMAND\""),
        _ => return err("a JSON request needs exactly one string \"execute\" or \"exec-oob\""),
    };
    let arguments = match obj.remove("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a,
        Some(_) => return err("\"arguments\" must be an object"),
    };
    // The client numbers requests itself: a given "id" is dropped.
    obj.remove("id");
    if let Some(extra) = obj.keys().next() {
        return err(format!("unexpected member '{extra}' in the JSON request"));
    }
    Ok(Request { execute: name, arguments, oob, force: true, json: true })
}

/// Whether `line` opens a transaction: `transaction(` first, after an optional `!`.
pub fn opens_transaction(line: &str) -> bool {
    let body = line.trim();
    let body = body.strip_prefix('!').unwrap_or(body);
    body.split_whitespace().next() == Some("transaction(")
}

/// The shell's line reader: plain commands, JSON lines, and the transaction sub-mode.
#[derive(Debug, Default)]
pub struct LineParser {
    /// The actions queued so far while in a transaction.
    actions: Option<Vec<Value>>,
}

impl LineParser {
    /// A parser outside any transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prompt for the next line.
    pub fn prompt(&self) -> &'static str {
        if self.actions.is_some() {
            TRANS_PROMPT
        } else {
            PROMPT
        }
    }

    /// Whether a multi-line transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.actions.is_some()
    }

    /// Drops an open transaction (Ctrl-C at the `TRANS> ` prompt).
    pub fn cancel_transaction(&mut self) {
        self.actions = None;
    }

    /// Reads one line.
    pub fn parse(&mut self, line: &str) -> Result<Parsed, ParseError> {
        let trimmed = line.trim();
        let (force, body) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, trimmed),
        };
        if self.actions.is_none() && body.starts_with('{') {
            return parse_json_line(body).map(Parsed::Request);
        }
        let mut tokens = tokenize(body)?;
        if tokens.first().map(String::as_str) == Some("transaction(") {
            if self.actions.is_some() {
                return err("a transaction is already open: finish it with ')'");
            }
            tokens.remove(0);
            let mut one_line = LineParser { actions: Some(Vec::new()) };
            let result = one_line.transaction_line(tokens, force);
            // A one-line form that failed leaves no half-open transaction behind.
            if result.is_ok() {
                self.actions = one_line.actions;
            }
            return result;
        }
        if self.actions.is_some() {
            return self.transaction_line(tokens, force);
        }
        let Some(first) = tokens.first() else {
            return Ok(Parsed::Nothing);
        };
        match first.as_str() {
            ")" => err("')' outside a transaction (open one with 'transaction(')"),
            "help" | "?" => match tokens.len() {
                1 => Ok(Parsed::Help(None)),
                2 => Ok(Parsed::Help(Some(tokens[1].clone()))),
                _ => err("usage: help [COMMAND]"),
            },
            _ => {
                let arguments = parse_key_values(&tokens[1..])?;
                Ok(Parsed::Request(Request {
                    execute: tokens[0].clone(),
                    arguments,
                    oob: false,
                    force,
                    json: false,
                }))
            }
        }
    }

    /// A line inside a transaction: actions separated by `;`, maybe a closing `)`.
    fn transaction_line(&mut self, mut tokens: Vec<String>, force: bool) -> Result<Parsed, ParseError> {
        let close = tokens.iter().position(|t| t == ")");
        if let Some(pos) = close {
            if pos + 1 != tokens.len() {
                return err("unexpected input after the ')' closing the transaction");
            }
            tokens.pop();
        }
        let mut new_actions = Vec::new();
        for action in tokens.split(|t| t == ";") {
            let Some((name, args)) = action.split_first() else {
                continue;
            };
            if name == "transaction(" {
                return err("a transaction is already open: finish it with ')'");
            }
            let data = Value::Object(parse_key_values(args)?);
            // Inside the request, an action's data sits two levels below the arguments
            // object (the `actions` array and the action): those count toward QEMU's limit.
            if crate::args::nesting(&data) + 2 > crate::args::MAX_DEPTH {
                return err(format!(
                    "the arguments of action {name} nest deeper than {} levels, the most a transaction's \
                     actions can have within QEMU's limit",
                    crate::args::MAX_DEPTH - 2
                ));
            }
            let Value::Object(data) = data else { unreachable!("made an object above") };
            let mut obj = Map::new();
            obj.insert("type".into(), Value::String(name.clone()));
            obj.insert("data".into(), Value::Object(data));
            new_actions.push(Value::Object(obj));
        }
        // Every action of the line parsed: only now are they queued.
        let queued = self.actions.get_or_insert_with(Vec::new);
        queued.extend(new_actions);
        if close.is_none() {
            return Ok(Parsed::Nothing);
        }
        let actions = self.actions.take().unwrap_or_default();
        let mut arguments = Map::new();
        arguments.insert("actions".into(), Value::Array(actions));
        Ok(Parsed::Request(Request {
            execute: "transaction".into(),
            arguments,
            oob: false,
            force,
            json: false,
        }))
    }
}

/// The `shell_args` fuzz target's body (`fuzz/fuzz_targets/shell_args.rs`), run by the tests
/// below so that CI exercises it without a fuzzer.
#[cfg(test)]
#[path = "../../tests/fuzz_shell_args_body/mod.rs"]
mod fuzz_body;

#[cfg(test)]
mod fuzz_tests {
    use super::fuzz_body::{self, PIECES};
    use proptest::prelude::*;

    /// Lines made of the syntax's pieces, which reach the readers' interesting states far
    /// more often than random text does.
    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(0..PIECES.len(), 0..40)
            .prop_map(|picks| picks.into_iter().map(|i| PIECES[i]).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn shell_args_body_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
            fuzz_body::run(&data);
        }

        #[test]
        fn shell_args_body_token_soup(text in soup()) {
            fuzz_body::run(text.as_bytes());
        }
    }

    /// Inputs that stress one path, run every time, on a thread with the stack the shell's
    /// worker has at most (the body clones and re-reads what it builds, which the shell does
    /// not, so it gets the worker's whole stack rather than the depth tests' smaller one).
    #[test]
    fn shell_args_body_fixed_inputs() {
        std::thread::Builder::new()
            .stack_size(crate::WORKER_STACK)
            .spawn(fixed_inputs)
            .unwrap()
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    }

    fn fixed_inputs() {
        let deep_key = crate::args::dotted(crate::args::MAX_DEPTH + 1);
        let at_limit = crate::args::dotted(crate::args::MAX_DEPTH);
        for text in [
            String::new(),
            format!("x {deep_key}=1"),
            format!("x {at_limit}=1"),
            format!("x v={}", crate::args::nested_list(2000)),
            "transaction(\na b=1\n)\n".into(),
        ] {
            fuzz_body::run(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use crate::args::{dotted, nested_list, on_small_stack, MAX_DEPTH};

    fn error(line: &str) -> String {
        match LineParser::new().parse(line) {
            Err(e) => e.to_string(),
            Ok(other) => panic!("{} read as {other:?}", &line[..line.len().min(60)]),
        }
    }

    #[test]
    fn deeply_dotted_key_in_the_shell_is_an_error_not_a_stack_overflow() {
        let line = format!("x {}=1", dotted(100_000));
        assert!(error(&line).contains("deeper than 1023 levels"), "{}", error(&line));
        let quoted = format!("x {}='a b'", dotted(100_000));
        assert!(error(&quoted).contains("deeper than 1023 levels"));
        let transaction = format!("transaction( a {}=1 )", dotted(100_000));
        assert!(error(&transaction).contains("deeper than 1023 levels"));
        // Within the limit on their own, but not inside a transaction's request.
        let transaction = format!("transaction( a {}=1 )", dotted(MAX_DEPTH));
        assert!(error(&transaction).contains("deeper than 1021 levels"), "{}", error(&transaction));
    }

    #[test]
    fn deeply_nested_literal_in_the_shell_is_an_error_not_a_stack_overflow() {
        for value in [nested_list(100_000), "{'a':".repeat(100_000)] {
            assert!(error(&format!("x v={value}")).contains("deeper than 1023 levels"));
        }
        // A JSON line is read by serde_json, which refuses more than 128 levels itself.
        let json = format!(r#"{{"execute": "x", "arguments": {{"v": {}}}}}"#, nested_list(100_000));
        assert!(error(&json).starts_with("invalid JSON"), "{}", error(&json));
    }

    /// At the limit, a line's arguments are read, printed and dropped on a stack smaller than
    /// the shell's worker thread's (see `SMALL_STACK`); one level more is the error.
    #[test]
    fn shell_lines_at_the_depth_limit_work_on_a_small_stack() {
        on_small_stack(|| {
            for line in [
                format!("x {}='quoted value'", dotted(MAX_DEPTH)),
                format!("x v={}", nested_list(MAX_DEPTH - 1)),
                format!("transaction( a {}=1 ; b v={} )", dotted(MAX_DEPTH - 2), nested_list(MAX_DEPTH - 3)),
            ] {
                let Ok(Parsed::Request(req)) = LineParser::new().parse(&line) else { panic!("not read") };
                let text = serde_json::to_string_pretty(&req.arguments).unwrap();
                assert!(text.contains(if line.contains("quoted") { "quoted value" } else { "1" }));
                drop(req);
            }
            for line in [format!("x {}=1", dotted(MAX_DEPTH + 1)), format!("x v={}", nested_list(MAX_DEPTH))]
            {
                assert!(error(&line).contains("deeper than 1023 levels"));
            }
        });
    }
}
