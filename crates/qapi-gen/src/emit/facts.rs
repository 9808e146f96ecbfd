//! The schema's facts as static data (`facts.rs` of the generated tree): every entity with
//! its versions, `if` conditions and kind facts, every member, enum value, variant and
//! alternative with theirs, in the shapes of `qmp::qapi`, and the truth tables of the
//! builds the repository knows, expanded to the symbols of the schema's conditions.
//!
//! Why the merged facts and not one evaluated slice per version: the model already says, of
//! every item, where it exists and under which condition; emitting it once (about the size
//! of `model.json`) and choosing the version and build at run time (`qmp::qapi::Slice`)
//! serves every version and every build from one table, keeps the emitter a plain
//! transcription (no second implementation of QEMU's introspection here), and a new QEMU
//! release changes only the lines of the entities it changed. Per-version copies would
//! repeat nearly everything seven times.
//!
//! One entity per line, skipped by rustfmt, so that the file reads as a diff like the model.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::model::{Case, Cond, CondIn, Entity, Kind, Member, Model, Schema, Typed};
use crate::truth::Build;

use super::HEADER;

/// The builds whose truth tables go into schema `schema`'s facts, with the Rust name of each.
pub fn builds(schema: &str) -> Vec<(&'static str, Build)> {
    match schema {
        "qmp" => vec![("DEBIAN_X86_64", crate::truth::DEBIAN_X86_64)],
        _ => Vec::new(),
    }
}

/// The text of `facts.rs` for schema `s` of `model`.
pub fn facts(model: &Model, s: &Schema, builds: &[(&str, Build)]) -> String {
    let mut out = format!(
        "{HEADER}\n//! The schema's facts as static data, read by [`crate::qapi`]: every entity of every\n\
         //! version, with where each item exists and its `if` condition; pick a version and a\n\
         //! build with [`Schema::slice`](crate::qapi::Schema::slice).\n\
         #![allow(clippy::needless_update)]\n\n\
         #[allow(unused_imports)]\n\
         use crate::qapi::{{Build, Case as C, Cond, CondIn, Entity as E, Kind as K, KindIn, Member as M, Schema, TypeIn, Versions as V}};\n\n"
    );
    let _ = writeln!(
        out,
        "/// Every entity of the schema, sorted by name, over [`SCHEMA.versions`](Schema::versions)."
    );
    let _ = writeln!(out, "#[rustfmt::skip]");
    let _ = writeln!(out, "pub static SCHEMA: Schema = Schema {{");
    let versions: Vec<String> = model.versions.iter().map(|v| format!("{v:?}")).collect();
    let _ = writeln!(out, "    versions: &[{}],", versions.join(", "));
    let _ = writeln!(out, "    entities: &[");
    for e in &s.entities {
        let _ = writeln!(out, "        {},", entity(e));
    }
    let _ = writeln!(out, "    ],\n}};");

    let mut symbols = BTreeSet::new();
    for e in &s.entities {
        entity_symbols(e, &mut symbols);
    }
    for (name, build) in builds {
        let _ = writeln!(
            out,
            "\n/// The truth table of build `{}` (`qapi_gen::truth`, checked against that build's own\n\
             /// `query-qmp-schema` by qapi-gen's live test) for every symbol of the schema's conditions it\n\
             /// decides.",
            build.name
        );
        let _ = writeln!(out, "#[rustfmt::skip]");
        let _ = writeln!(out, "pub static {name}: Build = Build {{");
        let _ = writeln!(out, "    name: {:?},", build.name);
        let _ = writeln!(out, "    symbols: &[");
        for sym in &symbols {
            if let Some(v) = build.symbol(sym) {
                let _ = writeln!(out, "        ({sym:?}, {v}),");
            }
        }
        let _ = writeln!(out, "    ],\n}};");
    }
    if !builds.is_empty() {
        for (name, what, names) in [
            ("STORAGE_DAEMON_COMMANDS", "commands", crate::truth::STORAGE_DAEMON_COMMANDS),
            ("STORAGE_DAEMON_EVENTS", "events", crate::truth::STORAGE_DAEMON_EVENTS),
        ] {
            let _ = writeln!(
                out,
                "\n/// The {what} `qemu-storage-daemon` 7.2 offers (`qapi_gen::truth`, checked against its own\n\
                 /// `query-qmp-schema` by qapi-gen's live test), sorted."
            );
            let _ = writeln!(out, "#[rustfmt::skip]");
            let _ = writeln!(out, "pub static {name}: &[&str] = &[");
            for n in names {
                let _ = writeln!(out, "    {n:?},");
            }
            let _ = writeln!(out, "];");
        }
    }
    out
}

fn cond(c: &Cond) -> String {
    match c {
        Cond::Name(n) => format!("Cond::Name({n:?})"),
        Cond::All(v) => format!("Cond::All(&[{}])", v.iter().map(cond).collect::<Vec<_>>().join(", ")),
        Cond::Any(v) => format!("Cond::Any(&[{}])", v.iter().map(cond).collect::<Vec<_>>().join(", ")),
        Cond::Not(c) => format!("Cond::Not(&{})", cond(c)),
    }
}

fn opt_cond(c: &Option<Cond>) -> String {
    match c {
        Some(c) => format!("Some({})", cond(c)),
        None => "None".into(),
    }
}

fn opt_str(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("Some({s:?})"),
        None => "None".into(),
    }
}

