//! `device_add` and `device_del`, simulator against real QEMU on two machines: `-machine
//! none` (no bus: every model is refused, after the id, driver and bus checks) and `-machine
//! pc,usb=on -S -accel tcg` against the simulator's `Machine::Pc` (PCI, USB and SCSI buses,
//! property and drive checks, the QOM nodes devices get, USB and SCSI unplug events, the
//! backends of devices' drives in `query-block`). PCI unplug is not compared: QEMU's
//! finishes only when a guest acknowledges it, and `-S` has none.

mod common;

use common::{compare, s, s_until, Peer, Step};
use qmp_server::sim::{Machine, SimOptions, DEVICE_MODELS};

fn add(args: &str) -> Step {
    s(format!("{{\"execute\": \"device_add\", \"arguments\": {{{args}}}}}"))
}

fn qom_list(path: &str) -> Step {
    s(format!("{{\"execute\": \"qom-list\", \"arguments\": {{\"path\": \"{path}\"}}}}"))
}

fn negotiate() -> Step {
    s(b"{\"execute\": \"qmp_capabilities\"}")
}

#[test]
fn machine_none_has_no_bus_for_any_device() {
    let mut steps = vec![negotiate()];
    for model in DEVICE_MODELS {
        steps.push(add(&format!("\"driver\": \"{model}\", \"id\": \"d0\"")));
        steps.push(add(&format!("\"driver\": \"{model}\", \"bus\": \"pci.0\"")));
    }
    steps.extend([
        // The id is checked first, then the driver, then the bus.
        add("\"id\": \"1x\""),
        add("\"driver\": \"nope\", \"id\": \"1x\""),
        add("\"driver\": \"nope\", \"id\": \"\""),
        add("\"driver\": \"nope\", \"bus\": \"pci.0\""),
        add("\"id\": \"ok\""),
        add("\"driver\": \"e1000\", \"id\": 5"),
        add("\"driver\": \"e1000\", \"id\": \"a.b-c_d\", \"foo\": 1"),
        s(b"{\"execute\": \"device_del\", \"arguments\": {\"id\": \"d0\"}}"),
        qom_list("/machine/peripheral"),
        qom_list("/machine/peripheral-anon"),
    ]);
    compare(&Peer::qemu_system(), &Peer::sim(), &steps);
}

fn pc_pair() -> (Peer, Peer) {
    let qemu = Peer::qemu_system_with(&["-machine", "pc,usb=on", "-S", "-accel", "tcg"]);
    let options = SimOptions { machine: Machine::Pc, ..Default::default() };
    (qemu, Peer::sim_with(tempfile::tempdir().unwrap(), options))
}

