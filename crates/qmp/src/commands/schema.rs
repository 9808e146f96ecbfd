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
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = Map::<String, Value>::deserialize(d)?;
        let name = match map.remove("name") {
            Some(Value::String(s)) => s,
            _ => return Err(D::Error::missing_field("name")),
        };
        let meta_type = match map.remove("meta-type") {
            Some(Value::String(s)) => s,
            _ => return Err(D::Error::missing_field("meta-type")),
        };
        let features = match map.remove("features") {
            Some(v) => serde_json::from_value(v).map_err(D::Error::custom)?,
            None => Vec::new(),
        };
        fn variant<T: serde::de::DeserializeOwned, E: Error>(map: Map<String, Value>) -> Result<T, E> {
            serde_json::from_value(Value::Object(map)).map_err(E::custom)
        }
        let meta = match meta_type.as_str() {
            "builtin" => SchemaMeta::Builtin(variant(map)?),
            "enum" => SchemaMeta::Enum(variant(map)?),
            "array" => SchemaMeta::Array(variant(map)?),
            "object" => SchemaMeta::Object(variant(map)?),
            "alternate" => SchemaMeta::Alternate(variant(map)?),
            "command" => SchemaMeta::Command(variant(map)?),
            "event" => SchemaMeta::Event(variant(map)?),
            _ => SchemaMeta::Other { meta_type, members: map },
        };
        Ok(SchemaInfo { name, features, meta })
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
