//! Introspection (`qapi/introspect.json`): `query-qmp-schema`.
//!
//! QEMU masks type names as numbers (`"arg-type": "43"`); command and event names are real.
//! Look entries up by name to follow a command's `arg-type` to its members.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The schema's strings: names, type names, enum values, features. Nearly all are short
/// (QEMU masks type names as numbers), and a `CompactString` keeps up to 24 bytes inline, so
/// decoding QEMU 7.2's 200 KB schema makes ~1,500 allocations instead of ~9,800. It derefs to `str`
/// and compares with `&str` and `String`.
pub type SchemaStr = compact_str::CompactString;

mod scan;

/// Returns the QMP schema: every command, event and type the server knows
/// (`query-qmp-schema`).
///
/// Its reply is the largest QEMU sends (about 200 KB from QEMU 7.2), so a reply in QEMU's own
/// shape is read by a scanner made for it; anything else takes serde's path, with the same
/// result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueryQmpSchema;

impl crate::Command for QueryQmpSchema {
    const NAME: &'static str = "query-qmp-schema";
    type Output = Vec<SchemaInfo>;

    fn decode_reply(frame: &[u8]) -> Result<Vec<SchemaInfo>, qmp_qapi::ReplyError> {
        use qmp_qapi::reply::{member_text, Member};
        let scanned = match member_text(frame) {
            Some((Member::Return, text)) => scan::entries(text),
            _ => None,
        };
        scanned.map_or_else(|| qmp_qapi::decode_reply(Self::NAME, frame), Ok)
    }
}

/// One entry of the schema (QAPI `SchemaInfo`): a name, its features, and what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaInfo {
    /// The entity's name (a number for types, which QEMU masks).
    pub name: SchemaStr,
    /// Feature flags such as `deprecated` or `unstable`.
    pub features: Vec<SchemaStr>,
    /// What the entity is, by its `meta-type`.
    pub meta: SchemaMeta,
}

impl SchemaInfo {
    /// The `meta-type` as on the wire.
    pub fn meta_type(&self) -> &str {
        match &self.meta {
            SchemaMeta::Builtin(_) => "builtin",
            SchemaMeta::Enum(_) => "enum",
            SchemaMeta::Array(_) => "array",
            SchemaMeta::Object(_) => "object",
            SchemaMeta::Alternate(_) => "alternate",
            SchemaMeta::Command(_) => "command",
            SchemaMeta::Event(_) => "event",
            SchemaMeta::Other { meta_type, .. } => meta_type,
        }
    }

    /// True when the entity carries feature `name` (such as `deprecated`).
    pub fn has_feature(&self, name: &str) -> bool {
        self.features.iter().any(|f| f == name)
    }
}

/// What a schema entry describes, tagged by its `meta-type`. Every variant keeps the members
/// it does not know in `extra`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SchemaMeta {
    /// A built-in type such as `int` or `str`.
    Builtin(SchemaInfoBuiltin),
    /// An enumeration.
    Enum(SchemaInfoEnum),
    /// An array type.
    Array(SchemaInfoArray),
    /// An object (struct or union) type.
    Object(SchemaInfoObject),
    /// An alternate: a value of one of several types.
    Alternate(SchemaInfoAlternate),
    /// A command.
    Command(SchemaInfoCommand),
    /// An event.
    Event(SchemaInfoEvent),
    /// A meta-type this crate does not know.
    Other {
        /// The `meta-type` as sent.
        meta_type: String,
        /// The remaining members.
        members: Map<String, Value>,
    },
}

