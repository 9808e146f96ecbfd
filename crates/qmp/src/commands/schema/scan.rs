//! QEMU's schema reply read by a scanner made for it. The reply is about 200 KB of short
//! strings in a handful of fixed shapes, and serde's token-by-token path spends most of its
//! time on the tokens' plumbing: this scanner reads the same shapes directly into the same
//! [`Flat`] and [`FlatMember`] the serde path fills, and builds the entries with the same
//! [`Flat::take_info`]. Anything it does not expect, it hands back (`None`) to serde's path,
//! which then decodes or refuses it; so what it returns is what serde would.

use serde_json::Value;

use super::{Flat, FlatMember, MetaKind, SchemaInfo, SchemaInfoObjectVariant, SchemaStr};

/// The entries of a `query-qmp-schema` return (`text`, the JSON array), when every entry is in
/// the shape QEMU writes: only the members this crate reads, each once, with plain strings
/// (no escapes). `None` for anything else: an unknown member, a duplicate, an escape, a null
/// where a string belongs, a `default` other than null, bad JSON.
pub(super) fn entries(text: &str) -> Option<Vec<SchemaInfo>> {
    let mut scan = Scan { text, pos: 0, strs: Vec::new(), members: Vec::new(), variants: Vec::new() };
    // QEMU's entries average ~200 bytes: room for one per 128 bytes spares copying the list
    // as it grows, and the spare room is given back in place at the end.
    let mut entries = Vec::with_capacity((text.len() / 128).min(1 << 14));
    scan.array(&mut entries, Scan::entry)?;
    scan.skip_ws();
    entries.shrink_to_fit();
    (scan.pos == text.len()).then_some(entries)
}

/// A cursor over the text. `pos` only ever stops on an ASCII byte or at the end, so slices
/// between two positions are whole UTF-8.
struct Scan<'a> {
    text: &'a str,
    pos: usize,
    // Lists are read into these, then copied out at their exact length: one allocation
    // each, where growing a `Vec` element by element reallocates two or three times.
    strs: Vec<SchemaStr>,
    members: Vec<FlatMember>,
    variants: Vec<SchemaInfoObjectVariant>,
}

/// Fills an empty slot; `None` (give up) when it was already filled, as serde's path keeps the
/// last of duplicates in some places and refuses them in others.
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// Where a plain string stops: the first quote, backslash or control character in `bytes`.
/// Eight bytes at a time (the schema's strings are mostly shorter), then one at a time.
fn stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte below `n`; exact for the lowest such byte, which is all
    // that is read.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let hits =
            below(x ^ (ONES * u64::from(b'"')), 1) | below(x ^ (ONES * u64::from(b'\\')), 1) | below(x, 0x20);
        if hits != 0 {
            return Some(i * 8 + hits.trailing_zeros() as usize / 8);
        }
    }
    let done = bytes.len() - chunks.remainder().len();
    chunks.remainder().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| done + i)
}

