//! QEMU's input stream rules: a lexer and "streamer" that cut client bytes into complete
//! top-level JSON values, or into errors worded exactly as QEMU 7.2 words them.
//!
//! `qmp_proto::Framer` cuts frames for a client reading a well-behaved server. A server must
//! answer *bad* input the way QEMU does, which depends on QEMU's token rules: an invalid token
//! (`X`, `01`, `-}`, a 0xFF byte, a control character) is reported as
//! `JSON parse error, stray '<token>'`, drops any partial value, and puts the lexer into
//! recovery, skipping bytes up to the next structural character (`{}[],:`) or control byte.
//! A value is complete when its braces and brackets balance (or go negative: a lone `}`
//! becomes a value of its own, rejected by the parser with "expecting value").
//! Numbers and keywords end at the first byte that cannot continue them, so `1` alone waits
//! for the next byte, as in QEMU.

/// QEMU's cap on nesting (`MAX_NESTING`).
pub const MAX_NESTING: i64 = 1024;
/// QEMU's cap on the number of tokens in one value (`MAX_TOKEN_COUNT`).
const MAX_TOKEN_COUNT: usize = 2 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Start,
    Recovery,
    Str { quote: u8, escape: bool },
    Sign,
    Zero,
    Digits,
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Other,
}

/// One item cut from the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A complete top-level value's bytes (not necessarily valid JSON: the parser decides).
    Value {
        /// The bytes from the first token to the last.
        bytes: &'a [u8],
        /// True when some string in it is single-quoted.
        single_quoted: bool,
    },
    /// Input QEMU rejects before parsing; the text is QEMU's `desc`.
    Error(String),
}

enum Raw {
    Value(std::ops::Range<usize>, bool),
    Error(String),
}

/// The incremental input state of one connection.
#[derive(Debug)]
pub struct Input {
    buf: Vec<u8>,
    /// Bytes dropped from the front of `buf` so far (`buf[0]` is byte `base` of the stream).
    base: u64,
    pos: usize,
    lex: Lex,
    /// Start of the token being lexed.
    tok_start: usize,
    /// Start of the top-level value being collected.
    val_start: Option<usize>,
    braces: i64,
    brackets: i64,
    tokens: usize,
    single_quoted: bool,
    max_size: usize,
}

impl Input {
    /// An empty input whose values may not exceed `max_size` bytes.
    pub fn new(max_size: usize) -> Self {
        Input {
            buf: Vec::with_capacity(4096),
            base: 0,
            pos: 0,
            lex: Lex::Start,
            tok_start: 0,
            val_start: None,
            braces: 0,
            brackets: 0,
            tokens: 0,
            single_quoted: false,
            max_size: max_size.max(2),
        }
    }

    /// The buffer to read into (append only), compacted first.
    pub fn buffer_mut(&mut self) -> &mut Vec<u8> {
        self.compact();
        &mut self.buf
    }

