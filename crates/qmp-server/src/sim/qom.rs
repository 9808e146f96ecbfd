//! The QOM tree of `qemu-system-x86_64 -machine none` as QEMU 7.2 shows it, with the objects
//! `object-add` makes (`iothread`, `memory-backend-ram`, `secret`) and the devices `device_add` makes:
//! `qom-list`, `qom-get`, `qom-set`, `object-add`, `object-del`. The program's registered
//! types (and `qom-list-types` and friends) are [`QomTypes`]'.
//!
//! Every type's property names, their listed types and defaults, and the error texts were
//! measured on QEMU 7.2 (`differential_qom` compares them live). An object's own properties
//! (its children) are listed in GLib's hash order ([`HashOrder`]) reversed, after its class
//! properties. What was not measurable on `-machine none` (no device can be plugged there) is
//! kept minimal: a device lists only the properties every device has.

use std::collections::BTreeMap;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use super::ghash::HashOrder;
use super::qom_types::QomTypes;
use super::Like;
use crate::server::{Args, Reply};

/// How `qom-set` treats a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No setter: "is not writable".
    ReadOnly,
    /// Set by its listed type.
    Write,
    /// Has a setter that refuses once the object exists, with this text.
    Frozen(&'static str),
    /// Has a setter whose checks the simulator does not know; it refuses.
    Unsupported,
}

use Access::{Frozen, ReadOnly, Unsupported, Write};

/// A class property: name, type as `qom-list` shows it, and how it is set. The tables are in
/// `qom-list` order.
type Prop = (&'static str, &'static str, Access);

const OBJECT: &[Prop] = &[("type", "string", ReadOnly)];

const MACHINE_NONE: &[Prop] = &[
    ("type", "string", ReadOnly),
    ("kernel", "string", Write),
    ("dt-compatible", "string", Write),
    ("boot", "BootConfiguration", Unsupported),
    ("memory", "MemorySizeConfiguration", Unsupported),
    ("initrd", "string", Write),
    ("confidential-guest-support", "link<confidential-guest-support>", Write),
    ("graphics", "bool", Write),
    ("usb", "bool", Write),
    ("firmware", "string", Write),
    ("memory-encryption", "string", Write),
    ("smp", "SMPConfiguration", Unsupported),
    ("dump-guest-core", "bool", Write),
    ("phandle-start", "int", Write),
    ("dumpdtb", "string", Write),
    ("memory-backend", "link<memory-backend>", Write),
    ("dtb", "string", Write),
    ("mem-merge", "bool", Write),
    ("append", "string", Write),
    ("suppress-vmdesc", "bool", Write),
];

const SYSBUS: &[Prop] = &[
    ("type", "string", ReadOnly),
    ("realized", "bool", Unsupported),
    ("hotplug-handler", "link<hotplug-handler>", Unsupported),
];

const MEMORY_REGION: &[Prop] = &[
    ("type", "string", ReadOnly),
    ("container", "link<memory-region>", ReadOnly),
    ("addr", "uint64", ReadOnly),
    ("size", "uint64", ReadOnly),
    ("priority", "uint32", ReadOnly),
];

const CHARDEV_SOCKET: &[Prop] =
    &[("type", "string", ReadOnly), ("connected", "bool", ReadOnly), ("addr", "SocketAddress", ReadOnly)];

const IOTHREAD: &[Prop] = &[
    ("type", "string", ReadOnly),
    ("thread-pool-min", "int", Write),
    ("aio-max-batch", "int", Write),
    ("thread-pool-max", "int", Write),
    ("poll-max-ns", "int", Write),
    ("poll-grow", "int", Write),
    ("poll-shrink", "int", Write),
];

const MEMORY_BACKEND_RAM: &[Prop] = &[
    ("type", "string", ReadOnly),
    ("share", "bool", Frozen("cannot change property value")),
    ("size", "int", Frozen("cannot change property size of memory-backend-ram ")),
    ("dump", "bool", Write),
    ("prealloc-threads", "int", Write),
    ("x-use-canonical-path-for-ramblock-id", "bool", Write),
    ("policy", "HostMemPolicy", Write),
    ("prealloc-context", "link<thread-context>", Write),
    ("prealloc", "bool", Write),
    ("reserve", "bool", Frozen("cannot change property value")),
    ("host-nodes", "int", Write),
    ("merge", "bool", Write),
];

