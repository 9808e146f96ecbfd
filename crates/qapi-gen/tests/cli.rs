//! The `qapi-gen` binary, run as a user runs it: on QEMU's trees, on a fork's tree of its
//! own (written here, with invented `__com.example_` extensions), and on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use qapi_gen::model::{Kind, Model};

fn qapi_gen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qapi-gen")).args(args).output().expect("run qapi-gen")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sources() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/qapi");
    assert!(
        dir.is_dir(),
        "QEMU's QAPI sources are not at {} (shared/qapi beside the workspace)",
        dir.display()
    );
    dir
}

/// A fork's tree: a VERSION file, a main schema including a module, and a guest agent
/// schema.
fn fork(dir: &Path) -> PathBuf {
    let tree = dir.join("qemu-fork");
    std::fs::create_dir_all(tree.join("qapi")).unwrap();
    std::fs::create_dir_all(tree.join("qga")).unwrap();
    std::fs::write(tree.join("VERSION"), "9.9.50\n").unwrap();
    std::fs::write(
        tree.join("qapi/qapi-schema.json"),
        "# The fork's schema.\n{ 'include': 'gizmo.json' }\n{ 'command': 'query-status', 'returns': 'StatusInfo' }\n\
         { 'struct': 'StatusInfo', 'data': { 'running': 'bool' } }\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("qapi/gizmo.json"),
        "##\n# @__com.example_gizmo:\n#\n# Since: 9.9\n##\n\
         { 'command': '__com.example_gizmo', 'data': { '*__com.example_level': 'uint8' },\n  'features': [ '__com.example_beta' ] }\n",
    )
    .unwrap();
    std::fs::write(tree.join("qga/qapi-schema.json"), "{ 'command': 'guest-ping' }\n").unwrap();
    tree
}

#[test]
fn a_forks_tree_is_read_with_its_vendor_names_as_they_are() {
    let dir = qmp_testkit::tempdir();
    let tree = fork(dir.path());
    let out = dir.path().join("out/model.json");
    let o = qapi_gen(&["model", "--tree", tree.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = Model::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(model.versions, ["9.9.50"]);
    let qmp = &model.schemas["qmp"];
    let gizmo = qmp.get("__com.example_gizmo").expect("the vendor command, named as written");
    assert_eq!((gizmo.module.as_str(), gizmo.since.as_deref()), ("gizmo", Some("9.9")));
    assert_eq!(gizmo.features[0].name, "__com.example_beta");
    let Kind::Struct { members, .. } = &qmp.get("q_obj___com.example_gizmo-arg").unwrap().kind else {
        panic!()
    };
    assert_eq!(members[0].name, "__com.example_level");
    assert!(model.schemas["qga"].get("guest-ping").is_some());
}

#[test]
fn tags_and_a_tree_together_in_version_order() {
    let dir = qmp_testkit::tempdir();
    let tree = fork(dir.path());
    let qapi = sources();
    let o = qapi_gen(&[
        "model",
        "--tree",
        tree.to_str().unwrap(),
        "--qapi",
        qapi.to_str().unwrap(),
        "--tags=8.0.0,v7.2.0",
        "--out",
        "-",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = Model::from_json(std::str::from_utf8(&o.stdout).unwrap()).unwrap();
    assert_eq!(model.versions, ["7.2.0", "8.0.0", "9.9.50"]);
    let status = model.schemas["qmp"].get("query-status").unwrap();
    assert_eq!(status.versions.0, 0b111);
    assert_eq!(model.schemas["qmp"].get("__com.example_gizmo").unwrap().versions.0, 0b100);
    assert!(stderr(&o).contains("3 versions"), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2_and_bad_schemas_exit_1_naming_the_line() {
    for args in [
        &[][..],
        &["model"],
        &["model", "--out", "x"],
        &["model", "--frob"],
        &["nonsense"],
        &["model", "--tags", "v7.2.0", "--out", "-"],
    ] {
        let o = qapi_gen(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("usage: qapi-gen model"), "{args:?}: {}", stderr(&o));
    }
    let dir = qmp_testkit::tempdir();
    let tree = fork(dir.path());
    std::fs::write(
        tree.join("qapi/gizmo.json"),
        "{ 'command': 'x',\n  'data': { 'a': 'int' 'b': 'str' } }\n",
    )
    .unwrap();
    let o = qapi_gen(&["model", "--tree", tree.to_str().unwrap(), "--out", "-"]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!("qapi-gen: {}:2: expected ',' or '}}'", tree.join("qapi/gizmo.json").display());
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));
    let o = qapi_gen(&["model", "--tree", dir.path().to_str().unwrap(), "--out", "-"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a QEMU tree"), "{}", stderr(&o));
    let o = qapi_gen(&["model", "--qapi", sources().to_str().unwrap(), "--tags", "v1.0.0", "--out", "-"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no tree 'v1.0.0'"), "{}", stderr(&o));
}
