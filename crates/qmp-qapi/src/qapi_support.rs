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
}
