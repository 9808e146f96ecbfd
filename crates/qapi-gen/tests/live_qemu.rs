//! The model's 7.2 slice against what QEMU 7.2 itself says: `query-qmp-schema` from
//! `qemu-system-x86_64` and `qemu-storage-daemon`, started here (a missing binary fails the
//! test), compared structurally.
//!
//! QEMU's introspection masks type names as numbers, flattens bases and implicit structs
//! into each object's members, maps every integer type to `int`, and leaves out whatever
//! the build's `if` conditions exclude. So types are compared by shape, following the
//! references on both sides together (a pair already assumed equal is not followed again,
//! which ends the walk on recursive types), with a worklist rather than recursion. Each
//! difference either has an `if` condition that is false for the build (the table below
//! says which symbols are true for Debian's QEMU 7.2 on x86_64 Linux) and is then printed
//! as explained by it, or fails the test.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use qapi_gen::model::{Cond, Entity, Kind, Member, Model, Schema};
use qapi_gen::truth::Build;
use serde_json::Value;

/// The truth table: `qapi_gen::truth::DEBIAN_X86_64`, the repository's one copy (the
/// simulator evaluates the 7.2 slice with it too, through the generated facts). This test
/// checks it: a wrong entry is a difference nothing explains, a symbol a condition uses
/// that it does not list fails the test naming it, and one listed that no condition uses
/// fails it too.
const SYSTEM: Build = qapi_gen::truth::DEBIAN_X86_64;

/// For the storage daemon: the same host, no target.
fn storage_daemon_truth(sym: &str) -> Option<bool> {
    SYSTEM.without_targets().symbol(sym)
}