/// `, cond: ..., older_conds: ...` where they are not the defaults.
fn conds(out: &mut String, c: &Option<Cond>, older: &[CondIn]) {
    if c.is_some() {
        let _ = write!(out, ", cond: {}", opt_cond(c));
    }
    if !older.is_empty() {
        let list: Vec<String> = older
            .iter()
            .map(|o| format!("CondIn {{ versions: V({}), cond: {} }}", o.versions.0, opt_cond(&o.cond)))
            .collect();
        let _ = write!(out, ", older_conds: &[{}]", list.join(", "));
    }
}

/// The type of the newest version among `versions` that has one, and the others.
fn split_types(types: &[Typed], versions: u64) -> (Option<&str>, Vec<&Typed>) {
    let newest = 63 - versions.leading_zeros() as usize;
    let main = types.iter().position(|t| t.versions.contains(newest)).or(if types.is_empty() {
        None
    } else {
        Some(0)
    });
    let older = types.iter().enumerate().filter(|(i, _)| Some(*i) != main).map(|(_, t)| t).collect();
    (main.map(|i| types[i].ty.as_str()), older)
}

fn older_types(out: &mut String, older: &[&Typed]) {
    if !older.is_empty() {
        let list: Vec<String> = older
            .iter()
            .map(|t| format!("TypeIn {{ versions: V({}), ty: {:?} }}", t.versions.0, t.ty))
            .collect();
        let _ = write!(out, ", older_types: &[{}]", list.join(", "));
    }
}

fn member(m: &Member) -> String {
    let (ty, older) = split_types(&m.types, m.versions.0);
    let mut out =
        format!("M {{ name: {:?}, ty: {:?}, versions: V({})", m.name, ty.unwrap_or(""), m.versions.0);
    if m.optional.0 != 0 {
        let _ = write!(out, ", optional: V({})", m.optional.0);
    }
    older_types(&mut out, &older);
    conds(&mut out, &m.cond, &m.older_conds);
    out.push_str(", ..M::NONE }");
    out
}

fn case(c: &Case) -> String {
    let mut out = format!("C {{ name: {:?}, versions: V({})", c.name, c.versions.0);
    let (ty, older) = split_types(&c.types, c.versions.0);
    if let Some(ty) = ty {
        let _ = write!(out, ", ty: Some({ty:?})");
    }
    older_types(&mut out, &older);
    conds(&mut out, &c.cond, &c.older_conds);
    out.push_str(", ..C::NONE }");
    out
}

fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    format!("&[{}]", items.iter().map(f).collect::<Vec<_>>().join(", "))
}

fn kind(k: &Kind) -> String {
    match k {
        Kind::Command { args, boxed, returns, allow_oob, no_success_response, .. } => format!(
            "K::Command {{ args: {}, boxed: {boxed}, returns: {}, allow_oob: {allow_oob}, no_success_response: {no_success_response} }}",
            opt_str(args),
            opt_str(returns)
        ),
        Kind::Event { data, boxed } => format!("K::Event {{ data: {}, boxed: {boxed} }}", opt_str(data)),
        Kind::Struct { base, members } => {
            format!("K::Struct {{ base: {}, members: {} }}", opt_str(base), list(members, member))
        }
        Kind::Enum { values, .. } => format!("K::Enum {{ values: {} }}", list(values, case)),
        Kind::Union { base, discriminator, variants } => format!(
            "K::Union {{ base: {base:?}, discriminator: {discriminator:?}, variants: {} }}",
            list(variants, case)
        ),
        Kind::Alternate { alternatives } => {
            format!("K::Alternate {{ alternatives: {} }}", list(alternatives, case))
        }
    }
}

fn entity(e: &Entity) -> String {
    let mut out = format!("E {{ name: {:?}, versions: V({}), kind: {}", e.name, e.versions.0, kind(&e.kind));
    conds(&mut out, &e.cond, &e.older_conds);
    if !e.older_kinds.is_empty() {
        let older: Vec<String> = e
            .older_kinds
            .iter()
            .map(|k| format!("KindIn {{ versions: V({}), kind: {} }}", k.versions.0, kind(&k.kind)))
            .collect();
        let _ = write!(out, ", older_kinds: &[{}]", older.join(", "));
    }
    out.push_str(", ..E::NONE }");
    out
}

fn cond_symbols(c: &Cond, out: &mut BTreeSet<String>) {
    let mut stack = vec![c];
    while let Some(c) = stack.pop() {
        match c {
            Cond::Name(n) => {
                out.insert(n.clone());
            }
            Cond::All(v) | Cond::Any(v) => stack.extend(v.iter()),
            Cond::Not(c) => stack.push(c),
        }
    }
}

fn conds_symbols(c: &Option<Cond>, older: &[CondIn], out: &mut BTreeSet<String>) {
    for c in c.iter().chain(older.iter().filter_map(|o| o.cond.as_ref())) {
        cond_symbols(c, out);
    }
}

fn kind_symbols(k: &Kind, out: &mut BTreeSet<String>) {
    match k {
        Kind::Struct { members, .. } => {
            for m in members {
                conds_symbols(&m.cond, &m.older_conds, out);
            }
        }
        Kind::Enum { values: cases, .. }
        | Kind::Union { variants: cases, .. }
        | Kind::Alternate { alternatives: cases } => {
            for c in cases {
                conds_symbols(&c.cond, &c.older_conds, out);
            }
        }
        Kind::Command { .. } | Kind::Event { .. } => {}
    }
}

/// The symbols of every condition the facts hold for `e`.
fn entity_symbols(e: &Entity, out: &mut BTreeSet<String>) {
    conds_symbols(&e.cond, &e.older_conds, out);
    kind_symbols(&e.kind, out);
    for k in &e.older_kinds {
        kind_symbols(&k.kind, out);
    }
}
