//! The schema reader and the entity reader on snippets written for these tests (invented
//! names), good and bad.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qapi_gen::model::{Cond, Entity, Kind, Versions};
use qapi_gen::parse::{self, Expr, ValueKind, MAX_DEPTH};
use qapi_gen::read;

/// Files in memory for the reader.
fn files(list: &[(&str, &str)]) -> impl FnMut(&Path) -> std::io::Result<String> {
    let map: BTreeMap<PathBuf, String> =
        list.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
    move |p: &Path| {
        map.get(p).cloned().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

fn exprs(text: &str) -> Result<Vec<Expr>, parse::Error> {
    parse::read_schema_with(Path::new("s/main.json"), &mut files(&[("s/main.json", text)]))
}

fn entities(text: &str) -> Vec<Entity> {
    let e = exprs(text).unwrap_or_else(|e| panic!("{e}"));
    read::entities(&e, 0).unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    match exprs(text).and_then(|e| read::entities(&e, 0)) {
        Ok(v) => panic!("expected an error, read {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn get<'a>(es: &'a [Entity], name: &str) -> &'a Entity {
    es.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no {name} in {es:#?}"))
}

#[test]
fn values_strings_comments_and_lines() {
    let text = "# a comment { 'not': 'read' }\n{ 'struct': 'Zap', # trailing\n  'data': { 'a-b': 'str', '*c': ['int'],\n 'q': 'it\\'s \\\\' } }\n";
    let es = exprs(text).unwrap();
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].line, 2);
    assert_eq!(es[0].module, "main");
    let data = es[0].get("data").unwrap();
    assert_eq!(data.line, 3);
    let d = data.as_dict().unwrap();
    assert_eq!(d.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a-b", "*c", "q"]);
    assert_eq!(d[2].1.kind, ValueKind::Str("it's \\".into()));
    assert_eq!(d[2].1.line, 4);
    assert!(matches!(&d[1].1.kind, ValueKind::List(l) if l.len() == 1));
}

#[test]
fn booleans_and_empty_containers() {
    let es = exprs("{ 'command': 'zip', 'data': {}, 'boxed': false, 'allow-oob': true, 'x': [] }").unwrap();
    assert_eq!(es[0].get("boxed").unwrap().kind, ValueKind::Bool(false));
    assert_eq!(es[0].get("allow-oob").unwrap().kind, ValueKind::Bool(true));
    assert_eq!(es[0].get("x").unwrap().kind, ValueKind::List(vec![]));
}

#[test]
fn includes_are_relative_read_once_and_pragmas_dropped() {
    let mut fs = files(&[
        ("top/main.json", "{ 'pragma': { 'doc-required': true } }\n{ 'include': 'sub/a.json' }\n{ 'include': 'b.json' }\n{ 'enum': 'Last', 'data': [] }"),
        ("top/sub/a.json", "{ 'include': '../b.json' }\n{ 'enum': 'InA', 'data': [] }"),
        ("top/b.json", "{ 'enum': 'InB', 'data': [] }"),
    ]);
    let es = parse::read_schema_with(Path::new("top/main.json"), &mut fs).unwrap();
    let names: Vec<(&str, &str)> =
        es.iter().map(|e| (e.get("enum").unwrap().as_str().unwrap(), e.module.as_str())).collect();
    assert_eq!(names, [("InB", "b"), ("InA", "a"), ("Last", "main")]);
}

#[test]
fn an_unknown_include_names_the_including_line() {
    let mut fs = files(&[("m.json", "\n{ 'include': 'nowhere.json' }")]);
    let e = parse::read_schema_with(Path::new("m.json"), &mut fs).unwrap_err().to_string();
    assert!(e.starts_with("m.json:2: cannot read included file nowhere.json"), "{e}");
}

#[test]
fn an_inclusion_loop_is_an_error() {
    let mut fs = files(&[("m.json", "{ 'include': 'n.json' }"), ("n.json", "{ 'include': 'm.json' }")]);
    let e = parse::read_schema_with(Path::new("m.json"), &mut fs).unwrap_err().to_string();
    assert!(e.starts_with("n.json:1: inclusion loop"), "{e}");
}

#[test]
fn doc_blocks_give_since_and_member_since_only() {
    let text = "##\n# = A section\n##\n\n##\n# @Blip:\n#\n# Blah.\n#\n# @one: first\n# @two: second, long\n#     and longer (Since\n#     4.2)\n# @three: third (since: 5.0)\n#\n# Features:\n# @deprecated: gone (since 6.0)\n#\n# Since: 3.1\n##\n{ 'struct': 'Blip', 'data': { 'one': 'int', '*two': 'str', 'three': 'bool' } }\n##\n# @Other:\n# Since 1.0\n##\n{ 'struct': 'Unrelated', 'data': {} }";
    let es = entities(text);
    let b = get(&es, "Blip");
    assert_eq!(b.since.as_deref(), Some("3.1"));
    let Kind::Struct { members, .. } = &b.kind else { panic!() };
    let since: Vec<Option<&str>> = members.iter().map(|m| m.since.as_deref()).collect();
    assert_eq!(since, [None, Some("4.2"), Some("5.0")]);
    assert_eq!(members[1].optional, Versions(1));
    // A block that documents another name is not this definition's.
    assert_eq!(get(&es, "Unrelated").since, None);
}

#[test]
fn since_lines_in_their_several_spellings() {
    let text = "##\n# @A:\n# Since 4.0\n##\n{ 'enum': 'A', 'data': [] }\n\
                ##\n# @B:\n#     Since: 9.9 (indented: a member's)\n# Since : 2.5.1\n##\n{ 'enum': 'B', 'data': [] }\n\
                ##\n# @C:\n# Since QEMU 2.0, words\n##\n{ 'enum': 'C', 'data': [] }\n\
                { 'enum': 'D', ## not a doc block inside an expression\n 'data': [] }";
    let es = entities(text);
    let since: Vec<Option<&str>> = es.iter().map(|e| e.since.as_deref()).collect();
    assert_eq!(since, [Some("4.0"), Some("2.5.1"), None, None]);
}

#[test]
fn every_definition_kind() {
    let text = "
{ 'enum': 'Colour', 'prefix': 'COL', 'data': [ 'red', { 'name': 'green', 'if': 'CONFIG_G' },
  { 'name': 'blue', 'features': [ 'deprecated' ] } ] }
{ 'struct': 'Base', 'data': { 'kind': 'Colour', '*n': { 'type': ['int'], 'if': { 'not': 'CONFIG_N' },
  'features': [ { 'name': 'unstable', 'if': 'CONFIG_U' } ] } } }
{ 'struct': 'Red', 'base': 'Base', 'data': {}, 'features': [ 'x-odd' ],
  'if': { 'all': [ 'CONFIG_A', { 'any': [ 'TARGET_B', 'TARGET_C' ] } ] } }
{ 'union': 'Paint', 'base': { 'kind': 'Colour', '*gloss': 'bool' }, 'discriminator': 'kind',
  'data': { 'red': 'Red', 'green': { 'type': 'Base', 'if': 'CONFIG_G' } } }
{ 'union': 'Paint2', 'base': 'Base', 'discriminator': 'kind', 'data': {} }
{ 'alternate': 'Either', 'data': { 'n': 'int', 'p': { 'type': 'Paint', 'if': 'CONFIG_P' }, 'l': ['str'] } }
{ 'command': 'splash', 'data': { 'paint': 'Paint', '*times': 'uint8' }, 'returns': ['Red'],
  'allow-oob': true, 'allow-preconfig': true, 'coroutine': true, 'features': [ 'unstable' ] }
{ 'command': 'dab', 'data': 'Paint', 'boxed': true, 'success-response': false, 'gen': false }
{ 'command': 'rest', 'data': {} }
{ 'event': 'DRIED', 'data': { 'paint': 'Paint' } }
{ 'event': 'SPILT', 'data': 'Paint', 'boxed': true, 'if': 'CONFIG_SPILL' }
{ 'event': 'QUIET' }
";
    let es = entities(text);
    let names: Vec<&str> = es.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Base",
            "Colour",
            "DRIED",
            "Either",
            "Paint",
            "Paint2",
            "QUIET",
            "Red",
            "SPILT",
            "dab",
            "q_obj_DRIED-arg",
            "q_obj_Paint-base",
            "q_obj_splash-arg",
            "rest",
            "splash"
        ]
    );
    let Kind::Enum { values, prefix } = &get(&es, "Colour").kind else { panic!() };
    assert_eq!(prefix.as_deref(), Some("COL"));
    assert_eq!(values.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["red", "green", "blue"]);
    assert_eq!(values[1].cond, Some(Cond::Name("CONFIG_G".into())));
    assert_eq!(values[2].features[0].name, "deprecated");

    let Kind::Struct { base: None, members } = &get(&es, "Base").kind else { panic!() };
    assert_eq!(members[1].name, "n");
    assert_eq!(members[1].types[0].ty, "[int]");
    assert_eq!(members[1].optional, Versions(1));
    assert_eq!(members[1].cond, Some(Cond::Not(Box::new(Cond::Name("CONFIG_N".into())))));
    assert_eq!(members[1].features[0].cond, Some(Cond::Name("CONFIG_U".into())));
    assert_eq!(members[0].optional, Versions(0));

    let red = get(&es, "Red");
    assert!(
        matches!(&red.kind, Kind::Struct { base: Some(b), members } if b == "Base" && members.is_empty())
    );
    assert_eq!(red.features[0].name, "x-odd");
    assert_eq!(
        red.cond,
        Some(Cond::All(vec![
            Cond::Name("CONFIG_A".into()),
            Cond::Any(vec![Cond::Name("TARGET_B".into()), Cond::Name("TARGET_C".into())])
        ]))
    );

    let Kind::Union { base, discriminator, variants } = &get(&es, "Paint").kind else { panic!() };
    assert_eq!((base.as_str(), discriminator.as_str()), ("q_obj_Paint-base", "kind"));
    assert_eq!(
        variants.iter().map(|v| (v.name.as_str(), v.types[0].ty.as_str())).collect::<Vec<_>>(),
        [("red", "Red"), ("green", "Base")]
    );
    assert_eq!(variants[1].cond, Some(Cond::Name("CONFIG_G".into())));
    let Kind::Struct { members, .. } = &get(&es, "q_obj_Paint-base").kind else { panic!() };
    assert_eq!(members.len(), 2);
    assert!(
        matches!(&get(&es, "Paint2").kind, Kind::Union { base, variants, .. } if base == "Base" && variants.is_empty())
    );

    let Kind::Alternate { alternatives } = &get(&es, "Either").kind else { panic!() };
    assert_eq!(
        alternatives.iter().map(|a| a.types[0].ty.as_str()).collect::<Vec<_>>(),
        ["int", "Paint", "[str]"]
    );
    assert_eq!(alternatives[1].cond, Some(Cond::Name("CONFIG_P".into())));

    assert_eq!(
        get(&es, "splash").kind,
        Kind::Command {
            args: Some("q_obj_splash-arg".into()),
            boxed: false,
            returns: Some("[Red]".into()),
            allow_oob: true,
            no_success_response: false,
            allow_preconfig: true,
            coroutine: true,
        }
    );
    assert_eq!(get(&es, "splash").features[0].name, "unstable");
    let Kind::Struct { members, .. } = &get(&es, "q_obj_splash-arg").kind else { panic!() };
    assert_eq!(members[1].types[0].ty, "uint8");
    assert!(matches!(&get(&es, "dab").kind,
        Kind::Command { args: Some(a), boxed: true, no_success_response: true, returns: None, .. } if a == "Paint"));
    assert!(matches!(&get(&es, "rest").kind, Kind::Command { args: None, .. }));
    assert!(
        matches!(&get(&es, "DRIED").kind, Kind::Event { data: Some(d), boxed: false } if d == "q_obj_DRIED-arg")
    );
    let spilt = get(&es, "SPILT");
    assert!(matches!(&spilt.kind, Kind::Event { data: Some(d), boxed: true } if d == "Paint"));
    assert_eq!(spilt.cond, Some(Cond::Name("CONFIG_SPILL".into())));
    assert!(matches!(&get(&es, "QUIET").kind, Kind::Event { data: None, .. }));
    // Implicit structs take their owner's condition and module.
    let arg = get(&es, "q_obj_DRIED-arg");
    assert_eq!((arg.module.as_str(), arg.cond.as_ref()), ("main", None));
}

#[test]
fn vendor_names_are_kept_as_written() {
    let es = entities("{ 'command': '__com.example_frob', 'data': { '__com.example_level': 'int' } }");
    assert!(es.iter().any(|e| e.name == "__com.example_frob"));
    assert!(es.iter().any(|e| e.name == "q_obj___com.example_frob-arg"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let cases: &[(&str, &str)] = &[
        ("{ 'enum': 'A', 'data': [ 'x ] }\n", "s/main.json:1: unterminated string: the line ends inside it"),
        ("{ 'enum': 'A', 'data': [ 'x", "s/main.json:1: unterminated string: the file ends inside it"),
        (
            "{ 'enum': 'A' 'data': [] }",
            "s/main.json:1: expected ',' or '}' after an object's value, found a string",
        ),
        (
            "{ 'enum': 'A',\n 'data': [ 'x' 'y' ] }",
            "s/main.json:2: expected ',' or ']' after a list item, found a string",
        ),
        (
            "{ 'enum': 'A', 'data': [ 'x', ] }",
            "s/main.json:1: expected a value ('{', '[', a string or a boolean), found ']'",
        ),
        ("{ 'enum': 'A', 'data': [], }", "s/main.json:1: expected a string key, found '}'"),
        ("{ 'enum' 'A' }", "s/main.json:1: expected ':' after an object's key, found a string"),
        ("{ 'enum': 'A', 'data': [ 1 ] }", "s/main.json:1: unexpected '1'"),
        ("{ 'enum': 'A', 'data': null }", "s/main.json:1: unexpected 'null'"),
        ("{ 'enum': 'A', 'data': [ \"x\" ] }", "s/main.json:1: unexpected '\"'"),
        ("{ 'enum': 'A\\n', 'data': [] }", "s/main.json:1: unknown escape '\\n' in a string"),
        ("{ 'enum': 'Aé', 'data': [] }", "s/main.json:1: a string may hold printable ASCII characters only"),
        ("[ 'x' ]", "s/main.json:1: expected '{' to start an expression, found '['"),
        ("{ 'enum': 'A', 'data': [], 'data': [] }", "s/main.json:1: duplicate key 'data'"),
        (
            "{ 'enum': 'A', 'data': [] }\n{ 'struct': 'A', 'data': {} }",
            "s/main.json:2: 'A' is already defined at s/main.json:1",
        ),
        (
            "{ 'command': 'x-y', 'data': {'a': 'int'} }\n{ 'struct': 'q_obj_x-y-arg', 'data': {} }",
            "s/main.json:2: 'q_obj_x-y-arg' is already defined at s/main.json:1",
        ),
        ("{ 'enum': 'A', 'data': [ 'v', 'v' ] }", "s/main.json:1: enum value 'v' is listed twice"),
        (
            "{ 'struct': 'A', 'data': { 'm': 'int', '*m': 'int' } }",
            "s/main.json:1: member 'm' is defined twice",
        ),
        ("{ 'struct': 'A' }", "s/main.json:1: struct 'A' lacks its 'data'"),
        (
            "{ 'struct': 'A', 'data': {}, 'colour': 'red' }",
            "s/main.json:1: 'colour' is not a key of a struct definition",
        ),
        ("{ 'thing': 'A' }", "s/main.json:1: an expression needs one of"),
        (
            "{ 'struct': 'A', 'enum': 'B', 'data': {} }",
            "s/main.json:1: an expression has one of struct, enum only",
        ),
        (
            "{ 'struct': 'A', 'data': { 'm': ['int', 'str'] } }",
            "s/main.json:1: an array type names exactly one element type",
        ),
        ("{ 'struct': 'A', 'data': { 'm': { 'if': 'X' } } }", "s/main.json:1: member 'm' lacks its 'type'"),
        (
            "{ 'struct': 'A', 'data': {}, 'if': { 'some': ['X'] } }",
            "s/main.json:1: unknown operator 'some' in 'if'",
        ),
        (
            "{ 'struct': 'A', 'data': {}, 'if': { 'all': [] } }",
            "s/main.json:1: 'if': { 'all': ... } takes a non-empty list",
        ),
        ("{ 'struct': 'A', 'data': {}, 'if': true }", "s/main.json:1: 'if' must be a config name"),
        ("{ 'command': 'a', 'boxed': 'yes' }", "s/main.json:1: 'boxed' must be true or false, not a string"),
        (
            "{ 'union': 'U', 'base': ['B'], 'discriminator': 'k', 'data': {} }",
            "s/main.json:1: a union's base must be",
        ),
        ("{ 'include': 'x.json', 'if': 'A' }", "s/main.json:1: an 'include' expression has no other keys"),
        (
            "## junk\n# @A:\n##\n{ 'enum': 'A', 'data': [] }",
            "s/main.json:1: junk after '##' at the start of a documentation block",
        ),
        (
            "##\n# @A:\n{ 'enum': 'A', 'data': [] }",
            "s/main.json:1: documentation block does not end with a '##' line",
        ),
        ("{ 'enum': 'A', 'data': [ tru ] }", "s/main.json:1: unexpected 'tru'"),
        (
            "{ 'enum': 'A', 'data': [] }\n{ 'struct': 'S', 'data': { 'a': 'A', 'b': ['Nope'] } }",
            "s/main.json:2: member 'b' of 'S' names type 'Nope', which is not defined",
        ),
        ("{ 'command': 'c', 'returns': 'Nope' }", "s/main.json:1: the return of 'c' names type 'Nope'"),
        (
            "{ 'union': 'U', 'base': { 'k': 'E' }, 'discriminator': 'k', 'data': {} }",
            "s/main.json:1: member 'k' of 'q_obj_U-base' names type 'E', which is not defined",
        ),
    ];
    let mut wrong = Vec::new();
    for (text, want) in cases {
        let got = error(text);
        if !got.starts_with(want) {
            wrong.push(format!("for {text:?}:\n got: {got}\nwant: {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn nesting_is_bounded_without_recursion() {
    // At the limit: the expression's object and MAX_DEPTH - 1 lists.
    let ok = format!("{{ 'x': {}'a'{} }}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
    assert!(parse::parse_text(Path::new("d.json"), &ok).is_ok());
    let deep = format!("{{ 'x': {}'a'{} }}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    let e = parse::parse_text(Path::new("d.json"), &deep).unwrap_err().to_string();
    assert_eq!(e, format!("d.json:1: values nest more than {MAX_DEPTH} levels deep"));
    // Far past it, on a small stack: still an error, not an overflow.
    let huge = format!("{{ 'x': {}", "[{'y': ".repeat(200_000));
    let e = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || parse::parse_text(Path::new("d.json"), &huge).unwrap_err().to_string())
        .unwrap()
        .join()
        .unwrap();
    assert!(e.contains("levels deep"), "{e}");
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A small deterministic generator over the language's own characters.
    let alphabet: Vec<char> = "{}[]:,'\\#\n tfrueals*@-_abcAB".chars().collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let samples = [
        "{ 'struct': 'A', 'data': { '*b': ['int'], 'c': { 'type': 'str', 'if': { 'not': 'X' } } } }",
        "{ 'union': 'U', 'base': { 'k': 'E' }, 'discriminator': 'k', 'data': { 'a': 'A' } }",
        "##\n# @A:\n# Since: 1.0\n##\n{ 'enum': 'A', 'data': [ { 'name': 'x', 'if': 'Y' } ] }",
    ];
    for round in 0..3000 {
        let mut text: Vec<char> = samples[round % samples.len()].chars().collect();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % (text.len() + 1);
            match next() % 3 {
                0 if at < text.len() => {
                    text.remove(at);
                }
                _ => text.insert(at, alphabet[(next() as usize) % alphabet.len()]),
            }
        }
        let text: String = text.into_iter().collect();
        if let Ok(items) = parse::parse_text(Path::new("f.json"), &text) {
            let exprs: Vec<Expr> = items
                .into_iter()
                .filter_map(|i| match i {
                    parse::Item::Definition(e) => Some(e),
                    _ => None,
                })
                .collect();
            let _ = read::entities(&exprs, 0);
        }
    }
}
