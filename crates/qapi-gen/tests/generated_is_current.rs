//! The generated Rust in crates/qmp/src/generated is exactly what the committed model gives:
//! this regenerates it (rustfmt included) and fails on any difference. Run with
//! `QAPI_GEN_WRITE=1` to write the generated files instead (after changing the model or the
//! emitter), then commit them.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Each schema of the model, the Rust module it becomes and where its files go.
const OUTPUTS: &[(&str, &str, &str)] = &[
    ("qmp", "crate::generated", "crates/qmp/src/generated"),
    ("qga", "crate::ga::generated", "crates/qmp/src/ga/generated"),
];

#[test]
fn the_generated_api_is_what_the_committed_model_gives() {
    for (schema, module, dir) in OUTPUTS {
        check(schema, module, dir);
    }
}

fn check(schema: &str, module: &str, dir: &str) {
    let root = workspace();
    let text = std::fs::read_to_string(root.join("crates/qmp-qapi/model.json")).unwrap();
    let model = qapi_gen::model::Model::from_json(&text).unwrap();
    let mut files = qapi_gen::emit::generate(&model, schema, module).unwrap();
    qapi_gen::emit::format(&mut files, &root.join("rustfmt.toml")).unwrap();
    let dir = root.join(dir);
    if std::env::var_os("QAPI_GEN_WRITE").is_some() {
        qapi_gen::emit::write(&files, &dir).unwrap();
        return;
    }
    let mut stale = Vec::new();
    for (path, want) in &files {
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
