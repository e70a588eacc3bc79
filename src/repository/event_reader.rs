//! A serde `Deserializer` over the events of [`super::block_yaml`], answering every request
//! the way serde_yaml 0.9 answers it for the same YAML (its `de.rs`, for untagged scalars).
//!
//! What a request gets from a scalar depends on how it was written, as in serde_yaml: a string
//! is asked for and given as written (`1.10`, `true` and `~` stay text); an option is `None`
//! for a plain `~`, `null`, `Null`, `NULL` or nothing; a boolean is a plain `true` or `false`
//! (any case serde_yaml takes); "any" resolves a plain scalar to null, a boolean, an integer or
//! a float by serde_yaml's rules, and a quoted one is a string; a sequence, mapping or struct
//! asked of a plain empty scalar is empty. Requests serde_yaml would refuse, and the few the
//! model never makes (numbers, bytes), fail with [`Declined`]: the caller then reads the text
//! with serde_yaml, which gives the real error. So an error here never reaches a user.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// One event of a block YAML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A scalar's value, and whether it was written plain (not quoted).
    Scalar {
        /// The value, borrowed from the text unless it had escapes.
        text: Cow<'a, str>,
        /// Whether it was written without quotes (only a plain scalar resolves to null, a
        /// boolean or a number).
        plain: bool,
    },
    /// A sequence begins; its items follow, then [`Event::SeqEnd`].
    SeqStart,
    /// The sequence ends.
    SeqEnd,
    /// A mapping begins; its keys and values follow, then [`Event::MapEnd`].
    MapStart,
    /// The mapping ends.
    MapEnd,
}

/// Why the events could not be read as asked; the caller leaves the text to serde_yaml.
#[derive(Debug)]
pub struct Declined(String);

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Declined {}

impl de::Error for Declined {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Declined(message.to_string())
    }
}

/// Reads one value from a list of events.
pub struct Reader<'e, 'a> {
    events: &'e [Event<'a>],
    position: usize,
}

impl<'e, 'a> Reader<'e, 'a> {
    /// A reader at the first event.
    pub fn new(events: &'e [Event<'a>]) -> Reader<'e, 'a> {
        Reader {
            events,
            position: 0,
        }
    }

    /// Whether every event was read.
    pub fn finished(&self) -> bool {
        self.position == self.events.len()
    }

    fn peek(&self) -> Result<&'e Event<'a>, Declined> {
        self.events
            .get(self.position)
            .ok_or_else(|| Declined("no more events".to_owned()))
    }

    fn next(&mut self) -> Result<&'e Event<'a>, Declined> {
        let event = self.peek()?;
        self.position += 1;
        Ok(event)
    }

    /// Reads a sequence's items with `visitor`, after its start; every item must be read.
    fn sequence<V: Visitor<'a>>(&mut self, visitor: V) -> Result<V::Value, Declined> {
        let value = visitor.visit_seq(Items {
            reader: self,
            empty: false,
        })?;
        match self.next()? {
            Event::SeqEnd => Ok(value),
            _ => Err(Declined("a sequence was not read whole".to_owned())),
        }
    }

    /// Reads a mapping's entries with `visitor`, after its start; every entry must be read.
    fn mapping<V: Visitor<'a>>(&mut self, visitor: V) -> Result<V::Value, Declined> {
        let value = visitor.visit_map(Entries {
            reader: self,
            empty: false,
        })?;
        match self.next()? {
            Event::MapEnd => Ok(value),
            _ => Err(Declined("a mapping was not read whole".to_owned())),
        }
    }

    /// Skips one value, however nested.
    fn skip(&mut self) -> Result<(), Declined> {
        let mut depth = 0usize;
        loop {
            match self.next()? {
                Event::Scalar { .. } => {}
                Event::SeqStart | Event::MapStart => depth += 1,
                Event::SeqEnd | Event::MapEnd => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| Declined("an end without a start".to_owned()))?;
                }
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }
}

/// A scalar's text to a visitor, borrowed when it is borrowed from the text, as serde_yaml
/// does.
fn visit_text<'a, V: Visitor<'a>>(text: &Cow<'a, str>, visitor: V) -> Result<V::Value, Declined> {
    match text {
        Cow::Borrowed(text) => visitor.visit_borrowed_str(text),
        Cow::Owned(text) => visitor.visit_str(text),
    }
}

