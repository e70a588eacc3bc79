//! Merging a run's result onto a shared directory that moved on since the run began: what lets
//! independent modules of a stack run at the same time without a lost update.
//!
//! A run starts from a snapshot (`base`) and ends with its result (`ours`); meanwhile other
//! runs may have committed (`theirs`, the directory now). The units are the top-level sections
//! of `state.yml` and every other path. The result is merged when no unit that `ours` changed
//! was changed by `theirs` as well (unless both made the very same change); anything else is a
//! conflict, never merged, and the caller runs the module again on the new content.
//!
//! Why that is safe: the modules that run side by side have no requirement between them, so
//! none reads what another writes (a module reads its own section and those of the modules it
//! requires, which had committed before it started). Writes to disjoint units commute, so the
//! merge is what running them one after the other would have left. The merged `state.yml` is
//! built as text: the sections `ours` changed are cut from its bytes into the current file,
//! and the result must parse to exactly the expected mapping, or it is a conflict too.

use std::collections::BTreeSet;

use serde_yaml::{Mapping, Value};

use super::parse_mapping;
use super::sections::{section_text, with_section};
use crate::run::tree::{Node, STATE_FILE, Tree};

/// What merging a result gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Merge {
    /// The content to commit: `ours` carried onto `theirs`.
    Merged(Tree),
    /// The units both changed, differently (a section as `state.yml: NAME`, a path as itself).
    Conflict(Vec<String>),
}

