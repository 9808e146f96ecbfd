//! A streaming framer: cuts a byte stream into top-level JSON values.
//!
//! QMP is a JSON *stream*, not a line protocol: QEMU's own Python client sends no newline,
//! several objects may share one read, and one object may be split across many reads. The
//! framer scans bytes once, tracking only nesting depth and string state, so it never parses
//! JSON itself and never recurses: deep nesting or garbage cannot overflow the stack. Inside
//! objects and arrays it takes 64 bytes at a time when they hold only plain structure and
//! strings (bit masks of quotes and brackets), falling back to the byte loop otherwise; a
//! small object already whole in the buffer (the usual reply or event) is cut in one such pass.
//!
//! It follows QEMU's input rules so that the same framer serves both ends of the protocol:
//! strings may be single-quoted; a byte that can never appear in JSON text (0xFE, 0xFF, or an
//! ASCII control character other than tab, CR and LF; inside a string, CR and LF too) resets it,
//! dropping any partial value, as QEMU's lexer does.

use std::fmt;

/// The default cap on one message: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
/// The default cap on nesting depth, QEMU's own limit.
pub const DEFAULT_MAX_DEPTH: u32 = 1024;

/// A complete top-level value cut from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The value's bytes, from its first to its last byte (no surrounding whitespace).
    pub bytes: &'a [u8],
    /// True when the value uses QEMU's quote extensions, a single-quoted string or a `\'`
    /// escape; such a frame is not standard JSON until passed through
    /// [`crate::standardize_quotes`].
    pub single_quoted: bool,
}

impl Frame<'_> {
    /// True when the frame is a JSON object (the only kind of top-level value QMP allows).
    pub fn is_object(&self) -> bool {
        self.bytes.first() == Some(&b'{')
    }
}

/// Why the framer dropped input. The framer has already recovered: call
/// [`Framer::next_frame`] again to go on with the bytes that follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A value grew past the size cap; the rest of it is skipped.
    #[error("message exceeds the {limit}-byte size cap")]
    TooLarge {
        /// The cap in force.
        limit: usize,
    },
    /// A value nested deeper than the depth cap; the rest of it is skipped.
    #[error("JSON nesting depth limit ({limit}) exceeded")]
    TooDeep {
        /// The cap in force.
        limit: u32,
    },
    /// A byte that cannot appear in JSON text; any partial value before it was dropped.
    #[error("stray byte 0x{byte:02x}{}", if *.discarded > 0 { format!(" (dropped {} bytes of a partial message)", .discarded) } else { String::new() })]
    Stray {
        /// The offending byte.
        byte: u8,
        /// How many bytes of a partial value were thrown away with it.
        discarded: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between values, skipping whitespace.
    Between,
    /// Inside an object or array, outside strings.
    Nested,
    /// Inside a string delimited by `quote`; `escape` after a backslash.
    Str { quote: u8, escape: bool },
    /// Inside a bare top-level token (a number, `true`, or garbage such as `not`).
    Bare,
}

/// Byte classes, looked up once per byte.
const WS: u8 = 1; // space, tab, CR, LF
const STRAY: u8 = 2; // 0xFE, 0xFF, control characters but tab, CR, LF
const OPEN: u8 = 3; // { [
const CLOSE: u8 = 4; // } ]
const QUOTE: u8 = 5; // " '
const PUNCT: u8 = 6; // , :
const OTHER: u8 = 0;

const CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = STRAY;
        i += 1;
    }
    t[b' ' as usize] = WS;
    t[b'\t' as usize] = WS;
    t[b'\r' as usize] = WS;
    t[b'\n' as usize] = WS;
    t[0xFE] = STRAY;
    t[0xFF] = STRAY;
    t[b'{' as usize] = OPEN;
    t[b'[' as usize] = OPEN;
    t[b'}' as usize] = CLOSE;
    t[b']' as usize] = CLOSE;
    t[b'"' as usize] = QUOTE;
    t[b'\'' as usize] = QUOTE;
    t[b',' as usize] = PUNCT;
    t[b':' as usize] = PUNCT;
    t
};

