//! The slots of a pc machine's `pci.0` as QEMU 7.2 hands them out to hot-plugged devices:
//! an `addr` parsed as QEMU parses it, the first free slot when none is given, and QEMU's
//! refusals (taken, all in use, a function beside a function 0 that is already there, a
//! single-function device over populated functions). Found by running QEMU.

use std::collections::BTreeMap;

use super::cnum::strtoul_hex;

/// A device and function number: slot × 8 + function.
pub(crate) type Devfn = u8;

const SLOTS: u8 = 32;
const FUNCTIONS: u8 = 8;

/// Who holds a function: the name QEMU prints (the model's) and the device's id.
#[derive(Debug, Clone)]
struct Holder {
    name: String,
    id: Option<String>,
}

/// The functions of `pci.0` in use.
#[derive(Debug, Default)]
pub(crate) struct PciSlots {
    held: BTreeMap<Devfn, Holder>,
}

impl PciSlots {
    /// A pc machine's bus with `-nodefaults` and `usb=on`: the host bridge in slot 0, the
    /// PIIX3 and its IDE, USB and power functions in slot 1.
    pub fn pc() -> PciSlots {
        let mut slots = PciSlots::default();
        for (devfn, name) in
            [(0, "i440FX"), (8, "PIIX3"), (9, "piix3-ide"), (10, "piix3-usb-uhci"), (11, "PIIX4_PM")]
        {
            slots.held.insert(devfn, Holder { name: name.into(), id: None });
        }
        slots
    }

    /// Where a new `model` goes: at `addr` if given, else at function 0 of the first slot
    /// whose function 0 is free. The error is QEMU's text.
    pub fn place(&self, model: &str, addr: Option<Devfn>, multifunction: bool) -> Result<Devfn, String> {
        let devfn = match addr {
            Some(devfn) => {
                if let Some(h) = self.held.get(&devfn) {
                    let id = h.id.as_deref().unwrap_or("(null)");
                    let (slot, function) = (devfn / FUNCTIONS, devfn % FUNCTIONS);
                    return Err(format!(
                        "PCI: slot {slot} function {function} not available for {model}, in use by {},id={id}",
                        h.name
                    ));
                }
                devfn
            }
            None => (0..SLOTS)
                .map(|slot| slot * FUNCTIONS)
                .find(|devfn| !self.held.contains_key(devfn))
                .ok_or_else(|| {
                    format!("PCI: no slot/function available for {model}, all in use or reserved")
                })?,
        };
        let (slot, function) = (devfn / FUNCTIONS, devfn % FUNCTIONS);
        let first = slot * FUNCTIONS;
        if function != 0 {
            // Hot-plugged functions go in before function 0, never after.
            if let Some(h) = self.held.get(&first) {
                return Err(format!(
                    "PCI: slot {slot} function 0 already occupied by {}, new func {model} cannot be exposed to guest.",
                    h.name
                ));
            }
        } else if !multifunction {
            // Checked after the slot is chosen, even a slot QEMU chose itself: once a free
            // function 0 has others populated, every device placed automatically fails there.
            if let Some(other) = (1..FUNCTIONS).map(|f| first + f).find(|f| self.held.contains_key(f)) {
                return Err(format!(
                    "PCI: {slot:x}.0 indicates single function, but {slot:x}.{:x} is already populated.",
                    other % FUNCTIONS
                ));
            }
        }
        Ok(devfn)
    }

    /// Marks `devfn` as held by a device of `model` with `id`.
    pub fn hold(&mut self, devfn: Devfn, model: &str, id: Option<&str>) {
        self.held.insert(devfn, Holder { name: model.into(), id: id.map(str::to_string) });
    }

    /// Frees `devfn` (its device is gone).
    pub fn release(&mut self, devfn: Devfn) {
        self.held.remove(&devfn);
    }
}

/// A PCI `addr` property's text as QEMU reads it: a hexadecimal slot (at most 0x1f) and
/// optionally `.` and a function (at most 7), each as C's `strtoul` reads hex (leading
/// blanks, a sign, a `0x` prefix), nothing after. `None`: QEMU refuses the value.
pub(crate) fn parse_addr(text: &str) -> Option<Devfn> {
    let (slot, rest) = strtoul_hex(text)?;
    let (function, rest) = match rest.strip_prefix('.') {
        Some(after) => strtoul_hex(after)?,
        None => (0, rest),
    };
    (rest.is_empty() && slot < u64::from(SLOTS) && function < u64::from(FUNCTIONS))
        .then(|| slot as Devfn * FUNCTIONS + function as Devfn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_qemu_reads_them() {
        let ok = [("5", 40), ("0x5", 40), ("05.0", 40), ("1f", 248), ("0X1e", 240), ("1d.0x1", 233)];
        for (text, devfn) in ok {
            assert_eq!(parse_addr(text), Some(devfn), "{text}");
        }
        for (text, devfn) in [(" 3", 24), ("+1c", 224), ("-0", 0), ("0x", 0), ("00000000000000000000005", 40)]
        {
            assert_eq!(parse_addr(text), Some(devfn), "{text}");
        }
        for bad in ["zz", "32", "6.8", "", "-1", "3.", "5z", "0xg", "4.1z", "4 ", "0x0x"] {
            assert_eq!(parse_addr(bad), None, "{bad}");
        }
    }

    #[test]
    fn slots_are_handed_out_and_refused_as_in_qemu() {
        let mut pci = PciSlots::pc();
        assert_eq!(pci.place("e1000", None, false), Ok(16));
        pci.hold(16, "e1000", Some("e0"));
        assert_eq!(
            pci.place("nvme", Some(16), false).unwrap_err(),
            "PCI: slot 2 function 0 not available for nvme, in use by e1000,id=e0"
        );
        assert!(pci
            .place("e1000", Some(17), false)
            .unwrap_err()
            .contains("function 0 already occupied by e1000"));
        pci.hold(25, "e1000", None);
        assert_eq!(
            pci.place("e1000", Some(24), false).unwrap_err(),
            "PCI: 3.0 indicates single function, but 3.1 is already populated."
        );
        assert!(
            pci.place("e1000", None, false).unwrap_err().contains("3.0 indicates"),
            "QEMU's own choice too"
        );
        assert_eq!(pci.place("e1000", Some(24), true), Ok(24));
        for slot in 3..SLOTS {
            pci.hold(slot * FUNCTIONS, "e1000", None);
        }
        assert!(pci.place("e1000", None, false).unwrap_err().starts_with("PCI: no slot/function available"));
        // The last slot's functions (devfn 248 to 255) are checked without overflow.
        pci.release(31 * FUNCTIONS);
        pci.hold(255, "e1000", None);
        assert!(pci.place("e1000", Some(248), false).unwrap_err().contains("1f.0 indicates single function"));
    }
}
