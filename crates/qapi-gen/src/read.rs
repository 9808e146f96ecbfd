//! From one version's definitions to that version's entities: what each expression of the
//! schema language means, checked as QEMU's generator checks the shape of an expression.
//!
//! Every entity, member, value, variant and feature read here has the one version it was
//! read for; [`crate::merge`] joins the versions. Inline objects become the implicit
//! structs QEMU's generator makes of them: a command's or event's `'data': { ... }` is
//! `q_obj_<name>-arg`, a union's `'base': { ... }` is `q_obj_<name>-base` (an empty inline
//! object is no struct at all, and no argument type). `if` conditions are kept as written,
//! never evaluated. Every type a definition names must be defined (or built in).

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::{Case, Cond, Entity, Feature, Kind, Member, Typed, Versions};
use crate::parse::{Error, Expr, Value, ValueKind};

/// The entities that `exprs` (one schema of one version, read by [`crate::parse`]) define,
/// sorted by name, each marked as existing in version index `version` (below 64, the size
/// of a [`Versions`] set) only.
pub fn entities(exprs: &[Expr], version: usize) -> Result<Vec<Entity>, Error> {
    let v = Versions::only(version);
    // Each name with where it was defined, to report a second definition.
    let mut seen: BTreeMap<String, (std::path::PathBuf, u32)> = BTreeMap::new();
    let mut out = Vec::new();
    for expr in exprs {
        let at = Ctx { file: &expr.file, v };
        for entity in definition(expr, at)? {
            if let Some((file, line)) = seen.get(&entity.name) {
                return Err(Error::new(
                    &expr.file,
                    expr.line,
                    format!("'{}' is already defined at {}:{}", entity.name, file.display(), line),
                ));
            }
            seen.insert(entity.name.clone(), (expr.file.clone(), expr.line));
            out.push(entity);
        }
    }
    for e in &out {
        for (what, ty) in references(e) {
            let element = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(ty);
            if !BUILTINS.contains(&element) && !seen.contains_key(element) {
                let (file, line) = &seen[&e.name];
                return Err(Error::new(
                    file,
                    *line,
                    format!("{what} of '{}' names type '{element}', which is not defined", e.name),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The built-in types of QAPI.
pub const BUILTINS: [&str; 15] = [
    "str", "number", "int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "size",
    "bool", "null", "any",
];

/// Every type an entity names, with what names it.
fn references<'a>(e: &'a Entity) -> Vec<(String, &'a str)> {
    let mut out: Vec<(String, &'a str)> = Vec::new();
    let mut one = |what: String, ty: Option<&'a String>| {
        if let Some(t) = ty {
            out.push((what, t.as_str()));
        }
    };
    match &e.kind {
        Kind::Command { args, returns, .. } => {
            one("the arguments".into(), args.as_ref());
            one("the return".into(), returns.as_ref());
        }
        Kind::Event { data, .. } => one("the data".into(), data.as_ref()),
        Kind::Struct { base, members } => {
            one("the base".into(), base.as_ref());
            for m in members {
                one(format!("member '{}'", m.name), m.types.first().map(|t| &t.ty));
            }
        }
        Kind::Union { base, variants, .. } => {
            one("the base".into(), Some(base));
            for v in variants {
                one(format!("variant '{}'", v.name), v.types.first().map(|t| &t.ty));
            }
        }
        Kind::Alternate { alternatives } => {
            for a in alternatives {
                one(format!("alternative '{}'", a.name), a.types.first().map(|t| &t.ty));
            }
        }
        Kind::Enum { .. } => {}
    }
    out
}

#[derive(Clone, Copy)]
struct Ctx<'a> {
    file: &'a Path,
    v: Versions,
}

impl Ctx<'_> {
    fn err(&self, line: u32, message: impl Into<String>) -> Error {
        Error::new(self.file, line, message)
    }
}

/// The keys each kind of definition may have, besides its own keyword, `if` and `features`.
fn allowed(meta: &str) -> &'static [&'static str] {
    match meta {
        "struct" => &["data", "base"],
        "enum" => &["data", "prefix"],
        "union" => &["data", "base", "discriminator"],
        "alternate" => &["data"],
        "command" => &[
            "data",
            "boxed",
            "returns",
            "success-response",
            "gen",
            "allow-oob",
            "allow-preconfig",
            "coroutine",
        ],
        "event" => &["data", "boxed"],
        _ => &[],
    }
}

/// The entity (and the implicit structs of its inline objects) that one definition makes.
fn definition(expr: &Expr, at: Ctx<'_>) -> Result<Vec<Entity>, Error> {
    let metas: Vec<&str> = expr
        .body
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| crate::parse::DEFINITION_KEYS.contains(k))
        .collect();
    let meta = match metas[..] {
        [one] => one,
        [] => {
            return Err(at.err(
                expr.line,
                "an expression needs one of 'struct', 'enum', 'union', 'alternate', 'command', 'event', \
                 'include', 'pragma'",
            ))
        }
        _ => return Err(at.err(expr.line, format!("an expression has one of {} only", metas.join(", ")))),
    };
    for (key, value) in &expr.body {
        if key != meta && key != "if" && key != "features" && !allowed(meta).contains(&key.as_str()) {
            return Err(at.err(value.line, format!("'{key}' is not a key of a {meta} definition")));
        }
    }
    let name_value = expr.get(meta).expect("the keyword was found among the keys");
    let name = name_value
        .as_str()
        .ok_or_else(|| at.err(name_value.line, format!("a {meta}'s name must be a string")))?
        .to_string();
    if name.is_empty() {
        return Err(at.err(name_value.line, format!("a {meta}'s name must not be empty")));
    }
    let required = |key: &str| {
        expr.get(key).ok_or_else(|| at.err(expr.line, format!("{meta} '{name}' lacks its '{key}'")))
    };
    let cond = expr.get("if").map(|c| cond_of(c, at)).transpose()?;
    let features = features(expr.get("features"), at)?;
    let doc = expr.doc.as_ref();
    let since = doc.and_then(|d| d.since.clone());
    let member_since: BTreeMap<&str, &str> = doc
        .map(|d| d.member_since.iter().map(|(m, v)| (m.as_str(), v.as_str())).collect())
        .unwrap_or_default();
    let mut extra = Vec::new();
    let implicit = |suffix: &str, members: Vec<Member>| Entity {
        name: format!("q_obj_{name}-{suffix}"),
        versions: at.v,
        module: expr.module.clone(),
        since: None,
        features: Vec::new(),
        cond: cond.clone(),
        kind: Kind::Struct { base: None, members },
        older_conds: Vec::new(),
        older_kinds: Vec::new(),
    };
    let kind = match meta {
        "struct" => {
            let data = required("data")?;
            let base = expr.get("base").map(|b| type_name(b, at, "a struct's base")).transpose()?;
            Kind::Struct { base, members: members(data, at, &member_since)? }
        }
        "enum" => {
            let data = required("data")?;
            let prefix = expr.get("prefix").map(|p| type_name(p, at, "an enum's prefix")).transpose()?;
            Kind::Enum { values: enum_values(data, at, &member_since)?, prefix }
        }
        "union" => {
            let base = required("base")?;
            let base = match &base.kind {
                ValueKind::Str(s) => s.clone(),
                ValueKind::Dict(_) => {
                    let e = implicit("base", members(base, at, &member_since)?);
                    let n = e.name.clone();
                    extra.push(e);
                    n
                }
                _ => {
                    return Err(
                        at.err(base.line, "a union's base must be a type name or an object of members")
                    )
                }
            };
            let d = required("discriminator")?;
            let discriminator = type_name(d, at, "a union's discriminator")?;
            Kind::Union { base, discriminator, variants: branches(required("data")?, at, false)? }
        }
        "alternate" => Kind::Alternate { alternatives: branches(required("data")?, at, true)? },
        "command" => {
            let args = arg_type(expr.get("data"), at, &member_since, &mut extra, &implicit)?;
            let returns = expr.get("returns").map(|r| type_ref(r, at)).transpose()?;
            Kind::Command {
                args,
                boxed: flag(expr, "boxed", at)?.unwrap_or(false),
                returns,
                allow_oob: flag(expr, "allow-oob", at)?.unwrap_or(false),
                no_success_response: !flag(expr, "success-response", at)?.unwrap_or(true),
                allow_preconfig: flag(expr, "allow-preconfig", at)?.unwrap_or(false),
                coroutine: flag(expr, "coroutine", at)?.unwrap_or(false),
            }
        }
        "event" => {
            let data = arg_type(expr.get("data"), at, &member_since, &mut extra, &implicit)?;
            Kind::Event { data, boxed: flag(expr, "boxed", at)?.unwrap_or(false) }
        }
        _ => unreachable!("meta is one of the definition keys"),
    };
    let _ = flag(expr, "gen", at)?;
    let mut out = vec![Entity {
        name,
        versions: at.v,
        module: expr.module.clone(),
        since,
        features,
        cond,
        kind,
        older_conds: Vec::new(),
        older_kinds: Vec::new(),
    }];
    out.append(&mut extra);
    Ok(out)
}

/// A command's or event's `data`: a type's name, or inline members (an implicit struct).
fn arg_type(
    data: Option<&Value>,
    at: Ctx<'_>,
    member_since: &BTreeMap<&str, &str>,
    extra: &mut Vec<Entity>,
    implicit: &dyn Fn(&str, Vec<Member>) -> Entity,
) -> Result<Option<String>, Error> {
    let Some(data) = data else { return Ok(None) };
    match &data.kind {
        ValueKind::Str(s) => Ok(Some(s.clone())),
        ValueKind::Dict(d) if d.is_empty() => Ok(None),
        ValueKind::Dict(_) => {
            let e = implicit("arg", members(data, at, member_since)?);
            let n = e.name.clone();
            extra.push(e);
            Ok(Some(n))
        }
        _ => Err(at.err(
            data.line,
            format!("'data' must be a type name or an object of members, not {}", data.describe()),
        )),
    }
}

fn flag(expr: &Expr, key: &str, at: Ctx<'_>) -> Result<Option<bool>, Error> {
    match expr.get(key) {
        None => Ok(None),
        Some(Value { kind: ValueKind::Bool(b), .. }) => Ok(Some(*b)),
        Some(v) => Err(at.err(v.line, format!("'{key}' must be true or false, not {}", v.describe()))),
    }
}

/// A name that must be a non-empty string.
fn type_name(v: &Value, at: Ctx<'_>, what: &str) -> Result<String, Error> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        Some(_) => Err(at.err(v.line, format!("{what} must not be empty"))),
        None => Err(at.err(v.line, format!("{what} must be a string, not {}", v.describe()))),
    }
}

