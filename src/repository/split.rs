//! Parses a large `repository.yaml` one module at a time, on every core.
//!
//! serde_yaml reads about 20 MB/s here and holds every event of the document before it builds
//! a value, so a file of 10,000 modules took 2 s and 720 MB. The items of the top-level
//! `components:` sequence parse alone: the byte scan that bounds the nesting
//! ([`crate::yaml_limits::outline`]) also records where each item begins, and each item's lines
//! are given to serde_yaml as a document of their own, on one of several threads. What is left
//! of the file, with `components:` emptied, is parsed as the repository's head.
//!
//! The split is taken only where it cannot change the meaning: one plain document (no `---`,
//! `...` or directive), no aliases (an anchor in one module may be used in another), and a
//! block sequence under a plain `components:` key at the start of a line. Anything else, and
//! any error, is left to the parse of the whole document, which reports exactly what it always
//! did: this module only ever returns a repository the whole parse would return too.

use std::ops::Range;

use super::block_yaml::{self, Event};
use super::locate::{Document, Position, Step};
use super::model::{Module, Repository};
use crate::yaml_limits::LineStart;

/// The items of `components:`, each a slice of the text, and the text around them.
pub struct Split<'s> {
    source: &'s str,
    /// Each module's bytes, from the line of its `-` to the next item (comments included).
    items: Vec<Range<usize>>,
    /// The line each item begins on, from 1.
    lines: Vec<usize>,
    /// Where the first item begins and the last one ends.
    region: Range<usize>,
}

/// How many items a thread takes at a time: enough to make taking them cheap, few enough that
/// a thread slowed by other work on the machine does not hold up the rest.
const CHUNK: usize = 64;

/// Finds the items of the top-level `components:` block sequence from the outline's line
/// starts; `None` when the file is not laid out that way.
pub fn split<'s>(source: &'s str, starts: &[LineStart]) -> Option<Split<'s>> {
    let key = starts.iter().position(|start| {
        start.indent == 0 && !start.item && opens_components(&source[start.offset..])
    })?;
    let first = starts.get(key + 1).filter(|start| start.item)?;
    let column = first.indent;
    let mut items = Vec::new();
    let mut lines = Vec::new();
    let mut end = source.len();
    for start in &starts[key + 1..] {
        let ends = if column == 0 {
            start.indent == 0 && !start.item
        } else {
            start.indent < column
        };
        if ends {
            end = start.offset;
            break;
        }
        if start.item && start.indent == column {
            if let Some(previous) = items.last_mut() {
                let previous: &mut Range<usize> = previous;
                previous.end = start.offset;
            }
            items.push(start.offset..source.len());
            lines.push(start.line);
        }
    }
    if let Some(last) = items.last_mut() {
        last.end = end;
    }
    Some(Split {
        source,
        region: first.offset..end,
        items,
        lines,
    })
}

/// Whether a line is `components:` with nothing after it but a comment: the value is the
/// block below.
fn opens_components(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("components:") else {
        return false;
    };
    let rest = rest.split('\n').next().unwrap_or_default();
    let rest = rest.trim_start_matches([' ', '\t', '\r']);
    rest.is_empty() || rest.starts_with('#')
}

impl<'s> Split<'s> {
    /// Parses the head and every item, the items on up to `threads` threads; `None` if any
    /// part fails, for the whole document's parse to report it.
    ///
    /// With `fast`, each item is first read by [`super::block_yaml`], and by serde_yaml only
    /// when that declines.
    pub fn parse(&self, threads: usize, fast: bool) -> Option<Repository> {
        let head = format!(
            "{} []\n{}",
            &self.source[..self.region.start],
            &self.source[self.region.end..]
        );
        let mut repository: Repository = serde_yaml::from_str(&head).ok()?;
        if !repository.components.is_empty() {
            return None;
        }
        repository.components =
            crate::parallel::map_chunks(&self.items, CHUNK, threads, Vec::new, |events, item| {
                self.module(item.clone(), fast.then_some(events))
            })?;
        Some(repository)
    }

    /// One item, parsed as a sequence of its own: exactly one module, or `None`. With
    /// `events` (a buffer to reuse), the block reader tries first.
    fn module(&self, item: Range<usize>, events: Option<&mut Vec<Event<'s>>>) -> Option<Module> {
        let text: &'s str = &self.source[item];
        if let Some(events) = events
            && let Some(module) = block_yaml::parse_item(text, events)
        {
            return Some(module);
        }
        let mut modules: Vec<Module> = serde_yaml::from_str(text).ok()?;
        modules.pop().filter(|_| modules.is_empty())
    }

    /// Each item's text, in file order.
    #[cfg(test)]
    pub fn item_texts(&self) -> impl Iterator<Item = &'s str> + '_ {
        self.items.iter().map(|item| &self.source[item.clone()])
    }

    /// A locator for [`super::load`]'s checks: a path into module N is looked up in that
    /// module's text alone, and its line moved to where that text begins in the file.
    pub fn locator(&self) -> impl Fn(&[Step<'_>]) -> Option<Position> + '_ {
        let whole = Document::new(self.source);
        move |path: &[Step<'_>]| match path {
            [Step::Key("components"), Step::Index(m), rest @ ..] if *m < self.items.len() => {
                let item = &self.source[self.items[*m].clone()];
                let inner = [&[Step::Index(0)], rest].concat();
                Document::new(item).locate(&inner).map(|position| Position {
                    line: position.line + self.lines[*m] - 1,
                    column: position.column,
                })
            }
            _ => whole.locate(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(source: &str) -> Option<Vec<&str>> {
        let outline = crate::yaml_limits::outline(source);
        let split = split(source, &outline.lines)?;
        Some(split.items.iter().map(|r| &source[r.clone()]).collect())
    }

    #[test]
    fn items_are_cut_at_their_dash_and_nowhere_else() {
        let source = "version: v1\ncomponents:\n  - name: a # - name: x\n    note: |\n      - name: y\n  # a comment\n  - name: 'b\n\n  - c'\n    list:\n    - q\n  - {name: c,\n- d}\nkind: Repository\n";
        assert_eq!(
            items(source).expect("a split"),
            [
                "  - name: a # - name: x\n    note: |\n      - name: y\n  # a comment\n",
                "  - name: 'b\n\n  - c'\n    list:\n    - q\n",
                "  - {name: c,\n- d}\n",
            ]
        );
        let flush =
            "components:\n- name: a\n  versions:\n  - version: 1\n- name: b\nkind: Repository\n";
        assert_eq!(
            items(flush).expect("a split"),
            ["- name: a\n  versions:\n  - version: 1\n", "- name: b\n"]
        );
        assert!(items("components: []\n").is_none());
        let opened = crate::yaml_limits::outline("---\ncomponents:\n- a\n");
        assert!(!opened.documents);
        for two in [
            "a: 1\n---\nb: 2\n",
            "---\n---\n",
            "a: 1\n...\n",
            "%YAML 1.2\n---\na: 1\n",
        ] {
            assert!(crate::yaml_limits::outline(two).documents, "{two}");
        }
        assert!(items("components: &all\n  - a\n").is_none());
        assert!(items("components:\n  name: a\n").is_none());
    }
}
