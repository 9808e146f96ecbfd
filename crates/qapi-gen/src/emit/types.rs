//! The Rust of QAPI's types: structs (with their bases' members, and the members a newer QEMU
//! sends kept in `unknown_members`), enums (with `Other(String)`), flat unions (a Rust enum on
//! the discriminator, with a fallback keeping the raw members) and alternates (by JSON type).

use std::fmt::Write;

use super::docs::Facts;
use super::names::{field_name, type_name};
use super::resolve::{is_optional, newest_type, type_varies, Resolver};
use super::Ctx;
use crate::model::{Case, Entity, Kind, Member, Versions};

/// The field that keeps members this build does not know.
pub const UNKNOWN: &str = "unknown_members";

/// Writes `lines` as a doc comment at `indent`.
pub fn doc(out: &mut String, indent: &str, lines: &[String]) {
    for l in lines {
        if l.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {l}");
        }
    }
}

/// `#[deprecated]` for an item whose newest version marks it deprecated.
pub fn deprecated_attr(ctx: &Ctx, features: &[crate::model::Feature], present: Versions) -> String {
    if super::docs::has_feature_now(features, "deprecated", present, ctx.versions) {
        let since = super::docs::feature_since(features, "deprecated", ctx.versions).unwrap_or("?");
        format!("#[deprecated(note = \"deprecated by QEMU (since {since} in this build's versions)\")]\n")
    } else {
        String::new()
    }
}

/// One member as a Rust field, for a struct whose entity exists
/// in `present`. `prefix` goes before named types.
pub fn field(ctx: &Ctx, r: &Resolver, m: &Member, present: Versions, owner: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut lines = vec![format!("`{}`", m.name)];
    lines.extend(member_facts(ctx, m, present));
    doc(&mut out, "    ", &lines);
    out.push_str(deprecated_attr(ctx, &m.features, m.versions).replace('\n', "\n    ").trim_end_matches(' '));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let name = field_name(&m.name);
    let ty = newest_type(m);
    let mut rust = if type_varies(m) { "serde_json::Value".to_owned() } else { r.rust_type(ty, prefix) };
    if r.is_composite(ty) && r.holds(ty, owner) {
        rust = format!("Box<{rust}>");
    }
    // The serde impls are written out (`Shape::emit_serde`, `emit_union`), so no attributes.
    if is_optional(m, present) {
        rust = format!("Option<{rust}>");
    }
    let _ = writeln!(out, "    pub {name}: {rust},");
    out
}

/// Doc facts of a member: where it exists when not everywhere its entity does, optionality
/// that varies, features, condition.
fn member_facts(ctx: &Ctx, m: &Member, present: Versions) -> Vec<String> {
    let mut out = Vec::new();
    let all = ctx.versions;
    if m.versions != present {
        out.push(format!("Only in QEMU {}.", super::docs::versions_text(m.versions, all)));
    }
    if m.optional.0 != 0 && m.optional != m.versions {
        out.push(format!("Optional in QEMU {}.", super::docs::versions_text(m.optional, all)));
    }
    if type_varies(m) {
        let kinds: Vec<String> = m
            .types
            .iter()
            .map(|t| format!("`{}` in {}", t.ty, super::docs::versions_text(t.versions, all)))
            .collect();
        out.push(format!("Its type differs between versions ({}), so it is kept as JSON.", kinds.join(", ")));
    }
    for f in &m.features {
        out.push(format!("Feature `{}` in QEMU {}.", f.name, super::docs::versions_text(f.versions, all)));
    }
    if let Some(c) = &m.cond {
        out.push(format!("Only in builds where {} holds.", super::docs::cond_text(c)));
    }
    out
}

/// The doc lines of an entity.
pub fn entity_doc(ctx: &Ctx, e: &Entity, what: &str) -> Vec<String> {
    Facts {
        heading: format!("QAPI {what} `{}`.", e.name),
        module: Some(&e.module),
        since: e.since.as_deref(),
        versions: e.versions,
        features: &e.features,
        cond: e.cond.as_ref(),
        reference: Some(ctx.reference),
    }
    .lines(ctx.versions)
}

