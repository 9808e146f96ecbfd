//! The simulator's declarations, derived from QEMU's QAPI schema as the generated facts hold
//! it ([`qmp::generated::facts`]), for QEMU 7.2.0 with the truth table of Debian's x86_64
//! build ([`DEBIAN_X86_64`]): each command's arguments, member order included (QEMU checks
//! members in declaration order, so the order decides which error a bad request gets),
//! whether it allows OOB, the events' data, and the enum values the simulator answers with.
//! No member list is written here: the simulator only chooses which commands, events and
//! `blockdev-add` drivers it implements. `differential_schema` compares the result with the
//! real binary's `query-qmp-schema`, and `sim_declarations` with the committed model.
//!
//! From QAPI to the framework's [`Ty`]:
//! - `str`, `bool`, `number` are themselves; `int` and `int8`...`int64` are [`Ty::Int`]
//!   (the framework checks no narrower signed range); `uint8`...`uint32` are
//!   [`Ty::UintN`], checked for their width; `uint64` and `size` are [`Ty::Uint`];
//! - enums, arrays and structs are themselves; a flat union is a [`Struct`] with variants,
//!   and (as QEMU's introspection lists them) a discriminator value without a variant type
//!   gets an empty variant after the declared ones;
//! - alternates, `any`, `null` and `QType` are [`Ty::Any`]: the framework has no alternates;
//! - a type met again inside itself is [`Ty::Any`] there ([`Ty`] is a tree);
//! - a return type is described only as far as the simulator ever did: none is `{}`, a
//!   built-in is itself, any other type is [`Ty::Any`].

use std::sync::OnceLock;

use qmp::generated::facts::{DEBIAN_X86_64, SCHEMA};
use qmp::qapi::{Slice, TypeDef};

use crate::schema::{Struct, Ty};
use crate::server::CommandSpec;

/// The QEMU version the simulator declares.
pub(crate) const VERSION: &str = "7.2.0";

/// The `blockdev-add` drivers the simulator implements: only their variants are declared,
/// so other drivers' members are unexpected, as they always were here.
pub(crate) const BLOCKDEV_DRIVERS: &[&str] = &["file", "raw", "qcow2", "null-co", "null-aio"];

/// The events the simulator emits.
pub(crate) const EVENTS: &[&str] = &[
    "STOP",
    "RESUME",
    "POWERDOWN",
    "RESET",
    "SHUTDOWN",
    "DEVICE_DELETED",
    "JOB_STATUS_CHANGE",
    "BLOCK_JOB_COMPLETED",
    "BLOCK_JOB_CANCELLED",
    "BLOCK_JOB_READY",
    "BLOCK_JOB_PENDING",
    "MIGRATION",
    "MIGRATION_PASS",
];

/// The 7.2 slice for Debian's x86_64 build.
pub(crate) fn slice() -> Slice<'static> {
    // The generated facts hold 7.2.0 (their first version); `sim_declarations` checks it.
    SCHEMA.slice(VERSION, &DEBIAN_X86_64).expect("the generated facts hold QEMU 7.2.0")
}

/// Command `name` as QEMU 7.2 declares it: its arguments, its return type (as far as the
/// simulator describes it, see the module's doc) and `allow-oob`.
///
/// Panics when 7.2 on x86_64 has no such command: the simulator's command table names only
/// commands it has (every test that starts a simulator builds the whole table).
pub(crate) fn command(name: &str) -> CommandSpec {
    command_with(name, |_| {})
}

/// `blockdev-add`, with the variants of [`BLOCKDEV_DRIVERS`] only.
pub(crate) fn blockdev_add() -> CommandSpec {
    command_with("blockdev-add", |args| {
        if let Some((_, variants)) = &mut args.variants {
            for d in BLOCKDEV_DRIVERS {
                assert!(variants.iter().any(|(v, _)| v == d), "BlockdevOptions {VERSION} has no variant {d}");
            }
            variants.retain(|(v, _)| BLOCKDEV_DRIVERS.contains(&v.as_str()));
        }
    })
}

/// `blockdev-add`'s argument type (`BlockdevOptions` with the implemented drivers): what an
/// inline child node is checked against.
pub(crate) fn blockdev_options() -> &'static Struct {
    static OPTIONS: OnceLock<CommandSpec> = OnceLock::new();
    OPTIONS.get_or_init(blockdev_add).argument_type()
}

/// The `qom-type` values whose `object-add` members the simulator declares (it implements them).
pub(crate) const OBJECT_TYPES: &[&str] = &["iothread", "memory-backend-ram", "secret"];

/// `object-add`, with the variants of [`OBJECT_TYPES`] only (other types' members are
/// unexpected, and the type itself is refused by the handler).
pub(crate) fn object_add() -> CommandSpec {
    command_with("object-add", |args| {
        if let Some((_, variants)) = &mut args.variants {
            for t in OBJECT_TYPES {
                assert!(variants.iter().any(|(v, _)| v == t), "ObjectOptions {VERSION} has no variant {t}");
            }
            variants.retain(|(v, _)| OBJECT_TYPES.contains(&v.as_str()));
        }
    })
}

