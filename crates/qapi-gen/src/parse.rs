//! The reader of QAPI's schema language, as QEMU's own generator reads it.
//!
//! A schema file is a sequence of top-level expressions, each an object in a JSON dialect:
//! strings in single quotes (`\\` and `\'` are the only escapes, and only printable ASCII is
//! allowed in them), `true` and `false`, lists, objects whose keys are strings, and `#`
//! comments to the end of the line. No numbers, no `null`.
//!
//! - `{ 'include': 'file.json' }` reads another file, named relative to the including
//!   file's directory, in its place. Each file is read once: a later include of a file
//!   already read adds nothing, and a file including itself through its includes is an
//!   error, as in QEMU.
//! - `{ 'pragma': ... }` is read and dropped.
//! - A documentation block (a line `##`, comment lines, a line `##`) that documents the
//!   definition after it (its first line names it: `# @name:`) gives that definition
//!   its `Since:` version, and each member's `(since X.Y)` note. Nothing else is kept of
//!   the documentation.
//!
//! Values are read with an explicit stack, never by recursion, and may nest at most
//! [`MAX_DEPTH`] levels. Every error names the file and line and says what is wrong; no
//! input makes the reader panic.

use std::collections::HashSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// How deeply values may nest (an expression's own object is level 1). QAPI's schemas nest
/// five levels at most; the bound keeps every later walk over a value shallow.
pub const MAX_DEPTH: usize = 64;

/// A problem with a schema: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based), or 0 when the problem is with the file as a whole.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

impl Error {
    /// An error at `file:line`.
    pub fn new(file: &Path, line: u32, message: impl Into<String>) -> Error {
        Error { file: file.to_path_buf(), line, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// A value of the schema language, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The line (1-based) of its first character.
    pub line: u32,
    /// The value.
    pub kind: ValueKind,
}

/// The kinds of value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// A string.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A list.
    List(Vec<Value>),
    /// An object, its keys unique and in the order written.
    Dict(Vec<(String, Value)>),
}

impl Value {
    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The object's entries, if it is one.
    pub fn as_dict(&self) -> Option<&[(String, Value)]> {
        match &self.kind {
            ValueKind::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The list's items, if it is one.
    pub fn as_list(&self) -> Option<&[Value]> {
        match &self.kind {
            ValueKind::List(l) => Some(l),
            _ => None,
        }
    }

    /// The object's value for `key`, if it is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// What kind of value it is, for error messages.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            ValueKind::Str(_) => "a string",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::List(_) => "a list",
            ValueKind::Dict(_) => "an object",
        }
    }
}

/// The facts taken from a definition's documentation block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Doc {
    /// The name its first line documents (`# @name:`), if any.
    pub symbol: Option<String>,
    /// The version of its `Since:` line.
    pub since: Option<String>,
    /// Members (and enum values) whose description notes `(since X.Y)`, with that version,
    /// in the order documented.
    pub member_since: Vec<(String, String)>,
}

/// One definition (any top-level expression other than `include` and `pragma`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// The file it is in.
    pub file: PathBuf,
    /// The line it starts on.
    pub line: u32,
    /// The module: the file's name without its extension (`block-core`).
    pub module: String,
    /// The expression's entries.
    pub body: Vec<(String, Value)>,
    /// The documentation block before it, when that block documents it (its first line
    /// names the definition).
    pub doc: Option<Doc>,
}