/// A struct, from its members (its bases' included).
pub fn emit_struct(ctx: &Ctx, r: &Resolver, e: &Entity, out: &mut String) {
    let members = r.all_members(&e.name);
    let name = type_name(&e.name);
    doc(out, "", &entity_doc(ctx, e, "struct"));
    out.push_str(&deprecated_attr(ctx, &e.features, e.versions));
    let shape = Shape { name: &name, members: &members, present: e.versions, owner: &e.name, prefix: "" };
    shape.emit(ctx, r, "Members this build does not know (a newer QEMU's), kept as sent.", out);
    shape.emit_new(r, out);
}

/// A struct with named members as Rust emits it for a struct, a command's arguments or an
/// event's data: the fields, then the unknown members.
pub struct Shape<'a> {
    /// The Rust type's name.
    pub name: &'a str,
    /// Its members, bases' included.
    pub members: &'a [Member],
    /// The versions its entity exists in.
    pub present: Versions,
    /// The QAPI type the members belong to (for boxing types that hold it).
    pub owner: &'a str,
    /// The path before named types.
    pub prefix: &'a str,
}

impl Shape<'_> {
    /// The struct, deriving `Default` too when every member is optional, and its serde impls.
    pub fn emit(&self, ctx: &Ctx, r: &Resolver, unknown_doc: &str, out: &mut String) {
        let all_optional = self.members.iter().all(|m| is_optional(m, self.present));
        let derives =
            if all_optional { "Debug, Clone, Default, PartialEq" } else { "Debug, Clone, PartialEq" };
        let _ = writeln!(out, "#[derive({derives})]");
        let _ = writeln!(out, "pub struct {} {{", self.name);
        for m in self.members {
            out.push_str(&field(ctx, r, m, self.present, self.owner, self.prefix));
        }
        let _ = writeln!(out, "    /// {unknown_doc}");
        let _ = writeln!(out, "    pub {UNKNOWN}: serde_json::Map<String, serde_json::Value>,");
        let _ = writeln!(out, "}}\n");
        self.emit_serde(r, out);
    }

    /// `Serialize` and `Deserialize` as a JSON object: the known members in schema order, an
    /// optional one only when present, then the unknown ones.
    // perf: instead of serde's derive with `flatten` (see `qapi_support::FromMembers`).
    fn emit_serde(&self, r: &Resolver, out: &mut String) {
        let Shape { name, members, present, .. } = *self;
        let _ = writeln!(out, "impl Serialize for {name} {{");
        let _ = writeln!(
            out,
            "    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {{"
        );
        let _ = writeln!(out, "        use serde::ser::SerializeMap as _;");
        let _ = writeln!(out, "        let mut m = s.serialize_map(None)?;");
        for m in members {
            let f = field_name(&m.name);
            if is_optional(m, present) {
                let _ = writeln!(out, "        if let Some(v) = &self.{f} {{\n            m.serialize_entry(\"{}\", v)?;\n        }}", m.name);
            } else {
                let _ = writeln!(out, "        m.serialize_entry(\"{}\", &self.{f})?;", m.name);
            }
        }
        let _ = writeln!(out, "        crate::qapi_support::write_unknown(&mut m, &self.{UNKNOWN})?;");
        let _ = writeln!(out, "        m.end()\n    }}\n}}\n");

        let _ = writeln!(out, "impl<'de> Deserialize<'de> for {name} {{");
        let _ = writeln!(out, "    #[inline]");
        let _ = writeln!(
            out,
            "    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {{"
        );
        let _ = writeln!(out, "        crate::qapi_support::read_struct(d)\n    }}\n}}\n");

        let _ = writeln!(out, "impl crate::qapi_support::FromMembers for {name} {{");
        let _ = writeln!(out, "    const NAME: &'static str = \"{name}\";");
        // perf: a `match` per struct, not a scan of a name list: 5 % fewer instructions
        // decoding a `StatusInfo` (callgrind).
        let _ = writeln!(out, "    #[inline]");
        if members.is_empty() {
            let _ = writeln!(out, "    fn member(_: &str) -> Option<usize> {{\n        None\n    }}\n");
        } else {
            let _ = writeln!(out, "    fn member(key: &str) -> Option<usize> {{");
            let _ = writeln!(out, "        match key {{");
            for (i, m) in members.iter().enumerate() {
                let _ = writeln!(out, "            \"{}\" => Some({i}),", m.name);
            }
            let _ = writeln!(out, "            _ => None,\n        }}\n    }}\n");
        }
        let _ = writeln!(out, "    #[allow(deprecated)]");
        let _ = writeln!(out, "    fn from_members<'de, A: serde::de::MapAccess<'de>>(mut __map: A) -> Result<Self, A::Error> {{");
        for m in members {
            let _ = writeln!(out, "        let mut {} = None;", field_name(&m.name));
        }
        let _ = writeln!(out, "        let mut {UNKNOWN} = serde_json::Map::new();");
        let _ = writeln!(
            out,
            "        while let Some(__key) = __map.next_key_seed(crate::qapi_support::Keys::<Self>(std::marker::PhantomData))? {{"
        );
        let _ = writeln!(out, "            match __key {{");
        let _ = writeln!(out, "                Err(key) => {{\n                    {UNKNOWN}.insert(key, __map.next_value()?);\n                }}");
        if members.is_empty() {
            let _ = writeln!(out, "                Ok(_) => {{\n                    __map.next_value::<serde::de::IgnoredAny>()?;\n                }}");
        }
        for (i, m) in members.iter().enumerate() {
            let f = field_name(&m.name);
            // The last member's arm takes every index left, so the match needs no fallback.
            let pat = if i + 1 == members.len() { "Ok(_)".to_owned() } else { format!("Ok({i})") };
            // An optional member whose type has `null` among its values keeps a `null` as
            // present (serde's `Option` would read it as absent).
            let keeps_null = is_optional(m, present) && !type_varies(m) && r.admits_null(newest_type(m));
            if is_optional(m, present) && !keeps_null {
                let _ = writeln!(out, "                {pat} => {f} = __map.next_value()?,");
            } else {
                let _ = writeln!(out, "                {pat} => {f} = Some(__map.next_value()?),");
            }
        }
        let _ = writeln!(out, "            }}\n        }}");
        let _ = writeln!(out, "        Ok({name} {{");
        for m in members {
            let f = field_name(&m.name);
            if is_optional(m, present) {
                let _ = writeln!(out, "            {f},");
            } else {
                let _ = writeln!(
                    out,
                    "            {f}: {f}.ok_or_else(|| serde::de::Error::missing_field(\"{}\"))?,",
                    m.name
                );
            }
        }
        let _ = writeln!(out, "            {UNKNOWN},\n        }})\n    }}\n}}\n");
    }

    /// `Name::new(required members...)`: every optional member `None`.
    pub fn emit_new(&self, r: &Resolver, out: &mut String) {
        let Shape { name, members, present, owner, prefix } = *self;
        // perf: parameters are the member's own type, `impl Into` only for strings and `any`: a generic
        // setter per optional member cost a fifth of the crate's build (29.7 s -> 24.1 s of
        // rustc when measured), for a conversion callers rarely need beyond `&str`.
        // A member's parameter type, and how the value is stored from it.
        let param = |m: &Member| -> (String, &'static str) {
            let ty = newest_type(m);
            let rust = if type_varies(m) { "serde_json::Value".to_owned() } else { r.rust_type(ty, prefix) };
            if r.is_composite(ty) && r.holds(ty, owner) {
                (rust, "Box::new(VALUE)")
            } else if rust == "String" || rust == "serde_json::Value" {
                (format!("impl Into<{rust}>"), "VALUE.into()")
            } else {
                (rust, "VALUE")
            }
        };
        let required: Vec<&Member> = members.iter().filter(|m| !is_optional(m, present)).collect();
        let params: Vec<String> =
            required.iter().map(|m| format!("{}: {}", field_name(&m.name), param(m).0)).collect();
        let _ = writeln!(out, "impl {name} {{");
        let _ =
            writeln!(out, "    /// A value with the required members given and every optional one absent.");
        let _ = writeln!(
            out,
            "    #[allow(clippy::too_many_arguments, clippy::new_without_default, deprecated)]"
        );
        let _ = writeln!(out, "    pub fn new({}) -> Self {{", params.join(", "));
        let _ = writeln!(out, "        {name} {{");
        for m in members {
            let f = field_name(&m.name);
            if is_optional(m, present) {
                let _ = writeln!(out, "            {f}: None,");
            } else {
                match param(m).1 {
                    "VALUE" => {
                        let _ = writeln!(out, "            {f},");
                    }
                    store => {
                        let _ = writeln!(out, "            {f}: {},", store.replace("VALUE", &f));
                    }
                }
            }
        }
        let _ = writeln!(out, "            {UNKNOWN}: serde_json::Map::new(),");
        let _ = writeln!(out, "        }}\n    }}");
        // A setter per optional member, named after it: `BlockStream::new("top0").speed(1 << 20)`.
        for m in members.iter().filter(|m| is_optional(m, present)) {
            let f = field_name(&m.name);
            // A setter must not shadow the constructor or a trait method callers use.
            if ["new", "clone", "into", "eq", "ne", "fmt", "hash", "default", "from", "serialize", "to_owned"]
                .contains(&f.as_str())
            {
                continue;
            }
            let (ty, store) = param(m);
            let _ = writeln!(out, "\n    /// Sets `{}`.", m.name);
            let _ = writeln!(out, "    #[allow(deprecated)]");
            let _ = writeln!(out, "    #[inline]");
            let _ = writeln!(out, "    pub fn {f}(mut self, value: {ty}) -> Self {{");
            let _ = writeln!(out, "        self.{f} = Some({});", store.replace("VALUE", "value"));
            let _ = writeln!(out, "        self\n    }}");
        }
        let _ = writeln!(out, "}}\n");
    }
}

