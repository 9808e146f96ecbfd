//! Tests of the Python-literal parser: each form, each refusal, and properties.

use super::*;
use serde_json::json;

fn ok(s: &str) -> Value {
    parse(s).unwrap_or_else(|e| panic!("{s:?}: {e:?}"))
}

#[test]
fn json_names_and_python_constants() {
    assert_eq!(ok("[true, false, null]"), json!([true, false, null]));
    assert_eq!(ok("[True, False, None]"), json!([true, false, null]));
    // Only these spellings: FuzzyJSON maps exact names.
    assert_eq!(parse("[TRUE]"), Err(LitError::Syntax));
    assert_eq!(parse("[nope]"), Err(LitError::Syntax));
}

#[test]
fn strings_in_every_quoting() {
    assert_eq!(ok("['a', \"b\"]"), json!(["a", "b"]));
    assert_eq!(ok("['''x'y''', \"\"\"q\"\"\"]"), json!(["x'y", "q"]));
    assert_eq!(ok("['a' 'b' \"c\"]"), json!(["abc"]));
    assert_eq!(ok("[u'x', U'y']"), json!(["x", "y"]));
    assert_eq!(ok(r"[r'a\nb', R'\'']"), json!([r"a\nb", r"\'"]));
    assert_eq!(ok("['''a\nb''']"), json!(["a\nb"]));
    assert_eq!(parse("['a\nb']"), Err(LitError::Syntax));
    assert_eq!(parse("['abc]"), Err(LitError::Syntax));
    assert_eq!(parse("[f'x']"), Err(LitError::Syntax));
    assert_eq!(parse("['a' b'c']"), Err(LitError::Syntax));
    assert_eq!(parse("['a' x]"), Err(LitError::Syntax));
}

