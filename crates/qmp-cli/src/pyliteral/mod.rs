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

/// The `pyliteral` fuzz target's body (`fuzz/fuzz_targets/pyliteral.rs`); `tests` runs it.
#[cfg(test)]
#[path = "../../tests/fuzz_pyliteral_body/mod.rs"]
mod fuzz_body;

use convert::to_json;

/// Why a text is not a usable Python literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LitError {
    /// Not a literal `ast.literal_eval` accepts: the caller treats the text as a string.
    Syntax,
    /// A valid literal that cannot be sent as JSON; the text says what it is.
    NotJson(String),
    /// Brackets nested deeper than [`MAX_DEPTH`] (refused as soon as met, closed or not).
    TooDeep,
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
    /// A list, or a tuple (`true`), as the JSON array it becomes, or why it cannot be sent.
    Array(Result<Value, String>, bool),
    /// A dict as the JSON object it becomes, or why it cannot be sent.
    Object(Result<Value, String>),
    Set,
}

impl Lit {
    /// A list or tuple that just closed, converted.
    fn array(items: Vec<Lit>, tuple: bool) -> Lit {
        Lit::Array(convert::array(items), tuple)
    }

    /// A dict that just closed, converted.
    fn object(entries: Vec<(Lit, Lit)>) -> Lit {
        Lit::Object(convert::object(entries))
    }
}

/// What the parse loop does next.
enum Step {
    /// Read an expression: an optional sign, then an operand.
    Expr,
    /// Read an operand: a scalar, or an opening bracket.
    Atom,
    /// Just inside an opening bracket, which may close at once.
    Opened,
    /// An operand was read (its shape in [`Parser::shape`]).
    Operand(Lit),
    /// An expression was read, for the innermost open container.
    Value(Lit),
}

/// What follows an expression in its container.
enum Next {
    /// More to read.
    Step(Step),
    /// The container closed: this is it, an operand of the expression around it.
    Close(Lit),
    /// The whole input was read.
    Done(Lit),
}

/// A container being read, with what it holds so far.
enum Frame {
    /// The whole input, before its first expression ended.
    Top,
    /// The whole input after a top-level comma: a tuple.
    TopTuple(Vec<Lit>),
    List(Vec<Lit>),
    /// `(` before its first item ended: a parenthesised expression or a tuple.
    Paren,
    Tuple(Vec<Lit>),
    /// `{` before its first item ended: a dict or a set.
    Brace,
    /// A set after its first item.
    Set,
    /// A dict waiting for its next key.
    DictKey(Vec<(Lit, Lit)>),
    /// A dict waiting for the value of a key.
    DictValue(Vec<(Lit, Lit)>, Lit),
}

/// The state of an expression whose operand is being read.
#[derive(Default)]
struct Operand {
    /// A sign read before the operand, to apply to it.
    sign: Option<char>,
    /// Reading the right operand of a binary `+`/`-`; whether the left one was real.
    right_of: Option<bool>,
}