/// An enum with `Other(String)` for values this build does not know.
pub fn emit_enum(ctx: &Ctx, e: &Entity, values: &[Case], out: &mut String) {
    let name = type_name(&e.name);
    doc(out, "", &entity_doc(ctx, e, "enum"));
    out.push_str(&deprecated_attr(ctx, &e.features, e.versions));
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]");
    let _ = writeln!(out, "#[non_exhaustive]");
    let _ = writeln!(out, "pub enum {name} {{");
    let variants = enum_variants(values);
    for (v, rust) in values.iter().zip(&variants) {
        let mut lines = vec![format!("`{}`", v.name)];
        if v.versions != e.versions {
            lines.push(format!("Only in QEMU {}.", super::docs::versions_text(v.versions, ctx.versions)));
        }
        if let Some(c) = &v.cond {
            lines.push(format!("Only in builds where {} holds.", super::docs::cond_text(c)));
        }
        doc(out, "    ", &lines);
        let dep = deprecated_attr(ctx, &v.features, v.versions);
        if !dep.is_empty() {
            let _ = write!(out, "    {dep}");
        }
        let _ = writeln!(out, "    {rust},");
    }
    let _ = writeln!(out, "    /// A value this build does not know, kept as sent.");
    let _ = writeln!(out, "    Other(String),");
    let _ = writeln!(out, "}}\n");
    let pairs: Vec<String> =
        values.iter().zip(&variants).map(|(v, rust)| format!("{rust} = \"{}\"", v.name)).collect();
    let _ = writeln!(out, "qapi_enum_impls!({name} {{ {} }});\n", pairs.join(", "));
}

