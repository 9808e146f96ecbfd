//! The live schema of a QMP server (`query-qmp-schema`), indexed: look-ups, feature
//! questions, and checking arguments before they are sent.
//!
//! QEMU masks type names as numbers (`"arg-type": "49"`); command, event and builtin names
//! are real. A [`Schema`] follows the masked names for you: a command's
//! [arguments](CommandDef::arguments) are a [`Type`] whose members, union variants (keyed by
//! the tag's value), alternates, arrays and enums are all reached from it. Every walk over the
//! schema is bounded, so a schema with cycles (a struct that contains itself through an
//! optional member) or a deeply nested value never recurses without end.
//!
//! ```
//! use qmp::commands::SchemaInfo;
//! use qmp::Schema;
//! use serde_json::json;
//!
//! // A tiny schema in QEMU's shape (a real one comes from `client.schema().await?`).
//! let entries: Vec<SchemaInfo> = serde_json::from_value(json!([
//!     {"name": "block-dirty-bitmap-add", "meta-type": "command", "arg-type": "1", "ret-type": "0"},
//!     {"name": "0", "meta-type": "object", "members": []},
//!     {"name": "1", "meta-type": "object", "members": [
//!         {"name": "node", "type": "str"},
//!         {"name": "granularity", "type": "int", "default": null}]},
//!     {"name": "str", "meta-type": "builtin", "json-type": "string"},
//!     {"name": "int", "meta-type": "builtin", "json-type": "int"},
//! ]))
//! .unwrap();
//! let schema = Schema::from_entries(entries);
//!
//! assert!(schema.has_command("block-dirty-bitmap-add"));
//! assert!(schema.has_argument("block-dirty-bitmap-add", "granularity"));
//! let problems = schema
//!     .validate_arguments("block-dirty-bitmap-add", &json!({"node": 1, "bogus": true}))
//!     .unwrap_err();
//! let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
//! assert_eq!(text, ["unknown member 'bogus'", "'node': expected string, got integer 1"]);
//! ```

mod validate;

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::commands::{
    SchemaInfo, SchemaInfoAlternate, SchemaInfoCommand, SchemaInfoEnum, SchemaInfoEvent, SchemaInfoObject,
    SchemaInfoObjectMember, SchemaMeta, SchemaStr,
};

pub(crate) use validate::join as join_problems;
pub use validate::{ProblemKind, SchemaProblem, MAX_PROBLEMS};

/// Commands whose arguments may include members their schema does not list (QAPI
/// `gen: false` with free-form properties: `device_add` takes the device's own properties).
/// Unknown members at the top level of their arguments are not problems.
///
/// ```
/// assert!(qmp::schema::OPEN_COMMANDS.contains(&"device_add"));
/// ```
pub const OPEN_COMMANDS: &[&str] = &["device_add"];

/// How many steps a walk takes through types that consume no level of a value or a path
/// (an alternate's branch, an array's element): QAPI allows one or two; a hostile or broken
/// schema that loops is cut here.
const MAX_HOPS: usize = 8;

/// How many candidate types a path search keeps at each level.
const MAX_CANDIDATES: usize = 512;

/// The schema of one server, indexed by name. Build it with [`Schema::from_entries`] from
/// [`QueryQmpSchema`](crate::commands::QueryQmpSchema)'s answer, or get the connection's
/// cached one with [`Client::schema`](crate::Client::schema).
///
/// ```
/// # use qmp::Schema;
/// let empty = Schema::from_entries(Vec::new());
/// assert!(!empty.has_command("query-status"));
/// assert_eq!(empty.command_names().count(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Schema {
    entries: Vec<SchemaInfo>,
    /// Entry index by name; the first of duplicate names wins.
    index: HashMap<SchemaStr, usize>,
    /// Command entries, sorted by name.
    commands: Vec<usize>,
    /// Event entries, sorted by name.
    events: Vec<usize>,
}

