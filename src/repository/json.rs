//! Reads a repository written as JSON with serde_json, module by module on every core, into
//! exactly the repository serde_yaml makes of the same text (JSON is YAML).
//!
//! A large text is read in parts on every core first (see `json_parts.rs`), which reads what
//! the whole read reads or gives up; then the whole text is read by serde_json. When that
//! fails too, the top level is read, the modules of `components` left as their text
//! (serde_json's raw values, borrowed from the source). Each module is then read by
//! serde_json; scalars are read as YAML reads them (see `json_scalar.rs`), so
//! `"provides-pubips": true` is the label value `true` and `1.10` stays `1.10`. What serde_json refuses in one module (a number where
//! a plain string field is, say) is read by serde_yaml from that module's text alone, which
//! gives the module the whole parse would give, since JSON has no anchors or tags that could
//! reach across modules. Only what neither reads, or a top level serde_json cannot split, is
//! left to [`super::load`]'s YAML path, which reports it with its line and column, as before.

use std::cell::OnceCell;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::locate::{Document, Position, Step};
use super::model::{Module, Repository};

/// The top level of a JSON repository as far as splitting it needs: the modules of
/// `components` as text, everything else skipped here and read with the head (see [`read`]).
#[derive(Deserialize)]
struct Top<'s> {
    #[serde(borrow, default)]
    components: Option<Vec<&'s RawValue>>,
}

/// How many modules a thread takes at a time (as in `split.rs`).
const CHUNK: usize = 64;

/// A repository read from JSON text, with where each module's text lies in it.
pub struct Read<'s> {
    /// The repository, before the checks of `load.rs`.
    pub repository: Repository,
    source: &'s str,
    /// Each module's bytes in the source, in order.
    modules: Vec<Range<usize>>,
    /// Where each module begins, found on the first lookup.
    starts: OnceCell<Option<Vec<Position>>>,
    whole: Document<'s>,
}

/// Reads `source` (a JSON text) on up to `threads` threads; `None` when it is not JSON that
/// serde_json can split into modules, or a part of it reads neither as JSON nor as YAML.
pub fn read(source: &str, threads: usize) -> Option<Read<'_>> {
    // In parts on every core first (see `json_parts.rs`): it reads what the whole read
    // reads, at 0.7 to 0.9 times its wall time on this 2-core machine, and a module's warning
    // is looked up in that module's text. Where it gives up (an error, say), the reads below
    // find and report the problem as before, one more read of the text later; where serde_json
    // refused a module, the whole read is not tried, as it would fail there too.
    let mut whole_may_read = true;
    if threads > 1 {
        match super::json_parts::read(source, threads) {
            Ok(parts) => {
                return Some(Read {
                    repository: parts.repository,
                    source,
                    modules: parts.modules,
                    starts: OnceCell::new(),
                    whole: Document::new(source),
                });
            }
            Err(gave_up) => whole_may_read = gave_up != super::json_parts::GaveUp::Refused,
        }
    }
    // Whole next, on one thread: nearly every JSON repository reads so, and splitting it by
    // raw values first cost a fifth more CPU and, on this 2-core machine, no wall time (the
    // split is one more pass over the text). A warning is then looked up in the whole text.
    if whole_may_read && let Ok(repository) = serde_json::from_str::<Repository>(source) {
        return Some(Read {
            repository,
            source,
            modules: Vec::new(),
            starts: OnceCell::new(),
            whole: Document::new(source),
        });
    }
    let top: Top<'_> = serde_json::from_str(source).ok()?;
    let items = top.components.unwrap_or_default();
    let modules: Vec<Range<usize>> = items
        .iter()
        .map(|item| within(source, item.get()))
        .collect();
    let repository = match (modules.first(), modules.last()) {
        // The head is the text without the modules: `"components": [ ]` and the rest as
        // written.
        (Some(first), Some(last)) => {
            let mut repository = head(&format!(
                "{}{}",
                &source[..first.start],
                &source[last.end..]
            ))?;
            repository.components = parse_modules(&items, threads)?;
            repository
        }
        // No modules: a small text, read whole.
        _ => serde_json::from_str(source).ok()?,
    };
    Some(Read {
        repository,
        source,
        modules,
        starts: OnceCell::new(),
        whole: Document::new(source),
    })
}

impl Read<'_> {
    /// Where the value at `path` is in the file, for the checks of `load.rs`: a path into
    /// module N is looked up in that module's text alone and moved to where that text begins,
    /// so a warning does not have the whole file parsed again.
    pub fn locate(&self, path: &[Step<'_>]) -> Option<Position> {
        let starts = self
            .starts
            .get_or_init(|| starts(self.source, &self.modules))
            .as_ref();
        match (path, starts) {
            ([Step::Key("components"), Step::Index(m), rest @ ..], Some(starts))
                if *m < self.modules.len() =>
            {
                let text = &self.source[self.modules[*m].clone()];
                let inner = Document::new(text).locate(rest)?;
                let start = starts[*m];
                Some(if inner.line == 1 {
                    Position {
                        line: start.line,
                        column: start.column + inner.column - 1,
                    }
                } else {
                    Position {
                        line: start.line + inner.line - 1,
                        column: inner.column,
                    }
                })
            }
            _ => self.whole.locate(path),
        }
    }
}

/// The line and column (in characters, as the YAML reader of `locate.rs` counts them) where
/// each module begins, in one pass; `None` if the text holds a carriage return, which that
/// reader counts otherwise than a line break alone (then the whole text is looked in).
fn starts(source: &str, modules: &[Range<usize>]) -> Option<Vec<Position>> {
    if memchr::memchr(b'\r', source.as_bytes()).is_some() {
        return None;
    }
    let mut starts = Vec::with_capacity(modules.len());
    let (mut at, mut line, mut column) = (0, 1, 1);
    for module in modules {
        let between = &source[at..module.start];
        match memchr::memrchr(b'\n', between.as_bytes()) {
            Some(last) => {
                line += memchr::memchr_iter(b'\n', between.as_bytes()).count();
                column = between[last + 1..].chars().count() + 1;
            }
            None => column += between.chars().count(),
        }
        starts.push(Position { line, column });
        at = module.start;
    }
    Some(starts)
}

/// The repository without its modules, from the top level with `components` emptied.
fn head(text: &str) -> Option<Repository> {
    serde_json::from_str(text).ok().or_else(|| as_yaml(text))
}

/// `text` read by serde_yaml, unless it nests deeper than `yaml_limits` allows: serde_yaml's
/// time grows with the depth, and the YAML path refuses such a file with its line and column.
fn as_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    if crate::yaml_limits::scan(text).too_deep.is_some() {
        return None;
    }
    serde_yaml::from_str(text).ok()
}

/// Where `part`, a slice of `source`, lies in it.
fn within(source: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - source.as_ptr() as usize;
    start..start + part.len()
}

/// One module: by serde_json, else by serde_yaml from the same text.
fn module(text: &str) -> Option<Module> {
    serde_json::from_str(text).ok().or_else(|| as_yaml(text))
}

/// Every module, in order, read in chunks on up to `threads` threads; `None` if one fails.
fn parse_modules(items: &[&RawValue], threads: usize) -> Option<Vec<Module>> {
    crate::parallel::map_chunks(items, CHUNK, threads, || (), |(), item| module(item.get()))
}