impl Expr {
    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.body.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Where schema files come from: the file system, or (in tests) memory.
pub trait Loader {
    /// The text of the file at `path`.
    fn load(&mut self, path: &Path) -> std::io::Result<String>;
}

/// Reads files from the file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsLoader;

impl Loader for FsLoader {
    fn load(&mut self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

impl<F: FnMut(&Path) -> std::io::Result<String>> Loader for F {
    fn load(&mut self, path: &Path) -> std::io::Result<String> {
        self(path)
    }
}

/// Reads the schema whose main file is `path` from the file system, following includes:
/// its definitions, in the order QEMU reads them.
pub fn read_schema(path: &Path) -> Result<Vec<Expr>, Error> {
    read_schema_with(path, &mut FsLoader)
}

/// As [`read_schema`], taking the files from `loader`.
pub fn read_schema_with(path: &Path, loader: &mut dyn Loader) -> Result<Vec<Expr>, Error> {
    let main = normalize(path);
    let mut read: HashSet<PathBuf> = HashSet::new();
    let mut out = Vec::new();
    // The files being read, innermost last, each with its top-level items and how far
    // through them it is: includes are followed with this stack, not by recursion.
    let mut stack: Vec<(PathBuf, std::vec::IntoIter<Item>)> = Vec::new();
    read.insert(main.clone());
    stack.push((main.clone(), load_items(&main, None, loader)?.into_iter()));
    while let Some((file, items)) = stack.last_mut() {
        let Some(item) = items.next() else {
            stack.pop();
            continue;
        };
        match item {
            Item::Definition(expr) => out.push(expr),
            Item::Pragma { .. } => {}
            Item::Include { name, line } => {
                let from = file.clone();
                let target = normalize(&from.parent().unwrap_or(Path::new("")).join(&name));
                if stack.iter().any(|(f, _)| *f == target) {
                    return Err(Error::new(&from, line, format!("inclusion loop: '{name}' is being read")));
                }
                if read.insert(target.clone()) {
                    let items = load_items(&target, Some((from, line)), loader)?;
                    stack.push((target, items.into_iter()));
                }
            }
        }
    }
    Ok(out)
}

/// Parses one file's text: its definitions and includes, in order (includes not followed).
pub fn parse_text(file: &Path, text: &str) -> Result<Vec<Item>, Error> {
    let module = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut lx = Lexer { file, src: text.as_bytes(), pos: 0, line: 1, doc: None };
    let mut items = Vec::new();
    loop {
        let tok = lx.next(true)?;
        let line = tok.line;
        match tok.kind {
            Tok::Eof => return Ok(items),
            Tok::LBrace => {}
            other => {
                return Err(lx.err(line, format!("expected '{{' to start an expression, found {}", other)))
            }
        }
        let doc = lx.doc.take();
        let value = parse_value_after(&mut lx, Tok::LBrace, line)?;
        let ValueKind::Dict(body) = value.kind else { unreachable!("a value opened with '{{' is an object") };
        items.push(classify(file, &module, line, body, doc)?);
    }
}

/// A top-level item of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A definition.
    Definition(Expr),
    /// `{ 'include': name }` at `line`.
    Include {
        /// The file named.
        name: String,
        /// Where.
        line: u32,
    },
    /// `{ 'pragma': ... }` at `line` (its contents are not kept).
    Pragma {
        /// Where.
        line: u32,
    },
}

fn classify(
    file: &Path,
    module: &str,
    line: u32,
    body: Vec<(String, Value)>,
    doc: Option<Vec<String>>,
) -> Result<Item, Error> {
    let has = |k: &str| body.iter().any(|(key, _)| key == k);
    if has("include") {
        if body.len() != 1 {
            return Err(Error::new(file, line, "an 'include' expression has no other keys"));
        }
        let v = &body[0].1;
        let name = v.as_str().ok_or_else(|| {
            Error::new(file, v.line, format!("'include' needs a file name, not {}", v.describe()))
        })?;
        return Ok(Item::Include { name: name.to_string(), line });
    }
    if has("pragma") {
        if body.len() != 1 {
            return Err(Error::new(file, line, "a 'pragma' expression has no other keys"));
        }
        // Pragmas steer QEMU's own checks of names and documentation; no facts in them.
        return Ok(Item::Pragma { line });
    }
    let name = body.iter().find(|(k, _)| DEFINITION_KEYS.contains(&k.as_str())).and_then(|(_, v)| v.as_str());
    let doc = doc
        .map(|lines| Doc::from_lines(&lines))
        .filter(|d| d.symbol.is_some() && d.symbol.as_deref() == name);
    Ok(Item::Definition(Expr { file: file.to_path_buf(), line, module: module.to_string(), body, doc }))
}

/// The keys that name what a definition is.
pub const DEFINITION_KEYS: [&str; 6] = ["struct", "enum", "union", "alternate", "command", "event"];

fn load_items(
    path: &Path,
    from: Option<(PathBuf, u32)>,
    loader: &mut dyn Loader,
) -> Result<Vec<Item>, Error> {
    let text = loader.load(path).map_err(|e| match &from {
        Some((file, line)) => {
            Error::new(file, *line, format!("cannot read included file {}: {e}", path.display()))
        }
        None => Error::new(path, 0, format!("cannot read: {e}")),
    })?;
    let mut items = parse_text(path, &text)?;
    items.retain(|i| !matches!(i, Item::Pragma { .. }));
    Ok(items)
}

/// `a/./b/../c` → `a/c`, without touching the file system (the loader may not be one).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

impl Doc {
    /// The facts of a documentation block, from its lines (each without its leading `#`).
    pub fn from_lines(lines: &[String]) -> Doc {
        let mut doc = Doc::default();
        let text: Vec<&str> = lines.iter().map(|l| l.strip_prefix(' ').unwrap_or(l)).collect();
        let mut rest = &text[..];
        if let Some(first) = text.first() {
            if let Some(sym) = first.strip_prefix('@').and_then(|s| s.strip_suffix(':')) {
                doc.symbol = Some(sym.to_string());
                rest = &text[1..];
            }
        }
        // The member being described, and its text so far.
        let mut current: Option<(String, String)> = None;
        let mut in_features = false;
        let finish = |current: &mut Option<(String, String)>, doc: &mut Doc| {
            if let Some((name, desc)) = current.take() {
                if let Some(v) = member_since(&desc) {
                    doc.member_since.push((name, v));
                }
            }
        };
        for line in rest {
            let indented = line.starts_with(' ') || line.starts_with('\t');
            if indented && !line.trim().is_empty() {
                if let Some((_, desc)) = current.as_mut() {
                    desc.push(' ');
                    desc.push_str(line.trim());
                }
                continue;
            }
            finish(&mut current, &mut doc);
            if let Some(member) = line.strip_prefix('@') {
                if let Some((name, desc)) = member.split_once(':') {
                    if !in_features {
                        current = Some((name.to_string(), desc.trim().to_string()));
                    }
                }
            } else if line.trim_end() == "Features:" {
                in_features = true;
            } else if let Some(since) = line.strip_prefix("Since") {
                if doc.since.is_none() {
                    doc.since =
                        version_at(since.trim_start().strip_prefix(':').unwrap_or(since).trim_start());
                }
            } else if !line.trim().is_empty() {
                // Another section (Returns:, Errors:, Example:...) ends the member list.
                in_features = false;
            }
        }
        finish(&mut current, &mut doc);
        doc
    }
}

/// The version in a member description's `(since X.Y)` note (any case, `since:` too).
fn member_since(desc: &str) -> Option<String> {
    let lower = desc.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("(since") {
        let at = from + i + "(since".len();
        let rest = desc[at..].trim_start();
        let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
        if let Some(v) = version_at(rest) {
            return Some(v);
        }
        from = at;
    }
    None
}

/// The version number (`2.12`, `0.14.0`) at the start of `s`, if there is one.
fn version_at(s: &str) -> Option<String> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let v = s[..end].trim_end_matches('.');
    let ok = v.starts_with(|c: char| c.is_ascii_digit()) && v.contains('.') && !v.contains("..");
    ok.then(|| v.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Colon,
    Comma,
    Str(String),
    Bool(bool),
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::LBrace => f.write_str("'{'"),
            Tok::RBrace => f.write_str("'}'"),
            Tok::LBrack => f.write_str("'['"),
            Tok::RBrack => f.write_str("']'"),
            Tok::Colon => f.write_str("':'"),
            Tok::Comma => f.write_str("','"),
            Tok::Str(_) => f.write_str("a string"),
            Tok::Bool(_) => f.write_str("a boolean"),
            Tok::Eof => f.write_str("the end of the file"),
        }
    }
}

