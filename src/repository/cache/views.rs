//! Borrowed views of a module's line in the cache: what listing and searching look at (names,
//! versions, images, labels), read where it lies without building the model. Text holding no
//! JSON escape is borrowed from the line; only an escaped one is copied.

use std::borrow::Cow;

use serde::Deserialize;

use crate::repository::listing::LabelPairs;
use crate::selector::Selector;

/// A module as listing and searching see it.
#[derive(Deserialize)]
pub struct ModuleView<'a> {
    /// The module's name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Its versions, in file order.
    #[serde(borrow)]
    pub versions: Vec<VersionView<'a>>,
}

/// A version as listing and searching see it; every other field of the line is skipped.
#[derive(Deserialize, Clone)]
pub struct VersionView<'a> {
    /// The version as written.
    #[serde(borrow)]
    pub version: Cow<'a, str>,
    /// Whether it is marked latest.
    #[serde(default)]
    pub latest: bool,
    /// Its container image.
    #[serde(borrow)]
    pub image: Cow<'a, str>,
    /// Its labels, in key order (the cache writes them from a sorted map).
    #[serde(default, borrow)]
    pub labels: LabelPairs<'a>,
}

/// The view of one module's line; `None` if it does not parse.
pub fn view(line: &str) -> Option<ModuleView<'_>> {
    serde_json::from_str(line).ok()
}

impl ModuleView<'_> {
    /// Whether a version of the module has labels the selector matches.
    pub fn matches(&self, selector: &Selector) -> bool {
        self.versions
            .iter()
            .any(|version| selector.matches_with(|key| version.labels.get(key)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LabelPairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> serde::de::Visitor<'de> for PairsVisitor {
            type Value = LabelPairs<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<Text<'de>, Text<'de>>()? {
                    pairs.push((key.0, value.0));
                }
                Ok(LabelPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

/// A string borrowed from the line when it holds no escape, else unescaped into its own.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}