impl Schema {
    /// Indexes the entries of `query-qmp-schema`. Nothing is rejected: a type name no entry
    /// defines reads as [`TypeKind::Undefined`] (which accepts any value), and of entries with
    /// the same name the first counts.
    ///
    /// ```
    /// # use qmp::{commands::SchemaInfo, Schema};
    /// let entries: Vec<SchemaInfo> = serde_json::from_str(
    ///     r#"[{"name": "STOP", "meta-type": "event", "arg-type": "0"},
    ///         {"name": "0", "meta-type": "object", "members": []}]"#,
    /// )
    /// .unwrap();
    /// let schema = Schema::from_entries(entries);
    /// assert!(schema.has_event("STOP"));
    /// ```
    pub fn from_entries(entries: Vec<SchemaInfo>) -> Schema {
        let mut index = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            index.entry(e.name.clone()).or_insert(i);
        }
        let sorted = |pick: fn(&SchemaMeta) -> bool| {
            let mut v: Vec<usize> = index.values().copied().filter(|&i| pick(&entries[i].meta)).collect();
            v.sort_by(|&a, &b| entries[a].name.cmp(&entries[b].name));
            v
        };
        let commands = sorted(|m| matches!(m, SchemaMeta::Command(_)));
        let events = sorted(|m| matches!(m, SchemaMeta::Event(_)));
        Schema { entries, index, commands, events }
    }

    /// Every entry, as the server sent them.
    pub fn entries(&self) -> &[SchemaInfo] {
        &self.entries
    }

    /// The entry named `name` (a command, an event, or a type by its masked name).
    ///
    /// ```
    /// # use qmp::Schema;
    /// assert!(Schema::default().entry("query-status").is_none());
    /// ```
    pub fn entry(&self, name: &str) -> Option<&SchemaInfo> {
        self.index.get(name).map(|&i| &self.entries[i])
    }

    /// Every command name, sorted.
    pub fn command_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.commands.iter().map(|&i| self.entries[i].name.as_str())
    }

    /// Every event name, sorted.
    pub fn event_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.events.iter().map(|&i| self.entries[i].name.as_str())
    }

    /// Every command, sorted by name.
    pub fn commands(&self) -> impl Iterator<Item = CommandDef<'_>> + '_ {
        self.commands.iter().filter_map(|&i| self.command_of(&self.entries[i]))
    }

    /// Every event, sorted by name.
    pub fn events(&self) -> impl Iterator<Item = EventDef<'_>> + '_ {
        self.events.iter().filter_map(|&i| self.event_of(&self.entries[i]))
    }

    /// The command named `name`.
    ///
    /// ```
    /// # use qmp::Schema;
    /// # fn demo(schema: &Schema) {
    /// if let Some(cmd) = schema.command("query-status") {
    ///     println!("{} returns {}", cmd.name(), cmd.returns().label());
    /// }
    /// # }
    /// ```
    pub fn command(&self, name: &str) -> Option<CommandDef<'_>> {
        self.command_of(self.entry(name)?)
    }

    /// The event named `name`.
    pub fn event(&self, name: &str) -> Option<EventDef<'_>> {
        self.event_of(self.entry(name)?)
    }

    /// The type with (masked) name `name`, when an entry defines it as a type.
    ///
    /// ```
    /// # use qmp::{commands::SchemaInfo, schema::{JsonType, TypeKind}, Schema};
    /// let entries: Vec<SchemaInfo> =
    ///     serde_json::from_str(r#"[{"name": "int", "meta-type": "builtin", "json-type": "int"}]"#).unwrap();
    /// let schema = Schema::from_entries(entries);
    /// assert!(matches!(schema.ty("int").unwrap().kind(), TypeKind::Builtin(JsonType::Int)));
    /// assert!(schema.ty("42").is_none());
    /// ```
    pub fn ty(&self, name: &str) -> Option<Type<'_>> {
        let info = self.entry(name)?;
        let t = Type { schema: self, name: info.name.as_str(), info: Some(info) };
        (!matches!(t.kind(), TypeKind::Undefined)).then_some(t)
    }

    /// A type by name, [`TypeKind::Undefined`] when no entry defines it.
    fn type_named<'a>(&'a self, name: &'a str) -> Type<'a> {
        Type { schema: self, name, info: self.entry(name) }
    }

    fn command_of<'a>(&'a self, info: &'a SchemaInfo) -> Option<CommandDef<'a>> {
        match &info.meta {
            SchemaMeta::Command(cmd) => Some(CommandDef { schema: self, info, cmd }),
            _ => None,
        }
    }

    fn event_of<'a>(&'a self, info: &'a SchemaInfo) -> Option<EventDef<'a>> {
        match &info.meta {
            SchemaMeta::Event(ev) => Some(EventDef { schema: self, info, ev }),
            _ => None,
        }
    }

    /// True when the server has command `name`.
    pub fn has_command(&self, name: &str) -> bool {
        self.command(name).is_some()
    }

    /// True when the server has event `name`.
    pub fn has_event(&self, name: &str) -> bool {
        self.event(name).is_some()
    }

    /// True when `command` takes the argument at the dotted `path` (`"file.driver"`), in any
    /// union variant: each step goes into an object's members, through an alternate's object
    /// branch and an array's elements (`"actions.data.node"` for `transaction`). A step may
    /// carry an index, which is ignored (`"actions[0].type"`).
    ///
    /// ```
    /// # fn demo(schema: &qmp::Schema) {
    /// // Does this QEMU's blockdev-add know io_uring, and file locking?
    /// let io_uring = schema.has_enum_value("blockdev-add.aio", "io_uring");
    /// let locking = schema.has_argument("blockdev-add", "locking");
    /// # }
    /// ```
    pub fn has_argument(&self, command: &str, path: &str) -> bool {
        let Some(cmd) = self.command(command) else { return false };
        !self.members_below(cmd.arguments(), path).is_empty()
    }

    /// True when the entity or member at `path` carries `feature` (`"deprecated"`,
    /// `"unstable"`, ...): `path` is a command, event or type name, optionally followed by a
    /// dotted member path below its arguments, data or members (`"query-status.singlestep"`
    /// names a member of query-status's *arguments*; for a return type's members, use
    /// [`CommandDef::returns`]).
    ///
    /// ```
    /// # fn demo(schema: &qmp::Schema) {
    /// if schema.has_feature("drive-backup", "deprecated") {
    ///     println!("use blockdev-backup");
    /// }
    /// # }
    /// ```
    pub fn has_feature(&self, path: &str, feature: &str) -> bool {
        match path.split_once('.') {
            None => self.entry(path).is_some_and(|e| e.has_feature(feature)),
            Some((root, rest)) => self
                .root_type(root)
                .is_some_and(|t| self.members_below(t, rest).iter().any(|m| m.has_feature(feature))),
        }
    }

    /// True when the enum at `path` allows `value`: `path` is a type name, or a command or
    /// event name followed by a dotted member path (`"blockdev-add.driver"`). An alternate or
    /// array around the enum is seen through.
    ///
    /// ```
    /// # fn demo(schema: &qmp::Schema) {
    /// assert!(schema.has_enum_value("blockdev-add.driver", "qcow2"));
    /// # }
    /// ```
    pub fn has_enum_value(&self, path: &str, value: &str) -> bool {
        let types: Vec<Type<'_>> = match path.split_once('.') {
            None => self.root_type(path).into_iter().collect(),
            Some((root, rest)) => self
                .root_type(root)
                .map(|t| self.members_below(t, rest).iter().map(Member::ty).collect())
                .unwrap_or_default(),
        };
        types.iter().any(|t| t.enums_within().iter().any(|e| e.has_value(value)))
    }

    /// The members a path's first step names: a command's arguments, an event's data, or a
    /// type.
    fn root_type(&self, name: &str) -> Option<Type<'_>> {
        let info = self.entry(name)?;
        Some(match &info.meta {
            SchemaMeta::Command(c) => self.type_named(&c.arg_type),
            SchemaMeta::Event(e) => self.type_named(&e.arg_type),
            _ => Type { schema: self, name: info.name.as_str(), info: Some(info) },
        })
    }

    /// Every member at the dotted `path` below `start`, in any variant.
    fn members_below<'a>(&'a self, start: Type<'a>, path: &str) -> Vec<Member<'a>> {
        let mut current = vec![start];
        let mut found = Vec::new();
        for step in path.split('.') {
            let step = step.split_once('[').map_or(step, |(name, _)| name);
            found.clear();
            let mut next: Vec<Type<'a>> = Vec::new();
            let mut seen = HashSet::new();
            for t in &current {
                for obj in t.objects_within() {
                    for m in obj.members_everywhere() {
                        if m.name() == step && found.len() < MAX_CANDIDATES {
                            found.push(m);
                            if seen.insert(m.ty().name()) {
                                next.push(m.ty());
                            }
                        }
                    }
                }
            }
            if found.is_empty() {
                return found;
            }
            current = next;
        }
        found
    }
}

