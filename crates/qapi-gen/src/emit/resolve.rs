//! What the emitter needs to know about the schema as a whole: entities by name, a struct's
//! members with its bases', the Rust type of a QAPI type, and which members must be boxed
//! because their type contains the struct again (`BlockStats.backing`).

use std::collections::{HashMap, HashSet};

use super::names::type_name;
use crate::model::{Entity, Kind, Member, Schema, Versions};

/// The schema's entities by name, with the facts derived from them.
pub struct Resolver<'a> {
    by_name: HashMap<&'a str, &'a Entity>,
    /// For each composite type, the composite types it holds by value (not through an array).
    holds: HashMap<&'a str, Vec<&'a str>>,
}

/// A QAPI built-in and its Rust type.
fn builtin(name: &str) -> Option<&'static str> {
    Some(match name {
        "str" => "String",
        "int" | "int64" => "i64",
        "int8" => "i8",
        "int16" => "i16",
        "int32" => "i32",
        "uint8" => "u8",
        "uint16" => "u16",
        "uint32" => "u32",
        "uint64" | "size" => "u64",
        "number" => "f64",
        "bool" => "bool",
        "null" => "()",
        "any" => "serde_json::Value",
        "QType" => "String",
        _ => return None,
    })
}

impl<'a> Resolver<'a> {
    /// Indexes `schema`.
    pub fn new(schema: &'a Schema) -> Resolver<'a> {
        let by_name: HashMap<&str, &Entity> = schema.entities.iter().map(|e| (e.name.as_str(), e)).collect();
        let mut r = Resolver { by_name, holds: HashMap::new() };
        let mut holds = HashMap::new();
        for e in &schema.entities {
            let mut direct = Vec::new();
            let mut add = |ty: &'a str| {
                if !ty.starts_with('[') && r.is_composite(ty) {
                    direct.push(ty);
                }
            };
            match &e.kind {
                Kind::Struct { .. } | Kind::Union { .. } => {
                    for m in r.member_refs(&e.name) {
                        add(newest_type(m));
                    }
                    if let Kind::Union { variants, .. } = &e.kind {
                        for v in variants {
                            if let Some(t) = v.types.last() {
                                add(&t.ty);
                            }
                        }
                    }
                }
                Kind::Alternate { alternatives } => {
                    for a in alternatives {
                        if let Some(t) = a.types.last() {
                            add(&t.ty);
                        }
                    }
                }
                _ => continue,
            }
            holds.insert(e.name.as_str(), direct);
        }
        r.holds = holds;
        r
    }

    /// The entity named `name`.
    pub fn get(&self, name: &str) -> Option<&'a Entity> {
        self.by_name.get(name).copied()
    }

    /// True for structs, unions and alternates (the types that can contain themselves).
    pub fn is_composite(&self, name: &str) -> bool {
        matches!(
            self.get(name).map(|e| &e.kind),
            Some(Kind::Struct { .. } | Kind::Union { .. } | Kind::Alternate { .. })
        )
    }

    /// A struct's or union's members: its bases' first (outermost base first), then its own.
    /// Iterative over the base chain, which a malformed model could make circular.
    pub fn all_members(&self, name: &str) -> Vec<Member> {
        // A member may be in a base in newer versions and the type's own in older ones
        // (QEMU moved it): one member, present where either has it.
        let mut merged: Vec<Member> = Vec::new();
        for m in self.member_refs(name) {
            match merged.iter_mut().find(|x| x.name == m.name) {
                Some(x) => {
                    x.versions = x.versions.union(m.versions);
                    x.optional = x.optional.union(m.optional);
                }
                None => merged.push(m.clone()),
            }
        }
        merged
    }

    /// The members of `name` and its bases as the model has them, duplicates and all.
    fn member_refs(&self, name: &str) -> Vec<&'a Member> {
        let mut chain = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(name);
        while let Some(n) = next {
            if !seen.insert(n.to_owned()) {
                break;
            }
            let Some(e) = self.get(n) else { break };
            next = match &e.kind {
                Kind::Struct { base, members } => {
                    chain.push(members);
                    base.as_deref()
                }
                Kind::Union { base, .. } => base.as_str().into(),
                _ => None,
            };
        }
        chain.into_iter().rev().flatten().collect()
    }

    /// Whether `inner` holds `outer` by value, directly or through other types: then a member
    /// of type `inner` inside `outer` must be boxed.
    pub fn holds(&self, inner: &str, outer: &str) -> bool {
        let mut stack = vec![inner];
        let mut seen = HashSet::new();
        while let Some(t) = stack.pop() {
            if t == outer {
                return true;
            }
            if seen.insert(t) {
                if let Some(next) = self.holds.get(t) {
                    stack.extend(next.iter().copied());
                }
            }
        }
        false
    }

    /// Whether JSON `null` is a value of `ty` (QAPI `null`, `any`, or an alternate with a
    /// `null` alternative, such as `BlockdevRefOrNull`): then an optional member given as
    /// `null` must stay `Some`, since `null` means something other than leaving it out.
    pub fn admits_null(&self, ty: &str) -> bool {
        match ty {
            "null" | "any" => true,
            _ => matches!(
                self.get(ty).map(|e| &e.kind),
                Some(Kind::Alternate { alternatives }) if alternatives.iter().any(|a| a.types.iter().any(|t| t.ty == "null"))
            ),
        }
    }

    /// The Rust type of a QAPI type, with `prefix` before named types (`t::` outside the
    /// types module).
    pub fn rust_type(&self, ty: &str, prefix: &str) -> String {
        if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return format!("Vec<{}>", self.rust_type(inner, prefix));
        }
        if let Some(b) = builtin(ty) {
            return b.to_owned();
        }
        match self.get(ty) {
            Some(_) => format!("{prefix}{}", type_name(ty)),
            // A type the model does not define (another target's): keep the JSON.
            None => "serde_json::Value".to_owned(),
        }
    }
}

/// The type a member has in the newest version that has it.
pub fn newest_type(m: &Member) -> &str {
    m.types.iter().min_by_key(|t| t.versions.0.leading_zeros()).map_or("any", |t| t.ty.as_str())
}

/// Whether the member's type differs between versions (then it is kept as JSON).
pub fn type_varies(m: &Member) -> bool {
    m.types.windows(2).any(|w| w[0].ty != w[1].ty)
}

/// Whether a member is `Option` in Rust: optional in some version, or missing from some
/// version of its entity.
pub fn is_optional(m: &Member, entity_versions: Versions) -> bool {
    m.optional.0 != 0 || m.versions.0 & entity_versions.0 != entity_versions.0
}
