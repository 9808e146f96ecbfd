//! Declared argument types: checked against each request as QEMU's QAPI input visitor checks
//! them (same order, same error texts), and rendered for `query-qmp-schema`.
//!
//! ```
//! use qmp_server::schema::{Ty, Struct};
//!
//! let args = Struct::new()
//!     .member("device", Ty::Str)
//!     .optional("speed", Ty::Int)
//!     .optional("mode", Ty::enumeration("Mode", ["fast", "slow"]));
//! let ok = serde_json::json!({"device": "d0", "speed": 5});
//! assert!(args.check(ok.as_object().unwrap()).is_ok());
//! let bad = serde_json::json!({"device": 5});
//! assert_eq!(
//!     args.check(bad.as_object().unwrap()).unwrap_err().desc,
//!     "Invalid parameter type for 'device', expected: string"
//! );
//! ```

use std::sync::Arc;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Map, Value};

/// The type of an argument (or of a return value, for introspection).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Ty {
    /// A JSON string (QAPI `str`).
    Str,
    /// A signed integer (QAPI `int`).
    Int,
    /// An unsigned integer (QAPI `size`/`uint64`); QEMU also accepts negative numbers here.
    Uint,
    /// An unsigned integer of 8, 16 or 32 bits (QAPI `uint8`...`uint32`): as [`Ty::Uint`],
    /// then refused beyond its width ("expects uint8_t"), a negative number taken as its
    /// 64-bit two's complement, as QEMU takes it.
    UintN(u8),
    /// A boolean.
    Bool,
    /// Any number (QAPI `number`).
    Number,
    /// Any JSON value (QAPI `any`).
    Any,
    /// One of a fixed set of strings.
    Enum(Arc<EnumDef>),
    /// A list of one type.
    Array(Box<Ty>),
    /// An object with declared members (and optionally a flat union's variants).
    Object(Arc<Struct>),
}

impl Ty {
    /// An enumeration named `name` (the name shows only in introspection).
    pub fn enumeration<S: Into<String>>(name: &str, values: impl IntoIterator<Item = S>) -> Ty {
        Ty::Enum(Arc::new(EnumDef {
            name: name.into(),
            values: values.into_iter().map(Into::into).collect(),
        }))
    }

    /// A list of `item`.
    pub fn array(item: Ty) -> Ty {
        Ty::Array(Box::new(item))
    }

    /// An object type.
    pub fn object(s: Struct) -> Ty {
        Ty::Object(Arc::new(s))
    }

    fn json_type(&self) -> &'static str {
        match self {
            Ty::Str | Ty::Enum(_) => "string",
            Ty::Int | Ty::Uint | Ty::UintN(_) => "int",
            Ty::Bool => "boolean",
            Ty::Number => "number",
            Ty::Any => "value",
            Ty::Array(_) => "array",
            Ty::Object(_) => "object",
        }
    }
}

/// An enumeration's values.
#[derive(Debug, Clone)]
pub struct EnumDef {
    /// The type's name.
    pub name: String,
    /// The accepted strings.
    pub values: Vec<String>,
}

/// One member of a [`Struct`].
#[derive(Debug, Clone)]
pub struct Member {
    /// The member's name.
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Whether it may be left out.
    pub optional: bool,
}

/// An object's members, in declaration order (the order QEMU checks them in). With a
/// discriminator it is a flat union: the string member `tag` selects more members.
#[derive(Debug, Clone, Default)]
pub struct Struct {
    /// The members every instance has.
    pub members: Vec<Member>,
    /// The discriminator member and the extra members for each of its values.
    pub variants: Option<(String, Vec<(String, Struct)>)>,
    /// Not checked at all: QEMU's `'gen': false` commands (`device_add`) take their
    /// arguments as they come and look at them themselves.
    pub unchecked: bool,
}

impl Struct {
    /// No members (what a command without arguments takes).
    pub fn new() -> Self {
        Struct::default()
    }

