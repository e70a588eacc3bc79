//! A fast reader for the block-style YAML that repositories are written in, one module at a
//! time, that gives up on anything it is not sure to read exactly as serde_yaml does.
//!
//! serde_yaml (libyaml underneath) was two thirds of a cold load of a large repository. Most
//! repositories use a small part of YAML: block mappings and sequences, one scalar per line
//! (plain, single- or double-quoted), flow sequences of scalars (`values: [a, b]`) and
//! comments. This module reads that part into a flat list of events, which
//! [`super::event_reader`] hands to the model's `Deserialize` the way serde_yaml would.
//!
//! It must never return what serde_yaml would not: every rule below is the stricter of YAML's
//! and libyaml's, and anything else makes it decline (return `None`): anchors, aliases, tags,
//! block scalars (`|`, `>`), a scalar continued on the next line, flow mappings, tabs, carriage
//! returns, control or line-separator characters, document markers, a key it cannot read on
//! its line, indentation that is not that of a level already open, a value where a mapping
//! ends, and duplicate keys. The caller then parses the text with serde_yaml, which reports any
//! error as it always did (file, line, column, module).

use std::borrow::Cow;

pub use super::event_reader::Event;
use super::event_reader::Reader;

/// How deep the nesting may go before the reader declines; the model nests 8 levels.
const MAX_DEPTH: usize = 32;

/// libyaml looks for the `:` of a key at most 1024 characters after the key begins.
const MAX_KEY_BYTES: usize = 1000;

/// Reads `text`, one item of a block sequence (from its `-` line to the next item, comments
/// and blank lines included), into `events` (cleared first): the events of the item's value.
/// `None` when the text is outside the subset, or is not exactly one item.
pub fn item<'a>(text: &'a str, events: &mut Vec<Event<'a>>) -> Option<()> {
    events.clear();
    if !plain_characters(text) {
        return None;
    }
    let mut parser = Parser {
        lines: Lines::new(text),
        events,
        keys: Vec::new(),
        depth: 0,
    };
    let first = parser.lines.peek()?;
    if !is_entry(first.text) {
        return None;
    }
    parser.lines.take();
    parser.entry(first)?;
    match parser.lines.peek() {
        None => Some(()),
        Some(_) => None,
    }
}

/// Reads one item (see [`item`]) as a `T`, as serde_yaml would read it; `None` when the text
/// is outside the subset or `T` refuses it (serde_yaml then says why).
pub fn parse_item<'a, T: serde::Deserialize<'a>>(
    text: &'a str,
    events: &mut Vec<Event<'a>>,
) -> Option<T> {
    item(text, events)?;
    let mut reader = Reader::new(events);
    let value = T::deserialize(&mut reader).ok()?;
    reader.finished().then_some(value)
}

/// Whether every character is one libyaml reads as itself: printable, no tab, no carriage
/// return, no byte order mark, and none of the characters libyaml takes as line breaks
/// (U+0085, U+2028, U+2029).
fn plain_characters(text: &str) -> bool {
    if text
        .bytes()
        .all(|b| b == b'\n' || (0x20..0x7f).contains(&b))
    {
        return true;
    }
    text.chars().all(|c| match c {
        '\n' | ' '..='~' => true,
        '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}' => {
            !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
        }
        _ => false,
    })
}