fn system_truth(sym: &str) -> Option<bool> {
    SYSTEM.symbol(sym)
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn model_72() -> (Schema, &'static str) {
    let path = repo().join("crates/qmp-qapi/model.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let model = Model::from_json(&text).expect("the committed model reads");
    let v = model.version_index("7.2.0").expect("the model has 7.2.0");
    (model.schemas["qmp"].at(v), "7.2.0")
}

/// `query-qmp-schema` over a plain socket: the greeting, `qmp_capabilities`, the query
/// (events, if any, passed over). The workspace's client is not used, so that this test
/// checks the model whatever state the client is in.
fn fetch_schema(socket: &Path) -> Vec<Value> {
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect to QEMU's QMP socket");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("set a read timeout");
    let reader = stream.try_clone().expect("clone the socket");
    let mut messages =
        serde_json::Deserializer::from_reader(std::io::BufReader::new(reader)).into_iter::<Value>();
    let mut next_reply = |what: &str| loop {
        let m =
            messages.next().unwrap_or_else(|| panic!("QEMU hung up before {what}")).expect("QEMU sends JSON");
        if m.get("QMP").is_some() || m.get("return").is_some() || m.get("error").is_some() {
            break m;
        }
    };
    assert!(next_reply("its greeting").get("QMP").is_some(), "no QMP greeting");
    stream.write_all(br#"{"execute": "qmp_capabilities"}"#).expect("send qmp_capabilities");
    assert!(next_reply("negotiation").get("return").is_some(), "qmp_capabilities failed");
    stream.write_all(br#"{"execute": "query-qmp-schema"}"#).expect("send query-qmp-schema");
    let reply = next_reply("the schema");
    reply["return"].as_array().unwrap_or_else(|| panic!("query-qmp-schema failed: {reply}")).clone()
}

/// A condition's text, for the report.
fn show(c: &Cond) -> String {
    match c {
        Cond::Name(n) => n.clone(),
        Cond::All(v) => format!("all({})", v.iter().map(show).collect::<Vec<_>>().join(", ")),
        Cond::Any(v) => format!("any({})", v.iter().map(show).collect::<Vec<_>>().join(", ")),
        Cond::Not(c) => format!("not({})", show(c)),
    }
}

/// Evaluates a condition; an unknown symbol is an error naming it. Conditions nest as
/// deeply as the parser allows (64), so the recursion is bounded.
fn eval(c: &Cond, truth: &dyn Fn(&str) -> Option<bool>, used: &mut BTreeSet<String>) -> Result<bool, String> {
    Ok(match c {
        Cond::Name(n) => {
            used.insert(n.clone());
            truth(n).ok_or_else(|| n.clone())?
        }
        Cond::All(v) => {
            let mut all = true;
            for c in v {
                all &= eval(c, truth, used)?;
            }
            all
        }
        Cond::Any(v) => {
            let mut any = false;
            for c in v {
                any |= eval(c, truth, used)?;
            }
            any
        }
        Cond::Not(c) => !eval(c, truth, used)?,
    })
}

struct Compare<'a> {
    model: &'a Schema,
    intro: HashMap<&'a str, &'a Value>,
    truth: &'a dyn Fn(&str) -> Option<bool>,
    /// Differences nothing explains.
    unexplained: Vec<String>,
    /// Differences a false condition explains: by condition, the items.
    explained: BTreeMap<String, BTreeSet<String>>,
    unknown_symbols: BTreeSet<String>,
    /// The symbols of every condition evaluated.
    used_symbols: BTreeSet<String>,
    /// Pairs (model type, QEMU's type) to compare, with where they were met.
    work: Vec<(String, String, String)>,
    seen: HashSet<(String, String)>,
    enums: BTreeSet<String>,
    objects: BTreeSet<String>,
}

/// Where a path leads, for the report: `cmd arguments (T).m (U)` is `U`.
fn short(at: &str) -> String {
    match at.rfind(" (") {
        Some(i) => at[i + 2..].replacen(')', "", 1),
        None => at.to_string(),
    }
}

/// Every integer type is `int` on the wire.
fn builtin(t: &str) -> Option<&'static str> {
    Some(match t {
        "int" | "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64" | "size" => {
            "int"
        }
        "str" => "str",
        "number" => "number",
        "bool" => "bool",
        "null" => "null",
        "any" => "any",
        _ => return None,
    })
}

impl<'a> Compare<'a> {
    fn new(model: &'a Schema, intro: &'a [Value], truth: &'a dyn Fn(&str) -> Option<bool>) -> Compare<'a> {
        let intro = intro.iter().filter_map(|e| Some((e["name"].as_str()?, e))).collect();
        Compare {
            model,
            intro,
            truth,
            unexplained: Vec::new(),
            explained: BTreeMap::new(),
            unknown_symbols: BTreeSet::new(),
            used_symbols: BTreeSet::new(),
            work: Vec::new(),
            seen: HashSet::new(),
            enums: BTreeSet::new(),
            objects: BTreeSet::new(),
        }
    }

    /// Whether an item with `cond` is in the build; false conditions are recorded as
    /// explaining `what`'s absence.
    fn present(&mut self, cond: Option<&Cond>) -> bool {
        match cond {
            None => true,
            Some(c) => match eval(c, self.truth, &mut self.used_symbols) {
                Ok(b) => b,
                Err(sym) => {
                    self.unknown_symbols.insert(sym);
                    true
                }
            },
        }
    }

    fn explain(&mut self, cond: Option<&Cond>, what: String) {
        let key = cond.map(show).unwrap_or_default();
        self.explained.entry(key).or_default().insert(what);
    }

    fn differ(&mut self, what: String) {
        self.unexplained.push(what);
    }

    fn entity(&self, name: &str) -> Option<&'a Entity> {
        self.model.get(name)
    }

    /// A command or event of the model against QEMU's, by name.
    fn top_level(&mut self, e: &'a Entity, theirs: &'a Value) {
        let at = e.name.clone();
        match (&e.kind, theirs["meta-type"].as_str()) {
            (Kind::Command { args, returns, allow_oob, .. }, Some("command")) => {
                self.arg_type(args.as_deref(), &theirs["arg-type"], format!("{at} arguments"));
                self.arg_type(returns.as_deref(), &theirs["ret-type"], format!("{at} returns"));
                if *allow_oob != theirs["allow-oob"].as_bool().unwrap_or(false) {
                    self.differ(format!("{at}: allow-oob {allow_oob} in the model"));
                }
            }
            (Kind::Event { data, .. }, Some("event")) => {
                self.arg_type(data.as_deref(), &theirs["arg-type"], format!("{at} data"))
            }
            (_, meta) => self.differ(format!("{at}: a {meta:?} in QEMU, not so in the model")),
        }
        self.features(&e.features, &theirs["features"], &at);
    }

    /// Arguments, data or a return: none in the model is QEMU's empty object.
    fn arg_type(&mut self, ours: Option<&str>, theirs: &Value, at: String) {
        let Some(theirs) = theirs.as_str() else {
            return self.differ(format!("{at}: QEMU gives no type"));
        };
        match ours {
            Some(t) => self.work.push((t.to_string(), theirs.to_string(), at)),
            None => {
                if !self.is_empty_object(theirs) {
                    self.differ(format!("{at}: none in the model, {theirs} in QEMU"));
                }
            }
        }
    }

    fn is_empty_object(&self, theirs: &str) -> bool {
        self.intro.get(theirs).is_some_and(|e| {
            e["meta-type"] == "object"
                && e["members"].as_array().is_some_and(|m| m.is_empty())
                && e.get("variants").is_none()
        })
    }

    fn features(&mut self, ours: &[qapi_gen::model::Feature], theirs: &Value, at: &str) {
        let theirs: BTreeSet<&str> =
            theirs.as_array().map(|a| a.iter().filter_map(|f| f.as_str()).collect()).unwrap_or_default();
        let mut mine = BTreeSet::new();
        for f in ours {
            if self.present(f.cond.as_ref()) {
                mine.insert(f.name.as_str());
            } else {
                self.explain(f.cond.as_ref(), format!("{}: feature {}", short(at), f.name));
            }
        }
        if mine != theirs {
            self.differ(format!("{at}: features {mine:?} in the model, {theirs:?} in QEMU"));
        }
    }

    /// Follows the pairs until none is left.
    fn run(&mut self) {
        while let Some((ours, theirs, at)) = self.work.pop() {
            if !self.seen.insert((ours.clone(), theirs.clone())) {
                continue;
            }
            self.pair(&ours, &theirs, &at);
        }
    }

    fn pair(&mut self, ours: &str, theirs: &str, at: &str) {
        if let Some(b) = builtin(ours) {
            if b != theirs {
                self.differ(format!("{at}: {ours} in the model, {theirs} in QEMU"));
            }
            return;
        }
        if let Some(elem) = ours.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            match theirs.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                Some(e) => self.work.push((elem.to_string(), e.to_string(), format!("{at}[]"))),
                None => self.differ(format!("{at}: an array in the model, {theirs} in QEMU")),
            }
            return;
        }
        let Some(e) = self.entity(ours) else {
            return self.differ(format!("{at}: the model has no type {ours}"));
        };
        let Some(t) = self.intro.get(theirs).copied() else {
            return self.differ(format!("{at}: QEMU's type {theirs} is not in its schema"));
        };
        let at = format!("{at} ({ours})");
        match (&e.kind, t["meta-type"].as_str().unwrap_or("")) {
            (Kind::Enum { values, .. }, "enum") => {
                self.enums.insert(ours.to_string());
                let theirs: Vec<&str> = t["values"]
                    .as_array()
                    .map(|v| v.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                let mut mine = Vec::new();
                for v in values {
                    if self.present(v.cond.as_ref()) {
                        mine.push(v.name.as_str());
                    } else if theirs.contains(&v.name.as_str()) {
                        self.differ(format!("{at}: value {} is in QEMU, its condition is false", v.name));
                    } else {
                        self.explain(v.cond.as_ref(), format!("{ours}: value {}", v.name));
                    }
                }
                if mine != theirs {
                    self.differ(format!("{at}: values {mine:?} in the model, {theirs:?} in QEMU"));
                }
                // Each value's features (`members`, beside `values`).
                let members: HashMap<&str, &Value> = t["members"]
                    .as_array()
                    .map(|m| m.iter().filter_map(|v| Some((v["name"].as_str()?, v))).collect())
                    .unwrap_or_default();
                for v in values {
                    if let Some(their) = members.get(v.name.as_str()) {
                        self.features(&v.features, &their["features"], &format!("{at}.{}", v.name));
                    }
                }
            }
            (Kind::Struct { .. }, "object") => {
                self.objects.insert(ours.to_string());
                let members = self.flatten(e, &at);
                self.members(&members, t, &at);
                if t.get("variants").is_some() {
                    self.differ(format!("{at}: QEMU's object has variants"));
                }
                self.features(&e.features, &t["features"], &at);
            }
            (Kind::Union { base, discriminator, variants }, "object") => {
                self.objects.insert(ours.to_string());
                let members = match self.entity(base) {
                    Some(b) => self.flatten(b, &at),
                    None => {
                        self.differ(format!("{at}: the model has no base {base}"));
                        Vec::new()
                    }
                };
                self.members(&members, t, &at);
                if t["tag"].as_str() != Some(discriminator) {
                    self.differ(format!("{at}: tag {discriminator} in the model, {} in QEMU", t["tag"]));
                }
                let theirs: HashMap<&str, &str> = t["variants"]
                    .as_array()
                    .map(|v| {
                        v.iter().filter_map(|c| Some((c["case"].as_str()?, c["type"].as_str()?))).collect()
                    })
                    .unwrap_or_default();
                let mut mine = HashSet::new();
                for v in variants {
                    let ty = v.types.first().map(|t| t.ty.clone()).unwrap_or_default();
                    if !self.present(v.cond.as_ref()) {
                        if theirs.get(v.name.as_str()).is_some_and(|t| !self.is_empty_object(t)) {
                            self.differ(format!(
                                "{at}: variant {} is in QEMU, its condition is false",
                                v.name
                            ));
                        } else {
                            self.explain(v.cond.as_ref(), format!("{ours}: variant {}", v.name));
                        }
                        continue;
                    }
                    mine.insert(v.name.as_str());
                    match theirs.get(v.name.as_str()) {
                        Some(t) => self.work.push((ty, t.to_string(), format!("{at}.{}", v.name))),
                        None => self.differ(format!("{at}: variant {} is not in QEMU", v.name)),
                    }
                }
                // QEMU lists every discriminator value; those without a variant have an
                // empty object.
                for (case, ty) in &theirs {
                    if !mine.contains(case) && !self.is_empty_object(ty) {
                        self.differ(format!("{at}: QEMU has variant {case}, the model has not"));
                    }
                }
                self.features(&e.features, &t["features"], &at);
            }
            (Kind::Alternate { alternatives }, "alternate") => {
                let theirs: Vec<&str> = t["members"]
                    .as_array()
                    .map(|v| v.iter().filter_map(|m| m["type"].as_str()).collect())
                    .unwrap_or_default();
                let mut mine = Vec::new();
                for a in alternatives {
                    if self.present(a.cond.as_ref()) {
                        mine.push((
                            a.name.clone(),
                            a.types.first().map(|t| t.ty.clone()).unwrap_or_default(),
                        ));
                    } else {
                        self.explain(a.cond.as_ref(), format!("{ours}: alternative {}", a.name));
                    }
                }
                if mine.len() != theirs.len() {
                    return self.differ(format!(
                        "{at}: {} alternatives in the model, {} in QEMU",
                        mine.len(),
                        theirs.len()
                    ));
                }
                for ((name, ty), t) in mine.into_iter().zip(theirs) {
                    self.work.push((ty, t.to_string(), format!("{at}.{name}")));
                }
            }
            (kind, meta) => self.differ(format!("{at}: {kind:?} in the model, a {meta} in QEMU")),
        }
    }

    /// A struct's members with its bases' first, as QEMU lists them (bases followed with a
    /// loop, bounded against a cycle).
    fn flatten(&mut self, e: &'a Entity, at: &str) -> Vec<&'a Member> {
        let mut chain = vec![e];
        let mut cur = e;
        while let Kind::Struct { base: Some(b), .. } = &cur.kind {
            match self.entity(b) {
                Some(next) if chain.len() < 64 => {
                    chain.push(next);
                    cur = next;
                }
                _ => {
                    self.differ(format!("{at}: base {b} is missing or loops"));
                    break;
                }
            }
        }
        let mut out = Vec::new();
        for s in chain.iter().rev() {
            if let Kind::Struct { members, .. } = &s.kind {
                out.extend(members.iter());
            } else {
                self.differ(format!("{at}: base {} is not a struct", s.name));
            }
        }
        out
    }

    fn members(&mut self, ours: &[&'a Member], t: &'a Value, at: &str) {
        let theirs: Vec<&Value> = t["members"].as_array().map(|m| m.iter().collect()).unwrap_or_default();
        let by_name: HashMap<&str, &Value> =
            theirs.iter().filter_map(|m| Some((m["name"].as_str()?, *m))).collect();
        let mut order = Vec::new();
        for m in ours {
            if !self.present(m.cond.as_ref()) {
                if by_name.contains_key(m.name.as_str()) {
                    self.differ(format!("{at}: member {} is in QEMU, its condition is false", m.name));
                } else {
                    self.explain(m.cond.as_ref(), format!("{}: member {}", short(at), m.name));
                }
                continue;
            }
            order.push(m.name.as_str());
            let Some(their) = by_name.get(m.name.as_str()) else {
                self.differ(format!("{at}: member {} is not in QEMU", m.name));
                continue;
            };
            let optional = their.get("default").is_some();
            if optional != (m.optional.0 != 0) {
                self.differ(format!("{at}: member {} optional {} in the model", m.name, !optional));
            }
            let ty = m.types.first().map(|t| t.ty.clone()).unwrap_or_default();
            self.work.push((
                ty,
                their["type"].as_str().unwrap_or("").to_string(),
                format!("{at}.{}", m.name),
            ));
            let member_at = format!("{at}.{}", m.name);
            self.features(&m.features, &their["features"], &member_at);
        }
        let theirs_order: Vec<&str> = theirs.iter().filter_map(|m| m["name"].as_str()).collect();
        if order != theirs_order {
            self.differ(format!("{at}: members {order:?} in the model, {theirs_order:?} in QEMU"));
        }
    }
}

/// Counts and the report of one comparison.
struct Outcome {
    commands: usize,
    events: usize,
    enums: usize,
    objects: usize,
}

fn report(name: &str, c: &Compare<'_>, o: &Outcome) {
    println!(
        "{name}: compared {} commands, {} events, {} enums, {} object types",
        o.commands, o.events, o.enums, o.objects
    );
    let enums = c.model.entities.iter().filter(|e| matches!(e.kind, Kind::Enum { .. })).count();
    println!(
        "{name}: the model's 7.2.0 slice has {enums} enums; the other {} are used by nothing this binary has \
         (QEMU's introspection lists only the types its commands and events use)",
        enums - o.enums
    );
    let total: usize = c.explained.values().map(BTreeSet::len).sum();
    println!("{name}: {total} differences (items absent from QEMU), each explained by a false condition:");
    for (cond, items) in &c.explained {
        let items: Vec<&str> = items.iter().map(String::as_str).collect();
        println!("  {cond}: {} ({})", items.len(), items.join("; "));
    }
    println!("{name}: the conditions' symbols consulted: {:?}", c.used_symbols);
    assert!(
        c.unknown_symbols.is_empty(),
        "{name}: add these symbols to the truth table: {:?}",
        c.unknown_symbols
    );
    assert!(
        c.unexplained.is_empty(),
        "{name}: {} unexplained differences:\n{}",
        c.unexplained.len(),
        c.unexplained.join("\n")
    );
}

/// The whole system emulator's schema against the model's slice.
fn compare_system<'a>(model: &'a Schema, intro: &'a [Value]) -> (Compare<'a>, Outcome) {
    let mut c = Compare::new(model, intro, &system_truth);
    let (mut commands, mut events) = (0, 0);
    let mut theirs_top: BTreeSet<&str> = intro
        .iter()
        .filter(|e| matches!(e["meta-type"].as_str(), Some("command" | "event")))
        .filter_map(|e| e["name"].as_str())
        .collect();
    for e in &model.entities {
        if !matches!(e.kind, Kind::Command { .. } | Kind::Event { .. }) {
            continue;
        }
        let present = c.present(e.cond.as_ref());
        match (present, c.intro.get(e.name.as_str()).copied()) {
            (true, Some(t)) => {
                theirs_top.remove(e.name.as_str());
                if matches!(e.kind, Kind::Command { .. }) {
                    commands += 1;
                } else {
                    events += 1;
                }
                c.top_level(e, t);
            }
            (true, None) => c.differ(format!("{}: in the model, not in QEMU", e.name)),
            (false, Some(_)) => c.differ(format!("{}: in QEMU, its condition is false", e.name)),
            (false, None) => c.explain(e.cond.as_ref(), e.name.clone()),
        }
    }
    for name in theirs_top {
        c.differ(format!("{name}: in QEMU, not in the model"));
    }
    c.run();
    let o = Outcome { commands, events, enums: c.enums.len(), objects: c.objects.len() };
    (c, o)
}

fn system_schema() -> Vec<Value> {
    let peer = qmp_testkit::Peer::qemu(1);
    fetch_schema(peer.socket(0))
}

#[test]
fn the_72_slice_matches_qemu_system_x86_64() {
    let intro = system_schema();
    let (model, _) = model_72();
    let (c, o) = compare_system(&model, &intro);
    report("qemu-system-x86_64", &c, &o);
    let unused: Vec<&str> =
        SYSTEM.symbols.iter().map(|(s, _)| *s).filter(|s| !c.used_symbols.contains(*s)).collect();
    assert!(unused.is_empty(), "the truth table lists symbols no condition of 7.2 uses: {unused:?}");
    assert!(o.commands > 150 && o.events > 30 && o.enums > 50, "too little compared");
}

/// The comparison is not blind: a model with a few facts changed fails it, each change
/// found.
#[test]
fn the_comparison_finds_what_differs() {
    let intro = system_schema();
    let (mut model, _) = model_72();
    let mut changed = 0;
    for e in &mut model.entities {
        match (&mut e.kind, e.name.as_str()) {
            (Kind::Command { allow_oob, .. }, "migrate-recover") => *allow_oob = !*allow_oob,
            (Kind::Enum { values, .. }, "RunState") => values[0].name.push_str("-not"),
            (Kind::Struct { members, .. }, "StatusInfo") => {
                members[0].optional = qapi_gen::model::Versions(!members[0].optional.0);
                members[1].types[0].ty = "int".into();
            }
            _ => continue,
        }
        changed += 1;
    }
    assert_eq!(changed, 3);
    let (c, _) = compare_system(&model, &intro);
    let found = c.unexplained.join("\n");
    for want in [
        "migrate-recover: allow-oob",
        "(RunState): values",
        "(StatusInfo): member running optional",
        "(StatusInfo).singlestep",
    ] {
        assert!(found.contains(want), "{want:?} not found in:\n{found}");
    }
}

#[test]
fn every_storage_daemon_command_and_event_is_in_the_72_slice() {
    let peer = qmp_testkit::Peer::storage_daemon(1);
    let intro = fetch_schema(peer.socket(0));
    drop(peer);
    let (model, version) = model_72();
    let mut c = Compare::new(&model, &intro, &storage_daemon_truth);
    let (mut commands, mut events) = (0, 0);
    for t in &intro {
        let (Some(name), Some(meta)) = (t["name"].as_str(), t["meta-type"].as_str()) else { continue };
        if meta != "command" && meta != "event" {
            continue;
        }
        match model.get(name) {
            Some(e) => {
                if meta == "command" {
                    commands += 1;
                } else {
                    events += 1;
                }
                c.top_level(e, t);
            }
            None => c.differ(format!("{name}: in the storage daemon, not in the model ({version})")),
        }
    }
    c.run();
    let o = Outcome { commands, events, enums: c.enums.len(), objects: c.objects.len() };
    report("qemu-storage-daemon", &c, &o);
    assert!(commands > 50, "too little compared");

    // The names the simulator's storage-daemon mode offers (`qapi_gen::truth`) are this
    // binary's, no more and no fewer.
    for (meta, ours) in [
        ("command", qapi_gen::truth::STORAGE_DAEMON_COMMANDS),
        ("event", qapi_gen::truth::STORAGE_DAEMON_EVENTS),
    ] {
        let theirs: BTreeSet<&str> =
            intro.iter().filter(|t| t["meta-type"] == meta).filter_map(|t| t["name"].as_str()).collect();
        let ours: BTreeSet<&str> = ours.iter().copied().collect();
        let missing: Vec<_> = theirs.difference(&ours).collect();
        let extra: Vec<_> = ours.difference(&theirs).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "qapi_gen::truth's storage-daemon {meta}s: missing {missing:?}, not in the daemon {extra:?}"
        );
    }
}
