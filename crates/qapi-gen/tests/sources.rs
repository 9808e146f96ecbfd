//! The model read from QEMU's own schema sources (`shared/qapi/<tag>/` beside the
//! workspace): deterministic, lossless per version, and the committed model up to date.

use std::path::{Path, PathBuf};
use std::time::Instant;

use qapi_gen::build::{self, Tree};
use qapi_gen::model::{Entity, Kind, Model};
use qapi_gen::{parse, read};

const REGENERATE: &str =
    "cargo run -p qapi-gen -- model --qapi ../shared/qapi --out crates/qmp-qapi/model.json (from the workspace root)";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `shared/qapi`, beside the workspace (CI has a read-only copy there).
fn sources() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/qapi");
    assert!(
        dir.is_dir(),
        "QEMU's QAPI sources are not at {} (shared/qapi beside the workspace: one directory per \
         release tag, each with qapi/ and qga/); the model cannot be checked without them",
        dir.display()
    );
    dir
}

fn trees() -> Vec<Tree> {
    let trees = build::tags_under(&sources(), None).unwrap_or_else(|e| panic!("{e}"));
    assert!(trees.len() >= 7, "expected QEMU 7.2.0 to 9.2.0-rc2 under {}", sources().display());
    trees
}

fn build() -> Model {
    build::build_model(&trees()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn versions_are_in_release_order() {
    let names: Vec<String> = trees().into_iter().map(|t| t.version).collect();
    assert_eq!(names, ["7.2.0", "8.0.0", "8.1.0", "8.2.0", "9.0.0", "9.1.0", "9.2.0-rc2"]);
    let mut v = vec!["9.2.0", "9.2.0-rc2", "10.0.0", "9.10.0", "9.2.0-rc10", "9.2.0-rc1"];
    v.sort_by_key(|s| build::version_key(s));
    assert_eq!(v, ["9.2.0-rc1", "9.2.0-rc2", "9.2.0-rc10", "9.2.0", "9.10.0", "10.0.0"]);
}

#[test]
fn reading_twice_gives_the_same_bytes() {
    let started = Instant::now();
    let a = build().to_json();
    let once = started.elapsed();
    let b = build().to_json();
    println!("read and merged {} versions in {once:.1?}", trees().len());
    assert!(a == b, "two reads of the same sources differ");
}

#[test]
fn the_committed_model_is_up_to_date() {
    let path = workspace().join("crates/qmp-qapi/model.json");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; generate it: {REGENERATE}", path.display()));
    let fresh = build().to_json();
    if committed != fresh {
        let line = committed.lines().zip(fresh.lines()).position(|(a, b)| a != b).map_or_else(
            || format!("line {}", committed.lines().count().min(fresh.lines().count()) + 1),
            |n| format!("line {}", n + 1),
        );
        panic!(
            "{} differs from the model read from {} (first at {line}); regenerate it: {REGENERATE}",
            path.display(),
            sources().display()
        );
    }
    assert_eq!(Model::from_json(&committed).expect("the committed model reads").to_json(), committed);
}

/// What the merge does not keep per version: the module and `since` are the newest's.
fn without_newest_only_facts(mut e: Entity) -> Entity {
    e.module.clear();
    e.since = None;
    let clear = |k: &mut Kind| match k {
        Kind::Struct { members, .. } => members.iter_mut().for_each(|m| m.since = None),
        Kind::Enum { values, .. } => values.iter_mut().for_each(|v| v.since = None),
        _ => {}
    };
    clear(&mut e.kind);
    e
}

#[test]
fn every_version_of_the_model_is_what_that_version_defines() {
    let trees = trees();
    let model = build();
    for (i, tree) in trees.iter().enumerate() {
        for (schema, file) in build::SCHEMAS {
            let exprs = parse::read_schema(&tree.path.join(file)).unwrap_or_else(|e| panic!("{e}"));
            let read: Vec<Entity> = read::entities(&exprs, i)
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .map(without_newest_only_facts)
                .collect();
            let slice: Vec<Entity> =
                model.schemas[schema].at(i).entities.into_iter().map(without_newest_only_facts).collect();
            assert_eq!(slice.len(), read.len(), "{schema} {}", tree.version);
            for (a, b) in slice.iter().zip(&read) {
                assert_eq!(a, b, "{schema} {}: {}", tree.version, b.name);
            }
        }
    }
}

#[test]
fn the_model_has_what_it_should() {
    let model = build();
    let qmp = &model.schemas["qmp"];
    let all = (1u64 << model.versions.len()) - 1;
    let status = qmp.get("query-status").expect("query-status");
    assert_eq!(status.versions.0, all);
    assert_eq!(status.module, "run-state");
    assert_eq!(status.since.as_deref(), Some("0.14"));
    assert!(
        matches!(&status.kind, Kind::Command { returns: Some(r), allow_preconfig: true, .. } if r == "StatusInfo")
    );
    let add = qmp.get("blockdev-add").expect("blockdev-add");
    assert!(matches!(&add.kind, Kind::Command { args: Some(a), boxed: true, .. } if a == "BlockdevOptions"));
    assert!(
        matches!(&qmp.get("BlockdevOptions").unwrap().kind, Kind::Union { discriminator, .. } if discriminator == "driver")
    );
    let qga = &model.schemas["qga"];
    assert!(matches!(
        &qga.get("guest-shutdown").unwrap().kind,
        Kind::Command { no_success_response: true, .. }
    ));
    let counts = |s: &qapi_gen::model::Schema| {
        let mut c = std::collections::BTreeMap::new();
        for e in &s.entities {
            let k = serde_json::to_value(&e.kind).unwrap()["kind"].as_str().unwrap().to_string();
            *c.entry(k).or_insert(0) += 1;
        }
        c
    };
    println!(
        "qmp: {} entities {:?}; qga: {} entities {:?}",
        qmp.entities.len(),
        counts(qmp),
        qga.entities.len(),
        counts(qga)
    );
}

/// The committed model holds facts only (the legal rule: no text of QEMU's, no sentence of
/// its documentation): every string in it is a name, a type, a version or a config
/// symbol, and every `since` a version number.
#[test]
fn the_committed_model_holds_names_and_numbers_only() {
    let path = workspace().join("crates/qmp-qapi/model.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text).expect("the model is JSON");
    let name_like =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.[]".contains(c));
    let version_like = |s: &str| s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    // (key it is under, value), walked with a stack.
    let mut stack: Vec<(Option<String>, &serde_json::Value)> = vec![(None, &value)];
    let mut strings = 0;
    while let Some((key, v)) = stack.pop() {
        match v {
            serde_json::Value::String(s) => {
                strings += 1;
                assert!(name_like(s), "{}: a string that is not a name: {s:?}", path.display());
                if key.as_deref() == Some("since") {
                    assert!(version_like(s), "{}: since {s:?} is not a version number", path.display());
                }
            }
            serde_json::Value::Array(a) => stack.extend(a.iter().map(|x| (key.clone(), x))),
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    assert!(name_like(k), "{}: a key that is not a name: {k:?}", path.display());
                    stack.push((Some(k.clone()), x));
                }
            }
            _ => {}
        }
    }
    assert!(strings > 10_000, "too few strings: {strings}");
}