/// A line with content: its indentation and what follows it, without the line break.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// The lines with content, blank and comment lines skipped. Part of a line (what follows
/// `- `) can be put back as a line of its own, at its column: YAML reads `- key: value` as a
/// mapping whose keys stand at the column of `key`.
struct Lines<'a> {
    rest: &'a str,
    peeked: Option<Line<'a>>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            rest: text,
            peeked: None,
        }
    }

    /// The next line with content, left in place. A document marker (`---`, `...` at the
    /// start of a line) counts as content, and no parse accepts it.
    fn peek(&mut self) -> Option<Line<'a>> {
        if self.peeked.is_none() {
            self.peeked = self.read();
        }
        self.peeked
    }

    fn take(&mut self) {
        self.peeked = None;
    }

    /// Puts back part of a line, as the next one.
    fn put_back(&mut self, line: Line<'a>) {
        debug_assert!(self.peeked.is_none());
        self.peeked = Some(line);
    }

    fn read(&mut self) -> Option<Line<'a>> {
        while !self.rest.is_empty() {
            let (line, rest) = match self.rest.find('\n') {
                Some(end) => (&self.rest[..end], &self.rest[end + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            let text = line.trim_start_matches(' ');
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            return Some(Line {
                indent: line.len() - text.len(),
                text,
            });
        }
        None
    }
}

/// Whether a line's text begins a sequence entry: `-` followed by a space or nothing.
fn is_entry(text: &str) -> bool {
    text.strip_prefix('-')
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// What follows a scalar on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Nothing, or spaces and a comment.
    End,
    /// `:` and a space or the end of the line: the scalar is a key; the value follows.
    Key,
}

struct Parser<'a, 'e> {
    lines: Lines<'a>,
    events: &'e mut Vec<Event<'a>>,
    /// Where the keys of the mappings being read are in `events`, innermost last: one list
    /// for all, so that a mapping costs no allocation.
    keys: Vec<usize>,
    depth: usize,
}

impl<'a> Parser<'a, '_> {
    /// One sequence entry, whose line (`- ...` at the sequence's indentation) was taken.
    fn entry(&mut self, line: Line<'a>) -> Option<()> {
        let rest = &line.text[1..];
        let content = rest.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            return self.block_value(line.indent, false);
        }
        let column = line.indent + 1 + (rest.len() - content.len());
        self.compact(line.indent, column, content)
    }

    /// What follows `- ` on an entry's line: a nested sequence, a mapping whose first key is
    /// here, or a scalar or flow sequence. `parent` is the sequence's indentation.
    fn compact(&mut self, parent: usize, column: usize, text: &'a str) -> Option<()> {
        if is_entry(text) {
            self.lines.put_back(Line {
                indent: column,
                text,
            });
            return self.nested(|parser| parser.sequence(column));
        }
        if text.starts_with('[') {
            return self.flow_sequence(text);
        }
        let (scalar, after, _) = scalar(text)?;
        match after {
            After::End => {
                self.events.push(scalar);
                Some(())
            }
            After::Key => {
                debug_assert!(column > parent);
                self.lines.put_back(Line {
                    indent: column,
                    text,
                });
                self.nested(|parser| parser.mapping(column))
            }
        }
    }

    /// The value of a key or entry with nothing after it on its line: the block below, more
    /// indented than `parent` (or a sequence at the key's own indentation, when `indentless`),
    /// else an empty scalar (null, or an empty string, sequence or mapping, as asked).
    fn block_value(&mut self, parent: usize, indentless: bool) -> Option<()> {
        match self.lines.peek() {
            Some(line) if line.indent > parent => {
                if is_entry(line.text) {
                    self.nested(|parser| parser.sequence(line.indent))
                } else {
                    self.nested(|parser| parser.mapping(line.indent))
                }
            }
            Some(line) if indentless && line.indent == parent && is_entry(line.text) => {
                self.nested(|parser| parser.sequence(line.indent))
            }
            _ => {
                self.events.push(Event::Scalar {
                    text: Cow::Borrowed(""),
                    plain: true,
                });
                Some(())
            }
        }
    }

    fn nested(&mut self, parse: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let result = parse(self);
        self.depth -= 1;
        result
    }

    /// A block sequence whose entries stand at `indent`; it ends at a line less indented, or
    /// at a line at `indent` that is no entry (the next key of a mapping at that indentation,
    /// for the caller to check).
    fn sequence(&mut self, indent: usize) -> Option<()> {
        self.events.push(Event::SeqStart);
        while let Some(line) = self.lines.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            if !is_entry(line.text) {
                break;
            }
            self.lines.take();
            self.entry(line)?;
        }
        self.events.push(Event::SeqEnd);
        Some(())
    }

    /// A block mapping whose keys stand at `indent`.
    fn mapping(&mut self, indent: usize) -> Option<()> {
        self.events.push(Event::MapStart);
        let keys = self.keys.len();
        while let Some(line) = self.lines.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || is_entry(line.text) {
                return None;
            }
            self.lines.take();
            let (key, after, rest) = scalar(line.text)?;
            if after != After::Key || line.text.len() - rest.len() > MAX_KEY_BYTES {
                return None;
            }
            let Event::Scalar { text: key_text, .. } = &key else {
                return None;
            };
            let duplicate = self.keys[keys..].iter().any(|&at| match &self.events[at] {
                Event::Scalar { text, .. } => text == key_text,
                _ => false,
            });
            if duplicate {
                return None;
            }
            self.keys.push(self.events.len());
            self.events.push(key);
            let value = rest.trim_start_matches(' ');
            if value.is_empty() || value.starts_with('#') {
                self.block_value(indent, true)?;
            } else {
                self.inline_value(value)?;
            }
        }
        self.keys.truncate(keys);
        self.events.push(Event::MapEnd);
        Some(())
    }

    /// A value on its key's line: a scalar or a flow sequence, and nothing else on the line.
    fn inline_value(&mut self, text: &'a str) -> Option<()> {
        if text.starts_with('[') {
            return self.flow_sequence(text);
        }
        let (scalar, after, _) = scalar(text)?;
        if after != After::End {
            return None;
        }
        self.events.push(scalar);
        Some(())
    }

    /// `[a, 'b', "c"]` on one line: scalars only, no trailing comma, then the line's end or a
    /// comment.
    fn flow_sequence(&mut self, text: &'a str) -> Option<()> {
        self.events.push(Event::SeqStart);
        let mut rest = text[1..].trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(']') {
            rest = after;
        } else {
            loop {
                let (scalar, after) = flow_scalar(rest)?;
                self.events.push(scalar);
                let after = after.trim_start_matches(' ');
                if let Some(after) = after.strip_prefix(',') {
                    rest = after.trim_start_matches(' ');
                    if rest.starts_with(']') {
                        return None;
                    }
                } else if let Some(after) = after.strip_prefix(']') {
                    rest = after;
                    break;
                } else {
                    return None;
                }
            }
        }
        if !ends_line(rest) {
            return None;
        }
        self.events.push(Event::SeqEnd);
        Some(())
    }
}

