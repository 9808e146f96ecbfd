//! The Rust of QAPI's commands and events: a type per command implementing `Command` (its
//! arguments as fields; unit-like without arguments; a newtype of the arguments' type when
//! `boxed`), a type per event implementing `EventData`, and `QemuEvent` over every event.

use std::fmt::Write;

use super::names::type_name;
use super::resolve::Resolver;
use super::types::{deprecated_attr, doc, entity_doc, Shape};
use super::Ctx;
use crate::model::{Entity, Kind};

/// The path to the types module from the commands and events modules.
const T: &str = "t::";

/// What a command's arguments or an event's data become: a newtype of the type when `boxed`,
/// a unit struct read by `read_empty` when there are no members, else a struct of them.
struct Payload<'a> {
    name: &'a str,
    of: Option<&'a str>,
    boxed: bool,
    read_empty: &'a str,
}

impl Payload<'_> {
    fn emit(&self, ctx: &Ctx, r: &Resolver, e: &Entity, unknown_doc: &str, with_new: bool, out: &mut String) {
        let name = self.name;
        let members = match (self.of, self.boxed) {
            (Some(a), false) => r.all_members(a),
            _ => Vec::new(),
        };
        match (self.of, self.boxed) {
            (Some(a), true) => {
                let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]");
                let _ = writeln!(out, "#[serde(transparent)]");
                let _ = writeln!(out, "pub struct {name}(pub {});\n", r.rust_type(a, T));
            }
            (Some(a), false) if !members.is_empty() => {
                let shape = Shape { name, members: &members, present: e.versions, owner: a, prefix: T };
                shape.emit(ctx, r, unknown_doc, out);
                if with_new {
                    shape.emit_new(r, out);
                }
            }
            _ => {
                let _ = writeln!(out, "#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]");
                let _ = writeln!(out, "pub struct {name};\n");
                let _ = writeln!(out, "impl<'de> Deserialize<'de> for {name} {{");
                let _ = writeln!(
                    out,
                    "    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {{"
                );
                let _ = writeln!(out, "        {}", self.read_empty);
                let _ = writeln!(out, "    }}\n}}\n");
            }
        }
    }
}

/// A command.
pub fn emit_command(ctx: &Ctx, r: &Resolver, e: &Entity, out: &mut String) {
    let Kind::Command { args, boxed, returns, allow_oob, .. } = &e.kind else { return };
    let name = type_name(&e.name);
    doc(out, "", &entity_doc(ctx, e, "command"));
    out.push_str(&deprecated_attr(ctx, &e.features, e.versions));
    let output = match returns {
        Some(t) => r.rust_type(t, T),
        None => "crate::Empty".to_owned(),
    };
    // No arguments: sent without `arguments`; read back from none, `null` or `{}`.
    let read_empty = format!("crate::qapi_support::no_arguments(d, \"{}\").map(|()| {name})", e.name);
    let payload = Payload { name: &name, of: args.as_deref(), boxed: *boxed, read_empty: &read_empty };
    payload.emit(ctx, r, e, "Arguments this build does not know, sent as they are.", true, out);
    let _ = writeln!(out, "#[allow(deprecated)]");
    let _ = writeln!(out, "impl crate::Command for {name} {{");
    let _ = writeln!(out, "    const NAME: &'static str = \"{}\";", e.name);
    let _ = writeln!(out, "    type Output = {output};");
    if *allow_oob {
        let _ = writeln!(out, "    const ALLOW_OOB: bool = true;");
    }
    let _ = writeln!(out, "}}\n");
}

/// An event's data type.
pub fn emit_event(ctx: &Ctx, r: &Resolver, e: &Entity, out: &mut String) {
    let Kind::Event { data, boxed } = &e.kind else { return };
    let name = type_name(&e.name);
    doc(out, "", &entity_doc(ctx, e, "event"));
    out.push_str(&deprecated_attr(ctx, &e.features, e.versions));
    // No data: the event decodes from an absent (null) or empty `data`.
    let read_empty = format!("serde::de::IgnoredAny::deserialize(d)?;\n        Ok({name})");
    let payload = Payload { name: &name, of: data.as_deref(), boxed: *boxed, read_empty: &read_empty };
    payload.emit(ctx, r, e, "Members this build does not know (a newer QEMU's), kept as sent.", false, out);
    let _ = writeln!(out, "#[allow(deprecated)]");
    let _ = writeln!(out, "impl crate::events::EventData for {name} {{");
    let _ = writeln!(out, "    const NAME: &'static str = \"{}\";", e.name);
    let _ = writeln!(out, "}}\n");
}

/// `QemuEvent`: every event by name, and `Other` for the rest.
pub fn emit_event_enum(events: &[&Entity], out: &mut String) {
    let _ = writeln!(out, "/// Any event, decoded by name; see [`QemuEvent::from_event`].");
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq)]");
    let _ = writeln!(out, "#[non_exhaustive]");
    let _ = writeln!(out, "#[allow(deprecated)]");
    let _ = writeln!(out, "pub enum QemuEvent {{");
    for e in events {
        let n = type_name(&e.name);
        let _ = writeln!(out, "    /// `{}`.", e.name);
        let _ = writeln!(out, "    {n}({n}),");
    }
    let _ = writeln!(
        out,
        "    /// An event this build does not know, or whose data did not decode into its type."
    );
    let _ = writeln!(out, "    Other {{\n        /// The event's name.\n        name: String,\n        /// Its data (`Null` when it had none).\n        data: serde_json::Value,\n    }},");
    let _ = writeln!(out, "}}\n");
    let _ = writeln!(out, "#[allow(deprecated)]");
    let _ = writeln!(out, "impl QemuEvent {{");
    let _ = writeln!(
        out,
        "    /// Decodes `event`; never fails: an unknown name, or data that does not fit its type,"
    );
    let _ = writeln!(out, "    /// gives [`QemuEvent::Other`] with the data kept.");
    // perf: inline, so that its code (every event type's decoding) is built in the crate that
    // calls it, not in every build of this one: 7 s of CPU (4 s wall) of the crate's release
    // build of 35 s when measured.
    let _ = writeln!(out, "    #[inline]");
    let _ = writeln!(out, "    pub fn from_event(event: &crate::Event) -> QemuEvent {{");
    let _ = writeln!(out, "        let decoded = match event.name.as_str() {{");
    for e in events {
        let n = type_name(&e.name);
        let _ =
            writeln!(out, "            \"{}\" => event.data_as::<{n}>().map(QemuEvent::{n}).ok(),", e.name);
    }
    let _ = writeln!(out, "            _ => None,");
    let _ = writeln!(out, "        }};");
    let _ = writeln!(out, "        decoded.unwrap_or_else(|| QemuEvent::Other {{ name: event.name.clone(), data: event.data_value() }})");
    let _ = writeln!(out, "    }}\n");
    let _ = writeln!(out, "    /// The event's name on the wire.");
    let _ = writeln!(out, "    pub fn name(&self) -> &str {{");
    let _ = writeln!(out, "        match self {{");
    for e in events {
        let _ = writeln!(out, "            QemuEvent::{}(_) => \"{}\",", type_name(&e.name), e.name);
    }
    let _ = writeln!(out, "            QemuEvent::Other {{ name, .. }} => name,");
    let _ = writeln!(out, "        }}\n    }}\n}}\n");
}
