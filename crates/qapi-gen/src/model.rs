//! The model: the facts of one or more QAPI schemas (QEMU's `qapi/` for the monitor, `qga/`
//! for the guest agent), merged over the versions they were read from, so that every entity,
//! member, variant and enum value says in which versions it exists.
//!
//! It holds facts only: names, kinds, member types and optionality, features, `if`
//! conditions, the module an entity comes from and the `Since:` version its documentation
//! states. No documentation text. The committed model (`crates/qmp-qapi/model.json`) is
//! this type serialised by [`Model::to_json`], which is deterministic: entities sorted by
//! name, members in schema order, one entity per line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every schema read, merged over `versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Model {
    /// The QEMU versions read, oldest first, as their tags name them without the leading
    /// `v` (`7.2.0`, ..., `9.2.0-rc2`). A [`Versions`] set indexes into this list.
    pub versions: Vec<String>,
    /// The schemas by name: `qmp` (QEMU's `qapi/qapi-schema.json`) and `qga`
    /// (`qga/qapi-schema.json`).
    pub schemas: BTreeMap<String, Schema>,
}

/// One schema (all its modules), merged over the model's versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Schema {
    /// Every entity, sorted by name (QAPI names are unique across kinds within a schema).
    pub entities: Vec<Entity>,
}

/// A set of the model's versions, as a bit mask over [`Model::versions`] (bit 0 = the oldest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, PartialOrd, Ord)]
#[serde(transparent)]
pub struct Versions(pub u64);

impl Versions {
    /// The set holding only version index `i`.
    pub fn only(i: usize) -> Versions {
        Versions(1 << i)
    }
    /// Whether version index `i` is in the set.
    pub fn contains(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
    /// The union of two sets.
    pub fn union(self, other: Versions) -> Versions {
        Versions(self.0 | other.0)
    }
    /// Whether every one of the `n` versions is in the set.
    pub fn is_all(self, n: usize) -> bool {
        self.0 == (1u64 << n) - 1
    }
}

/// An `if` condition: a config symbol, or `all`/`any`/`not` of conditions, kept as written
/// (not evaluated away), since one target's build has what another's lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cond {
    /// A config symbol such as `CONFIG_LINUX` or `TARGET_I386`.
    Name(String),
    /// Every one of these.
    All(Vec<Cond>),
    /// At least one of these.
    Any(Vec<Cond>),
    /// Not this.
    Not(Box<Cond>),
}

/// A feature of an entity or member (`deprecated`, `unstable`, or a schema-specific one),
/// and the versions in which it is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// Its name.
    pub name: String,
    /// Where it is set.
    pub versions: Versions,
    /// Its `if` condition, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cond: Option<Cond>,
    /// The conditions older versions had instead of `cond`, where they differ (`cond` is
    /// the newest version's): a version in none of these has `cond`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub older_conds: Vec<CondIn>,
}

/// A type as a member, a return or an array element names it: a built-in (`str`, `int`,
/// `int8`...`uint64`, `size`, `number`, `bool`, `null`, `any`, `QType`), a named entity, or
/// an array (`[T]` in QAPI's syntax, kept as that string: `"[BlockDeviceInfo]"`).
pub type TypeRef = String;

/// One name with the facts that may differ between versions: its type per version range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's name as on the wire (`node-name`; without the `*` of optional members).
    pub name: String,
    /// Its type, per the versions that give it that type: one entry almost always; more when a
    /// version changed the type.
    pub types: Vec<Typed>,
    /// The versions in which it exists.
    pub versions: Versions,
    /// The versions in which it is optional (`*name`). A member required in some versions and
    /// absent in others is required where it exists; users of the model decide what that
    /// means for them (the generated Rust makes it optional).
    #[serde(default, skip_serializing_if = "is_empty_versions")]
    pub optional: Versions,
    /// Its features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Its `if` condition, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cond: Option<Cond>,
    /// The conditions older versions had instead of `cond`, where they differ (`cond` is
    /// the newest version's): a version in none of these has `cond`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub older_conds: Vec<CondIn>,
    /// The version its description's `(since X.Y)` note states, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// A type and the versions that give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typed {
    /// The type.
    #[serde(rename = "type")]
    pub ty: TypeRef,
    /// Where it has this type.
    pub versions: Versions,
}

fn is_empty_versions(v: &Versions) -> bool {
    v.0 == 0
}

