//! Devices: `device_add` and `device_del` as QEMU 7.2 checks them, on the buses the
//! simulated machine has. `-machine none` has none, so every device model is refused for
//! want of its bus; `--machine pc` has a pc's PCI bus (`pci.0`), the USB bus of its UHCI
//! controller (`usb-bus.0`, as with `usb=on`), and the SCSI bus of each SCSI controller
//! added. Which bus a model goes on comes from the QOM type facts (its ancestors).
//!
//! `device_add`'s checks run in QEMU's order: the id's syntax, the driver, the bus, a
//! duplicate id, then each property (in the order QEMU's QDict iterates them: by
//! `qjson::qdict_bucket`), then a PCI device's slot (`pci`), then what the model requires at
//! realize (a drive, a serial), and the drive's permissions. Property values are checked by
//! their types (`check_value`), `drive` names a node of the simulator's, `netdev` always
//! fails (the simulator has no network backends) and `addr` is a PCI address.

use std::collections::BTreeMap;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use super::cnum::parse_c_integer;
use super::pci::{parse_addr, Devfn, PciSlots};
use super::qom::Qom;
use super::qom_types::QomTypes;
use super::vm::opt_text;
use super::{Like, Machine};
use crate::qjson::qdict_bucket;
use crate::server::{Args, Reply};

/// Device models the simulated machine has (each with its properties in the QOM facts).
///
/// ```
/// assert!(qmp_server::sim::DEVICE_MODELS.contains(&"virtio-net-pci"));
/// ```
pub const DEVICE_MODELS: &[&str] = &[
    "virtio-blk-pci",
    "virtio-net-pci",
    "virtio-scsi-pci",
    "scsi-hd",
    "e1000",
    "usb-tablet",
    "usb-kbd",
    "nvme",
];

/// A bus type, by the name QEMU gives it in its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BusType {
    Pci,
    Usb,
    Scsi,
}

impl BusType {
    fn name(self) -> &'static str {
        match self {
            BusType::Pci => "PCI",
            BusType::Usb => "usb-bus",
            BusType::Scsi => "SCSI",
        }
    }

    /// The bus a model plugs into, from its QOM ancestry.
    fn of(model: &str) -> Option<BusType> {
        let types = QomTypes::of(Like::QemuSystem);
        [("pci-device", BusType::Pci), ("usb-device", BusType::Usb), ("scsi-device", BusType::Scsi)]
            .into_iter()
            .find(|(ancestor, _)| types.is_a(model, ancestor))
            .map(|(_, bus)| bus)
    }
}

/// A plugged device.
#[derive(Debug)]
struct Device {
    model: String,
    /// Its QOM path: `/machine/peripheral/ID` or `/machine/peripheral-anon/device[N]`.
    path: String,
    /// Given an id by the client (`DEVICE_DELETED` names it).
    named: bool,
    /// The device whose bus it is on (none: the machine's own).
    bus_owner: Option<String>,
    /// The node its `drive` property attached.
    drive: Option<String>,
    /// The name of the bus it provides (a SCSI controller's).
    child_bus: Option<String>,
    /// Its place in the order devices were added: `query-block` lists backends so.
    attached: u64,
    /// Its slot and function on `pci.0`, for a PCI device.
    devfn: Option<Devfn>,
}

impl Device {
    /// How QEMU names the device its drive is attached to in permission errors: its id, or
    /// its QOM path without one (virtio-blk's drive is its inner device's, which has none).
    fn block_name(&self, key: &str) -> String {
        match self.model.as_str() {
            "virtio-blk-pci" => format!("{}/virtio-backend", self.path),
            _ if self.named => key.to_string(),
            _ => self.path.clone(),
        }
    }
}

/// The machine's buses and devices.
#[derive(Debug)]
pub(crate) struct Devices {
    /// In creation order (QEMU finds a bus by name or type, first match).
    buses: Vec<Bus>,
    /// By id; anonymous ones by their QOM path.
    plugged: BTreeMap<String, Device>,
    /// Ids whose unplug the guest acknowledges at the next tick.
    unplugging: Vec<String>,
    /// Anonymous devices named so far: QEMU counts every one that got as far as being
    /// named, failed ones too, and never reuses a number.
    anonymous: usize,
    /// Devices added so far (orders their drives' backends).
    attached: u64,
    /// The functions of `pci.0` in use.
    pci: PciSlots,
}

/// A device's block backend, as `query-block` shows it.
pub(crate) struct Backend<'a> {
    /// The node its drive attached.
    pub node: &'a str,
    /// How QEMU names the device (`qdev`).
    pub qdev: String,
    /// Whether the model reports an I/O status (virtio-blk and SCSI disks do, NVMe not).
    pub io_status: bool,
}