    /// How many bytes of the stream have been appended so far: the stream offset of the
    /// next byte read.
    pub fn received(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// The stream offset just past what has been cut into items (after [`next_item`]
    /// returned one: just past its last byte).
    ///
    /// [`next_item`]: Input::next_item
    pub fn scanned(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Appends bytes read from the client.
    #[cfg(test)]
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    fn compact(&mut self) {
        let keep = match (self.val_start, self.lex) {
            (Some(v), _) => v,
            (None, Lex::Start | Lex::Recovery) => self.pos,
            (None, _) => self.tok_start,
        };
        if keep > 0 {
            self.buf.drain(..keep);
            self.base += keep as u64;
            self.pos -= keep;
            self.tok_start = self.tok_start.saturating_sub(keep);
            self.val_start = self.val_start.map(|v| v - keep);
        }
    }

    fn reset_value(&mut self) {
        self.val_start = None;
        self.braces = 0;
        self.brackets = 0;
        self.tokens = 0;
        self.single_quoted = false;
    }

    /// The next value or error, or `None` when more bytes are needed.
    pub fn next_item(&mut self) -> Option<Item<'_>> {
        Some(match self.scan()? {
            Raw::Value(range, single_quoted) => Item::Value { bytes: &self.buf[range], single_quoted },
            Raw::Error(e) => Item::Error(e),
        })
    }

    fn scan(&mut self) -> Option<Raw> {
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            // `Some(tok)` ends a token; `consumed` false re-scans `b` in the start state.
            let mut ended: Option<Tok> = None;
            let mut consumed = true;
            match self.lex {
                Lex::Start => {
                    self.tok_start = self.pos;
                    match b {
                        b' ' | b'\t' | b'\r' | b'\n' => {}
                        b'{' => ended = Some(Tok::LCurly),
                        b'}' => ended = Some(Tok::RCurly),
                        b'[' => ended = Some(Tok::LSquare),
                        b']' => ended = Some(Tok::RSquare),
                        b',' | b':' => ended = Some(Tok::Other),
                        b'"' | b'\'' => {
                            self.single_quoted |= b == b'\'';
                            self.lex = Lex::Str { quote: b, escape: false }
                        }
                        b'0' => self.lex = Lex::Zero,
                        b'1'..=b'9' => self.lex = Lex::Digits,
                        b'-' => self.lex = Lex::Sign,
                        b'a'..=b'z' => self.lex = Lex::Keyword,
                        _ => return Some(self.stray()),
                    }
                }
                Lex::Recovery => {
                    if matches!(b, 0x20..=0xFD) && !b"{}[],:".contains(&b) || b == b'\t' {
                        self.tok_start = self.pos + 1;
                    } else {
                        self.lex = Lex::Start;
                        continue;
                    }
                }
                Lex::Str { quote, escape } => {
                    if !(0x20..=0xFD).contains(&b) {
                        return Some(self.stray());
                    }
                    if escape {
                        self.lex = Lex::Str { quote, escape: false };
                    } else if b == b'\\' {
                        self.lex = Lex::Str { quote, escape: true };
                    } else if b == quote {
                        ended = Some(Tok::Other);
                    }
                }
                Lex::Sign => match b {
                    b'0' => self.lex = Lex::Zero,
                    b'1'..=b'9' => self.lex = Lex::Digits,
                    _ => return Some(self.stray()),
                },
                Lex::Zero => match b {
                    b'.' => self.lex = Lex::Mantissa,
                    b'0'..=b'9' => return Some(self.stray()),
                    _ => (ended, consumed) = (Some(Tok::Other), false),
                },
                Lex::Digits => match b {
                    b'0'..=b'9' => {}
                    b'.' => self.lex = Lex::Mantissa,
                    b'e' | b'E' => self.lex = Lex::ExpE,
                    _ => (ended, consumed) = (Some(Tok::Other), false),
                },
                Lex::Mantissa => match b {
                    b'0'..=b'9' => self.lex = Lex::MantissaDigits,
                    _ => return Some(self.stray()),
                },
                Lex::MantissaDigits => match b {
                    b'0'..=b'9' => {}
                    b'e' | b'E' => self.lex = Lex::ExpE,
                    _ => (ended, consumed) = (Some(Tok::Other), false),
                },
                Lex::ExpE => match b {
                    b'+' | b'-' => self.lex = Lex::ExpSign,
                    b'0'..=b'9' => self.lex = Lex::ExpDigits,
                    _ => return Some(self.stray()),
                },
                Lex::ExpSign => match b {
                    b'0'..=b'9' => self.lex = Lex::ExpDigits,
                    _ => return Some(self.stray()),
                },
                Lex::ExpDigits => match b {
                    b'0'..=b'9' => {}
                    _ => (ended, consumed) = (Some(Tok::Other), false),
                },
                Lex::Keyword => match b {
                    b'a'..=b'z' => {}
                    _ => (ended, consumed) = (Some(Tok::Other), false),
                },
            }
            if consumed {
                self.pos += 1;
            }
            if let Some(tok) = ended {
                self.lex = Lex::Start;
                if let Some(item) = self.token(tok) {
                    return Some(item);
                }
            } else if self.lex != Lex::Recovery {
                let from = self.val_start.unwrap_or(self.tok_start);
                if self.pos - from > self.max_size {
                    return Some(self.limit("JSON token size limit exceeded"));
                }
            }
        }
        None
    }

    /// A token ended at `self.pos`; returns a complete value or a limit error.
    fn token(&mut self, tok: Tok) -> Option<Raw> {
        match tok {
            Tok::LCurly => self.braces += 1,
            Tok::RCurly => self.braces -= 1,
            Tok::LSquare => self.brackets += 1,
            Tok::RSquare => self.brackets -= 1,
            Tok::Other => {}
        }
        let start = *self.val_start.get_or_insert(self.tok_start);
        if self.pos - start > self.max_size {
            return Some(self.limit("JSON token size limit exceeded"));
        }
        self.tokens += 1;
        if self.tokens > MAX_TOKEN_COUNT {
            return Some(self.limit("JSON token count limit exceeded"));
        }
        if self.braces + self.brackets > MAX_NESTING {
            return Some(self.limit("JSON nesting depth limit exceeded"));
        }
        if (self.braces > 0 || self.brackets > 0) && self.braces >= 0 && self.brackets >= 0 {
            return None;
        }
        let single_quoted = self.single_quoted;
        self.reset_value();
        Some(Raw::Value(start..self.pos, single_quoted))
    }