impl<'a> Scan<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then takes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        let hit = self.bytes().get(self.pos) == Some(&byte);
        self.pos += usize::from(hit);
        hit
    }

    /// Skips whitespace, then takes `word` if it comes next.
    fn literal(&mut self, word: &str) -> bool {
        self.skip_ws();
        let hit = self.bytes()[self.pos..].starts_with(word.as_bytes());
        if hit {
            self.pos += word.len();
        }
        hit
    }

    /// A string without escapes or control characters (which serde refuses).
    fn str(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let len = stop(&self.bytes()[start..])?;
        self.pos = start + len;
        if self.bytes()[self.pos] != b'"' {
            return None;
        }
        self.pos += 1;
        Some(&self.text[start..start + len])
    }

    fn string(&mut self) -> Option<SchemaStr> {
        self.str().map(SchemaStr::from)
    }

    fn strings(&mut self) -> Option<Vec<SchemaStr>> {
        self.list(|s| &mut s.strs, Scan::string)
    }

    /// An array read into the scratch list `scratch` picks, returned at its exact length.
    fn list<T>(
        &mut self,
        scratch: fn(&mut Self) -> &mut Vec<T>,
        item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut buf = std::mem::take(scratch(self));
        buf.clear();
        self.array(&mut buf, item)?;
        // Not `mem::take`: that would hand over the scratch's spare capacity and leave it none.
        #[allow(clippy::drain_collect)]
        let out = buf.drain(..).collect();
        *scratch(self) = buf;
        Some(out)
    }

    fn bool(&mut self) -> Option<bool> {
        if self.literal("true") {
            Some(true)
        } else if self.literal("false") {
            Some(false)
        } else {
            None
        }
    }

    /// `[item, ...]`, each item read by `item` and pushed to `out`.
    fn array<T>(&mut self, out: &mut Vec<T>, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        if self.eat(b']') {
            return Some(());
        }
        loop {
            out.push(item(self)?);
            if !self.eat(b',') {
                return self.eat(b']').then_some(());
            }
        }
    }

    /// `{"key": value, ...}`, each value read by `member`, which gives up on a key it does not
    /// take.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.str()?;
            if !self.eat(b':') {
                return None;
            }
            member(self, key)?;
            if !self.eat(b',') {
                return self.eat(b'}').then_some(());
            }
        }
    }

    fn entry(&mut self) -> Option<SchemaInfo> {
        let mut f = Flat::default();
        self.object(|s, key| match key {
            "name" => set(&mut f.name, s.string()?),
            "meta-type" => set(&mut f.meta_type, MetaKind::from(s.str()?)),
            "features" => set(&mut f.features, s.strings()?),
            "json-type" => set(&mut f.json_type, s.string()?),
            "values" => set(&mut f.values, s.strings()?),
            "members" => set(&mut f.members, s.list(|s| &mut s.members, Scan::member)?),
            "element-type" => set(&mut f.element_type, s.string()?),
            "tag" => set(&mut f.tag, s.string()?),
            "variants" => set(&mut f.variants, s.list(|s| &mut s.variants, Scan::variant)?),
            "arg-type" => set(&mut f.arg_type, s.string()?),
            "ret-type" => set(&mut f.ret_type, s.string()?),
            "allow-oob" => set(&mut f.allow_oob, s.bool()?),
            _ => None,
        })?;
        f.take_info::<serde_json::Error>().ok()
    }

    fn member(&mut self) -> Option<FlatMember> {
        let mut m = FlatMember { name: None, kind: None, default: None, features: None };
        self.object(|s, key| match key {
            "name" => set(&mut m.name, s.string()?),
            "type" => set(&mut m.kind, s.string()?),
            // QEMU marks an optional member with `"default": null`; any other value is left
            // to serde's path.
            "default" => s.literal("null").then_some(()).and_then(|()| set(&mut m.default, Value::Null)),
            "features" => set(&mut m.features, s.strings()?),
            _ => None,
        })?;
        Some(m)
    }

    fn variant(&mut self) -> Option<SchemaInfoObjectVariant> {
        let (mut case, mut kind) = (None, None);
        self.object(|s, key| match key {
            "case" => set(&mut case, s.string()?),
            "type" => set(&mut kind, s.string()?),
            _ => None,
        })?;
        Some(SchemaInfoObjectVariant { case: case?, kind: kind? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One entry of each shape QEMU 7.2's schema has, as QEMU writes them (copied from its
    /// reply, members cut short).
    const QEMU_SHAPES: &str = r#"[{"name": "query-status", "ret-type": "1", "meta-type": "command", "arg-type": "0"}, {"name": "SHUTDOWN", "meta-type": "event", "arg-type": "2"}, {"name": "blockdev-snapshot", "ret-type": "0", "meta-type": "command", "arg-type": "27", "features": ["allow-write-only-overlay"]}, {"name": "migrate-recover", "ret-type": "0", "allow-oob": true, "meta-type": "command", "arg-type": "158"}, {"name": "MEM_UNPLUG_ERROR", "meta-type": "event", "arg-type": "208", "features": ["deprecated"]}, {"name": "0", "members": [], "meta-type": "object"}, {"name": "[10]", "element-type": "10", "meta-type": "array"}, {"name": "49", "tag": "driver", "variants": [{"case": "blkdebug", "type": "294"}, {"case": "blklogwrites", "type": "295"}], "members": [{"name": "driver", "type": "281"}, {"name": "node-name", "default": null, "type": "str"}], "meta-type": "object"}, {"name": "str", "json-type": "string", "meta-type": "builtin"}, {"name": "118", "members": [{"name": "tpm-tis"}, {"name": "tpm-crb", "features": ["unstable"]}], "meta-type": "enum", "values": ["tpm-tis", "tpm-crb"]}, {"name": "290", "members": [{"type": "str"}, {"type": "37"}], "meta-type": "alternate"}]"#;

    #[test]
    fn a_string_stops_at_its_first_quote_backslash_or_control_character() {
        for len in 0..20 {
            for fill in ["a", "é", " ", "\u{7f}", "~"] {
                let body: String = fill.repeat(len);
                for end in ["\"", "\\", "\t", "\u{0}", "\u{1f}", "\n"] {
                    let text = format!("{body}{end}tail\"");
                    assert_eq!(stop(text.as_bytes()), Some(body.len()), "{text:?}");
                }
                assert_eq!(stop(body.as_bytes()), None, "{body:?}");
            }
        }
    }

    fn serde(text: &str) -> Result<Vec<SchemaInfo>, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn qemus_shapes_are_scanned_to_what_serde_decodes() {
        let scanned = entries(QEMU_SHAPES).expect("QEMU's own shapes are scanned");
        assert_eq!(scanned, serde(QEMU_SHAPES).unwrap());
        assert_eq!(scanned.len(), 11);
        assert_eq!(entries("[]"), Some(vec![]));
        assert_eq!(entries(" [ ]\r\n"), Some(vec![]));
    }

    #[test]
    fn what_it_does_not_expect_is_left_to_serde() {
        let cases = [
            // serde decodes these (the unknown members are kept, the escape unescaped)...
            r#"[{"name": "e", "meta-type": "event", "arg-type": "0", "future": 1}]"#,
            r#"[{"name": "a\"b", "meta-type": "builtin", "json-type": "int"}]"#,
            r#"[{"name": "5", "meta-type": "object", "members": [{"name": "a", "type": "int", "x": 1}]}]"#,
            r#"[{"name": "5", "meta-type": "object", "members": [{"name": "a", "type": "int", "default": 3}]}]"#,
            r#"[{"name": "x", "name": "y", "meta-type": "builtin", "json-type": "int"}]"#,
            // ...and refuses these.
            r#"[{"name": null, "meta-type": "builtin", "json-type": "int"}]"#,
            r#"[{"name": "x", "meta-type": "builtin"}]"#,
            r#"[{"name": "x", "meta-type": "builtin", "json-type": "int"}] x"#,
            r#"[{"name": "x", "meta-type": "builtin", "json-type": "int"},]"#,
            r#"[{"name": "x", "meta-type": "command", "arg-type": "0", "ret-type": "1", "allow-oob": tru}]"#,
            r#"[{"name": "x	y", "meta-type": "builtin", "json-type": "int"}]"#,
            r#"[{"name": "5", "meta-type": "object", "members": [{"name": "a", "name": "b", "type": "int"}]}]"#,
            r#"[{"name": "5", "meta-type": "object", "members": [], "variants": [{"case": "a"}]}]"#,
            r#"[{"name": "x""#,
        ];
        for text in cases {
            assert_eq!(entries(text), None, "{text}");
        }
        assert!(serde(cases[0]).is_ok() && serde(cases[4]).is_ok());
        assert!(serde(cases[5]).is_err() && serde(cases[13]).is_err());
    }

    /// A member value in one of the shapes QEMU writes, or (rarely) one it does not.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            15 => "[a-z0-9-]{0,30}",
            1 => "[a-zé\"\\\\\t]{0,6}",
        ]
    }

    fn quoted(s: &str) -> String {
        // Written the way a JSON writer would, except that a control character is left raw.
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn words(n: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(word(), 0..n)
            .prop_map(|v| format!("[{}]", v.iter().map(|w| quoted(w)).collect::<Vec<_>>().join(", ")))
    }

    fn member() -> impl Strategy<Value = String> {
        let parts = (
            prop::option::weighted(0.9, word()),
            prop::option::weighted(0.9, word()),
            prop::option::of(prop_oneof![6 => Just("null"), 1 => Just("1")]),
            prop::option::of(words(3)),
        );
        parts.prop_map(|(name, kind, default, features)| {
            let mut m = Vec::new();
            if let Some(v) = name {
                m.push(format!("\"name\": {}", quoted(&v)));
            }
            if let Some(v) = kind {
                m.push(format!("\"type\": {}", quoted(&v)));
            }
            if let Some(v) = default {
                m.push(format!("\"default\": {v}"));
            }
            if let Some(v) = features {
                m.push(format!("\"features\": {v}"));
            }
            format!("{{{}}}", m.join(", "))
        })
    }

    /// An entry of a random meta-type: the members that meta-type needs, most of the time;
    /// any other member now and then; rarely an unknown one; in random order.
    fn entry() -> impl Strategy<Value = String> {
        let meta = prop_oneof![
            Just("builtin"),
            Just("enum"),
            Just("array"),
            Just("object"),
            Just("alternate"),
            Just("command"),
            Just("event"),
            Just("hologram"),
        ];
        meta.prop_flat_map(|meta| {
            let needs = |key: &str| match (meta, key) {
                ("builtin", "json-type") | ("enum", "values") | ("array", "element-type") => 0.92,
                ("object" | "alternate", "members") | ("command" | "event", "arg-type") => 0.92,
                ("command", "ret-type") => 0.92,
                ("object", "tag" | "variants") | ("command", "allow-oob") | (_, "features") => 0.3,
                ("enum", "members") => 0.5,
                _ => 0.08,
            };
            let string = move |key: &'static str| {
                prop::option::weighted(needs(key), word())
                    .prop_map(move |v| v.map(|v| format!("\"{key}\": {}", quoted(&v))))
            };
            let members = prop::option::weighted(needs("members"), prop::collection::vec(member(), 0..4))
                .prop_map(|v| v.map(|v| format!("\"members\": [{}]", v.join(", "))));
            let variants =
                prop::option::weighted(needs("variants"), prop::collection::vec((word(), word()), 0..3))
                    .prop_map(|v| {
                        v.map(|v| {
                            let v: Vec<_> = v
                                .iter()
                                .map(|(c, t)| format!("{{\"case\": {}, \"type\": {}}}", quoted(c), quoted(t)))
                                .collect();
                            format!("\"variants\": [{}]", v.join(", "))
                        })
                    });
            let features = prop::option::weighted(needs("features"), words(3));
            let values = prop::option::weighted(needs("values"), words(4));
            let oob = prop::option::weighted(needs("allow-oob"), any::<bool>());
            (
                (prop::option::weighted(0.97, word()), features, string("json-type"), values),
                (members, string("element-type"), string("tag"), variants),
                (string("arg-type"), string("ret-type"), oob),
                (prop::option::weighted(0.03, Just("\"future\": [1, {}]")), any::<u64>()),
            )
                .prop_map(
                    move |(
                        (name, features, json, values),
                        (members, element, tag, variants),
                        (arg, ret, oob),
                        (extra, seed),
                    )| {
                        let mut m: Vec<String> =
                            [json, members, element, tag, variants, arg, ret].into_iter().flatten().collect();
                        m.push(format!("\"meta-type\": \"{meta}\""));
                        m.extend(name.map(|v| format!("\"name\": {}", quoted(&v))));
                        m.extend(features.map(|v| format!("\"features\": {v}")));
                        m.extend(values.map(|v| format!("\"values\": {v}")));
                        m.extend(oob.map(|v| format!("\"allow-oob\": {v}")));
                        m.extend(extra.map(str::to_owned));
                        // A seeded shuffle: the members' order varies, as QEMU's does.
                        let mut seed = seed | 1;
                        for i in (1..m.len()).rev() {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            m.swap(i, (seed % (i as u64 + 1)) as usize);
                        }
                        format!("{{{}}}", m.join(if seed % 3 == 0 { ",\n " } else { ", " }))
                    },
                )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the scanner returns, serde's path returns too; and an entry in QEMU's
        /// shapes (plain strings, known members, null defaults) is scanned, not left to serde.
        #[test]
        fn the_scanner_agrees_with_serde(list in prop::collection::vec(entry(), 1..4)) {
            let text = format!("[{}]", list.join(", "));
            let scanned = entries(&text);
            let decoded = serde(&text);
            if let Some(v) = &scanned {
                prop_assert_eq!(Some(v), decoded.as_ref().ok());
            }
            let plain = !text.contains('\\') && !text.contains('\t') && !text.contains("future")
                && !text.contains("\"default\": 1");
            if plain && decoded.is_ok() {
                prop_assert!(scanned.is_some(), "left to serde: {}", text);
            }
        }
    }
}