/// An enum value, a union variant or an alternate's alternative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The enum value, or the discriminator value a union variant is for, or an alternative's
    /// name.
    pub name: String,
    /// For a union variant or an alternative: its type (per version). Empty for enum values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<Typed>,
    /// The versions in which it exists.
    pub versions: Versions,
    /// Its features (enum values may be deprecated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Its `if` condition, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cond: Option<Cond>,
    /// The conditions older versions had instead of `cond`, where they differ (`cond` is
    /// the newest version's): a version in none of these has `cond`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub older_conds: Vec<CondIn>,
    /// The version its description's `(since X.Y)` note states, when it has one (enum
    /// values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// What kind of definition an entity is, with the facts of that kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    /// A command.
    Command {
        /// Its arguments: the name of a struct (or, with `boxed`, of a union), or none.
        /// Inline argument objects (`'data': { ... }`) become an implicit struct named
        /// `q_obj_<command>-arg`, as QEMU's generator names them, and are entities too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        args: Option<TypeRef>,
        /// `boxed: true`: the arguments are the whole `args` type, not its members.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        boxed: bool,
        /// What it returns (none: `{}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        returns: Option<TypeRef>,
        /// `allow-oob: true`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_oob: bool,
        /// `success-response: false` (the guest agent's shutdown and suspend commands).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_success_response: bool,
        /// `allow-preconfig: true`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_preconfig: bool,
        /// `coroutine: true`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        coroutine: bool,
    },
    /// An event.
    Event {
        /// Its data: a struct's name (inline data objects become `q_obj_<EVENT>-arg`), or
        /// none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<TypeRef>,
        /// `boxed: true`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        boxed: bool,
    },
    /// A struct: its base's members, then its own.
    Struct {
        /// Its base struct, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<TypeRef>,
        /// Its own members, in schema order.
        members: Vec<Member>,
    },
    /// An enum.
    Enum {
        /// Its values, in schema order.
        values: Vec<Case>,
        /// Its `prefix` (C naming only), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
    /// A (flat) union: the base's members, one of which is the discriminator, and a variant
    /// type per discriminator value. Inline bases become `q_obj_<Union>-base` structs.
    Union {
        /// Its base struct.
        base: TypeRef,
        /// The base member whose value picks the variant.
        discriminator: String,
        /// The variants, in schema order; discriminator values without one add no members.
        variants: Vec<Case>,
    },
    /// An alternate: one of several types, told apart by JSON type.
    Alternate {
        /// The alternatives, in schema order.
        alternatives: Vec<Case>,
    },
}

/// One named definition, merged over the versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Its QAPI name (`query-status`, `BLOCK_JOB_PENDING`, `StatusInfo`, `q_obj_stop-arg`).
    pub name: String,
    /// The versions in which it exists.
    pub versions: Versions,
    /// The schema module (file name without `.json`) that defines it in the newest version
    /// that has it (`run-state`, `block-core`).
    pub module: String,
    /// The version its documentation's `Since:` line states, when it has one (`0.14`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Its features (`deprecated`, `unstable`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Its `if` condition, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cond: Option<Cond>,
    /// Its kind and the facts of that kind, taken from the newest version that has it, except
    /// members, values and variants, which are merged (each with its own versions).
    #[serde(flatten)]
    pub kind: Kind,
    /// The conditions older versions had instead of `cond`, where they differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub older_conds: Vec<CondIn>,
    /// The kind facts older versions had, where they differ from `kind`'s (another `base`,
    /// `args` or `returns`, flags, `prefix`; or another kind altogether). Where the kind is
    /// the same as the newest, its lists (members, values...) are empty here: the entity's
    /// own lists say in which versions each item exists. Where the kind differs (a struct
    /// that became a union), its lists are those versions' lists, merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub older_kinds: Vec<KindIn>,
}

/// An `if` condition (or none) and the versions that have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CondIn {
    /// Where.
    pub versions: Versions,
    /// The condition there; none: unconditional there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cond: Option<Cond>,
}

/// Kind facts and the versions that have them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindIn {
    /// Where.
    pub versions: Versions,
    /// The facts there.
    #[serde(flatten)]
    pub kind: Kind,
}

