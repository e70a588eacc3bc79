//! Reads a repository written as JSON on every core, without a pass over the text to find
//! its modules first: the modules of `components` are cut into parts at guessed module
//! starts, each part is read by serde_json on whichever thread is free, and a part is kept
//! only when the read of the part before it ends exactly where it begins.
//!
//! A guess is a `{` after a `,` where a whole module reads and is followed by `,` or `]`. It
//! can only be wrong where such a text sits inside something else, and the part before proves
//! it: that read goes through the text exactly as serde_json's read of the whole does, module
//! after module, so it lands on the guess only if the guess begins a module of `components`.
//! A part that begins at a wrong guess is dropped, and the part before reads on past it.
//!
//! Whatever does not go as in serde_json's read of the whole text (an error, a key twice,
//! trailing text, no `components`) gives up, and `json.rs` reads the text as before, which
//! reports it. This file never touches the disk and knows nothing of YAML.

use std::ops::Range;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::model::{Module, Repository};

/// A repository read in parts, with where each module's text lies in the source.
pub struct Parts {
    /// The repository, before the checks of `load.rs`.
    pub repository: Repository,
    /// Each module's bytes in the source, in order.
    pub modules: Vec<Range<usize>>,
}

/// How many parts each thread reads, on average (see [`array`]).
const PARTS_PER_THREAD: usize = 4;

/// How many `{` after a `,` a guess tries to read as a module before it gives up: a module of
/// the generated repositories holds about 25 (its versions, commands and selectors), and each
/// try that is no module fails at its first or second key.
const TRIES: usize = 1024;

/// Why a read in parts gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// serde_json refuses a module, or the array of modules, where the whole read reads them
    /// too (the part that read it began at a module): the whole read fails as well.
    Refused,
    /// Anything else: the whole read may or may not take the text.
    Declined,
}

/// Reads `source`, a JSON text, in parts on up to `threads` threads; gives up where
/// serde_json's read of the whole text would fail, or the text has no `components` to cut.
pub fn read(source: &str, threads: usize) -> Result<Parts, GaveUp> {
    use GaveUp::Declined;
    let bytes = source.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return Err(Declined);
    }
    at += 1;
    // The members other than `components`, each `"key": value` as written.
    let mut head: Vec<Range<usize>> = Vec::new();
    let mut components = None;
    loop {
        let member = skip_whitespace(bytes, at);
        let (key, after_key) = value_at::<String>(source, member).ok_or(Declined)?;
        at = skip_whitespace(bytes, after_key);
        if bytes.get(at) != Some(&b':') {
            return Err(Declined);
        }
        at = skip_whitespace(bytes, at + 1);
        if key == "components" {
            if components.is_some() {
                return Err(Declined);
            }
            let (modules, end) = array(source, at, threads)?;
            components = Some(modules);
            at = end;
        } else {
            let (IgnoredAny, end) = value_at::<IgnoredAny>(source, at).ok_or(Declined)?;
            head.push(member..end);
            at = end;
        }
        at = skip_whitespace(bytes, at);
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b'}') => break,
            _ => return Err(Declined),
        }
    }
    if skip_whitespace(bytes, at + 1) != bytes.len() {
        return Err(Declined);
    }
    let (components, ranges) = components.ok_or(Declined)?;
    let mut text = String::from("{");
    for (i, member) in head.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&source[member]);
    }
    text.push('}');
    let mut repository: Repository = serde_json::from_str(&text).map_err(|_| Declined)?;
    repository.components = components;
    Ok(Parts {
        repository,
        modules: ranges,
    })
}

/// Modules, each with its place in the source.
type Modules = (Vec<Module>, Vec<Range<usize>>);