/// Whether a plain scalar is null (serde_yaml's `parse_null`, and the empty scalar).
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// serde_yaml's `parse_bool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A plain scalar resolved as serde_yaml's `visit_untagged_scalar` resolves it.
fn visit_untagged<'a, V: Visitor<'a>>(
    text: &Cow<'a, str>,
    visitor: V,
) -> Result<V::Value, Declined> {
    if is_null(text) {
        return visitor.visit_unit();
    }
    if let Some(boolean) = parse_bool(text) {
        return visitor.visit_bool(boolean);
    }
    let visitor = match numbers::visit_int(visitor, text) {
        Ok(result) => return result,
        Err(visitor) => visitor,
    };
    if !numbers::digits_but_not_number(text)
        && let Some(float) = numbers::parse_f64(text)
    {
        return visitor.visit_f64(float);
    }
    visit_text(text, visitor)
}

/// serde_yaml 0.9's number parsing (`de.rs`), unchanged but for names.
mod numbers {
    use std::num::ParseIntError;

    use serde::de::Visitor;

    use super::Declined;

    fn parse_unsigned_int<T>(
        scalar: &str,
        from_str_radix: fn(&str, radix: u32) -> Result<T, ParseIntError>,
    ) -> Option<T> {
        let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(rest) = unpositive.strip_prefix(prefix) {
                if rest.starts_with(['+', '-']) {
                    return None;
                }
                if let Ok(int) = from_str_radix(rest, radix) {
                    return Some(int);
                }
            }
        }
        if unpositive.starts_with(['+', '-']) {
            return None;
        }
        if digits_but_not_number(scalar) {
            return None;
        }
        from_str_radix(unpositive, 10).ok()
    }

    fn parse_negative_int<T>(
        scalar: &str,
        from_str_radix: fn(&str, radix: u32) -> Result<T, ParseIntError>,
    ) -> Option<T> {
        for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
            if let Some(rest) = scalar.strip_prefix(prefix) {
                let negative = format!("-{rest}");
                if let Ok(int) = from_str_radix(&negative, radix) {
                    return Some(int);
                }
            }
        }
        if digits_but_not_number(scalar) {
            return None;
        }
        from_str_radix(scalar, 10).ok()
    }

    pub(super) fn parse_f64(scalar: &str) -> Option<f64> {
        let unpositive = if let Some(unpositive) = scalar.strip_prefix('+') {
            if unpositive.starts_with(['+', '-']) {
                return None;
            }
            unpositive
        } else {
            scalar
        };
        if let ".inf" | ".Inf" | ".INF" = unpositive {
            return Some(f64::INFINITY);
        }
        if let "-.inf" | "-.Inf" | "-.INF" = scalar {
            return Some(f64::NEG_INFINITY);
        }
        if let ".nan" | ".NaN" | ".NAN" = scalar {
            return Some(f64::NAN.copysign(1.0));
        }
        if let Ok(float) = unpositive.parse::<f64>()
            && float.is_finite()
        {
            return Some(float);
        }
        None
    }

    pub(super) fn digits_but_not_number(scalar: &str) -> bool {
        // Leading zeros followed by digits are a string in YAML 1.2.
        let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
        scalar.len() > 1
            && scalar.starts_with('0')
            && scalar[1..].bytes().all(|b| b.is_ascii_digit())
    }

    /// The integer a plain scalar is, to the visitor; the visitor back when it is none.
    pub(super) fn visit_int<'a, V: Visitor<'a>>(
        visitor: V,
        v: &str,
    ) -> Result<Result<V::Value, Declined>, V> {
        if let Some(int) = parse_unsigned_int(v, u64::from_str_radix) {
            return Ok(visitor.visit_u64(int));
        }
        if let Some(int) = parse_negative_int(v, i64::from_str_radix) {
            return Ok(visitor.visit_i64(int));
        }
        if let Some(int) = parse_unsigned_int(v, u128::from_str_radix) {
            return Ok(visitor.visit_u128(int));
        }
        if let Some(int) = parse_negative_int(v, i128::from_str_radix) {
            return Ok(visitor.visit_i128(int));
        }
        Err(visitor)
    }
}