#[derive(Debug)]
struct Bus {
    name: String,
    ty: BusType,
    /// The device that provides it (none for the machine's own).
    owner: Option<String>,
}

/// A device unplugged: its QOM path, and its id if it had one.
pub(crate) struct Removed {
    pub path: String,
    pub id: Option<String>,
}

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

/// QEMU's `id_wellformed`: a letter, then letters, digits, `-`, `.` and `_`.
fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

impl Devices {
    pub fn new(machine: Machine) -> Devices {
        let own = |name: &str, ty| Bus { name: name.to_string(), ty, owner: None };
        let (buses, pci) = match machine {
            Machine::None => (Vec::new(), PciSlots::default()),
            Machine::Pc => (vec![own("pci.0", BusType::Pci), own("usb-bus.0", BusType::Usb)], PciSlots::pc()),
        };
        Devices { buses, plugged: BTreeMap::new(), unplugging: Vec::new(), anonymous: 0, attached: 0, pci }
    }

    /// True while an unplug waits for the next tick.
    pub fn busy(&self) -> bool {
        !self.unplugging.is_empty()
    }

    /// `device_add`. `node_read_only` says whether a block node of that name exists, and if
    /// so whether it was opened read-only. A device that gets as far as its name is added to
    /// the QOM tree, and removed again if a later check fails (which shapes the order QOM
    /// lists the others in, as in QEMU).
    pub fn add(
        &mut self,
        args: &Args,
        node_read_only: impl Fn(&str) -> Option<bool>,
        qom: &mut Qom,
    ) -> Reply {
        // QemuOpts carries device_add's arguments: scalars become text, anything else is
        // dropped (so `"driver": []` is a missing driver).
        // A non-string id is no id: QemuOpts takes the id only as a string.
        let id = args.get("id").and_then(Value::as_str).map(str::to_string);
        if id.as_deref().is_some_and(|id| !is_identifier(id)) {
            return Err(generic("Parameter 'id' expects an identifier"));
        }
        let Some(model) = args.get("driver").and_then(opt_text) else {
            return Err(generic("Parameter 'driver' is missing"));
        };
        let Some(bus_type) = DEVICE_MODELS.contains(&model.as_str()).then(|| BusType::of(&model)).flatten()
        else {
            return Err(generic(format!("'{model}' is not a valid device model name")));
        };
        let bus_owner = match args.get("bus").and_then(opt_text) {
            Some(name) => match self.buses.iter().find(|b| b.name == name) {
                None => return Err(generic(format!("Bus '{name}' not found"))),
                Some(b) if b.ty != bus_type => {
                    return Err(generic(format!("Device '{model}' can't go on {} bus", b.ty.name())))
                }
                Some(b) => b.owner.clone(),
            },
            None => match self.buses.iter().find(|b| b.ty == bus_type) {
                Some(b) => b.owner.clone(),
                None => {
                    return Err(generic(format!("No '{}' bus found for device '{model}'", bus_type.name())))
                }
            },
        };
        if let Some(id) = &id {
            if self.plugged.contains_key(id) {
                return Err(generic(format!("Duplicate device ID '{id}'")));
            }
        }
        let (key, path) = match &id {
            Some(id) => (id.clone(), format!("/machine/peripheral/{id}")),
            None => {
                self.anonymous += 1;
                let path = format!("/machine/peripheral-anon/device[{}]", self.anonymous - 1);
                (path.clone(), path)
            }
        };
        qom.device_added(&path, &model);
        let mut device = Device {
            model: model.clone(),
            path: path.clone(),
            named: id.is_some(),
            bus_owner,
            drive: None,
            child_bus: None,
            attached: self.attached,
            devfn: None,
        };
        if let Err(e) = self.realize(&mut device, &key, args, &node_read_only) {
            qom.device_removed(&path);
            return Err(e);
        }
        self.attached += 1;
        if let Some(devfn) = device.devfn {
            self.pci.hold(devfn, &model, id.as_deref());
        }
        if model == "virtio-scsi-pci" {
            // A bus is named after its device's id, or its type when the device has none.
            let name = match &id {
                Some(id) => format!("{id}.0"),
                None => "scsi.0".to_string(),
            };
            self.buses.push(Bus { name: name.clone(), ty: BusType::Scsi, owner: Some(key.clone()) });
            device.child_bus = Some(name);
        }
        self.plugged.insert(key, device);
        Ok(json!({}))
    }