/// A built-in type (`meta-type: builtin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoBuiltin {
    /// Its JSON type: `string`, `number`, `int`, `boolean`, `null`, `object`, `array` or
    /// `value`.
    #[serde(rename = "json-type")]
    pub json_type: SchemaStr,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An enumeration (`meta-type: enum`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoEnum {
    /// Its values, in order.
    pub values: Vec<SchemaStr>,
    /// Its values with their features (QEMU 6.2 and later).
    #[serde(default)]
    pub members: Vec<SchemaInfoEnumMember>,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One value of an enumeration, with its features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaInfoEnumMember {
    /// The value.
    pub name: SchemaStr,
    /// Its features.
    #[serde(default)]
    pub features: Vec<SchemaStr>,
}

/// An array type (`meta-type: array`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoArray {
    /// The element type's name.
    #[serde(rename = "element-type")]
    pub element_type: SchemaStr,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An object type (`meta-type: object`): its members, and for a union its tag and variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoObject {
    /// Its members.
    pub members: Vec<SchemaInfoObjectMember>,
    /// For a union, the member whose value selects the variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<SchemaStr>,
    /// For a union, the variant type of each tag value.
    #[serde(default)]
    pub variants: Vec<SchemaInfoObjectVariant>,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A member of an object type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoObjectMember {
    /// The member's name.
    pub name: SchemaStr,
    /// Its type's name.
    #[serde(rename = "type")]
    pub kind: SchemaStr,
    /// Present (always `null` today) when the member is optional; see
    /// [`is_optional`](Self::is_optional).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Its features.
    #[serde(default)]
    pub features: Vec<SchemaStr>,
}

impl SchemaInfoObjectMember {
    /// True when the member may be left out.
    pub fn is_optional(&self) -> bool {
        self.default.is_some()
    }
}

/// Keeps "present but null" apart from "absent": `"default": null` becomes `Some(Null)`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One variant of a union.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaInfoObjectVariant {
    /// The tag value selecting it.
    pub case: SchemaStr,
    /// Its type's name.
    #[serde(rename = "type")]
    pub kind: SchemaStr,
}

/// An alternate (`meta-type: alternate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoAlternate {
    /// The types a value may have.
    pub members: Vec<SchemaInfoAlternateMember>,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One possible type of an alternate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaInfoAlternateMember {
    /// The type's name.
    #[serde(rename = "type")]
    pub kind: SchemaStr,
}

/// A command (`meta-type: command`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoCommand {
    /// The name of its arguments' object type.
    #[serde(rename = "arg-type")]
    pub arg_type: SchemaStr,
    /// The name of its return type.
    #[serde(rename = "ret-type")]
    pub ret_type: SchemaStr,
    /// True when it may run out of band.
    #[serde(rename = "allow-oob", default)]
    pub allow_oob: bool,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An event (`meta-type: event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoEvent {
    /// The name of its data's object type.
    #[serde(rename = "arg-type")]
    pub arg_type: SchemaStr,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for SchemaInfo {
    /// One pass over the entry (no intermediate `Value` tree): every member QEMU sends is read
    /// straight into its typed field, whatever the order (`meta-type` is rarely first); only
    /// members this crate does not know are kept as `Value`s.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = SchemaInfo;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a SchemaInfo object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SchemaInfo, A::Error> {
        let mut f = Flat::default();
        while let Some(key) = map.next_key::<FlatKey>()? {
            match key {
                FlatKey::Name => f.name = Some(map.next_value()?),
                FlatKey::MetaType => f.meta_type = Some(map.next_value()?),
                FlatKey::Features => f.features = Some(map.next_value()?),
                FlatKey::JsonType => f.json_type = Some(map.next_value()?),
                FlatKey::Values => f.values = Some(map.next_value()?),
                FlatKey::Members => f.members = Some(map.next_value()?),
                FlatKey::ElementType => f.element_type = Some(map.next_value()?),
                FlatKey::Tag => f.tag = Some(map.next_value()?),
                FlatKey::Variants => f.variants = Some(map.next_value()?),
                FlatKey::ArgType => f.arg_type = Some(map.next_value()?),
                FlatKey::RetType => f.ret_type = Some(map.next_value()?),
                FlatKey::AllowOob => f.allow_oob = Some(map.next_value()?),
                FlatKey::Other(k) => {
                    let v: Value = map.next_value()?;
                    f.extra.insert(k, v);
                }
            }
        }
        let mut f = f;
        f.take_info()
    }
}

/// Every member a schema entry may have, read in one pass.
#[derive(Default)]
struct Flat {
    name: Option<SchemaStr>,
    meta_type: Option<MetaKind>,
    features: Option<Vec<SchemaStr>>,
    json_type: Option<SchemaStr>,
    values: Option<Vec<SchemaStr>>,
    members: Option<Vec<FlatMember>>,
    element_type: Option<SchemaStr>,
    tag: Option<SchemaStr>,
    variants: Option<Vec<SchemaInfoObjectVariant>>,
    arg_type: Option<SchemaStr>,
    ret_type: Option<SchemaStr>,
    allow_oob: Option<bool>,
    extra: Map<String, Value>,
}

impl Flat {
    /// Checks the members the entry's meta-type requires and builds it. Each meta-type takes
    /// the members it owns; any left over belong to another meta-type and are kept as
    /// unknown ones.
    fn take_info<E: serde::de::Error>(&mut self) -> Result<SchemaInfo, E> {
        let name = self.name.take().ok_or_else(|| E::missing_field("name"))?;
        let meta_type = self.meta_type.take().ok_or_else(|| E::missing_field("meta-type"))?;
        let features = self.features.take().unwrap_or_default();
        let meta = match meta_type {
            MetaKind::Builtin => {
                let json_type = self.json_type.take().ok_or_else(|| E::missing_field("json-type"))?;
                SchemaMeta::Builtin(SchemaInfoBuiltin { json_type, extra: self.leftovers() })
            }
            MetaKind::Enum => {
                let values = self.values.take().ok_or_else(|| E::missing_field("values"))?;
                let members = self.members.take().unwrap_or_default();
                // Checked first, so the conversion cannot fail (no `Result` to thread through).
                if members.iter().any(|m| m.name.is_none()) {
                    return Err(E::missing_field("name"));
                }
                let members = members
                    .into_iter()
                    .map(|m| SchemaInfoEnumMember {
                        name: m.name.unwrap_or_default(),
                        features: m.features.unwrap_or_default(),
                    })
                    .collect();
                SchemaMeta::Enum(SchemaInfoEnum { values, members, extra: self.leftovers() })
            }
            MetaKind::Array => {
                let element_type =
                    self.element_type.take().ok_or_else(|| E::missing_field("element-type"))?;
                SchemaMeta::Array(SchemaInfoArray { element_type, extra: self.leftovers() })
            }
            MetaKind::Object => {
                let members = self.members.take().ok_or_else(|| E::missing_field("members"))?;
                if let Some(m) = members.iter().find(|m| m.name.is_none() || m.kind.is_none()) {
                    return Err(E::missing_field(if m.name.is_none() { "name" } else { "type" }));
                }
                // Same size and layout: the collect reuses the members' allocation.
                let members = members
                    .into_iter()
                    .map(|m| SchemaInfoObjectMember {
                        name: m.name.unwrap_or_default(),
                        kind: m.kind.unwrap_or_default(),
                        default: m.default,
                        features: m.features.unwrap_or_default(),
                    })
                    .collect();
                let tag = self.tag.take();
                let variants = self.variants.take().unwrap_or_default();
                SchemaMeta::Object(SchemaInfoObject { members, tag, variants, extra: self.leftovers() })
            }
            MetaKind::Alternate => {
                let members = self.members.take().ok_or_else(|| E::missing_field("members"))?;
                if members.iter().any(|m| m.kind.is_none()) {
                    return Err(E::missing_field("type"));
                }
                let members = members
                    .into_iter()
                    .map(|m| SchemaInfoAlternateMember { kind: m.kind.unwrap_or_default() })
                    .collect();
                SchemaMeta::Alternate(SchemaInfoAlternate { members, extra: self.leftovers() })
            }
            MetaKind::Command => {
                let arg_type = self.arg_type.take().ok_or_else(|| E::missing_field("arg-type"))?;
                let ret_type = self.ret_type.take().ok_or_else(|| E::missing_field("ret-type"))?;
                let allow_oob = self.allow_oob.take().unwrap_or(false);
                SchemaMeta::Command(SchemaInfoCommand {
                    arg_type,
                    ret_type,
                    allow_oob,
                    extra: self.leftovers(),
                })
            }
            MetaKind::Event => {
                let arg_type = self.arg_type.take().ok_or_else(|| E::missing_field("arg-type"))?;
                SchemaMeta::Event(SchemaInfoEvent { arg_type, extra: self.leftovers() })
            }
            MetaKind::Other(meta_type) => SchemaMeta::Other { meta_type, members: self.leftovers() },
        };
        Ok(SchemaInfo { name, features, meta })
    }

    /// `extra`, plus every member no meta-type took (none, from QEMU 7.2: only such entries
    /// pay for turning typed fields back into JSON).
    fn leftovers(&mut self) -> Map<String, Value> {
        let mut extra = std::mem::take(&mut self.extra);
        let mut put = |key: &str, v: Option<Value>| {
            if let Some(v) = v {
                extra.insert(key.to_owned(), v);
            }
        };
        let text = |v: SchemaStr| Value::String(v.into_string());
        let strings = |v: Vec<SchemaStr>| Value::Array(v.into_iter().map(text).collect());
        put("json-type", self.json_type.take().map(text));
        put("values", self.values.take().map(strings));
        put("members", self.members.take().as_ref().map(erased::ToValue::to_value));
        put("element-type", self.element_type.take().map(text));
        put("tag", self.tag.take().map(text));
        put("variants", self.variants.take().as_ref().map(erased::ToValue::to_value));
        put("arg-type", self.arg_type.take().map(text));
        put("ret-type", self.ret_type.take().map(text));
        put("allow-oob", self.allow_oob.take().map(Value::Bool));
        extra
    }
}

mod erased {
    /// Turns a typed field back into JSON, for members kept as unknown ones.
    pub trait ToValue {
        fn to_value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> ToValue for T {
        fn to_value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// The `meta-type`, read without allocating unless it is one this crate does not know.
enum MetaKind {
    Builtin,
    Enum,
    Array,
    Object,
    Alternate,
    Command,
    Event,
    Other(String),
}

impl From<&str> for MetaKind {
    fn from(v: &str) -> Self {
        match v {
            "builtin" => MetaKind::Builtin,
            "enum" => MetaKind::Enum,
            "array" => MetaKind::Array,
            "object" => MetaKind::Object,
            "alternate" => MetaKind::Alternate,
            "command" => MetaKind::Command,
            "event" => MetaKind::Event,
            other => MetaKind::Other(other.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for MetaKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::from_wire_str(d, "a meta-type string")
    }
}

/// A member of an enum, object or alternate entry, before the entry's meta-type is known.
#[derive(Serialize)]
struct FlatMember {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<SchemaStr>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<SchemaStr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    features: Option<Vec<SchemaStr>>,
}

impl<'de> Deserialize<'de> for FlatMember {
    /// By hand, like the entry: keys matched without allocating, unknown ones skipped.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FlatMember;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a schema member object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatMember, A::Error> {
                use serde::de::Error;
                let mut m = FlatMember { name: None, kind: None, default: None, features: None };
                while let Some(key) = map.next_key::<MemberKey>()? {
                    match key {
                        MemberKey::Name if m.name.is_some() => return Err(A::Error::duplicate_field("name")),
                        MemberKey::Name => m.name = map.next_value()?,
                        MemberKey::Kind if m.kind.is_some() => return Err(A::Error::duplicate_field("type")),
                        MemberKey::Kind => m.kind = map.next_value()?,
                        // "Present but null" stays apart from "absent": `Some(Null)`.
                        MemberKey::Default if m.default.is_some() => {
                            return Err(A::Error::duplicate_field("default"))
                        }
                        MemberKey::Default => m.default = Some(map.next_value()?),
                        MemberKey::Features if m.features.is_some() => {
                            return Err(A::Error::duplicate_field("features"))
                        }
                        MemberKey::Features => m.features = map.next_value()?,
                        MemberKey::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

enum MemberKey {
    Name,
    Kind,
    Default,
    Features,
    Other,
}

impl From<&str> for MemberKey {
    fn from(v: &str) -> Self {
        match v {
            "name" => MemberKey::Name,
            "type" => MemberKey::Kind,
            "default" => MemberKey::Default,
            "features" => MemberKey::Features,
            _ => MemberKey::Other,
        }
    }
}

impl<'de> Deserialize<'de> for MemberKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::from_wire_str(d, "a member name")
    }
}

enum FlatKey {
    Name,
    MetaType,
    Features,
    JsonType,
    Values,
    Members,
    ElementType,
    Tag,
    Variants,
    ArgType,
    RetType,
    AllowOob,
    Other(String),
}

impl From<&str> for FlatKey {
    fn from(v: &str) -> Self {
        match v {
            "name" => FlatKey::Name,
            "meta-type" => FlatKey::MetaType,
            "features" => FlatKey::Features,
            "json-type" => FlatKey::JsonType,
            "values" => FlatKey::Values,
            "members" => FlatKey::Members,
            "element-type" => FlatKey::ElementType,
            "tag" => FlatKey::Tag,
            "variants" => FlatKey::Variants,
            "arg-type" => FlatKey::ArgType,
            "ret-type" => FlatKey::RetType,
            "allow-oob" => FlatKey::AllowOob,
            other => FlatKey::Other(other.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for FlatKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::from_wire_str(d, "a member name")
    }
}

impl Serialize for SchemaInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let body = match &self.meta {
            SchemaMeta::Builtin(v) => serde_json::to_value(v),
            SchemaMeta::Enum(v) => serde_json::to_value(v),
            SchemaMeta::Array(v) => serde_json::to_value(v),
            SchemaMeta::Object(v) => serde_json::to_value(v),
            SchemaMeta::Alternate(v) => serde_json::to_value(v),
            SchemaMeta::Command(v) => serde_json::to_value(v),
            SchemaMeta::Event(v) => serde_json::to_value(v),
            SchemaMeta::Other { members, .. } => Ok(Value::Object(members.clone())),
        }
        .map_err(S::Error::custom)?;
        let mut map = Map::new();
        map.insert("name".into(), Value::String(self.name.to_string()));
        map.insert("meta-type".into(), Value::String(self.meta_type().to_owned()));
        if !self.features.is_empty() {
            map.insert("features".into(), self.features.iter().map(|f| Value::from(f.as_str())).collect());
        }
        if let Value::Object(body) = body {
            map.extend(body);
        }
        map.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(v: Value) -> Result<SchemaInfo, serde_json::Error> {
        serde_json::from_str(&v.to_string())
    }

    #[test]
    fn members_keep_optional_apart_from_required_and_skip_unknown_keys() {
        let e = one(json!({"name": "5", "meta-type": "object", "members": [
            {"name": "a", "type": "int", "default": null, "future": [1, {"x": 2}]},
            {"type": "str", "name": "b", "features": ["deprecated"]}]}))
        .unwrap();
        let SchemaMeta::Object(o) = &e.meta else { panic!("{e:?}") };
        assert_eq!(o.members[0].default, Some(Value::Null));
        assert_eq!((o.members[1].name.as_str(), o.members[1].default.as_ref()), ("b", None));
        assert_eq!(o.members[1].features, ["deprecated"]);
        assert!(o.extra.is_empty() && o.tag.is_none() && o.variants.is_empty());
    }

    #[test]
    fn bad_members_are_errors() {
        let member = |m: Value| one(json!({"name": "5", "meta-type": "object", "members": [m]}));
        let dup =
            r#"{"name": "5", "meta-type": "object", "members": [{"name": "a", "name": "b", "type": "int"}]}"#;
        assert!(serde_json::from_str::<SchemaInfo>(dup).is_err());
        assert!(member(json!({"name": "a"})).is_err()); // no type
        assert!(member(json!({"name": null, "type": "int"})).is_err());
        assert!(member(json!({"name": 1, "type": "int"})).is_err());
        assert!(member(json!(["a", "int"])).is_err());
        assert!(one(json!({"name": "x", "meta-type": 7})).is_err());
        assert!(one(json!({"meta-type": "event", "arg-type": "0"})).is_err());
    }

    #[test]
    fn members_of_another_meta_type_are_kept_as_unknown() {
        let e = one(json!({"name": "e", "meta-type": "event", "arg-type": "0", "ret-type": "1",
                           "values": ["a"], "members": [{"name": "m", "type": "int"}]}))
        .unwrap();
        let SchemaMeta::Event(ev) = &e.meta else { panic!("{e:?}") };
        assert_eq!(ev.extra["ret-type"], "1");
        assert_eq!(ev.extra["values"], json!(["a"]));
        assert_eq!(ev.extra["members"], json!([{"name": "m", "type": "int"}]));
        let other = one(json!({"name": "z", "meta-type": "hologram", "tag": "t"})).unwrap();
        assert!(matches!(&other.meta, SchemaMeta::Other { meta_type, members }
            if meta_type == "hologram" && members["tag"] == "t"));
    }
}