fn unsupported<T>(what: &str) -> Result<T, Declined> {
    Err(Declined(format!("{what} is left to serde_yaml")))
}

impl<'a> de::Deserializer<'a> for &mut Reader<'_, 'a> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next()? {
            Event::Scalar { text, plain: true } => visit_untagged(text, visitor),
            Event::Scalar { text, plain: false } => visit_text(text, visitor),
            Event::SeqStart => self.sequence(visitor),
            Event::MapStart => self.mapping(visitor),
            Event::SeqEnd | Event::MapEnd => unsupported("an end"),
        }
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next()? {
            Event::Scalar { text, plain: true } => match parse_bool(text) {
                Some(boolean) => visitor.visit_bool(boolean),
                None => unsupported("a boolean that is not one"),
            },
            _ => unsupported("a boolean that is not plain"),
        }
    }

    fn deserialize_i8<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_i16<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_i32<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_i64<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_u8<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_u16<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_u32<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_u64<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_f32<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_f64<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a number")
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next()? {
            Event::Scalar { text, .. } => visit_text(text, visitor),
            _ => unsupported("a string that is a collection"),
        }
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("bytes")
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("bytes")
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.peek()? {
            Event::Scalar { text, plain: true } if is_null(text) => {
                self.position += 1;
                visitor.visit_none()
            }
            Event::SeqEnd | Event::MapEnd => unsupported("an end"),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next()? {
            Event::Scalar { text, plain: true } if is_null(text) => visitor.visit_unit(),
            _ => unsupported("a unit that is not null"),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next()? {
            Event::SeqStart => self.sequence(visitor),
            Event::Scalar { text, plain: true } if text.is_empty() => visitor.visit_seq(Items {
                reader: self,
                empty: true,
            }),
            _ => unsupported("a sequence that is not one"),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next()? {
            Event::MapStart => self.mapping(visitor),
            Event::Scalar { text, plain: true } if text.is_empty() => visitor.visit_map(Entries {
                reader: self,
                empty: true,
            }),
            _ => unsupported("a mapping that is not one"),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        match self.peek()? {
            Event::Scalar { text, .. } => {
                self.position += 1;
                visitor.visit_enum(UnitVariant { text })
            }
            _ => unsupported("an enum that is not a scalar"),
        }
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.skip()?;
        visitor.visit_unit()
    }
}

/// The items of a sequence; `empty` for the empty sequence a plain empty scalar stands for.
struct Items<'r, 'e, 'a> {
    reader: &'r mut Reader<'e, 'a>,
    empty: bool,
}

impl<'a> de::SeqAccess<'a> for Items<'_, '_, 'a> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Declined> {
        if self.empty || matches!(self.reader.peek()?, Event::SeqEnd) {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

/// The entries of a mapping; `empty` as for [`Items`].
struct Entries<'r, 'e, 'a> {
    reader: &'r mut Reader<'e, 'a>,
    empty: bool,
}

impl<'a> de::MapAccess<'a> for Entries<'_, '_, 'a> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Declined> {
        if self.empty || matches!(self.reader.peek()?, Event::MapEnd) {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Declined> {
        seed.deserialize(&mut *self.reader)
    }
}

/// A unit variant named by a scalar, as serde_yaml reads `type: docker`.
struct UnitVariant<'e, 'a> {
    text: &'e Cow<'a, str>,
}

impl<'a> de::EnumAccess<'a> for UnitVariant<'_, 'a> {
    type Error = Declined;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self), Declined> {
        let variant = match self.text {
            Cow::Borrowed(text) => seed.deserialize(de::value::BorrowedStrDeserializer::new(text)),
            Cow::Owned(text) => seed.deserialize(text.as_str().into_deserializer()),
        }?;
        Ok((variant, self))
    }
}

impl<'a> de::VariantAccess<'a> for UnitVariant<'_, 'a> {
    type Error = Declined;

    fn unit_variant(self) -> Result<(), Declined> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, _seed: T) -> Result<T::Value, Declined> {
        unsupported("a newtype variant")
    }

    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, _visitor: V) -> Result<V::Value, Declined> {
        unsupported("a tuple variant")
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Declined> {
        unsupported("a struct variant")
    }
}
