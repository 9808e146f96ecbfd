//! A model of QEMU's live `query-qmp-schema`, for completion, `help` and argument checks.
//!
//! QEMU masks the names of its types as numbers (`"arg-type": "36"`); only command, event
//! and builtin names are real. The model keeps every entity by its (masked) name and answers
//! the questions the shell asks: which commands exist, which arguments a command takes at a
//! dotted path, which values an enum allows, what a command returns, and whether a set of
//! arguments fits the command before it is sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Commands that take members their schema does not list (QAPI `gen: false` with free-form
/// properties): unknown arguments are not reported for them.
const OPEN_COMMANDS: &[&str] = &["device_add"];

/// How deep `help` and checks follow nested types (the schema has recursive types).
const MAX_DEPTH: usize = 8;

/// One member of an object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's name, as sent on the wire.
    pub name: String,
    /// The (masked) name of its type.
    pub ty: String,
    /// Whether it may be left out.
    pub optional: bool,
}

/// What a schema entity is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    /// A builtin type with its JSON type (`string`, `int`, `number`, `boolean`, `null`, `value`).
    Builtin(String),
    /// An object: its members and, for a union, the tag member and the type of each case.
    Object {
        /// Common members.
        members: Vec<Member>,
        /// The member whose value picks a variant.
        tag: Option<String>,
        /// `(case, type)` pairs.
        variants: Vec<(String, String)>,
    },
    /// A string limited to these values.
    Enum(Vec<String>),
    /// An array of this element type.
    Array(String),
    /// Any one of these types.
    Alternate(Vec<String>),
}

/// A command's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInfo {
    /// The (masked) name of its argument object type.
    pub arg_type: String,
    /// The (masked) name of its return type.
    pub ret_type: String,
}

/// The whole schema, indexed.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    entities: HashMap<String, Entity>,
    commands: BTreeMap<String, CommandInfo>,
    events: BTreeMap<String, String>,
}

/// Why a `query-qmp-schema` answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad query-qmp-schema answer: {}", self.0)
    }
}

impl std::error::Error for SchemaError {}

fn str_of<'a>(entry: &'a Value, key: &str) -> Result<&'a str, SchemaError> {
    entry
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| SchemaError(format!("an entry has no string '{key}': {entry}")))
}

fn parse_members(entry: &Value) -> Result<Vec<Member>, SchemaError> {
    let Some(list) = entry.get("members").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|m| {
            Ok(Member {
                name: str_of(m, "name")?.to_owned(),
                ty: str_of(m, "type")?.to_owned(),
                optional: m.get("default").is_some(),
            })
        })
        .collect()
}

impl Schema {
    /// Builds the model from the `return` value of `query-qmp-schema`.
    pub fn from_json(value: &Value) -> Result<Schema, SchemaError> {
        let entries = value.as_array().ok_or_else(|| SchemaError("expected an array".into()))?;
        let mut schema = Schema::default();
        for entry in entries {
            let name = str_of(entry, "name")?.to_owned();
            match str_of(entry, "meta-type")? {
                "command" => {
                    let info = CommandInfo {
                        arg_type: str_of(entry, "arg-type")?.to_owned(),
                        ret_type: str_of(entry, "ret-type")?.to_owned(),
                    };
                    schema.commands.insert(name, info);
                }
                "event" => {
                    let arg = str_of(entry, "arg-type")?.to_owned();
                    schema.events.insert(name, arg);
                }
                "builtin" => {
                    let json = str_of(entry, "json-type")?.to_owned();
                    schema.entities.insert(name, Entity::Builtin(json));
                }
                "enum" => {
                    let values = match entry.get("values").and_then(Value::as_array) {
                        Some(v) => v.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                        None => member_names(entry),
                    };
                    schema.entities.insert(name, Entity::Enum(values));
                }
                "array" => {
                    let element = str_of(entry, "element-type")?.to_owned();
                    schema.entities.insert(name, Entity::Array(element));
                }
                "alternate" => {
                    let list = entry.get("members").and_then(Value::as_array);
                    let types = list
                        .into_iter()
                        .flatten()
                        .map(|m| str_of(m, "type").map(str::to_owned))
                        .collect::<Result<_, _>>()?;
                    schema.entities.insert(name, Entity::Alternate(types));
                }
                "object" => {
                    let variants = entry.get("variants").and_then(Value::as_array);
                    let variants = variants
                        .into_iter()
                        .flatten()
                        .map(|v| Ok((str_of(v, "case")?.to_owned(), str_of(v, "type")?.to_owned())))
                        .collect::<Result<_, SchemaError>>()?;
                    let tag = entry.get("tag").and_then(Value::as_str).map(str::to_owned);
                    let members = parse_members(entry)?;
                    schema.entities.insert(name, Entity::Object { members, tag, variants });
                }
                other => return Err(SchemaError(format!("unknown meta-type '{other}'"))),
            }
        }
        Ok(schema)
    }

