//! Devices and the QOM tree (`qapi/qdev.json`, `qapi/qom.json`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Empty;

/// Adds a device (`device_add`). QAPI leaves its properties free-form: `driver`, `bus` and
/// `id` are common to all devices, the rest depend on the driver and go in `properties`.
///
/// ```
/// use qmp::commands::DeviceAdd;
///
/// let cmd = DeviceAdd::new("virtio-blk-pci").id("disk1").property("drive", "drive0");
/// assert_eq!(
///     serde_json::to_value(&cmd).unwrap(),
///     serde_json::json!({"driver": "virtio-blk-pci", "id": "disk1", "drive": "drive0"}),
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceAdd {
    /// The device type, such as `virtio-net-pci` (`-device help` lists them).
    pub driver: String,
    /// The bus to plug into; QEMU picks one when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// The device's id, needed to `device_del` it later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The driver's own properties, sent as further members.
    #[serde(flatten)]
    pub properties: Map<String, Value>,
}
command!(DeviceAdd, "device_add", Empty);

impl DeviceAdd {
    /// A device of type `driver` with no id, bus or properties.
    pub fn new(driver: impl Into<String>) -> Self {
        DeviceAdd { driver: driver.into(), ..DeviceAdd::default() }
    }

    /// Sets the device's id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the bus to plug into.
    pub fn bus(mut self, bus: impl Into<String>) -> Self {
        self.bus = Some(bus.into());
        self
    }

    /// Sets one driver property.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }
}

/// Asks to remove a device (`device_del`). Removal may complete later, when the guest
/// agrees: wait for the `DEVICE_DELETED` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceDel {
    /// The device's id or QOM path.
    pub id: String,
}
command!(DeviceDel, "device_del", Empty);

impl DeviceDel {
    /// Removes the device `id`.
    pub fn new(id: impl Into<String>) -> Self {
        DeviceDel { id: id.into() }
    }
}

/// Lists the properties of a QOM object (`qom-list`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QomList {
    /// The object's path, such as `/machine`.
    pub path: String,
}
command!(QomList, "qom-list", Vec<ObjectPropertyInfo>);

impl QomList {
    /// Lists the properties of the object at `path`.
    pub fn new(path: impl Into<String>) -> Self {
        QomList { path: path.into() }
    }
}

/// One property of a QOM object, as listed by `qom-list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectPropertyInfo {
    /// The property's name.
    pub name: String,
    /// Its type: a QAPI type name, or `child<T>` / `link<T>` for children and links.
    #[serde(rename = "type")]
    pub kind: String,
    /// A description, if the property has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The default value, if known.
    #[serde(rename = "default-value", default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
}

/// Reads a property of a QOM object (`qom-get`); its type depends on the property.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QomGet {
    /// The object's path.
    pub path: String,
    /// The property's name.
    pub property: String,
}
command!(QomGet, "qom-get", Value);

impl QomGet {
    /// Reads `property` of the object at `path`.
    pub fn new(path: impl Into<String>, property: impl Into<String>) -> Self {
        QomGet { path: path.into(), property: property.into() }
    }
}

/// Writes a property of a QOM object (`qom-set`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QomSet {
    /// The object's path.
    pub path: String,
    /// The property's name.
    pub property: String,
    /// The new value.
    pub value: Value,
}
command!(QomSet, "qom-set", Empty);

impl QomSet {
    /// Sets `property` of the object at `path` to `value`.
    pub fn new(path: impl Into<String>, property: impl Into<String>, value: impl Into<Value>) -> Self {
        QomSet { path: path.into(), property: property.into(), value: value.into() }
    }
}
