//! The line parser: every syntax form qmp-shell accepts, and each error.

use serde_json::{json, Value};

use super::parse::{opens_transaction, tokenize, LineParser, Parsed, Request, PROMPT, TRANS_PROMPT};

fn parse(line: &str) -> Parsed {
    LineParser::new().parse(line).unwrap_or_else(|e| panic!("{line:?} failed: {e}"))
}

fn request(line: &str) -> Request {
    match parse(line) {
        Parsed::Request(r) => r,
        other => panic!("{line:?} gave {other:?}"),
    }
}

fn args(line: &str) -> Value {
    Value::Object(request(line).arguments)
}

fn error(line: &str) -> String {
    match LineParser::new().parse(line) {
        Err(e) => e.to_string(),
        Ok(p) => panic!("{line:?} parsed as {p:?}"),
    }
}

#[test]
fn tokenizer_keeps_quoted_spaces_and_quotes() {
    assert_eq!(tokenize(r#"a  b="x y" c='1 2'd"#).unwrap(), ["a", r#"b="x y""#, "c='1 2'd"]);
    assert_eq!(tokenize(r#"k={"a":"b c"}"#).unwrap(), [r#"k={"a":"b c"}"#]);
    assert_eq!(tokenize(r#"k="a\"b c""#).unwrap(), [r#"k="a\"b c""#]);
    assert_eq!(tokenize("   ").unwrap(), Vec::<String>::new());
}

#[test]
fn unterminated_quotes_are_errors() {
    assert!(tokenize(r#"cmd k="abc"#).unwrap_err().to_string().contains("unterminated \" quote"));
    assert!(error("cmd k='abc").contains("unterminated ' quote starting at column 7"));
}

#[test]
fn command_without_arguments() {
    let r = request("query-status");
    assert_eq!(r.execute, "query-status");
    assert!(r.arguments.is_empty());
    assert!(!r.force && !r.oob);
    assert_eq!(r.to_json(), json!({"execute": "query-status"}));
    assert_eq!(request("  query-status  ").execute, "query-status");
}

#[test]
fn scalar_values() {
    assert_eq!(
        args("c i=42 n=-7 f=1.5 t=true T=TRUE fa=False nu=null s=hello"),
        json!({"i": 42, "n": -7, "f": 1.5, "t": true, "T": true, "fa": false, "nu": null, "s": "hello"})
    );
}

#[test]
fn quoted_values_are_strings_with_spaces() {
    assert_eq!(
        args(r#"c a="two words" b='1' c="true" d="say \"hi\"" e='it\'s' f="""#),
        json!({"a": "two words", "b": "1", "c": "true", "d": "say \"hi\"", "e": "it's", "f": ""})
    );
    // Quoted values under dotted keys too.
    assert_eq!(args(r#"c x.y="a b""#), json!({"x": {"y": "a b"}}));
}

#[test]
fn json_and_python_literal_values() {
    assert_eq!(
        args(r#"c o={"a":1,"b":[true,null]} l=[1,2,3] e={} ea=[]"#),
        json!({"o": {"a": 1, "b": [true, null]}, "l": [1, 2, 3], "e": {}, "ea": []})
    );
    assert_eq!(args("c o={'a':'b'} l=['x','y']"), json!({"o": {"a": "b"}, "l": ["x", "y"]}));
    assert_eq!(
        args("c o={'t':True,'f':False,'n':None,'j':null}"),
        json!({"o": {"t": true, "f": false, "n": null, "j": null}})
    );
    // JSON whose strings hold spaces stays one token.
    assert_eq!(args(r#"c o={"k":"v w"}"#), json!({"o": {"k": "v w"}}));
    // A whole JSON value in quotes may have spaces anywhere.
    assert_eq!(args(r#"c o='{"a": 1}'"#), json!({"o": "{\"a\": 1}"}));
}

#[test]
fn dotted_keys_build_nested_objects() {
    assert_eq!(args("c a.b.c=1 a.b.d=x a.e=true"), json!({"a": {"b": {"c": 1, "d": "x"}, "e": true}}));
}

#[test]
fn dotted_key_errors() {
    assert!(error("c a=1 a.b=2").contains("both leaf and non-leaf"), "{}", error("c a=1 a.b=2"));
    assert!(error("c a.b=2 a=1").contains("both leaf and non-leaf"));
    assert!(error("c a=1 a=2").contains("multiple times"));
    assert!(error("c a.b=1 a.b=2").contains("multiple times"));
}

#[test]
fn tokens_without_equals_are_errors() {
    assert!(error("c key").contains("expected a key=value pair, got 'key'"));
}

#[test]
fn help_forms() {
    assert_eq!(parse("help"), Parsed::Help(None));
    assert_eq!(parse("help query-status"), Parsed::Help(Some("query-status".into())));
    assert_eq!(parse("?"), Parsed::Help(None));
    assert!(error("help a b").contains("usage: help"));
}

#[test]
fn empty_line_is_nothing() {
    assert_eq!(parse(""), Parsed::Nothing);
    assert_eq!(parse("   \t "), Parsed::Nothing);
}

#[test]
fn force_prefix_skips_checks() {
    let r = request("!nope x=1");
    assert!(r.force);
    assert_eq!(r.execute, "nope");
    assert!(request("! nope").force);
}

#[test]
fn json_lines_are_sent_as_they_are() {
    let r = request(r#"{"execute": "query-status"}"#);
    assert_eq!((r.execute.as_str(), r.oob, r.force, r.json), ("query-status", false, true, true));
    assert!(!request("query-status").json && !request("!query-status").json);
    let r = request(r#"{"execute": "x", "arguments": {"a": [1]}, "id": 5}"#);
    assert_eq!(Value::Object(r.arguments), json!({"a": [1]}));
    let r = request("{'exec-oob': 'migrate-pause'}");
    assert!(r.oob);
    assert_eq!(r.to_json(), json!({"exec-oob": "migrate-pause"}));
}

#[test]
fn json_line_errors() {
    assert!(error(r#"{"execute": "#).contains("invalid JSON"));
    assert!(error(r#"{"arguments": {}}"#).contains("needs \"execute\""));
    assert!(error(r#"{"execute": 1}"#).contains("exactly one string"));
    assert!(error(r#"{"execute": "a", "exec-oob": "b"}"#).contains("exactly one"));
    assert!(error(r#"{"execute": "a", "arguments": 3}"#).contains("must be an object"));
    assert!(error(r#"{"execute": "a", "bogus": 3}"#).contains("unexpected member 'bogus'"));
}

#[test]
fn multi_line_transaction() {
    let mut p = LineParser::new();
    assert_eq!(p.prompt(), PROMPT);
    assert_eq!(p.parse("transaction(").unwrap(), Parsed::Nothing);
    assert_eq!(p.prompt(), TRANS_PROMPT);
    assert!(p.in_transaction());
    assert_eq!(p.parse("block-dirty-bitmap-add node=n0 name=b1").unwrap(), Parsed::Nothing);
    assert_eq!(p.parse("").unwrap(), Parsed::Nothing);
    assert_eq!(p.parse("block-dirty-bitmap-clear node=n0 name=b0").unwrap(), Parsed::Nothing);
    let Parsed::Request(r) = p.parse(")").unwrap() else { panic!("no request") };
    assert_eq!(p.prompt(), PROMPT);
    assert_eq!(r.execute, "transaction");
    assert_eq!(
        Value::Object(r.arguments),
        json!({"actions": [
            {"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "b1"}},
            {"type": "block-dirty-bitmap-clear", "data": {"node": "n0", "name": "b0"}},
        ]})
    );
}

#[test]
fn transaction_actions_on_the_opening_and_closing_lines() {
    let mut p = LineParser::new();
    assert_eq!(p.parse("transaction( a x=1").unwrap(), Parsed::Nothing);
    let Parsed::Request(r) = p.parse("b y=2 )").unwrap() else { panic!("no request") };
    assert_eq!(
        r.arguments["actions"],
        json!([{"type": "a", "data": {"x": 1}}, {"type": "b", "data": {"y": 2}}])
    );
}

#[test]
fn one_line_transactions() {
    assert_eq!(args("transaction( a k=v )"), json!({"actions": [{"type": "a", "data": {"k": "v"}}]}));
    assert_eq!(
        args("transaction( a k=v ; b k=w l.m=1 )"),
        json!({"actions": [{"type": "a", "data": {"k": "v"}}, {"type": "b", "data": {"k": "w", "l": {"m": 1}}}]})
    );
    assert_eq!(args("transaction( )"), json!({"actions": []}));
    assert!(request("!transaction( a )").force);
}

#[test]
fn lines_that_open_a_transaction() {
    for line in ["transaction(", "  transaction( a k=v )", "!transaction(", "! transaction( a )"] {
        assert!(opens_transaction(line), "{line:?}");
    }
    for line in
        ["transaction", "transaction actions=[]", "query-status", "", "{\"execute\": \"transaction(\"}"]
    {
        assert!(!opens_transaction(line), "{line:?}");
    }
}

#[test]
fn transaction_errors() {
    assert!(error(")").contains("outside a transaction"));
    assert!(error("transaction( a ) b").contains("after the ')'"));
    assert!(error("transaction( a k ) ").contains("key=value"));
    // A failed one-line transaction leaves no transaction open.
    let mut p = LineParser::new();
    assert!(p.parse("transaction( a k=1 k=2 )").is_err());
    assert_eq!(p.prompt(), PROMPT);
    // Inside a multi-line transaction, a bad action is refused and the transaction stays open.
    assert_eq!(p.parse("transaction(").unwrap(), Parsed::Nothing);
    assert!(p.parse("a k").unwrap_err().to_string().contains("key=value"));
    assert!(p.parse("transaction(").unwrap_err().to_string().contains("already open"));
    assert!(p.parse(") x").unwrap_err().to_string().contains("after the ')'"));
    assert!(p.in_transaction());
    let Parsed::Request(r) = p.parse(")").unwrap() else { panic!("no request") };
    assert_eq!(r.arguments["actions"], json!([]));
    // Ctrl-C drops an open transaction.
    p.parse("transaction(").unwrap();
    p.cancel_transaction();
    assert_eq!(p.prompt(), PROMPT);
}
