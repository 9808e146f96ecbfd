//! Introspection (`qapi/introspect.json`): `query-qmp-schema`.
//!
//! QEMU masks type names as numbers (`"arg-type": "43"`); command and event names are real.
//! Look entries up by name to follow a command's `arg-type` to its members.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

unit_command! {
    /// Returns the QMP schema: every command, event and type the server knows
    /// (`query-qmp-schema`).
    QueryQmpSchema, "query-qmp-schema", Vec<SchemaInfo>
}

/// One entry of the schema (QAPI `SchemaInfo`): a name, its features, and what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaInfo {
    /// The entity's name (a number for types, which QEMU masks).
    pub name: String,
    /// Feature flags such as `deprecated` or `unstable`.
    pub features: Vec<String>,
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
    pub json_type: String,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An enumeration (`meta-type: enum`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoEnum {
    /// Its values, in order.
    pub values: Vec<String>,
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
    pub name: String,
    /// Its features.
    #[serde(default)]
    pub features: Vec<String>,
}

/// An array type (`meta-type: array`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoArray {
    /// The element type's name.
    #[serde(rename = "element-type")]
    pub element_type: String,
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
    pub tag: Option<String>,
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
    pub name: String,
    /// Its type's name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Present (always `null` today) when the member is optional; see
    /// [`is_optional`](Self::is_optional).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Its features.
    #[serde(default)]
    pub features: Vec<String>,
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
    pub case: String,
    /// Its type's name.
    #[serde(rename = "type")]
    pub kind: String,
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
    pub kind: String,
}

