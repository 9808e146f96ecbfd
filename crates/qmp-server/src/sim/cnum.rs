//! Numbers in text as QEMU's C code reads them (`strtoul`, `strtoll`), for the property
//! values the simulator checks as QEMU does.

/// C's leading blanks skipped, then an optional sign: whether it was `-`, and the rest.
fn blanks_and_sign(text: &str) -> (bool, &str) {
    let s = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// `strtoul(text, &end, 16)`: the value (wrapped as C wraps a negated one) and what follows,
/// or `None` when no digit was read. A `0x` without digits after it counts as read, as
/// QEMU 7.2 accepts `addr=0x` as slot 0.
pub(crate) fn strtoul_hex(text: &str) -> Option<(u64, &str)> {
    let (negative, s) = blanks_and_sign(text);
    let (prefixed, s) = match s.get(..2) {
        Some("0x" | "0X") => (true, &s[2..]),
        _ => (false, s),
    };
    let digits = s.bytes().take_while(u8::is_ascii_hexdigit).count();
    if digits == 0 && !prefixed {
        return None;
    }
    // Saturates as strtoul does on overflow (any such value is out of range here anyway).
    let value = s[..digits].bytes().fold(0u64, |v, b| {
        v.saturating_mul(16).saturating_add(u64::from((b as char).to_digit(16).unwrap_or(0)))
    });
    Some((if negative { value.wrapping_neg() } else { value }, &s[digits..]))
}

/// An integer as `strtoll(text, &end, 0)` reads it, all of `text` used: leading blanks, a
/// sign, then hex after `0x`, octal after `0`, else decimal. `None` when it is not one or
/// does not fit 64 bits.
pub(crate) fn parse_c_integer(text: &str) -> Option<i128> {
    let (negative, s) = blanks_and_sign(text);
    let (radix, digits) = match s.get(..2) {
        Some("0x" | "0X") => (16, &s[2..]),
        _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..]),
        _ => (10, s),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -i128::from(magnitude) } else { i128::from(magnitude) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_in_cs_bases() {
        for (text, want) in [("010", 8), ("0x10", 16), (" 7", 7), ("-1", -1), ("+5", 5), ("0", 0)] {
            assert_eq!(parse_c_integer(text), Some(want), "{text}");
        }
        for bad in ["08", "0x", "5 ", "", "--1", "+-1", "1k", "99999999999999999999"] {
            assert_eq!(parse_c_integer(bad), None, "{bad}");
        }
        assert_eq!(strtoul_hex("1f.2"), Some((31, ".2")));
        assert_eq!(strtoul_hex("-1").map(|(v, _)| v), Some(u64::MAX));
    }
}