/// Reads the array of modules that begins at `at` in parts, on up to `threads` threads;
/// returns the modules with their places, and the offset just after the array.
fn array(source: &str, at: usize, threads: usize) -> Result<(Modules, usize), GaveUp> {
    let bytes = source.as_bytes();
    if bytes.get(at) != Some(&b'[') {
        return Err(GaveUp::Declined);
    }
    let first = skip_whitespace(bytes, at + 1);
    if bytes.get(first) == Some(&b']') {
        return Ok(((Vec::new(), Vec::new()), first + 1));
    }
    // More parts than threads, taken in turn by whichever thread is free: when another
    // process holds a core, the threads that run take its parts, instead of the read waiting
    // for one part's thread to be given the core.
    let count = if threads > 1 {
        threads * PARTS_PER_THREAD
    } else {
        1
    };
    let mut starts = vec![first];
    for i in 1..count {
        let from = first + (bytes.len() - first) * i / count;
        let to = first + (bytes.len() - first) * (i + 1) / count;
        let last = *starts.last().expect("the first part's start is there");
        if let Some(start) = guess(source, from.max(last + 1), to) {
            starts.push(start);
        }
    }
    let indices: Vec<usize> = (0..starts.len()).collect();
    let mut parts: Vec<Option<Part>> = crate::parallel::map_chunks(
        &indices,
        1,
        threads,
        || (),
        |(), k| Some(part(source, &starts, *k)),
    )
    .expect("every part gives its result, failed or not");
    let mut modules = Vec::new();
    let mut places = Vec::new();
    let mut k = 0;
    loop {
        // The parts reached so far began at modules: one that failed fails the whole read.
        let part = parts[k].take().ok_or(GaveUp::Refused)?;
        if modules.is_empty() {
            modules = part.modules;
            places = part.places;
        } else {
            modules.extend(part.modules);
            places.extend(part.places);
        }
        match part.end {
            End::Part(next) => k = next,
            End::Array(end) => return Ok(((modules, places), end)),
        }
    }
}

/// The modules of one part, in order, and where it ends.
struct Part {
    modules: Vec<Module>,
    places: Vec<Range<usize>>,
    end: End,
}

/// Where a part ends.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// At the start of this later part, which therefore begins a module.
    Part(usize),
    /// At the end of the array: the offset just after its `]`.
    Array(usize),
}

/// Reads the modules from `starts[k]` on, until the start of a later part or the end of the
/// array; `None` if one does not read or the array does not go on as JSON does.
fn part(source: &str, starts: &[usize], k: usize) -> Option<Part> {
    let bytes = source.as_bytes();
    let mut at = starts[k];
    let mut next = k + 1;
    let mut modules = Vec::new();
    let mut places = Vec::new();
    loop {
        let (module, end) = value_at::<Module>(source, at)?;
        modules.push(module);
        places.push(at..end);
        let after = skip_whitespace(bytes, end);
        match bytes.get(after) {
            Some(b']') => {
                return Some(Part {
                    modules,
                    places,
                    end: End::Array(after + 1),
                });
            }
            Some(b',') => at = skip_whitespace(bytes, after + 1),
            _ => return None,
        }
        // A later part that begins where this one has read past began at a wrong guess.
        while starts.get(next).is_some_and(|start| *start < at) {
            next += 1;
        }
        if starts.get(next) == Some(&at) {
            return Some(Part {
                modules,
                places,
                end: End::Part(next),
            });
        }
    }
}

/// The first offset in `from..to` of a `{` after a `,` (and whitespace) where a module reads
/// that `,` or `]` follows: where a part may begin.
fn guess(source: &str, from: usize, to: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut at = from;
    let mut tries = 0;
    while tries < TRIES {
        let comma = at + memchr::memchr(b',', bytes.get(at..to)?)?;
        at = comma + 1;
        let start = skip_whitespace(bytes, at);
        if bytes.get(start) != Some(&b'{') {
            continue;
        }
        tries += 1;
        if let Some((_, end)) = value_at::<Module>(source, start)
            && matches!(bytes.get(skip_whitespace(bytes, end)), Some(b',' | b']'))
        {
            return Some(start);
        }
    }
    None
}

/// The value that begins at `at` (after any whitespace), read by serde_json as the whole
/// read would read it there, and the offset just after it.
fn value_at<'s, T: Deserialize<'s>>(source: &'s str, at: usize) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_str(source.get(at..)?).into_iter::<T>();
    let value = values.next()?.ok()?;
    Some((value, at + values.byte_offset()))
}

/// The offset of the first byte from `at` on that is not JSON whitespace.
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
#[path = "json_parts_tests.rs"]
mod tests;
