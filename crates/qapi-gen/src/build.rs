//! From QEMU source trees to the [`Model`]: which trees, in which order, and the schemas of
//! each.
//!
//! A tree is a directory laid out as QEMU's sources are: `qapi/qapi-schema.json` (the
//! monitor's schema, read as schema `qmp`) and, when present, `qga/qapi-schema.json` (the
//! guest agent's, schema `qga`). `/work/shared/qapi/<tag>/` holds one such tree per release
//! tag; a QEMU checkout is one too.

use std::path::{Path, PathBuf};

use crate::model::Model;
use crate::parse::Error;

/// One version's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The version's name in the model (`7.2.0`, `9.2.0-rc2`).
    pub version: String,
    /// The tree's directory.
    pub path: PathBuf,
}

/// The schemas a tree may hold: the model's schema name and the main file's path.
pub const SCHEMAS: [(&str, &str); 2] = [("qmp", "qapi/qapi-schema.json"), ("qga", "qga/qapi-schema.json")];

/// Every `<tag>` directory under `dir` that holds `qapi/qapi-schema.json`, sorted by version
/// ([`version_key`]); the version's name is the tag without a leading `v`. With `only`,
/// just those tags (each must be there; `v7.2.0` and `7.2.0` name the same).
pub fn tags_under(dir: &Path, only: Option<&[String]>) -> Result<Vec<Tree>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::new(dir, 0, format!("cannot list: {e}")))?;
    let mut trees = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::new(dir, 0, format!("cannot list: {e}")))?;
        let tag = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.join(SCHEMAS[0].1).is_file() {
            continue;
        }
        let version = tag.strip_prefix('v').unwrap_or(&tag).to_string();
        if only.is_some_and(|o| !o.iter().any(|t| t.strip_prefix('v').unwrap_or(t) == version)) {
            continue;
        }
        trees.push(Tree { version, path });
    }
    if let Some(only) = only {
        for tag in only {
            let version = tag.strip_prefix('v').unwrap_or(tag);
            if !trees.iter().any(|t| t.version == version) {
                return Err(Error::new(dir, 0, format!("no tree '{tag}' with {} here", SCHEMAS[0].1)));
            }
        }
    }
    sort_trees(&mut trees);
    Ok(trees)
}

/// A single tree (a QEMU checkout, a fork's): its version is its `VERSION` file's first
/// line, else the directory's name.
pub fn single_tree(path: &Path) -> Result<Tree, Error> {
    if !path.join(SCHEMAS[0].1).is_file() {
        return Err(Error::new(path, 0, format!("not a QEMU tree: it has no {}", SCHEMAS[0].1)));
    }
    let version = std::fs::read_to_string(path.join("VERSION"))
        .ok()
        .and_then(|v| v.lines().next().map(|l| l.trim().to_string()))
        .filter(|v| !v.is_empty())
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().trim_start_matches('v').to_string()))
        .unwrap_or_else(|| "unknown".to_string());
    Ok(Tree { version, path: path.to_path_buf() })
}

/// Sorts trees oldest first.
pub fn sort_trees(trees: &mut [Tree]) {
    trees.sort_by_key(|a| version_key(&a.version));
}

/// The order of versions: numerically by their dotted numbers, a pre-release (`-rc2`)
/// before the release it precedes, pre-releases by their number:
/// `7.2.0 < 8.0.0 < 9.1.0 < 9.2.0-rc2 < 9.2.0-rc10 < 9.2.0 < 9.10.0`.
pub fn version_key(v: &str) -> (Vec<u64>, bool, String, u64) {
    let v = v.strip_prefix('v').unwrap_or(v);
    let (nums, pre) = match v.split_once('-') {
        Some((n, p)) => (n, Some(p)),
        None => (v, None),
    };
    let nums = nums.split('.').map(|n| n.parse().unwrap_or(u64::MAX)).collect();
    let pre = pre.unwrap_or("");
    let digits = pre.trim_end_matches(|c: char| c.is_ascii_digit());
    let n = pre[digits.len()..].parse().unwrap_or(0);
    (nums, pre.is_empty(), digits.to_string(), n)
}

/// Reads every tree's schemas and merges them into the model (trees oldest first, at most
/// 64).
pub fn build_model(trees: &[Tree]) -> Result<Model, Error> {
    if trees.len() > 64 {
        return Err(Error::new(
            Path::new("."),
            0,
            format!("{} versions: the model holds 64 at most", trees.len()),
        ));
    }
    // Each tree's schemas, read on their own thread (they are independent).
    let read: Vec<Result<Vec<Option<Vec<crate::model::Entity>>>, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> =
            trees.iter().enumerate().map(|(i, tree)| s.spawn(move || read_tree(tree, i))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut per_schema: Vec<Vec<Vec<crate::model::Entity>>> = vec![Vec::new(); SCHEMAS.len()];
    for tree in read {
        for (s, entities) in tree?.into_iter().enumerate() {
            per_schema[s].push(entities.unwrap_or_default());
        }
    }
    let mut model = Model { versions: trees.iter().map(|t| t.version.clone()).collect(), ..Model::default() };
    for ((name, _), per_version) in SCHEMAS.iter().zip(per_schema) {
        if per_version.iter().any(|v| !v.is_empty()) {
            model.schemas.insert(name.to_string(), crate::merge::merge(&per_version));
        }
    }
    Ok(model)
}

/// One tree's schemas (none where it lacks the file), as version index `i`.
fn read_tree(tree: &Tree, i: usize) -> Result<Vec<Option<Vec<crate::model::Entity>>>, Error> {
    SCHEMAS
        .iter()
        .map(|(_, file)| {
            let main = tree.path.join(file);
            if !main.is_file() {
                return Ok(None);
            }
            let exprs = crate::parse::read_schema(&main)?;
            crate::read::entities(&exprs, i).map(Some)
        })
        .collect()
}
