//! What the generated API calls that is not generated.

use serde::de::{Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};

/// Reads the arguments of a command that takes none: absent (`null`) or an empty object, as
/// QEMU accepts; any member is an error naming it.
pub(crate) fn no_arguments<'de, D: Deserializer<'de>>(d: D, command: &'static str) -> Result<(), D::Error> {
    struct NoArguments(&'static str);
    impl<'de> Visitor<'de> for NoArguments {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "no arguments for {} (null or {{}})", self.0)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            match map.next_key::<String>()? {
                None => Ok(()),
                Some(k) => {
                    let _ = map.next_value::<IgnoredAny>()?;
                    Err(A::Error::custom(format!("{} takes no arguments, got `{k}`", self.0)))
                }
            }
        }
    }
    d.deserialize_any(NoArguments(command))
}

/// For an optional member whose type has `null` among its values: present is `Some`, even
/// when it is `null` (serde's `Option` would read `null` as absent).
pub(crate) fn present<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// How a generated struct reads itself from a JSON object: the members it knows by their index
/// in its member list, the rest kept as sent.
///
/// perf: written by the generator instead of serde's derive, whose `flatten` (for the unknown
/// members) buffers every member as `Content` and expands to several times the code: rustc's
/// time on the crate went from 41.6 s to 14.7 s (`-Z time-passes`), decoding unchanged.
pub(crate) trait FromMembers: Sized {
    /// The QAPI name, for errors.
    const NAME: &'static str;
    /// The index of the member named `key` in the member list.
    fn member(key: &str) -> Option<usize>;
    /// Reads the members from `map`.
    fn from_members<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// Reads a struct through its [`FromMembers`].
#[inline]
pub(crate) fn read_struct<'de, D: Deserializer<'de>, T: FromMembers>(d: D) -> Result<T, D::Error> {
    struct Members<T>(std::marker::PhantomData<T>);
    impl<'de, T: FromMembers> Visitor<'de> for Members<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "struct {}", T::NAME)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_members(map)
        }
    }
    d.deserialize_map(Members(std::marker::PhantomData))
}

/// A member's key, as its index in `T`'s member list (`Ok`) or, for one `T` does not know, as
/// sent (`Err`). Known keys are matched without allocating.
pub(crate) struct Keys<T>(pub std::marker::PhantomData<T>);

impl<'de, T: FromMembers> serde::de::DeserializeSeed<'de> for Keys<T> {
    type Value = Result<usize, String>;
    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de, T: FromMembers> Visitor<'de> for Keys<T> {
    type Value = Result<usize, String>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    #[inline]
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::member(v).ok_or_else(|| v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        match T::member(&v) {
            Some(i) => Ok(Ok(i)),
            None => Ok(Err(v)),
        }
    }
}

/// Writes the members a struct kept without knowing them.
#[inline]
pub(crate) fn write_unknown<M: serde::ser::SerializeMap>(
    m: &mut M,
    unknown: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), M::Error> {
    for (k, v) in unknown {
        m.serialize_entry(k, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Command;

    #[test]
    fn a_command_without_arguments_reads_none_null_or_an_empty_object() {
        use crate::generated::commands::Cont;
        for ok in ["null", "{}"] {
            assert_eq!(serde_json::from_str::<Cont>(ok).unwrap(), Cont, "{ok}");
        }
        let err = serde_json::from_str::<Cont>(r#"{"x": 1}"#).unwrap_err();
        assert!(err.to_string().contains("cont takes no arguments, got `x`"), "{err}");
        assert_eq!(Cont::NAME, "cont");
        assert_eq!(serde_json::to_value(Cont).unwrap(), serde_json::Value::Null);
    }

    #[test]
    fn an_optional_member_given_as_null_stays_present() {
        use crate::generated::types::{BlockdevOptionsGenericCOWFormat, BlockdevRefOrNull};
        let with_null: BlockdevOptionsGenericCOWFormat =
            serde_json::from_str(r#"{"file": "f0", "backing": null}"#).unwrap();
        assert_eq!(with_null.backing, Some(Box::new(BlockdevRefOrNull::Null(()))));
        assert_eq!(serde_json::to_string(&with_null).unwrap(), r#"{"file":"f0","backing":null}"#);
        let without: BlockdevOptionsGenericCOWFormat = serde_json::from_str(r#"{"file": "f0"}"#).unwrap();
        assert_eq!(without.backing, None);
    }

    #[test]
    fn a_struct_reads_its_members_keeps_unknown_ones_and_names_what_is_wrong() {
        use crate::generated::types::PciDeviceId;
        // From bytes (keys borrowed), with an escaped key (owned) and a member a newer QEMU sends.
        let wire = r#"{"vendor": 1, "new\u002dmember": [1], "device": 2, "subsystem": null, "later": {}}"#;
        let id: PciDeviceId = serde_json::from_str(wire).unwrap();
        assert_eq!((id.device, id.vendor, id.subsystem, id.subsystem_vendor), (2, 1, None, None));
        assert_eq!(id.unknown_members.len(), 2);
        assert_eq!(id.unknown_members["new-member"], serde_json::json!([1]));
        // Known members in schema order, absent optional ones left out, unknown ones last, in
        // the order they came.
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#"{"device":2,"vendor":1,"new-member":[1],"later":{}}"#
        );
        // From a parsed value, the same.
        let again: PciDeviceId = serde_json::from_value(serde_json::to_value(&id).unwrap()).unwrap();
        assert_eq!(again, id);
        let missing = serde_json::from_str::<PciDeviceId>(r#"{"vendor": 1}"#).unwrap_err();
        assert!(missing.to_string().contains("missing field `device`"), "{missing}");
        let wrong = serde_json::from_str::<PciDeviceId>(r#"{"device": "x", "vendor": 1}"#).unwrap_err();
        assert!(wrong.to_string().contains("invalid type: string \"x\", expected i64"), "{wrong}");
        let not_object = serde_json::from_str::<PciDeviceId>("[1, 2]").unwrap_err();
        assert!(not_object.to_string().contains("expected struct PciDeviceId"), "{not_object}");
    }
}
