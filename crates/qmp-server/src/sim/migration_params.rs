//! Migration parameters: `query-migrate-parameters` and `migrate-set-parameters` as QEMU 7.2
//! has them. A request is applied to a copy of the current values and the whole copy checked,
//! in QEMU's order, before anything is kept (so `max-cpu-throttle` is checked against the
//! `cpu-throttle-initial` the request leaves); the framework has already checked each member's
//! type and width.

use serde_json::{json, Map, Value};

use qmp_proto::{ErrorClass, QmpError};

use crate::server::{Args, Reply};

/// QEMU 7.2's defaults, in the order it lists them (its QDict's).
fn defaults() -> Map<String, Value> {
    let list = json!({
        "cpu-throttle-tailslow": false, "xbzrle-cache-size": 67108864, "cpu-throttle-initial": 20,
        "announce-max": 550, "decompress-threads": 2, "compress-threads": 8, "compress-level": 1,
        "multifd-channels": 2, "multifd-zstd-level": 1, "announce-initial": 50,
        "block-incremental": false, "compress-wait-thread": true, "downtime-limit": 300,
        "tls-authz": "", "multifd-compression": "none", "announce-rounds": 5, "announce-step": 100,
        "tls-creds": "", "multifd-zlib-level": 1, "max-cpu-throttle": 99,
        "max-postcopy-bandwidth": 0, "tls-hostname": "", "throttle-trigger-threshold": 50,
        "max-bandwidth": 134217728, "x-checkpoint-delay": 20000, "cpu-throttle-increment": 10,
    });
    match list {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The parameters `migrate-set-parameters` takes but QEMU 7.2 neither checks nor keeps.
const IGNORED: &[&str] = &["multifd-zlib-level", "multifd-zstd-level"];

/// The parameters that take a string or null (QAPI's `StrOrNull`).
const STR_OR_NULL: &[&str] = &["tls-creds", "tls-hostname", "tls-authz"];

/// Where QEMU lists `block-bitmap-mapping` once it is set: after this member.
const MAPPING_AFTER: &str = "decompress-threads";

pub(crate) struct MigrationParams {
    values: Map<String, Value>,
}

impl Default for MigrationParams {
    fn default() -> Self {
        MigrationParams { values: defaults() }
    }
}

fn generic(desc: String) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

impl MigrationParams {
    pub fn query(&self) -> Reply {
        Ok(Value::Object(self.values.clone()))
    }

    pub fn set(&mut self, args: &Args) -> Reply {
        // The framework has no alternates: QEMU's StrOrNull is checked here.
        for name in STR_OR_NULL {
            if args.get(*name).is_some_and(|v| !v.is_string() && !v.is_null()) {
                return Err(generic(format!("Invalid parameter type for '{name}', expected: StrOrNull")));
            }
        }
        let mut next = self.values.clone();
        for (name, value) in args {
            if IGNORED.contains(&name.as_str()) {
                continue;
            }
            let value = match value {
                // The TLS strings take null for "none", shown as "".
                Value::Null => json!(""),
                // A negative size or uint64 is its two's complement, as QEMU reads it.
                Value::Number(n) if n.is_i64() && n.as_i64().is_some_and(|i| i < 0) => {
                    json!(n.as_i64().map_or(0, |i| i as u64))
                }
                other => other.clone(),
            };
            if name == "block-bitmap-mapping" && !next.contains_key(name) {
                next = insert_after(next, MAPPING_AFTER, name, value);
            } else {
                next.insert(name.clone(), value);
            }
        }
        check(&next)?;
        self.values = next;
        Ok(json!({}))
    }
}

/// `map` with `key: value` placed after `after` (at the end when `after` is missing).
fn insert_after(map: Map<String, Value>, after: &str, key: &str, value: Value) -> Map<String, Value> {
    let mut out = Map::new();
    let mut value = Some(value);
    for (k, v) in map {
        let here = k == after;
        out.insert(k, v);
        if here {
            if let Some(value) = value.take() {
                out.insert(key.to_owned(), value);
            }
        }
    }
    if let Some(value) = value {
        out.insert(key.to_owned(), value);
    }
    out
}

/// QEMU's checks of a whole set of parameters, in its order, with its texts (which name the
/// parameters with underscores).
fn check(p: &Map<String, Value>) -> Result<(), QmpError> {
    let num = |name: &str| p.get(name).and_then(Value::as_u64).unwrap_or(0);
    let between = |name: &str, low: u64, high: u64| -> Result<(), QmpError> {
        let v = num(name);
        if v < low || v > high {
            let name = name.replace('-', "_");
            return Err(generic(format!("Parameter '{name}' expects a value between {low} and {high}")));
        }
        Ok(())
    };
    let in_range = |name: &str, low: u64, high: u64| -> Result<(), QmpError> {
        let v = num(name);
        if v < low || v > high {
            let name = name.replace('-', "_");
            return Err(generic(format!(
                "Parameter '{name}' expects an integer in the range of {low} to {high}"
            )));
        }
        Ok(())
    };
    between("compress-level", 0, 9)?;
    between("compress-threads", 1, 255)?;
    between("decompress-threads", 1, 255)?;
    in_range("throttle-trigger-threshold", 1, 100)?;
    in_range("cpu-throttle-initial", 1, 99)?;
    in_range("cpu-throttle-increment", 1, 99)?;
    if num("downtime-limit") > 2_000_000 {
        return Err(generic(
            "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms".into(),
        ));
    }
    between("multifd-channels", 1, 255)?;
    let cache = num("xbzrle-cache-size");
    if cache < 4096 || !cache.is_power_of_two() {
        return Err(generic(
            "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size".into(),
        ));
    }
    let throttle = num("max-cpu-throttle");
    if throttle < num("cpu-throttle-initial") || throttle > 99 {
        return Err(generic(
            "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99"
                .into(),
        ));
    }
    between("announce-initial", 0, 100_000)?;
    between("announce-max", 0, 100_000)?;
    between("announce-rounds", 0, 1000)?;
    // QEMU refuses 0 here, though its text says 0 is allowed.
    if !(1..=10_000).contains(&num("announce-step")) {
        return Err(generic("Parameter 'announce_step' expects a value between 0 and 10000".into()));
    }
    Ok(())
}