/// Whether what follows a value is nothing, spaces, or spaces and a comment.
fn ends_line(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

/// The scalar at the start of `text` (block context), what follows it, and the rest of the
/// line after it (after the `:` of a key).
fn scalar(text: &str) -> Option<(Event<'_>, After, &str)> {
    match text.as_bytes().first()? {
        b'\'' | b'"' => {
            let (value, rest) = quoted(text)?;
            let event = Event::Scalar {
                text: value,
                plain: false,
            };
            if let Some(after) = rest.strip_prefix(':')
                && (after.is_empty() || after.starts_with(' '))
            {
                return Some((event, After::Key, after));
            }
            ends_line(rest).then_some((event, After::End, ""))
        }
        _ => {
            if !plain_start(text) {
                return None;
            }
            let bytes = text.as_bytes();
            let mut end = bytes.len();
            let mut after = After::End;
            for (i, &b) in bytes.iter().enumerate() {
                if b == b':' && bytes.get(i + 1).is_none_or(|&next| next == b' ') {
                    end = i;
                    after = After::Key;
                    break;
                }
                if b == b'#' && bytes[i - 1] == b' ' {
                    end = i;
                    break;
                }
            }
            let value = text[..end].trim_end_matches(' ');
            // `key : value` is a key in YAML; rare enough to leave to serde_yaml.
            if after == After::Key && value.len() != end {
                return None;
            }
            let rest = match after {
                After::Key => &text[end + 1..],
                After::End => "",
            };
            let event = Event::Scalar {
                text: Cow::Borrowed(value),
                plain: true,
            };
            Some((event, after, rest))
        }
    }
}

/// Whether a plain scalar may begin `text`: not with an indicator, and not with `-` followed
/// by a space (an entry). `?` and `:`, which YAML allows before a non-space, are left to
/// serde_yaml.
fn plain_start(text: &str) -> bool {
    let bytes = text.as_bytes();
    match bytes.first() {
        None => false,
        Some(b'-') => bytes.get(1).is_some_and(|&next| next != b' '),
        Some(
            b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|'
            | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' | b' ',
        ) => false,
        Some(_) => true,
    }
}

/// A scalar inside a flow sequence, and the text after it: quoted, or plain up to `,` or `]`
/// (a plain one with any flow indicator, `:`, `#` or quote in it is left to serde_yaml).
fn flow_scalar(text: &str) -> Option<(Event<'_>, &str)> {
    if text.starts_with(['\'', '"']) {
        let (value, rest) = quoted(text)?;
        return Some((
            Event::Scalar {
                text: value,
                plain: false,
            },
            rest,
        ));
    }
    if !plain_start(text) {
        return None;
    }
    let end = text.find([',', ']'])?;
    let value = text[..end].trim_end_matches(' ');
    if value.contains(['[', '{', '}', ':', '#', '\'', '"']) {
        return None;
    }
    Some((
        Event::Scalar {
            text: Cow::Borrowed(value),
            plain: true,
        },
        &text[end..],
    ))
}

/// A quoted scalar closed on its line: its value and the text after the closing quote.
fn quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    if let Some(inner) = text.strip_prefix('\'') {
        single_quoted(inner)
    } else {
        double_quoted(text.strip_prefix('"')?)
    }
}

