//! A scalar of a JSON text read the way YAML reads the same text, so that a repository written
//! as JSON loads through serde_json into exactly what serde_yaml makes of it (JSON is YAML).
//!
//! serde_json hands a number as a number, which loses how it was written (`1.10` is `1.1`), and
//! fails when a string is asked for and a number or boolean is there. YAML keeps a label value
//! as written, and gives a limit the number it resolves to. So a scalar is asked for by the
//! name of serde_json's raw values ([`JSON_TEXT`], feature `raw_value`): serde_json then hands
//! the value's text as written, and every other deserializer (serde_yaml, e's block reader,
//! a `serde_yaml::Value`) treats the name as that of a plain newtype and hands itself over,
//! to be asked for a string or any value exactly as before. This file only turns a JSON text
//! into the text YAML would give; it never touches the disk.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Unexpected, Visitor};

/// The name under which serde_json hands over a value's text as written (`serde_json::value::
/// RawValue` is deserialized by it): a map of one entry, this name to the text.
pub(crate) const JSON_TEXT: &str = "$serde_json::private::RawValue";

/// How YAML reads the scalar that a JSON value's text spells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// As written: a label value, a name, a version (serde_yaml asked for a string).
    Written,
    /// As the number or boolean it resolves to, printed again: a limit (serde_yaml asked for
    /// any value, see [`crate::selector::Scalar::deserialize_quantity`]).
    Resolved,
}

/// The text YAML gives for the JSON value `text` (a string, number, `true`, `false` or `null`),
/// read as `reading` says; `Err` with what was found instead when it is no scalar, or no
/// scalar YAML can read that way.
pub(crate) fn yaml_text(text: &str, reading: Reading) -> Result<String, Unexpected<'_>> {
    match text.as_bytes().first() {
        Some(b'"') => unquote(text).ok_or(Unexpected::Other("a malformed JSON string")),
        Some(b'[') => Err(Unexpected::Seq),
        Some(b'{') => Err(Unexpected::Map),
        // `true`, `false` and `null` read as themselves either way (a null never gets here
        // through `Option`, and serde_yaml asked for a string hands over `null` as written).
        Some(b't' | b'f' | b'n') => Ok(text.to_owned()),
        Some(_) if reading == Reading::Written => Ok(text.to_owned()),
        Some(_) => resolved_number(text),
        None => Err(Unexpected::Other("nothing")),
    }
}

/// A JSON string's text, its escapes undone.
fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(inner.to_owned());
    }
    serde_json::from_str(text).ok()
}

/// A JSON number as serde_yaml resolves the same plain scalar and [`WrittenVisitor`]
/// (selector.rs) prints it: integers that fit 64 bits print as they are (`-0` as `0`), wider
/// ones are refused as serde_yaml refuses them, anything else is a float printed by Rust,
/// unless it is not finite, when serde_yaml keeps the text.
fn resolved_number(text: &str) -> Result<String, Unexpected<'_>> {
    let integer = !text.contains(['.', 'e', 'E']);
    if integer {
        if let Ok(number) = text.parse::<u64>() {
            return Ok(number.to_string());
        }
        if let Ok(number) = text.parse::<i64>() {
            return Ok(number.to_string());
        }
        if text.parse::<u128>().is_ok() || text.parse::<i128>().is_ok() {
            return Err(Unexpected::Other("a 128-bit integer"));
        }
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(number.to_string()),
        _ => Ok(text.to_owned()),
    }
}

/// Reads the text serde_json hands over for [`JSON_TEXT`] (a map of one entry), as `reading`
/// says; `expected` names what was asked for, for errors.
pub(crate) fn visit_json_text<'de, A: MapAccess<'de>>(
    mut map: A,
    reading: Reading,
    expected: &dyn de::Expected,
) -> Result<String, A::Error> {
    if map.next_key_seed(Token)?.is_none() {
        return Err(de::Error::invalid_type(Unexpected::Map, expected));
    }
    let text = map.next_value_seed(Text)?;
    yaml_text(&text, reading).map_err(|found| de::Error::invalid_type(found, expected))
}

/// The one key of serde_json's raw value map, checked.
struct Token;

impl<'de> DeserializeSeed<'de> for Token {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Token {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("serde_json's raw value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if v == JSON_TEXT {
            Ok(())
        } else {
            Err(de::Error::invalid_value(Unexpected::Str(v), &self))
        }
    }
}

/// The text of serde_json's raw value, borrowed where it can be.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON text")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_yaml makes of `text` as a plain or quoted scalar, asked as `reading` says.
    fn yaml(text: &str, reading: Reading) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Written(#[serde(deserialize_with = "written")] String);
        fn written<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
            Ok(crate::selector::Scalar::deserialize(d)?.0)
        }
        #[derive(serde::Deserialize)]
        struct Resolved(#[serde(deserialize_with = "resolved")] String);
        fn resolved<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
            crate::selector::Scalar::deserialize_quantity(d)
        }
        use serde::Deserialize;
        match reading {
            Reading::Written => serde_yaml::from_str::<Written>(text).ok().map(|w| w.0),
            Reading::Resolved => serde_yaml::from_str::<Resolved>(text).ok().map(|r| r.0),
        }
    }

    #[test]
    fn every_json_scalar_reads_as_yaml_reads_it() {
        let numbers = [
            "0",
            "-0",
            "1",
            "-1",
            "1.10",
            "1.0",
            "-0.0",
            "0.5",
            "1e3",
            "1E3",
            "1e+3",
            "1E-3",
            "-2.5e-7",
            "10.000",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "340282366920938463463374607431768211455",
            "3402823669209384634633746074317682114550",
            "1e400",
            "-1e400",
            "1e-400",
            "123456789012345678901234567890.5",
            "0.1",
            "5e-324",
            "3.141592653589793238462643383279",
        ];
        let others = [
            "true",
            "false",
            "\"\"",
            "\"a\"",
            "\"1.10\"",
            "\"true\"",
            "\"null\"",
            "\"a\\nb\"",
            "\"\\u00e9\\t\\\"\\\\/\"",
            "\"\\/\"",
            "\"é\"",
        ];
        for text in numbers.iter().chain(&others) {
            for reading in [Reading::Written, Reading::Resolved] {
                assert_eq!(
                    yaml_text(text, reading).ok(),
                    yaml(text, reading),
                    "`{text}` read as {reading:?}"
                );
            }
        }
    }

    #[test]
    fn what_is_no_scalar_is_refused() {
        for text in ["[]", "[1]", "{}", "{\"a\": 1}", ""] {
            assert!(yaml_text(text, Reading::Written).is_err(), "{text}");
            assert!(yaml_text(text, Reading::Resolved).is_err(), "{text}");
        }
    }
}