/// The `if` condition at version index `i`, given the newest one and the older ones.
fn cond_at<'a>(cond: &'a Option<Cond>, older: &'a [CondIn], i: usize) -> Option<&'a Cond> {
    match older.iter().find(|c| c.versions.contains(i)) {
        Some(c) => c.cond.as_ref(),
        None => cond.as_ref(),
    }
}

fn features_at(features: &[Feature], i: usize) -> Vec<Feature> {
    features.iter().filter(|f| f.versions.contains(i)).map(|f| f.at(i)).collect()
}

fn cases_at(cases: &[Case], i: usize) -> Vec<Case> {
    cases.iter().filter(|c| c.versions.contains(i)).map(|c| c.at(i)).collect()
}

fn types_at(types: &[Typed], i: usize) -> Vec<Typed> {
    types
        .iter()
        .filter(|t| t.versions.contains(i))
        .map(|t| Typed { ty: t.ty.clone(), versions: Versions::only(i) })
        .collect()
}

impl Feature {
    /// Its condition at version index `i`.
    pub fn cond_at(&self, i: usize) -> Option<&Cond> {
        cond_at(&self.cond, &self.older_conds, i)
    }
    /// The feature as version index `i` has it (call only where it exists).
    pub fn at(&self, i: usize) -> Feature {
        Feature {
            name: self.name.clone(),
            versions: Versions::only(i),
            cond: self.cond_at(i).cloned(),
            older_conds: Vec::new(),
        }
    }
}

impl Member {
    /// Its condition at version index `i`.
    pub fn cond_at(&self, i: usize) -> Option<&Cond> {
        cond_at(&self.cond, &self.older_conds, i)
    }
    /// Its type at version index `i`, if it exists there.
    pub fn type_at(&self, i: usize) -> Option<&str> {
        self.types.iter().find(|t| t.versions.contains(i)).map(|t| t.ty.as_str())
    }
    /// The member as version index `i` has it (call only where it exists).
    pub fn at(&self, i: usize) -> Member {
        Member {
            name: self.name.clone(),
            types: types_at(&self.types, i),
            versions: Versions::only(i),
            optional: Versions(self.optional.0 & Versions::only(i).0),
            features: features_at(&self.features, i),
            cond: self.cond_at(i).cloned(),
            older_conds: Vec::new(),
            since: self.since.clone(),
        }
    }
}

impl Case {
    /// Its condition at version index `i`.
    pub fn cond_at(&self, i: usize) -> Option<&Cond> {
        cond_at(&self.cond, &self.older_conds, i)
    }
    /// Its type at version index `i` (variants and alternatives), if it exists there.
    pub fn type_at(&self, i: usize) -> Option<&str> {
        self.types.iter().find(|t| t.versions.contains(i)).map(|t| t.ty.as_str())
    }
    /// The case as version index `i` has it (call only where it exists).
    pub fn at(&self, i: usize) -> Case {
        Case {
            name: self.name.clone(),
            types: types_at(&self.types, i),
            versions: Versions::only(i),
            features: features_at(&self.features, i),
            cond: self.cond_at(i).cloned(),
            older_conds: Vec::new(),
            since: self.since.clone(),
        }
    }
}

impl Kind {
    /// The kind's facts with its lists (members, values, variants, alternatives) emptied.
    pub fn facts(&self) -> Kind {
        let mut k = self.clone();
        match &mut k {
            Kind::Struct { members, .. } => members.clear(),
            Kind::Enum { values, .. } => values.clear(),
            Kind::Union { variants, .. } => variants.clear(),
            Kind::Alternate { alternatives } => alternatives.clear(),
            Kind::Command { .. } | Kind::Event { .. } => {}
        }
        k
    }

    /// The kind as version index `i` has it: only the items that exist there, each as it
    /// is there.
    pub fn at(&self, i: usize) -> Kind {
        let mut k = self.clone();
        match &mut k {
            Kind::Struct { members, .. } => {
                *members = members.iter().filter(|m| m.versions.contains(i)).map(|m| m.at(i)).collect()
            }
            Kind::Enum { values, .. } => *values = cases_at(values, i),
            Kind::Union { variants, .. } => *variants = cases_at(variants, i),
            Kind::Alternate { alternatives } => *alternatives = cases_at(alternatives, i),
            Kind::Command { .. } | Kind::Event { .. } => {}
        }
        k
    }
}

impl Entity {
    /// Its condition at version index `i`.
    pub fn cond_at(&self, i: usize) -> Option<&Cond> {
        cond_at(&self.cond, &self.older_conds, i)
    }

