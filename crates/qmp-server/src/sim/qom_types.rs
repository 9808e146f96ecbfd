//! QOM type introspection: `qom-list-types`, `qom-list-properties` and
//! `device-list-properties`, answered from facts read off QEMU 7.2 (`facts/qom/*.json` of the crate, one
//! file per program, written and checked both ways against the live binaries by the test
//! `differential_qom_types`).
//!
//! The facts hold every type the binary registers, in the order `qom-list-types` lists
//! them (QEMU walks its type table, a GLib hash table, and prepends each type: the order is
//! the binary's, so it is stored rather than derived), each with its parent, whether it is
//! abstract, and the interfaces it adds to its parent's. So every `qom-list-types` answer
//! is QEMU's, filtered or not, and so is every error of the other two commands, for any type
//! name. Properties are stored only for the types the simulator has (its QOM tree's, the
//! objects `object-add` makes, the device models `device_add` knows, and their ancestors);
//! for another type that QEMU has, the simulator says it does not know them.
//!
//! Descriptions are left out: a property's `description` is QEMU's own prose, which the
//! repository does not copy, so the simulator's property lists have no `description`
//! members (the differential test removes exactly those from QEMU's answers).
//!
//! QEMU's `implements` filter, as `object_class_dynamic_cast` decides it: a type with
//! interfaces matches an interface name when exactly one of its interfaces is that interface
//! or below it (two is "ambiguous" and no match: `implements: "interface"` lists only the
//! types with one interface, and the interfaces themselves); any other name matches the type
//! and its descendants; an unknown name matches nothing.

use std::collections::HashMap;
use std::sync::OnceLock;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Map, Value};

use super::Like;
use crate::server::{Args, Reply};

const SYSTEM_FACTS: &str = include_str!("../../facts/qom/qemu-system-x86_64.json");
const DAEMON_FACTS: &str = include_str!("../../facts/qom/qemu-storage-daemon.json");

/// One registered type.
#[derive(Debug)]
struct TypeFact {
    name: String,
    parent: Option<String>,
    is_abstract: bool,
    /// The interfaces it has that its parent has not.
    interfaces: Vec<String>,
}

/// A program's QOM types, and the properties of the simulator's.
#[derive(Debug)]
pub(crate) struct QomTypes {
    /// In `qom-list-types` order.
    types: Vec<TypeFact>,
    index: HashMap<String, usize>,
    /// `qom-list-properties` answers, without descriptions, by type.
    properties: Map<String, Value>,
    /// `device-list-properties` answers, without descriptions, by type.
    device_properties: Map<String, Value>,
}

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

