//! Checking a command's arguments against the schema before they are sent.
//!
//! The walk keeps its own stack (no recursion), one entry per value still to check, so a
//! value of any depth is checked in constant stack; paths are kept as parent links and
//! written out only for a problem. Each step consumes a level of the value, except an
//! alternate choosing its branch, which is bounded: a cyclic schema cannot loop.

use std::fmt;

use serde_json::{Map, Value};

use super::{abbreviate, ObjectType, Schema, Type, TypeKind, MAX_HOPS, OPEN_COMMANDS};

/// At most this many problems are reported for one call; the walk stops there.
///
/// ```
/// assert_eq!(qmp::schema::MAX_PROBLEMS, 64);
/// ```
pub const MAX_PROBLEMS: usize = 64;

/// One thing wrong with a command's arguments: where, and what.
///
/// ```
/// use qmp::schema::{ProblemKind, SchemaProblem};
/// let p = SchemaProblem {
///     path: "file.bogus".into(),
///     kind: ProblemKind::UnknownMember { closest: vec!["driver".into()], in_variants: vec![] },
/// };
/// assert_eq!(p.to_string(), "unknown member 'file.bogus' (did you mean 'driver'?)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// Where, as a member path: `file.driver`, `actions[1].data.node`; empty for the
    /// arguments as a whole (and for an unknown command).
    pub path: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong at a [`SchemaProblem`]'s path.
///
/// ```
/// # fn demo(problem: &qmp::SchemaProblem) {
/// use qmp::schema::ProblemKind;
/// match &problem.kind {
///     ProblemKind::UnknownMember { closest, .. } if !closest.is_empty() => {
///         println!("{}: try {}", problem.path, closest.join(", "))
///     }
///     ProblemKind::BadEnumValue { valid, .. } => println!("{}: one of {valid:?}", problem.path),
///     _ => println!("{problem}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The schema has no such command.
    UnknownCommand {
        /// The command's name.
        command: String,
    },
    /// A member the object does not have (in the union variant chosen).
    UnknownMember {
        /// The valid names closest to it, best first (at most 3; maybe none).
        closest: Vec<String>,
        /// The other variants of the union that have a member of this name, as `tag=value`
        /// (`driver=file` for `filename` given with `driver=qcow2`); maybe none.
        in_variants: Vec<String>,
    },
    /// A value of the wrong JSON type.
    WrongType {
        /// The type wanted, as [`Type::label`] words it (`string`, `int`, `object`, ...).
        expected: String,
        /// The value's JSON type: `string`, `integer`, `number`, `boolean`, `null`,
        /// `object` or `array`.
        got: &'static str,
        /// The value, shortened (`12`, `"yes"`, `{...}`).
        value: String,
    },
    /// A required member is missing.
    MissingMember {
        /// Its type, as [`Type::label`] words it.
        expected: String,
    },
    /// A string that is not one of the enum's values.
    BadEnumValue {
        /// The value given.
        value: String,
        /// Every valid value, in the schema's order.
        valid: Vec<String>,
        /// The valid values closest to it, best first (at most 3; maybe none).
        closest: Vec<String>,
    },
    /// A union's tag names no variant (the path is the tag member's).
    NoSuchVariant {
        /// The tag value given.
        value: String,
        /// The tag values with a variant.
        valid: Vec<String>,
    },
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        let at = |f: &mut fmt::Formatter<'_>| {
            if path.is_empty() {
                f.write_str("the arguments")
            } else {
                write!(f, "'{path}'")
            }
        };
        match &self.kind {
            ProblemKind::UnknownCommand { command } => write!(f, "unknown command '{command}'"),
            ProblemKind::UnknownMember { closest, in_variants } => {
                write!(f, "unknown member '{path}'")?;
                did_you_mean(f, closest)?;
                if !in_variants.is_empty() {
                    let variants: Vec<&str> = in_variants.iter().map(String::as_str).collect();
                    write!(f, " (a member when {})", abbreviate(&variants, 4).replace('|', ", "))?;
                }
                Ok(())
            }
            ProblemKind::WrongType { expected, got, value } => {
                at(f)?;
                match *got {
                    "object" => write!(f, ": expected {expected}, got an object"),
                    "array" => write!(f, ": expected {expected}, got an array"),
                    _ => write!(f, ": expected {expected}, got {got} {value}"),
                }
            }
            ProblemKind::MissingMember { expected } => {
                write!(f, "missing required member '{path}' ({expected})")
            }
            ProblemKind::BadEnumValue { value, valid, closest } => {
                at(f)?;
                let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
                write!(f, ": '{value}' is not one of {}", abbreviate(&valid, 8))?;
                did_you_mean(f, closest)
            }
            ProblemKind::NoSuchVariant { value, valid } => {
                at(f)?;
                let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
                write!(f, ": no variant '{value}' (one of {})", abbreviate(&valid, 8))
            }
        }
    }
}