    /// The entity as version index `i` has it (none if it does not exist there): that
    /// version's condition and kind facts, only the members, values, variants and features
    /// it has, each with that version's type, optionality and condition.
    pub fn at(&self, i: usize) -> Option<Entity> {
        if !self.versions.contains(i) {
            return None;
        }
        let kind = match self.older_kinds.iter().find(|k| k.versions.contains(i)) {
            None => self.kind.at(i),
            Some(k) if std::mem::discriminant(&k.kind) != std::mem::discriminant(&self.kind) => k.kind.at(i),
            Some(k) => {
                // The same kind: its facts from `k`, its lists from the entity.
                let mut kind = k.kind.clone();
                match (&mut kind, self.kind.at(i)) {
                    (Kind::Struct { members, .. }, Kind::Struct { members: m, .. }) => *members = m,
                    (Kind::Enum { values, .. }, Kind::Enum { values: v, .. }) => *values = v,
                    (Kind::Union { variants, .. }, Kind::Union { variants: v, .. }) => *variants = v,
                    (Kind::Alternate { alternatives }, Kind::Alternate { alternatives: a }) => {
                        *alternatives = a
                    }
                    _ => {}
                }
                kind
            }
        };
        Some(Entity {
            name: self.name.clone(),
            versions: Versions::only(i),
            module: self.module.clone(),
            since: self.since.clone(),
            features: features_at(&self.features, i),
            cond: self.cond_at(i).cloned(),
            kind,
            older_conds: Vec::new(),
            older_kinds: Vec::new(),
        })
    }
}

impl Schema {
    /// The schema as version index `i` has it: the entities that exist there, each as
    /// [`Entity::at`] gives it.
    pub fn at(&self, i: usize) -> Schema {
        Schema { entities: self.entities.iter().filter_map(|e| e.at(i)).collect() }
    }

    /// The entity named `name`.
    pub fn get(&self, name: &str) -> Option<&Entity> {
        self.entities.binary_search_by(|e| e.name.as_str().cmp(name)).ok().map(|i| &self.entities[i])
    }
}

impl Model {
    /// The index of version `name` (`7.2.0`; a leading `v` is ignored) in [`Model::versions`].
    pub fn version_index(&self, name: &str) -> Option<usize> {
        let name = name.strip_prefix('v').unwrap_or(name);
        self.versions.iter().position(|v| v == name)
    }

    /// The model as committed: deterministic JSON, one entity per line.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"versions\": ");
        out.push_str(&serde_json::to_string(&self.versions).expect("strings serialise"));
        out.push_str(",\n\"schemas\": {");
        for (i, (name, schema)) in self.schemas.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('\n');
            out.push_str(&serde_json::to_string(name).expect("strings serialise"));
            out.push_str(": {\"entities\": [");
            for (j, e) in schema.entities.iter().enumerate() {
                out.push_str(if j == 0 { "\n" } else { ",\n" });
                out.push_str(&serde_json::to_string(e).expect("the model serialises"));
            }
            out.push_str("\n]}");
        }
        out.push_str("\n}}\n");
        out
    }

    /// Reads a model written by [`to_json`](Model::to_json).
    pub fn from_json(text: &str) -> serde_json::Result<Model> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_form_reads_back_the_same() {
        let mut m = Model { versions: vec!["7.2.0".into(), "8.0.0".into()], ..Model::default() };
        m.schemas.insert(
            "qmp".into(),
            Schema {
                entities: vec![Entity {
                    name: "query-status".into(),
                    versions: Versions(0b11),
                    module: "run-state".into(),
                    since: Some("0.14".into()),
                    features: vec![],
                    cond: Some(Cond::All(vec![
                        Cond::Name("CONFIG_A".into()),
                        Cond::Not(Box::new(Cond::Name("B".into()))),
                    ])),
                    kind: Kind::Command {
                        args: None,
                        boxed: false,
                        returns: Some("StatusInfo".into()),
                        allow_oob: false,
                        no_success_response: false,
                        allow_preconfig: true,
                        coroutine: false,
                    },
                    older_conds: vec![],
                    older_kinds: vec![],
                }],
            },
        );
        let text = m.to_json();
        assert_eq!(Model::from_json(&text).unwrap(), m);
        assert_eq!(text.lines().count(), 6, "{text}");
    }
}
