//! QAPI's schema as static facts: every command, event and type of every QEMU version the
//! model was read from, with the versions and `if` conditions of each item, and their
//! evaluation for one version and one build ([`Slice`]).
//!
//! The data is generated from the committed model into [`crate::generated::facts`] (the
//! monitor's schema, with the truth table of Debian's `qemu-system-x86_64`,
//! [`DEBIAN_X86_64`](crate::generated::facts::DEBIAN_X86_64)) and
//! `qmp::ga::generated::facts` (the guest agent's). It is the merged model itself, not one
//! slice per version: a version and a build are chosen at run time, so one table serves
//! every version, and a tool (the simulator, a test) that picks 7.2 on x86_64 sees exactly
//! what that build's `query-qmp-schema` describes, member order included.
//!
//! ```
//! use qmp::generated::facts::{DEBIAN_X86_64, SCHEMA};
//! use qmp::qapi::TypeDef;
//!
//! let s = SCHEMA.slice("7.2.0", &DEBIAN_X86_64).unwrap();
//! let cmd = s.command("block-job-set-speed").unwrap();
//! let args = s.members(cmd.args.unwrap()).unwrap();
//! let names: Vec<&str> = args.iter().map(|m| m.name).collect();
//! assert_eq!(names, ["device", "speed"]);
//! assert!(matches!(s.ty("JobStatus"), Some(TypeDef::Enum { .. })));
//! assert!(s.unknown_symbols().is_empty());
//! ```
//!
//! Features and documentation facts (`since`, modules) are not part of these tables; the
//! generated types' docs carry those.

/// A set of [`Schema::versions`], bit 0 the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Versions(pub u64);

impl Versions {
    /// Whether version index `i` is in the set.
    pub const fn contains(self, i: usize) -> bool {
        i < 64 && self.0 & (1 << i) != 0
    }
}

/// An `if` condition, as written in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// A config symbol (`CONFIG_LINUX`, `TARGET_I386`).
    Name(&'static str),
    /// Every one of these.
    All(&'static [Cond]),
    /// At least one of these.
    Any(&'static [Cond]),
    /// Not this.
    Not(&'static Cond),
}

/// A condition (or none: unconditional) and the versions that have it instead of the
/// newest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CondIn {
    /// Where.
    pub versions: Versions,
    /// The condition there.
    pub cond: Option<Cond>,
}

/// A type and the versions that give an item that type instead of its newest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeIn {
    /// Where.
    pub versions: Versions,
    /// The type there.
    pub ty: &'static str,
}

/// A struct's member, merged over the versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its name on the wire.
    pub name: &'static str,
    /// Its type in the newest version that has it: a built-in (`str`, `int`, `uint64`...),
    /// an entity's name, or an array (`[BlockDeviceInfo]`).
    pub ty: &'static str,
    /// Where it has another type.
    pub older_types: &'static [TypeIn],
    /// Where it exists.
    pub versions: Versions,
    /// Where it is optional.
    pub optional: Versions,
    /// Its condition in the newest version that has it.
    pub cond: Option<Cond>,
    /// Where it has another condition.
    pub older_conds: &'static [CondIn],
}

impl Member {
    /// No member: the base of the generated literals (`..Member::NONE`).
    pub const NONE: Member = Member {
        name: "",
        ty: "",
        older_types: &[],
        versions: Versions(0),
        optional: Versions(0),
        cond: None,
        older_conds: &[],
    };
}

/// An enum value, a union variant or an alternate's alternative, merged over the versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// The value, the discriminator value a variant is for, or the alternative's name.
    pub name: &'static str,
    /// A variant's or alternative's type in the newest version that has it; none for enum
    /// values.
    pub ty: Option<&'static str>,
    /// Where it has another type.
    pub older_types: &'static [TypeIn],
    /// Where it exists.
    pub versions: Versions,
    /// Its condition in the newest version that has it.
    pub cond: Option<Cond>,
    /// Where it has another condition.
    pub older_conds: &'static [CondIn],
}