impl QomTypes {
    /// The facts of `like`'s program, read once.
    pub fn of(like: Like) -> &'static QomTypes {
        static SYSTEM: OnceLock<QomTypes> = OnceLock::new();
        static DAEMON: OnceLock<QomTypes> = OnceLock::new();
        match like {
            Like::QemuSystem => SYSTEM.get_or_init(|| QomTypes::parse(SYSTEM_FACTS)),
            Like::StorageDaemon => DAEMON.get_or_init(|| QomTypes::parse(DAEMON_FACTS)),
        }
    }

    /// Reads a facts file. Panics on a malformed one: the files are the test's output and
    /// are read by every test that starts a simulator.
    fn parse(text: &str) -> QomTypes {
        let mut v: Value = serde_json::from_str(text).expect("the QOM facts are JSON");
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
        };
        let types: Vec<TypeFact> = v["types"]
            .as_array()
            .expect("the QOM facts list types")
            .iter()
            .map(|t| TypeFact {
                name: t[0].as_str().expect("a type has a name").to_string(),
                parent: t[1].as_str().map(str::to_string),
                is_abstract: t[2] == true,
                interfaces: strings(&t[3]),
            })
            .collect();
        let index = types.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let mut take = |key: &str| match v[key].take() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let (properties, device_properties) = (take("properties"), take("device-properties"));
        QomTypes { types, index, properties, device_properties }
    }

    fn get(&self, name: &str) -> Option<&TypeFact> {
        self.index.get(name).map(|&i| &self.types[i])
    }

    /// Whether the program registers type `name`.
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// `name` and its ancestors, nearest first.
    fn ancestors<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a TypeFact> + 'a {
        let mut cur = self.get(name);
        std::iter::from_fn(move || {
            let t = cur?;
            cur = t.parent.as_deref().and_then(|p| self.get(p));
            Some(t)
        })
    }

    /// Whether type `name` is `ancestor` or below it.
    pub fn is_a(&self, name: &str, ancestor: &str) -> bool {
        self.ancestors(name).any(|t| t.name == ancestor)
    }

    /// QEMU's `object_class_dynamic_cast(type, target) != NULL` (see the module's doc).
    fn implements(&self, t: &TypeFact, target: &str) -> bool {
        if !self.has(target) {
            return false;
        }
        let mut interfaces: Vec<&str> =
            self.ancestors(&t.name).flat_map(|a| a.interfaces.iter().map(String::as_str)).collect();
        interfaces.sort_unstable();
        interfaces.dedup();
        if !interfaces.is_empty() && self.is_a(target, "interface") {
            interfaces.iter().filter(|i| self.is_a(i, target)).count() == 1
        } else {
            self.is_a(&t.name, target)
        }
    }

    /// The type of device `model`'s property `name` (`bool`, `uint32`, `str`...), if
    /// `device-list-properties` lists it.
    pub fn device_property_type(&self, model: &str, name: &str) -> Option<&str> {
        let list = self.device_properties.get(model)?.as_array()?;
        list.iter().find(|p| p["name"] == name).map(|p| p["type"].as_str().unwrap_or_default())
    }

    /// `qom-list-types`.
    pub fn list_types(&self, args: &Args) -> Reply {
        let implements = args.get("implements").and_then(Value::as_str);
        let with_abstract = args.get("abstract").and_then(Value::as_bool).unwrap_or(false);
        let list = self
            .types
            .iter()
            .filter(|t| with_abstract || !t.is_abstract)
            .filter(|t| implements.is_none_or(|i| self.implements(t, i)))
            .map(|t| {
                // ObjectTypeInfo's members in their declared order (QEMU's insertion order).
                let mut info = Map::new();
                info.insert("name".into(), json!(t.name));
                if t.is_abstract {
                    info.insert("abstract".into(), json!(true));
                }
                if let Some(p) = &t.parent {
                    info.insert("parent".into(), json!(p));
                }
                Value::Object(info)
            })
            .collect();
        Ok(Value::Array(list))
    }

    /// `qom-list-properties`.
    pub fn list_properties(&self, args: &Args) -> Reply {
        let name = args["typename"].as_str().unwrap_or_default();
        if !self.has(name) {
            return Err(QmpError::new(ErrorClass::DeviceNotFound, format!("Class '{name}' not found")));
        }
        if !self.is_a(name, "object") {
            return Err(generic("Parameter 'typename' expects a QOM type"));
        }
        stored(&self.properties, name)
    }

    /// `device-list-properties`.
    pub fn device_list_properties(&self, args: &Args) -> Reply {
        let name = args["typename"].as_str().unwrap_or_default();
        let Some(t) = self.get(name) else {
            return Err(QmpError::new(ErrorClass::DeviceNotFound, format!("Device '{name}' not found")));
        };
        if t.is_abstract || !self.is_a(name, "device") {
            return Err(generic("Parameter 'typename' expects a non-abstract device type"));
        }
        stored(&self.device_properties, name)
    }
}

/// The stored property list of `name`, each property's members in ObjectPropertyInfo's
/// declared order.
fn stored(lists: &Map<String, Value>, name: &str) -> Reply {
    let Some(list) = lists.get(name).and_then(Value::as_array) else {
        return Err(generic(format!("the simulator does not know the properties of type '{name}'")));
    };
    let props = list
        .iter()
        .map(|p| {
            let mut info = Map::new();
            for key in ["name", "type", "default-value"] {
                if let Some(v) = p.get(key) {
                    info.insert(key.into(), v.clone());
                }
            }
            Value::Object(info)
        })
        .collect();
    Ok(Value::Array(props))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_programs_facts_read() {
        let system = QomTypes::of(Like::QemuSystem);
        assert!(system.types.len() > 700 && system.has("none-machine"));
        assert!(system.device_properties.contains_key("virtio-blk-pci"));
        let daemon = QomTypes::of(Like::StorageDaemon);
        assert!(daemon.has("iothread") && !daemon.has("memory-backend-ram"));
        assert!(daemon.device_properties.is_empty());
    }

    #[test]
    fn the_simulators_objects_and_devices_have_their_properties() {
        let system = QomTypes::of(Like::QemuSystem);
        for t in super::super::qapi::OBJECT_TYPES {
            assert!(system.properties.contains_key(*t), "{t}");
        }
        for d in super::super::devices::DEVICE_MODELS {
            assert!(system.properties.contains_key(*d) && system.device_properties.contains_key(*d), "{d}");
        }
    }

    #[test]
    fn implements_follows_parents_and_single_interfaces() {
        let d = QomTypes::of(Like::StorageDaemon);
        let t = |n: &str| d.get(n).unwrap();
        assert!(d.implements(t("iothread"), "event-loop-base"));
        assert!(d.implements(t("iothread"), "user-creatable"));
        assert!(!d.implements(t("iothread"), "chardev"));
        assert!(!d.implements(t("iothread"), "nope"));
        // Two interfaces: `interface` is ambiguous for it.
        assert!(d.implements(t("tls-cipher-suites"), "fw_cfg-data-generator"));
        assert!(!d.implements(t("tls-cipher-suites"), "interface"));
        assert!(d.implements(t("user-creatable"), "interface"));
    }
}
