//! The shared state file and the module's config file: reading them and replacing them
//! atomically.
//!
//! The state is a YAML mapping with one top-level section per module. A module rewrites only the
//! sections it changed: the bytes of every other section (another module's comments, quoting and
//! layout) are copied as they were, and the whole file is re-serialized only when it is not laid
//! out in a way that allows that (see [`render`]). Sections are kept as [`Value`]s, never as
//! structs, so that keys this module does not know survive.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::Error;

/// The shared state file as read at the start of a method, and the sections as the module wants
/// them to be.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    text: String,
    read: Mapping,
    sections: Mapping,
}

impl State {
    /// Reads the state file; a missing or empty file is an empty state.
    pub fn load(path: &Path) -> Result<State, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
            Err(err) => {
                return Err(Error::new(format!(
                    "failed to read `{}`: {err}",
                    path.display()
                )));
            }
        };
        State::from_text(path, text)
    }

    /// The state as if `path` held `text`.
    pub fn from_text(path: &Path, text: String) -> Result<State, Error> {
        let read = parse_mapping(path, &text)?;
        Ok(State {
            path: path.to_owned(),
            sections: read.clone(),
            read,
            text,
        })
    }

    /// All sections, keyed by module name.
    pub fn sections(&self) -> &Mapping {
        &self.sections
    }

    /// The section of one module, if there is one.
    pub fn section(&self, module: &str) -> Option<&Value> {
        self.sections.get(module)
    }

    /// Replaces (or adds, at the end) the section of one module.
    pub fn set_section(&mut self, module: &str, value: Value) {
        self.sections
            .insert(Value::String(module.to_owned()), value);
    }

    /// Removes the section of one module, as `destroy` does, and returns it. The other sections
    /// keep their order, and [`State::save`] keeps their bytes: only the removed block is cut out.
    pub fn remove_section(&mut self, module: &str) -> Option<Value> {
        self.sections.shift_remove(module)
    }

    /// Writes the sections back, atomically, if any of them changed since [`State::load`].
    /// `module` names the temporary file, so that two modules never share one.
    pub fn save(&self, module: &str) -> Result<(), Error> {
        if self.sections == self.read {
            return Ok(());
        }
        let text = render(&self.text, &self.read, &self.sections)?;
        write_atomically(&self.path, &text, module)
    }
}

/// Reads a YAML file that must exist and hold a mapping, such as a module's config file.
pub fn read_mapping(path: &Path, hint: &str) -> Result<Mapping, Error> {
    let text = fs::read_to_string(path).map_err(|err| {
        let error = Error::new(format!("failed to read `{}`: {err}", path.display()));
        if err.kind() == io::ErrorKind::NotFound {
            error.with_hint(hint)
        } else {
            error
        }
    })?;
    parse_mapping(path, &text)
}

/// Serializes a mapping as block-style YAML.
pub fn to_yaml(mapping: &Mapping) -> Result<String, Error> {
    serde_yaml::to_string(mapping).map_err(|err| Error::new(format!("failed to write YAML: {err}")))
}

/// Replaces `path` with `text` without a window in which a reader sees half a file: writes
/// `<path>.tmp-<module>` in the same directory, flushes it to disk and renames it over `path`.
pub fn write_atomically(path: &Path, text: &str, module: &str) -> Result<(), Error> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp-{module}"));
    let temporary = PathBuf::from(temporary);
    let written = File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, path));
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(Error::new(format!(
            "failed to write `{}`: {err}",
            path.display()
        )));
    }
    // Make the rename itself durable; a directory that cannot be opened only loses that.
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|dir| dir.sync_all());
    }
    Ok(())
}

fn parse_mapping(path: &Path, text: &str) -> Result<Mapping, Error> {
    let value: Value = serde_yaml::from_str(text).map_err(|err| {
        let place = err.location().map_or_else(String::new, |at| {
            format!(" at line {}, column {}", at.line(), at.column())
        });
        Error::new(format!(
            "invalid YAML in `{}`{place}: {err}",
            path.display()
        ))
    })?;
    match value {
        Value::Null => Ok(Mapping::new()),
        Value::Mapping(mapping) => Ok(mapping),
        _ => Err(Error::new(format!(
            "`{}` must hold a mapping of sections, one per module",
            path.display()
        ))),
    }
}

/// The text of the state after the module's changes: the text it had, with the blocks of changed
/// sections replaced, those of removed sections dropped, and new sections appended. When the text
/// cannot be cut into top-level blocks (flow style, unusual keys) or the result would not read
/// back as `after`, the whole mapping is serialized instead.
fn render(text: &str, before: &Mapping, after: &Mapping) -> Result<String, Error> {
    if let Some(spliced) = splice(text, before, after)?
        && serde_yaml::from_str::<Value>(&spliced).ok() == Some(Value::Mapping(after.clone()))
    {
        return Ok(spliced);
    }
    if after.is_empty() {
        return Ok(String::new());
    }
    to_yaml(after)
}

fn splice(text: &str, before: &Mapping, after: &Mapping) -> Result<Option<String>, Error> {
    let Some(blocks) = top_level_blocks(text) else {
        return Ok(None);
    };
    let mut out = String::new();
    let mut seen = 0;
    for (key, block) in blocks {
        let Some(key) = key else {
            out.push_str(block);
            continue;
        };
        let key = Value::String(key.to_owned());
        if !before.contains_key(&key) {
            return Ok(None);
        }
        seen += 1;
        match after.get(&key) {
            None => {}
            Some(value) if before.get(&key) == Some(value) => out.push_str(block),
            Some(value) => out.push_str(&section_text(&key, value)?),
        }
    }
    if seen != before.len() {
        return Ok(None);
    }
    for (key, value) in after {
        if !before.contains_key(key) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&section_text(key, value)?);
        }
    }
    Ok(Some(out))
}