/// Rust variant names for enum values, `Other` renamed where a value would take it.
pub fn enum_variants(values: &[Case]) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            let n = type_name(&v.name);
            if n == "Other" {
                "Other_".to_owned()
            } else {
                n
            }
        })
        .collect()
}

/// A flat union: the base's members (the discriminator's aside) as fields, and the variant
/// chosen by the discriminator, with its members, in a `branch` field.
pub fn emit_union(ctx: &Ctx, r: &Resolver, e: &Entity, out: &mut String) {
    let Kind::Union { discriminator, variants, .. } = &e.kind else { return };
    let name = type_name(&e.name);
    let branch = format!("{name}Branch");
    let members: Vec<Member> =
        r.all_members(&e.name).into_iter().filter(|m| &m.name != discriminator).collect();
    // The discriminator's values: from its enum, each with the variant's type where it has one.
    let disc_member = r.all_members(&e.name).into_iter().find(|m| &m.name == discriminator);
    let disc_member_versions = disc_member.as_ref().map(|m| m.versions);
    let disc_enum = disc_member.and_then(|m| r.get(newest_type(&m)));
    let values: Vec<Case> = match disc_enum.map(|d| &d.kind) {
        Some(Kind::Enum { values, .. }) => values.clone(),
        _ => variants.clone(),
    };
    doc(out, "", &entity_doc(ctx, e, "union"));
    out.push_str(&deprecated_attr(ctx, &e.features, e.versions));
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq)]");
    let _ = writeln!(out, "pub struct {name} {{");
    for m in &members {
        out.push_str(&field(ctx, r, m, e.versions, &e.name, ""));
    }
    let _ = writeln!(out, "    /// The variant `{discriminator}` chose, with its members.");
    let _ = writeln!(out, "    pub branch: {branch},");
    let _ = writeln!(out, "}}\n");

    let _ = writeln!(out, "/// The variants of [`{name}`], by its `{discriminator}`.");
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq)]");
    let _ = writeln!(out, "#[non_exhaustive]");
    let _ = writeln!(out, "pub enum {branch} {{");
    let rust_names = enum_variants(&values);
    let mut arms = Vec::new();
    // Where the type was not yet this union (a plain struct: BlockJobInfo before 8.2), a value
    // may carry a tag whose variant members came later: such an arm keeps the value in `Other`
    // when the members do not decode, instead of failing the whole reply.
    let reshaped = !e.older_kinds.is_empty();
    for (v, rust) in values.iter().zip(&rust_names) {
        let case = variants.iter().find(|c| c.name == v.name);
        let lenient = reshaped && case.is_some_and(|c| c.versions != e.versions);
        let ty = case.and_then(|c| c.types.last()).map(|t| t.ty.clone());
        let _ = writeln!(out, "    /// `{discriminator}: \"{}\"`.", v.name);
        match &ty {
            Some(t) if r.get(t).is_some() => {
                let mut rust_ty = r.rust_type(t, "");
                if r.holds(t, &e.name) {
                    rust_ty = format!("Box<{rust_ty}>");
                }
                let _ = writeln!(out, "    {rust}({rust_ty}),");
                arms.push((v.name.clone(), rust.clone(), true, lenient));
            }
            _ => {
                let _ = writeln!(out, "    {rust},");
                arms.push((v.name.clone(), rust.clone(), false, false));
            }
        }
    }
    let _ = writeln!(
        out,
        "    /// A `{discriminator}` this build does not know, with the members that came with it."
    );
    let _ = writeln!(
        out,
        "    Other {{\n        /// The `{discriminator}` as sent.\n        tag: String,\n        /// The members that came with it (the base's aside).\n        members: serde_json::Map<String, serde_json::Value>,\n    }},"
    );
    let _ = writeln!(out, "}}\n");

    // Serde: through a JSON object, since the discriminator and the variant's members share it.
    let base_fields: Vec<(String, String, bool)> =
        members.iter().map(|m| (field_name(&m.name), m.name.clone(), is_optional(m, e.versions))).collect();
    let _ = writeln!(out, "impl Serialize for {name} {{");
    let _ =
        writeln!(out, "    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {{");
    let _ = writeln!(out, "        use serde::ser::Error as _;");
    let _ = writeln!(out, "        let mut obj = serde_json::Map::new();");
    for (f, wire, optional) in &base_fields {
        if *optional {
            let _ = writeln!(out, "        if let Some(v) = &self.{f} {{ obj.insert(\"{wire}\".into(), serde_json::to_value(v).map_err(S::Error::custom)?); }}");
        } else {
            let _ = writeln!(out, "        obj.insert(\"{wire}\".into(), serde_json::to_value(&self.{f}).map_err(S::Error::custom)?);");
        }
    }
    let _ = writeln!(out, "        let (tag, rest) = match &self.branch {{");
    for (wire, rust, has, _) in &arms {
        if *has {
            let _ = writeln!(out, "            {branch}::{rust}(v) => (\"{wire}\", serde_json::to_value(v).map_err(S::Error::custom)?),");
        } else {
            let _ = writeln!(out, "            {branch}::{rust} => (\"{wire}\", serde_json::Value::Null),");
        }
    }
    let _ = writeln!(out, "            {branch}::Other {{ tag, members }} => (tag.as_str(), serde_json::Value::Object(members.clone())),");
    let _ = writeln!(out, "        }};");
    let _ = writeln!(
        out,
        "        obj.insert(\"{discriminator}\".into(), serde_json::Value::String(tag.to_owned()));"
    );
    let _ = writeln!(out, "        if let serde_json::Value::Object(rest) = rest {{ obj.extend(rest); }}");
    let _ = writeln!(out, "        obj.serialize(s)");
    let _ = writeln!(out, "    }}\n}}\n");

    let _ = writeln!(out, "impl<'de> Deserialize<'de> for {name} {{");
    let _ =
        writeln!(out, "    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {{");
    let _ = writeln!(out, "        use serde::de::Error as _;");
    let _ =
        writeln!(out, "        let mut obj = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;");
    // A discriminator that older versions lack (the type was a plain struct there): such a
    // value decodes with its members kept in `Other`, its tag empty.
    let tag_everywhere = disc_member_versions.is_some_and(|v| v == e.versions);
    let _ = writeln!(out, "        let tag = match obj.remove(\"{discriminator}\") {{");
    let _ = writeln!(out, "            Some(serde_json::Value::String(t)) => t,");
    if tag_everywhere {
        let _ = writeln!(out, "            _ => return Err(D::Error::missing_field(\"{discriminator}\")),");
    } else {
        let _ = writeln!(out, "            None => String::new(),");
        let _ = writeln!(
            out,
            "            Some(_) => return Err(D::Error::custom(\"`{discriminator}` is not a string\")),"
        );
    }
    let _ = writeln!(out, "        }};");
    for (f, wire, optional) in &base_fields {
        if *optional {
            let _ = writeln!(out, "        let {f} = match obj.remove(\"{wire}\") {{ Some(v) => Some(serde_json::from_value(v).map_err(D::Error::custom)?), None => None }};");
        } else {
            let _ = writeln!(out, "        let {f} = serde_json::from_value(obj.remove(\"{wire}\").ok_or_else(|| D::Error::missing_field(\"{wire}\"))?).map_err(D::Error::custom)?;");
        }
    }
    let _ = writeln!(out, "        let branch = match tag.as_str() {{");
    for (wire, rust, has, lenient) in &arms {
        if *has && *lenient {
            let _ = writeln!(out, "            \"{wire}\" => match serde_json::from_value(serde_json::Value::Object(obj.clone())) {{ Ok(v) => {branch}::{rust}(v), Err(_) => {branch}::Other {{ tag, members: obj }} }},");
        } else if *has {
            let _ = writeln!(out, "            \"{wire}\" => {branch}::{rust}(serde_json::from_value(serde_json::Value::Object(obj)).map_err(D::Error::custom)?),");
        } else {
            let _ = writeln!(out, "            \"{wire}\" => {branch}::{rust},");
        }
    }
    let _ = writeln!(out, "            _ => {branch}::Other {{ tag, members: obj }},");
    let _ = writeln!(out, "        }};");
    let fields: Vec<String> = base_fields.iter().map(|(f, _, _)| f.clone()).collect();
    let _ = writeln!(out, "        #[allow(deprecated)]");
    let _ = writeln!(
        out,
        "        Ok({name} {{ {}branch }})",
        fields.iter().map(|f| format!("{f}, ")).collect::<String>()
    );
    let _ = writeln!(out, "    }}\n}}\n");
}

