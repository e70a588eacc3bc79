//! Finds where a value sits in a YAML text, so that errors found after parsing (two `latest`,
//! a duplicate module) can still name the line and column.
//!
//! serde_yaml gives positions only for its own errors; this re-reads the text with a marked
//! event parser, and only on the error path, so loading stays one pass when the file is good.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a path into a YAML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

/// A line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

#[derive(Default)]
struct Recorder {
    events: Vec<(Event, Marker)>,
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        self.events.push((event, mark));
    }
}

/// A text whose events are read on the first lookup and kept for the next ones, so that many
/// lookups in one large file (a warning per version) parse it once.
pub struct Document<'s> {
    source: &'s str,
    events: std::cell::OnceCell<Option<Vec<(Event, Marker)>>>,
}

impl<'s> Document<'s> {
    /// The document of `source`; nothing is parsed yet.
    pub fn new(source: &'s str) -> Document<'s> {
        Document {
            source,
            events: std::cell::OnceCell::new(),
        }
    }

    /// Like [`locate`].
    pub fn locate(&self, path: &[Step<'_>]) -> Option<Position> {
        let events = self.events.get_or_init(|| events(self.source)).as_ref()?;
        find(events, path).map(|(_, position)| position)
    }
}

/// The position of the value at `path` (of its key, for a mapping entry), if it exists.
pub fn locate(source: &str, path: &[Step<'_>]) -> Option<Position> {
    find(&events(source)?, path).map(|(_, position)| position)
}

/// The text of the scalar at `path`, if there is one.
pub fn scalar_at(source: &str, path: &[Step<'_>]) -> Option<String> {
    let events = events(source)?;
    let (at, _) = find(&events, path)?;
    match &events[at].0 {
        Event::Scalar(text, ..) => Some(text.clone()),
        _ => None,
    }
}

fn events(source: &str) -> Option<Vec<(Event, Marker)>> {
    let mut recorder = Recorder::default();
    Parser::new_from_str(source)
        .load(&mut recorder, false)
        .ok()?;
    Some(recorder.events)
}

/// The index of the event that starts the node at `path`, and the position to report for it.
fn find(events: &[(Event, Marker)], path: &[Step<'_>]) -> Option<(usize, Position)> {
    let mut at = events
        .iter()
        .position(|(e, _)| matches!(e, Event::DocumentStart))?
        + 1;
    let mut position = position_of(&events.get(at)?.1);
    for step in path {
        match (step, &events.get(at)?.0) {
            (Step::Key(wanted), Event::MappingStart(..)) => {
                at += 1;
                loop {
                    match &events.get(at)?.0 {
                        Event::MappingEnd => return None,
                        Event::Scalar(key, ..) if key == wanted => {
                            position = position_of(&events[at].1);
                            at += 1;
                            break;
                        }
                        _ => {
                            at = skip(events, at)?;
                            at = skip(events, at)?;
                        }
                    }
                }
            }
            (Step::Index(wanted), Event::SequenceStart(..)) => {
                at += 1;
                for _ in 0..*wanted {
                    if matches!(events.get(at)?.0, Event::SequenceEnd) {
                        return None;
                    }
                    at = skip(events, at)?;
                }
                if matches!(events.get(at)?.0, Event::SequenceEnd) {
                    return None;
                }
                // A mapping item's start mark is unreliable; its first key is where it begins.
                let first = match events[at].0 {
                    Event::MappingStart(..) => events.get(at + 1).unwrap_or(&events[at]),
                    _ => &events[at],
                };
                position = position_of(&first.1);
            }
            _ => return None,
        }
    }
    Some((at, position))
}

/// The index just past the node that starts at `at`.
fn skip(events: &[(Event, Marker)], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    loop {
        match events.get(i)?.0 {
            Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
            Event::MappingEnd | Event::SequenceEnd => depth -= 1,
            _ => {}
        }
        i += 1;
        if depth == 0 {
            return Some(i);
        }
    }
}

fn position_of(mark: &Marker) -> Position {
    Position {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items() {
        let text = "a: 1\nlist:\n  - name: x\n  - name: y\n    deep: {k: v}\n";
        let at = |path: &[Step]| locate(text, path).map(|p| (p.line, p.column));
        assert_eq!(at(&[Step::Key("a")]), Some((1, 1)));
        assert_eq!(at(&[Step::Key("list"), Step::Index(1)]), Some((4, 5)));
        assert_eq!(
            at(&[Step::Key("list"), Step::Index(1), Step::Key("name")]),
            Some((4, 5))
        );
        assert_eq!(
            at(&[
                Step::Key("list"),
                Step::Index(1),
                Step::Key("deep"),
                Step::Key("k")
            ]),
            Some((5, 12))
        );
        assert_eq!(at(&[Step::Key("list"), Step::Index(2)]), None);
        assert_eq!(at(&[Step::Key("nope")]), None);
    }
}