/// A command: its arguments' type, its return type, its features.
///
/// ```
/// # fn demo(schema: &qmp::Schema) {
/// for cmd in schema.commands().filter(|c| c.has_feature("deprecated")) {
///     println!("{} is deprecated; it returns {}", cmd.name(), cmd.returns().label());
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CommandDef<'a> {
    schema: &'a Schema,
    info: &'a SchemaInfo,
    cmd: &'a SchemaInfoCommand,
}

impl<'a> CommandDef<'a> {
    /// The command's name.
    pub fn name(&self) -> &'a str {
        &self.info.name
    }

    /// Its schema entry.
    pub fn info(&self) -> &'a SchemaInfo {
        self.info
    }

    /// Its features (`deprecated`, `unstable`, ...).
    pub fn features(&self) -> &'a [SchemaStr] {
        &self.info.features
    }

    /// True when it carries `feature`.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.info.has_feature(feature)
    }

    /// True when it may run out of band (`exec-oob`).
    pub fn allow_oob(&self) -> bool {
        self.cmd.allow_oob
    }

    /// The type of its arguments (an object; with no arguments, one without members).
    ///
    /// ```
    /// # fn demo(schema: &qmp::Schema) {
    /// let args = schema.command("blockdev-add").unwrap().arguments();
    /// let obj = args.as_object().unwrap();
    /// assert_eq!(obj.tag(), Some("driver"));
    /// let file = obj.variant("file").unwrap();
    /// assert!(file.object_branch().unwrap().member("filename", None).is_some());
    /// # }
    /// ```
    pub fn arguments(&self) -> Type<'a> {
        self.schema.type_named(&self.cmd.arg_type)
    }

    /// Its return type.
    pub fn returns(&self) -> Type<'a> {
        self.schema.type_named(&self.cmd.ret_type)
    }
}