/// A result that could not be merged: another run changed the same units since it began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The units both changed.
    pub units: Vec<String>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another run changed {} since this run began; nothing of it was committed",
            self.units
                .iter()
                .map(|unit| format!("`{unit}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl std::error::Error for Conflict {}

/// Carries the changes `ours` made to `base` onto `theirs`.
pub fn merge(base: &Tree, ours: &Tree, theirs: &Tree) -> Merge {
    if theirs == base {
        return Merge::Merged(ours.clone());
    }
    let mut conflicts = Vec::new();
    let mut merged = theirs.clone();
    let paths: BTreeSet<&String> = base
        .entries
        .keys()
        .chain(ours.entries.keys())
        .chain(theirs.entries.keys())
        .filter(|path| path.as_str() != STATE_FILE)
        .collect();
    for path in paths {
        let (b, o, t) = (
            base.entries.get(path),
            ours.entries.get(path),
            theirs.entries.get(path),
        );
        if o == b || o == t {
            continue;
        }
        if t != b {
            conflicts.push(path.clone());
            continue;
        }
        match o {
            Some(node) => {
                merged.entries.insert(path.clone(), node.clone());
            }
            None => {
                merged.entries.remove(path);
            }
        }
    }
    match merge_state(
        base.file(STATE_FILE),
        ours.file(STATE_FILE),
        theirs.file(STATE_FILE),
    ) {
        Ok(Some(state)) => {
            merged.insert_file(STATE_FILE, state, mode_of(ours, theirs));
        }
        Ok(None) => {}
        Err(mut units) => conflicts.append(&mut units),
    }
    // A file kept whose directory the other side removed (or the reverse) is no tree.
    for path in merged.entries.keys() {
        if let Some((parent, _)) = path.rsplit_once('/')
            && !matches!(merged.entries.get(parent), Some(Node::Dir { .. }))
        {
            conflicts.push(parent.to_owned());
        }
    }
    if conflicts.is_empty() {
        Merge::Merged(merged)
    } else {
        conflicts.sort();
        conflicts.dedup();
        Merge::Conflict(conflicts)
    }
}

fn mode_of(ours: &Tree, theirs: &Tree) -> u32 {
    [ours, theirs]
        .iter()
        .find_map(|tree| match tree.entries.get(STATE_FILE) {
            Some(Node::File { mode, .. }) => Some(*mode),
            _ => None,
        })
        .unwrap_or(0o644)
}

/// The merged `state.yml`: `Ok(None)` when `ours` left it as `base` had it (theirs stands),
/// `Err` with the conflicting units otherwise.
fn merge_state(
    base: Option<&[u8]>,
    ours: Option<&[u8]>,
    theirs: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, Vec<String>> {
    if ours == base || ours == theirs {
        return Ok(None);
    }
    let whole = || vec![STATE_FILE.to_owned()];
    let parse = |bytes: Option<&[u8]>| match bytes {
        None => Ok(Mapping::new()),
        Some(bytes) => parse_mapping(bytes),
    };
    let (Ok(b), Ok(o), Ok(t)) = (parse(base), parse(ours), parse(theirs)) else {
        return Err(whole());
    };
    // Ours' order first, then the keys it removed.
    let keys = o.keys().chain(b.keys().filter(|k| !o.contains_key(*k)));
    let changed: Vec<&Value> = keys.filter(|k| b.get(*k) != o.get(*k)).collect();
    let unit = |key: &Value| match key {
        Value::String(name) => format!("{STATE_FILE}: {name}"),
        other => format!("{STATE_FILE}: {other:?}"),
    };
    let conflicts: Vec<String> = changed
        .iter()
        .filter(|k| b.get(**k) != t.get(**k) && o.get(**k) != t.get(**k))
        .map(|k| unit(k))
        .collect();
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let Ok(ours_text) = std::str::from_utf8(ours.unwrap_or_default()) else {
        return Err(whole());
    };
    let Ok(mut text) = String::from_utf8(theirs.unwrap_or_default().to_vec()) else {
        return Err(whole());
    };
    let mut expected = t.clone();
    for key in changed {
        let Value::String(name) = key else {
            return Err(vec![unit(key)]);
        };
        let next = match o.get(key) {
            Some(value) => {
                expected.insert(key.clone(), value.clone());
                section_text(ours_text, name).and_then(|section| with_section(&text, name, section))
            }
            None => {
                expected.remove(key);
                super::sections::without_section(text.as_bytes(), name)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
            }
        };
        match next {
            Some(next) => text = next,
            None => return Err(vec![unit(key)]),
        }
    }
    match parse_mapping(text.as_bytes()) {
        Ok(after) if same_mapping(&after, &expected) => Ok(Some(text.into_bytes())),
        _ => Err(whole()),
    }
}

/// Equal as mappings, whatever the order of their keys.
fn same_mapping(a: &Mapping, b: &Mapping) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, text) in files {
            if let Some((dir, _)) = path.rsplit_once('/') {
                tree.entries
                    .insert(dir.to_owned(), Node::Dir { mode: 0o755 });
            }
            tree.insert_file(path, text.as_bytes().to_vec(), 0o644);
        }
        tree
    }

    fn state(text: &str) -> Tree {
        tree(&[("state.yml", text)])
    }

    fn merged(merge: Merge) -> String {
        match merge {
            Merge::Merged(tree) => {
                String::from_utf8(tree.file(STATE_FILE).unwrap().to_vec()).unwrap()
            }
            Merge::Conflict(units) => panic!("conflict: {units:?}"),
        }
    }

    #[test]
    fn sections_of_two_modules_written_side_by_side_are_both_kept() {
        let base = state("azi:\n  nodes: [a]\n");
        let ours = state("azi:\n  nodes: [a]\nbmk:\n  status: applied # bmk's comment\n");
        let theirs = state("# kept\nazi:\n  nodes: [a]\nk8s:\n  status: applied\n");
        assert_eq!(
            merged(merge(&base, &ours, &theirs)),
            "# kept\nazi:\n  nodes: [a]\nk8s:\n  status: applied\nbmk:\n  status: applied # bmk's comment\n"
        );
    }

    #[test]
    fn a_section_both_changed_differently_is_a_conflict() {
        let base = state("azi:\n  nodes: [a]\n");
        let ours = state("azi:\n  nodes: [a]\n  marked: bmk\nbmk: {}\n");
        let theirs = state("azi:\n  nodes: [a]\n  marked: k8s\nk8s: {}\n");
        assert_eq!(
            merge(&base, &ours, &theirs),
            Merge::Conflict(vec!["state.yml: azi".to_owned()])
        );
    }

    #[test]
    fn the_same_change_on_both_sides_is_no_conflict() {
        let base = state("azi: 1\n");
        let ours = state("azi: 2\nbmk: 1\n");
        let theirs = state("azi: 2\nk8s: 1\n");
        let text = merged(merge(&base, &ours, &theirs));
        let map = parse_mapping(text.as_bytes()).unwrap();
        assert_eq!(map.len(), 3, "{text}");
    }

    #[test]
    fn a_section_removed_by_ours_is_removed_from_theirs() {
        let base = state("azi: 1\nbmk:\n  a: 1\n");
        let ours = state("azi: 1\n");
        let theirs = state("azi: 1\nbmk:\n  a: 1\nk8s: 2\n");
        assert_eq!(merged(merge(&base, &ours, &theirs)), "azi: 1\nk8s: 2\n");
    }

    #[test]
    fn files_are_merged_by_path_and_a_path_both_wrote_conflicts() {
        let base = tree(&[("state.yml", "a: 1\n")]);
        let ours = tree(&[("state.yml", "a: 1\n"), ("bmk-config.yml", "x: 1\n")]);
        let theirs = tree(&[("state.yml", "a: 1\n"), ("k8s-config.yml", "y: 1\n")]);
        let Merge::Merged(result) = merge(&base, &ours, &theirs) else {
            panic!("conflict");
        };
        assert!(result.file("bmk-config.yml").is_some() && result.file("k8s-config.yml").is_some());
        let other = tree(&[("state.yml", "a: 1\n"), ("bmk-config.yml", "x: 2\n")]);
        assert_eq!(
            merge(&base, &ours, &other),
            Merge::Conflict(vec!["bmk-config.yml".to_owned()])
        );
    }

    #[test]
    fn a_file_left_in_a_directory_the_other_side_removed_conflicts() {
        let base = tree(&[("state.yml", "a: 1\n"), ("d/x", "1")]);
        let ours = tree(&[("state.yml", "a: 1\n"), ("d/x", "1"), ("d/y", "2")]);
        let theirs = tree(&[("state.yml", "a: 1\n")]);
        assert_eq!(
            merge(&base, &ours, &theirs),
            Merge::Conflict(vec!["d".to_owned()])
        );
    }

    #[test]
    fn a_section_e_cannot_cut_as_text_is_a_conflict_not_a_guess() {
        let base = state("{azi: 1}\n");
        let ours = state("{azi: 1, bmk: 2}\n");
        let theirs = state("{azi: 1, k8s: 3}\n");
        assert_eq!(
            merge(&base, &ours, &theirs),
            Merge::Conflict(vec!["state.yml: bmk".to_owned()])
        );
    }

    #[test]
    fn nothing_committed_since_the_snapshot_keeps_the_result_as_it_is() {
        let base = state("a: 1\n");
        let ours = state("a: 2 # as written\n");
        assert_eq!(merged(merge(&base, &ours, &base)), "a: 2 # as written\n");
    }
}
