//! What `e search --for MODULE` reads of the cache: the module it names, built, and for each
//! requirement of its version the versions that satisfy it and the nearest misses, as views
//! of their lines. No other module is built: its report needs only their names, versions,
//! images and labels.

use std::path::Path;

use super::views::{ModuleView, VersionView};
use super::{directory, read, whole};
use crate::graph::{Requirement, requirements};
use crate::repository::{Entry, EntryView, Module, ModuleSpec};
use crate::selector::Nearness;

/// What the report of one requirement shows, read from the cache.
pub struct Found<'m> {
    /// The versions that satisfy it, in file order; never one of the owner's module.
    pub candidates: Vec<EntryView<'m>>,
    /// The nearest misses, nearest first, ranked as `graph::Index::near_misses` ranks them:
    /// by [`Nearness`], then file order.
    pub misses: Vec<EntryView<'m>>,
}

/// Gives `show` the version `spec` names, each of its requirements (in the order of
/// `graph::requirements`) with what the cache has for it (up to `near_misses` misses each),
/// and the load's warnings, so that its report is the one the whole repository gives.
///
/// `None` when there is no cache of `path`, or the module or the version is not there (the
/// whole repository then gives the error, with its suggestions).
pub fn related<T>(
    path: &Path,
    spec: &ModuleSpec,
    near_misses: usize,
    show: impl FnOnce(Entry<'_>, Vec<(Requirement<'_>, Found<'_>)>, &[String]) -> T,
) -> Option<T> {
    related_in(&directory()?, path, spec, near_misses, show)
}

pub(super) fn related_in<T>(
    directory: &Path,
    path: &Path,
    spec: &ModuleSpec,
    near_misses: usize,
    show: impl FnOnce(Entry<'_>, Vec<(Requirement<'_>, Found<'_>)>, &[String]) -> T,
) -> Option<T> {
    if whole() {
        return None;
    }
    let mapped = read::mapped(directory, path)?;
    let lines = mapped.lines()?;
    // The module's line begins with its name, the first field written: only that prefix is
    // compared to find it.
    let prefix = format!("{{\"name\":{},", serde_json::to_string(&spec.module).ok()?);
    let owner: Module =
        serde_json::from_str(lines.iter().find(|l| l.starts_with(&prefix))?).ok()?;
    let version = match &spec.version {
        None => owner.default_version(),
        Some(wanted) => owner.version(wanted)?,
    };
    let owner_entry = Entry {
        module: &owner,
        version,
    };
    let wanted = requirements(owner_entry);
    let views = super::views::parse(&lines)?;
    let mut candidates: Vec<Vec<EntryView<'_>>> = wanted.iter().map(|_| Vec::new()).collect();
    let mut nearest: Vec<Nearest<(usize, usize)>> =
        wanted.iter().map(|_| Nearest::new(near_misses)).collect();
    let mut entry = 0;
    for (at, module) in views.iter().enumerate() {
        for (v, version) in module.versions.iter().enumerate() {
            entry += 1;
            if module.name == owner.name {
                continue;
            }
            let value = |key: &str| version.labels.get(key);
            for (i, requirement) in wanted.iter().enumerate() {
                if requirement.selector.matches_with(value) {
                    candidates[i].push(entry_view(module, version));
                } else if let Some(nearness) = requirement.selector.nearness(value) {
                    nearest[i].offer((nearness, entry), (at, v));
                }
            }
        }
    }
    let found = wanted
        .into_iter()
        .zip(candidates.into_iter().zip(nearest))
        .map(|(requirement, (candidates, nearest))| {
            let misses = nearest
                .misses
                .into_iter()
                .map(|(_, (at, v))| entry_view(&views[at], &views[at].versions[v]))
                .collect();
            (requirement, Found { candidates, misses })
        })
        .collect();
    let shown = show(owner_entry, found, mapped.warnings());
    Some(shown)
}

/// A version's view as tables and documents show it.
fn entry_view<'m>(module: &ModuleView<'m>, version: &VersionView<'m>) -> EntryView<'m> {
    EntryView {
        module: module.name.clone(),
        version: version.version.clone(),
        latest: version.latest,
        image: version.image.clone(),
        labels: version.labels.clone(),
    }
}

/// Where a miss ranks: its nearness, then its entry's place in the file.
type Rank = (Nearness, usize);

/// The `limit` nearest misses of one selector seen so far, nearest first, each with what
/// finds it again (`P`).
pub(super) struct Nearest<P> {
    limit: usize,
    misses: Vec<(Rank, P)>,
}

impl<P> Nearest<P> {
    pub(super) fn new(limit: usize) -> Nearest<P> {
        Nearest {
            limit,
            misses: Vec::with_capacity(limit + 1),
        }
    }

    /// Takes a miss if it is among the nearest so far.
    pub(super) fn offer(&mut self, rank: Rank, miss: P) {
        if self.misses.len() == self.limit
            && self.misses.last().is_none_or(|(worst, _)| *worst <= rank)
        {
            return;
        }
        let place = self.misses.partition_point(|(other, _)| *other <= rank);
        self.misses.insert(place, (rank, miss));
        self.misses.truncate(self.limit);
    }

    /// The misses kept, nearest first.
    #[cfg(test)]
    pub(super) fn kept(&self) -> impl Iterator<Item = &P> + '_ {
        self.misses.iter().map(|(_, miss)| miss)
    }
}