/// An event: the type of its data, its features.
///
/// ```
/// # fn demo(schema: &qmp::Schema) {
/// let data = schema.event("JOB_STATUS_CHANGE").unwrap().data().as_object().unwrap();
/// let names: Vec<&str> = data.members().map(|m| m.name()).collect();
/// assert_eq!(names, ["id", "status"]);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EventDef<'a> {
    schema: &'a Schema,
    info: &'a SchemaInfo,
    ev: &'a SchemaInfoEvent,
}

impl<'a> EventDef<'a> {
    /// The event's name.
    pub fn name(&self) -> &'a str {
        &self.info.name
    }

    /// Its features.
    pub fn features(&self) -> &'a [SchemaStr] {
        &self.info.features
    }

    /// True when it carries `feature`.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.info.has_feature(feature)
    }

    /// The type of its `data` (an object).
    pub fn data(&self) -> Type<'a> {
        self.schema.type_named(&self.ev.arg_type)
    }
}

/// A builtin type's JSON type (`json-type`).
///
/// ```
/// use qmp::schema::JsonType;
/// assert!(JsonType::Int.accepts(&serde_json::json!(3)));
/// assert!(!JsonType::Int.accepts(&serde_json::json!(1.5)));
/// assert!(JsonType::Value.accepts(&serde_json::json!({"any": "thing"})));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonType {
    /// A JSON string.
    String,
    /// An integer (every QAPI integer type shows as this).
    Int,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
    /// Any JSON object.
    Object,
    /// Any JSON array.
    Array,
    /// Any JSON value (QAPI `any`), and any `json-type` this crate does not know.
    Value,
}

