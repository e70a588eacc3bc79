//! The module repository: its format (`model`), loading with good errors (`load`), and the
//! lookups every command needs (a module by name, a version by `MODULE[@VERSION]`).

mod block_yaml;
mod cache;
mod event_reader;
mod json;
mod json_parts;
pub mod limits;
pub mod listing;
pub mod load;
mod locate;
pub mod model;
pub mod packages;
mod split;

use std::fmt;
use std::str::FromStr;

pub use cache::Found;
pub use cache::directory as cache_directory;
pub use listing::{EntryView, LabelPairs};
pub use load::{LoadError, Loaded};

/// Reads and validates the repository file at `path`; a large file that loaded before, and has
/// not changed since, comes from the cache (see `cache/mod.rs`).
pub fn load(path: &std::path::Path) -> Result<Loaded, LoadError> {
    load_from(path, cache::Want::Everything)
}

/// Like [`load`], for commands that only look at labels and relations (list, search, graph):
/// from the cache, the versions' commands are left empty.
pub fn load_without_commands(path: &std::path::Path) -> Result<Loaded, LoadError> {
    load_from(path, cache::Want::WithoutCommands)
}

/// Like [`load_without_commands`], for `e search SELECTOR`: from the cache, only the modules
/// with a version that `selector` matches are built (with all their versions), so a search of a
/// large repository builds a few modules instead of all of them. The warnings are the whole
/// repository's.
pub fn load_matching(
    path: &std::path::Path,
    selector: &crate::selector::Selector,
) -> Result<Loaded, LoadError> {
    load_from(path, cache::Want::Matching(selector))
}

/// For `e search --for SPEC`, from the cache: gives `show` the version `spec` names and each
/// of its requirements with the versions that satisfy it and the `near_misses` nearest misses
/// (see `cache/relevant.rs`), as the whole repository gives them, and the load's warnings;
/// no other module is built. `None` when there is no cache, or the module or version is not in
/// it: then load the repository, which gives the error.
pub fn related<T>(
    path: &std::path::Path,
    spec: &ModuleSpec,
    near_misses: usize,
    show: impl FnOnce(Entry<'_>, Vec<(crate::graph::Requirement<'_>, Found<'_>)>, &[String]) -> T,
) -> Option<T> {
    cache::related(path, spec, near_misses, show)
}

fn load_from(path: &std::path::Path, want: cache::Want<'_>) -> Result<Loaded, LoadError> {
    if let Some(loaded) = cache::get(path, want) {
        return Ok(loaded);
    }
    let mut loaded = load::load(path)?;
    cache::put(path, &mut loaded);
    Ok(loaded)
}
pub use model::{Command, Module, ModuleVersion, Repository, VersionId};

/// A module named on the command line: `MODULE` or `MODULE@VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// The module name.
    pub module: String,
    /// The version, if one was named.
    pub version: Option<String>,
}

impl FromStr for ModuleSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (module, version) = match text.split_once('@') {
            Some((module, version)) => (module, Some(version)),
            None => (text, None),
        };
        if module.is_empty() {
            return Err("expected MODULE or MODULE@VERSION".to_owned());
        }
        if version.is_some_and(str::is_empty) {
            return Err(format!("missing version after `{module}@`"));
        }
        Ok(ModuleSpec {
            module: module.to_owned(),
            version: version.map(str::to_owned),
        })
    }
}

impl fmt::Display for ModuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}@{version}", self.module),
            None => f.write_str(&self.module),
        }
    }
}

/// One module version together with the module it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'r> {
    /// The module.
    pub module: &'r Module,
    /// The version.
    pub version: &'r ModuleVersion,
}

impl Entry<'_> {
    /// `module@version`, the way e names a module version everywhere.
    pub fn id(&self) -> String {
        format!("{}@{}", self.module.name, self.version.version)
    }
}

impl Module {
    /// The version used when none is named: the one marked `latest`, else the highest.
    pub fn default_version(&self) -> &ModuleVersion {
        self.versions
            .iter()
            .find(|v| v.latest)
            .or_else(|| {
                self.versions
                    .iter()
                    .max_by(|a, b| a.version.cmp(&b.version))
            })
            .expect("loading rejects modules without versions")
    }

    /// The version with this name.
    pub fn version(&self, version: &str) -> Option<&ModuleVersion> {
        self.versions.iter().find(|v| v.version.as_str() == version)
    }
}

impl Repository {
    /// The module with this name.
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.components.iter().find(|m| m.name == name)
    }

    /// Every module version, modules in file order, versions in file order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.components.iter().flat_map(|module| {
            module
                .versions
                .iter()
                .map(move |version| Entry { module, version })
        })
    }

    /// Finds `MODULE[@VERSION]`; without a version, the module's default version.
    pub fn find(&self, spec: &ModuleSpec) -> anyhow::Result<Entry<'_>> {
        let Some(module) = self.module(&spec.module) else {
            let mut message = format!("no module `{}` in the repository", spec.module);
            let similar: Vec<&str> = self
                .components
                .iter()
                .map(|m| m.name.as_str())
                .filter(|name| similar(name, &spec.module))
                .collect();
            if similar.is_empty() {
                message.push_str("\nhint: `e list` shows the modules there are");
            } else {
                message.push_str(&format!("\nhint: did you mean `{}`?", similar.join("`, `")));
            }
            anyhow::bail!(message);
        };
        let version = match &spec.version {
            None => module.default_version(),
            Some(wanted) => module.version(wanted).ok_or_else(|| {
                let known: Vec<&str> = module.versions.iter().map(|v| v.version.as_str()).collect();
                anyhow::anyhow!(
                    "module `{}` has no version `{wanted}`\nhint: its versions are `{}`",
                    module.name,
                    known.join("`, `")
                )
            })?,
        };
        Ok(Entry { module, version })
    }
}

/// Whether two names are close enough to suggest one for the other.
fn similar(a: &str, b: &str) -> bool {
    a.contains(b) || b.contains(a) || edit_distance(a, b) <= 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_spec_parses() {
        assert_eq!(
            "bmk@0.1.0".parse::<ModuleSpec>().unwrap(),
            ModuleSpec {
                module: "bmk".into(),
                version: Some("0.1.0".into())
            }
        );
        assert_eq!("bmk".parse::<ModuleSpec>().unwrap().version, None);
        assert!("bmk@".parse::<ModuleSpec>().is_err());
        assert!("@1".parse::<ModuleSpec>().is_err());
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("bmk", "bmm"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
