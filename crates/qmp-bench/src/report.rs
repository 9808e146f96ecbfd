//! The results of a run: a table for people (each figure next to its reference, the cost
//! ratio, the target and PASS/MISS) and one JSON object for programs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A target a figure must meet.
#[derive(Clone, Copy)]
pub enum Target {
    /// The figure at most this many times the reference (a time).
    AtMostTimesRef(f64),
    /// The figure at least 1/k of the reference (a rate): cost at most k.
    RateWithinTimesRef(f64),
    /// The figure at most this (in its own unit).
    AtMost(f64),
    /// The figure at least this (in its own unit).
    AtLeast(f64),
}

impl Target {
    fn text(self, unit: &str) -> String {
        match self {
            Target::AtMostTimesRef(k) => format!("<= {k:.2} x ref"),
            Target::RateWithinTimesRef(k) => format!(">= ref / {k}"),
            Target::AtMost(v) => format!("<= {} {unit}", human(v)),
            Target::AtLeast(v) => format!(">= {} {unit}", human(v)),
        }
    }

    fn passes(self, value: f64, reference: Option<f64>) -> Option<bool> {
        match self {
            Target::AtMostTimesRef(k) => reference.map(|r| value <= k * r),
            Target::RateWithinTimesRef(k) => reference.map(|r| value * k >= r),
            Target::AtMost(v) => Some(value <= v),
            Target::AtLeast(v) => Some(value >= v),
        }
    }
}

/// One line of the table.
pub struct Row {
    /// What was measured.
    pub measure: String,
    /// Our figure, or why it is missing.
    pub value: Result<f64, String>,
    /// Its unit (`us`, `/s`, `ms`, `KiB`).
    pub unit: &'static str,
    /// What it is compared with, and that figure.
    pub reference: Option<(String, f64)>,
    /// True for rates (higher is better), false for times and sizes.
    pub higher_is_better: bool,
    /// Targets from the issue.
    pub targets: Vec<Target>,
}

impl Row {
    /// A row without reference or target.
    pub fn new(measure: impl Into<String>, value: Result<f64, String>, unit: &'static str) -> Row {
        Row {
            measure: measure.into(),
            value,
            unit,
            reference: None,
            higher_is_better: unit == "/s",
            targets: vec![],
        }
    }

    /// Compares with `name`'s figure.
    pub fn vs(mut self, name: &str, reference: Option<f64>) -> Row {
        self.reference = reference.map(|r| (name.to_owned(), r));
        self
    }

    /// Adds a target.
    pub fn target(mut self, t: Target) -> Row {
        self.targets.push(t);
        self
    }

    /// How many times the reference's cost ours is (time / time, or rate_ref / rate).
    fn cost(&self) -> Option<f64> {
        let v = *self.value.as_ref().ok()?;
        let (_, r) = self.reference.as_ref()?;
        Some(if self.higher_is_better { r / v } else { v / r })
    }

    fn verdict(&self) -> Option<bool> {
        let v = *self.value.as_ref().ok()?;
        let r = self.reference.as_ref().map(|(_, r)| *r);
        let all: Option<Vec<bool>> = self.targets.iter().map(|t| t.passes(v, r)).collect();
        if self.targets.is_empty() {
            None
        } else {
            Some(all?.into_iter().all(|b| b))
        }
    }
}

/// A whole run.
#[derive(Default)]
pub struct Report {
    /// Table rows, in order.
    pub rows: Vec<Row>,
    /// The JSON object's numbers (None → null).
    pub numbers: BTreeMap<&'static str, Option<f64>>,
    /// Why a JSON key is null.
    pub missing: BTreeMap<&'static str, String>,
    /// Facts about the run (machine, versions, settings).
    pub facts: BTreeMap<&'static str, String>,
}

impl Report {
    /// Records a JSON number (or why it is missing) and returns it.
    pub fn num(&mut self, key: &'static str, value: &Result<f64, String>) -> Option<f64> {
        match value {
            Ok(v) => {
                self.numbers.insert(key, Some(*v));
                Some(*v)
            }
            Err(why) => {
                self.numbers.insert(key, None);
                self.missing.insert(key, why.clone());
                None
            }
        }
    }