#[test]
fn machine_pc_plugs_and_refuses_as_qemu_does() {
    let (qemu, sim) = pc_pair();
    let steps = vec![
        negotiate(),
        add("\"driver\": \"virtio-net-pci\", \"id\": \"n0\""),
        add("\"driver\": \"e1000\""),
        add("\"driver\": \"e1000\""),
        // Which bus, and what goes on it.
        add("\"driver\": \"e1000\", \"id\": \"e0\", \"bus\": \"nope\""),
        add("\"driver\": \"e1000\", \"id\": \"e0\", \"bus\": \"usb-bus.0\""),
        add("\"driver\": \"usb-kbd\", \"bus\": \"pci.0\""),
        add("\"driver\": \"e1000\", \"id\": \"e0\", \"bus\": \"pci.0\""),
        add("\"driver\": \"scsi-hd\", \"id\": \"h0\""),
        // Duplicates come after the bus, before the properties.
        add("\"driver\": \"e1000\", \"id\": \"e0\""),
        add("\"driver\": \"e1000\", \"id\": \"e0\", \"bus\": \"nope\""),
        add("\"driver\": \"e1000\", \"id\": \"e0\", \"foo\": 2"),
        add("\"driver\": \"e1000\", \"id\": \"n0\""),
        // Properties, in QEMU's QDict order.
        add("\"driver\": \"e1000\", \"id\": \"e1\", \"foo\": 1"),
        add("\"driver\": \"e1000\", \"zz1\": 1, \"aa2\": 1, \"mm3\": 1, \"qq4\": 1"),
        add("\"driver\": \"e1000\", \"alpha\": 1, \"beta\": 1, \"gamma\": 1, \"delta\": 1, \"x\": 1"),
        add("\"driver\": \"e1000\", \"foo\": 1, \"netdev\": \"q\""),
        add("\"driver\": \"virtio-net-pci\", \"netdev\": \"q\""),
        add("\"driver\": \"e1000\", \"id\": \"e2\", \"mac\": \"52:54:00:12:34:56\""),
        // What a model needs at realize.
        add("\"driver\": \"nvme\", \"id\": \"nv\""),
        add("\"driver\": \"nvme\", \"id\": \"nv\", \"serial\": \"s1\""),
        add("\"driver\": \"virtio-blk-pci\", \"id\": \"b0\""),
        add("\"driver\": \"virtio-blk-pci\", \"id\": \"b0\", \"drive\": \"nope\""),
        // SCSI: a controller's bus, named after it or after its type.
        add("\"driver\": \"virtio-scsi-pci\", \"id\": \"s0\""),
        add("\"driver\": \"scsi-hd\", \"id\": \"h0\""),
        add("\"driver\": \"scsi-hd\", \"id\": \"h0\", \"bus\": \"s0.0\", \"drive\": \"x\""),
        add("\"driver\": \"virtio-scsi-pci\""),
        add("\"driver\": \"scsi-hd\", \"bus\": \"scsi.0\""),
        // A drive: one device holds a node; the node cannot go while it does.
        s(b"{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"null-co\", \"node-name\": \"n1\"}}"),
        add("\"driver\": \"virtio-blk-pci\", \"id\": \"vb\", \"drive\": \"n1\""),
        add("\"driver\": \"virtio-blk-pci\", \"id\": \"vb2\", \"drive\": \"n1\""),
        add("\"driver\": \"scsi-hd\", \"id\": \"sd\", \"bus\": \"s0.0\", \"drive\": \"n1\""),
        s(b"{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"n1\"}}"),
        // USB.
        add("\"driver\": \"usb-tablet\", \"id\": \"t0\""),
        add("\"driver\": \"usb-kbd\""),
        add("\"driver\": \"usb-tablet\", \"id\": \"t0\""),
        qom_list("/machine/peripheral"),
        qom_list("/machine/peripheral-anon"),
        s(b"{\"execute\": \"qom-get\", \"arguments\": {\"path\": \"/machine/peripheral/n0\", \"property\": \"type\"}}"),
        // A USB device unplugs without the guest: its event comes by itself.
        s_until(b"{\"execute\": \"device_del\", \"arguments\": {\"id\": \"t0\"}}", "DEVICE_DELETED"),
        s(b"{\"execute\": \"device_del\", \"arguments\": {\"id\": \"t0\"}}"),
        add("\"driver\": \"usb-tablet\", \"id\": \"t0\""),
        // An anonymous device, by its QOM path: numbers count failed devices too.
        s_until(
            b"{\"execute\": \"device_del\", \"arguments\": {\"id\": \"/machine/peripheral-anon/device[8]\"}}",
            "DEVICE_DELETED",
        ),
        qom_list("/machine/peripheral-anon"),
        add("\"driver\": \"usb-kbd\""),
        qom_list("/machine/peripheral-anon"),
        s(b"{\"execute\": \"device_del\", \"arguments\": {\"id\": \"nodev\"}}"),
    ];
    compare(&qemu, &sim, &steps);
}

#[test]
fn query_block_lists_the_backends_of_devices_drives() {
    let (qemu, sim) = pc_pair();
    let node = |name: &str, extra: &str| {
        s(format!(
            "{{\"execute\": \"blockdev-add\", \"arguments\": {{\"driver\": \"null-co\", \"node-name\": \"{name}\", \"size\": 1048576{extra}}}}}"
        ))
    };
    let query_block = || s(b"{\"execute\": \"query-block\"}");
    let steps = vec![
        negotiate(),
        query_block(),
        node("n0", ""),
        node("n1", ", \"read-only\": true"),
        node("n2", ""),
        node("n3", ""),
        // A node no device holds has no backend.
        query_block(),
        add("\"driver\": \"virtio-scsi-pci\""),
        // Listed in the order the drives were attached, not the nodes made.
        add("\"driver\": \"scsi-hd\", \"drive\": \"n2\""),
        add("\"driver\": \"virtio-blk-pci\", \"drive\": \"n1\""),
        add("\"driver\": \"nvme\", \"drive\": \"n3\", \"serial\": \"s\""),
        add("\"driver\": \"virtio-blk-pci\", \"id\": \"vd0\", \"drive\": \"n0\""),
        // A read-only node has no writer: devices share it.
        add("\"driver\": \"scsi-hd\", \"id\": \"sd1\", \"drive\": \"n1\""),
        add("\"driver\": \"virtio-blk-pci\", \"drive\": \"n0\""),
        query_block(),
        s(b"{\"execute\": \"query-named-block-nodes\"}"),
        // A SCSI disk unplugs without the guest, and its backend goes with it.
        s_until(b"{\"execute\": \"device_del\", \"arguments\": {\"id\": \"sd1\"}}", "DEVICE_DELETED"),
        query_block(),
    ];
    compare(&qemu, &sim, &steps);
}

