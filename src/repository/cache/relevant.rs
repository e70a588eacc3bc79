//! What `e search --for MODULE` reads of the cache: the module it names, built, and for each
//! requirement of its version the versions that satisfy it and the nearest misses, as views
//! of their lines. No other module is built: its report needs only their names, versions,
//! images and labels.

use std::borrow::Cow;
use std::path::Path;

use super::views::{ModuleView, VersionView, view};
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
    // On every core, each module's line on its own; only what the report can show is kept.
    let seen = crate::parallel::map_chunks(
        &lines,
        MODULES_PER_CHUNK,
        crate::parallel::threads(),
        || (),
        |(), line| {
            let module = view(line)?;
            Some(if module.name == owner.name {
                Seen::default()
            } else {
                Seen::of(module, &wanted)
            })
        },
    )?;
    let mut candidates: Vec<Vec<EntryView<'_>>> = wanted.iter().map(|_| Vec::new()).collect();
    let mut nearest: Vec<Nearest<(usize, usize)>> =
        wanted.iter().map(|_| Nearest::new(near_misses)).collect();
    for (at, seen) in seen.into_iter().enumerate() {
        for (i, candidate) in seen.candidates {
            candidates[i].push(candidate);
        }
        for (i, nearness, v) in seen.misses {
            nearest[i].offer((nearness, (at, v)), (at, v));
        }
    }
    let mut found = Vec::with_capacity(wanted.len());
    for (requirement, (candidates, nearest)) in
        wanted.into_iter().zip(candidates.into_iter().zip(nearest))
    {
        let mut misses = Vec::with_capacity(nearest.misses.len());
        for (_, (at, v)) in nearest.misses {
            let module = view(lines[at])?;
            let version = module.versions.into_iter().nth(v)?;
            misses.push(entry_view(module.name, version));
        }
        found.push((requirement, Found { candidates, misses }));
    }
    Some(show(owner_entry, found, mapped.warnings()))
}

/// How many modules a thread reads at a time.
const MODULES_PER_CHUNK: usize = 256;

/// What one module holds for the report: its versions that satisfy each requirement (by the
/// requirement's place), and how near those that do not come.
#[derive(Default)]
struct Seen<'m> {
    candidates: Vec<(usize, EntryView<'m>)>,
    /// The requirement's place, the nearness, the version's place in the module.
    misses: Vec<(usize, Nearness, usize)>,
}

impl<'m> Seen<'m> {
    fn of(module: ModuleView<'m>, wanted: &[Requirement<'_>]) -> Seen<'m> {
        let mut seen = Seen::default();
        for (v, version) in module.versions.into_iter().enumerate() {
            let value = |key: &str| version.labels.get(key);
            let mut matched = Vec::new();
            for (i, requirement) in wanted.iter().enumerate() {
                if requirement.selector.matches_with(value) {
                    matched.push(i);
                } else if let Some(nearness) = requirement.selector.nearness(value) {
                    seen.misses.push((i, nearness, v));
                }
            }
            if let Some((last, others)) = matched.split_last() {
                for i in others {
                    let copy = entry_view(module.name.clone(), version.clone());
                    seen.candidates.push((*i, copy));
                }
                seen.candidates
                    .push((*last, entry_view(module.name.clone(), version)));
            }
        }
        seen
    }
}

/// A version's view as tables and documents show it.
fn entry_view<'m>(module: Cow<'m, str>, version: VersionView<'m>) -> EntryView<'m> {
    EntryView {
        module,
        version: version.version,
        latest: version.latest,
        image: version.image,
        labels: version.labels,
    }
}

/// Where a miss ranks: its nearness, then its place in the file (its module's, its own in the
/// module).
type Rank = (Nearness, (usize, usize));

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
