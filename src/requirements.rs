//! A module's requirements measured against what is installed: which installed module versions
//! satisfy each strong and weak requirement, whether `init`/`plan`/`apply` may run, who depends
//! on a module (for `destroy`), who is influenced by it, and the requirements file handed to
//! the module so its `init` finds its dependencies without guessing names.
//!
//! Pure over data: the caller reads the installed records from the shared directory.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bindings::Binding;
use crate::graph::{Index, Preferences, Relation, rank};
use crate::repository::{Entry, Repository};
use crate::selector::Selector;
use crate::store::Installed;

/// The installed module versions, as repository entries (so their labels can be matched).
pub struct InstalledSet<'r> {
    entries: Vec<Entry<'r>>,
    /// Installed records whose module version the repository no longer has.
    pub unknown: Vec<String>,
}

impl<'r> InstalledSet<'r> {
    /// Looks up each installed record in the repository.
    pub fn new(
        repository: &'r Repository,
        installed: &BTreeMap<String, Installed>,
    ) -> InstalledSet<'r> {
        let mut entries = Vec::new();
        let mut unknown = Vec::new();
        for record in installed.values() {
            match repository
                .module(&record.module)
                .and_then(|m| m.version(&record.version).map(|v| (m, v)))
            {
                Some((module, version)) => entries.push(Entry { module, version }),
                None => unknown.push(format!("{}@{}", record.module, record.version)),
            }
        }
        InstalledSet { entries, unknown }
    }

    /// The installed entries.
    pub fn entries(&self) -> &[Entry<'r>] {
        &self.entries
    }

    /// The installed version of a module, if any.
    pub fn get(&self, module: &str) -> Option<Entry<'r>> {
        self.entries
            .iter()
            .copied()
            .find(|e| e.module.name == module)
    }

    /// The installed entries that satisfy a selector (never `owner`'s own module).
    pub fn satisfying(&self, owner: &str, selector: &Selector) -> Vec<Entry<'r>> {
        self.entries
            .iter()
            .copied()
            .filter(|e| e.module.name != owner && selector.matches(&e.version.labels))
            .collect()
    }
}

/// One strong or weak requirement and the installed module versions that satisfy it.
#[derive(Debug, Clone)]
pub struct Status<'r> {
    /// Strong or weak.
    pub relation: Relation,
    /// The requirement.
    pub selector: &'r Selector,
    /// Installed module versions that satisfy it, in name order.
    pub satisfied_by: Vec<Entry<'r>>,
}

impl Status<'_> {
    /// Whether something installed satisfies it.
    pub fn met(&self) -> bool {
        !self.satisfied_by.is_empty()
    }
}

/// The strong and weak requirements of `entry`, each with what installed satisfies it.
pub fn statuses<'r>(entry: Entry<'r>, installed: &InstalledSet<'r>) -> Vec<Status<'r>> {
    let strong = entry
        .version
        .requires
        .strong
        .iter()
        .map(|s| (Relation::Strong, s));
    let weak = entry
        .version
        .requires
        .weak
        .iter()
        .map(|s| (Relation::Weak, s));
    strong
        .chain(weak)
        .map(|(relation, selector)| Status {
            relation,
            selector,
            satisfied_by: installed.satisfying(&entry.module.name, selector),
        })
        .collect()
}