    /// The checks after the device is named: its properties, what its model needs, and
    /// its drive's permissions.
    fn realize(
        &self,
        device: &mut Device,
        key: &str,
        args: &Args,
        node_read_only: &impl Fn(&str) -> Option<bool>,
    ) -> Result<(), QmpError> {
        let addr;
        (device.drive, addr) = self.properties(&device.model, args, node_read_only)?;
        if BusType::of(&device.model) == Some(BusType::Pci) {
            // Every PCI device is on pci.0, the only PCI bus, and is placed before the
            // model's own realize checks its drive or serial.
            let multifunction =
                args.get("multifunction").and_then(opt_text).and_then(|v| qemu_bool(&v)).unwrap_or(false);
            device.devfn = Some(self.pci.place(&device.model, addr, multifunction).map_err(generic)?);
        }
        let needs = |p: &str| args.get(p).and_then(opt_text).is_none();
        match device.model.as_str() {
            "virtio-blk-pci" | "scsi-hd" if device.drive.is_none() => {
                return Err(generic("drive property not set"))
            }
            "nvme" if needs("serial") => return Err(generic("serial property not set")),
            _ => {}
        }
        let Some(node) = &device.drive else { return Ok(()) };
        if node_read_only(node) == Some(true) {
            // No device writes to a read-only node: any number may share it.
            return Ok(());
        }
        match self.plugged.iter().find(|(_, d)| d.drive.as_ref() == Some(node)) {
            Some((holder_key, holder)) => Err(generic(format!(
                "Permission conflict on node '{node}': permissions 'write' are both required by block device '{}' (uses node '{node}' as 'root' child) and unshared by block device '{}' (uses node '{node}' as 'root' child).",
                holder.block_name(holder_key),
                device.block_name(key)
            ))),
            None => Ok(()),
        }
    }

    /// Each property given, in QDict order: a property the model lacks, or a `drive` or
    /// `netdev` that names nothing, or an `addr` QEMU cannot read, is refused. The node
    /// `drive` names and the `addr` given, if any.
    fn properties(
        &self,
        model: &str,
        args: &Args,
        node_read_only: &impl Fn(&str) -> Option<bool>,
    ) -> Result<(Option<String>, Option<Devfn>), QmpError> {
        let types = QomTypes::of(Like::QemuSystem);
        let mut given: Vec<(&String, String)> = args
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "driver" | "id" | "bus"))
            .filter_map(|(k, v)| opt_text(v).map(|t| (k, t)))
            .collect();
        // QEMU sets them in its QDict's order: by bucket.
        given.sort_by_key(|(k, _)| qdict_bucket(k));
        let (mut drive, mut addr) = (None, None);
        for (key, value) in given {
            let Some(ty) = types.device_property_type(model, key) else {
                return Err(generic(format!("Property '{model}.{key}' not found")));
            };
            if key != "addr" {
                check_value(model, key, ty, &value)?;
            }
            let owner = if model == "virtio-blk-pci" { "virtio-blk-device" } else { model };
            match key.as_str() {
                "drive" if node_read_only(&value).is_none() => {
                    return Err(generic(format!("Property '{owner}.drive' can't find value '{value}'")))
                }
                "drive" => drive = Some(value),
                "addr" => match parse_addr(&value) {
                    Some(devfn) => addr = Some(devfn),
                    None => {
                        return Err(generic(format!("Property '{model}.addr' doesn't take value '{value}'")))
                    }
                },
                "netdev" => {
                    let owner = if model == "virtio-net-pci" { "virtio-net-device" } else { model };
                    return Err(generic(format!("Property '{owner}.netdev' can't find value '{value}'")));
                }
                _ => {}
            }
        }
        Ok((drive, addr))
    }

    /// `device_del`: by id, or by an anonymous device's QOM path.
    pub fn del(&mut self, args: &Args) -> Reply {
        let given = args["id"].as_str().unwrap_or_default();
        let key = match self.plugged.contains_key(given) {
            true => Some(given),
            false => self.plugged.iter().find(|(_, d)| d.path == given).map(|(k, _)| k.as_str()),
        };
        let Some(id) = key.map(str::to_string) else {
            return Err(QmpError::new(ErrorClass::DeviceNotFound, format!("Device '{given}' not found")));
        };
        let id = id.as_str();
        if self.unplugging.iter().any(|u| u == id) {
            return Err(generic(format!("Device {id} is already in the process of unplug")));
        }
        // The guest acknowledges the unplug at the next tick (a USB device needs no guest).
        self.unplugging.push(id.to_string());
        Ok(json!({}))
    }

    /// The unplugs acknowledged since the last tick, each device after those on its bus.
    pub fn tick(&mut self) -> Vec<Removed> {
        let mut removed = Vec::new();
        for key in std::mem::take(&mut self.unplugging) {
            self.remove(&key, &mut removed);
        }
        removed
    }

    /// Removes `key` and, first, every device on the bus it provides.
    fn remove(&mut self, key: &str, out: &mut Vec<Removed>) {
        let Some(device) = self.plugged.remove(key) else { return };
        if let Some(devfn) = device.devfn {
            self.pci.release(devfn);
        }
        if device.child_bus.is_some() {
            // One level: a SCSI controller's disks provide no bus of their own.
            let on_bus: Vec<String> = self
                .plugged
                .iter()
                .filter(|(_, d)| d.bus_owner.as_deref() == Some(key))
                .map(|(k, _)| k.clone())
                .collect();
            for k in on_bus {
                if let Some(d) = self.plugged.remove(&k) {
                    out.push(removed(&k, d));
                }
            }
            self.buses.retain(|b| b.owner.as_deref() != Some(key));
        }
        out.push(removed(key, device));
    }

    /// The devices' block backends, in the order their drives were attached.
    pub fn backends(&self) -> Vec<Backend<'_>> {
        let mut with_drive: Vec<(&String, &Device)> =
            self.plugged.iter().filter(|(_, d)| d.drive.is_some()).collect();
        with_drive.sort_by_key(|(_, d)| d.attached);
        with_drive
            .into_iter()
            .map(|(key, d)| Backend {
                node: d.drive.as_deref().unwrap_or_default(),
                qdev: d.block_name(key),
                io_status: d.model != "nvme",
            })
            .collect()
    }

    /// Whether a device holds `node` with its `drive`.
    pub fn holds_node(&self, node: &str) -> bool {
        self.plugged.values().any(|d| d.drive.as_deref() == Some(node))
    }
}