#[test]
fn pci_slots_are_given_and_refused_as_qemu_does() {
    let at = |addr: &str, rest: &str| add(&format!("\"driver\": \"e1000\", \"addr\": \"{addr}\"{rest}"));
    let mut steps = vec![negotiate()];
    // What QEMU does not read as an address, in the QDict order of the properties.
    for bad in ["zz", "32", "6.8", "", "-1", "3.", "5z", "0xg", "4.1z", "4 ", "0x0x"] {
        steps.push(at(bad, ""));
    }
    steps.push(add("\"driver\": \"e1000\", \"foo\": \"x\", \"addr\": \"zz\""));
    steps.push(add("\"driver\": \"e1000\", \"addr\": \"1\", \"foo\": \"x\""));
    // The machine's own functions, and the ways to write their addresses.
    for own in ["0", "1", "1.1", "1.2", "1.3", "1.4", "0.1", "0x", "-0"] {
        steps.push(at(own, ""));
    }
    // A slot is taken before the model checks its drive or serial.
    steps.push(add("\"driver\": \"virtio-blk-pci\", \"addr\": \"1\""));
    steps.push(add("\"driver\": \"nvme\", \"addr\": \"1\""));
    // Read as QEMU reads them; the last is slot 5 again, now held by `x0`.
    for (i, ok) in ["5", " 3", "+1c", "1d.0x0", "0X1e", "0x1f", "00000000000000000000005"].iter().enumerate()
    {
        steps.push(at(ok, &format!(", \"id\": \"x{i}\"")));
    }
    steps.push(add("\"driver\": \"e1000\", \"addr\": 7, \"id\": \"seven\""));
    steps.push(at("7", ""));
    // The first free slot, until none is left.
    for _ in 0..26 {
        steps.push(add("\"driver\": \"e1000\""));
    }
    steps.push(add("\"driver\": \"virtio-scsi-pci\""));
    steps.push(qom_list("/machine/peripheral-anon"));
    let (qemu, sim) = pc_pair();
    compare(&qemu, &sim, &steps);

    // Functions: added before function 0, never after; function 0 alone over others, even
    // where QEMU picks the slot itself.
    let steps = vec![
        negotiate(),
        at("2", ""),
        at("3.1", ", \"id\": \"f1\""),
        at("3", ", \"id\": \"f0\""),
        at("3.1", ""),
        add("\"driver\": \"e1000\""),
        at("3", ", \"multifunction\": \"on\""),
        at("3.2", ""),
        add("\"driver\": \"e1000\""),
        at("c.3", ""),
        at("c", ""),
        at("a", ", \"id\": \"ea\""),
        at("a", ""),
        at("a.1", ""),
    ];
    let (qemu, sim) = pc_pair();
    compare(&qemu, &sim, &steps);
}

#[test]
fn property_values_are_read_by_their_types_as_qemu_reads_them() {
    let with = |key: &str, value: &str| add(&format!("\"driver\": \"e1000\", \"{key}\": \"{value}\""));
    let mut steps = vec![negotiate()];
    for value in ["maybe", "1", "0", "ON", "", "yes", "y", "true", "off", "no", "n", "false"] {
        steps.push(with("multifunction", value));
    }
    for value in ["x", "-1", "4294967296", "1k", "5 ", "", "99999999999999999999", "0x", "--1", "+-1"] {
        steps.push(with("romsize", value));
    }
    for value in ["x", "2147483648", "-2147483649", "010", "0x10", " 7", "08"] {
        steps.push(with("bootindex", value));
    }
    for value in
        ["zz", "52:54:00:12:34:5", "52:54:00:12:34:567", "52-54-00-12-34-56", "52:54:00:12:34:57", ""]
    {
        steps.push(with("mac", value));
    }
    // The first refused value in QDict order wins.
    steps.push(add("\"driver\": \"e1000\", \"mac\": \"zz\", \"romsize\": \"x\", \"multifunction\": \"x\""));
    let (qemu, sim) = pc_pair();
    compare(&qemu, &sim, &steps);
}
