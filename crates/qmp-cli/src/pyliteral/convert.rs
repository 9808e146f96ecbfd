//! From a parsed literal to the JSON `json.dumps` would send.

use serde_json::{Map, Number, Value};

use super::{Lit, LitError};

/// Converts as `json.dumps` would, refusing what it (or QEMU) cannot take. Containers were
/// converted when they closed: nothing here recurses.
pub(super) fn to_json(lit: Lit) -> Result<Value, LitError> {
    convert(lit).map_err(LitError::NotJson)
}

/// [`to_json`], the error being what the value is.
fn convert(lit: Lit) -> Result<Value, String> {
    Ok(match lit {
        Lit::None => Value::Null,
        Lit::Bool(b) => Value::Bool(b),
        Lit::Int(n) => Value::Number(int_number(n)?),
        Lit::Float(f) => Value::Number(Number::from_f64(f).ok_or("an infinite number")?),
        Lit::Str(s) => Value::String(s),
        Lit::Bytes => return Err("a bytes literal".into()),
        Lit::Complex => return Err("a complex number".into()),
        Lit::Ellipsis => return Err("an Ellipsis".into()),
        Lit::Set => return Err("a set (use [...] for a list)".into()),
        Lit::Array(v, _) | Lit::Object(v) => v?,
    })
}

/// The items of a list or tuple that just closed, as a JSON array.
pub(super) fn array(items: Vec<Lit>) -> Result<Value, String> {
    items.into_iter().map(convert).collect::<Result<_, _>>().map(Value::Array)
}

/// The entries of a dict that just closed, as a JSON object.
pub(super) fn object(entries: Vec<(Lit, Lit)>) -> Result<Value, String> {
    let mut map = Map::new();
    for (k, v) in python_dict(entries) {
        map.insert(dict_key(k)?, convert(v)?);
    }
    Ok(Value::Object(map))
}

/// Builds a dict as Python does: a key equal to an earlier one (`1`, `1.0` and `True` are
/// equal) keeps the first spelling and takes the later value.
fn python_dict(entries: Vec<(Lit, Lit)>) -> Vec<(Lit, Lit)> {
    #[derive(PartialEq, Eq, Hash)]
    enum Key {
        Str(String),
        Int(i128),
        Float(u64),
        None,
        /// Keys that are never equal to another (they fail conversion anyway).
        Unique(usize),
    }
    let mut unique: Vec<(Lit, Lit)> = Vec::with_capacity(entries.len());
    let mut seen: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    for (i, (k, v)) in entries.into_iter().enumerate() {
        let key = match &k {
            Lit::Str(s) => Key::Str(s.clone()),
            Lit::Int(Some(n)) => Key::Int(*n),
            Lit::Bool(b) => Key::Int(i128::from(*b)),
            Lit::Float(f) if f.fract() == 0.0 && f.abs() < 1e38 => Key::Int(*f as i128),
            Lit::Float(f) => Key::Float(f.to_bits()),
            Lit::None => Key::None,
            _ => Key::Unique(i),
        };
        match seen.get(&key) {
            Some(&at) => {
                let slot: &mut (Lit, Lit) = &mut unique[at];
                slot.1 = v;
            }
            None => {
                seen.insert(key, unique.len());
                unique.push((k, v));
            }
        }
    }
    unique
}

/// A 64-bit JSON integer, as QEMU reads them.
fn int_number(n: Option<i128>) -> Result<Number, String> {
    let too_big = || "an integer beyond 64 bits".to_owned();
    let n = n.ok_or_else(too_big)?;
    if let Ok(u) = u64::try_from(n) {
        Ok(Number::from(u))
    } else {
        i64::try_from(n).map(Number::from).map_err(|_| too_big())
    }
}

/// A dict key as `json.dumps` writes it: strings as they are, numbers and constants as text.
fn dict_key(k: Lit) -> Result<String, String> {
    Ok(match k {
        Lit::Str(s) => s,
        Lit::Int(n) => int_number(n)?.to_string(),
        Lit::Bool(b) => b.to_string(),
        Lit::None => "null".into(),
        Lit::Float(f) => python_float_repr(f),
        Lit::Array(_, false) | Lit::Object(_) | Lit::Set => {
            return Err("a dict key that is a list, dict or set".into())
        }
        _ => return Err("a dict key that is not a string or number".into()),
    })
}

/// Python's `repr(float)`: the shortest digits, in exponent form outside 1e-4..1e16.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let sci = format!("{f:e}"); // shortest round-trip digits, like "1.5e-7"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}
