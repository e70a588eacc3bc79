//! What a method run's result may be: the checks it passes before anything reaches the
//! shared directory.
//!
//! Both trees are what the module sees: `state.yml`, the config files, anything else, and
//! `.e/` holding what e put there for it. A result is refused when it wrote under `.e/`, when
//! a read-only method (metadata, plan, audit) changed anything, when `state.yml` is not a
//! bounded YAML mapping, or when the module deleted another module's section or emptied the
//! state. Changing another module's section is allowed (bmk marks azi's nodes). The reading of
//! the trees (`tree.rs`) has already refused links, special files and oversized content. Only
//! the verdict is computed here: nothing is written, and the module's bytes are never
//! re-serialized.

use std::cmp::Ordering;

use super::tree::{Limits, Node, Refusal, STATE_FILE, Tree, is_under_or_at};
use crate::yaml_limits;

/// States from this size on are parsed on two threads, the base beside the result (lower in
/// unit tests, whose unoptimized parser is slow).
const PARALLEL_FROM: usize = if cfg!(test) { 64 * 1024 } else { 1024 * 1024 };

/// e's own area in the shared directory: a module reads it and never writes it.
const E_DIR: &str = ".e";

/// What the run was: whose result it is and whether it may change anything.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The module that ran; its own section of the state is the one it may delete.
    pub module: &'a str,
    /// The method or command, for messages.
    pub method: &'a str,
    /// Whether the method must leave everything as it was (metadata, plan, audit).
    pub read_only: bool,
}

/// A result that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The same content as the base: nothing to commit.
    Unchanged,
    /// A valid result that differs from the base.
    Changed(Changes),
}

/// What differs between the base and a valid result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Paths added or changed (content, mode or kind), files and directories, sorted.
    pub written: Vec<String>,
    /// Paths that are gone, sorted.
    pub removed: Vec<String>,
    /// Top-level keys of `state.yml` added, changed or removed, sorted.
    pub sections: Vec<String>,
}

/// Checks what a run left (`result`) against what it was given (`base`).
pub fn check(base: &Tree, result: &Tree, rules: &Rules) -> Result<Verdict, Refusal> {
    let differences = differences(base, result);
    if differences.is_empty() {
        return Ok(Verdict::Unchanged);
    }
    if let Some(change) = differences.iter().find(|d| is_under_or_at(d.path, E_DIR)) {
        return Err(Refusal::new(
            change.path,
            format!(
                "{} by `{}`, but nothing may be written under `{E_DIR}/`: it is e's own area",
                change.what(),
                rules.method
            ),
        ));
    }
    if rules.read_only {
        let change = &differences[0];
        return Err(Refusal::new(
            change.path,
            format!(
                "{}, but `{}` must not change the shared directory",
                change.what(),
                rules.method
            ),
        ));
    }
    let sections = check_state(base, result, rules)?;
    let (removed, written): (Vec<&Difference>, Vec<&Difference>) =
        differences.iter().partition(|d| d.after.is_none());
    Ok(Verdict::Changed(Changes {
        written: written.iter().map(|d| d.path.to_owned()).collect(),
        removed: removed.iter().map(|d| d.path.to_owned()).collect(),
        sections,
    }))
}

/// Parses a state, bounded: at most [`Limits::DEFAULT`]'s `max_state_bytes`, UTF-8, nesting
/// no deeper than [`yaml_limits::MAX_DEPTH`], aliases that add at most
/// [`yaml_limits::MAX_ALIAS_NODES`] nodes, no tags, one document (after a byte order mark, if
/// any), a mapping. An empty document (only whitespace or comments) is an empty mapping. The
/// error is a fragment that follows the file's name: `is not a YAML mapping of module sections`.
pub fn parse_state(bytes: &[u8]) -> Result<serde_yaml::Mapping, String> {
    bounded(bytes).and_then(mapping)
}

/// The checks of [`parse_state`] that come before parsing, each one linear and fast.
fn bounded(bytes: &[u8]) -> Result<&str, String> {
    let cap = Limits::DEFAULT.max_state_bytes;
    if bytes.len() as u64 > cap {
        return Err(format!(
            "is {} bytes, over the limit of {} MiB for the state",
            bytes.len(),
            cap / 1024 / 1024
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let valid = &bytes[..err.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let column = valid.len() - valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
        format!("is not valid UTF-8 (line {line}, column {column})")
    })?;
    // A byte order mark is no content (and would read as a second document).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let scan = yaml_limits::scan(text);
    if let Some(deep) = scan.too_deep {
        return Err(format!(
            "is refused before parsing: {deep} at line {}, column {}",
            deep.line, deep.column
        ));
    }
    if scan.aliases {
        yaml_limits::alias_expansion(text)?;
    }
    if scan.tags
        && let Some(tag) = yaml_limits::first_tag(text)
    {
        return Err(format!(
            "is refused: {tag} (line {}, column {})",
            tag.line, tag.column
        ));
    }
    Ok(text)
}

/// Parses a text that passed [`bounded`] as a mapping.
fn mapping(text: &str) -> Result<serde_yaml::Mapping, String> {
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Mapping(map)) => Ok(map),
        Ok(serde_yaml::Value::Null) => Ok(serde_yaml::Mapping::new()),
        Ok(_) => Err("is not a YAML mapping of module sections".to_owned()),
        Err(err) if err.to_string().contains("more than one document") => {
            Err("holds several YAML documents; the state is one mapping".to_owned())
        }
        Err(err) => Err(format!("is not valid YAML: {err}")),
    }
}