fn did_you_mean(f: &mut fmt::Formatter<'_>, closest: &[String]) -> fmt::Result {
    if closest.is_empty() {
        return Ok(());
    }
    let quoted: Vec<String> = closest.iter().map(|c| format!("'{c}'")).collect();
    write!(f, " (did you mean {}?)", quoted.join(" or "))
}

/// Problems joined with `; `, for error messages.
pub(crate) fn join(problems: &[SchemaProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Schema {
    /// Checks `args` (an object, or `null` for none) against `command`'s arguments, as QEMU
    /// would check them: every member known (in the union variant the tag chooses; any member
    /// for [`OPEN_COMMANDS`]), of the right JSON type, enum values valid, required members
    /// present. Each problem names its path; they come sorted by path, at most
    /// [`MAX_PROBLEMS`]. An unknown command is one problem.
    ///
    /// ```
    /// # fn demo(schema: &qmp::Schema) {
    /// use serde_json::json;
    /// let problems = schema
    ///     .validate_arguments("blockdev-add", &json!({"driver": "null-co", "node-name": "n0", "bogus": 1}))
    ///     .unwrap_err();
    /// assert_eq!(problems[0].path, "bogus");
    /// # }
    /// ```
    pub fn validate_arguments(&self, command: &str, args: &Value) -> Result<(), Vec<SchemaProblem>> {
        let Some(cmd) = self.command(command) else {
            let kind = ProblemKind::UnknownCommand { command: command.to_owned() };
            return Err(vec![SchemaProblem { path: String::new(), kind }]);
        };
        let empty = Value::Object(Map::new());
        let args = if args.is_null() { &empty } else { args };
        let mut walk = Walk { paths: Vec::new(), problems: Vec::new(), todo: Vec::new() };
        walk.todo.push(Item { ty: cmd.arguments(), value: args, path: ROOT, hops: 0, open: false });
        if OPEN_COMMANDS.contains(&command) {
            walk.todo[0].open = true;
        }
        walk.run();
        let mut problems = walk.problems;
        if problems.is_empty() {
            return Ok(());
        }
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        Err(problems)
    }
}

const ROOT: usize = usize::MAX;

enum Seg<'v> {
    Key(&'v str),
    Index(usize),
}

struct Item<'a, 'v> {
    ty: Type<'a>,
    value: &'v Value,
    path: usize,
    /// Alternates gone through at this level of the value.
    hops: usize,
    /// Unknown members are allowed (the top level of an open command).
    open: bool,
}

struct Walk<'a, 'v> {
    /// Each path step: its parent's index (or ROOT) and the step.
    paths: Vec<(usize, Seg<'v>)>,
    problems: Vec<SchemaProblem>,
    todo: Vec<Item<'a, 'v>>,
}

impl<'a, 'v> Walk<'a, 'v> {
    fn run(&mut self) {
        while let Some(item) = self.todo.pop() {
            if self.problems.len() >= MAX_PROBLEMS {
                return;
            }
            self.check(item);
        }
    }

    fn child(&mut self, parent: usize, seg: Seg<'v>) -> usize {
        self.paths.push((parent, seg));
        self.paths.len() - 1
    }

    fn render(&self, mut at: usize) -> String {
        let mut segs = Vec::new();
        while at != ROOT {
            let (parent, seg) = &self.paths[at];
            segs.push(seg);
            at = *parent;
        }
        let mut out = String::new();
        for seg in segs.into_iter().rev() {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn render_member(&self, at: usize, name: &str) -> String {
        let parent = self.render(at);
        if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    }

    fn problem(&mut self, path: String, kind: ProblemKind) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(SchemaProblem { path, kind });
        }
    }

    fn wrong(&mut self, item: &Item<'a, 'v>, expected: String) {
        let (got, value) = describe(item.value);
        let path = self.render(item.path);
        self.problem(path, ProblemKind::WrongType { expected, got, value });
    }

    fn check(&mut self, item: Item<'a, 'v>) {
        match item.ty.kind() {
            TypeKind::Undefined => {}
            TypeKind::Builtin(j) => {
                if !j.accepts(item.value) {
                    self.wrong(&item, j.label().to_owned());
                }
            }
            TypeKind::Enum(e) => match item.value {
                Value::String(s) if e.has_value(s) => {}
                Value::String(s) => {
                    let valid: Vec<String> = e.values().map(str::to_owned).collect();
                    let closest = closest(s, e.values());
                    let path = self.render(item.path);
                    self.problem(path, ProblemKind::BadEnumValue { value: s.clone(), valid, closest });
                }
                _ => self.wrong(&item, item.ty.label()),
            },
            TypeKind::Array(el) => match item.value {
                Value::Array(values) => {
                    // Pushed in reverse so that they are checked in order.
                    for (i, v) in values.iter().enumerate().rev() {
                        let path = self.child(item.path, Seg::Index(i));
                        self.todo.push(Item { ty: el, value: v, path, hops: 0, open: false });
                    }
                }
                _ => self.wrong(&item, item.ty.label()),
            },
            TypeKind::Alternate(a) => {
                if item.hops >= MAX_HOPS {
                    return;
                }
                match a.branches().find(|b| takes_json_type_of(b, item.value)) {
                    Some(b) => self.todo.push(Item { ty: b, hops: item.hops + 1, ..item }),
                    None => self.wrong(&item, item.ty.label()),
                }
            }
            TypeKind::Object(o) => match item.value {
                Value::Object(map) => self.check_object(o, map, item.path, item.open),
                _ => self.wrong(&item, item.ty.label()),
            },
        }
    }

    fn check_object(&mut self, o: ObjectType<'a>, map: &'v Map<String, Value>, at: usize, open: bool) {
        // A union whose tag names no variant: its members are unknown, so only the common
        // ones are checked (and unknown members are not reported).
        let mut variant_known = true;
        let mut bad_tag = None;
        if let Some(tag) = o.tag() {
            match map.get(tag) {
                Some(Value::String(s)) if o.variant(s).is_none() => {
                    variant_known = false;
                    bad_tag = Some(tag);
                    let valid = o.variants().map(|(c, _)| c.to_owned()).collect();
                    let path = self.render_member(at, tag);
                    self.problem(path, ProblemKind::NoSuchVariant { value: s.clone(), valid });
                }
                Some(Value::String(_)) => {}
                _ => variant_known = false,
            }
        }
        let members = o.members_for(Some(map));
        let mut items = Vec::new();
        for (key, value) in map {
            if bad_tag == Some(key.as_str()) {
                continue;
            }
            match members.iter().find(|m| m.name() == key) {
                Some(m) => {
                    let path = self.child(at, Seg::Key(key));
                    items.push(Item { ty: m.ty(), value, path, hops: 0, open: false });
                }
                None if open || !variant_known => {}
                None => {
                    let in_variants = variants_having(o, key);
                    // A member of another variant is no typo: no near names then.
                    let closest = if in_variants.is_empty() {
                        closest(key, members.iter().map(|m| m.name()))
                    } else {
                        Vec::new()
                    };
                    let path = self.render_member(at, key);
                    self.problem(path, ProblemKind::UnknownMember { closest, in_variants });
                }
            }
        }
        for m in &members {
            if !m.is_optional() && !map.contains_key(m.name()) {
                let path = self.render_member(at, m.name());
                self.problem(path, ProblemKind::MissingMember { expected: m.ty().label() });
            }
        }
        self.todo.extend(items.into_iter().rev());
    }
}

/// The variants of union `o` that have a member `name`, as `tag=value`.
fn variants_having(o: ObjectType<'_>, name: &str) -> Vec<String> {
    let Some(tag) = o.tag() else { return Vec::new() };
    o.variants()
        .filter(|(_, v)| v.as_object().is_some_and(|v| v.members().any(|m| m.name() == name)))
        .map(|(case, _)| format!("{tag}={case}"))
        .collect()
}

/// True when `value`'s JSON type selects branch `ty` of an alternate (QEMU picks the branch by
/// JSON type alone, then checks the value against it).
fn takes_json_type_of(ty: &Type<'_>, value: &Value) -> bool {
    match ty.kind() {
        TypeKind::Builtin(j) => j.accepts(value),
        TypeKind::Enum(_) => value.is_string(),
        TypeKind::Array(_) => value.is_array(),
        TypeKind::Object(_) => value.is_object(),
        TypeKind::Alternate(_) | TypeKind::Undefined => true,
    }
}

/// A value's JSON type and a short text of it.
fn describe(value: &Value) -> (&'static str, String) {
    let got = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let text = match value {
        Value::Array(_) => "[...]".to_owned(),
        Value::Object(_) => "{...}".to_owned(),
        v => {
            let t = v.to_string();
            if t.chars().count() > 40 {
                format!("{}...", t.chars().take(37).collect::<String>())
            } else {
                t
            }
        }
    };
    (got, text)
}

/// The candidates closest to `word` by edit distance (or sharing its start), best first, at
/// most 3.
fn closest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Vec<String> {
    let limit = (word.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = edit_distance(word, c);
            let prefix = word.len() >= 3 && (c.starts_with(word) || word.starts_with(c));
            (d <= limit || prefix).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, c)| c.to_owned()).collect()
}

/// Levenshtein distance, in characters (names are short; long inputs are cut at 64).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("node", "node"), 0);
        assert_eq!(edit_distance("nam", "name"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("nam", ["node", "name", "granularity"].into_iter()), ["name"]);
        assert_eq!(closest("gran", ["node", "granularity"].into_iter()), ["granularity"]);
        assert_eq!(closest("bogus", ["driver", "node-name"].into_iter()), Vec::<String>::new());
    }
}