impl Case {
    /// No case: the base of the generated literals (`..Case::NONE`).
    pub const NONE: Case =
        Case { name: "", ty: None, older_types: &[], versions: Versions(0), cond: None, older_conds: &[] };
}

/// An entity's kind and the facts of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A command.
    Command {
        /// Its arguments' type (a struct, or with `boxed` a union), if any.
        args: Option<&'static str>,
        /// The arguments are the whole `args` type.
        boxed: bool,
        /// Its return type; none: `{}`.
        returns: Option<&'static str>,
        /// `allow-oob: true`.
        allow_oob: bool,
        /// `success-response: false`.
        no_success_response: bool,
    },
    /// An event.
    Event {
        /// Its data's type, if any.
        data: Option<&'static str>,
        /// The data is the whole `data` type.
        boxed: bool,
    },
    /// A struct: its base's members, then its own.
    Struct {
        /// Its base, if any.
        base: Option<&'static str>,
        /// Its own members, in schema order.
        members: &'static [Member],
    },
    /// An enum.
    Enum {
        /// Its values, in schema order.
        values: &'static [Case],
    },
    /// A flat union.
    Union {
        /// Its base struct (inline bases are `q_obj_<Union>-base`).
        base: &'static str,
        /// The base member whose value picks the variant.
        discriminator: &'static str,
        /// The variants, in schema order.
        variants: &'static [Case],
    },
    /// An alternate.
    Alternate {
        /// The alternatives, in schema order.
        alternatives: &'static [Case],
    },
}

impl Kind {
    fn same_kind(&self, other: &Kind) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// Kind facts and the versions that have them instead of the newest ones. Where the kind
/// is the newest's, its lists are empty: the entity's lists say which versions have each
/// item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindIn {
    /// Where.
    pub versions: Versions,
    /// The facts there.
    pub kind: Kind,
}

/// One named definition, merged over the versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity {
    /// Its QAPI name.
    pub name: &'static str,
    /// Where it exists.
    pub versions: Versions,
    /// Its condition in the newest version that has it.
    pub cond: Option<Cond>,
    /// Where it has another condition.
    pub older_conds: &'static [CondIn],
    /// Its kind in the newest version that has it.
    pub kind: Kind,
    /// Where it has other kind facts.
    pub older_kinds: &'static [KindIn],
}

impl Entity {
    /// No entity: the base of the generated literals (`..Entity::NONE`).
    pub const NONE: Entity = Entity {
        name: "",
        versions: Versions(0),
        cond: None,
        older_conds: &[],
        kind: Kind::Enum { values: &[] },
        older_kinds: &[],
    };
}

/// A schema: its versions, oldest first, and its entities sorted by name.
#[derive(Debug)]
pub struct Schema {
    /// The QEMU versions the model was read from (`7.2.0`, ..., `9.2.0-rc2`).
    pub versions: &'static [&'static str],
    /// Every entity, sorted by name.
    pub entities: &'static [Entity],
}

/// A build of QEMU: the config symbols of the schema's conditions, and whether it has them.
/// A symbol it does not list is unknown ([`Slice::unknown_symbols`]).
#[derive(Debug)]
pub struct Build {
    /// A name for reports.
    pub name: &'static str,
    /// The symbols, sorted.
    pub symbols: &'static [(&'static str, bool)],
}

impl Build {
    /// Whether the build has `symbol`; `None` when the table does not say.
    pub fn symbol(&self, symbol: &str) -> Option<bool> {
        self.symbols.binary_search_by(|(s, _)| (*s).cmp(symbol)).ok().map(|i| self.symbols[i].1)
    }

