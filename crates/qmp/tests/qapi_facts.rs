//! The generated facts (`qmp::generated::facts`, `qmp::ga::generated::facts`) evaluated by
//! `qmp::qapi::Slice` give, for every version of the model and a build, exactly what the
//! committed model gives read by qapi-gen itself (`Schema::at` and the truth table's own
//! evaluation): the same commands and events with the same facts, and every type with the
//! same shape (members bases first with type and optionality, enum values, union base,
//! discriminator and variants, alternatives), all in order.

use qapi_gen::model::{Cond, Entity, Kind, Model, Schema};
use qmp::qapi::{self, TypeDef};
use serde_json::{json, Value};

fn model() -> Model {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../qmp-qapi/model.json");
    Model::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The model's side: one version of one schema, conditions evaluated by qapi-gen's table
/// (an unknown symbol makes a condition false, as `Slice` does).
struct ModelSlice<'a> {
    s: Schema,
    build: &'a qapi_gen::truth::Build,
}

impl ModelSlice<'_> {
    fn holds(&self, c: Option<&Cond>) -> bool {
        c.is_none_or(|c| self.build.eval(c).unwrap_or(false))
    }

    fn entity(&self, name: &str) -> Option<&Entity> {
        self.s.get(name).filter(|e| self.holds(e.cond.as_ref()))
    }

    fn members(&self, name: &str) -> Option<Value> {
        let mut chain = Vec::new();
        let mut cur = self.entity(name)?;
        if let Kind::Union { base, .. } = &cur.kind {
            cur = self.entity(base)?;
        }
        loop {
            let Kind::Struct { base, members } = &cur.kind else { return None };
            chain.push(members);
            match base {
                Some(b) => cur = self.entity(b)?,
                None => break,
            }
        }
        let mut out = Vec::new();
        for members in chain.into_iter().rev() {
            for m in members.iter().filter(|m| self.holds(m.cond.as_ref())) {
                out.push(json!([m.name, m.types[0].ty, m.optional.0 != 0]));
            }
        }
        Some(Value::Array(out))
    }

    fn cases(&self, cases: &[qapi_gen::model::Case]) -> Value {
        cases
            .iter()
            .filter(|c| self.holds(c.cond.as_ref()))
            .map(|c| json!([c.name, c.types.first().map(|t| t.ty.as_str())]))
            .collect()
    }

    fn ty(&self, e: &Entity) -> Option<Value> {
        Some(match &e.kind {
            Kind::Enum { values, .. } => {
                let v: Vec<&str> =
                    values.iter().filter(|v| self.holds(v.cond.as_ref())).map(|v| v.name.as_str()).collect();
                json!({"enum": v})
            }
            Kind::Struct { .. } => json!({"struct": self.members(&e.name)?}),
            Kind::Union { base, discriminator, variants } => {
                json!({"union": self.members(base)?, "tag": discriminator, "variants": self.cases(variants)})
            }
            Kind::Alternate { alternatives } => json!({"alternate": self.cases(alternatives)}),
            Kind::Command { .. } | Kind::Event { .. } => return None,
        })
    }
}

fn members(m: &[qapi::MemberDef]) -> Value {
    m.iter().map(|m| json!([m.name, m.ty, m.optional])).collect()
}

fn cases(c: &[qapi::CaseDef]) -> Value {
    c.iter().map(|c| json!([c.name, c.ty])).collect()
}

fn facts_ty(t: TypeDef) -> Value {
    match t {
        TypeDef::Enum { values } => json!({"enum": values}),
        TypeDef::Struct { members: m } => json!({"struct": members(&m)}),
        TypeDef::Union { members: m, discriminator, variants } => {
            json!({"union": members(&m), "tag": discriminator, "variants": cases(&variants)})
        }
        TypeDef::Alternate { alternatives } => json!({"alternate": cases(&alternatives)}),
        TypeDef::Builtin(b) => json!({"builtin": b}),
        TypeDef::Array(e) => json!({"array": e}),
    }
}