/// A command (`meta-type: command`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaInfoCommand {
    /// The name of its arguments' object type.
    #[serde(rename = "arg-type")]
    pub arg_type: String,
    /// The name of its return type.
    #[serde(rename = "ret-type")]
    pub ret_type: String,
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
    pub arg_type: String,
    /// Members this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for SchemaInfo {
    /// One pass over the entry (no intermediate `Value` tree): every member QEMU sends is read
    /// straight into its typed field, whatever the order (`meta-type` is rarely first); only
    /// members this crate does not know are kept as `Value`s.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let flat = Flat::deserialize(d)?;
        let Flat {
            name,
            meta_type,
            features,
            json_type,
            values,
            members,
            element_type,
            tag,
            variants,
            arg_type,
            ret_type,
            allow_oob,
            mut extra,
        } = flat;
        let name = name.ok_or_else(|| D::Error::missing_field("name"))?;
        let meta_type = meta_type.ok_or_else(|| D::Error::missing_field("meta-type"))?;
        let features = features.unwrap_or_default();
        // Members that belong to another meta-type are kept as unknown ones, as before.
        let mut stray = |key: &str, v: Option<Value>| {
            if let Some(v) = v {
                extra.insert(key.to_owned(), v);
            }
        };
        let to_v = |v: &dyn erased::ToValue| v.to_value();
        let meta = match meta_type.as_str() {
            "builtin" => {
                stray("values", values.as_ref().map(|v| to_v(v)));
                stray("members", members.as_ref().map(|v| to_v(v)));
                stray("element-type", element_type.as_ref().map(|v| to_v(v)));
                stray("tag", tag.as_ref().map(|v| to_v(v)));
                stray("variants", variants.as_ref().map(|v| to_v(v)));
                stray("arg-type", arg_type.as_ref().map(|v| to_v(v)));
                stray("ret-type", ret_type.as_ref().map(|v| to_v(v)));
                stray("allow-oob", allow_oob.map(Value::Bool));
                let json_type = json_type.ok_or_else(|| D::Error::missing_field("json-type"))?;
                SchemaMeta::Builtin(SchemaInfoBuiltin { json_type, extra })
            }
            "enum" => {
                stray("json-type", json_type.map(Value::String));
                stray("element-type", element_type.map(Value::String));
                stray("tag", tag.map(Value::String));
                stray("variants", variants.as_ref().map(|v| to_v(v)));
                stray("arg-type", arg_type.map(Value::String));
                stray("ret-type", ret_type.map(Value::String));
                stray("allow-oob", allow_oob.map(Value::Bool));
                let values = values.ok_or_else(|| D::Error::missing_field("values"))?;
                let members = members
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| {
                        let name = m.name.ok_or_else(|| D::Error::missing_field("name"))?;
                        Ok(SchemaInfoEnumMember { name, features: m.features.unwrap_or_default() })
                    })
                    .collect::<Result<_, D::Error>>()?;
                SchemaMeta::Enum(SchemaInfoEnum { values, members, extra })
            }
            "array" => {
                stray("json-type", json_type.map(Value::String));
                stray("values", values.as_ref().map(|v| to_v(v)));
                stray("members", members.as_ref().map(|v| to_v(v)));
                stray("tag", tag.map(Value::String));
                stray("variants", variants.as_ref().map(|v| to_v(v)));
                stray("arg-type", arg_type.map(Value::String));
                stray("ret-type", ret_type.map(Value::String));
                stray("allow-oob", allow_oob.map(Value::Bool));
                let element_type = element_type.ok_or_else(|| D::Error::missing_field("element-type"))?;
                SchemaMeta::Array(SchemaInfoArray { element_type, extra })
            }
            "object" => {
                stray("json-type", json_type.map(Value::String));
                stray("values", values.as_ref().map(|v| to_v(v)));
                stray("element-type", element_type.map(Value::String));
                stray("arg-type", arg_type.map(Value::String));
                stray("ret-type", ret_type.map(Value::String));
                stray("allow-oob", allow_oob.map(Value::Bool));
                let members = members
                    .ok_or_else(|| D::Error::missing_field("members"))?
                    .into_iter()
                    .map(|m| {
                        Ok(SchemaInfoObjectMember {
                            name: m.name.ok_or_else(|| D::Error::missing_field("name"))?,
                            kind: m.kind.ok_or_else(|| D::Error::missing_field("type"))?,
                            default: m.default,
                            features: m.features.unwrap_or_default(),
                        })
                    })
                    .collect::<Result<_, D::Error>>()?;
                SchemaMeta::Object(SchemaInfoObject {
                    members,
                    tag,
                    variants: variants.unwrap_or_default(),
                    extra,
                })
            }
            "alternate" => {
                stray("json-type", json_type.map(Value::String));
                stray("values", values.as_ref().map(|v| to_v(v)));
                stray("element-type", element_type.map(Value::String));
                stray("tag", tag.map(Value::String));
                stray("variants", variants.as_ref().map(|v| to_v(v)));
                stray("arg-type", arg_type.map(Value::String));
                stray("ret-type", ret_type.map(Value::String));
                stray("allow-oob", allow_oob.map(Value::Bool));
                let members = members
                    .ok_or_else(|| D::Error::missing_field("members"))?
                    .into_iter()
                    .map(|m| {
                        Ok(SchemaInfoAlternateMember {
                            kind: m.kind.ok_or_else(|| D::Error::missing_field("type"))?,
                        })
                    })
                    .collect::<Result<_, D::Error>>()?;
                SchemaMeta::Alternate(SchemaInfoAlternate { members, extra })
            }
            "command" => {
                stray("json-type", json_type.map(Value::String));
                stray("values", values.as_ref().map(|v| to_v(v)));
                stray("members", members.as_ref().map(|v| to_v(v)));
                stray("element-type", element_type.map(Value::String));
                stray("tag", tag.map(Value::String));
                stray("variants", variants.as_ref().map(|v| to_v(v)));
                let arg_type = arg_type.ok_or_else(|| D::Error::missing_field("arg-type"))?;
                let ret_type = ret_type.ok_or_else(|| D::Error::missing_field("ret-type"))?;
                SchemaMeta::Command(SchemaInfoCommand {
                    arg_type,
                    ret_type,
                    allow_oob: allow_oob.unwrap_or(false),
                    extra,
                })
            }
            "event" => {
                stray("json-type", json_type.map(Value::String));
                stray("values", values.as_ref().map(|v| to_v(v)));
                stray("members", members.as_ref().map(|v| to_v(v)));
                stray("element-type", element_type.map(Value::String));
                stray("tag", tag.map(Value::String));
                stray("variants", variants.as_ref().map(|v| to_v(v)));
                stray("ret-type", ret_type.map(Value::String));
                stray("allow-oob", allow_oob.map(Value::Bool));
                let arg_type = arg_type.ok_or_else(|| D::Error::missing_field("arg-type"))?;
                SchemaMeta::Event(SchemaInfoEvent { arg_type, extra })
            }
            _ => {
                stray("json-type", json_type.map(Value::String));
                stray("values", values.as_ref().map(|v| to_v(v)));
                stray("members", members.as_ref().map(|v| to_v(v)));
                stray("element-type", element_type.map(Value::String));
                stray("tag", tag.map(Value::String));
                stray("variants", variants.as_ref().map(|v| to_v(v)));
                stray("arg-type", arg_type.map(Value::String));
                stray("ret-type", ret_type.map(Value::String));
                stray("allow-oob", allow_oob.map(Value::Bool));
                SchemaMeta::Other { meta_type, members: extra }
            }
        };
        Ok(SchemaInfo { name, features, meta })
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

/// Every member a schema entry may have, read in one pass.
#[derive(Default)]
struct Flat {
    name: Option<String>,
    meta_type: Option<String>,
    features: Option<Vec<String>>,
    json_type: Option<String>,
    values: Option<Vec<String>>,
    members: Option<Vec<FlatMember>>,
    element_type: Option<String>,
    tag: Option<String>,
    variants: Option<Vec<SchemaInfoObjectVariant>>,
    arg_type: Option<String>,
    ret_type: Option<String>,
    allow_oob: Option<bool>,
    extra: Map<String, Value>,
}

/// A member of an enum, object or alternate entry, before the entry's meta-type is known.
#[derive(Deserialize, Serialize)]
struct FlatMember {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    features: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Flat;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a SchemaInfo object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Flat, A::Error> {
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
                Ok(f)
            }
        }
        d.deserialize_map(V)
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

impl<'de> Deserialize<'de> for FlatKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KV;
        impl<'de> serde::de::Visitor<'de> for KV {
            type Value = FlatKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FlatKey, E> {
                Ok(match v {
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
                })
            }
        }
        d.deserialize_identifier(KV)
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
        map.insert("name".into(), Value::String(self.name.clone()));
        map.insert("meta-type".into(), Value::String(self.meta_type().to_owned()));
        if !self.features.is_empty() {
            map.insert("features".into(), self.features.clone().into());
        }
        if let Value::Object(body) = body {
            map.extend(body);
        }
        map.serialize(s)
    }
}