    /// Evaluates `cond`; `Err` names an unknown symbol. Conditions nest at most 64 deep
    /// (the schema reader's bound), so the recursion is bounded.
    pub fn eval(&self, cond: &Cond) -> Result<bool, &'static str> {
        Ok(match cond {
            Cond::Name(n) => self.symbol(n).ok_or(*n)?,
            Cond::All(v) => {
                let mut all = true;
                for c in *v {
                    all &= self.eval(c)?;
                }
                all
            }
            Cond::Any(v) => {
                let mut any = false;
                for c in *v {
                    any |= self.eval(c)?;
                }
                any
            }
            Cond::Not(c) => !self.eval(c)?,
        })
    }
}

impl Schema {
    /// The index of version `name` (a leading `v` is ignored) in [`Schema::versions`].
    pub fn version_index(&self, name: &str) -> Option<usize> {
        let name = name.strip_prefix('v').unwrap_or(name);
        self.versions.iter().position(|v| *v == name)
    }

    /// The entity named `name`, in any version.
    pub fn get(&self, name: &str) -> Option<&Entity> {
        self.entities.binary_search_by(|e| e.name.cmp(name)).ok().map(|i| &self.entities[i])
    }

    /// The schema as version `version` of `build` has it; `None` for a version not read.
    pub fn slice<'a>(&'a self, version: &str, build: &'a Build) -> Option<Slice<'a>> {
        Some(Slice { schema: self, build, index: self.version_index(version)? })
    }
}

/// A command as one version and build have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandDef {
    /// Its name.
    pub name: &'static str,
    /// Its arguments' type, if any.
    pub args: Option<&'static str>,
    /// The arguments are the whole `args` type.
    pub boxed: bool,
    /// Its return type; none: `{}`.
    pub returns: Option<&'static str>,
    /// `allow-oob`.
    pub allow_oob: bool,
    /// `success-response: false`.
    pub no_success_response: bool,
}

/// An event as one version and build have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDef {
    /// Its name.
    pub name: &'static str,
    /// Its data's type, if any.
    pub data: Option<&'static str>,
}

/// A member as one version and build have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberDef {
    /// Its name.
    pub name: &'static str,
    /// Its type there.
    pub ty: &'static str,
    /// Whether it may be left out.
    pub optional: bool,
}

/// A variant or alternative as one version and build have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseDef {
    /// The discriminator value, or the alternative's name.
    pub name: &'static str,
    /// Its type there.
    pub ty: &'static str,
}

/// A type as one version and build have it, the shape `query-qmp-schema` describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDef {
    /// A built-in: `str`, `number`, `bool`, `null`, `any`, `QType`, or an integer type
    /// (`int`, `int8`...`uint64`, `size`).
    Builtin(&'static str),
    /// A list of the element type named.
    Array(&'static str),
    /// An enum's values.
    Enum {
        /// In schema order.
        values: Vec<&'static str>,
    },
    /// A struct.
    Struct {
        /// Its bases' members (the furthest base's first), then its own.
        members: Vec<MemberDef>,
    },
    /// A flat union.
    Union {
        /// Its base's members (with the bases' bases first).
        members: Vec<MemberDef>,
        /// The member whose value picks the variant.
        discriminator: &'static str,
        /// The variants, in schema order (discriminator values without one are not listed).
        variants: Vec<CaseDef>,
    },
    /// An alternate's alternatives, in schema order.
    Alternate {
        /// Its alternatives.
        alternatives: Vec<CaseDef>,
    },
}

/// QAPI's built-in types.
const BUILTINS: &[&str] = &[
    "str", "number", "int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "size",
    "bool", "null", "any", "QType",
];

/// How deep bases may nest (QEMU's schemas use 3); deeper is treated as a loop.
const MAX_BASES: usize = 64;

/// The schema as one version of one build has it: only the items that version defines and
/// whose conditions the build satisfies. A condition with a symbol the build does not know
/// counts as false (see [`Slice::unknown_symbols`]).
#[derive(Debug, Clone, Copy)]
pub struct Slice<'a> {
    schema: &'a Schema,
    build: &'a Build,
    index: usize,
}

