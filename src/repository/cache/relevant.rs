//! What `e search --for MODULE` reads of the cache: the module it names, and only the modules
//! its report can show: those with a version that satisfies one of the module's requirements,
//! and the nearest misses of each. Everything else is looked at where it lies, never built.

use std::path::Path;

use super::views::view;
use super::{directory, read_in, whole};
use crate::repository::{Loaded, Module, ModuleSpec, ModuleVersion};
use crate::selector::{Nearness, Selector};

/// The repository of `spec`'s module and of every module with a version that satisfies one of
/// its version's selectors, or is among the `near_misses` nearest misses of one (ranked as
/// `graph::Index::near_misses` ranks them: by [`Nearness`], then file order), so that the
/// report of that version is the one the whole repository gives.
///
/// `None` when there is no cache of `path`, or the module or the version is not there (the
/// whole repository then gives the error, with its suggestions).
pub fn get_for(path: &Path, spec: &ModuleSpec, near_misses: usize) -> Option<Loaded> {
    get_for_in(&directory()?, path, spec, near_misses)
}

pub(super) fn get_for_in(
    directory: &Path,
    path: &Path,
    spec: &ModuleSpec,
    near_misses: usize,
) -> Option<Loaded> {
    if whole() {
        return None;
    }
    // First the module: its line begins with its name, the first field written, so only that
    // prefix is compared and no other line is parsed.
    let prefix = format!("{{\"name\":{},", serde_json::to_string(&spec.module).ok()?);
    let mut owner: Option<(usize, Module)> = None;
    read_in(directory, path, |at, line, _| {
        if owner.is_none() && line.starts_with(&prefix) {
            owner = Some((at, serde_json::from_str(line).ok()?));
        }
        Some(())
    })?;
    let (owner_at, owner) = owner?;
    let version = match &spec.version {
        None => owner.default_version(),
        Some(wanted) => owner.version(wanted)?,
    };
    let selectors: Vec<&Selector> = selectors(version).collect();
    // Then the others: a module with a match is built at once; the lines of the nearest misses
    // so far are kept, and built at the end.
    let mut built: Vec<(usize, Module)> = Vec::new();
    let mut nearest: Vec<Nearest> = selectors
        .iter()
        .map(|_| Nearest::new(near_misses))
        .collect();
    let mut entry = 0;
    let header = read_in(directory, path, |at, line, _| {
        let module = view(line)?;
        let mut matched = false;
        for version in &module.versions {
            entry += 1;
            if at == owner_at {
                continue;
            }
            let value = |key: &str| version.labels.get(key);
            for (selector, nearest) in selectors.iter().zip(&mut nearest) {
                if selector.matches_with(value) {
                    matched = true;
                } else if let Some(nearness) = selector.nearness(value) {
                    nearest.offer((nearness, entry), at, line);
                }
            }
        }
        if matched {
            built.push((at, serde_json::from_str(line).ok()?));
        }
        Some(())
    })?;
    built.push((owner_at, owner));
    for (at, line) in nearest.into_iter().flat_map(|nearest| nearest.misses) {
        if !built.iter().any(|(other, _)| *other == at.1) {
            built.push((at.1, serde_json::from_str(&line).ok()?));
        }
    }
    built.sort_by_key(|(at, _)| *at);
    Some(header.with(built.into_iter().map(|(_, module)| module).collect()))
}

/// Every selector of a version, in the order of `graph::requirements`: strong, weak, influences.
fn selectors(version: &ModuleVersion) -> impl Iterator<Item = &Selector> {
    version
        .requires
        .strong
        .iter()
        .chain(&version.requires.weak)
        .chain(&version.influences)
}

/// Where a miss ranks: its nearness, then its entry's place in the file.
type Rank = (Nearness, usize);

/// The `limit` nearest misses of one selector seen so far, nearest first, each with its
/// module's place and line.
pub(super) struct Nearest {
    limit: usize,
    misses: Vec<((Rank, usize), String)>,
}

impl Nearest {
    pub(super) fn new(limit: usize) -> Nearest {
        Nearest {
            limit,
            misses: Vec::with_capacity(limit + 1),
        }
    }

    /// Takes a miss of the module at `at` if it is among the nearest so far.
    pub(super) fn offer(&mut self, rank: Rank, at: usize, line: &str) {
        if self.misses.len() == self.limit
            && self
                .misses
                .last()
                .is_none_or(|((worst, _), _)| *worst <= rank)
        {
            return;
        }
        let place = self
            .misses
            .partition_point(|((other, _), _)| *other <= rank);
        self.misses.insert(place, ((rank, at), line.to_owned()));
        self.misses.truncate(self.limit);
    }

    /// The places of the modules of the misses kept, nearest first.
    #[cfg(test)]
    pub(super) fn modules(&self) -> impl Iterator<Item = usize> + '_ {
        self.misses.iter().map(|((_, at), _)| *at)
    }
}