/// A type: `'name'` or `['name']` (kept as `"[name]"`).
fn type_ref(v: &Value, at: Ctx<'_>) -> Result<String, Error> {
    match &v.kind {
        ValueKind::Str(_) => type_name(v, at, "a type name"),
        ValueKind::List(items) => match &items[..] {
            [one] => Ok(format!("[{}]", type_name(one, at, "an array's element type")?)),
            _ => Err(at.err(v.line, "an array type names exactly one element type: ['T']")),
        },
        _ => Err(at.err(v.line, format!("a type must be a name or ['name'], not {}", v.describe()))),
    }
}

/// An `if` condition. It nests as deeply as the value does, which the parser bounds
/// ([`crate::parse::MAX_DEPTH`]), so the recursion here is bounded too.
fn cond_of(v: &Value, at: Ctx<'_>) -> Result<Cond, Error> {
    match &v.kind {
        ValueKind::Str(s) if !s.is_empty() => Ok(Cond::Name(s.clone())),
        // QEMU before 6.2 wrote a list for "all of these"; read it as that.
        ValueKind::List(items) if !items.is_empty() => {
            Ok(Cond::All(items.iter().map(|c| cond_of(c, at)).collect::<Result<_, _>>()?))
        }
        ValueKind::Dict(d) if d.len() == 1 => {
            let (op, arg) = &d[0];
            match op.as_str() {
                "all" | "any" => {
                    let items = arg.as_list().filter(|l| !l.is_empty()).ok_or_else(|| {
                        at.err(arg.line, format!("'if': {{ '{op}': ... }} takes a non-empty list"))
                    })?;
                    let conds = items.iter().map(|c| cond_of(c, at)).collect::<Result<_, _>>()?;
                    Ok(if op == "all" { Cond::All(conds) } else { Cond::Any(conds) })
                }
                "not" => Ok(Cond::Not(Box::new(cond_of(arg, at)?))),
                _ => Err(at.err(v.line, format!("unknown operator '{op}' in 'if' (all, any, not)"))),
            }
        }
        _ => Err(at.err(
            v.line,
            "'if' must be a config name, or { 'all': [...] }, { 'any': [...] } or { 'not': ... }",
        )),
    }
}