#[test]
fn string_escapes() {
    assert_eq!(
        ok(r#"['\\ \' \" \a\b\f\n\r\t\v \x41 \101 \0 \u00e9 \U0001F600 \d']"#),
        json!(["\\ ' \" \x07\x08\x0c\n\r\t\x0b A A \0 é 😀 \\d"])
    );
    assert_eq!(ok("['a\\\nb']"), json!(["ab"]));
    assert_eq!(parse(r"['\x4']"), Err(LitError::Syntax));
    assert_eq!(parse(r"['\U00110000']"), Err(LitError::Syntax));
    assert!(matches!(parse(r"['\ud800']"), Err(LitError::NotJson(_))));
    assert!(matches!(parse(r"['\N{BULLET}']"), Err(LitError::NotJson(_))));
}

#[test]
fn numbers() {
    assert_eq!(
        ok("[0, 12, -3, +4, 1_000, 0x1F, 0o17, 0b101, 0X_f, 000]"),
        json!([0, 12, -3, 4, 1000, 31, 15, 5, 15, 0])
    );
    assert_eq!(
        ok("[1.5, -.5, 1., 1e3, 1.e-2, 01.5, 1_0.2_5]"),
        json!([1.5, -0.5, 1.0, 1000.0, 0.01, 1.5, 10.25])
    );
    assert_eq!(ok("[18446744073709551615, -9223372036854775808]"), json!([u64::MAX, i64::MIN]));
    assert_eq!(
        ok("[-(1), - (2), (-3), -((4.5))]"),
        json!([-1, -2, -3, -4.5]),
        "parentheses vanish in the AST"
    );
    assert_eq!(parse("[-(-1)]"), Err(LitError::Syntax));
    assert_eq!(parse("[-(1,)]"), Err(LitError::Syntax));
    assert_eq!(parse("[(1+2j)+3j]"), Err(LitError::Syntax));
    assert!(matches!(parse("[(-1)+(2j)]"), Err(LitError::NotJson(_))));
    for bad in
        ["[0123]", "[1_]", "[1__0]", "[0x]", "[0b2]", "[1abc]", "[1e]", "[--1]", "[-True]", "[1+2]", "[.]"]
    {
        assert_eq!(parse(bad), Err(LitError::Syntax), "{bad}");
    }
    for not_json in
        ["[18446744073709551616]", "[-9223372036854775809]", "[1e999]", "[1j]", "[1+2j]", "[-1.5-2J]"]
    {
        assert!(matches!(parse(not_json), Err(LitError::NotJson(_))), "{not_json}");
    }
}

#[test]
fn containers() {
    assert_eq!(ok("[]"), json!([]));
    assert_eq!(ok("{}"), json!({}));
    assert_eq!(ok("[1, [2, (3, 4)], (), (5,), (6)]"), json!([1, [2, [3, 4]], [], [5], 6]));
    assert_eq!(ok("{'a': 1, 'b': {'c': [1,],},}"), json!({"a": 1, "b": {"c": [1]}}));
    assert_eq!(ok("{'a': 1, 'a': 2}"), json!({"a": 2}));
    assert_eq!(ok("[1], [2]"), json!([[1], [2]]));
    assert_eq!(ok("[1],"), json!([[1]]));
    assert_eq!(ok("[ 1 ,\n 2 ] # comment"), json!([1, 2]));
    assert_eq!(ok("[1,\\\n2]\n"), json!([1, 2]));
    for bad in [
        "[1, 2",
        "[1 2]",
        "[,]",
        "{'a' 1}",
        "{'a': }",
        "{'a': 1, 'b'}",
        "[1]]",
        "[*a]",
        "{**a}",
        "[1]\n[2]",
        "[(1, 2]",
    ] {
        assert_eq!(parse(bad), Err(LitError::Syntax), "{bad}");
    }
    assert!(matches!(parse("{1, 2}"), Err(LitError::NotJson(_))));
    assert!(matches!(parse("{1,}"), Err(LitError::NotJson(_))));
    assert!(matches!(parse("[b'x']"), Err(LitError::NotJson(_))));
    assert!(matches!(parse("[...]"), Err(LitError::NotJson(_))));
}

#[test]
fn dict_keys_as_json_dumps_writes_them() {
    assert_eq!(
        ok("{1: 'a', True: 'b', None: 'c', 1.5: 'd', 1e20: 'e', 1e-5: 'f', 2.0: 'g'}"),
        json!({"1": "b", "null": "c", "1.5": "d", "1e+20": "e", "1e-05": "f", "2.0": "g"}),
        "1 == True in Python: one key, the first spelling, the last value"
    );
    assert_eq!(ok("{False: 1, 0.0: 2, 'x': 3, 'x': 4}"), json!({"false": 2, "x": 4}));
    assert!(matches!(parse("{[1]: 2}"), Err(LitError::NotJson(_))));
    assert!(matches!(parse("{(1, 2): 2}"), Err(LitError::NotJson(_))));
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let deep = "[".repeat(100_000);
    assert_eq!(parse(&deep), Err(LitError::TooDeep));
    let nested = |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
    for (open, close) in [("[", "]"), ("(", ",)"), ("{'k': ", "}")] {
        assert!(parse(&nested(open, close, MAX_DEPTH)).is_ok(), "{open} {MAX_DEPTH} deep");
        assert_eq!(parse(&nested(open, close, MAX_DEPTH + 1)), Err(LitError::TooDeep), "{open}");
    }
    // Parentheses around a value are a level too while being read.
    assert_eq!(parse(&nested("(", ")", MAX_DEPTH + 1)), Err(LitError::TooDeep));
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text: an answer, never a panic.
        #[test]
        fn any_text_gets_an_answer(s in "\\PC{0,64}") {
            let _ = parse(&s);
        }

        /// Text made of the characters the grammar cares about, where bugs would hide.
        #[test]
        fn grammar_soup_gets_an_answer(s in r#"[\[\]{}(),:'"\\ \n#+\-.0-9eEjJxob_rRbBuUfFTrueFalsNnl]{0,48}"#) {
            let _ = parse(&s);
        }

        /// Whatever JSON serde_json writes, this parser reads back the same.
        #[test]
        fn json_round_trips(v in json_value()) {
            let text = serde_json::to_string(&v).unwrap();
            prop_assert_eq!(parse(&text), Ok(v));
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            "[a-z \\\\'\"\u{e9}\u{1F600}]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{0,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}

/// The `pyliteral` fuzz target's body (`fuzz/fuzz_targets/pyliteral.rs`), run here so that CI
/// exercises it without a fuzzer.
mod fuzz_runner {
    use super::super::fuzz_body::{self, PIECES};
    use crate::args::{nested_list, on_small_stack, MAX_DEPTH};
    use proptest::prelude::*;

    /// Text made of the grammar's pieces, which reaches the parser's states far more often
    /// than random text does.
    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(0..PIECES.len(), 0..40)
            .prop_map(|picks| picks.into_iter().map(|i| PIECES[i]).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn pyliteral_body_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
            fuzz_body::run(&data);
        }

        #[test]
        fn pyliteral_body_token_soup(text in soup()) {
            fuzz_body::run(text.as_bytes());
        }
    }

    /// Inputs that stress one path, run every time, on a stack smaller than the shell's.
    #[test]
    fn pyliteral_body_fixed_inputs() {
        on_small_stack(|| {
            let dict = |n: usize| format!("{}1{}", "{'k': ".repeat(n), "}".repeat(n));
            for text in [
                String::new(),
                nested_list(MAX_DEPTH),
                nested_list(MAX_DEPTH + 1),
                dict(MAX_DEPTH),
                format!("[{}1{}]", "(".repeat(MAX_DEPTH - 1), ",)".repeat(MAX_DEPTH - 1)),
                format!("{}1{}", "-(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH)),
                "[".repeat(100_000),
            ] {
                fuzz_body::check(&text);
            }
        });
    }
}