/// Bytes that leave the state as it is, per state, for skipping runs of them quickly.
const NESTED_PLAIN: [bool; 256] = plain(&[WS, PUNCT, OTHER], b"");
const STRING_PLAIN: [bool; 256] = plain(&[WS, OPEN, CLOSE, PUNCT, OTHER], b"\r\n\"'\\");
const BARE_PLAIN: [bool; 256] = plain(&[OTHER], b"");

/// A table of the bytes in one of `classes`, except those in `except`.
const fn plain(classes: &[u8], except: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < classes.len() {
            t[b] |= CLASS[b] == classes[i];
            i += 1;
        }
        b += 1;
    }
    let mut i = 0;
    while i < except.len() {
        t[except[i] as usize] = false;
        i += 1;
    }
    t
}

/// The first position in `from..to` whose byte is not `plain`, or `to`.
#[inline]
fn skip(buf: &[u8], from: usize, to: usize, plain: &[bool; 256]) -> usize {
    match buf[from..to].iter().position(|&b| !plain[b as usize]) {
        Some(i) => from + i,
        None => to,
    }
}

/// Bytes per block of the block scan ([`Framer::skim`]): one bit per byte in a `u64`.
const BLOCK: usize = 64;

/// The most [`Framer::whole_object`] scans in one pass.
const WHOLE_MAX: usize = 4096;

/// What [`Framer::whole_object`] found.
enum Whole {
    /// The value ends just before this position.
    Done(usize),
    /// The value goes on: the state at `pos`, every byte before it plain.
    Open { pos: usize, depth: u32, in_string: bool },
    /// A byte or depth the byte loop must see for itself.
    Bail,
}

/// One block's bytes of interest, one bit per byte (bit `i` for byte `i`).
struct Masks {
    /// `"`.
    quote: u64,
    /// `{` and `[`.
    open: u64,
    /// `}` and `]`.
    close: u64,
    /// The bytes the block scan leaves to the byte loop: `\`, `'`, a control byte
    /// (whitespace included), 0xFE or 0xFF.
    bad: u64,
}

impl Masks {
    /// On x86_64, SSE2 (always present there): compares 16 bytes at a time and takes each
    /// compare's mask with `pmovmskb`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn of(block: &[u8; BLOCK]) -> Masks {
        use std::arch::x86_64::*;
        let (mut quote, mut open, mut close, mut bad) = (0u64, 0u64, 0u64, 0u64);
        for (k, chunk) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always
            // available; the unaligned load reads exactly the 16 bytes of `chunk`.
            let (q, o, c, b) = unsafe {
                let x = _mm_loadu_si128(chunk.as_ptr().cast());
                let splat = |b: u8| _mm_set1_epi8(b as i8);
                let lower = _mm_or_si128(x, splat(0x20)); // `[` -> `{`, `]` -> `}`
                                                          // Unsigned order as signed: flip the top bit, then < 0x20 or >= 0xFE.
                let flipped = _mm_xor_si128(x, splat(0x80));
                let control = _mm_cmplt_epi8(flipped, splat(0x20 ^ 0x80));
                let invalid = _mm_cmpgt_epi8(flipped, splat(0xFD ^ 0x80));
                let escape = _mm_or_si128(_mm_cmpeq_epi8(x, splat(b'\\')), _mm_cmpeq_epi8(x, splat(b'\'')));
                (
                    _mm_movemask_epi8(_mm_cmpeq_epi8(x, splat(b'"'))),
                    _mm_movemask_epi8(_mm_cmpeq_epi8(lower, splat(b'{'))),
                    _mm_movemask_epi8(_mm_cmpeq_epi8(lower, splat(b'}'))),
                    _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(control, invalid), escape)),
                )
            };
            let at = 16 * k;
            // Each mask is 16 bits wide (pmovmskb zero-extends).
            quote |= (q as u64) << at;
            open |= (o as u64) << at;
            close |= (c as u64) << at;
            bad |= (b as u64) << at;
        }
        Masks { quote, open, close, bad }
    }

    /// Elsewhere: plain loops over the block, which the compiler turns into vector compares;
    /// each eight flags (bytes of 0 or 1) then become eight bits with one multiplication.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    fn of(block: &[u8; BLOCK]) -> Masks {
        let (mut quote, mut open, mut close, mut bad) =
            ([0u8; BLOCK], [0u8; BLOCK], [0u8; BLOCK], [0u8; BLOCK]);
        for (i, &b) in block.iter().enumerate() {
            quote[i] = u8::from(b == b'"');
            open[i] = u8::from(b | 0x20 == b'{'); // `{` or `[`
            close[i] = u8::from(b | 0x20 == b'}'); // `}` or `]`
            bad[i] = u8::from(!(0x20..0xFE).contains(&b) || b == b'\\' || b == b'\'');
        }
        Masks { quote: bits(&quote), open: bits(&open), close: bits(&close), bad: bits(&bad) }
    }

    /// The portable version, for the test that compares the two.
    #[cfg(test)]
    fn portable(block: &[u8; BLOCK]) -> Masks {
        let mask = |f: &dyn Fn(u8) -> bool| {
            block.iter().enumerate().fold(0u64, |m, (i, &b)| m | u64::from(f(b)) << i)
        };
        Masks {
            quote: mask(&|b| b == b'"'),
            open: mask(&|b| b == b'{' || b == b'['),
            close: mask(&|b| b == b'}' || b == b']'),
            bad: mask(&|b| !(0x20..0xFE).contains(&b) || b == b'\\' || b == b'\''),
        }
    }
}