    /// A limit was hit: QEMU drops the partial value and lexes on from here.
    fn limit(&mut self, desc: &str) -> Raw {
        self.reset_value();
        if self.lex != Lex::Start {
            // Inside an oversized token: skip to a resynchronisation point.
            self.lex = Lex::Recovery;
        }
        self.tok_start = self.pos;
        Raw::Error(desc.to_string())
    }

    /// An invalid byte: the token so far and that byte are reported, then recovery.
    fn stray(&mut self) -> Raw {
        self.pos += 1;
        let text = String::from_utf8_lossy(&self.buf[self.tok_start..self.pos]).into_owned();
        self.reset_value();
        self.lex = Lex::Recovery;
        self.tok_start = self.pos;
        Raw::Error(format!("JSON parse error, stray '{text}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &[u8]) -> Vec<String> {
        let mut inp = Input::new(1 << 20);
        inp.extend(input);
        let mut out = Vec::new();
        while let Some(item) = inp.next_item() {
            out.push(match item {
                Item::Value { bytes, .. } => format!("V {}", String::from_utf8_lossy(bytes)),
                Item::Error(e) => format!("E {e}"),
            });
        }
        out
    }

    #[test]
    fn cuts_values_like_qemu() {
        assert_eq!(items(b"{\"a\": [1]}{'b':2} 3 "), ["V {\"a\": [1]}", "V {'b':2}", "V 3"]);
        assert_eq!(items(b"}"), ["V }"]);
        assert_eq!(items(b"1"), Vec::<String>::new(), "a number waits for its end");
    }

    #[test]
    fn reports_stray_tokens_and_recovers() {
        assert_eq!(items(b"abc XYZ{}"), ["V abc", "E JSON parse error, stray 'X'", "V {}"]);
        assert_eq!(items(b"{\"execute\": -}"), ["E JSON parse error, stray '-}'"]);
        assert_eq!(items(b"{\"e\": 01}"), ["E JSON parse error, stray '01'", "V }"]);
        assert_eq!(
            items(b"\xff\xff\x01{}"),
            [
                "E JSON parse error, stray '\u{fffd}'",
                "E JSON parse error, stray '\u{fffd}'",
                "E JSON parse error, stray '\u{1}'",
                "V {}"
            ]
        );
        assert_eq!(items(b"{\"a\": \xff XYZ abc [1]"), ["E JSON parse error, stray '\u{fffd}'", "V [1]"]);
    }

    #[test]
    fn caps_size_and_depth() {
        let mut inp = Input::new(16);
        inp.extend(b"{\"a\": \"0123456789abcdef\"}{}");
        assert_eq!(inp.next_item(), Some(Item::Error("JSON token size limit exceeded".into())));
        let deep = vec![b'['; 1100];
        assert_eq!(
            items(&deep),
            ["E JSON nesting depth limit exceeded"],
            "one error, then the rest starts a new value"
        );
    }

    fn collect(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut inp = Input::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            inp.extend(chunk);
            while let Some(item) = inp.next_item() {
                out.push(match item {
                    Item::Value { bytes, single_quoted } => {
                        // The parser must cope with whatever the lexer lets through.
                        let parsed = crate::parse::parse_value(bytes, single_quoted);
                        format!("V {} {:?}", String::from_utf8_lossy(bytes), parsed.is_ok())
                    }
                    Item::Error(e) => format!("E {e}"),
                });
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn any_split_gives_the_same_items(
            data in proptest::collection::vec(proptest::sample::select(b"{}[],:\"'\\ab01-.e \n\xff\x01tru".to_vec()), 0..200),
            cut in 0usize..200,
        ) {
            let cut = cut.min(data.len());
            let whole = collect(&[&data], 64);
            let split = collect(&[&data[..cut], &data[cut..]], 64);
            proptest::prop_assert_eq!(whole, split);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            collect(&[&data], 128);
        }
    }
}
