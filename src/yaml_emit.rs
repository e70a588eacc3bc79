//! YAML that e writes (`-o yaml`, the repository `e export` and `e import` write), so that
//! every common reader reads the values e meant.
//!
//! serde_yaml quotes a string only when a YAML 1.2 reader would take it for something else, but
//! YAML 1.1 readers (PyYAML, Ansible, Ruby, older Go and Java libraries) read `no`, `on`,
//! `12:30`, `2024-01-01`, `1_000` and `0.1.0` as booleans, numbers and dates. Here a string is
//! written plain only when no reader can take it for anything but that string: any string that
//! begins like a number (a digit, after an optional sign and dot), a date, or any word that a
//! YAML 1.1 or 1.2 schema gives a meaning is quoted. The layout is serde_yaml's: block
//! mappings, sequences at their key's indentation, multi-line strings as literal blocks.

use std::fmt::Write as _;

use serde::Serialize;
use serde_yaml::Value;

/// The YAML of `value`, one document.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    let value = serde_yaml::to_value(value)?;
    let mut out = String::new();
    match inline(&value) {
        Some(text) => {
            out.push_str(&text);
            out.push('\n');
        }
        None => block(&mut out, &value, 0),
    }
    Ok(out)
}

/// The one-line form of a scalar or an empty collection; `None` for what needs lines.
fn inline(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(text) if text.contains('\n') && literal(text).is_some() => return None,
        Value::String(text) => string(text),
        Value::Sequence(items) if items.is_empty() => "[]".to_owned(),
        Value::Mapping(map) if map.is_empty() => "{}".to_owned(),
        Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => return None,
    })
}

/// Writes a collection (or a literal block) whose lines start at `indent`.
fn block(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Mapping(map) => {
            for (key, item) in map {
                let key = inline(key).unwrap_or_else(|| string(&flat(key)));
                let _ = write!(out, "{pad}{key}:");
                child(out, item, indent, indent + 2);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                let _ = write!(out, "{pad}-");
                child(out, item, indent, indent + 2);
            }
        }
        Value::Tagged(tagged) => {
            // As in JSON: a one-key mapping from the variant to its value.
            let tag = tagged.tag.to_string();
            let _ = write!(out, "{pad}{}:", string(tag.trim_start_matches('!')));
            child(out, &tagged.value, indent, indent + 2);
        }
        Value::String(text) => {
            let (header, lines) = literal(text).unwrap_or_default();
            let _ = writeln!(out, "{pad}{header}");
            for line in lines {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{pad}  {line}");
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", inline(other).unwrap_or_default());
        }
    }
}

/// Writes the value after `key:` or `-`: on the same line when it fits there, else below it.
/// `parent` is the indentation of the key or dash, `indent` that of the lines below.
fn child(out: &mut String, value: &Value, parent: usize, indent: usize) {
    if let Some(text) = inline(value) {
        let _ = writeln!(out, " {text}");
        return;
    }
    let dash = out.ends_with('-');
    match value {
        Value::String(text) => {
            let (header, lines) = literal(text).unwrap_or_default();
            let _ = writeln!(out, " {header}");
            for line in lines {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{}{line}", " ".repeat(indent));
                }
            }
        }
        // After a dash, a collection starts on the dash's line: `- key: value`.
        _ if dash => {
            let mut nested = String::new();
            block(&mut nested, value, indent);
            out.push(' ');
            out.push_str(&nested[indent..]);
        }
        // serde_yaml's layout: a sequence under a key is not indented further.
        Value::Sequence(_) => {
            out.push('\n');
            block(out, value, parent);
        }
        _ => {
            out.push('\n');
            block(out, value, indent);
        }
    }
}

/// A key that is itself a collection, written as one line of YAML.
fn flat(value: &Value) -> String {
    serde_yaml::to_string(value)
        .unwrap_or_default()
        .trim()
        .replace('\n', " ")
}

/// The header (`|`, `|-` or `|+`) and lines of a multi-line string as a literal block, when
/// one can hold it exactly: printable characters only, and a first line that does not begin
/// with a space (the reader would take it for the indentation).
fn literal(text: &str) -> Option<(&'static str, Vec<&str>)> {
    if !text.contains('\n')
        || !text.chars().all(|c| c == '\n' || printable(c))
        || text
            .split('\n')
            .find(|line| !line.is_empty())
            .is_some_and(|line| line.starts_with([' ', '\t']))
    {
        return None;
    }
    let body = text.trim_end_matches('\n');
    let header = match text.len() - body.len() {
        0 => "|-",
        1 => "|",
        _ => "|+",
    };
    let mut lines: Vec<&str> = body.split('\n').collect();
    if header == "|+" {
        // Keep: the trailing line breaks are part of the value.
        lines.extend(std::iter::repeat_n("", text.len() - body.len() - 1));
    }
    Some((header, lines))
}