const SECRET: &[Prop] = &[
    ("type", "string", ReadOnly),
    ("iv", "string", Unsupported),
    ("keyid", "string", Unsupported),
    ("loaded", "bool", ReadOnly),
    ("format", "QCryptoSecretFormat", Unsupported),
    ("file", "string", Unsupported),
    ("data", "string", Write),
];

/// What every device has (`qom-list-properties` of a device type starts with these).
const DEVICE: &[Prop] = &[
    ("type", "string", ReadOnly),
    ("parent_bus", "link<bus>", Unsupported),
    ("realized", "bool", Unsupported),
    ("hotplugged", "bool", Unsupported),
    ("hotpluggable", "bool", Unsupported),
];

/// `iothread`'s defaults, in the order `object-add` applies its members.
const IOTHREAD_DEFAULTS: &[(&str, i64)] = &[
    ("poll-max-ns", 32768),
    ("poll-grow", 0),
    ("poll-shrink", 0),
    ("aio-max-batch", 0),
    ("thread-pool-min", 0),
    ("thread-pool-max", 64),
];

struct Obj {
    ty: String,
    class: &'static [Prop],
    /// Own properties: the children, in GLib order.
    own: HashOrder,
    /// Each child's type.
    children: BTreeMap<String, String>,
    values: BTreeMap<&'static str, Value>,
}

impl Obj {
    fn new(ty: &str, class: &'static [Prop], values: &[(&'static str, Value)]) -> Self {
        Obj {
            ty: ty.to_string(),
            class,
            own: HashOrder::default(),
            children: BTreeMap::new(),
            values: values.iter().cloned().collect(),
        }
    }
}

/// The tree, by canonical path.
pub(crate) struct Qom {
    objs: BTreeMap<String, Obj>,
    /// Each `secret` object's loaded bytes, by id (another secret's `keyid` needs them).
    secrets: BTreeMap<String, Vec<u8>>,
    /// Objects the machine uses, which `object-del` refuses (the pc's `pc.ram`).
    in_use: Vec<String>,
    /// The program's registered types.
    types: &'static QomTypes,
}

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

