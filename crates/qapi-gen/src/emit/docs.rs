//! The facts a generated item's doc comment states: its QAPI name and kind, its module, the
//! `Since:` version, the versions of this build that have it, features and conditions, and a
//! link to QEMU's reference. Never QEMU's prose.

use crate::model::{Cond, Feature, Versions};

/// QEMU's QMP reference manual.
pub const QMP_REFERENCE: &str = "https://www.qemu.org/docs/master/interop/qemu-qmp-ref.html";
/// QEMU's guest agent reference manual.
pub const QGA_REFERENCE: &str = "https://www.qemu.org/docs/master/interop/qemu-ga-ref.html";

/// The versions of `set` as ranges over `all`: `7.2.0 to 9.2.0-rc2`, `7.2.0 to 8.2.0, 9.1.0`.
pub fn versions_text(set: Versions, all: &[String]) -> String {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < all.len() {
        if set.contains(i) {
            let start = i;
            while i + 1 < all.len() && set.contains(i + 1) {
                i += 1;
            }
            ranges.push(if start == i { all[i].clone() } else { format!("{} to {}", all[start], all[i]) });
        }
        i += 1;
    }
    ranges.join(", ")
}

/// `CONFIG_A and not B`, for a doc line.
pub fn cond_text(cond: &Cond) -> String {
    match cond {
        Cond::Name(n) => format!("`{n}`"),
        Cond::Not(c) => format!("not {}", cond_text(c)),
        Cond::All(cs) => cs.iter().map(cond_text).collect::<Vec<_>>().join(" and "),
        Cond::Any(cs) => format!("({})", cs.iter().map(cond_text).collect::<Vec<_>>().join(" or ")),
    }
}

/// The first version in which a feature is set, if any.
pub fn feature_since<'a>(features: &[Feature], name: &str, all: &'a [String]) -> Option<&'a str> {
    let f = features.iter().find(|f| f.name == name)?;
    (0..all.len()).find(|&i| f.versions.contains(i)).map(|i| all[i].as_str())
}

/// Whether the feature is set in the newest version that has the item.
pub fn has_feature_now(features: &[Feature], name: &str, present: Versions, all: &[String]) -> bool {
    let Some(newest) = (0..all.len()).rev().find(|&i| present.contains(i)) else { return false };
    features.iter().any(|f| f.name == name && f.versions.contains(newest))
}

/// Doc lines for an item's facts (without the leading `///`).
pub struct Facts<'a> {
    /// The heading: ``QAPI command `query-status` ``.
    pub heading: String,
    /// The module, for entities.
    pub module: Option<&'a str>,
    /// The `Since:` version.
    pub since: Option<&'a str>,
    /// Where it exists.
    pub versions: Versions,
    /// Its features.
    pub features: &'a [Feature],
    /// Its condition.
    pub cond: Option<&'a Cond>,
    /// The reference manual to link.
    pub reference: Option<&'a str>,
}

impl Facts<'_> {
    /// The doc comment lines.
    pub fn lines(&self, all: &[String]) -> Vec<String> {
        let mut out = vec![self.heading.clone()];
        let mut facts = Vec::new();
        if let Some(m) = self.module {
            facts.push(format!("module `{m}`"));
        }
        if let Some(s) = self.since {
            facts.push(format!("since QEMU {s}"));
        }
        let present = if self.versions.is_all(all.len()) {
            format!("in every QEMU this build covers ({})", versions_text(self.versions, all))
        } else {
            format!("in QEMU {} only", versions_text(self.versions, all))
        };
        facts.push(present);
        out.push(String::new());
        out.push(format!("Facts: {}.", facts.join("; ")));
        for f in self.features {
            let when = versions_text(f.versions, all);
            match f.name.as_str() {
                "deprecated" => out.push(format!("\n**Deprecated** (in QEMU {when}).")),
                "unstable" => out
                    .push(format!("\n**Unstable**: may change or go away in any release (in QEMU {when}).")),
                other => out.push(format!("\nFeature `{other}` (in QEMU {when}).")),
            }
        }
        if let Some(c) = self.cond {
            out.push(format!("\nOnly in QEMU builds where {} holds.", cond_text(c)));
        }
        if let Some(r) = self.reference {
            out.push(format!("\nSee QEMU's reference: <{r}>."));
        }
        out.iter().flat_map(|l| l.split('\n').map(str::to_owned).collect::<Vec<_>>()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges() {
        let all: Vec<String> = ["7.2.0", "8.0.0", "8.1.0", "9.0.0"].iter().map(|s| s.to_string()).collect();
        assert_eq!(versions_text(Versions(0b1111), &all), "7.2.0 to 9.0.0");
        assert_eq!(versions_text(Versions(0b1011), &all), "7.2.0 to 8.0.0, 9.0.0");
        assert_eq!(versions_text(Versions(0b0100), &all), "8.1.0");
    }
}