/// A string as a scalar: plain when no reader can take it for anything else, else quoted.
fn string(text: &str) -> String {
    if plain(text) {
        text.to_owned()
    } else if text.chars().all(printable) {
        format!("'{}'", text.replace('\'', "''"))
    } else {
        double_quoted(text)
    }
}

/// Whether `text` reads back as this very string, as a plain scalar, in every common reader.
fn plain(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let last = text.chars().next_back().unwrap_or(first);
    !(first.is_whitespace()
        || last.is_whitespace()
        || last == ':'
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || text.contains(": ")
        || text.contains(" #")
        || text.contains('\t')
        || !text.chars().all(printable)
        || has_meaning(text))
}

/// Whether a YAML 1.1 or 1.2 reader gives the plain scalar `text` a meaning other than a
/// string: null, a boolean, a number of any base or form, infinity, a date, a merge key.
fn has_meaning(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", "<<", "=",
    ];
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let number = unsigned.strip_prefix('.').unwrap_or(unsigned);
    WORDS.contains(&text)
        || WORDS.contains(&unsigned)
        // Every number, sexagesimal (`12:30`) and date (`2024-01-01`) begins with a digit.
        || number.starts_with(|c: char| c.is_ascii_digit())
}

/// Whether YAML may hold `c` as it is, outside escapes (its `c-printable`, without the
/// line breaks that YAML 1.1 readers also break lines at, and the byte order mark).
fn printable(c: char) -> bool {
    match c {
        '\t' => true,
        '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' => false,
        c => !c.is_control(),
    }
}

/// A double-quoted scalar, with every character YAML may not hold escaped.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(value: &serde_json::Value) -> String {
        to_string(value).unwrap()
    }

    #[test]
    fn strings_that_readers_would_misread_are_quoted() {
        for text in [
            "no",
            "yes",
            "on",
            "off",
            "y",
            "N",
            "~",
            "null",
            "true",
            "12:30",
            "2024-01-01",
            "1_000",
            "0.1.0",
            "1.10",
            "0x1F",
            "1e3",
            "+1",
            "-1",
            ".5",
            ".inf",
            "-.inf",
            "<<",
            "=",
            "",
            " lead",
            "trail ",
            "a: b",
            "a #b",
            "- x",
            "*x",
            "&x",
            "!x",
            "%x",
            "@x",
            "`x",
            "'x",
            "\"x",
            "x:",
            "{x",
            "[x",
            "|",
            ">",
            "#",
        ] {
            assert_ne!(string(text), text, "{text:?} must be quoted");
            let back: String = serde_yaml::from_str(&string(text)).unwrap();
            assert_eq!(back, text);
        }
        for text in [
            "azure",
            "Bare Metal Kafka",
            "e-modules/azi:0.1.0",
            "a:b",
            "x.y",
            "v1",
        ] {
            assert_eq!(string(text), text);
        }
        assert_eq!(string("tab\there"), "'tab\there'");
        assert_eq!(string("bell\u{7}"), "\"bell\\x07\"");
        assert_eq!(string("bom\u{feff}"), "\"bom\\uFEFF\"");
    }

    #[test]
    fn the_layout_is_serde_yamls() {
        let value = serde_json::json!({
            "module": "azi",
            "version": "0.1.0",
            "latest": true,
            "size": 5,
            "labels": {"kind": "infrastructure", "provides-vms": "true"},
            "mounts": ["/var/lib/azi"],
            "empty": [],
            "none": {},
            "missing": null,
            "items": [{"a": 1, "b": [1, 2]}, [3, 4], "text"],
        });
        let text = yaml(&value);
        let expected = serde_yaml::to_string(&value)
            .unwrap()
            .replace("0.1.0", "'0.1.0'");
        assert_eq!(text, expected);
    }

    #[test]
    fn multi_line_strings_are_literal_blocks_that_read_back_exactly() {
        for text in [
            "one\ntwo",
            "one\ntwo\n",
            "one\ntwo\n\n\n",
            "one\n\nthree\n",
            "\nafter a blank line",
            "  indented first\nline",
            "with\r\ncarriage return",
            "no: 1\n- x\n",
        ] {
            let value = serde_json::json!({"k": text, "l": [text]});
            let written = yaml(&value);
            let back: serde_json::Value = serde_yaml::from_str(&written).unwrap();
            assert_eq!(back, value, "{written}");
        }
        assert_eq!(
            yaml(&serde_json::json!({"k": "a\nb\n"})),
            "k: |\n  a\n  b\n"
        );
    }
}