impl JsonType {
    fn from_wire(s: &str) -> JsonType {
        match s {
            "string" => JsonType::String,
            "int" => JsonType::Int,
            "number" => JsonType::Number,
            "boolean" => JsonType::Boolean,
            "null" => JsonType::Null,
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            _ => JsonType::Value,
        }
    }

    /// A short name for people: `string`, `int`, `number`, `bool`, `null`, `object`,
    /// `array`, `any`.
    ///
    /// ```
    /// assert_eq!(qmp::schema::JsonType::Boolean.label(), "bool");
    /// ```
    pub fn label(&self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Int => "int",
            JsonType::Number => "number",
            JsonType::Boolean => "bool",
            JsonType::Null => "null",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Value => "any",
        }
    }

    /// True when `value` is of this JSON type.
    pub fn accepts(&self, value: &Value) -> bool {
        match self {
            JsonType::String => value.is_string(),
            JsonType::Int => value.is_i64() || value.is_u64(),
            JsonType::Number => value.is_number(),
            JsonType::Boolean => value.is_boolean(),
            JsonType::Null => value.is_null(),
            JsonType::Object => value.is_object(),
            JsonType::Array => value.is_array(),
            JsonType::Value => true,
        }
    }
}

/// A type of the schema, by its (masked) name; what it is comes from [`Type::kind`].
///
/// ```
/// # fn demo(schema: &qmp::Schema) {
/// use qmp::schema::TypeKind;
/// let ret = schema.command("query-status").unwrap().returns();
/// match ret.kind() {
///     TypeKind::Object(obj) => {
///         for m in obj.members() {
///             println!("{}: {}", m.name(), m.ty().label()); // running: bool, ...
///         }
///     }
///     other => println!("{} is {other:?}", ret.name()),
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Type<'a> {
    schema: &'a Schema,
    name: &'a str,
    info: Option<&'a SchemaInfo>,
}

