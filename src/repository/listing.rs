//! Module versions as tables and documents show them (`e list`, `e search`): name, version,
//! latest, image and labels. `e list` of a cached repository reads them where they lie in the
//! cache, without building the model.

use std::borrow::Cow;
use std::path::Path;

use serde::Serialize;

use super::cache;
use super::{Entry, LoadError};
use crate::selector::Labels;

/// A module version as it appears in tables, JSON and YAML.
#[derive(Debug, Serialize)]
pub struct EntryView<'r> {
    /// Module name.
    pub module: Cow<'r, str>,
    /// Version, as written.
    pub version: Cow<'r, str>,
    /// Whether it is marked latest.
    pub latest: bool,
    /// Container image.
    pub image: Cow<'r, str>,
    /// Labels, in key order.
    pub labels: LabelPairs<'r>,
}

impl<'r> From<Entry<'r>> for EntryView<'r> {
    fn from(entry: Entry<'r>) -> Self {
        EntryView {
            module: Cow::Borrowed(&entry.module.name),
            version: Cow::Borrowed(entry.version.version.as_str()),
            latest: entry.version.latest,
            image: Cow::Borrowed(&entry.version.image),
            labels: LabelPairs::from(&entry.version.labels),
        }
    }
}

/// A version's labels as pairs of text, in key order.
#[derive(Debug, Default, Clone)]
pub struct LabelPairs<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl LabelPairs<'_> {
    /// The value of the label `key`, if the version has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The same labels, holding their own text.
    pub fn into_owned(self) -> LabelPairs<'static> {
        LabelPairs(
            self.0
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
        )
    }

    /// Every label, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
}

impl EntryView<'_> {
    /// The same entry, holding its own text.
    pub fn into_owned(self) -> EntryView<'static> {
        EntryView {
            module: Cow::Owned(self.module.into_owned()),
            version: Cow::Owned(self.version.into_owned()),
            latest: self.latest,
            image: Cow::Owned(self.image.into_owned()),
            labels: self.labels.into_owned(),
        }
    }
}

impl<'a> From<&'a Labels> for LabelPairs<'a> {
    fn from(labels: &'a Labels) -> Self {
        LabelPairs(
            labels
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                .collect(),
        )
    }
}

impl Serialize for LabelPairs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Gives `show` what `make` makes of every module version of the repository at `path`, in
/// file order, and the load's warnings. From the cache, each module's line is read where it
/// lies, and `make` runs on every core as the lines are parsed, so that what a large listing
/// holds at once is only what `make` keeps; else the repository is loaded (without commands)
/// as for any command.
pub fn list<R: Send, T>(
    path: &Path,
    make: impl Fn(EntryView<'_>) -> R + Sync,
    show: impl FnOnce(Vec<R>, &[String]) -> T,
) -> Result<T, LoadError> {
    if !super::load::whole()
        && let Some(cached) = cache::open(path)
        && let Some(lines) = cached.lines()
        && let Some(modules) = crate::parallel::map_chunks(
            &lines,
            MODULES_PER_CHUNK,
            crate::parallel::threads(),
            || (),
            |(), line| {
                let module = cache::view(line)?;
                let name = module.name;
                let made: Vec<R> = module
                    .versions
                    .into_iter()
                    .map(|version| {
                        make(EntryView {
                            module: name.clone(),
                            version: version.version,
                            latest: version.latest,
                            image: version.image,
                            labels: version.labels,
                        })
                    })
                    .collect();
                Some(made)
            },
        )
    {
        let made: Vec<R> = modules.into_iter().flatten().collect();
        return Ok(show(made, cached.warnings()));
    }
    // Never freed: e exits after the command, and freeing a large repository one allocation at
    // a time was a tenth of the command's time (`docs/benchmarks.md`).
    let loaded = std::mem::ManuallyDrop::new(super::load_without_commands(path)?);
    let made = loaded
        .repository
        .entries()
        .map(|entry| make(EntryView::from(entry)))
        .collect();
    Ok(show(made, &loaded.warnings))
}

/// How many modules a thread lists at a time.
const MODULES_PER_CHUNK: usize = 256;
