//! Merging the entities of several versions into one [`Schema`].
//!
//! - An entity exists where any version has it; its module and `since` are the newest
//!   version's (the newest `since` stated); its `if` and kind facts (arguments, returns,
//!   base, discriminator, flags, prefix) are the newest version's, and where older versions
//!   had others, they are in `older_conds` and `older_kinds` (each with its versions), so
//!   [`Entity::at`](crate::model::Entity::at) gives any version's entity as it was.
//! - Members, enum values, union variants, alternatives and features are merged by name:
//!   in the newest version's order, with those only older versions had inserted after the
//!   item they followed there. Each has the versions it exists in, `optional` the versions
//!   in which it is optional, its types grouped by identical type (oldest first), and its
//!   `if` as the entity's is (the newest, and `older_conds`).
//! - Versions in which an entity is of another kind than in the newest one (a struct that
//!   became a union) keep that kind, with its lists merged over those versions, in
//!   `older_kinds`.

use std::collections::BTreeMap;

use crate::model::{Case, Cond, CondIn, Entity, Feature, Kind, KindIn, Member, Schema, Typed, Versions};

/// Merges `per_version[i]`, the entities read for version index `i` (as
/// [`crate::read::entities`] gives them), into one schema sorted by name.
pub fn merge(per_version: &[Vec<Entity>]) -> Schema {
    let mut by_name: BTreeMap<&str, Vec<&Entity>> = BTreeMap::new();
    for entities in per_version {
        for e in entities {
            by_name.entry(e.name.as_str()).or_default().push(e);
        }
    }
    let entities = by_name.into_values().map(|occurrences| merge_entity(&occurrences)).collect();
    Schema { entities }
}

/// One entity from its occurrences, oldest first (at least one).
fn merge_entity(occurrences: &[&Entity]) -> Entity {
    let (newest, older) = occurrences.split_last().expect("an entity is read in at least one version");
    let mut out = (*newest).clone();
    for old in older.iter().rev() {
        out.versions = out.versions.union(old.versions);
        if out.since.is_none() {
            out.since.clone_from(&old.since);
        }
        merge_list(&mut out.features, &old.features);
        note_cond(&out.cond, &mut out.older_conds, old.cond.as_ref(), old.versions);
        if std::mem::discriminant(&out.kind) != std::mem::discriminant(&old.kind) {
            // Another kind: its facts and lists, merged with those of the other versions
            // that had it.
            let facts = old.kind.facts();
            match out.older_kinds.iter_mut().find(|k| k.kind.facts() == facts) {
                Some(k) => {
                    k.versions = k.versions.union(old.versions);
                    merge_kind_lists(&mut k.kind, &old.kind);
                }
                None => out.older_kinds.push(KindIn { versions: old.versions, kind: old.kind.clone() }),
            }
            continue;
        }
        let facts = old.kind.facts();
        if facts != out.kind.facts() {
            match out.older_kinds.iter_mut().find(|k| k.kind == facts) {
                Some(k) => k.versions = k.versions.union(old.versions),
                None => out.older_kinds.push(KindIn { versions: old.versions, kind: facts }),
            }
        }
        merge_kind_lists(&mut out.kind, &old.kind);
    }
    out.older_kinds.sort_by_key(|k| k.versions.0.trailing_zeros());
    out
}

/// Merges the lists of `old` into those of `kind` (of the same kind; otherwise nothing).
fn merge_kind_lists(kind: &mut Kind, old: &Kind) {
    match (kind, old) {
        (Kind::Struct { members, .. }, Kind::Struct { members: old_members, .. }) => {
            merge_list(members, old_members)
        }
        (Kind::Enum { values, .. }, Kind::Enum { values: old_values, .. }) => merge_list(values, old_values),
        (Kind::Union { variants, .. }, Kind::Union { variants: old_variants, .. }) => {
            merge_list(variants, old_variants)
        }
        (Kind::Alternate { alternatives, .. }, Kind::Alternate { alternatives: old_alts }) => {
            merge_list(alternatives, old_alts)
        }
        _ => {}
    }
}

/// Notes that `versions` had condition `old` where the newest has `newest`.
fn note_cond(newest: &Option<Cond>, older: &mut Vec<CondIn>, old: Option<&Cond>, versions: Versions) {
    if newest.as_ref() == old {
        return;
    }
    match older.iter_mut().find(|c| c.cond.as_ref() == old) {
        Some(c) => c.versions = c.versions.union(versions),
        None => older.push(CondIn { versions, cond: old.cloned() }),
    }
    older.sort_by_key(|c| c.versions.0.trailing_zeros());
}

/// An item merged by name.
trait Named: Clone {
    fn name(&self) -> &str;
    /// Takes in the same item of an older version.
    fn absorb(&mut self, older: &Self);
}

/// Merges an older version's `older` list into `merged` (newer versions already merged).
fn merge_list<T: Named>(merged: &mut Vec<T>, older: &[T]) {
    // Where the previous item of `older` is in `merged`: the next one new to `merged` goes
    // after it.
    let mut after: Option<usize> = None;
    for item in older {
        match merged.iter().position(|m| m.name() == item.name()) {
            Some(i) => {
                merged[i].absorb(item);
                after = Some(i);
            }
            None => {
                let at = after.map_or(0, |i| i + 1);
                merged.insert(at, item.clone());
                after = Some(at);
            }
        }
    }
}

fn merge_types(types: &mut Vec<Typed>, older: &[Typed]) {
    for t in older {
        match types.iter_mut().find(|m| m.ty == t.ty) {
            Some(m) => m.versions = m.versions.union(t.versions),
            None => types.push(t.clone()),
        }
    }
    types.sort_by_key(|t| (t.versions.0.trailing_zeros(), t.ty.clone()));
}

impl Named for Member {
    fn name(&self) -> &str {
        &self.name
    }
    fn absorb(&mut self, older: &Self) {
        note_cond(&self.cond, &mut self.older_conds, older.cond.as_ref(), older.versions);
        self.versions = self.versions.union(older.versions);
        self.optional = self.optional.union(older.optional);
        merge_types(&mut self.types, &older.types);
        merge_list(&mut self.features, &older.features);
        if self.since.is_none() {
            self.since.clone_from(&older.since);
        }
    }
}

impl Named for Case {
    fn name(&self) -> &str {
        &self.name
    }
    fn absorb(&mut self, older: &Self) {
        note_cond(&self.cond, &mut self.older_conds, older.cond.as_ref(), older.versions);
        self.versions = self.versions.union(older.versions);
        merge_types(&mut self.types, &older.types);
        merge_list(&mut self.features, &older.features);
        if self.since.is_none() {
            self.since.clone_from(&older.since);
        }
    }
}

impl Named for Feature {
    fn name(&self) -> &str {
        &self.name
    }
    fn absorb(&mut self, older: &Self) {
        note_cond(&self.cond, &mut self.older_conds, older.cond.as_ref(), older.versions);
        self.versions = self.versions.union(older.versions);
    }
}

/// The versions in `set`, as indexes.
pub fn indexes(set: Versions) -> impl Iterator<Item = usize> {
    (0..64).filter(move |&i| set.contains(i))
}