    /// Adds a required member.
    pub fn member(mut self, name: &str, ty: Ty) -> Self {
        self.members.push(Member { name: name.into(), ty, optional: false });
        self
    }

    /// Adds an optional member.
    pub fn optional(mut self, name: &str, ty: Ty) -> Self {
        self.members.push(Member { name: name.into(), ty, optional: true });
        self
    }

    /// Makes this a flat union on the enum member `tag`, with `variants[value]` added.
    pub fn union(mut self, tag: &str, variants: Vec<(String, Struct)>) -> Self {
        self.variants = Some((tag.into(), variants));
        self
    }

    /// Leaves the arguments unchecked (they are still declared).
    pub fn unchecked(mut self) -> Self {
        self.unchecked = true;
        self
    }

    /// Checks `args` as QEMU does: members in order, then any unexpected member.
    pub fn check(&self, args: &Map<String, Value>) -> Result<(), QmpError> {
        if self.unchecked {
            return Ok(());
        }
        self.check_at(args, "")
    }

    /// [`check`](Self::check) for an object found at `path` within the arguments (members
    /// are named `path.member` in errors).
    pub(crate) fn check_at(&self, args: &Map<String, Value>, path: &str) -> Result<(), QmpError> {
        if self.unchecked {
            return Ok(());
        }
        let mut path = path.to_string();
        check_struct(self, args, &mut path).map_err(|desc| QmpError::new(ErrorClass::GenericError, desc))
    }
}

fn full_name(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn check_struct(s: &Struct, obj: &Map<String, Value>, path: &mut String) -> Result<(), String> {
    let mut seen = 0usize;
    let visit = |st: &Struct, path: &mut String, seen: &mut usize| -> Result<(), String> {
        for m in &st.members {
            match obj.get(&m.name) {
                Some(v) => {
                    *seen += 1;
                    let len = path.len();
                    *path = full_name(path, &m.name);
                    let r = check_value(&m.ty, v, &m.name, path);
                    path.truncate(len);
                    r?;
                }
                None if m.optional => {}
                None => return Err(format!("Parameter '{}' is missing", full_name(path, &m.name))),
            }
        }
        Ok(())
    };
    visit(s, path, &mut seen)?;
    if let Some((tag, variants)) = &s.variants {
        if let Some(Value::String(t)) = obj.get(tag) {
            if let Some((_, extra)) = variants.iter().find(|(v, _)| v == t) {
                visit(extra, path, &mut seen)?;
            }
        }
    }
    if seen < obj.len() {
        let known = |k: &str| {
            s.members.iter().any(|m| m.name == k)
                || s.variants.as_ref().is_some_and(|(tag, vs)| {
                    let t = obj.get(tag).and_then(Value::as_str);
                    vs.iter().any(|(v, st)| Some(v.as_str()) == t && st.members.iter().any(|m| m.name == k))
                })
        };
        if let Some(k) = first_unexpected(obj, known) {
            return Err(format!("Parameter '{}' is unexpected", full_name(path, k)));
        }
    }
    Ok(())
}

/// The unexpected member QEMU names when there are several: its input visitor keeps the
/// members not yet visited in a GLib hash table (filled in `QDict` order) and reports the
/// first one it iterates. For up to 7 members that table has 8 slots, `(g_str_hash(key) *
/// 11) % 7` as home and quadratic probing, which is emulated here; larger objects (where GLib
/// resizes) fall back to `QDict` order.
fn first_unexpected(obj: &Map<String, Value>, known: impl Fn(&str) -> bool) -> Option<&str> {
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_by_key(|k| crate::qjson::qdict_bucket(k));
    if keys.len() > 7 {
        return keys.into_iter().find(|k| !known(k));
    }
    let mut slots: [Option<&str>; 8] = [None; 8];
    for key in keys {
        let mut hash = key.bytes().fold(5381u32, |h, c| h.wrapping_mul(33).wrapping_add(c as i8 as u32));
        if hash < 2 {
            hash = 2;
        }
        let mut index = (hash.wrapping_mul(11) % 7) as usize;
        let mut step = 0;
        while slots[index].is_some() {
            step += 1;
            index = (index + step) & 7;
        }
        slots[index] = Some(key);
    }
    slots.into_iter().flatten().find(|k| !known(k))
}

/// `name` is the bare member name (QEMU names enum errors by it, `null` for list items).
fn check_value(ty: &Ty, v: &Value, name: &str, path: &mut String) -> Result<(), String> {
    let wrong = |expected: &str| format!("Invalid parameter type for '{path}', expected: {expected}");
    match ty {
        Ty::Any => Ok(()),
        Ty::Str => v.as_str().map(|_| ()).ok_or_else(|| wrong("string")),
        Ty::Bool => v.as_bool().map(|_| ()).ok_or_else(|| wrong("boolean")),
        Ty::Number => v.as_f64().map(|_| ()).ok_or_else(|| wrong("number")),
        Ty::Int => match v {
            Value::Number(n) if n.is_i64() => Ok(()),
            _ => Err(wrong("integer")),
        },
        Ty::Uint => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
            // QEMU's input visitor names the unsigned type for any other value too.
            _ => Err(format!("Parameter '{path}' expects uint64")),
        },
        Ty::UintN(bits) => {
            let value = match v {
                Value::Number(n) => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)),
                _ => None,
            };
            match value {
                Some(x) if x >> bits == 0 => Ok(()),
                Some(_) => Err(format!("Parameter '{path}' expects uint{bits}_t")),
                None => Err(format!("Parameter '{path}' expects uint64")),
            }
        }
        Ty::Enum(def) => {
            let s = v.as_str().ok_or_else(|| wrong("string"))?;
            if def.values.iter().any(|x| x == s) {
                Ok(())
            } else {
                Err(format!("Parameter '{name}' does not accept value '{s}'"))
            }
        }
        Ty::Array(item) => {
            let items = v.as_array().ok_or_else(|| wrong("array"))?;
            for (i, x) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let r = check_value(item, x, "null", path);
                path.truncate(len);
                r?;
            }
            Ok(())
        }
        Ty::Object(s) => {
            let obj = v.as_object().ok_or_else(|| wrong("object"))?;
            check_struct(s, obj, path)
        }
    }
}

