//! Each crate's declared `rust-version` stays true as dependencies change: it must be at least
//! the highest minimum any of its dependencies needs, transitively, normal and build
//! dependencies alike (what building the crate compiles; dev-dependencies are not part of the
//! claim), as `Cargo.lock` resolves them for this machine's platform. What a dependency needs
//! is its own `rust-version`, or, when it declares none, what its edition needs (2021: 1.56,
//! 2024: 1.85). Our own code's use of newer std APIs is checked by clippy's `incompatible_msrv`
//! lint, which reads the same `rust-version` (README: "Minimum Rust version").

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// A Rust version as `(major, minor, patch)`; `"1.85"` is `(1, 85, 0)`.
type Version = (u64, u64, u64);

fn parse_version(s: &str) -> Version {
    let mut parts =
        s.split('.').map(|p| p.parse::<u64>().unwrap_or_else(|_| panic!("bad rust-version {s:?}")));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn show((major, minor, patch): Version) -> String {
    format!("{major}.{minor}.{patch}")
}

/// The oldest Rust that compiles an edition.
fn edition_floor(edition: &str) -> Version {
    match edition {
        "2015" => (1, 0, 0),
        "2018" => (1, 31, 0),
        "2021" => (1, 56, 0),
        "2024" => (1, 85, 0),
        other => panic!("unknown edition {other:?}: add its first Rust version here"),
    }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// This machine's target triple, from rustc.
fn host() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("cannot run rustc -vV");
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("no host in rustc -vV").to_owned()
}

/// `cargo metadata` for the workspace, resolved by Cargo.lock for the host.
fn metadata() -> Value {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            &host(),
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .expect("cannot run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata printed no JSON")
}

/// What a package needs: its rust-version, else its edition's.
fn needs(package: &Value) -> Version {
    let edition = edition_floor(package["edition"].as_str().unwrap_or("2015"));
    package["rust_version"].as_str().map_or(edition, |v| parse_version(v).max(edition))
}

/// The packages `root` needs to build: its normal and build dependencies, transitively.
fn build_closure<'a>(root: &'a str, nodes: &BTreeMap<&'a str, &'a Value>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let builds = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            let pkg = dep["pkg"].as_str().unwrap();
            if builds && seen.insert(pkg) {
                todo.push(pkg);
            }
        }
    }
    seen
}

#[test]
fn declared_rust_versions_cover_every_dependency() {
    let meta = metadata();
    let packages: BTreeMap<&str, &Value> =
        meta["packages"].as_array().unwrap().iter().map(|p| (p["id"].as_str().unwrap(), p)).collect();
    let nodes: BTreeMap<&str, &Value> =
        meta["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let members: Vec<&str> =
        meta["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(members.len() >= 8, "too few workspace members: {members:?}");

    let mut problems = Vec::new();
    for member in &members {
        let package = packages[member];
        let name = package["name"].as_str().unwrap();
        let Some(declared) = package["rust_version"].as_str().map(parse_version) else {
            problems.push(format!("{name} declares no rust-version"));
            continue;
        };
        let own = edition_floor(package["edition"].as_str().unwrap());
        if declared < own {
            problems.push(format!(
                "{name}: rust-version {} is older than its edition needs ({})",
                show(declared),
                show(own)
            ));
        }
        let closure = build_closure(member, &nodes);
        let mut too_new: Vec<(Version, String)> = closure
            .iter()
            .map(|id| packages[id])
            .filter(|dep| needs(dep) > declared)
            .map(|dep| {
                (
                    needs(dep),
                    format!("{} {}", dep["name"].as_str().unwrap(), dep["version"].as_str().unwrap()),
                )
            })
            .collect();
        too_new.sort();
        if let Some((highest, _)) = too_new.last() {
            let list: Vec<String> = too_new.iter().map(|(v, d)| format!("{d} needs {}", show(*v))).collect();
            problems.push(format!(
                "{name} declares rust-version {}, but {} (raise it to {})",
                show(declared),
                list.join(", "),
                show(*highest)
            ));
        }
    }
    assert!(problems.is_empty(), "untrue rust-version:\n{}", problems.join("\n"));
}

#[test]
fn versions_compare_as_numbers() {
    assert!(parse_version("1.100") > parse_version("1.85.1"));
    assert_eq!(parse_version("1.85"), (1, 85, 0));
    assert_eq!(needs(&serde_json::json!({"edition": "2024", "rust_version": null})), (1, 85, 0));
    assert_eq!(needs(&serde_json::json!({"edition": "2021", "rust_version": "1.88"})), (1, 88, 0));
}
