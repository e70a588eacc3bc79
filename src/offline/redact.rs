//! Secret values kept out of the files an archive carries (the shared directory's state and
//! configs): every occurrence replaced by `***`, with YAML kept valid where a bare `***` would
//! read as an alias. `commands/export.rs` decides which files and which values.

use crate::output;
use crate::secrets::MASK;

/// Replaces every occurrence of every secret with `***`; says whether it replaced any.
///
/// In a YAML file a `***` that begins a plain scalar (`token: ***`) would read as an alias and
/// break the file, so there the scalar is quoted (`token: '***'`); what the line-wise quoting
/// cannot keep valid (a secret in a multi-line scalar) is re-serialized from the parsed file.
pub fn redact(relative: &str, bytes: Vec<u8>, secrets: &[String]) -> (Vec<u8>, bool) {
    if !secrets
        .iter()
        .any(|secret| contains(&bytes, secret.as_bytes()))
    {
        return (bytes, false);
    }
    let yaml = relative.ends_with(".yml") || relative.ends_with(".yaml");
    let text = match String::from_utf8(bytes) {
        Ok(text) if yaml => text,
        Ok(text) => return (replace_all(text.into_bytes(), secrets), true),
        Err(err) => return (replace_all(err.into_bytes(), secrets), true),
    };
    let redacted: String = text
        .split_inclusive('\n')
        .map(|line| redact_yaml_line(line, secrets))
        .collect();
    let parses = |text: &str| serde_yaml::from_str::<serde_yaml::Value>(text).is_ok();
    if parses(&text)
        && !parses(&redacted)
        && let Ok(mut value) = serde_yaml::from_str::<serde_yaml::Value>(&text)
    {
        redact_value(&mut value, secrets);
        if let Ok(serialized) = serde_yaml::to_string(&value) {
            output::warn(&format!(
                "the archived copy of `{relative}` is rewritten to leave its secrets out; its comments are not kept"
            ));
            return (serialized.into_bytes(), true);
        }
    }
    (redacted.into_bytes(), true)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Replaces every secret in some bytes with `***`, longest secrets first.
fn replace_all(mut bytes: Vec<u8>, secrets: &[String]) -> Vec<u8> {
    for secret in secrets {
        let needle = secret.as_bytes();
        if !contains(&bytes, needle) {
            continue;
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(needle) {
                out.extend_from_slice(MASK.as_bytes());
                i += needle.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        bytes = out;
    }
    bytes
}

/// Redacts one line of YAML, quoting a plain scalar that would begin with `***`.
fn redact_yaml_line(line: &str, secrets: &[String]) -> String {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut out = String::with_capacity(line.len());
    let mut quote = Quote::None;
    // Whether a scalar may begin here: after indentation, `- `, `? `, `: `, or in a flow
    // collection after `[`, `{` or `,`.
    let mut scalar_start = true;
    let mut after_indicator = false;
    let mut flow_depth = 0usize;
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        if let Some(secret) = secrets.iter().find(|s| rest.starts_with(s.as_str())) {
            if quote == Quote::None && scalar_start {
                let after = &line[i + secret.len()..];
                let tail = &after[..plain_scalar_end(after, flow_depth > 0)];
                let tail = tail.trim_end();
                out.push('\'');
                out.push_str(MASK);
                out.push_str(&replace_text(tail, secrets).replace('\'', "''"));
                out.push('\'');
                i += secret.len() + tail.len();
            } else {
                out.push_str(MASK);
                i += secret.len();
            }
            scalar_start = false;
            after_indicator = false;
            continue;
        }
        let c = rest.chars().next().expect("i is below the line's length");
        match quote {
            Quote::Double if c == '\\' => {
                let escaped: String = rest.chars().take(2).collect();
                out.push_str(&escaped);
                i += escaped.len();
                continue;
            }
            Quote::Double if c == '"' => quote = Quote::None,
            Quote::Single if c == '\'' && rest.starts_with("''") => {
                out.push_str("''");
                i += 2;
                continue;
            }
            Quote::Single if c == '\'' => quote = Quote::None,
            Quote::Double | Quote::Single => {}
            Quote::None => match c {
                '#' if i == 0 || line[..i].ends_with([' ', '\t']) => {
                    out.push_str(&replace_text(rest, secrets));
                    return out;
                }
                '"' if scalar_start => quote = Quote::Double,
                '\'' if scalar_start => quote = Quote::Single,
                ' ' | '\t' if after_indicator => {
                    scalar_start = true;
                    after_indicator = false;
                }
                '-' | '?' if scalar_start => {
                    scalar_start = false;
                    after_indicator = true;
                }
                ':' => {
                    scalar_start = false;
                    after_indicator = true;
                }
                '[' | '{' => {
                    flow_depth += 1;
                    scalar_start = true;
                }
                ']' | '}' => flow_depth = flow_depth.saturating_sub(1),
                ',' if flow_depth > 0 => scalar_start = true,
                _ => {}
            },
        }
        if !matches!(c, ' ' | '\t' | '-' | '?' | ':' | '[' | '{' | ',') || quote != Quote::None {
            scalar_start = false;
            after_indicator = false;
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Where the plain scalar that continues in `text` ends on this line.
fn plain_scalar_end(text: &str, in_flow: bool) -> usize {
    let bytes = text.as_bytes();
    for (i, byte) in bytes.iter().enumerate() {
        let next = bytes.get(i + 1).copied();
        let ends = match byte {
            b'\n' | b'\r' => true,
            b'#' => i > 0 && matches!(bytes[i - 1], b' ' | b'\t'),
            b':' => matches!(next, None | Some(b' ' | b'\t' | b'\n' | b'\r')),
            b',' | b']' | b'}' => in_flow,
            _ => false,
        };
        if ends {
            return i;
        }
    }
    bytes.len()
}

fn replace_text(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), MASK)
    })
}

/// Replaces the secrets in every string of a parsed YAML document, keys included.
fn redact_value(value: &mut serde_yaml::Value, secrets: &[String]) {
    match value {
        serde_yaml::Value::String(text) => *text = replace_text(text, secrets),
        serde_yaml::Value::Sequence(items) => items
            .iter_mut()
            .for_each(|item| redact_value(item, secrets)),
        serde_yaml::Value::Mapping(mapping) => {
            let entries: Vec<_> = std::mem::take(mapping).into_iter().collect();
            for (mut key, mut item) in entries {
                redact_value(&mut key, secrets);
                redact_value(&mut item, secrets);
                mapping.insert(key, item);
            }
        }
        serde_yaml::Value::Tagged(tagged) => redact_value(&mut tagged.value, secrets),
        serde_yaml::Value::Null | serde_yaml::Value::Bool(_) | serde_yaml::Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_everywhere() {
        let secrets = vec!["hunter22".to_owned(), "pw".to_owned()];
        let (bytes, redacted) = redact(
            "a.json",
            b"{\"a\": \"hunter22\", \"b\": \"pw-hunter22\"}".to_vec(),
            &secrets,
        );
        assert!(redacted);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "{\"a\": \"***\", \"b\": \"***-***\"}"
        );
        let (bytes, redacted) = redact("a.yml", b"nothing: here\n".to_vec(), &secrets);
        assert!(!redacted);
        assert_eq!(bytes, b"nothing: here\n");
    }

    #[test]
    fn redacted_yaml_stays_valid() {
        let secrets = vec!["s3cret".to_owned()];
        let cases = [
            ("token: s3cret\n", "token: '***'\n"),
            ("token: \"s3cret\"\n", "token: \"***\"\n"),
            ("token: 's3cret'\n", "token: '***'\n"),
            ("url: http://u:s3cret@h\n", "url: http://u:***@h\n"),
            ("list:\n  - s3cret\n", "list:\n  - '***'\n"),
            ("s3cret: 1\n", "'***': 1\n"),
            ("a: [s3cret, b]\n", "a: ['***', b]\n"),
            ("a: s3cret-x's # s3cret\n", "a: '***-x''s' # ***\n"),
            ("a: {k: s3cret}\n", "a: {k: '***'}\n"),
            ("a: x,s3cret\n", "a: x,***\n"),
        ];
        for (text, expected) in cases {
            let (bytes, redacted) = redact("state.yml", text.as_bytes().to_vec(), &secrets);
            let bytes = String::from_utf8(bytes).unwrap();
            assert!(redacted);
            assert_eq!(bytes, expected, "{text}");
            serde_yaml::from_str::<serde_yaml::Value>(&bytes)
                .unwrap_or_else(|err| panic!("{bytes}: {err}"));
        }
        // In multi-line scalars the mask may come out quoted, but the file stays valid.
        for text in [
            "a: first\n  s3cret\n",
            "a: |\n  s3cret\n",
            "a: \"first\n  s3cret\"\n",
        ] {
            let (bytes, _) = redact("state.yml", text.as_bytes().to_vec(), &secrets);
            let bytes = String::from_utf8(bytes).unwrap();
            assert!(!bytes.contains("s3cret"), "{bytes}");
            serde_yaml::from_str::<serde_yaml::Value>(&bytes)
                .unwrap_or_else(|err| panic!("{bytes}: {err}"));
        }
        let mut value: serde_yaml::Value = serde_yaml::from_str("s3cret: [x s3cret]").unwrap();
        redact_value(&mut value, &secrets);
        assert_eq!(serde_yaml::to_string(&value).unwrap(), "'***':\n- x ***\n");
    }
}