/// Builds `query-qmp-schema`'s entries, masking type names as numbers like QEMU.
#[derive(Default)]
pub(crate) struct SchemaWriter {
    pub entries: Vec<Value>,
    types: Vec<Value>,
    next: usize,
    builtins: Vec<&'static str>,
    empty_done: bool,
}

impl SchemaWriter {
    pub fn command(&mut self, name: &str, args: &Struct, ret: &Ty, allow_oob: bool) {
        let arg_type = self.struct_type(args);
        let ret_type = self.type_name(ret);
        let mut e = json!({"name": name, "meta-type": "command", "arg-type": arg_type, "ret-type": ret_type});
        if allow_oob {
            e["allow-oob"] = Value::Bool(true);
        }
        self.entries.push(e);
    }

    pub fn event(&mut self, name: &str, data: &Struct) {
        let arg_type = self.struct_type(data);
        self.entries.push(json!({"name": name, "meta-type": "event", "arg-type": arg_type}));
    }

    pub fn finish(mut self) -> Vec<Value> {
        self.entries.append(&mut self.types);
        self.entries
    }

    fn fresh(&mut self) -> String {
        // "0" is the empty object.
        self.next = self.next.max(1);
        let n = self.next;
        self.next += 1;
        n.to_string()
    }

    fn struct_type(&mut self, s: &Struct) -> String {
        if s.members.is_empty() && s.variants.is_none() {
            // Like QEMU, every empty object is type "0".
            if !self.empty_done {
                self.empty_done = true;
                self.types.push(json!({"name": "0", "meta-type": "object", "members": []}));
            }
            return "0".into();
        }
        let name = self.fresh();
        let members: Vec<Value> = s
            .members
            .iter()
            .map(|m| {
                let ty = self.type_name(&m.ty);
                if m.optional {
                    json!({"name": m.name, "type": ty, "default": null})
                } else {
                    json!({"name": m.name, "type": ty})
                }
            })
            .collect();
        let mut e = json!({"name": name, "meta-type": "object", "members": members});
        if let Some((tag, variants)) = &s.variants {
            let vs: Vec<Value> = variants
                .iter()
                .map(|(case, st)| json!({"case": case, "type": self.struct_type(st)}))
                .collect();
            e["tag"] = json!(tag);
            e["variants"] = Value::Array(vs);
        }
        self.types.push(e);
        name
    }

