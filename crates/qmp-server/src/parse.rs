//! Parsing one value cut by [`crate::input::Input`] the way QEMU's `json-parser.c` does.
//!
//! Well-formed double-quoted input takes the fast path through `serde_json` (with a check for
//! duplicate keys, which QEMU rejects). Anything else — single quotes, `\'` escapes, nesting
//! deeper than serde_json allows, or an error — goes through a small recursive-descent parser
//! that mirrors QEMU's, so that the *first* error it meets and its text are QEMU's.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses one value; the error is QEMU's `desc` ("JSON parse error, ...").
pub fn parse_value(bytes: &[u8], single_quoted: bool) -> Result<Value, String> {
    if !single_quoted {
        if let Ok(Strict(v)) = serde_json::from_slice::<Strict>(bytes) {
            return Ok(v);
        }
    }
    parse_like_qemu(bytes)
}

/// The recursive-descent path alone (what `parse_value` falls back to), for the fuzz target's
/// check that it agrees with serde_json wherever serde_json accepts the input.
pub fn parse_like_qemu(bytes: &[u8]) -> Result<Value, String> {
    let tokens = tokenize(bytes);
    let mut p = Parser { tokens: &tokens, at: 0, err: None };
    let value = p.value();
    match p.err {
        Some(e) => Err(format!("JSON parse error, {e}")),
        None => value.ok_or_else(|| "JSON parse error, expecting value".to_string()),
    }
}

/// A `Value` whose objects may not repeat a key.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("non-finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.insert(key, v).is_some() {
                return Err(A::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(out))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Str,
    Int,
    Float,
    Keyword,
}

/// Splits a value already validated by the lexer into tokens.
fn tokenize(bytes: &[u8]) -> Vec<(T, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        i += 1;
        let kind = match b {
            b'{' => T::LCurly,
            b'}' => T::RCurly,
            b'[' => T::LSquare,
            b']' => T::RSquare,
            b':' => T::Colon,
            b',' => T::Comma,
            b'"' | b'\'' => {
                let mut escape = false;
                while i < bytes.len() {
                    let c = bytes[i];
                    i += 1;
                    if escape {
                        escape = false;
                    } else if c == b'\\' {
                        escape = true;
                    } else if c == b {
                        break;
                    }
                }
                T::Str
            }
            b'a'..=b'z' => {
                while i < bytes.len() && bytes[i].is_ascii_lowercase() {
                    i += 1;
                }
                T::Keyword
            }
            b'-' | b'0'..=b'9' => {
                let mut float = false;
                while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    float |= matches!(bytes[i], b'.' | b'e' | b'E');
                    i += 1;
                }
                if float {
                    T::Float
                } else {
                    T::Int
                }
            }
            _ => continue, // whitespace
        };
        out.push((kind, &bytes[start..i]));
    }
    out
}

struct Parser<'a> {
    tokens: &'a [(T, &'a [u8])],
    at: usize,
    err: Option<String>,
}

