//! Python literals, as qmp-shell reads an argument value that is not JSON.
//!
//! qmp-shell tries `json.loads` on a value starting with `{` or `[`, then
//! `ast.literal_eval` after turning the names `true`, `false` and `null` into constants, and
//! keeps the text as a string when both fail. This module is that second step: a small parser
//! for the Python expressions `ast.literal_eval` accepts (strings in any quoting, numbers,
//! `True`/`False`/`None`, lists, tuples, dicts, sets), converted the way `json.dumps` would
//! send them. A syntax error is [`LitError::Syntax`] (the caller keeps the text as a string,
//! like qmp-shell); a valid literal that JSON cannot carry (a set, bytes, a complex number)
//! is [`LitError::NotJson`], where qmp-shell would fail later when sending it.

use serde_json::Value;

mod convert;
#[cfg(test)]
mod tests;

use convert::to_json;

/// Why a text is not a usable Python literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LitError {
    /// Not a literal `ast.literal_eval` accepts: the caller treats the text as a string.
    Syntax,
    /// A valid literal that cannot be sent as JSON; the text says what it is.
    NotJson(String),
}

/// Parses `src` as a Python literal and converts it to JSON.
pub fn parse(src: &str) -> Result<Value, LitError> {
    let mut p = Parser { s: src.chars().collect(), pos: 0, depth: 0, shape: Shape::Other };
    let lit = p.top()?;
    to_json(lit)
}

/// A parsed literal, before conversion to JSON (which loses distinctions dict keys need).
#[derive(Debug)]
enum Lit {
    None,
    Bool(bool),
    /// An integer that fits in an `i128`; `None` when it is larger still.
    Int(Option<i128>),
    Float(f64),
    Str(String),
    Bytes,
    Complex,
    Ellipsis,
    /// A list or a tuple: both become JSON arrays.
    Seq(Vec<Lit>, bool),
    Dict(Vec<(Lit, Lit)>),
    Set,
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

struct Parser {
    s: Vec<char>,
    pos: usize,
    /// Open brackets: inside them, newlines are ordinary whitespace.
    depth: usize,
    /// What the last operand parsed is in Python's AST (signs and `+` depend on it).
    shape: Shape,
}

/// The AST node an operand becomes, as far as `ast.literal_eval`'s checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A number constant, perhaps in parentheses.
    Number,
    /// A sign applied to a number constant.
    Signed,
    /// Anything else.
    Other,
}