fn not_found(path: &str) -> QmpError {
    QmpError::new(ErrorClass::DeviceNotFound, format!("Device '{path}' not found"))
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// QEMU's identifier rule for `id`: a letter, then letters, digits, `-`, `.`, `_`.
fn id_wellformed(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

enum Lookup {
    Found(String),
    NotFound,
    Ambiguous,
}

impl Default for Qom {
    fn default() -> Self {
        let mut q = Qom {
            objs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            in_use: Vec::new(),
            types: QomTypes::of(Like::QemuSystem),
        };
        q.objs.insert("/".into(), Obj::new("container", OBJECT, &[]));
        let machine = [
            ("kernel", json!("")),
            ("dt-compatible", json!("")),
            ("boot", json!({"order": ""})),
            ("memory", json!({"size": 0})),
            ("initrd", json!("")),
            ("confidential-guest-support", json!("")),
            ("graphics", json!(true)),
            ("usb", json!(false)),
            ("firmware", json!("")),
            ("memory-encryption", json!("")),
            (
                "smp",
                json!({"cpus": 1, "maxcpus": 1, "threads": 1, "cores": 1, "dies": 1, "sockets": 1, "clusters": 1}),
            ),
            ("dump-guest-core", json!(true)),
            ("phandle-start", json!(0)),
            ("dumpdtb", json!("")),
            ("memory-backend", json!("")),
            ("dtb", json!("")),
            ("mem-merge", json!(true)),
            ("append", json!("")),
            ("suppress-vmdesc", json!(false)),
        ];
        q.add("/", "machine", Obj::new("none-machine", MACHINE_NONE, &machine));
        q.add("/", "chardevs", Obj::new("container", OBJECT, &[]));
        for c in ["unattached", "peripheral", "peripheral-anon"] {
            q.add("/machine", c, Obj::new("container", OBJECT, &[]));
        }
        let region = |size: Value| {
            let values =
                [("container", json!("")), ("addr", json!(0)), ("size", size), ("priority", json!(0))];
            Obj::new("memory-region", MEMORY_REGION, &values)
        };
        q.add("/machine/unattached", "sysbus", Obj::new("System", SYSBUS, &sysbus_values()));
        q.add("/machine/unattached", "system[0]", region(json!(u64::MAX)));
        q.add("/machine/unattached", "io[0]", region(json!(65536)));
        let monitor = [("connected", json!(true)), ("addr", json!({"path": "", "type": "unix"}))];
        q.add("/chardevs", "compat_monitor0", Obj::new("chardev-socket", CHARDEV_SOCKET, &monitor));
        q
    }
}

impl Qom {
    /// The storage daemon's tree: no machine, only `/chardevs` and its monitor's chardev
    /// (`/objects` appears with the first object, as in QEMU).
    /// The tree of `-machine pc`: `-machine none`'s, and the machine's RAM backend
    /// (`/objects/pc.ram`, 128 MiB), which it uses.
    pub fn pc() -> Self {
        let mut q = Qom::default();
        let ram = json!({"qom-type": "memory-backend-ram", "id": "pc.ram", "size": 128u64 << 20});
        let ram = ram.as_object().cloned().unwrap_or_default();
        // The arguments are well-formed: nothing to refuse.
        let _ = q.object_add(&ram);
        q.in_use.push("pc.ram".into());
        q
    }

    pub fn storage_daemon() -> Self {
        let mut q = Qom {
            objs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            in_use: Vec::new(),
            types: QomTypes::of(Like::StorageDaemon),
        };
        q.objs.insert("/".into(), Obj::new("container", OBJECT, &[]));
        q.add("/", "chardevs", Obj::new("container", OBJECT, &[]));
        let monitor = [("connected", json!(true)), ("addr", json!({"path": "", "type": "unix"}))];
        q.add("/chardevs", "compat_monitor0", Obj::new("chardev-socket", CHARDEV_SOCKET, &monitor));
        q
    }
}

fn sysbus_values() -> [(&'static str, Value); 2] {
    [("realized", json!(false)), ("hotplug-handler", json!(""))]
}

impl Qom {
    /// The program's registered types (`qom-list-types` and friends).
    pub fn types(&self) -> &'static QomTypes {
        self.types
    }

    fn add(&mut self, parent: &str, name: &str, obj: Obj) {
        let ty = obj.ty.clone();
        self.objs.insert(child_path(parent, name), obj);
        if let Some(p) = self.objs.get_mut(parent) {
            p.own.insert(name);
            p.children.insert(name.to_string(), ty);
        }
    }

    /// Removes `parent`'s child `name` and everything below it.
    fn remove(&mut self, parent: &str, name: &str) {
        let path = child_path(parent, name);
        let below = format!("{path}/");
        self.objs.retain(|p, _| p != &path && !p.starts_with(&below));
        if let Some(p) = self.objs.get_mut(parent) {
            p.own.remove(name);
            p.children.remove(name);
        }
    }

    /// The container QEMU makes at its first use (`/objects`).
    fn objects_root(&mut self) {
        if !self.objs.contains_key("/objects") {
            self.add("/", "objects", Obj::new("container", OBJECT, &[]));
        }
    }

    /// Follows `parts` from `start` through children and set links.
    fn walk(&self, start: &str, parts: &[&str]) -> Option<String> {
        let mut cur = start.to_string();
        for part in parts {
            let obj = self.objs.get(&cur)?;
            if obj.children.contains_key(*part) {
                cur = child_path(&cur, part);
            } else if let Some(Value::String(target)) = obj.values.get(part) {
                let is_link = obj.class.iter().any(|(n, t, _)| n == part && t.starts_with("link<"));
                if !is_link || target.is_empty() {
                    return None;
                }
                cur = target.clone();
            } else {
                return None;
            }
        }
        Some(cur)
    }

    /// QEMU's path resolution: absolute from `/`, or a partial path that must end exactly
    /// one object's path.
    fn lookup(&self, path: &str) -> Lookup {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if path.starts_with('/') {
            return self.walk("/", &parts).map_or(Lookup::NotFound, Lookup::Found);
        }
        if parts.is_empty() {
            // An empty partial path ends every object's path.
            return Lookup::Ambiguous;
        }
        let mut found: Option<String> = None;
        for start in self.objs.keys() {
            if let Some(hit) = self.walk(start, &parts) {
                match &found {
                    Some(f) if *f != hit => return Lookup::Ambiguous,
                    _ => found = Some(hit),
                }
            }
        }
        found.map_or(Lookup::NotFound, Lookup::Found)
    }

    /// The object at `path`, as `qom-get` and `qom-set` look it up (ambiguous is not found).
    fn object(&self, path: &str) -> Result<(String, &Obj), QmpError> {
        match self.lookup(path) {
            Lookup::Found(p) => self.objs.get(&p).map(|o| (p, o)).ok_or_else(|| not_found(path)),
            _ => Err(not_found(path)),
        }
    }

    /// `qom-list`.
    pub fn list(&self, args: &Args) -> Reply {
        let path = args["path"].as_str().unwrap_or_default();
        let obj = match self.lookup(path) {
            Lookup::Found(p) => &self.objs[&p],
            Lookup::NotFound => return Err(not_found(path)),
            Lookup::Ambiguous => return Err(generic(format!("Path '{path}' is ambiguous"))),
        };
        let mut out: Vec<Value> = obj.class.iter().map(|(n, t, _)| json!({"name": n, "type": t})).collect();
        for name in obj.own.iter().rev() {
            let ty = &obj.children[name];
            out.push(json!({"name": name, "type": format!("child<{ty}>")}));
        }
        Ok(Value::Array(out))
    }

    /// `qom-get`.
    pub fn get(&self, args: &Args) -> Reply {
        let path = args["path"].as_str().unwrap_or_default();
        let prop = args["property"].as_str().unwrap_or_default();
        let (canonical, obj) = self.object(path)?;
        if prop == "type" {
            return Ok(json!(obj.ty));
        }
        if obj.children.contains_key(prop) {
            return Ok(json!(child_path(&canonical, prop)));
        }
        match obj.values.get(prop) {
            Some(v) => Ok(v.clone()),
            None => Err(generic(format!("Property '{}.{prop}' not found", obj.ty))),
        }
    }

    /// `qom-set`.
    pub fn set(&mut self, args: &Args) -> Reply {
        let path = args["path"].as_str().unwrap_or_default();
        let prop = args["property"].as_str().unwrap_or_default();
        let value = &args["value"];
        let (canonical, obj) = self.object(path)?;
        let ty = obj.ty.clone();
        let Some(&(name, listed, access)) = obj.class.iter().find(|(n, _, _)| *n == prop) else {
            if obj.children.contains_key(prop) {
                return Err(generic(format!("Property '{ty}.{prop}' is not writable")));
            }
            return Err(generic(format!("Property '{ty}.{prop}' not found")));
        };
        let new = match access {
            ReadOnly => return Err(generic(format!("Property '{ty}.{prop}' is not writable"))),
            Unsupported => return Err(generic(format!("the simulator cannot set property '{ty}.{prop}'"))),
            Frozen(text) => {
                self.typed(name, listed, value)?;
                return Err(generic(text));
            }
            Write => self.typed(name, listed, value)?,
        };
        let obj = self.objs.get_mut(&canonical).ok_or_else(|| not_found(path))?;
        if ty == "iothread" {
            range_check(name, &new)?;
        }
        obj.values.insert(name, new);
        if ty == "iothread" && matches!(name, "thread-pool-min" | "thread-pool-max" | "aio-max-batch") {
            // QEMU stores the value, then checks the pool's bounds (a refused value stays).
            pool_check(&obj.values)?;
        }
        Ok(json!({}))
    }

    /// `value` checked and converted as property `name` of type `listed` takes it.
    fn typed(&self, name: &str, listed: &str, value: &Value) -> Result<Value, QmpError> {
        let wrong =
            |expected: &str| generic(format!("Invalid parameter type for '{name}', expected: {expected}"));
        Ok(match listed {
            "string" => value.as_str().ok_or_else(|| wrong("string")).map(|_| value.clone())?,
            "bool" => value.as_bool().ok_or_else(|| wrong("boolean")).map(|_| value.clone())?,
            "int" if name == "host-nodes" => match value.as_array() {
                Some(list) if list.iter().all(|n| n.as_u64().is_some()) => value.clone(),
                _ => return Err(generic(format!("the simulator cannot set property '{name}' to {value}"))),
            },
            "int" => value.as_i64().ok_or_else(|| wrong("integer")).map(|_| value.clone())?,
            "HostMemPolicy" => {
                let s = value.as_str().ok_or_else(|| wrong("string"))?;
                if !super::qapi::enum_values("HostMemPolicy").contains(&s) {
                    return Err(generic(format!("Parameter '{name}' does not accept value '{s}'")));
                }
                value.clone()
            }
            link if link.starts_with("link<") => {
                let target = value.as_str().ok_or_else(|| wrong("string"))?;
                if target.is_empty() {
                    return Ok(json!(""));
                }
                let want = &link[5..link.len() - 1];
                let path = match self.lookup(target) {
                    Lookup::Found(p) => p,
                    _ => return Err(not_found(target)),
                };
                let is =
                    |t: &str| t == want || (want == "memory-backend" && t.starts_with("memory-backend-"));
                if !is(&self.objs[&path].ty) {
                    return Err(wrong(want));
                }
                json!(path)
            }
            _ => return Err(generic(format!("the simulator cannot set property '{name}'"))),
        })
    }

    /// `object-add` for `iothread`, `memory-backend-ram` and `secret`.
    pub fn object_add(&mut self, args: &Args) -> Reply {
        let ty = args["qom-type"].as_str().unwrap_or_default();
        let id = args["id"].as_str().unwrap_or_default();
        if !id_wellformed(id) {
            return Err(generic("Parameter 'id' expects an identifier"));
        }
        if !self.types.has(ty) {
            // The storage daemon declares `memory-backend-ram` but has no such type.
            return Err(generic(format!("invalid object type: {ty}")));
        }
        let mut obj = match ty {
            "iothread" => {
                let mut values = BTreeMap::new();
                for (name, default) in IOTHREAD_DEFAULTS {
                    let v = args.get(*name).cloned().unwrap_or(json!(default));
                    range_check(name, &v)?;
                    values.insert(*name, v);
                }
                let mut obj = Obj::new("iothread", IOTHREAD, &[]);
                obj.values = values;
                obj
            }
            "memory-backend-ram" => self.memory_backend(args)?,
            "secret" => {
                let text = |name: &str| json!(args.get(name).and_then(Value::as_str).unwrap_or_default());
                let format = args.get("format").and_then(Value::as_str).unwrap_or("raw");
                let values = [
                    ("iv", text("iv")),
                    ("keyid", text("keyid")),
                    ("loaded", json!(true)),
                    ("format", json!(format)),
                    ("file", text("file")),
                    ("data", text("data")),
                ];
                Obj::new("secret", SECRET, &values)
            }
            other => return Err(generic(format!("object type '{other}' is not supported by the simulator"))),
        };
        self.objects_root();
        if self.objs["/objects"].children.contains_key(id) {
            return Err(generic(format!(
                "attempt to add duplicate property '{id}' to object (type 'container')"
            )));
        }
        match ty {
            "iothread" => pool_check(&obj.values)?,
            "secret" => {
                // Loaded once it is in the tree, as QEMU completes it, and taken out of the
                // tree again when that fails (which GLib's hash order remembers).
                self.add("/objects", id, obj);
                return match super::secret::load(args, |key| self.secrets.get(key).cloned()) {
                    Ok(bytes) => {
                        self.secrets.insert(id.to_owned(), bytes);
                        Ok(json!({}))
                    }
                    Err(e) => {
                        self.remove("/objects", id);
                        Err(e)
                    }
                };
            }
            _ => {
                let size = obj.values["size"].as_u64().unwrap_or(0);
                if size == 0 {
                    return Err(generic("property 'size' of memory-backend-ram doesn't take value '0'"));
                }
                let policy = obj.values["policy"].as_str().unwrap_or("default").to_string();
                let no_nodes = obj.values["host-nodes"].as_array().is_none_or(Vec::is_empty);
                if policy != "default" && no_nodes {
                    return Err(generic(format!("host-nodes must be set for policy {policy}")));
                }
                obj.own.insert(&format!("{id}[0]"));
                obj.children.insert(format!("{id}[0]"), "memory-region".into());
                let region = [
                    ("container", json!("")),
                    ("addr", json!(0)),
                    ("size", json!(size)),
                    ("priority", json!(0)),
                ];
                self.add("/objects", id, obj);
                let parent = format!("/objects/{id}");
                self.objs.insert(
                    child_path(&parent, &format!("{id}[0]")),
                    Obj::new("memory-region", MEMORY_REGION, &region),
                );
                return Ok(json!({}));
            }
        }
        self.add("/objects", id, obj);
        Ok(json!({}))
    }

    fn memory_backend(&self, args: &Args) -> Result<Obj, QmpError> {
        let mut values: BTreeMap<&'static str, Value> = [
            ("share", json!(false)),
            ("size", json!(0)),
            ("dump", json!(true)),
            ("prealloc-threads", json!(1)),
            ("x-use-canonical-path-for-ramblock-id", json!(false)),
            ("policy", json!("default")),
            ("prealloc-context", json!("")),
            ("prealloc", json!(false)),
            ("reserve", json!(true)),
            ("host-nodes", json!([])),
            ("merge", json!(true)),
        ]
        .into_iter()
        .collect();
        for (name, listed, _) in MEMORY_BACKEND_RAM.iter().skip(1) {
            if let Some(v) = args.get(*name) {
                let v = if listed.starts_with("link<") { self.typed(name, listed, v)? } else { v.clone() };
                values.insert(name, v);
            }
        }
        let mut obj = Obj::new("memory-backend-ram", MEMORY_BACKEND_RAM, &[]);
        obj.values = values;
        Ok(obj)
    }

    /// The objects of type `ty` under `/objects`, with their property values, in GLib's hash
    /// order (as `object_child_foreach` walks them).
    pub fn objects_of<'a>(
        &'a self,
        ty: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a BTreeMap<&'static str, Value>)> + 'a {
        let root = self.objs.get("/objects");
        root.into_iter().flat_map(move |root| {
            root.own.iter().filter_map(move |id| {
                let obj = self.objs.get(&child_path("/objects", id))?;
                (obj.ty == ty).then_some((id, &obj.values))
            })
        })
    }

    /// `object-del`.
    pub fn object_del(&mut self, args: &Args) -> Reply {
        let id = args["id"].as_str().unwrap_or_default();
        self.objects_root();
        if !self.objs["/objects"].children.contains_key(id) {
            return Err(generic(format!("object '{id}' not found")));
        }
        if self.in_use.iter().any(|used| used == id) {
            return Err(generic(format!("object '{id}' is in use, can not be deleted")));
        }
        self.remove("/objects", id);
        self.secrets.remove(id);
        Ok(json!({}))
    }

    /// A device `device_add` made, at `path` (`/machine/peripheral/ID`, or
    /// `/machine/peripheral-anon/device[N]`).
    pub fn device_added(&mut self, path: &str, driver: &str) {
        let (container, name) = path.rsplit_once('/').unwrap_or(("", path));
        let values = [
            ("parent_bus", json!("")),
            ("realized", json!(true)),
            ("hotplugged", json!(true)),
            ("hotpluggable", json!(true)),
        ];
        self.add(container, name, Obj::new(driver, DEVICE, &values));
    }

    /// A device gone after `device_del`.
    pub fn device_removed(&mut self, path: &str) {
        let (container, name) = path.rsplit_once('/').unwrap_or(("", path));
        if self.objs.get(container).is_some_and(|c| c.children.contains_key(name)) {
            self.remove(container, name);
        }
    }
}

/// An `iothread` parameter's range.
fn range_check(name: &str, v: &Value) -> Result<(), QmpError> {
    if v.as_i64().is_some_and(|n| n < 0) {
        return Err(generic(format!("{name} value must be in range [0, {}]", i64::MAX)));
    }
    Ok(())
}

/// The thread pool's bounds, as QEMU checks them after any of them is set.
fn pool_check(values: &BTreeMap<&'static str, Value>) -> Result<(), QmpError> {
    let get = |k: &str| values.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (min, max) = (get("thread-pool-min"), get("thread-pool-max"));
    let int_max = i64::from(i32::MAX);
    if min > max || max == 0 || min > int_max || max > int_max {
        return Err(generic("bad thread-pool-min/thread-pool-max values"));
    }
    Ok(())
}