/// What a [`Type`] is.
///
/// ```
/// # fn demo(ty: qmp::schema::Type<'_>) {
/// use qmp::schema::TypeKind;
/// let described = match ty.kind() {
///     TypeKind::Array(element) => format!("a list of {}", element.label()),
///     TypeKind::Enum(e) => format!("one of {}", e.values().collect::<Vec<_>>().join(", ")),
///     _ => ty.label(),
/// };
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TypeKind<'a> {
    /// A builtin type (`str`, `int`, `bool`, `any`, ...) with its JSON type.
    Builtin(JsonType),
    /// An enumeration.
    Enum(EnumType<'a>),
    /// An array of this element type.
    Array(Type<'a>),
    /// An object: a struct, or a union with a tag and variants.
    Object(ObjectType<'a>),
    /// An alternate: a value of one of several types, told apart by JSON type.
    Alternate(AlternateType<'a>),
    /// A name no entry defines as a type (or a meta-type this crate does not know): any value
    /// is accepted for it.
    Undefined,
}

impl<'a> Type<'a> {
    /// Its (masked) name, as in the schema.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Its schema entry, when the schema has one.
    pub fn info(&self) -> Option<&'a SchemaInfo> {
        self.info
    }

    /// What it is.
    pub fn kind(&self) -> TypeKind<'a> {
        let Some(info) = self.info else { return TypeKind::Undefined };
        match &info.meta {
            SchemaMeta::Builtin(b) => TypeKind::Builtin(JsonType::from_wire(&b.json_type)),
            SchemaMeta::Enum(e) => TypeKind::Enum(EnumType { info, e }),
            SchemaMeta::Array(a) => TypeKind::Array(self.schema.type_named(&a.element_type)),
            SchemaMeta::Object(o) => TypeKind::Object(ObjectType { ty: *self, obj: o }),
            SchemaMeta::Alternate(a) => TypeKind::Alternate(AlternateType { schema: self.schema, alt: a }),
            _ => TypeKind::Undefined,
        }
    }

    /// Its features.
    pub fn features(&self) -> &'a [SchemaStr] {
        self.info.map_or(&[], |i| &i.features)
    }

    /// The object it is, if it is one.
    pub fn as_object(&self) -> Option<ObjectType<'a>> {
        match self.kind() {
            TypeKind::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The object inside it: itself, or an alternate's object branch (`blockdev-add`'s
    /// `file` is a node name or an object).
    pub fn object_branch(&self) -> Option<ObjectType<'a>> {
        let mut t = *self;
        for _ in 0..MAX_HOPS {
            match t.kind() {
                TypeKind::Object(o) => return Some(o),
                TypeKind::Alternate(a) => {
                    t = a
                        .branches()
                        .find(|b| matches!(b.kind(), TypeKind::Object(_) | TypeKind::Alternate(_)))?
                }
                _ => return None,
            }
        }
        None
    }

    /// The enum inside it: itself, or an alternate's enum branch.
    pub fn enum_type(&self) -> Option<EnumType<'a>> {
        let mut t = *self;
        for _ in 0..MAX_HOPS {
            match t.kind() {
                TypeKind::Enum(e) => return Some(e),
                TypeKind::Alternate(a) => {
                    t = a
                        .branches()
                        .find(|b| matches!(b.kind(), TypeKind::Enum(_) | TypeKind::Alternate(_)))?
                }
                _ => return None,
            }
        }
        None
    }

    /// The element type, if it is an array.
    pub fn element(&self) -> Option<Type<'a>> {
        match self.kind() {
            TypeKind::Array(el) => Some(el),
            _ => None,
        }
    }

    /// The member at `path` (`["file", "driver"]`) below this object type, each step through
    /// an alternate's object branch; `args`, the arguments chosen so far, picks each union's
    /// variant by its tag's value (with none, the first variant having the member counts).
    ///
    /// ```
    /// # fn demo(schema: &qmp::Schema) {
    /// use serde_json::json;
    /// let args = schema.command("blockdev-add").unwrap().arguments();
    /// let given = json!({"driver": "qcow2"});
    /// let file_driver = args.member_at(&["file", "driver"], given.as_object()).unwrap();
    /// assert!(file_driver.ty().enum_type().unwrap().has_value("file"));
    /// # }
    /// ```
    pub fn member_at(&self, path: &[&str], args: Option<&Map<String, Value>>) -> Option<Member<'a>> {
        let (mut t, mut args) = (*self, args);
        let mut found = None;
        for step in path {
            let m = t.object_branch()?.member(step, args)?;
            args = args.and_then(|a| a.get(*step)).and_then(Value::as_object);
            t = m.ty();
            found = Some(m);
        }
        found
    }

    /// A short name for people: `string`, `int`, `bool`, `any`, `enum (a|b|c)`,
    /// `array of string`, `string or object`, `object`.
    pub fn label(&self) -> String {
        self.label_within(MAX_HOPS)
    }

    fn label_within(&self, left: usize) -> String {
        if left == 0 {
            return "...".into();
        }
        match self.kind() {
            TypeKind::Builtin(j) => j.label().into(),
            TypeKind::Enum(e) => format!("enum ({})", abbreviate(&e.values().collect::<Vec<_>>(), 8)),
            TypeKind::Array(el) => format!("array of {}", el.label_within(left - 1)),
            TypeKind::Alternate(a) => {
                a.branches().map(|b| b.label_within(left - 1)).collect::<Vec<_>>().join(" or ")
            }
            TypeKind::Object(_) => "object".into(),
            TypeKind::Undefined => format!("<{}>", self.name),
        }
    }

    /// The objects a path step can go into from here: itself, or those inside its
    /// alternate's branches and its array's elements.
    fn objects_within(&self) -> Vec<ObjectType<'a>> {
        let mut out = Vec::new();
        let mut todo = vec![(*self, 0)];
        while let Some((t, hops)) = todo.pop() {
            match t.kind() {
                TypeKind::Object(o) => out.push(o),
                TypeKind::Alternate(a) if hops < MAX_HOPS => todo.extend(a.branches().map(|b| (b, hops + 1))),
                TypeKind::Array(el) if hops < MAX_HOPS => todo.push((el, hops + 1)),
                _ => {}
            }
        }
        out
    }

    /// The enums inside it, through alternates and arrays.
    fn enums_within(&self) -> Vec<EnumType<'a>> {
        let mut out = Vec::new();
        let mut todo = vec![(*self, 0)];
        while let Some((t, hops)) = todo.pop() {
            match t.kind() {
                TypeKind::Enum(e) => out.push(e),
                TypeKind::Alternate(a) if hops < MAX_HOPS => todo.extend(a.branches().map(|b| (b, hops + 1))),
                TypeKind::Array(el) if hops < MAX_HOPS => todo.push((el, hops + 1)),
                _ => {}
            }
        }
        out
    }
}