/// An alternate: one Rust variant per alternative, tried in JSON-type order, and `Other`
/// with the value when none fits.
pub fn emit_alternate(ctx: &Ctx, r: &Resolver, e: &Entity, out: &mut String) {
    let Kind::Alternate { alternatives } = &e.kind else { return };
    let name = type_name(&e.name);
    doc(out, "", &entity_doc(ctx, e, "alternate"));
    out.push_str(&deprecated_attr(ctx, &e.features, e.versions));
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]");
    let _ = writeln!(out, "#[serde(untagged)]");
    let _ = writeln!(out, "pub enum {name} {{");
    let rust_names = enum_variants(alternatives);
    for (a, rust) in alternatives.iter().zip(&rust_names) {
        let ty = a.types.last().map_or("any", |t| t.ty.as_str());
        let mut rust_ty = r.rust_type(ty, "");
        if r.is_composite(ty) && r.holds(ty, &e.name) {
            rust_ty = format!("Box<{rust_ty}>");
        }
        let _ = writeln!(out, "    /// `{}`: `{ty}`.", a.name);
        let _ = writeln!(out, "    {rust}({rust_ty}),");
    }
    let _ = writeln!(out, "    /// A value that fits no alternative this build knows, kept as sent.");
    let _ = writeln!(out, "    Other(serde_json::Value),");
    let _ = writeln!(out, "}}\n");
}