type PResult<T> = Result<T, LitError>;

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.s.get(self.pos + n).copied()
    }

    /// Skips blanks, comments and line continuations; newlines only inside brackets.
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\x0c' => self.pos += 1,
                '\n' | '\r' if self.depth > 0 => self.pos += 1,
                '\\' if matches!(self.peek_at(1), Some('\n')) => self.pos += 2,
                '\\' if self.peek_at(1) == Some('\r') && self.peek_at(2) == Some('\n') => self.pos += 3,
                '#' => {
                    while matches!(self.peek(), Some(c) if c != '\n' && c != '\r') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// Consumes `c` (after blanks) when it is next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(LitError::Syntax)
        }
    }

    /// The whole input: an expression, or several separated by commas (a tuple).
    fn top(&mut self) -> PResult<Lit> {
        let first = self.expr()?;
        let lit = if self.eat(',') {
            let mut items = vec![first];
            loop {
                self.skip_ws();
                if self.at_end_of_input() {
                    break;
                }
                items.push(self.expr()?);
                if !self.eat(',') {
                    break;
                }
            }
            Lit::Seq(items, true)
        } else {
            first
        };
        self.skip_ws();
        if self.at_end_of_input() {
            Ok(lit)
        } else {
            Err(LitError::Syntax)
        }
    }

    /// True when only newlines, blanks and comments remain (the position moves only then).
    fn at_end_of_input(&mut self) -> bool {
        let save = self.pos;
        loop {
            self.skip_ws();
            match self.peek() {
                None => return true,
                Some('\n' | '\r') => self.pos += 1,
                Some(_) => {
                    self.pos = save;
                    return false;
                }
            }
        }
    }

    /// One expression: an atom, a signed number, or `real ± imaginary`.
    fn expr(&mut self) -> PResult<Lit> {
        self.skip_ws();
        let left = match self.peek() {
            Some(sign @ ('+' | '-')) => {
                // literal_eval takes one sign on a number constant (parentheses vanish in
                // the AST, so `-(1)` counts), never on anything else (`--1`, `-True`).
                self.pos += 1;
                let operand = self.atom()?;
                if self.shape != Shape::Number {
                    return Err(LitError::Syntax);
                }
                self.shape = Shape::Signed;
                negate_if(operand, sign == '-')
            }
            _ => self.atom()?,
        };
        // It also takes exactly one binary + or -, a real number (signed or not) on the left
        // and an imaginary number constant on the right: a complex number.
        self.skip_ws();
        if matches!(self.peek(), Some('+' | '-')) {
            let left_is_real = matches!(self.shape, Shape::Number | Shape::Signed)
                && matches!(left, Lit::Int(_) | Lit::Float(_));
            self.pos += 1;
            let right = self.atom()?;
            if !(left_is_real && self.shape == Shape::Number && matches!(right, Lit::Complex)) {
                return Err(LitError::Syntax);
            }
            self.shape = Shape::Other;
            return Ok(Lit::Complex);
        }
        Ok(left)
    }

    /// One operand; sets [`Self::shape`] to what it is in Python's AST.
    fn atom(&mut self) -> PResult<Lit> {
        self.skip_ws();
        let Some(c) = self.peek() else { return Err(LitError::Syntax) };
        let lit = match c {
            // A number sets the shape itself; `(x)` keeps x's shape.
            '0'..='9' => return self.number(),
            '.' if matches!(self.peek_at(1), Some('0'..='9')) => return self.number(),
            '(' => return self.paren(),
            '[' => self.list()?,
            '{' => self.brace()?,
            '\'' | '"' => self.strings()?,
            '.' if self.peek_at(1) == Some('.') && self.peek_at(2) == Some('.') => {
                self.pos += 3;
                Lit::Ellipsis
            }
            c if is_ident_start(c) => self.name_or_prefixed_string()?,
            _ => return Err(LitError::Syntax),
        };
        self.shape = Shape::Other;
        Ok(lit)
    }

    fn open(&mut self) -> PResult<()> {
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(LitError::Syntax);
        }
        Ok(())
    }

    fn close(&mut self, c: char) -> PResult<()> {
        self.expect(c)?;
        self.depth -= 1;
        Ok(())
    }

    /// `[a, b, ...]` with an optional trailing comma.
    fn list(&mut self) -> PResult<Lit> {
        self.open()?;
        let items = self.items_until(']')?;
        self.depth -= 1;
        Ok(Lit::Seq(items, false))
    }

    /// Comma-separated expressions up to `end`, which may follow a trailing comma.
    fn items_until(&mut self, end: char) -> PResult<Vec<Lit>> {
        let mut items = Vec::new();
        loop {
            if self.eat(end) {
                return Ok(items);
            }
            items.push(self.expr()?);
            if !self.eat(',') {
                self.expect(end)?;
                return Ok(items);
            }
        }
    }

    /// `()`, `(x)` (just x), `(x,)` and `(x, y, ...)`.
    fn paren(&mut self) -> PResult<Lit> {
        self.open()?;
        if self.eat(')') {
            self.depth -= 1;
            self.shape = Shape::Other;
            return Ok(Lit::Seq(Vec::new(), true));
        }
        let first = self.expr()?;
        if !self.eat(',') {
            self.close(')')?;
            return Ok(first);
        }
        let mut items = vec![first];
        items.extend(self.items_until(')')?);
        self.depth -= 1;
        self.shape = Shape::Other;
        Ok(Lit::Seq(items, true))
    }

    /// `{}` and `{k: v, ...}` (a dict), or `{a, b, ...}` (a set).
    fn brace(&mut self) -> PResult<Lit> {
        self.open()?;
        if self.eat('}') {
            self.depth -= 1;
            return Ok(Lit::Dict(Vec::new()));
        }
        let first = self.expr()?;
        if self.eat(':') {
            let mut entries = vec![(first, self.expr()?)];
            while self.eat(',') {
                if self.eat('}') {
                    self.depth -= 1;
                    return Ok(Lit::Dict(entries));
                }
                let k = self.expr()?;
                self.expect(':')?;
                entries.push((k, self.expr()?));
            }
            self.close('}')?;
            return Ok(Lit::Dict(entries));
        }
        while self.eat(',') {
            if self.eat('}') {
                self.depth -= 1;
                return Ok(Lit::Set);
            }
            self.expr()?;
        }
        self.close('}')?;
        Ok(Lit::Set)
    }

    /// A name: a constant, or the prefix of a string literal (`r'...'`, `b"..."`).
    fn name_or_prefixed_string(&mut self) -> PResult<Lit> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if is_ident_continue(c)) {
            self.pos += 1;
        }
        let name: String = self.s[start..self.pos].iter().collect();
        if matches!(self.peek(), Some('\'' | '"')) && string_prefix(&name).is_some() {
            self.pos = start;
            return self.strings();
        }
        // FuzzyJSON maps the lower-case JSON names; Python's own constants work too.
        match name.as_str() {
            "True" | "true" => Ok(Lit::Bool(true)),
            "False" | "false" => Ok(Lit::Bool(false)),
            "None" | "null" => Ok(Lit::None),
            _ => Err(LitError::Syntax),
        }
    }

    /// One or more adjacent string literals, concatenated as Python does.
    fn strings(&mut self) -> PResult<Lit> {
        let mut text = String::new();
        let mut bytes = None;
        loop {
            self.skip_ws();
            let start = self.pos;
            while matches!(self.peek(), Some(c) if is_ident_continue(c)) {
                self.pos += 1;
            }
            let prefix: String = self.s[start..self.pos].iter().collect();
            if !matches!(self.peek(), Some('\'' | '"')) {
                if prefix.is_empty() {
                    break;
                }
                // A name after a string is a syntax error (`'a' b`).
                return Err(LitError::Syntax);
            }
            let Some(kind) = string_prefix(&prefix) else { return Err(LitError::Syntax) };
            if kind.formatted {
                // An f-string is a JoinedStr, which literal_eval refuses.
                self.string_body(true)?;
                return Err(LitError::Syntax);
            }
            if *bytes.get_or_insert(kind.bytes) != kind.bytes {
                return Err(LitError::Syntax); // mixing bytes and str
            }
            text.push_str(&self.string_body(kind.raw || kind.bytes)?);
        }
        Ok(if bytes == Some(true) { Lit::Bytes } else { Lit::Str(text) })
    }

    /// The quoted part of a string literal, escapes applied unless `raw`.
    fn string_body(&mut self, raw: bool) -> PResult<String> {
        let Some(q) = self.peek() else { return Err(LitError::Syntax) };
        let triple = self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q);
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else { return Err(LitError::Syntax) };
            if c == q {
                if !triple {
                    self.pos += 1;
                    return Ok(out);
                }
                if self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q) {
                    self.pos += 3;
                    return Ok(out);
                }
            }
            if (c == '\n' || c == '\r') && !triple {
                return Err(LitError::Syntax);
            }
            self.pos += 1;
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.peek() else { return Err(LitError::Syntax) };
            self.pos += 1;
            if raw {
                // In a raw string a backslash keeps the next character, and both stay.
                out.push('\\');
                out.push(e);
                continue;
            }
            match e {
                '\n' => {}
                '\r' => {
                    if self.peek() == Some('\n') {
                        self.pos += 1;
                    }
                }
                '\\' | '\'' | '"' => out.push(e),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    let mut n = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek().and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                n = n * 8 + d;
                                self.pos += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(n).ok_or(LitError::Syntax)?);
                }
                'x' => out.push(self.hex_escape(2)?),
                'u' => out.push(self.hex_escape(4)?),
                'U' => out.push(self.hex_escape(8)?),
                'N' => {
                    return Err(LitError::NotJson("a \\N{...} escape (not supported here)".into()));
                }
                other => {
                    // Python keeps an unknown escape as written.
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    /// Exactly `n` hex digits naming a code point; a lone surrogate has no UTF-8 form.
    fn hex_escape(&mut self, n: usize) -> PResult<char> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = self.peek().and_then(|c| c.to_digit(16)).ok_or(LitError::Syntax)?;
            v = v * 16 + d;
            self.pos += 1;
        }
        if (0xD800..0xE000).contains(&v) {
            return Err(LitError::NotJson("a string with a lone surrogate".into()));
        }
        char::from_u32(v).ok_or(LitError::Syntax)
    }

    /// A Python number literal: integers in any base, floats, imaginary numbers.
    fn number(&mut self) -> PResult<Lit> {
        let lit = self.number_literal()?;
        self.shape = Shape::Number;
        Ok(lit)
    }

    fn number_literal(&mut self) -> PResult<Lit> {
        let start = self.pos;
        let radix = match (self.peek(), self.peek_at(1)) {
            (Some('0'), Some('x' | 'X')) => 16,
            (Some('0'), Some('o' | 'O')) => 8,
            (Some('0'), Some('b' | 'B')) => 2,
            _ => 10,
        };
        if radix != 10 {
            self.pos += 2;
            if self.peek() == Some('_') {
                self.pos += 1; // `0x_ff` is allowed
            }
            let digits = self.digits(radix)?;
            self.end_of_number()?;
            return Ok(Lit::Int(parse_int(&digits, radix)));
        }
        let int_part = if self.peek() == Some('.') { String::new() } else { self.digits(10)? };
        let mut is_float = false;
        let mut text = int_part.clone();
        if self.peek() == Some('.') {
            self.pos += 1;
            is_float = true;
            text.push('.');
            if matches!(self.peek(), Some('0'..='9')) {
                text.push_str(&self.digits(10)?);
            } else if int_part.is_empty() {
                return Err(LitError::Syntax);
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            let mut exp = String::from("e");
            if let Some(sign @ ('+' | '-')) = self.peek() {
                exp.push(sign);
                self.pos += 1;
            }
            if matches!(self.peek(), Some('0'..='9')) {
                exp.push_str(&self.digits(10)?);
                text.push_str(&exp);
                is_float = true;
            } else {
                self.pos = save; // `1e` is `1` then a name: an error below
            }
        }
        if matches!(self.peek(), Some('j' | 'J')) {
            self.pos += 1;
            self.end_of_number()?;
            return Ok(Lit::Complex);
        }
        self.end_of_number()?;
        if is_float {
            return text.parse::<f64>().map(Lit::Float).map_err(|_| LitError::Syntax);
        }
        // `0123` is a syntax error in Python 3; `000` is zero.
        if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|c| c != '0') {
            self.pos = start;
            return Err(LitError::Syntax);
        }
        Ok(Lit::Int(parse_int(&int_part, 10)))
    }

    /// Digits of `radix` with single underscores between them, returned without underscores.
    fn digits(&mut self, radix: u32) -> PResult<String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                Some(c) if c.is_digit(radix) => {
                    out.push(c);
                    self.pos += 1;
                }
                Some('_') if !out.is_empty() && matches!(self.peek_at(1), Some(c) if c.is_digit(radix)) => {
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if out.is_empty() {
            Err(LitError::Syntax)
        } else {
            Ok(out)
        }
    }

    /// A number running straight into a name or digit (`1abc`, `0b12`) is a syntax error.
    fn end_of_number(&self) -> PResult<()> {
        match self.peek() {
            Some(c) if is_ident_continue(c) || c == '.' => Err(LitError::Syntax),
            _ => Ok(()),
        }
    }
}

/// What a string prefix means.
struct StrKind {
    raw: bool,
    bytes: bool,
    formatted: bool,
}

/// The prefixes Python allows before a quote, in any case.
fn string_prefix(p: &str) -> Option<StrKind> {
    let lower = p.to_ascii_lowercase();
    let (raw, bytes, formatted) = match lower.as_str() {
        "" | "u" => (false, false, false),
        "r" => (true, false, false),
        "b" => (false, true, false),
        "br" | "rb" => (true, true, false),
        "f" => (false, false, true),
        "fr" | "rf" => (true, false, true),
        _ => return None,
    };
    Some(StrKind { raw, bytes, formatted })
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Digits (already checked for `radix`) as an integer; `None` past `i128`.
fn parse_int(digits: &str, radix: u32) -> Option<i128> {
    i128::from_str_radix(digits, radix).ok()
}

fn negate_if(lit: Lit, negate: bool) -> Lit {
    if !negate {
        return lit;
    }
    match lit {
        Lit::Int(Some(n)) => Lit::Int(Some(-n)),
        Lit::Float(f) => Lit::Float(-f),
        other => other,
    }
}
