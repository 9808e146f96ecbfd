//! What the shell asks of the live schema, on the library's [`qmp::Schema`] (fetched once per
//! connection by the client): the text of `help COMMAND`, argument checks worded for the
//! shell's `key=value` lines, the actions of `transaction`, and the values completion offers.

use std::fmt::Write as _;

use qmp::schema::{JsonType, ObjectType, ProblemKind, SchemaProblem, Type, TypeKind};
use qmp::Schema;
use serde_json::{Map, Value};

/// How deep `help` follows nested types (the schema has recursive types, and a tree deeper
/// than this is no help to read).
const MAX_DEPTH: usize = 8;

/// The text of `help COMMAND`: its arguments as a tree with types and optional marks, and its
/// return type. `None` when the command is unknown.
pub fn describe_command(schema: &Schema, name: &str) -> Option<String> {
    let cmd = schema.command(name)?;
    let mut out = String::new();
    let _ = writeln!(out, "{name}");
    let args = cmd.arguments();
    match args.object_branch() {
        Some(obj) if !obj.members_for(None).is_empty() => describe_object(obj, 1, &mut out, &mut Vec::new()),
        _ => out.push_str("  (no arguments)\n"),
    }
    let ret = cmd.returns();
    let ret_label = match ret.as_object() {
        Some(o) if o.members().next().is_none() && o.variants().next().is_none() => "nothing ({})".to_owned(),
        _ => ret.label(),
    };
    let _ = writeln!(out, "returns: {ret_label}");
    describe_nested(ret, 1, &mut out, &mut Vec::new());
    Some(out)
}

/// Writes the members of `obj`, indented by `level`, going into nested objects (each type at
/// most once on the way down, and at most [`MAX_DEPTH`] levels).
fn describe_object<'a>(obj: ObjectType<'a>, level: usize, out: &mut String, stack: &mut Vec<&'a str>) {
    let name = obj.ty().name();
    let indent = "  ".repeat(level);
    if stack.contains(&name) || stack.len() > MAX_DEPTH {
        let _ = writeln!(out, "{indent}...");
        return;
    }
    stack.push(name);
    for m in obj.members() {
        let opt = if m.is_optional() { " (optional)" } else { "" };
        let _ = writeln!(out, "{indent}{}: {}{opt}", m.name(), m.ty().label());
        describe_nested(m.ty(), level + 1, out, stack);
    }
    if let Some(tag) = obj.tag() {
        for (case, vty) in obj.variants() {
            let Some(variant) = vty.as_object().filter(|v| !v.members_for(None).is_empty()) else {
                continue;
            };
            let _ = writeln!(out, "{indent}when {tag}={case}:");
            describe_object(variant, level + 1, out, stack);
        }
    }
    stack.pop();
}

/// Below a member line: an object's members, or an array's element object's members.
fn describe_nested<'a>(ty: Type<'a>, level: usize, out: &mut String, stack: &mut Vec<&'a str>) {
    match ty.kind() {
        TypeKind::Object(o) => describe_object(o, level, out, stack),
        TypeKind::Array(el) => {
            if let Some(o) = el.as_object() {
                describe_object(o, level, out, stack)
            }
        }
        _ => {}
    }
}

/// Checks `args` (an object, or null) against command `name`; each problem is one message
/// naming the argument (`unknown argument 'x'`, `'node': expected string, got integer 12`,
/// ...). An unknown command is a problem too.
pub fn check_command(schema: &Schema, name: &str, args: &Value) -> Vec<String> {
    if !schema.has_command(name) {
        return vec![format!("unknown command '{name}' (see 'help')")];
    }
    match schema.validate_arguments(name, args) {
        Ok(()) => Vec::new(),
        Err(problems) => problems.iter().map(word).collect(),
    }
}

/// A problem in the shell's words: its lines give arguments, and `id=1` reads as a number.
fn word(p: &SchemaProblem) -> String {
    match &p.kind {
        // The library's words, with the shell's "argument" for "member".
        ProblemKind::UnknownMember { .. } => p.to_string().replacen("unknown member", "unknown argument", 1),
        ProblemKind::MissingMember { .. } => {
            p.to_string().replacen("missing required member", "missing required argument", 1)
        }
        ProblemKind::WrongType { expected, got, .. }
            if matches!(*got, "integer" | "number" | "boolean" | "null")
                && expected.split(" or ").any(|t| t == "string" || t.starts_with("enum")) =>
        {
            format!("{p} (quote the value to send it as a string)")
        }
        _ => p.to_string(),
    }
}

/// The action names of `transaction` (the cases of its action union).
pub fn transaction_actions(schema: &Schema) -> Vec<String> {
    action_union(schema).map(|u| u.variants().map(|(case, _)| case.to_owned()).collect()).unwrap_or_default()
}

/// The type of a transaction action's `data` object.
pub fn transaction_action_type<'a>(schema: &'a Schema, action: &str) -> Option<Type<'a>> {
    let union = action_union(schema)?;
    let mut selected = Map::new();
    selected.insert(union.tag()?.to_owned(), Value::String(action.to_owned()));
    union.member("data", Some(&selected)).map(|m| m.ty())
}

fn action_union(schema: &Schema) -> Option<ObjectType<'_>> {
    let actions = schema.command("transaction")?.arguments().member_at(&["actions"], None)?;
    actions.ty().element()?.as_object()
}

/// The values completion offers for a `ty`: an enum's (or an alternate's enum branch's), or
/// `true`/`false`.
pub fn value_choices(ty: Type<'_>) -> Vec<String> {
    if let Some(e) = ty.enum_type() {
        return e.values().map(str::to_owned).collect();
    }
    let boolean = |t: Type<'_>| matches!(t.kind(), TypeKind::Builtin(JsonType::Boolean));
    let has_bool = match ty.kind() {
        TypeKind::Alternate(a) => a.branches().any(boolean),
        _ => boolean(ty),
    };
    if has_bool {
        vec!["true".into(), "false".into()]
    } else {
        Vec::new()
    }
}

/// Whether a `ty` value can be given member by member (`key.member=value`): an object, or an
/// alternate with an object branch, that has members.
pub fn has_members(ty: Type<'_>) -> bool {
    ty.object_branch().is_some_and(|o| !o.members_for(None).is_empty())
}