/// The error for unmet strong requirements: each one, the repository modules that would
/// satisfy it (as `e search --for` finds them), and the command to install one.
pub fn unmet_error<'r>(
    entry: Entry<'r>,
    method: &str,
    statuses: &[Status<'_>],
    index: &Index<'r>,
    installed: &InstalledSet<'r>,
) -> Option<anyhow::Error> {
    let unmet: Vec<&Status<'_>> = statuses
        .iter()
        .filter(|s| s.relation == Relation::Strong && !s.met())
        .collect();
    if unmet.is_empty() {
        return None;
    }
    let mut message = format!(
        "cannot {method} `{}`: {} of its strong requirements {} not met by any installed module",
        entry.id(),
        unmet.len(),
        if unmet.len() == 1 { "is" } else { "are" }
    );
    let mut first_candidate = None;
    for status in &unmet {
        message.push_str(&format!("\n  requirement `{}`", status.selector));
        // In the order `--with-requirements` would choose, so the suggestion matches it.
        let preferences = Preferences {
            prefer: Vec::new(),
            installed: installed
                .entries()
                .iter()
                .map(|e| (e.module.name.clone(), e.version.version.to_string()))
                .collect(),
        };
        let candidates: Vec<Entry<'r>> = rank(index, entry, status.selector, &preferences, &[])
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        if candidates.is_empty() {
            message.push_str("\n    nothing in the repository satisfies it");
        } else {
            let ids: Vec<String> = candidates.iter().map(Entry::id).collect();
            message.push_str(&format!("\n    the repository has: {}", ids.join(", ")));
            first_candidate.get_or_insert(candidates[0].module.name.clone());
        }
    }
    let hint = match first_candidate {
        Some(module) => format!(
            "install one first (`e apply {module}`), or everything it needs with `e apply {} --with-requirements`; `e search --for {}` explains the choices",
            entry.module.name,
            entry.id()
        ),
        None => format!(
            "add a module that satisfies it to the repository; `e search --for {}` shows the near misses",
            entry.id()
        ),
    };
    message.push_str(&format!("\nhint: {hint}"));
    Some(anyhow::anyhow!(message))
}

/// The installed modules that would be left with an unmet strong requirement if `module` were
/// removed, and those that use it weakly.
pub fn dependents<'r>(
    module: &str,
    installed: &InstalledSet<'r>,
) -> (Vec<Entry<'r>>, Vec<Entry<'r>>) {
    let mut strong = Vec::new();
    let mut weak = Vec::new();
    for dependent in installed
        .entries()
        .iter()
        .copied()
        .filter(|e| e.module.name != module)
    {
        let relies = |selector: &Selector| {
            let satisfied = installed.satisfying(&dependent.module.name, selector);
            satisfied.iter().any(|e| e.module.name == module)
                && satisfied.iter().all(|e| e.module.name == module)
        };
        let uses = |selector: &Selector| {
            installed
                .satisfying(&dependent.module.name, selector)
                .iter()
                .any(|e| e.module.name == module)
        };
        if dependent.version.requires.strong.iter().any(relies) {
            strong.push(dependent);
        } else if dependent.version.requires.weak.iter().any(uses) {
            weak.push(dependent);
        }
    }
    (strong, weak)
}

/// The installed modules that `entry`'s `influences` select.
pub fn influenced<'r>(entry: Entry<'_>, installed: &InstalledSet<'r>) -> Vec<Entry<'r>> {
    installed
        .entries()
        .iter()
        .copied()
        .filter(|e| e.module.name != entry.module.name)
        .filter(|e| {
            entry
                .version
                .influences
                .iter()
                .any(|s| s.matches(&e.version.labels))
        })
        .collect()
}

/// The requirements file e writes for a module before each of its methods
/// (`.e/requirements/<module>.json`, pointed to by `E_REQUIREMENTS_FILE`).
#[derive(Debug, Serialize)]
pub struct File {
    /// The module being run.
    pub module: String,
    /// Its version.
    pub version: String,
    /// Each strong requirement with the installed modules that satisfy it.
    pub strong: Vec<FileRequirement>,
    /// Each weak requirement with the installed modules that satisfy it.
    pub weak: Vec<FileRequirement>,
}

/// One requirement in the requirements file.
#[derive(Debug, Serialize)]
pub struct FileRequirement {
    /// The requirement in command-line selector syntax.
    pub selector: String,
    /// The installed module version the module is bound to for it: the one to use.
    pub bound: Option<FileModule>,
    /// Installed module versions that satisfy it, the bound one first.
    pub satisfied_by: Vec<FileModule>,
}