fn compare(
    model: &Model,
    schema: &str,
    facts: &'static qapi::Schema,
    build: &qapi::Build,
    ours: &qapi_gen::truth::Build,
    min_commands: usize,
) -> usize {
    let merged = &model.schemas[schema];
    let names: Vec<&str> = merged.entities.iter().map(|e| e.name.as_str()).collect();
    let fact_names: Vec<&str> = facts.entities.iter().map(|e| e.name).collect();
    assert_eq!(names, fact_names, "{schema}: the facts' entities are the model's");
    assert_eq!(facts.versions, model.versions, "{schema}: versions");
    let mut compared = 0;
    for (i, v) in model.versions.iter().enumerate() {
        let m = ModelSlice { s: merged.at(i), build: ours };
        let f = facts.slice(v, build).unwrap();
        assert_eq!(f.version(), v);
        let mut diffs = Vec::new();
        for e in &merged.entities {
            let name = e.name.as_str();
            let present = m.entity(name).is_some();
            if present != f.entity(name).is_some() {
                diffs.push(format!("{name}: present {present} in the model"));
                continue;
            }
            let Some(e) = m.entity(name) else { continue };
            compared += 1;
            match &e.kind {
                Kind::Command { args, boxed, returns, allow_oob, no_success_response, .. } => {
                    let c = f.command(name).unwrap();
                    let want =
                        (args.as_deref(), *boxed, returns.as_deref(), *allow_oob, *no_success_response);
                    if want != (c.args, c.boxed, c.returns, c.allow_oob, c.no_success_response) {
                        diffs.push(format!("{name}: {want:?} in the model, {c:?} in the facts"));
                    }
                }
                Kind::Event { data, .. } => {
                    let ev = f.event(name).unwrap();
                    if data.as_deref() != ev.data {
                        diffs.push(format!("{name}: data {data:?} in the model, {:?} in the facts", ev.data));
                    }
                }
                _ => {
                    let want = m.ty(e);
                    let got = f.ty(name).map(facts_ty);
                    if want != got {
                        diffs.push(format!("{name}:\n  model: {want:?}\n  facts: {got:?}"));
                    }
                }
            }
        }
        assert!(diffs.is_empty(), "{schema} {v}: {} differences:\n{}", diffs.len(), diffs.join("\n"));
        let commands = f.commands().len();
        assert!(commands >= min_commands, "{schema} {v}: only {commands} commands");
    }
    compared
}

#[test]
fn the_monitors_facts_are_the_models_in_every_version() {
    let model = model();
    let n = compare(
        &model,
        "qmp",
        &qmp::generated::facts::SCHEMA,
        &qmp::generated::facts::DEBIAN_X86_64,
        &qapi_gen::truth::DEBIAN_X86_64,
        200,
    );
    assert!(n > 5000, "only {n} entities compared");
}

#[test]
fn the_guest_agents_facts_are_the_models_in_every_version() {
    let model = model();
    // No build for qemu-ga: every condition is false on both sides.
    let none = qapi::Build { name: "none", symbols: &[] };
    let ours = qapi_gen::truth::Build { name: "none", symbols: &[], has_target: false };
    // The unconditional commands only (guest-ping, guest-sync...).
    let n = compare(&model, "qga", &qmp::ga::generated::facts::SCHEMA, &none, &ours, 15);
    assert!(n > 300, "only {n} entities compared");
}

/// The 7.2 slice on Debian's x86_64 build is fully decided by the truth table, and it has
/// what that build has: BlockJobInfo was a struct then (a union from 8.2), the block-core
/// drivers of CONFIG_BLKIO are absent, host_device is there.
#[test]
fn the_72_slice_of_debian_x86_64() {
    use qmp::generated::facts::{DEBIAN_X86_64, SCHEMA};
    let s = SCHEMA.slice("v7.2.0", &DEBIAN_X86_64).unwrap();
    assert_eq!(s.unknown_symbols(), Vec::<&str>::new());
    assert!(matches!(s.ty("BlockJobInfo"), Some(TypeDef::Struct { .. })));
    let newest = SCHEMA.slice("9.2.0-rc2", &DEBIAN_X86_64).unwrap();
    assert!(matches!(newest.ty("BlockJobInfo"), Some(TypeDef::Union { .. })));
    let drivers = s.enum_values("BlockdevDriver").unwrap();
    assert!(drivers.contains(&"host_device") && !drivers.contains(&"io_uring"), "{drivers:?}");
    assert!(s.command("query-gic-capabilities").is_none(), "TARGET_ARM is false");
    assert!(s.command("query-sev").is_some(), "TARGET_I386 is true");
    assert!(SCHEMA.slice("6.2.0", &DEBIAN_X86_64).is_none());
}
