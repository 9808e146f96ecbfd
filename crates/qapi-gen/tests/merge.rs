//! The version merge on snippets written for these tests (invented names).

use std::path::Path;

use qapi_gen::merge::merge;
use qapi_gen::model::{Cond, Entity, Kind, Schema, Versions};
use qapi_gen::{parse, read};

fn version(text: &str, i: usize) -> Vec<Entity> {
    let mut load = |_: &Path| Ok(text.to_string());
    let exprs = parse::read_schema_with(Path::new("m.json"), &mut load).unwrap_or_else(|e| panic!("{e}"));
    read::entities(&exprs, i).unwrap_or_else(|e| panic!("{e}"))
}

fn merged(texts: &[&str]) -> (Schema, Vec<Vec<Entity>>) {
    let per: Vec<Vec<Entity>> = texts.iter().enumerate().map(|(i, t)| version(t, i)).collect();
    (merge(&per), per)
}

const V1: &str = "
{ 'struct': 'Widget', 'data': { 'a': 'int', 'gone': 'str', 'b': 'int', 'c': 'str' } }
{ 'enum': 'Mode', 'data': [ 'on', 'off', 'dim' ], 'prefix': 'MODE' }
{ 'command': 'poke', 'data': { 'w': 'Widget' } }
{ 'struct': 'Shifty', 'data': { 'x': 'int' } }
{ 'struct': 'OnlyOld', 'data': {} }
{ 'union': 'Thing', 'base': { 'mode': 'Mode' }, 'discriminator': 'mode',
  'data': { 'on': 'Widget', 'off': { 'type': 'Widget', 'if': 'CONFIG_OFF' } } }
";

const V2: &str = "
{ 'struct': 'Widget', 'data': { 'new': 'bool', 'a': 'int', '*b': 'int', 'c': ['str'] },
  'features': [ 'unstable' ] }
{ 'enum': 'Mode', 'data': [ 'on', 'off', { 'name': 'dim', 'if': 'CONFIG_DIM' }, 'bright' ] }
{ 'command': 'poke', 'data': { 'w': 'Widget' }, 'returns': 'Widget', 'if': 'CONFIG_POKE' }
{ 'union': 'Shifty', 'base': { 'mode': 'Mode' }, 'discriminator': 'mode', 'data': { 'on': 'Widget' } }
{ 'union': 'Thing', 'base': { 'mode': 'Mode' }, 'discriminator': 'mode',
  'data': { 'on': 'Widget', 'off': 'Widget' } }
";

#[test]
fn members_merge_by_name_in_the_newest_order() {
    let (s, _) = merged(&[V1, V2]);
    let w = s.get("Widget").unwrap();
    assert_eq!(w.versions, Versions(0b11));
    let Kind::Struct { members, .. } = &w.kind else { panic!() };
    let got: Vec<(&str, u64, u64)> =
        members.iter().map(|m| (m.name.as_str(), m.versions.0, m.optional.0)).collect();
    // `gone` (only in the old version) goes after `a`, which it followed there.
    assert_eq!(got, [("new", 0b10, 0), ("a", 0b11, 0), ("gone", 0b01, 0), ("b", 0b11, 0b10), ("c", 0b11, 0)]);
    let c = &members[4];
    let types: Vec<(&str, u64)> = c.types.iter().map(|t| (t.ty.as_str(), t.versions.0)).collect();
    assert_eq!(types, [("str", 0b01), ("[str]", 0b10)]);
    assert_eq!(w.features.len(), 1);
    assert_eq!(w.features[0].versions, Versions(0b10));
    assert!(s.get("OnlyOld").is_some_and(|e| e.versions == Versions(1)));
}

#[test]
fn values_and_conditions_keep_their_versions() {
    let (s, _) = merged(&[V1, V2]);
    let m = s.get("Mode").unwrap();
    let Kind::Enum { values, prefix } = &m.kind else { panic!() };
    assert_eq!(prefix, &None, "kind facts are the newest version's");
    assert_eq!(m.older_kinds.len(), 1);
    assert_eq!(m.older_kinds[0].versions, Versions(1));
    assert!(
        matches!(&m.older_kinds[0].kind, Kind::Enum { prefix: Some(p), values } if p == "MODE" && values.is_empty())
    );
    let dim = values.iter().find(|v| v.name == "dim").unwrap();
    assert_eq!(dim.cond, Some(Cond::Name("CONFIG_DIM".into())));
    assert_eq!(dim.cond_at(0), None, "unconditional in the old version");
    assert_eq!(dim.cond_at(1), Some(&Cond::Name("CONFIG_DIM".into())));
    let poke = s.get("poke").unwrap();
    assert_eq!(poke.cond_at(0), None);
    assert_eq!(poke.cond_at(1), Some(&Cond::Name("CONFIG_POKE".into())));
    let Kind::Union { variants, .. } = &s.get("Thing").unwrap().kind else { panic!() };
    assert_eq!(variants[1].cond_at(0), Some(&Cond::Name("CONFIG_OFF".into())));
    assert_eq!(variants[1].cond_at(1), None);
}

#[test]
fn a_kind_that_changed_keeps_the_old_kind_for_the_old_versions() {
    let (s, _) = merged(&[V1, V2]);
    let sh = s.get("Shifty").unwrap();
    assert!(matches!(sh.kind, Kind::Union { .. }));
    assert!(matches!(&sh.at(0).unwrap().kind, Kind::Struct { members, .. } if members.len() == 1));
    assert!(matches!(&sh.at(1).unwrap().kind, Kind::Union { .. }));
}

#[test]
fn each_version_is_what_was_read_for_it() {
    let v3 = "{ 'struct': 'Widget', 'data': { 'a': 'str' } }\n{ 'enum': 'Mode', 'data': [ 'dim' ], 'prefix': 'MODE' }";
    let (s, per) = merged(&[V1, V2, v3]);
    for (i, read) in per.iter().enumerate() {
        let slice = s.at(i);
        assert_eq!(&slice.entities, read, "version {i}");
    }
}

#[test]
fn merging_is_deterministic_and_stable() {
    let (a, _) = merged(&[V1, V2]);
    let (b, _) = merged(&[V1, V2]);
    assert_eq!(a, b);
    let (one, per) = merged(&[V2]);
    assert_eq!(one.entities, per[0], "one version merges to itself");
}