/// `'...'`, where `''` is a quote.
fn single_quoted(inner: &str) -> Option<(Cow<'_, str>, &str)> {
    let close = inner.find('\'')?;
    if inner.as_bytes().get(close + 1) != Some(&b'\'') {
        return Some((Cow::Borrowed(&inner[..close]), &inner[close + 1..]));
    }
    let mut value = String::with_capacity(inner.len());
    let mut rest = inner;
    loop {
        let close = rest.find('\'')?;
        value.push_str(&rest[..close]);
        if rest.as_bytes().get(close + 1) == Some(&b'\'') {
            value.push('\'');
            rest = &rest[close + 2..];
        } else {
            return Some((Cow::Owned(value), &rest[close + 1..]));
        }
    }
}

/// `"..."` with YAML's escapes; an escape that is not one of them (or a line continuation) is
/// left to serde_yaml.
fn double_quoted(inner: &str) -> Option<(Cow<'_, str>, &str)> {
    let stop = inner.find(['"', '\\'])?;
    if inner.as_bytes()[stop] == b'"' {
        return Some((Cow::Borrowed(&inner[..stop]), &inner[stop + 1..]));
    }
    let mut value = String::with_capacity(inner.len());
    let mut rest = inner;
    loop {
        let stop = rest.find(['"', '\\'])?;
        value.push_str(&rest[..stop]);
        if rest.as_bytes()[stop] == b'"' {
            return Some((Cow::Owned(value), &rest[stop + 1..]));
        }
        let escape = &rest[stop + 1..];
        let code = *escape.as_bytes().first()?;
        let (c, used) = match code {
            b'0' => ('\0', 1),
            b'a' => ('\u{7}', 1),
            b'b' => ('\u{8}', 1),
            b't' => ('\t', 1),
            b'n' => ('\n', 1),
            b'v' => ('\u{b}', 1),
            b'f' => ('\u{c}', 1),
            b'r' => ('\r', 1),
            b'e' => ('\u{1b}', 1),
            b' ' => (' ', 1),
            b'"' => ('"', 1),
            b'/' => ('/', 1),
            b'\\' => ('\\', 1),
            b'N' => ('\u{85}', 1),
            b'_' => ('\u{a0}', 1),
            b'L' => ('\u{2028}', 1),
            b'P' => ('\u{2029}', 1),
            b'x' => (hex_char(escape.get(1..3)?)?, 3),
            b'u' => (hex_char(escape.get(1..5)?)?, 5),
            b'U' => (hex_char(escape.get(1..9)?)?, 9),
            _ => return None,
        };
        value.push(c);
        rest = &escape[used..];
    }
}

/// The character with these hexadecimal digits, if they are digits and it is one.
fn hex_char(digits: &str) -> Option<char> {
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    char::from_u32(u32::from_str_radix(digits, 16).ok()?)
}

#[cfg(test)]
#[path = "block_yaml_tests.rs"]
mod tests;