    /// Adds a row.
    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// The table, as Markdown (readable in a terminal and pasteable into BENCHMARKS.md).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let head = ["measure", "ours", "reference", "ref figure", "cost x ref", "target", "result"];
        let rows: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|r| {
                let value = match &r.value {
                    Ok(v) => format!("{} {}", human(*v), r.unit),
                    Err(why) => format!("missing ({why})"),
                };
                let (rname, rval) = match &r.reference {
                    Some((n, v)) => (n.clone(), format!("{} {}", human(*v), r.unit)),
                    None => (String::new(), String::new()),
                };
                let cost = r.cost().map(|c| format!("{c:.2}")).unwrap_or_default();
                let target = r.targets.iter().map(|t| t.text(r.unit)).collect::<Vec<_>>().join(", ");
                let verdict = match (r.verdict(), &r.value) {
                    (Some(true), _) => "PASS".to_owned(),
                    (Some(false), _) => "MISS".to_owned(),
                    (None, Err(_)) if !r.targets.is_empty() => "MISSING".to_owned(),
                    _ => String::new(),
                };
                [r.measure.clone(), value, rname, rval, cost, target, verdict]
            })
            .collect();
        let mut widths = head.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (c, w) in cells.iter().zip(widths) {
                let _ = write!(out, " {c:<w$} |");
            }
            out.push('\n');
        };
        line(&mut out, &head.map(String::from));
        line(&mut out, &widths.map(|w| "-".repeat(w)));
        for r in &rows {
            line(&mut out, r);
        }
        out
    }

    /// The JSON object: every number (null when missing), `missing` reasons, `facts`.
    pub fn json(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        for (k, v) in &self.numbers {
            let n = v.and_then(serde_json::Number::from_f64).map_or(serde_json::Value::Null, |n| {
                // Round to 3 decimals: more digits are noise.
                serde_json::Number::from_f64((n.as_f64().unwrap_or(0.0) * 1000.0).round() / 1000.0)
                    .map_or(serde_json::Value::Number(n), serde_json::Value::Number)
            });
            obj.insert((*k).to_owned(), n);
        }
        obj.insert("missing".into(), serde_json::to_value(&self.missing).unwrap_or_default());
        obj.insert("facts".into(), serde_json::to_value(&self.facts).unwrap_or_default());
        let verdicts: serde_json::Map<String, serde_json::Value> = self
            .rows
            .iter()
            .filter(|r| !r.targets.is_empty())
            .map(|r| {
                (r.measure.clone(), r.verdict().map_or(serde_json::Value::Null, serde_json::Value::Bool))
            })
            .collect();
        obj.insert("targets_met".into(), serde_json::Value::Object(verdicts));
        serde_json::Value::Object(obj)
    }
}

/// A number with few significant digits and thousands separators.
pub fn human(v: f64) -> String {
    if v >= 1000.0 {
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        out
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humans() {
        assert_eq!(human(1234567.8), "1,234,568");
        assert_eq!(human(123.4), "123");
        assert_eq!(human(12.34), "12.3");
        assert_eq!(human(1.234), "1.23");
    }

    #[test]
    fn verdicts_and_costs() {
        let r =
            Row::new("serial", Ok(26.0), "us").vs("floor", Some(24.0)).target(Target::AtMostTimesRef(1.15));
        assert_eq!(r.verdict(), Some(true));
        assert!((r.cost().unwrap() - 26.0 / 24.0).abs() < 1e-9);
        let r = Row::new("rate", Ok(300_000.0), "/s")
            .vs("floor", Some(1_000_000.0))
            .target(Target::AtLeast(400_000.0))
            .target(Target::RateWithinTimesRef(2.0));
        assert_eq!(r.verdict(), Some(false));
        let r = Row::new("rss", Err("no peer".into()), "KiB").target(Target::AtMost(4096.0));
        assert_eq!(r.verdict(), None);
        assert!(Report { rows: vec![r], ..Default::default() }.table().contains("MISSING"));
    }
}