/// An enumeration: its values, each with its features.
///
/// ```
/// # fn demo(schema: &qmp::Schema) {
/// let status = schema.command("query-status").unwrap().returns().as_object().unwrap();
/// let values = status.member("status", None).unwrap().ty().enum_type().unwrap();
/// assert!(values.has_value("running"));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EnumType<'a> {
    info: &'a SchemaInfo,
    e: &'a SchemaInfoEnum,
}

impl<'a> EnumType<'a> {
    /// Its values, in the schema's order.
    pub fn values(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.e.values.iter().map(SchemaStr::as_str)
    }

    /// True when `value` is one of them.
    pub fn has_value(&self, value: &str) -> bool {
        self.e.values.iter().any(|v| v == value)
    }

    /// The features of one value (QEMU 6.2 and later say them).
    pub fn value_features(&self, value: &str) -> &'a [SchemaStr] {
        self.e.members.iter().find(|m| m.name == value).map_or(&[], |m| &m.features)
    }

    /// The enum's own schema entry.
    pub fn info(&self) -> &'a SchemaInfo {
        self.info
    }
}

/// An alternate: the types a value may have, told apart by the value's JSON type.
///
/// ```
/// # fn demo(alt: qmp::schema::AlternateType<'_>) {
/// let labels: Vec<String> = alt.branches().map(|b| b.label()).collect(); // ["object", "string"]
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AlternateType<'a> {
    schema: &'a Schema,
    alt: &'a SchemaInfoAlternate,
}

impl<'a> AlternateType<'a> {
    /// The branches' types.
    pub fn branches(&self) -> impl Iterator<Item = Type<'a>> + 'a {
        let schema = self.schema;
        self.alt.members.iter().map(move |m| schema.type_named(&m.kind))
    }
}

/// An object type: members, and for a union its tag and the variant of each tag value.
///
/// ```
/// # fn demo(schema: &qmp::Schema) {
/// let args = schema.command("blockdev-add").unwrap().arguments().as_object().unwrap();
/// for (driver, variant) in args.variants() {
///     let count = variant.as_object().map_or(0, |v| v.members().count());
///     println!("driver={driver}: {count} members of its own");
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ObjectType<'a> {
    ty: Type<'a>,
    obj: &'a SchemaInfoObject,
}