fn features(v: Option<&Value>, at: Ctx<'_>) -> Result<Vec<Feature>, Error> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let items = v.as_list().ok_or_else(|| at.err(v.line, "'features' must be a list"))?;
    let mut out: Vec<Feature> = Vec::new();
    for f in items {
        let (name, cond) = named(f, at, "a feature", &[])?;
        if out.iter().any(|o| o.name == name) {
            return Err(at.err(f.line, format!("feature '{name}' is listed twice")));
        }
        out.push(Feature { name, versions: at.v, cond, older_conds: Vec::new() });
    }
    Ok(out)
}

/// `'name'` or `{ 'name': ..., 'if': ..., <extra keys> }`.
fn named(v: &Value, at: Ctx<'_>, what: &str, extra: &[&str]) -> Result<(String, Option<Cond>), Error> {
    match &v.kind {
        ValueKind::Str(_) => Ok((type_name(v, at, what)?, None)),
        ValueKind::Dict(d) => {
            for (k, val) in d {
                if k != "name" && k != "if" && !extra.contains(&k.as_str()) {
                    return Err(at.err(val.line, format!("'{k}' is not a key of {what}")));
                }
            }
            let name = v.get("name").ok_or_else(|| at.err(v.line, format!("{what} lacks its 'name'")))?;
            let cond = v.get("if").map(|c| cond_of(c, at)).transpose()?;
            Ok((type_name(name, at, &format!("{what}'s name"))?, cond))
        }
        _ => Err(at.err(v.line, format!("{what} must be a name or an object, not {}", v.describe()))),
    }
}