fn cond_at<'c>(cond: &'c Option<Cond>, older: &'c [CondIn], i: usize) -> Option<&'c Cond> {
    match older.iter().find(|c| c.versions.contains(i)) {
        Some(c) => c.cond.as_ref(),
        None => cond.as_ref(),
    }
}

fn type_at(ty: &'static str, older: &'static [TypeIn], i: usize) -> &'static str {
    older.iter().find(|t| t.versions.contains(i)).map_or(ty, |t| t.ty)
}

impl<'a> Slice<'a> {
    /// The version's name.
    pub fn version(&self) -> &'static str {
        self.schema.versions[self.index]
    }

    /// Whether the build satisfies `cond` (none: yes; an unknown symbol: no).
    pub fn holds(&self, cond: Option<&Cond>) -> bool {
        cond.is_none_or(|c| self.build.eval(c).unwrap_or(false))
    }

    fn has(&self, versions: Versions, cond: &Option<Cond>, older: &[CondIn]) -> bool {
        versions.contains(self.index) && self.holds(cond_at(cond, older, self.index))
    }

    /// The entity named `name`, if this version and build have it.
    pub fn entity(&self, name: &str) -> Option<&'a Entity> {
        let e = self.schema.get(name)?;
        self.has(e.versions, &e.cond, e.older_conds).then_some(e)
    }

    /// An entity's kind facts here, and the kind whose lists hold its items here.
    fn kinds(&self, e: &'a Entity) -> (&'a Kind, &'a Kind) {
        match e.older_kinds.iter().find(|k| k.versions.contains(self.index)) {
            Some(k) if k.kind.same_kind(&e.kind) => (&k.kind, &e.kind),
            Some(k) => (&k.kind, &k.kind),
            None => (&e.kind, &e.kind),
        }
    }

    /// Every command here, by name.
    pub fn commands(&self) -> Vec<CommandDef> {
        self.schema.entities.iter().filter_map(|e| self.command(e.name)).collect()
    }

    /// Every event here, by name.
    pub fn events(&self) -> Vec<EventDef> {
        self.schema.entities.iter().filter_map(|e| self.event(e.name)).collect()
    }

    /// Command `name`, if it exists here.
    pub fn command(&self, name: &str) -> Option<CommandDef> {
        let e = self.entity(name)?;
        match *self.kinds(e).0 {
            Kind::Command { args, boxed, returns, allow_oob, no_success_response } => {
                Some(CommandDef { name: e.name, args, boxed, returns, allow_oob, no_success_response })
            }
            _ => None,
        }
    }

    /// Event `name`, if it exists here.
    pub fn event(&self, name: &str) -> Option<EventDef> {
        let e = self.entity(name)?;
        match *self.kinds(e).0 {
            Kind::Event { data, .. } => Some(EventDef { name: e.name, data }),
            _ => None,
        }
    }

    /// The type `name` (a built-in, an array `[T]`, or a struct, enum, union or alternate
    /// this version and build have).
    pub fn ty(&self, name: &str) -> Option<TypeDef> {
        if let Some(b) = BUILTINS.iter().find(|b| **b == name) {
            return Some(TypeDef::Builtin(b));
        }
        if let Some(elem) = name.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            // The element's name as the static data spells it.
            return match self.ty(elem)? {
                TypeDef::Builtin(b) => Some(TypeDef::Array(b)),
                _ => Some(TypeDef::Array(self.entity(elem)?.name)),
            };
        }
        let e = self.entity(name)?;
        let (facts, lists) = self.kinds(e);
        Some(match (facts, lists) {
            (Kind::Enum { .. }, Kind::Enum { values }) => {
                TypeDef::Enum { values: self.cases(values).map(|c| c.name).collect() }
            }
            (Kind::Struct { .. }, Kind::Struct { .. }) => TypeDef::Struct { members: self.members(name)? },
            (Kind::Union { base, discriminator, .. }, Kind::Union { variants, .. }) => TypeDef::Union {
                members: self.members(base)?,
                discriminator,
                variants: self.case_defs(variants),
            },
            (Kind::Alternate { .. }, Kind::Alternate { alternatives }) => {
                TypeDef::Alternate { alternatives: self.case_defs(alternatives) }
            }
            _ => return None,
        })
    }

    fn cases(&self, cases: &'a [Case]) -> impl Iterator<Item = &'a Case> + '_ {
        cases.iter().filter(|c| self.has(c.versions, &c.cond, c.older_conds))
    }

    fn case_defs(&self, cases: &'a [Case]) -> Vec<CaseDef> {
        self.cases(cases)
            .map(|c| CaseDef { name: c.name, ty: type_at(c.ty.unwrap_or(""), c.older_types, self.index) })
            .collect()
    }

    /// Enum `name`'s values here, in schema order.
    pub fn enum_values(&self, name: &str) -> Option<Vec<&'static str>> {
        match self.ty(name)? {
            TypeDef::Enum { values } => Some(values),
            _ => None,
        }
    }

    /// The members of struct `name` here, its bases' first (as QEMU's introspection lists
    /// them), or of union `name`'s base. `None` for anything else, or a base missing here.
    pub fn members(&self, name: &str) -> Option<Vec<MemberDef>> {
        let e = self.entity(name)?;
        if let (Kind::Union { base, .. }, _) = self.kinds(e) {
            return self.members(base);
        }
        let mut chain = vec![e];
        let mut cur = e;
        while let (Kind::Struct { base: Some(b), .. }, _) = self.kinds(cur) {
            if chain.len() > MAX_BASES {
                return None;
            }
            cur = self.entity(b)?;
            chain.push(cur);
        }
        let mut out = Vec::new();
        for s in chain.iter().rev() {
            let Kind::Struct { members, .. } = self.kinds(s).1 else { return None };
            for m in members.iter().filter(|m| self.has(m.versions, &m.cond, m.older_conds)) {
                out.push(MemberDef {
                    name: m.name,
                    ty: type_at(m.ty, m.older_types, self.index),
                    optional: m.optional.contains(self.index),
                });
            }
        }
        Some(out)
    }

    /// The symbols of this version's conditions (of entities, members, values, variants,
    /// alternatives) that the build does not know: empty when the build's table covers the
    /// slice.
    pub fn unknown_symbols(&self) -> Vec<&'static str> {
        let i = self.index;
        let mut out = Vec::new();
        let mut note = |cond: Option<&Cond>| {
            let mut stack: Vec<&Cond> = cond.into_iter().collect();
            while let Some(c) = stack.pop() {
                match c {
                    Cond::Name(n) if self.build.symbol(n).is_none() && !out.contains(n) => out.push(*n),
                    Cond::Name(_) => {}
                    Cond::All(v) | Cond::Any(v) => stack.extend(v.iter()),
                    Cond::Not(c) => stack.push(c),
                }
            }
        };
        for e in self.schema.entities.iter().filter(|e| e.versions.contains(i)) {
            note(cond_at(&e.cond, e.older_conds, i));
            match self.kinds(e).1 {
                Kind::Struct { members, .. } => {
                    for m in members.iter().filter(|m| m.versions.contains(i)) {
                        note(cond_at(&m.cond, m.older_conds, i));
                    }
                }
                Kind::Enum { values: cases }
                | Kind::Union { variants: cases, .. }
                | Kind::Alternate { alternatives: cases } => {
                    for c in cases.iter().filter(|c| c.versions.contains(i)) {
                        note(cond_at(&c.cond, c.older_conds, i));
                    }
                }
                Kind::Command { .. } | Kind::Event { .. } => {}
            }
        }
        out.sort_unstable();
        out
    }
}
