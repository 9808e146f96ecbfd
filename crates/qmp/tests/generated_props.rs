//! Property: for every command of real QEMU 7.2 with arguments, arbitrary valid arguments
//! (drawn from the live `query-qmp-schema`: each required member, optional members at random,
//! enum values, union variants, alternates, arrays) decode into the generated argument type,
//! and what the generated type encodes again is accepted by the library's own validator
//! against that same live schema, and keeps every member it was given.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use qmp::generated::registry;
use qmp::schema::{JsonType, Type, TypeKind};
use qmp::Schema;
use qmp_testkit::Peer;
use serde_json::{Map, Value};

/// QEMU 7.2's live schema, fetched once for the whole file.
fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let peer = Peer::qemu(1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let client = loop {
            match qmp::blocking::Client::connect(peer.socket(0)) {
                Ok(c) => break c,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("connect: {e}"),
            }
        };
        client.schema().expect("query-qmp-schema").as_ref().clone()
    })
}

/// A small deterministic source of choices, seeded by proptest.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// A valid value of `ty`, or None when the depth bound is reached with a member still
/// required (a type that requires itself).
fn value_of(ty: Type<'_>, c: &mut Choices, depth: usize) -> Option<Value> {
    if depth > 6 {
        return None;
    }
    Some(match ty.kind() {
        TypeKind::Builtin(j) => match j {
            JsonType::String => Value::String(["a", "node0", "x-y", ""][c.below(4)].into()),
            // Small and non-negative: every QAPI integer type (uint8 to int64) takes it.
            JsonType::Int => Value::from(c.below(100) as u64),
            JsonType::Number => Value::from(c.below(1000) as f64 / 8.0),
            JsonType::Boolean => Value::Bool(c.coin()),
            JsonType::Null => Value::Null,
            JsonType::Object => Value::Object(Map::new()),
            JsonType::Array => Value::Array(vec![]),
            _ => Value::from(c.below(10) as u64),
        },
        TypeKind::Enum(e) => {
            let values: Vec<&str> = e.values().collect();
            Value::String(values.get(c.below(values.len()))?.to_string())
        }
        TypeKind::Array(el) => {
            let n = c.below(3);
            Value::Array((0..n).map(|_| value_of(el, c, depth + 1)).collect::<Option<_>>()?)
        }
        TypeKind::Alternate(a) => {
            let branches: Vec<Type<'_>> = a.branches().collect();
            let start = c.below(branches.len());
            // The first alternative (from a random one on) that yields a value.
            (0..branches.len())
                .find_map(|i| value_of(branches[(start + i) % branches.len()], c, depth + 1))?
        }
        TypeKind::Object(obj) => {
            let mut map = Map::new();
            for m in obj.members() {
                if m.is_optional() && !c.coin() {
                    continue;
                }
                match value_of(m.ty(), c, depth + 1) {
                    Some(v) => {
                        map.insert(m.name().to_owned(), v);
                    }
                    None if m.is_optional() => {}
                    None => return None,
                }
            }
            if let Some(tag) = obj.tag() {
                let chosen = map.get(tag).and_then(Value::as_str).map(str::to_owned);
                if let Some(vty) = chosen.and_then(|t| obj.variant(&t)) {
                    // The variant's own required members too, or no value at all.
                    let Some(Value::Object(extra)) = value_of(vty, c, depth + 1) else { return None };
                    for (k, v) in extra {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            Value::Object(map)
        }
        _ => Value::Null,
    })
}

#[test]
fn valid_arguments_of_every_command_pass_through_the_generated_types_and_the_validator() {
    let schema = schema();
    let checked = std::cell::Cell::new(0);
    let mut commands = 0;
    for cmd in schema.commands() {
        let name = cmd.name();
        if registry::COMMANDS.iter().all(|c| c.name != name) || cmd.arguments().as_object().is_none() {
            continue;
        }
        commands += 1;
        let mut runner =
            TestRunner::new(Config { cases: 24, failure_persistence: None, ..Config::default() });
        runner
            .run(&any::<u64>(), |seed| {
                let mut c = Choices(seed | 1);
                let Some(args) = value_of(cmd.arguments(), &mut c, 0) else { return Ok(()) };
                prop_assert!(schema.validate_arguments(name, &args).is_ok(), "{name}: generator gave {args}");
                let again = registry::reencode_arguments(name, args.clone()).expect("in the registry");
                let again =
                    again.map_err(|e| TestCaseError::fail(format!("{name}: {args} does not decode: {e}")))?;
                let problems = schema.validate_arguments(name, &again);
                prop_assert!(problems.is_ok(), "{name}: {again} (from {args}) refused: {problems:?}");
                // Nothing given is lost (the generated type may add nothing either).
                if let (Value::Object(given), Value::Object(kept)) = (&args, &again) {
                    for k in given.keys() {
                        prop_assert!(kept.contains_key(k), "{name}: member {k} lost: {args} -> {again}");
                    }
                }
                checked.set(checked.get() + 1);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!("{commands} commands with arguments, {} generated argument values checked", checked.get());
    assert!(commands > 100, "only {commands} commands with arguments");
}