/// Bit `i` set when `flags[i]` is 1 (every flag 0 or 1).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline]
fn bits(flags: &[u8; BLOCK]) -> u64 {
    let mut out = 0;
    for (k, eight) in flags.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(eight);
        // Flag `j` (bit 8j) times 2^(7(7-j)+7) lands on bit 56+j; no other product reaches
        // bits 56..63 or carries into them.
        let gathered = u64::from_le_bytes(word).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        out |= gathered << (8 * k);
    }
    out
}

/// Bit `i` set when an odd number of bits `0..=i` of `x` are: given the quotes, the bytes
/// from each opening quote up to (not including) its closing one.
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Cuts a byte stream into top-level JSON values. Sans-I/O: feed it bytes with
/// [`extend`](Framer::extend) (or read straight into [`buffer_mut`](Framer::buffer_mut)),
/// then take frames with [`next_frame`](Framer::next_frame) until it returns `Ok(None)`.
///
/// ```
/// use qmp_proto::Framer;
///
/// let mut framer = Framer::new();
/// framer.extend(br#"{"return": {}}{"event": "ST"#);
/// assert_eq!(framer.next_frame().unwrap().unwrap().bytes, br#"{"return": {}}"#);
/// assert!(framer.next_frame().unwrap().is_none()); // the event is incomplete
/// framer.extend(br#"OP"}"#);
/// assert_eq!(framer.next_frame().unwrap().unwrap().bytes, br#"{"event": "STOP"}"#);
/// ```
///
/// Memory stays bounded by the size cap plus one read: a value over the cap is reported once
/// and its remaining bytes are skipped without being kept.
pub struct Framer {
    buf: Vec<u8>,
    /// Start of the value being scanned (or of unscanned input when `Between`).
    start: usize,
    /// Next byte to scan.
    pos: usize,
    state: State,
    depth: u32,
    single_quoted: bool,
    /// Skipping the rest of an oversized or over-deep value.
    discarding: bool,
    max_size: usize,
    max_depth: u32,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Framer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("buffered", &(self.buf.len() - self.start))
            .field("state", &self.state)
            .field("depth", &self.depth)
            .field("max_size", &self.max_size)
            .finish()
    }
}