/// The values of enum `name` in 7.2, in order (empty when 7.2 has no such enum).
pub(crate) fn enum_values(name: &str) -> Vec<&'static str> {
    slice().enum_values(name).unwrap_or_default()
}

/// Command `name` with its derived arguments passed through `edit`.
fn command_with(name: &str, edit: impl FnOnce(&mut Struct)) -> CommandSpec {
    let s = slice();
    let def = s.command(name).unwrap_or_else(|| panic!("QEMU {VERSION} on x86_64 has no command {name}"));
    let mut args = match def.args {
        Some(t) => object(&s, t, &mut Vec::new()),
        None => Struct::new(),
    };
    edit(&mut args);
    let ret = match def.returns {
        None => Ty::object(Struct::new()),
        Some(t) => builtin(t).unwrap_or(Ty::Any),
    };
    let spec = CommandSpec::new(name).args(args).returns(ret);
    if def.allow_oob {
        spec.allow_oob()
    } else {
        spec
    }
}

/// The events of [`EVENTS`], with their data as 7.2 declares it.
pub(crate) fn events() -> Vec<(&'static str, Struct)> {
    let s = slice();
    EVENTS
        .iter()
        .map(|name| {
            let def = s.event(name).unwrap_or_else(|| panic!("QEMU {VERSION} on x86_64 has no event {name}"));
            let data = match def.data {
                Some(t) => object(&s, t, &mut Vec::new()),
                None => Struct::new(),
            };
            (*name, data)
        })
        .collect()
}

/// `MigrationCapability`'s values in 7.2, in its order (what `query-migrate-capabilities`
/// lists).
pub(crate) fn migration_capabilities() -> &'static [&'static str] {
    static VALUES: OnceLock<Vec<&'static str>> = OnceLock::new();
    VALUES.get_or_init(|| slice().enum_values("MigrationCapability").expect("7.2 has MigrationCapability"))
}

fn builtin(name: &str) -> Option<Ty> {
    Some(match name {
        "str" => Ty::Str,
        "int" | "int8" | "int16" | "int32" | "int64" => Ty::Int,
        "uint8" => Ty::UintN(8),
        "uint16" => Ty::UintN(16),
        "uint32" => Ty::UintN(32),
        "uint64" | "size" => Ty::Uint,
        "bool" => Ty::Bool,
        "number" => Ty::Number,
        "any" | "null" | "QType" => Ty::Any,
        _ => return None,
    })
}

/// The type named `name`; `path` holds the object types being built around it.
fn ty(s: &Slice<'_>, name: &str, path: &mut Vec<String>) -> Ty {
    if let Some(b) = builtin(name) {
        return b;
    }
    if path.iter().any(|p| p == name) {
        return Ty::Any;
    }
    match s.ty(name) {
        Some(TypeDef::Array(elem)) => Ty::array(ty(s, elem, path)),
        Some(TypeDef::Enum { values }) => Ty::enumeration(name, values),
        Some(TypeDef::Struct { .. } | TypeDef::Union { .. }) => Ty::object(object(s, name, path)),
        Some(TypeDef::Alternate { .. }) | Some(TypeDef::Builtin(_)) => Ty::Any,
        // The facts are checked whole (every type a definition names is defined).
        None => panic!("QEMU {VERSION} on x86_64 has no type {name}"),
    }
}

/// Struct or union `name` as the framework's [`Struct`].
fn object(s: &Slice<'_>, name: &str, path: &mut Vec<String>) -> Struct {
    path.push(name.to_string());
    let out = match s.ty(name) {
        Some(TypeDef::Struct { members }) => members_of(s, &members, path),
        Some(TypeDef::Union { members, discriminator, variants }) => {
            let base = members_of(s, &members, path);
            let mut cases: Vec<(String, Struct)> =
                variants.iter().map(|v| (v.name.to_string(), object(s, v.ty, path))).collect();
            let tag = members.iter().find(|m| m.name == discriminator).map(|m| m.ty);
            for value in tag.and_then(|t| s.enum_values(t)).unwrap_or_default() {
                if !cases.iter().any(|(c, _)| c == value) {
                    cases.push((value.to_string(), Struct::new()));
                }
            }
            base.union(discriminator, cases)
        }
        _ => panic!("QEMU {VERSION} on x86_64 has no struct or union {name}"),
    };
    path.pop();
    out
}

fn members_of(s: &Slice<'_>, members: &[qmp::qapi::MemberDef], path: &mut Vec<String>) -> Struct {
    members.iter().fold(Struct::new(), |st, m| {
        let t = ty(s, m.ty, path);
        if m.optional {
            st.optional(m.name, t)
        } else {
            st.member(m.name, t)
        }
    })
}