fn section_text(key: &Value, value: &Value) -> Result<String, Error> {
    let mut section = Mapping::new();
    section.insert(key.clone(), value.clone());
    to_yaml(&section)
}

/// Cuts a block-style mapping into its top-level entries: each starts at a line that begins in
/// column 0 with a plain key and runs to the next such line. Text before the first key (comments,
/// `---`) has no key. Returns `None` when a top-level line is not a plain `key:`.
fn top_level_blocks(text: &str) -> Option<Vec<(Option<&str>, &str)>> {
    let mut blocks: Vec<(Option<&str>, &str)> = Vec::new();
    let mut start = 0;
    let mut key = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let opens = match line.chars().next() {
            None | Some(' ' | '\t' | '\r' | '\n' | '#' | '-') => None,
            Some(_) if line.starts_with("---") => None,
            Some(_) => Some(plain_key(line)?),
        };
        if let Some(opened) = opens {
            if offset > start || key.is_some() {
                blocks.push((key, &text[start..offset]));
            }
            start = offset;
            key = Some(opened);
        }
        offset += line.len();
    }
    if offset > start || key.is_some() {
        blocks.push((key, &text[start..offset]));
    }
    Some(blocks)
}

fn plain_key(line: &str) -> Option<&str> {
    let line = line.trim_end();
    let colon = line
        .find(": ")
        .or_else(|| line.ends_with(':').then(|| line.len() - 1))?;
    let key = &line[..colon];
    let plain = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (plain && !key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(text: &str) -> Mapping {
        parse_mapping(Path::new("test.yml"), text).unwrap()
    }

    fn edit(text: &str, module: &str, value: &str) -> String {
        let before = mapping(text);
        let mut after = before.clone();
        after.insert(module.into(), serde_yaml::from_str(value).unwrap());
        render(text, &before, &after).unwrap()
    }

    #[test]
    fn keeps_the_bytes_of_other_sections() {
        let text =
            "# shared state\nbmm:\n    targets: ['10.0.0.1']   # by hand\n\nazi:\n  size: 1\n";
        let out = edit(text, "azi", "{size: 2}");
        assert_eq!(
            out,
            "# shared state\nbmm:\n    targets: ['10.0.0.1']   # by hand\n\nazi:\n  size: 2\n"
        );
    }

    #[test]
    fn appends_a_new_section() {
        let out = edit("azi:\n  size: 1", "bmk", "{size: 3}");
        assert_eq!(out, "azi:\n  size: 1\nbmk:\n  size: 3\n");
    }

    #[test]
    fn starts_an_empty_state() {
        assert_eq!(edit("", "azi", "{size: 1}"), "azi:\n  size: 1\n");
        assert_eq!(edit("{}\n", "azi", "{size: 1}"), "azi:\n  size: 1\n");
    }

    #[test]
    fn falls_back_to_serializing_a_flow_style_state() {
        let out = edit("{bmm: {targets: []}}\n", "azi", "{size: 1}");
        assert_eq!(out, "bmm:\n  targets: []\nazi:\n  size: 1\n");
    }

    #[test]
    fn keeps_unindented_sequences_in_their_section() {
        let text = "hosts:\n- a\n- b\nbmk:\n  size: 3\n";
        let out = edit(text, "bmk", "{size: 4}");
        assert_eq!(out, "hosts:\n- a\n- b\nbmk:\n  size: 4\n");
    }

    fn remove(text: &str, module: &str) -> String {
        let mut state = State::from_text(Path::new("state.yml"), text.to_owned()).unwrap();
        assert!(
            state.remove_section(module).is_some(),
            "no `{module}` in {text:?}"
        );
        render(&state.text, &state.read, &state.sections).unwrap()
    }

    #[test]
    fn removes_a_section_and_keeps_the_bytes_of_the_others() {
        let text = "# shared state\nbmm:\n    targets: ['10.0.0.1']   # by hand\n\nazi:\n  size: 1\n  nodes:\n  - {privateIP: 10.0.0.0}\nzzz: {kept: \"as is\"}\n";
        assert_eq!(
            remove(text, "azi"),
            "# shared state\nbmm:\n    targets: ['10.0.0.1']   # by hand\n\nzzz: {kept: \"as is\"}\n"
        );
        assert_eq!(
            remove(text, "bmm"),
            "# shared state\nazi:\n  size: 1\n  nodes:\n  - {privateIP: 10.0.0.0}\nzzz: {kept: \"as is\"}\n"
        );
    }

    #[test]
    fn removing_the_last_section_leaves_an_empty_state() {
        assert_eq!(remove("azi:\n  size: 1\n", "azi"), "");
        assert_eq!(remove("{azi: {size: 1}}\n", "azi"), "");
    }

    #[test]
    fn removes_a_section_of_a_flow_style_state_by_serializing_the_rest() {
        assert_eq!(
            remove("{bmm: {targets: []}, azi: {size: 1}, zzz: 1}\n", "azi"),
            "bmm:\n  targets: []\nzzz: 1\n"
        );
    }

    #[test]
    fn rejects_a_state_that_is_not_a_mapping() {
        assert!(parse_mapping(Path::new("s.yml"), "- a\n").is_err());
        assert!(parse_mapping(Path::new("s.yml"), "a: [\n").is_err());
    }
}