/// Checks `state.yml` and returns the sections that changed.
fn check_state(base: &Tree, result: &Tree, rules: &Rules) -> Result<Vec<String>, Refusal> {
    let refuse = |reason: String| Refusal::new(STATE_FILE, reason);
    let before = base.file(STATE_FILE);
    let after = match result.entries.get(STATE_FILE) {
        None => None,
        Some(Node::File { bytes, .. }) => Some(bytes.as_slice()),
        Some(Node::Dir { .. }) => {
            return Err(refuse("is a directory, not a regular file".to_owned()));
        }
    };
    if before == after {
        return Ok(Vec::new());
    }
    // The fast checks first, so that a hostile state is refused before any parsing starts.
    let after = after.map(bounded).transpose().map_err(refuse)?;
    // Then the base and the result are parsed, side by side when they are large: YAML parses
    // at about 16 MB/s. The base is what e committed; were it damaged by hand, there is
    // nothing to protect.
    let parse_base = |bytes: &[u8]| parse_state(bytes).ok();
    let (after, before) = std::thread::scope(|scope| {
        let base = before.map(|bytes| {
            if bytes.len() < PARALLEL_FROM {
                return Err(bytes);
            }
            std::thread::Builder::new()
                .name("parse the base state".to_owned())
                .spawn_scoped(scope, move || parse_base(bytes))
                .map_err(|_| bytes)
        });
        let after = after.map(mapping).transpose();
        let before = match base {
            None => None,
            Some(Ok(parsing)) => parsing.join().ok().flatten(),
            Some(Err(bytes)) => parse_base(bytes),
        };
        (after, before.unwrap_or_default())
    });
    let after = after.map_err(refuse)?.unwrap_or_default();
    let others: Vec<String> = before
        .keys()
        .map(section_name)
        .filter(|name| name != rules.module)
        .collect();
    if after.is_empty() && !others.is_empty() {
        let left = if result.file(STATE_FILE).is_some() {
            "is empty"
        } else {
            "is gone"
        };
        return Err(refuse(format!(
            "{left} after module `{}` ran `{}`, but it held the {}: a module may not empty the state",
            rules.module,
            rules.method,
            sections(&others)
        )));
    }
    let deleted: Vec<String> = before
        .keys()
        .filter(|key| !after.contains_key(*key))
        .map(section_name)
        .filter(|name| name != rules.module)
        .collect();
    if !deleted.is_empty() {
        return Err(refuse(format!(
            "lost the {}: module `{}` may change other modules' sections but not delete them",
            sections(&deleted),
            rules.module
        )));
    }
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, _)| section_name(key))
        .chain(
            before
                .keys()
                .filter(|key| !after.contains_key(*key))
                .map(section_name),
        )
        .collect();
    changed.sort();
    changed.dedup();
    Ok(changed)
}

/// `section `azi`` or `sections `azi`, `k8s``.
fn sections(names: &[String]) -> String {
    let listed: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match listed.len() {
        1 => format!("section {}", listed[0]),
        _ => format!("sections {}", listed.join(", ")),
    }
}

/// A top-level key as a name: the string itself, or its YAML form for other scalars.
fn section_name(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(name) => name.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// One path that differs between two trees.
#[derive(Debug)]
struct Difference<'a> {
    path: &'a str,
    before: Option<&'a Node>,
    after: Option<&'a Node>,
}

impl Difference<'_> {
    /// What happened to the path, as the start of a sentence about it: `was added`.
    fn what(&self) -> &'static str {
        match (self.before, self.after) {
            (None, _) => "was added",
            (_, None) => "was removed",
            (Some(Node::File { bytes: a, .. }), Some(Node::File { bytes: b, .. })) if a == b => {
                "changed mode"
            }
            (Some(Node::Dir { .. }), Some(Node::Dir { .. })) => "changed mode",
            (Some(Node::File { .. }), Some(Node::File { .. })) => "was changed",
            _ => "was replaced",
        }
    }
}

/// Every path whose entry differs, in path order, by one merge of the two sorted maps.
fn differences<'a>(base: &'a Tree, result: &'a Tree) -> Vec<Difference<'a>> {
    let mut found = Vec::new();
    let mut before = base.entries.iter().peekable();
    let mut after = result.entries.iter().peekable();
    loop {
        let order = match (before.peek(), after.peek()) {
            (None, None) => return found,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        let (path, was, is) = match order {
            Ordering::Less => {
                let (path, node) = before.next().expect("peeked");
                (path, Some(node), None)
            }
            Ordering::Greater => {
                let (path, node) = after.next().expect("peeked");
                (path, None, Some(node))
            }
            Ordering::Equal => {
                let (path, was) = before.next().expect("peeked");
                let (_, is) = after.next().expect("peeked");
                if was == is {
                    continue;
                }
                (path, Some(was), Some(is))
            }
        };
        found.push(Difference {
            path,
            before: was,
            after: is,
        });
    }
}

#[cfg(test)]
mod tests;
