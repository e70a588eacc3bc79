//! One module's section of `state.yml`, as text: found and removed in the bytes the modules
//! wrote, never by re-serializing the file (which would lose their comments, quoting and
//! order). A removal is checked by parsing: the result must be the same mapping without that
//! key, or it is refused.

use super::parse_mapping;

/// The byte range of `module`'s top-level section: from its key line to the next top-level
/// line (a key, a comment or a document marker at column 0), or `None`.
fn range(text: &str, module: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let top_level = !bare.is_empty() && !bare.starts_with([' ', '\t']);
        if let Some(start) = start
            && top_level
        {
            return Some((start, offset));
        }
        if start.is_none()
            && let Some(rest) = bare.strip_prefix(module)
            && let Some(after) = rest.strip_prefix(':')
            && (after.is_empty() || after.starts_with([' ', '\t']))
        {
            start = Some(offset);
        }
        offset += line.len();
    }
    start.map(|start| (start, text.len()))
}

/// The text of `module`'s section as written, if it is written as a block at the top level.
pub fn section_text<'t>(text: &'t str, module: &str) -> Option<&'t str> {
    range(text, module).map(|(start, end)| &text[start..end])
}

/// `state` without `module`'s section, every other byte kept. Refused (with why) when the
/// section cannot be cut out as text so that the rest parses to the same mapping without it.
pub fn without_section(state: &[u8], module: &str) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(state).map_err(|_| "is not valid UTF-8".to_owned())?;
    let before = parse_mapping(state)?;
    let key = serde_yaml::Value::String(module.to_owned());
    if !before.contains_key(&key) {
        return Err(format!("has no section `{module}`"));
    }
    let Some((start, end)) = range(text, module) else {
        return Err(format!(
            "writes the section `{module}` in a way e cannot cut out as text (flow style or a quoted key)"
        ));
    };
    let mut result = String::with_capacity(text.len());
    result.push_str(&text[..start]);
    result.push_str(&text[end..]);
    let mut expected = before;
    expected.remove(&key);
    match parse_mapping(result.as_bytes()) {
        Ok(after) if after == expected => Ok(result.into_bytes()),
        _ => Err(format!(
            "would not parse to the same state without `{module}` once its lines are cut out"
        )),
    }
}

/// `state` with `key`'s section replaced by `section` (a block as [`section_text`] gives it),
/// or with `section` added at the end when `state` has none; every other byte kept. `None`
/// when the old section cannot be found as text although the key is there.
pub fn with_section(state: &str, key: &str, section: &str) -> Option<String> {
    let mut result = String::with_capacity(state.len() + section.len() + 1);
    match range(state, key) {
        Some((start, end)) => {
            result.push_str(&state[..start]);
            result.push_str(section);
            if !section.ends_with('\n') && end < state.len() {
                result.push('\n');
            }
            result.push_str(&state[end..]);
        }
        None => {
            let present = parse_mapping(state.as_bytes())
                .map(|m| m.contains_key(serde_yaml::Value::String(key.to_owned())))
                .unwrap_or(true);
            if present {
                return None;
            }
            result.push_str(state);
            if !state.is_empty() && !state.ends_with('\n') {
                result.push('\n');
            }
            result.push_str(section);
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "# made by azi\nazi:\n  status: applied\n  nodes:\n    - a\n\nbmk:\n  status: applied # kept\nbmk-extra: 1\n";

    #[test]
    fn a_section_is_cut_out_and_every_other_byte_kept() {
        let after = without_section(STATE.as_bytes(), "bmk").unwrap();
        assert_eq!(
            String::from_utf8(after).unwrap(),
            "# made by azi\nazi:\n  status: applied\n  nodes:\n    - a\n\nbmk-extra: 1\n"
        );
        let after = without_section(STATE.as_bytes(), "azi").unwrap();
        assert_eq!(
            String::from_utf8(after).unwrap(),
            "# made by azi\nbmk:\n  status: applied # kept\nbmk-extra: 1\n"
        );
        assert_eq!(
            section_text(STATE, "bmk"),
            Some("bmk:\n  status: applied # kept\n")
        );
    }

    #[test]
    fn a_section_is_replaced_or_added_as_text() {
        assert_eq!(
            with_section(STATE, "bmk", "bmk:\n  status: planned\n").unwrap(),
            "# made by azi\nazi:\n  status: applied\n  nodes:\n    - a\n\nbmk:\n  status: planned\nbmk-extra: 1\n"
        );
        assert_eq!(
            with_section("azi: 1", "k8s", "k8s:\n  a: 1\n").unwrap(),
            "azi: 1\nk8s:\n  a: 1\n"
        );
        assert_eq!(with_section("{azi: 1}\n", "azi", "azi: 2\n"), None);
    }

    #[test]
    fn what_cannot_be_cut_as_text_is_refused() {
        assert!(
            without_section(STATE.as_bytes(), "k8s")
                .unwrap_err()
                .contains("no section")
        );
        let flow = b"{azi: {status: applied}, bmk: {status: applied}}\n";
        assert!(
            without_section(flow, "bmk")
                .unwrap_err()
                .contains("cannot cut out")
        );
    }
}
