//! What `e search --for MODULE` reads of the cache: the module it names, and only the modules
//! its report can show: those with a version that satisfies one of the module's requirements,
//! and the nearest misses of each. Everything else is looked at where it lies, never built.

use super::views::view;
use super::{Opened, whole};
use crate::repository::{Loaded, Module, ModuleSpec, ModuleVersion};
use crate::selector::{Nearness, Selector};

impl Opened {
    /// The repository of `spec`'s module and of every module with a version that satisfies one
    /// of its version's selectors, or is among the `near_misses` nearest misses of one (ranked
    /// as `graph::Index::near_misses` ranks them: by [`Nearness`], then file order), so that
    /// the report of that version is the one the whole repository gives.
    ///
    /// `None` when the module or the version is not there (the whole repository then gives
    /// the error, with its suggestions), or a line does not parse.
    pub fn relevant_to(self, spec: &ModuleSpec, near_misses: usize) -> Option<Loaded> {
        if whole() {
            return None;
        }
        let owner_at = self.position_of(&spec.module)?;
        let owner: Module = serde_json::from_str(self.line(&self.modules[owner_at].module)).ok()?;
        let version = match &spec.version {
            None => owner.default_version(),
            Some(wanted) => owner.version(wanted)?,
        };
        let selectors: Vec<&Selector> = selectors(version).collect();
        let mut keep = vec![false; self.modules.len()];
        keep[owner_at] = true;
        let mut nearest: Vec<Nearest> = selectors
            .iter()
            .map(|_| Nearest::new(near_misses))
            .collect();
        let mut entry = 0;
        for (at, lines) in self.modules.iter().enumerate() {
            let module = view(self.line(&lines.module))?;
            for version in &module.versions {
                entry += 1;
                if at == owner_at {
                    continue;
                }
                let value = |key: &str| version.labels.get(key);
                for (selector, nearest) in selectors.iter().zip(&mut nearest) {
                    if selector.matches_with(value) {
                        keep[at] = true;
                    } else if let Some(nearness) = selector.nearness(value) {
                        nearest.offer((nearness, entry), at);
                    }
                }
            }
        }
        for at in nearest.iter().flat_map(Nearest::modules) {
            keep[at] = true;
        }
        self.build(&keep, false)
    }

    /// Where the module named `name` is. Its line begins with its name, the first field
    /// written, so only that prefix is compared: no other line is parsed.
    fn position_of(&self, name: &str) -> Option<usize> {
        let prefix = format!("{{\"name\":{},", serde_json::to_string(name).ok()?);
        self.modules
            .iter()
            .position(|lines| self.line(&lines.module).starts_with(&prefix))
    }
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

/// The `limit` nearest misses of one selector seen so far, nearest first, each with its
/// module's position.
pub(super) struct Nearest {
    limit: usize,
    misses: Vec<((Nearness, usize), usize)>,
}

impl Nearest {
    pub(super) fn new(limit: usize) -> Nearest {
        Nearest {
            limit,
            misses: Vec::with_capacity(limit + 1),
        }
    }

    /// Takes a miss (ranked by nearness, then its entry's place in the file) if it is among
    /// the nearest so far.
    pub(super) fn offer(&mut self, rank: (Nearness, usize), module: usize) {
        if self.misses.len() == self.limit
            && self.misses.last().is_none_or(|(worst, _)| *worst <= rank)
        {
            return;
        }
        let at = self.misses.partition_point(|(other, _)| *other <= rank);
        self.misses.insert(at, (rank, module));
        self.misses.truncate(self.limit);
    }

    pub(super) fn modules(&self) -> impl Iterator<Item = usize> + '_ {
        self.misses.iter().map(|(_, module)| *module)
    }
}