// Nesting deeper than MAX_DEPTH is refused rather than risking the stack: the parser
// recurses a few frames per bracket, and so do the conversion and the drop of what it built.
// The limit is the one the command line's dotted keys have.
use crate::args::MAX_DEPTH;

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
    ///
    /// A loop over an explicit stack of open brackets, not a recursion, so that the input's
    /// depth (up to [`MAX_DEPTH`]) costs heap, not stack. A container is converted to JSON as
    /// it closes ([`Lit::Array`], [`Lit::Object`]), so no [`Lit`] holds another and dropping
    /// one never recurses either; a conversion's error waits inside the value until the end,
    /// so that a later syntax error still wins, as in `ast.literal_eval`.
    fn top(&mut self) -> PResult<Lit> {
        // The containers around the one being read, outermost first, each with the state of
        // the expression it is an operand of.
        let mut open: Vec<(Frame, Operand)> = Vec::new();
        let mut frame = Frame::Top;
        let mut operand = Operand::default();
        let mut step = Step::Expr;
        loop {
            step = match step {
                Step::Expr => {
                    self.skip_ws();
                    operand = Operand::default();
                    if let Some(sign @ ('+' | '-')) = self.peek() {
                        // literal_eval takes one sign on a number constant (parentheses
                        // vanish in the AST, so `-(1)` counts), never on anything else
                        // (`--1`, `-True`): checked when the operand is read.
                        self.pos += 1;
                        operand.sign = Some(sign);
                    }
                    Step::Atom
                }
                Step::Atom => {
                    self.skip_ws();
                    let inner = match self.peek() {
                        Some('(') => Frame::Paren,
                        Some('[') => Frame::List(Vec::new()),
                        Some('{') => Frame::Brace,
                        _ => {
                            step = Step::Operand(self.atom()?);
                            continue;
                        }
                    };
                    self.open()?;
                    open.push((std::mem::replace(&mut frame, inner), std::mem::take(&mut operand)));
                    Step::Opened
                }
                Step::Opened => {
                    let (closer, empty) = match frame {
                        Frame::Paren => (')', Lit::array(Vec::new(), true)),
                        Frame::List(_) => (']', Lit::array(Vec::new(), false)),
                        _ => ('}', Lit::object(Vec::new())),
                    };
                    if self.eat(closer) {
                        self.shape = Shape::Other;
                        self.close(&mut open, &mut frame, &mut operand)?;
                        Step::Operand(empty)
                    } else {
                        Step::Expr
                    }
                }
                Step::Operand(lit) => self.operand_done(lit, &mut operand)?,
                Step::Value(lit) => match self.item_done(lit, &mut frame)? {
                    Next::Step(next) => next,
                    Next::Close(container) => {
                        self.close(&mut open, &mut frame, &mut operand)?;
                        Step::Operand(container)
                    }
                    Next::Done(lit) => return Ok(lit),
                },
            };
        }
    }

    /// Consumes an opening bracket: one level deeper, refused past [`MAX_DEPTH`].
    fn open(&mut self) -> PResult<()> {
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(LitError::TooDeep);
        }
        Ok(())
    }

    /// A container's closing bracket was consumed: back to the one around it, and to the
    /// expression the closed one is an operand of.
    fn close(
        &mut self,
        open: &mut Vec<(Frame, Operand)>,
        frame: &mut Frame,
        operand: &mut Operand,
    ) -> PResult<()> {
        self.depth -= 1;
        // Every frame but the top one was pushed when its bracket opened.
        (*frame, *operand) = open.pop().ok_or(LitError::Syntax)?;
        Ok(())
    }

    /// An operand `lit` was read (its shape in [`Self::shape`]): applies the sign before it,
    /// and reads the `+ imaginary` that may follow.
    fn operand_done(&mut self, lit: Lit, operand: &mut Operand) -> PResult<Step> {
        let lit = match operand.sign.take() {
            Some(sign) => {
                if self.shape != Shape::Number {
                    return Err(LitError::Syntax);
                }
                self.shape = Shape::Signed;
                negate_if(lit, sign == '-')
            }
            None => lit,
        };
        if let Some(left_is_real) = operand.right_of.take() {
            // literal_eval takes exactly one binary + or -, a real number (signed or not) on
            // the left and an imaginary number constant on the right: a complex number.
            if !(left_is_real && self.shape == Shape::Number && matches!(lit, Lit::Complex)) {
                return Err(LitError::Syntax);
            }
            self.shape = Shape::Other;
            return Ok(Step::Value(Lit::Complex));
        }
        self.skip_ws();
        if matches!(self.peek(), Some('+' | '-')) {
            let left_is_real = matches!(self.shape, Shape::Number | Shape::Signed)
                && matches!(lit, Lit::Int(_) | Lit::Float(_));
            self.pos += 1;
            operand.right_of = Some(left_is_real);
            // The right operand is an atom: a sign there is a syntax error.
            return Ok(Step::Atom);
        }
        Ok(Step::Value(lit))
    }

    /// An expression `lit` ended inside `frame`: what follows it there.
    fn item_done(&mut self, lit: Lit, frame: &mut Frame) -> PResult<Next> {
        Ok(match std::mem::replace(frame, Frame::Top) {
            Frame::Top => {
                if !self.eat(',') {
                    return self.end(lit);
                }
                self.top_tuple(vec![lit], frame)?
            }
            Frame::TopTuple(mut items) => {
                items.push(lit);
                if !self.eat(',') {
                    return self.end(Lit::array(items, true));
                }
                self.top_tuple(items, frame)?
            }
            Frame::List(mut items) => {
                items.push(lit);
                self.after_item(']', items, frame, Frame::List)?
            }
            Frame::Tuple(mut items) => {
                items.push(lit);
                self.after_item(')', items, frame, Frame::Tuple)?
            }
            Frame::Paren if self.eat(',') => {
                if self.eat(')') {
                    self.shape = Shape::Other;
                    Next::Close(Lit::array(vec![lit], true))
                } else {
                    *frame = Frame::Tuple(vec![lit]);
                    Next::Step(Step::Expr)
                }
            }
            Frame::Paren => {
                // `(x)` is just x, its shape included.
                self.expect(')')?;
                Next::Close(lit)
            }
            Frame::Brace if self.eat(':') => {
                *frame = Frame::DictValue(Vec::new(), lit);
                Next::Step(Step::Expr)
            }
            Frame::Brace | Frame::Set => self.after_set_item(frame)?,
            Frame::DictKey(entries) => {
                self.expect(':')?;
                *frame = Frame::DictValue(entries, lit);
                Next::Step(Step::Expr)
            }
            Frame::DictValue(mut entries, key) => {
                entries.push((key, lit));
                let closed = if self.eat(',') { self.eat('}') } else { self.expect('}').map(|()| true)? };
                if closed {
                    self.shape = Shape::Other;
                    Next::Close(Lit::object(entries))
                } else {
                    *frame = Frame::DictKey(entries);
                    Next::Step(Step::Expr)
                }
            }
        })
    }

    /// After a top-level comma: the end of the input (a trailing comma), or the next item.
    fn top_tuple(&mut self, items: Vec<Lit>, frame: &mut Frame) -> PResult<Next> {
        self.skip_ws();
        if self.at_end_of_input() {
            return self.end(Lit::array(items, true));
        }
        *frame = Frame::TopTuple(items);
        Ok(Next::Step(Step::Expr))
    }

    /// After an item of a list or tuple: a comma and the next item, or the closing `end`
    /// (after a trailing comma too).
    fn after_item(
        &mut self,
        end: char,
        items: Vec<Lit>,
        frame: &mut Frame,
        back: fn(Vec<Lit>) -> Frame,
    ) -> PResult<Next> {
        let closed = if self.eat(',') { self.eat(end) } else { self.expect(end).map(|()| true)? };
        if closed {
            self.shape = Shape::Other;
            return Ok(Next::Close(Lit::array(items, end == ')')));
        }
        *frame = back(items);
        Ok(Next::Step(Step::Expr))
    }

    /// After an item of a set (whose items are not kept: a set cannot be sent).
    fn after_set_item(&mut self, frame: &mut Frame) -> PResult<Next> {
        let closed = if self.eat(',') { self.eat('}') } else { self.expect('}').map(|()| true)? };
        if closed {
            self.shape = Shape::Other;
            return Ok(Next::Close(Lit::Set));
        }
        *frame = Frame::Set;
        Ok(Next::Step(Step::Expr))
    }

    /// The whole input was `lit`: only blanks, newlines and comments may follow.
    fn end(&mut self, lit: Lit) -> PResult<Next> {
        self.skip_ws();
        if self.at_end_of_input() {
            Ok(Next::Done(lit))
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

    /// A scalar operand (brackets are [`Self::top`]'s); sets [`Self::shape`] to what it is in
    /// Python's AST.
    fn atom(&mut self) -> PResult<Lit> {
        self.skip_ws();
        let Some(c) = self.peek() else { return Err(LitError::Syntax) };
        let lit = match c {
            // A number sets the shape itself.
            '0'..='9' => return self.number(),
            '.' if matches!(self.peek_at(1), Some('0'..='9')) => return self.number(),
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