impl<'a> ObjectType<'a> {
    /// The type this is.
    pub fn ty(&self) -> Type<'a> {
        self.ty
    }

    /// The members every value has (for a union: the common ones, the tag among them).
    pub fn members(&self) -> impl Iterator<Item = Member<'a>> + 'a {
        let schema = self.ty.schema;
        self.obj.members.iter().map(move |m| Member { schema, m })
    }

    /// For a union, the member whose value picks the variant.
    pub fn tag(&self) -> Option<&'a str> {
        self.obj.tag.as_deref()
    }

    /// For a union, each tag value with its variant's type (whose members join the common
    /// ones).
    pub fn variants(&self) -> impl Iterator<Item = (&'a str, Type<'a>)> + 'a {
        let schema = self.ty.schema;
        self.obj.variants.iter().map(move |v| (v.case.as_str(), schema.type_named(&v.kind)))
    }

    /// The variant for tag value `case`.
    pub fn variant(&self, case: &str) -> Option<Type<'a>> {
        self.variants().find(|(c, _)| *c == case).map(|(_, t)| t)
    }

    /// The members a value may have, given the arguments chosen so far: the common members,
    /// then the chosen variant's (by the tag's value in `args`); with no tag value, every
    /// variant's, each name once.
    ///
    /// ```
    /// # fn demo(schema: &qmp::Schema) {
    /// use serde_json::json;
    /// let obj = schema.command("blockdev-add").unwrap().arguments().as_object().unwrap();
    /// let file = json!({"driver": "file"});
    /// assert!(obj.members_for(file.as_object()).iter().any(|m| m.name() == "filename"));
    /// # }
    /// ```
    pub fn members_for(&self, args: Option<&Map<String, Value>>) -> Vec<Member<'a>> {
        let mut out: Vec<Member<'a>> = Vec::new();
        let mut names = HashSet::new();
        self.walk_variants(args, |m| {
            if names.insert(m.name()) {
                out.push(m);
            }
        });
        out
    }

    /// The member named `name`, given the arguments chosen so far (see
    /// [`members_for`](Self::members_for)).
    pub fn member(&self, name: &str, args: Option<&Map<String, Value>>) -> Option<Member<'a>> {
        let mut found = None;
        self.walk_variants(args, |m| {
            if found.is_none() && m.name() == name {
                found = Some(m);
            }
        });
        found
    }

    /// Every member of every variant, names repeated when variants share them.
    fn members_everywhere(&self) -> Vec<Member<'a>> {
        let mut out = Vec::new();
        self.walk_variants(None, |m| out.push(m));
        out
    }

    /// Visits the common members, then those of the variants `args` selects (all with no
    /// tag value), each variant type once (the schema may be cyclic).
    fn walk_variants(&self, args: Option<&Map<String, Value>>, mut visit: impl FnMut(Member<'a>)) {
        let mut seen: HashSet<&'a str> = HashSet::new();
        let mut todo = vec![*self];
        seen.insert(self.ty.name);
        let mut i = 0;
        while i < todo.len() {
            let obj = todo[i];
            i += 1;
            obj.members().for_each(&mut visit);
            let Some(tag) = obj.tag() else { continue };
            let chosen = args.and_then(|a| a.get(tag)).and_then(Value::as_str);
            for (case, vty) in obj.variants() {
                if chosen.is_some_and(|c| c != case) {
                    continue;
                }
                if let Some(v) = vty.as_object() {
                    if seen.insert(vty.name) {
                        todo.push(v);
                    }
                }
            }
        }
    }
}

/// A member of an object type.
///
/// ```
/// # fn demo(schema: &qmp::Schema) {
/// let args = schema.command("block-dirty-bitmap-add").unwrap().arguments();
/// let node = args.member_at(&["node"], None).unwrap();
/// assert_eq!((node.name(), node.ty().label(), node.is_optional()), ("node", "string".to_string(), false));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    schema: &'a Schema,
    m: &'a SchemaInfoObjectMember,
}

impl<'a> Member<'a> {
    /// The member's name, as on the wire.
    pub fn name(&self) -> &'a str {
        &self.m.name
    }

    /// Its type.
    pub fn ty(&self) -> Type<'a> {
        self.schema.type_named(&self.m.kind)
    }

    /// True when it may be left out.
    pub fn is_optional(&self) -> bool {
        self.m.is_optional()
    }

    /// Its features.
    pub fn features(&self) -> &'a [SchemaStr] {
        &self.m.features
    }

    /// True when it carries `feature`.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.m.features.iter().any(|f| f == feature)
    }
}

/// `a|b|c` with at most `max` values shown.
pub(crate) fn abbreviate(values: &[&str], max: usize) -> String {
    if values.len() <= max {
        values.join("|")
    } else {
        format!("{}|... {} more", values[..max].join("|"), values.len() - max)
    }
}

#[cfg(test)]
mod tests;