struct Token {
    kind: Tok,
    line: u32,
}

struct Lexer<'a> {
    file: &'a Path,
    src: &'a [u8],
    pos: usize,
    line: u32,
    /// The lines of the last documentation block read between expressions.
    doc: Option<Vec<String>>,
}

impl Lexer<'_> {
    fn err(&self, line: u32, message: impl Into<String>) -> Error {
        Error::new(self.file, line, message)
    }

    /// The rest of the current line from `pos` (not including the newline); moves past it.
    fn rest_of_line(&mut self) -> &str {
        let start = self.pos;
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
        // Comments may hold any UTF-8; the source is a str, and the cut is at an ASCII byte.
        std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("")
    }

    fn skip_blank(&mut self) {
        while let Some(&c) = self.src.get(self.pos) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                _ => break,
            }
        }
    }

    /// The next token. Between expressions (`top`), a documentation block is kept in `doc`.
    fn next(&mut self, top: bool) -> Result<Token, Error> {
        loop {
            self.skip_blank();
            let line = self.line;
            let Some(&c) = self.src.get(self.pos) else {
                return Ok(Token { kind: Tok::Eof, line });
            };
            self.pos += 1;
            let kind = match c {
                b'#' => {
                    let text = self.rest_of_line().to_string();
                    if top && text.starts_with('#') {
                        if text.trim_end() != "#" {
                            return Err(
                                self.err(line, "junk after '##' at the start of a documentation block")
                            );
                        }
                        self.doc = Some(self.doc_block(line)?);
                    }
                    continue;
                }
                b'{' => Tok::LBrace,
                b'}' => Tok::RBrace,
                b'[' => Tok::LBrack,
                b']' => Tok::RBrack,
                b':' => Tok::Colon,
                b',' => Tok::Comma,
                b'\'' => Tok::Str(self.string(line)?),
                b't' | b'f' => {
                    let word = if c == b't' { "true" } else { "false" };
                    if self.src[self.pos - 1..].starts_with(word.as_bytes()) {
                        self.pos += word.len() - 1;
                        Tok::Bool(c == b't')
                    } else {
                        return Err(self.stray(line));
                    }
                }
                _ => return Err(self.stray(line)),
            };
            return Ok(Token { kind, line });
        }
    }

    fn stray(&mut self, line: u32) -> Error {
        let start = self.pos - 1;
        let end = self.src[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric() && *b != b'_' && *b != b'-' && *b != b'.')
            .map_or(self.src.len(), |n| start + n.max(1));
        let what = String::from_utf8_lossy(&self.src[start..end.min(start + 20)]).into_owned();
        let what = if what.is_empty() {
            String::from_utf8_lossy(&self.src[start..=start]).into_owned()
        } else {
            what
        };
        self.err(line, format!("unexpected '{what}' (QAPI has strings, true, false, lists and objects only)"))
    }

    /// A string's contents, after its opening quote.
    fn string(&mut self, line: u32) -> Result<String, Error> {
        let mut s = String::new();
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Err(self.err(line, "unterminated string: the file ends inside it"));
            };
            self.pos += 1;
            match c {
                b'\'' => return Ok(s),
                b'\n' => return Err(self.err(line, "unterminated string: the line ends inside it")),
                b'\\' => match self.src.get(self.pos) {
                    Some(&e @ (b'\\' | b'\'')) => {
                        self.pos += 1;
                        s.push(e as char);
                    }
                    Some(&e) if e.is_ascii_graphic() => {
                        return Err(self.err(line, format!("unknown escape '\\{}' in a string", e as char)))
                    }
                    _ => return Err(self.err(line, "unknown escape in a string")),
                },
                32..=126 => s.push(c as char),
                _ => return Err(self.err(line, "a string may hold printable ASCII characters only")),
            }
        }
    }

    /// The rest of a documentation block after its opening `##` line: its lines without
    /// their `#`, up to the closing `##`.
    fn doc_block(&mut self, start: u32) -> Result<Vec<String>, Error> {
        let mut lines = Vec::new();
        loop {
            self.skip_blank();
            match self.src.get(self.pos) {
                Some(b'#') => {
                    self.pos += 1;
                    let text = self.rest_of_line();
                    if text.starts_with('#') {
                        if text.trim_end() != "#" {
                            return Err(
                                self.err(self.line, "junk after '##' at the end of a documentation block")
                            );
                        }
                        return Ok(lines);
                    }
                    lines.push(text.trim_end().to_string());
                }
                _ => {
                    return Err(self.err(start, "documentation block does not end with a '##' line"));
                }
            }
        }
    }
}