impl Parser<'_> {
    fn error(&mut self, msg: impl Into<String>) {
        // QEMU keeps the first error only.
        if self.err.is_none() {
            self.err = Some(msg.into());
        }
    }

    fn peek(&self) -> Option<T> {
        self.tokens.get(self.at).map(|t| t.0)
    }

    fn pop(&mut self) -> Option<(T, &[u8])> {
        let t = self.tokens.get(self.at).copied();
        self.at += 1;
        t
    }

    fn value(&mut self) -> Option<Value> {
        let Some((kind, text)) = self.tokens.get(self.at).copied() else {
            self.error("premature EOI");
            return None;
        };
        match kind {
            T::LCurly => self.object(),
            T::LSquare => self.array(),
            T::Str => {
                self.at += 1;
                self.string(text).map(Value::String)
            }
            T::Int | T::Float => {
                self.at += 1;
                Some(number(kind, text))
            }
            T::Keyword => {
                self.at += 1;
                match text {
                    b"true" => Some(Value::Bool(true)),
                    b"false" => Some(Value::Bool(false)),
                    b"null" => Some(Value::Null),
                    _ => {
                        self.error(format!("invalid keyword '{}'", String::from_utf8_lossy(text)));
                        None
                    }
                }
            }
            _ => {
                self.error("expecting value");
                None
            }
        }
    }

    fn object(&mut self) -> Option<Value> {
        self.at += 1;
        let mut map = Map::new();
        if self.peek() == Some(T::RCurly) {
            self.at += 1;
            return Some(Value::Object(map));
        }
        if self.peek().is_none() {
            self.error("premature EOI");
            return None;
        }
        self.pair(&mut map)?;
        loop {
            match self.pop() {
                None => {
                    self.error("premature EOI");
                    return None;
                }
                Some((T::RCurly, _)) => return Some(Value::Object(map)),
                Some((T::Comma, _)) => self.pair(&mut map)?,
                Some(_) => {
                    self.error("expected separator in dict");
                    return None;
                }
            }
        }
    }

    fn pair(&mut self, map: &mut Map<String, Value>) -> Option<()> {
        let key = self.value();
        let Some(Value::String(key)) = key else {
            self.error("key is not a string in object");
            return None;
        };
        match self.pop() {
            Some((T::Colon, _)) => {}
            None => {
                self.error("premature EOI");
                return None;
            }
            Some(_) => {
                self.error("missing : in object pair");
                return None;
            }
        }
        let Some(value) = self.value() else {
            self.error("Missing value in dict");
            return None;
        };
        if map.contains_key(&key) {
            self.error("duplicate key");
            return None;
        }
        map.insert(key, value);
        Some(())
    }

    fn array(&mut self) -> Option<Value> {
        self.at += 1;
        let mut items = Vec::new();
        if self.peek() == Some(T::RSquare) {
            self.at += 1;
            return Some(Value::Array(items));
        }
        loop {
            let Some(v) = self.value() else {
                self.error("expecting value");
                return None;
            };
            items.push(v);
            match self.pop() {
                None => {
                    self.error("premature EOI");
                    return None;
                }
                Some((T::RSquare, _)) => return Some(Value::Array(items)),
                Some((T::Comma, _)) => {}
                Some(_) => {
                    self.error("expected separator in list");
                    return None;
                }
            }
        }
    }

    /// Decodes a string token as QEMU's `parse_string` does.
    fn string(&mut self, token: &[u8]) -> Option<String> {
        let quote = token[0];
        let body = &token[1..token.len().saturating_sub(1).max(1)];
        let mut out: Vec<u8> = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            if b != b'\\' {
                let len = match b {
                    0x00..=0x7F => 1,
                    0xC0..=0xDF => 2,
                    0xE0..=0xEF => 3,
                    0xF0..=0xF7 => 4,
                    _ => 0,
                };
                let chunk = body.get(i..i + len.max(1)).unwrap_or(&body[i..]);
                if b == 0xC0 && chunk == [0xC0, 0x80] {
                    out.push(0); // modified UTF-8's NUL
                } else if len == 0 || chunk.len() != len || std::str::from_utf8(chunk).is_err() {
                    self.error("invalid UTF-8 sequence in string");
                    return None;
                } else {
                    out.extend_from_slice(chunk);
                }
                i += len.max(1);
                continue;
            }
            let beg = i;
            i += 1;
            let esc = body.get(i).copied().unwrap_or(quote);
            i += 1;
            match esc {
                b'"' | b'\'' | b'\\' | b'/' => out.push(esc),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let mut cp = hex4(body.get(i..i + 4));
                    i += 4;
                    if (0xD800..=0xDBFF).contains(&cp) && body.get(i..i + 2) == Some(b"\\u") {
                        let trailing = hex4(body.get(i + 2..i + 6));
                        if (0xDC00..=0xDFFF).contains(&trailing) {
                            cp = 0x10000 + ((cp & 0x3FF) << 10) + (trailing & 0x3FF);
                            i += 6;
                        } else {
                            cp = -1;
                        }
                    }
                    match u32::try_from(cp).ok().and_then(char::from_u32) {
                        Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                        None => {
                            // QEMU prints the escape as far as it read it, within the token.
                            let shown = &token[1 + beg..(1 + i).min(token.len())];
                            let shown = &shown[..shown.len().min(i - beg)];
                            self.error(format!(
                                "{} is not a valid Unicode character",
                                String::from_utf8_lossy(shown)
                            ));
                            return None;
                        }
                    }
                }
                _ => {
                    self.error("invalid escape sequence in string");
                    return None;
                }
            }
        }
        // Every byte was checked above, so this is valid UTF-8.
        String::from_utf8(out).ok()
    }
}

fn hex4(digits: Option<&[u8]>) -> i64 {
    let Some(d) = digits else { return -1 };
    std::str::from_utf8(d)
        .ok()
        .and_then(|s| i64::from_str_radix(s, 16).ok())
        .filter(|_| d.len() == 4)
        .unwrap_or(-1)
}

fn number(kind: T, text: &[u8]) -> Value {
    let s = std::str::from_utf8(text).unwrap_or("0");
    if kind == T::Int {
        if let Ok(i) = s.parse::<i64>() {
            return i.into();
        }
        if let Ok(u) = s.parse::<u64>() {
            return u.into();
        }
    }
    let f: f64 = s.parse().unwrap_or(0.0);
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(s: &str) -> String {
        parse_value(s.as_bytes(), s.contains('\'')).unwrap_err()
    }

    #[test]
    fn parses_qemu_extensions() {
        assert_eq!(parse_value(b"{'a': 'it\\'s \"x\"'}", true).unwrap(), json!({"a": "it's \"x\""}));
        assert_eq!(
            parse_value(b"[\"\\'\", \"\\u00e9\\ud83d\\ude00\"]", false).unwrap(),
            json!(["'", "\u{e9}\u{1F600}"])
        );
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert!(parse_value(deep.as_bytes(), false).is_ok());
    }

    #[test]
    fn words_errors_like_qemu() {
        assert_eq!(err("}"), "JSON parse error, expecting value");
        assert_eq!(err("{\"a\" 1}"), "JSON parse error, missing : in object pair");
        assert_eq!(err("{\"a\":}"), "JSON parse error, expecting value");
        assert_eq!(err("{1:2}"), "JSON parse error, key is not a string in object");
        assert_eq!(err("{\"a\":1,}"), "JSON parse error, expecting value");
        assert_eq!(err("{\"a\":1 \"b\":2}"), "JSON parse error, expected separator in dict");
        assert_eq!(err("[1 2]"), "JSON parse error, expected separator in list");
        assert_eq!(err("{\"a\":1,\"a\":2}"), "JSON parse error, duplicate key");
        assert_eq!(err("not"), "JSON parse error, invalid keyword 'not'");
        assert_eq!(err("\"a\\qb\""), "JSON parse error, invalid escape sequence in string");
        assert_eq!(err("{\"e\": \"a\\u00\"}"), "JSON parse error, \\u00\" is not a valid Unicode character");
        assert_eq!(
            parse_value(b"\"\xc3(\"", false).unwrap_err(),
            "JSON parse error, invalid UTF-8 sequence in string"
        );
    }
}
