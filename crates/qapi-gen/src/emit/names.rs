//! QAPI names in Rust's case: `query-cpus-fast` → `QueryCpusFast`, `node-name` → `node_name`,
//! `BLOCK_JOB_PENDING` → `BlockJobPending`, enum value `finish-migrate` → `FinishMigrate`.

/// Words Rust reserves, which a field may not be named as they are.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
    "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static",
    "struct", "super", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual",
    "where", "while", "yield",
];

/// The pieces of a QAPI name: split at `-`, `_`, `.` and `+`, empty pieces (from `__vendor`
/// prefixes) dropped.
fn pieces(name: &str) -> impl Iterator<Item = &str> {
    name.split(['-', '_', '.', '+', ':']).filter(|p| !p.is_empty())
}

/// A type, command, event or variant name in UpperCamelCase. Pieces keep their inner case
/// (`X86CPURegister32` stays as it is); an all-capitals piece of an event name is lowered
/// (`BLOCK_JOB_PENDING` → `BlockJobPending`). A name starting with a digit gets `V` first.
pub fn type_name(name: &str) -> String {
    let shouting = name.chars().all(|c| !c.is_ascii_lowercase());
    let mut out = String::with_capacity(name.len());
    for piece in pieces(name) {
        let mut chars = piece.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            if shouting {
                out.extend(chars.map(|c| c.to_ascii_lowercase()));
            } else {
                out.extend(chars);
            }
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    // QAPI has a struct named `String`: it must not shadow Rust's own names where glob-imported.
    if PRELUDE.contains(&out.as_str()) {
        out.insert_str(0, "Qapi");
    }
    out
}

/// Names of Rust's prelude and std types that generated types must not take.
const PRELUDE: &[&str] = &["String", "Option", "Result", "Vec", "Box", "Some", "None", "Ok", "Err", "Self"];

/// A field name in snake_case: `node-name` → `node_name`, `type` → `type_`, a leading digit
/// gets `_` first.
pub fn field_name(name: &str) -> String {
    let mut out: String = pieces(name).collect::<Vec<_>>().join("_").to_ascii_lowercase();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// A module name for a QAPI module (file stem): `block-core` → `block_core`.
pub fn module_name(module: &str) -> String {
    field_name(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_rust_case() {
        assert_eq!(type_name("query-cpus-fast"), "QueryCpusFast");
        assert_eq!(type_name("netdev_add"), "NetdevAdd");
        assert_eq!(type_name("BLOCK_JOB_PENDING"), "BlockJobPending");
        assert_eq!(type_name("StatusInfo"), "StatusInfo");
        assert_eq!(type_name("X86CPURegister32"), "X86CPURegister32");
        assert_eq!(type_name("__com.redhat_drive-mirror"), "ComRedhatDriveMirror");
        assert_eq!(type_name("finish-migrate"), "FinishMigrate");
        assert_eq!(type_name("1"), "V1");
        assert_eq!(type_name("String"), "QapiString");
        assert_eq!(field_name("node-name"), "node_name");
        assert_eq!(field_name("type"), "type_");
        assert_eq!(field_name("if"), "if_");
        assert_eq!(field_name("CPU"), "cpu");
        assert_eq!(field_name("x-perf"), "x_perf");
        assert_eq!(field_name("0"), "_0");
        assert_eq!(module_name("block-core"), "block_core");
    }
}
