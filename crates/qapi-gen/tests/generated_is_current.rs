//! The generated Rust in crates/qmp-qapi/src (and the facts in crates/qmp/src) is exactly what
//! the committed model gives:
//! this regenerates it (rustfmt included) and fails on any difference. Run with
//! `QAPI_GEN_WRITE=1` to write the generated files instead (after changing the model or the
//! emitter), then commit them.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Each schema of the model, the Rust module it becomes, where its files go and where its
/// facts file goes.
const OUTPUTS: &[(&str, &str, &str, &str)] = &[
    ("qmp", "crate::generated", "crates/qmp-qapi/src/generated", "crates/qmp/src/generated"),
    ("qga", "crate::ga::generated", "crates/qmp-qapi/src/ga/generated", "crates/qmp/src/ga/generated"),
];

#[test]
fn the_generated_api_is_what_the_committed_model_gives() {
    for (schema, module, dir, facts_dir) in OUTPUTS {
        check(schema, module, dir, facts_dir);
    }
}

fn check(schema: &str, module: &str, dir: &str, facts_dir: &str) {
    let root = workspace();
    let text = std::fs::read_to_string(root.join("crates/qmp-qapi/model.json")).unwrap();
    let model = qapi_gen::model::Model::from_json(&text).unwrap();
    let mut files = qapi_gen::emit::generate(&model, schema, module).unwrap();
    qapi_gen::emit::format(&mut files, &root.join("rustfmt.toml")).unwrap();
    let facts_path = std::path::PathBuf::from(qapi_gen::emit::FACTS);
    let facts = qapi_gen::emit::Files::from([(facts_path.clone(), files.remove(&facts_path).unwrap())]);
    let (dir, facts_dir) = (root.join(dir), root.join(facts_dir));
    if std::env::var_os("QAPI_GEN_WRITE").is_some() {
        qapi_gen::emit::write(&files, &dir).unwrap();
        qapi_gen::emit::write(&facts, &facts_dir).unwrap();
        return;
    }
    let mut stale = Vec::new();
    let every = files.iter().map(|f| (&dir, f)).chain(facts.iter().map(|f| (&facts_dir, f)));
    for (dir, (path, want)) in every {
        match std::fs::read_to_string(dir.join(path)) {
            Ok(have) if &have == want => {}
            _ => stale.push(path.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "{} generated files of {schema} differ from what the model gives: {stale:?}\n\
         regenerate with: QAPI_GEN_WRITE=1 cargo test -p qapi-gen --test generated_is_current",
        stale.len()
    );
}