/// A module version in the requirements file.
#[derive(Debug, Serialize)]
pub struct FileModule {
    /// Module name: the key of its section in the state.
    pub module: String,
    /// Installed version.
    pub version: String,
}

impl File {
    /// The requirements file for `entry` given these statuses and its bindings.
    pub fn new(entry: Entry<'_>, statuses: &[Status<'_>], bindings: &[Binding]) -> File {
        let list = |relation: Relation| {
            statuses
                .iter()
                .filter(|s| s.relation == relation)
                .map(|s| {
                    let selector = s.selector.to_string();
                    let bound =
                        bindings
                            .iter()
                            .find(|b| b.selector == selector)
                            .map(|b| FileModule {
                                module: b.module.clone(),
                                version: b.version.clone(),
                            });
                    let mut satisfied_by: Vec<FileModule> = s
                        .satisfied_by
                        .iter()
                        .map(|e| FileModule {
                            module: e.module.name.clone(),
                            version: e.version.version.to_string(),
                        })
                        .collect();
                    // Stable: the bound one first, the others in name order.
                    satisfied_by
                        .sort_by_key(|m| bound.as_ref().is_none_or(|b| b.module != m.module));
                    FileRequirement {
                        selector,
                        bound,
                        satisfied_by,
                    }
                })
                .collect()
        };
        File {
            module: entry.module.name.clone(),
            version: entry.version.version.to_string(),
            strong: list(Relation::Strong),
            weak: list(Relation::Weak),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::load;
    use std::time::SystemTime;

    fn repository() -> Repository {
        load::example()
    }

    fn installed(modules: &[&str]) -> BTreeMap<String, Installed> {
        modules
            .iter()
            .map(|m| {
                let record = Installed {
                    module: m.to_string(),
                    version: "0.1.0".into(),
                    image: String::new(),
                    image_id: String::new(),
                    applied: SystemTime::UNIX_EPOCH,
                    command: String::new(),
                    bindings: None,
                };
                (m.to_string(), record)
            })
            .collect()
    }

    #[test]
    fn unmet_strong_requirement_names_candidates_and_command() {
        let repository = repository();
        let index = Index::new(&repository);
        let bmk = repository.find(&"bmk".parse().unwrap()).unwrap();
        let records = installed(&[]);
        let set = InstalledSet::new(&repository, &records);
        let err = unmet_error(bmk, "apply", &statuses(bmk, &set), &index, &set)
            .unwrap()
            .to_string();
        assert!(
            err.contains("requirement `kind=infrastructure,provider in (azure, aws)`"),
            "{err}"
        );
        assert!(err.contains("the repository has: azi@0.1.0"), "{err}");
        assert!(err.contains("`e apply azi`"), "{err}");
        let records = installed(&["azi"]);
        let set = InstalledSet::new(&repository, &records);
        assert!(unmet_error(bmk, "apply", &statuses(bmk, &set), &index, &set).is_none());
    }

    #[test]
    fn dependents_and_influenced() {
        let repository = repository();
        let records = installed(&["azi", "bmk", "bmm"]);
        let set = InstalledSet::new(&repository, &records);
        let (strong, weak) = dependents("azi", &set);
        let ids: Vec<String> = strong.iter().map(Entry::id).collect();
        assert_eq!(ids, ["bmk@0.1.0", "bmm@0.1.0"]);
        assert!(weak.is_empty());
        let (strong, weak) = dependents("bmm", &set);
        assert!(strong.is_empty());
        assert_eq!(
            weak.iter().map(Entry::id).collect::<Vec<_>>(),
            ["bmk@0.1.0"]
        );
        let bmk = set.get("bmk").unwrap();
        assert_eq!(
            influenced(bmk, &set)
                .iter()
                .map(Entry::id)
                .collect::<Vec<_>>(),
            ["bmm@0.1.0"]
        );
    }
}