/// A property value QEMU's visitor refuses for the property's type: a boolean that is not one
/// of QEMU's words, an integer it cannot read or that does not fit, a MAC address that is not
/// six hex pairs. Checks a model makes of a readable value at realize are not modelled.
fn check_value(model: &str, key: &str, ty: &str, value: &str) -> Result<(), QmpError> {
    let fits = |min: i128, max: i128, name: &str| match parse_c_integer(value) {
        None => Err(generic(format!("Parameter '{key}' expects integer"))),
        Some(v) if v < min || v > max => Err(generic(format!("Parameter '{key}' expects {name}"))),
        Some(_) => Ok(()),
    };
    // Unsigned values are read as strtoull reads them: a negative one wraps.
    let unsigned = |bits: u32, name: &str| match parse_c_integer(value) {
        None => Err(generic(format!("Parameter '{key}' expects integer"))),
        Some(v) if (v.rem_euclid(1 << 64)) >> bits != 0 => {
            Err(generic(format!("Parameter '{key}' expects {name}")))
        }
        Some(_) => Ok(()),
    };
    match ty {
        "bool" if qemu_bool(value).is_none() => {
            Err(generic(format!("Parameter '{key}' expects 'on' or 'off'")))
        }
        "uint8" => unsigned(8, "uint8_t"),
        "uint16" => unsigned(16, "uint16_t"),
        "uint32" => unsigned(32, "uint32_t"),
        "uint64" => unsigned(64, "uint64_t"),
        "int32" => fits(i32::MIN.into(), i32::MAX.into(), "int32_t"),
        "int64" => fits(i64::MIN.into(), i64::MAX.into(), "int64_t"),
        "str" if key == "mac" && !is_mac(value) => {
            Err(generic(format!("Property '{model}.{key}' doesn't take value '{value}'")))
        }
        _ => Ok(()),
    }
}

/// A boolean property's text as QEMU reads it, `None` for any other word.
fn qemu_bool(text: &str) -> Option<bool> {
    match text {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

/// Six pairs of hex digits separated by `:` or `-`, as QEMU reads a MAC address.
fn is_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn removed(key: &str, d: Device) -> Removed {
    Removed { id: d.named.then(|| key.to_string()), path: d.path }
}

/// The `DEVICE_DELETED` data for a removed device.
pub(crate) fn deleted_event(r: &Removed) -> Value {
    match &r.id {
        Some(id) => json!({"device": id, "path": r.path}),
        None => json!({"path": r.path}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_as_qemu_takes_them() {
        for ok in ["a", "net0", "a-b.c_d", "Z9"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1x", "-a", "a b", "a[0]", "é"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn qdict_buckets_order_properties_as_qemu_reports_them() {
        // Found with QEMU 7.2: of these, the first reported is the one in the lowest bucket.
        fn first<'a>(keys: &[&'a str]) -> &'a str {
            keys.iter().copied().min_by_key(|k| qdict_bucket(k)).unwrap()
        }
        assert_eq!(first(&["zz1", "aa2", "mm3", "qq4"]), "mm3");
        assert_eq!(first(&["alpha", "beta", "gamma", "delta", "x"]), "x");
        assert_eq!(first(&["foo", "netdev"]), "netdev");
    }
}