    /// Every command name, sorted.
    pub fn command_names(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    /// Every event name, sorted.
    pub fn event_names(&self) -> impl Iterator<Item = &str> {
        self.events.keys().map(String::as_str)
    }

    /// A command's signature, if the schema has it.
    pub fn command(&self, name: &str) -> Option<&CommandInfo> {
        self.commands.get(name)
    }

    /// The entity behind a (masked) type name.
    pub fn entity(&self, ty: &str) -> Option<&Entity> {
        self.entities.get(ty)
    }

    /// The members an object of type `ty` may have, given the values already chosen in `args`
    /// (a union's tag value selects its variant; with no tag value yet, every variant counts).
    /// An alternate stands for its object branch (`file` of `blockdev-add` is a node name or
    /// an object).
    pub fn members(&self, ty: &str, args: Option<&Map<String, Value>>) -> Vec<&Member> {
        let ty = self.object_branch(ty);
        let Some(Entity::Object { members, tag, variants }) = self.entity(ty) else {
            return Vec::new();
        };
        let mut out: Vec<&Member> = members.iter().collect();
        let chosen = tag.as_ref().and_then(|t| args.and_then(|a| a.get(t))).and_then(Value::as_str);
        let mut seen_types = HashSet::new();
        for (case, vty) in variants {
            if chosen.is_some_and(|c| c != case) || !seen_types.insert(vty) {
                continue;
            }
            for m in self.members(vty, args) {
                if !out.iter().any(|o| o.name == m.name) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// The type at a dotted argument path below object type `ty` (`["a", "b"]` for `a.b`),
    /// seeing through arrays is not attempted: paths name object members only.
    pub fn type_at(&self, ty: &str, path: &[&str], args: Option<&Map<String, Value>>) -> Option<String> {
        let (first, rest) = path.split_first()?;
        let member = self.members(ty, args).into_iter().find(|m| m.name == *first)?;
        let sub_args = args.and_then(|a| a.get(*first)).and_then(Value::as_object);
        if rest.is_empty() {
            Some(member.ty.clone())
        } else {
            self.type_at(&member.ty, rest, sub_args)
        }
    }

    /// The values an enum type (or an alternate containing one, or `bool`) accepts, for completion.
    pub fn value_choices(&self, ty: &str) -> Vec<String> {
        match self.entity(ty) {
            Some(Entity::Enum(values)) => values.clone(),
            Some(Entity::Builtin(json)) if json == "boolean" => vec!["true".into(), "false".into()],
            Some(Entity::Alternate(types)) => types.iter().flat_map(|t| self.value_choices(t)).collect(),
            _ => Vec::new(),
        }
    }

    /// The object type inside `ty`: itself, or the object branch of an alternate.
    pub fn object_branch<'a>(&'a self, ty: &'a str) -> &'a str {
        match self.entity(ty) {
            Some(Entity::Alternate(types)) => {
                types.iter().find(|t| self.is_object(t)).map_or(ty, String::as_str)
            }
            _ => ty,
        }
    }

    /// Whether `ty` is an object type (its members can be given as `key.member=value`).
    pub fn is_object(&self, ty: &str) -> bool {
        matches!(self.entity(ty), Some(Entity::Object { .. }))
    }

    /// A short human name for a type: `string`, `int`, `enum`, `array of string`, `object`, ...
    pub fn type_label(&self, ty: &str) -> String {
        self.label(ty, 0)
    }

    fn label(&self, ty: &str, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return "...".into();
        }
        match self.entity(ty) {
            None => format!("<{ty}>"),
            Some(Entity::Builtin(json)) => match json.as_str() {
                "value" => "any".into(),
                "boolean" => "bool".into(),
                other => other.into(),
            },
            Some(Entity::Enum(values)) => format!("enum ({})", abbreviate(values, 8)),
            Some(Entity::Array(el)) => format!("array of {}", self.label(el, depth + 1)),
            Some(Entity::Alternate(types)) => {
                let labels: Vec<String> = types.iter().map(|t| self.label(t, depth + 1)).collect();
                labels.join(" or ")
            }
            Some(Entity::Object { .. }) => "object".into(),
        }
    }

    /// The text of `help COMMAND`: its arguments as a tree with types and optional marks, and
    /// its return type. `None` when the command is unknown.
    pub fn describe_command(&self, name: &str) -> Option<String> {
        let info = self.command(name)?;
        let mut out = String::new();
        let _ = writeln!(out, "{name}");
        let members = self.members(&info.arg_type, None);
        if members.is_empty() {
            out.push_str("  (no arguments)\n");
        } else {
            self.describe_object(&info.arg_type, 1, &mut out, &mut Vec::new());
        }
        let ret = match self.entity(&info.ret_type) {
            Some(Entity::Object { members, variants, .. }) if members.is_empty() && variants.is_empty() => {
                "nothing ({})".to_owned()
            }
            _ => self.type_label(&info.ret_type),
        };
        let _ = writeln!(out, "returns: {ret}");
        let mut stack = Vec::new();
        self.describe_nested(&info.ret_type, 1, &mut out, &mut stack);
        Some(out)
    }

    /// Writes the members of object `ty`, indented by `level`, recursing into nested objects.
    fn describe_object(&self, ty: &str, level: usize, out: &mut String, stack: &mut Vec<String>) {
        let Some(Entity::Object { members, tag, variants }) = self.entity(ty) else {
            return;
        };
        if stack.contains(&ty.to_owned()) || stack.len() > MAX_DEPTH {
            let _ = writeln!(out, "{}...", "  ".repeat(level));
            return;
        }
        stack.push(ty.to_owned());
        let indent = "  ".repeat(level);
        for m in members {
            let opt = if m.optional { " (optional)" } else { "" };
            let _ = writeln!(out, "{indent}{}: {}{opt}", m.name, self.type_label(&m.ty));
            self.describe_nested(&m.ty, level + 1, out, stack);
        }
        if let Some(tag) = tag {
            for (case, vty) in variants {
                if self.members(vty, None).is_empty() {
                    continue;
                }
                let _ = writeln!(out, "{indent}when {tag}={case}:");
                self.describe_object(vty, level + 1, out, stack);
            }
        }
        stack.pop();
    }

    /// Below a member line: an object's members, or an array's element object's members.
    fn describe_nested(&self, ty: &str, level: usize, out: &mut String, stack: &mut Vec<String>) {
        match self.entity(ty) {
            Some(Entity::Object { .. }) => self.describe_object(ty, level, out, stack),
            Some(Entity::Array(el)) if self.is_object(el) => self.describe_object(el, level, out, stack),
            _ => {}
        }
    }

    /// Checks `args` against command `name`'s argument type; each problem is one message naming
    /// the argument (`unknown argument 'x'`, `'node': expected string, got 12`, ...).
    /// An unknown command is a problem too.
    pub fn check_command(&self, name: &str, args: &Map<String, Value>) -> Vec<String> {
        let Some(info) = self.command(name) else {
            return vec![format!("unknown command '{name}' (see 'help')")];
        };
        let mut problems = Vec::new();
        let open = OPEN_COMMANDS.contains(&name);
        self.check_object(&info.arg_type, args, "", open, 0, &mut problems);
        problems
    }

    fn check_object(
        &self,
        ty: &str,
        obj: &Map<String, Value>,
        prefix: &str,
        open: bool,
        depth: usize,
        problems: &mut Vec<String>,
    ) {
        // A bad tag value is reported by the enum check of the tag member itself.
        let members = self.members(ty, Some(obj));
        for (key, value) in obj {
            match members.iter().find(|m| &m.name == key) {
                Some(m) => self.check_value(&m.ty, value, &format!("{prefix}{key}"), depth + 1, problems),
                None if open => {}
                None => problems.push(format!("unknown argument '{prefix}{key}'")),
            }
        }
        for m in members {
            if !m.optional && !obj.contains_key(&m.name) {
                problems.push(format!(
                    "missing required argument '{prefix}{}' ({})",
                    m.name,
                    self.type_label(&m.ty)
                ));
            }
        }
    }

    fn check_value(&self, ty: &str, value: &Value, path: &str, depth: usize, problems: &mut Vec<String>) {
        if depth > MAX_DEPTH * 4 {
            return;
        }
        if !self.fits(ty, value, depth) {
            // Say the most precise thing: recurse into objects/arrays of the right shape.
            match (self.entity(ty), value) {
                (Some(Entity::Object { .. }), Value::Object(obj)) => {
                    self.check_object(ty, obj, &format!("{path}."), false, depth, problems)
                }
                (Some(Entity::Array(el)), Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check_value(el, item, &format!("{path}[{i}]"), depth + 1, problems);
                    }
                }
                _ => {
                    let wanted = self.type_label(ty);
                    // `id=1` reads as a number: say how to send the text instead.
                    let hint =
                        if self.fits(ty, &Value::String(value.to_string()), depth) && !value.is_string() {
                            " (quote the value to send it as a string)"
                        } else {
                            ""
                        };
                    problems.push(format!("'{path}': expected {wanted}, got {value}{hint}"))
                }
            }
        }
    }

    /// Whether `value` is acceptable as a `ty`.
    fn fits(&self, ty: &str, value: &Value, depth: usize) -> bool {
        if depth > MAX_DEPTH * 4 {
            return true;
        }
        match (self.entity(ty), value) {
            (None, _) => true,
            (Some(Entity::Builtin(json)), v) => match json.as_str() {
                "string" => v.is_string(),
                "int" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                "null" => v.is_null(),
                _ => true,
            },
            (Some(Entity::Enum(values)), Value::String(s)) => values.contains(s),
            (Some(Entity::Array(el)), Value::Array(items)) => {
                items.iter().all(|i| self.fits(el, i, depth + 1))
            }
            (Some(Entity::Alternate(types)), v) => types.iter().any(|t| self.fits(t, v, depth + 1)),
            (Some(Entity::Object { .. }), Value::Object(obj)) => {
                let mut problems = Vec::new();
                self.check_object(ty, obj, "", false, depth + 1, &mut problems);
                problems.is_empty()
            }
            _ => false,
        }
    }

    /// For a `transaction` action list: the action names (the cases of the action union).
    pub fn transaction_actions(&self) -> Vec<String> {
        let Some(actions_ty) =
            self.command("transaction").and_then(|c| self.type_at(&c.arg_type, &["actions"], None))
        else {
            return Vec::new();
        };
        let Some(Entity::Array(el)) = self.entity(&actions_ty) else {
            return Vec::new();
        };
        match self.entity(el) {
            Some(Entity::Object { variants, .. }) => variants.iter().map(|(c, _)| c.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The type of a transaction action's `data` object.
    pub fn transaction_action_type(&self, action: &str) -> Option<String> {
        let info = self.command("transaction")?;
        let actions_ty = self.type_at(&info.arg_type, &["actions"], None)?;
        let Some(Entity::Array(el)) = self.entity(&actions_ty) else {
            return None;
        };
        let mut sel = Map::new();
        sel.insert("type".into(), Value::String(action.into()));
        self.type_at(el, &["data"], Some(&sel))
    }
}

/// The `name` of each member (enums before QEMU 6.2 list their values only this way).
fn member_names(entry: &Value) -> Vec<String> {
    entry
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// `a|b|c` with at most `max` values shown.
fn abbreviate(values: &[String], max: usize) -> String {
    if values.len() <= max {
        values.join("|")
    } else {
        format!("{}|... {} more", values[..max].join("|"), values.len() - max)
    }
}