/// An open list or object while parsing.
enum Frame {
    List { line: u32, items: Vec<Value> },
    Dict { line: u32, entries: Vec<(String, Value)>, key: Option<String> },
}

/// Parses the value that `first` (already read, at `line`) starts.
fn parse_value_after(lx: &mut Lexer<'_>, first: Tok, line: u32) -> Result<Value, Error> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut tok = Token { kind: first, line };
    loop {
        // `tok` starts a value, or closes an empty container just opened.
        let value = match tok.kind {
            Tok::LBrace | Tok::LBrack => {
                if stack.len() >= MAX_DEPTH {
                    return Err(lx.err(tok.line, format!("values nest more than {MAX_DEPTH} levels deep")));
                }
                let is_dict = tok.kind == Tok::LBrace;
                let next = lx.next(false)?;
                match (is_dict, next.kind) {
                    (true, Tok::RBrace) => Value { line: tok.line, kind: ValueKind::Dict(Vec::new()) },
                    (false, Tok::RBrack) => Value { line: tok.line, kind: ValueKind::List(Vec::new()) },
                    (true, Tok::Str(key)) => {
                        expect_colon(lx)?;
                        stack.push(Frame::Dict { line: tok.line, entries: Vec::new(), key: Some(key) });
                        tok = lx.next(false)?;
                        continue;
                    }
                    (true, other) => {
                        return Err(
                            lx.err(next.line, format!("expected a string key or '}}', found {other}"))
                        );
                    }
                    (false, other) => {
                        stack.push(Frame::List { line: tok.line, items: Vec::new() });
                        tok = Token { kind: other, line: next.line };
                        continue;
                    }
                }
            }
            Tok::Str(s) => Value { line: tok.line, kind: ValueKind::Str(s) },
            Tok::Bool(b) => Value { line: tok.line, kind: ValueKind::Bool(b) },
            other => {
                return Err(lx.err(
                    tok.line,
                    format!("expected a value ('{{', '[', a string or a boolean), found {other}"),
                ));
            }
        };
        // A complete value: give it to the container it is in, then close what ends.
        let mut value = value;
        loop {
            let Some(frame) = stack.last_mut() else {
                return Ok(value);
            };
            match frame {
                Frame::List { items, .. } => items.push(value),
                Frame::Dict { entries, key, .. } => {
                    let k = key.take().unwrap_or_default();
                    if entries.iter().any(|(e, _)| *e == k) {
                        return Err(lx.err(value.line, format!("duplicate key '{k}'")));
                    }
                    entries.push((k, value));
                }
            }
            let next = lx.next(false)?;
            let is_dict = matches!(frame, Frame::Dict { .. });
            match (is_dict, next.kind) {
                (_, Tok::Comma) => {
                    if let Frame::Dict { key, .. } = frame {
                        let k = lx.next(false)?;
                        match k.kind {
                            Tok::Str(s) => *key = Some(s),
                            other => {
                                return Err(lx.err(k.line, format!("expected a string key, found {other}")))
                            }
                        }
                        expect_colon(lx)?;
                    }
                    tok = lx.next(false)?;
                    break;
                }
                (true, Tok::RBrace) | (false, Tok::RBrack) => {
                    value = match stack.pop() {
                        Some(Frame::Dict { line, entries, .. }) => {
                            Value { line, kind: ValueKind::Dict(entries) }
                        }
                        Some(Frame::List { line, items }) => Value { line, kind: ValueKind::List(items) },
                        None => unreachable!("the frame was just looked at"),
                    };
                }
                (true, other) => {
                    return Err(lx.err(
                        next.line,
                        format!("expected ',' or '}}' after an object's value, found {other}"),
                    ));
                }
                (false, other) => {
                    return Err(
                        lx.err(next.line, format!("expected ',' or ']' after a list item, found {other}"))
                    );
                }
            }
        }
    }
}

fn expect_colon(lx: &mut Lexer<'_>) -> Result<(), Error> {
    let t = lx.next(false)?;
    match t.kind {
        Tok::Colon => Ok(()),
        other => Err(lx.err(t.line, format!("expected ':' after an object's key, found {other}"))),
    }
}