    fn type_name(&mut self, ty: &Ty) -> String {
        match ty {
            Ty::Str | Ty::Int | Ty::Uint | Ty::UintN(_) | Ty::Bool | Ty::Number | Ty::Any => {
                let (name, json_type) = match ty {
                    Ty::Str => ("str", "string"),
                    Ty::Int => ("int", "int"),
                    // QEMU shows every integer type as "int".
                    Ty::Uint | Ty::UintN(_) => ("int", "int"),
                    Ty::Bool => ("bool", "boolean"),
                    Ty::Number => ("number", "number"),
                    _ => ("any", "value"),
                };
                if !self.builtins.contains(&name) {
                    self.builtins.push(name);
                    self.types.push(json!({"name": name, "meta-type": "builtin", "json-type": json_type}));
                }
                name.to_string()
            }
            Ty::Enum(def) => {
                let name = self.fresh();
                let members: Vec<Value> = def.values.iter().map(|v| json!({"name": v})).collect();
                self.types.push(
                    json!({"name": name, "meta-type": "enum", "values": def.values, "members": members}),
                );
                name
            }
            Ty::Array(item) => {
                let element = self.type_name(item);
                let name = format!("[{element}]");
                self.types.push(json!({"name": name, "meta-type": "array", "element-type": element}));
                name
            }
            Ty::Object(s) => self.struct_type(s),
        }
    }

    /// The JSON type a `Ty` is documented as (used by `query-commands` tooling).
    #[allow(dead_code)]
    pub fn json_type(ty: &Ty) -> &'static str {
        ty.json_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Struct {
        Struct::new().optional("enable", Ty::array(Ty::enumeration("QMPCapability", ["oob"])))
    }

    fn check(s: &Struct, v: Value) -> String {
        s.check(v.as_object().unwrap()).unwrap_err().desc
    }

    #[test]
    fn errors_match_qemu() {
        assert_eq!(
            check(&caps(), json!({"enable": ["foo"]})),
            "Parameter 'null' does not accept value 'foo'"
        );
        assert_eq!(
            check(&caps(), json!({"enable": "oob"})),
            "Invalid parameter type for 'enable', expected: array"
        );
        assert_eq!(
            check(&caps(), json!({"enable": [1]})),
            "Invalid parameter type for 'enable[0]', expected: string"
        );
        assert_eq!(check(&caps(), json!({"x": [1]})), "Parameter 'x' is unexpected");
        let mig = Struct::new().member(
            "capabilities",
            Ty::array(Ty::object(
                Struct::new()
                    .member("capability", Ty::enumeration("Cap", ["xbzrle"]))
                    .member("state", Ty::Bool),
            )),
        );
        assert_eq!(
            check(&mig, json!({"capabilities": [{"capability": "xbzrle", "state": "yes"}]})),
            "Invalid parameter type for 'capabilities[0].state', expected: boolean"
        );
        assert_eq!(
            check(&mig, json!({"capabilities": [{"capability": "nope", "state": true}]})),
            "Parameter 'capability' does not accept value 'nope'"
        );
        assert_eq!(check(&mig, json!({})), "Parameter 'capabilities' is missing");
    }
}