impl Framer {
    /// A framer with the default caps (16 MiB, depth 1024).
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_DEPTH)
    }

    /// A framer with the given caps on one value's size in bytes and nesting depth.
    pub fn with_limits(max_size: usize, max_depth: u32) -> Self {
        Framer {
            buf: Vec::new(),
            start: 0,
            pos: 0,
            state: State::Between,
            depth: 0,
            single_quoted: false,
            discarding: false,
            max_size: max_size.max(1),
            max_depth: max_depth.max(1),
        }
    }

    /// The size cap in force.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Appends bytes read from the peer.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer to read into directly (append only), with at least `min_spare` bytes of
    /// spare capacity; saves the copy that [`extend`](Framer::extend) makes.
    pub fn buffer_mut(&mut self, min_spare: usize) -> &mut Vec<u8> {
        self.compact();
        self.buf.reserve(min_spare);
        &mut self.buf
    }

    /// How many bytes are buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True when a value has begun but not ended (useful to tell a clean EOF from a cut one).
    pub fn in_partial_value(&self) -> bool {
        self.state != State::Between || self.discarding
    }

    /// Drops consumed bytes from the front of the buffer.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        if self.start == self.buf.len() {
            self.buf.clear();
        } else {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
        }
        self.pos -= self.start;
        self.start = 0;
    }

    fn begin_value(&mut self, at: usize) {
        self.start = at;
        self.single_quoted = false;
        self.discarding = false;
    }

    fn reset(&mut self) {
        self.state = State::Between;
        self.depth = 0;
        self.discarding = false;
    }

    /// Returns the next complete value, `Ok(None)` when more bytes are needed, or an error
    /// for input it dropped (after which it has recovered and may be called again).
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        match self.next_range() {
            Ok(Some(range)) => Ok(Some(self.frame(range))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// As [`next_frame`](Self::next_frame), the value as a range of the buffer, taken with
    /// [`frame_at`](Self::frame_at): for a caller that may call again on an error and return
    /// a frame otherwise (a borrow the compiler cannot see ending in a loop).
    pub fn next_range(&mut self) -> Result<Option<std::ops::Range<usize>>, FrameError> {
        let len = self.buf.len();
        while self.pos < len {
            // Scanning stops at `limit`: the end of the input, or where the value being
            // scanned would grow past the size cap.
            let limit = if self.discarding {
                // Keep no bytes of a value being skipped.
                self.start = self.pos;
                len
            } else if self.state == State::Between {
                len
            } else {
                let cap_end = self.start.saturating_add(self.max_size);
                if self.pos >= cap_end && self.state != State::Bare {
                    // The next byte belongs to the value: one too many. (A bare token is
                    // checked below, as the byte might end it rather than extend it.)
                    return Err(self.too_large());
                }
                cap_end.min(len)
            };
            match self.state {
                State::Between => {
                    let at = self.pos;
                    let b = self.buf[at];
                    self.pos += 1;
                    match CLASS[b as usize] {
                        WS => self.start = self.pos,
                        STRAY => {
                            self.start = self.pos;
                            return Err(FrameError::Stray { byte: b, discarded: 0 });
                        }
                        OPEN => {
                            self.begin_value(at);
                            match self.whole_object(at) {
                                Whole::Done(end) => {
                                    // The common case: a small plain object, complete in the buffer.
                                    self.pos = end;
                                    if let Some(range) = self.finish_value(end) {
                                        return Ok(Some(range));
                                    }
                                }
                                Whole::Open { pos, depth, in_string } => {
                                    // Clean so far: go on from where the pass stopped.
                                    (self.pos, self.depth) = (pos, depth);
                                    self.state = match in_string {
                                        true => State::Str { quote: b'"', escape: false },
                                        false => State::Nested,
                                    };
                                }
                                Whole::Bail => {
                                    self.depth = 1;
                                    self.state = State::Nested;
                                }
                            }
                        }
                        QUOTE => {
                            self.begin_value(at);
                            self.single_quoted = b == b'\'';
                            self.state = State::Str { quote: b, escape: false };
                        }
                        CLOSE | PUNCT => {
                            // A lone structural byte: a value of its own, for the caller to reject.
                            self.begin_value(at);
                            self.start = self.pos;
                            return Ok(Some(at..at + 1));
                        }
                        _ => {
                            self.begin_value(at);
                            self.state = State::Bare;
                        }
                    }
                }
                State::Nested => {
                    if !self.discarding {
                        self.skim(limit);
                    }
                    // The byte loop takes the next block at most, then the block scan resumes.
                    let limit = limit.min(self.pos.saturating_add(BLOCK));
                    loop {
                        // The hot loop: structure and short strings, without leaving the arm.
                        self.pos = skip(&self.buf, self.pos, limit, &NESTED_PLAIN);
                        if self.pos == limit {
                            break;
                        }
                        let at = self.pos;
                        let b = self.buf[at];
                        self.pos += 1;
                        match CLASS[b as usize] {
                            QUOTE => {
                                self.single_quoted |= b == b'\'';
                                self.pos = skip(&self.buf, self.pos, limit, &STRING_PLAIN);
                                if self.pos < limit && self.buf[self.pos] == b {
                                    self.pos += 1; // a string without escapes: still nested
                                } else {
                                    self.state = State::Str { quote: b, escape: false };
                                    break;
                                }
                            }
                            OPEN => {
                                self.depth = self.depth.saturating_add(1);
                                if self.depth > self.max_depth && !self.discarding {
                                    self.discarding = true;
                                    self.start = self.pos;
                                    return Err(FrameError::TooDeep { limit: self.max_depth });
                                }
                            }
                            CLOSE => {
                                self.depth -= 1;
                                if self.depth == 0 {
                                    self.state = State::Between;
                                    if let Some(range) = self.finish_value(self.pos) {
                                        return Ok(Some(range));
                                    }
                                    break;
                                }
                            }
                            _ => return Err(self.stray(b, at)), // STRAY: NESTED_PLAIN passes all else
                        }
                    }
                }
                State::Str { quote, escape: true } => {
                    let at = self.pos;
                    let b = self.buf[at];
                    self.pos += 1;
                    if CLASS[b as usize] == STRAY || b == b'\r' || b == b'\n' {
                        return Err(self.stray(b, at));
                    }
                    // QEMU reads `\'` as a quote in either kind of string; serde_json does not.
                    self.single_quoted |= b == b'\'';
                    self.state = State::Str { quote, escape: false };
                }
                State::Str { quote, escape: false } => {
                    self.pos = skip(&self.buf, self.pos, limit, &STRING_PLAIN);
                    if self.pos == limit {
                        continue;
                    }
                    let at = self.pos;
                    let b = self.buf[at];
                    self.pos += 1;
                    if b == quote {
                        if self.depth == 0 {
                            self.state = State::Between;
                            if let Some(range) = self.finish_value(self.pos) {
                                return Ok(Some(range));
                            }
                        } else {
                            self.state = State::Nested;
                        }
                    } else if b == b'\\' {
                        self.state = State::Str { quote, escape: true };
                    } else if CLASS[b as usize] == STRAY || b == b'\r' || b == b'\n' {
                        return Err(self.stray(b, at));
                    } // else the other quote character, an ordinary byte here
                }
                State::Bare => {
                    self.pos = skip(&self.buf, self.pos, limit, &BARE_PLAIN);
                    if self.pos == len {
                        break;
                    }
                    let at = self.pos;
                    let b = self.buf[at];
                    match CLASS[b as usize] {
                        // Only at the cap does scanning stop before a byte of the token.
                        OTHER => return Err(self.too_large()),
                        STRAY => {
                            self.pos += 1;
                            return Err(self.stray(b, at));
                        }
                        _ => {
                            // The token ends before this byte, which is scanned again.
                            self.state = State::Between;
                            if let Some(range) = self.finish_value(at) {
                                return Ok(Some(range));
                            }
                        }
                    }
                }
            }
        }
        if self.discarding {
            self.start = self.pos;
        }
        Ok(None)
    }

    /// The block scan, in `Nested` state: skips whole blocks of plain structure and strings
    /// (no escapes, single quotes, control or invalid bytes) at once, tracking the depth, and
    /// stops before a block that needs the byte loop: one with such bytes, one where the
    /// value ends or grows too deep, or the last partial block before `limit`. A block that
    /// ends inside a string is taken up to that string's opening quote.
    fn skim(&mut self, limit: usize) {
        while limit - self.pos >= BLOCK {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(&self.buf[self.pos..self.pos + BLOCK]);
            let m = Masks::of(&block);
            if m.bad != 0 {
                return;
            }
            let (mut quotes, mut keep, mut taken) = (m.quote, u64::MAX, BLOCK);
            if quotes.count_ones() % 2 == 1 {
                // Leave the string still open at the block's end to the byte loop.
                taken = (63 - quotes.leading_zeros()) as usize;
                keep = (1u64 << taken) - 1;
                quotes &= keep;
            }
            let outside = !prefix_xor(quotes) & keep;
            let (open, close) = (m.open & outside, m.close & outside);
            let mut depth = self.depth;
            if close.count_ones() < depth && depth + open.count_ones() <= self.max_depth {
                depth = depth + open.count_ones() - close.count_ones();
            } else {
                // Depth 0 or over the cap somewhere in the block: the byte loop handles both.
                let mut structural = open | close;
                while structural != 0 {
                    let bit = structural & structural.wrapping_neg();
                    if close & bit != 0 {
                        depth -= 1;
                        if depth == 0 {
                            return;
                        }
                    } else {
                        depth += 1;
                        if depth > self.max_depth {
                            return;
                        }
                    }
                    structural &= structural - 1;
                }
            }
            if taken == 0 {
                return;
            }
            self.depth = depth;
            self.pos += taken;
        }
    }

    /// One pass of block masks over the object or array opening at `at`, as far as the next
    /// [`WHOLE_MAX`] bytes of the buffer and the size cap allow, while it holds only what the
    /// block scan takes (plain structure and `"`-strings: no `\\`, `'`, control byte, 0xFE or
    /// 0xFF) within the depth cap. Over such bytes the byte loop would go through the same
    /// states with nothing to report, so the pass replaces it: a value that ends is
    /// [`Whole::Done`]; one that goes on past what was scanned is [`Whole::Open`], the state
    /// where the pass stopped; anything else is [`Whole::Bail`], for the byte loop to scan from
    /// the start (at most [`WHOLE_MAX`] bytes scanned twice).
    fn whole_object(&self, at: usize) -> Whole {
        let window = self.buf.len().min(at.saturating_add(self.max_size)).min(at + WHOLE_MAX);
        let (mut base, mut depth, mut in_string) = (at, 0u32, 0u64);
        while base < window {
            let n = (window - base).min(BLOCK);
            let m = match self.buf[base..].first_chunk::<BLOCK>() {
                Some(block) if n == BLOCK => Masks::of(block),
                _ => {
                    let mut block = [0u8; BLOCK];
                    block[..n].copy_from_slice(&self.buf[base..base + n]);
                    Masks::of(&block)
                }
            };
            // Bytes past the window are zeros: no quote or bracket, but `bad`.
            let valid = if n == BLOCK { u64::MAX } else { (1u64 << n) - 1 };
            let strings = prefix_xor(m.quote) ^ in_string;
            in_string = 0u64.wrapping_sub(strings >> 63);
            let (open, close) = (m.open & !strings, m.close & !strings);
            let mut structural = open | close;
            while structural != 0 {
                let bit = structural & structural.wrapping_neg();
                if close & bit != 0 {
                    depth -= 1; // `at` opens: depth is 1 or more before any close
                    if depth == 0 {
                        let upto = bit | (bit - 1);
                        if m.bad & upto != 0 {
                            return Whole::Bail;
                        }
                        return Whole::Done(base + bit.trailing_zeros() as usize + 1);
                    }
                } else {
                    depth += 1;
                    if depth > self.max_depth {
                        return Whole::Bail;
                    }
                }
                structural &= structural - 1;
            }
            if m.bad & valid != 0 {
                return Whole::Bail;
            }
            base += n;
        }
        Whole::Open { pos: window, depth, in_string: in_string != 0 }
    }

    /// Starts skipping the value being scanned, which would grow past the cap.
    fn too_large(&mut self) -> FrameError {
        self.discarding = true;
        self.start = self.pos;
        FrameError::TooLarge { limit: self.max_size }
    }

    /// Ends the value at `end`; returns its byte range unless it was being skipped.
    fn finish_value(&mut self, end: usize) -> Option<std::ops::Range<usize>> {
        let start = self.start;
        self.start = end;
        self.depth = 0;
        if std::mem::take(&mut self.discarding) {
            return None;
        }
        Some(start..end)
    }

    /// The frame at `range`, as [`next_range`](Self::next_range) returned it (and before the
    /// next call that changes the buffer).
    pub fn frame_at(&self, range: std::ops::Range<usize>) -> Frame<'_> {
        self.frame(range)
    }

    fn frame(&self, range: std::ops::Range<usize>) -> Frame<'_> {
        Frame { bytes: &self.buf[range], single_quoted: self.single_quoted }
    }

    fn stray(&mut self, byte: u8, at: usize) -> FrameError {
        let discarded = if self.discarding { 0 } else { at - self.start };
        self.reset();
        self.start = self.pos;
        FrameError::Stray { byte, discarded }
    }

    /// Ends the stream, once [`next_frame`](Framer::next_frame) has returned `Ok(None)`: a
    /// bare token still open (`1` at EOF) becomes a frame. A partial object or string is left
    /// for [`take_partial`](Framer::take_partial) to drop.
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        if self.state != State::Bare {
            return None;
        }
        self.state = State::Between;
        let range = self.finish_value(self.pos)?;
        Some(self.frame(range))
    }

    /// Drops and returns the length of any partial value (e.g. after the peer hung up).
    pub fn take_partial(&mut self) -> usize {
        let n = self.buf.len() - self.start;
        self.reset();
        self.start = self.buf.len();
        self.pos = self.buf.len();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every result of framing `input` fed in reads of `step` bytes, then the end of stream.
    fn outcomes(
        input: &[u8],
        step: usize,
        max_size: usize,
        max_depth: u32,
    ) -> Vec<Result<(Vec<u8>, bool), FrameError>> {
        let mut framer = Framer::with_limits(max_size, max_depth);
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            framer.extend(chunk);
            loop {
                match framer.next_frame() {
                    Ok(Some(f)) => out.push(Ok((f.bytes.to_vec(), f.single_quoted))),
                    Ok(None) => break,
                    Err(e) => out.push(Err(e)),
                }
            }
        }
        if let Some(f) = framer.finish() {
            out.push(Ok((f.bytes.to_vec(), f.single_quoted)));
        }
        out.push(Ok((Vec::new(), framer.take_partial() > 0)));
        out
    }

    /// Mostly what the block scan takes whole (plain structure and strings), with now and
    /// then a byte that sends it back to the byte loop.
    const PIECES: &[&[u8]] = &[
        b"{",
        b"{",
        b"}",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"\"",
        b"\"",
        b"\"",
        b"abc",
        b"name",
        b": ",
        b", ",
        b"12",
        b"\xc3\xa9",
        b"{\"name\": \"query-status\", \"meta-type\": \"command\"}",
        b"\"}{][\"",
        b"\\",
        b"\\\"",
        b"'",
        b"\n",
        b"\t",
        b"\xff",
        b"\x01",
    ];

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec((0..PIECES.len(), 0..100u8), 0..400).prop_map(|picks| {
            let mut data = Vec::new();
            for (i, rare) in picks {
                // The last seven pieces (escapes, quotes, control and invalid bytes) are rare.
                let i = if i >= PIECES.len() - 7 && rare > 3 { i % (PIECES.len() - 7) } else { i };
                data.extend_from_slice(PIECES[i]);
            }
            data
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Fed one byte at a time the framer never has a whole block to scan: the block scan
        /// must give exactly what the byte loop gives, caps and errors included.
        #[test]
        fn block_scan_matches_the_byte_loop(
            data in stream(),
            max_size in prop_oneof![8..200usize, 200..5000usize],
            max_depth in 1..12u32,
            step in prop_oneof![Just(usize::MAX), 64..300usize],
        ) {
            let bytewise = outcomes(&data, 1, max_size, max_depth);
            prop_assert_eq!(outcomes(&data, step, max_size, max_depth), bytewise);
        }
    }

    /// Small objects complete in one read take [`Framer::whole_object`]; fed a byte at a time
    /// they never do. Both must agree at the edges of its window: block boundaries, the size
    /// and depth caps, strings holding brackets, and bytes it leaves to the byte loop.
    #[test]
    fn whole_objects_frame_as_the_byte_loop_does() {
        let reply =
            br#"{"return": {"status": "running", "singlestep": false, "running": true}, "id": 12345}"#;
        let mut cases: Vec<Vec<u8>> = vec![
            [&reply[..], b"\r\n", reply, b"\r\n", reply].concat(),
            br#"{"a": "}{][", "b": [[{}]], "c": "\"x"}{"d": 'e'}[1, "]"]{"#.to_vec(),
            b"{\"a\": 1\n}{\"a\": \"\xff\"}{\"t\": \"\t\"}{}".to_vec(),
        ];
        // An object whose closing brace lands on every position around the block edges.
        for len in 58..140 {
            let mut obj = b"{\"k\": \"".to_vec();
            obj.resize(len - 2, b'x');
            obj.extend_from_slice(b"\"}");
            cases.push([&obj[..], b"\n", &obj, b" {"].concat());
        }
        for input in &cases {
            for max_size in [1, 2, 20, 63, 64, 65, 86, 87, 128, DEFAULT_MAX_MESSAGE_SIZE] {
                for max_depth in [1, 2, 3, DEFAULT_MAX_DEPTH] {
                    let bytewise = outcomes(input, 1, max_size, max_depth);
                    assert_eq!(
                        outcomes(input, usize::MAX, max_size, max_depth),
                        bytewise,
                        "{:?}, caps {max_size}/{max_depth}",
                        String::from_utf8_lossy(input)
                    );
                }
            }
        }
    }

    #[test]
    fn block_masks_match_the_portable_ones() {
        let check = |block: &[u8; BLOCK]| {
            let (fast, slow) = (Masks::of(block), Masks::portable(block));
            assert_eq!(
                (fast.quote, fast.open, fast.close, fast.bad),
                (slow.quote, slow.open, slow.close, slow.bad),
                "block {block:?}"
            );
        };
        // Every byte value at every position, among plain bytes.
        for b in 0..=255u8 {
            for at in 0..BLOCK {
                let mut block = [b'a'; BLOCK];
                block[at] = b;
                check(&block);
            }
        }
        // Every byte value everywhere at once, in shifting orders.
        for shift in 0..=255u8 {
            let mut block = [0u8; BLOCK];
            for (i, b) in block.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(4).wrapping_add(shift);
            }
            check(&block);
        }
    }

    #[test]
    fn bits_gathers_every_flag_pattern() {
        for pattern in 0..=255u8 {
            let mut flags = [0u8; BLOCK];
            for (i, f) in flags.iter_mut().enumerate() {
                // Each group of eight gets its own pattern, so the groups are told apart too.
                *f = (pattern.rotate_left(i as u32 / 8) >> (i % 8)) & 1;
            }
            let want = flags.iter().enumerate().fold(0u64, |m, (i, &f)| m | u64::from(f) << i);
            assert_eq!(bits(&flags), want, "pattern {pattern:#010b}");
        }
    }

    #[test]
    fn block_scan_takes_a_large_reply_whole() {
        let entry = br#"{"name": "query-status", "ret-type": "1", "meta-type": "command", "arg-type": "0"}"#;
        let mut reply = br#"{"return": ["#.to_vec();
        for i in 0..200 {
            if i > 0 {
                reply.extend_from_slice(b", ");
            }
            reply.extend_from_slice(entry);
        }
        reply.extend_from_slice(br#"], "id": "}"}"#);
        for step in [1, 63, 64, 65, 1000, usize::MAX] {
            let mut input = reply.clone();
            input.extend_from_slice(b"\n{}");
            let out = outcomes(&input, step, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_DEPTH);
            assert_eq!(out.len(), 3, "step {step}");
            assert_eq!(out[0].as_ref().unwrap().0, reply, "step {step}");
            assert_eq!(out[1].as_ref().unwrap().0, b"{}", "step {step}");
        }
        // One byte short of the cap: too large, and the next value still frames.
        let mut input = reply.clone();
        input.extend_from_slice(b"{}");
        let out = outcomes(&input, usize::MAX, reply.len() - 1, DEFAULT_MAX_DEPTH);
        assert_eq!(out[0], Err(FrameError::TooLarge { limit: reply.len() - 1 }));
        assert_eq!(out[1].as_ref().unwrap().0, b"{}");
    }
}