/// A struct's (or an implicit struct's) members: `name: type`, `*name` optional, the type
/// a name, `['name']` or `{ 'type': ..., 'if': ..., 'features': [...] }`.
fn members(data: &Value, at: Ctx<'_>, member_since: &BTreeMap<&str, &str>) -> Result<Vec<Member>, Error> {
    let entries = data
        .as_dict()
        .ok_or_else(|| at.err(data.line, format!("members must be an object, not {}", data.describe())))?;
    let mut out: Vec<Member> = Vec::new();
    for (key, value) in entries {
        let (name, optional) = match key.strip_prefix('*') {
            Some(n) => (n, true),
            None => (key.as_str(), false),
        };
        if name.is_empty() {
            return Err(at.err(value.line, "a member's name must not be empty"));
        }
        if out.iter().any(|m| m.name == name) {
            return Err(at.err(value.line, format!("member '{name}' is defined twice")));
        }
        let (ty, cond, features) = match &value.kind {
            ValueKind::Dict(d) => {
                for (k, val) in d {
                    if !["type", "if", "features"].contains(&k.as_str()) {
                        return Err(at.err(val.line, format!("'{k}' is not a key of member '{name}'")));
                    }
                }
                let ty = value
                    .get("type")
                    .ok_or_else(|| at.err(value.line, format!("member '{name}' lacks its 'type'")))?;
                let cond = value.get("if").map(|c| cond_of(c, at)).transpose()?;
                (type_ref(ty, at)?, cond, features(value.get("features"), at)?)
            }
            _ => (type_ref(value, at)?, None, Vec::new()),
        };
        out.push(Member {
            name: name.to_string(),
            types: vec![Typed { ty, versions: at.v }],
            versions: at.v,
            optional: if optional { at.v } else { Versions::default() },
            features,
            cond,
            older_conds: Vec::new(),
            since: member_since.get(name).map(|s| s.to_string()),
        });
    }
    Ok(out)
}

fn enum_values(data: &Value, at: Ctx<'_>, member_since: &BTreeMap<&str, &str>) -> Result<Vec<Case>, Error> {
    let items = data.as_list().ok_or_else(|| {
        at.err(data.line, format!("an enum's 'data' must be a list, not {}", data.describe()))
    })?;
    let mut out: Vec<Case> = Vec::new();
    for item in items {
        let (name, cond) = named(item, at, "an enum value", &["features"])?;
        if out.iter().any(|c| c.name == name) {
            return Err(at.err(item.line, format!("enum value '{name}' is listed twice")));
        }
        let since = member_since.get(name.as_str()).map(|s| s.to_string());
        out.push(Case {
            name,
            types: Vec::new(),
            versions: at.v,
            features: features(item.get("features"), at)?,
            cond,
            older_conds: Vec::new(),
            since,
        });
    }
    Ok(out)
}

/// A union's variants or an alternate's alternatives: `name: type` or
/// `name: { 'type': ..., 'if': ... }`. Only an alternative may be an array.
fn branches(data: &Value, at: Ctx<'_>, alternate: bool) -> Result<Vec<Case>, Error> {
    let entries = data
        .as_dict()
        .ok_or_else(|| at.err(data.line, format!("'data' must be an object, not {}", data.describe())))?;
    let ty_of = |v: &Value| if alternate { type_ref(v, at) } else { type_name(v, at, "a variant's type") };
    let mut out = Vec::new();
    for (name, value) in entries {
        let (ty, cond) = match &value.kind {
            ValueKind::Dict(d) => {
                for (k, val) in d {
                    if k != "type" && k != "if" {
                        return Err(at.err(val.line, format!("'{k}' is not a key of branch '{name}'")));
                    }
                }
                let ty = value
                    .get("type")
                    .ok_or_else(|| at.err(value.line, format!("branch '{name}' lacks its 'type'")))?;
                (ty_of(ty)?, value.get("if").map(|c| cond_of(c, at)).transpose()?)
            }
            _ => (ty_of(value)?, None),
        };
        out.push(Case {
            name: name.clone(),
            types: vec![Typed { ty, versions: at.v }],
            versions: at.v,
            features: Vec::new(),
            cond,
            older_conds: Vec::new(),
            since: None,
        });
    }
    Ok(out)
}
