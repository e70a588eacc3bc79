//! Secrets a run left behind: e hands a run values it must never keep in clear (see
//! `secrets.rs`), and when the container stops it looks for each of them in every file the run
//! wrote. A secret the command may keep (its `keep-secrets:`) is replaced by its reference,
//! `${secret:NAME}`, and its value goes to the secret store; any other refuses the whole
//! result, before anything of it is committed or kept aside. The refusal names the file, the
//! key (or line) and where the value came from, never the value. Nothing here writes to disk.

use serde_yaml::Value;

use super::tree::{Node, Refusal, Tree};
use crate::secrets::{Handed, Source};
use crate::yaml_limits;

/// What a run may do with the secrets it was handed.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The module, for messages.
    pub module: &'a str,
    /// The method, for messages.
    pub method: &'a str,
    /// Every value handed to the run.
    pub handed: &'a [Handed],
    /// The names of the secrets it may keep (`keep-secrets:`).
    pub keep: &'a [String],
}

/// What [`guard`] did to a result that may be committed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Guarded {
    /// The secrets to keep in the store: name and value.
    pub kept: Vec<(String, String)>,
    /// The files in which e put references in place of kept secrets.
    pub changed: Vec<String>,
}

/// Looks for every handed value in the files at `paths` of `result` (those the run wrote).
/// A kept secret is replaced there by `${secret:NAME}`. The first other secret found is a
/// refusal.
pub fn guard(result: &mut Tree, paths: &[String], policy: &Policy<'_>) -> Result<Guarded, Refusal> {
    let mut guarded = Guarded::default();
    if policy.handed.is_empty() {
        return Ok(guarded);
    }
    for path in paths {
        let Some(Node::File { bytes, .. }) = result.entries.get_mut(path) else {
            continue;
        };
        for handed in policy.handed {
            let needle = handed.value.as_bytes();
            if find(bytes, needle).is_none() {
                continue;
            }
            match &handed.source {
                Source::Secret(name) if policy.keep.contains(name) => {
                    *bytes = replace(bytes, needle, format!("${{secret:{name}}}").as_bytes());
                    if !guarded.kept.iter().any(|(n, _)| n == name) {
                        guarded.kept.push((name.clone(), handed.value.clone()));
                    }
                    if !guarded.changed.contains(path) {
                        guarded.changed.push(path.clone());
                    }
                }
                source => {
                    return Err(Refusal::new(
                        path.clone(),
                        format!(
                            "holds, {}, the value of the {source} that e handed to `{}` {}: e never commits a secret in clear; {}",
                            place(path, bytes, needle),
                            policy.module,
                            policy.method,
                            remedy(source)
                        ),
                    ));
                }
            }
        }
    }
    Ok(guarded)
}

/// What to do about a secret found where it may not be.
fn remedy(source: &Source) -> String {
    match source {
        Source::Secret(name) => format!(
            "the module must not write it, or the command must list `{name}` in `keep-secrets:` (e then keeps it in its secret store and writes `${{secret:{name}}}` in its place)"
        ),
        Source::Env(_) => "the module must not write it (a value that may be stored belongs in `envs:` as it is, not through `${env:...}`)".to_owned(),
    }
}

/// Where in a file the value is, in words: `at key `bmk.password`` for a YAML file whose
/// values hold it, `on line 3` otherwise.
fn place(path: &str, bytes: &[u8], needle: &[u8]) -> String {
    let yaml = [".yml", ".yaml"].iter().any(|ext| path.ends_with(ext));
    if yaml
        && let Ok(text) = std::str::from_utf8(bytes)
        && let Some(value) = parse_bounded(text)
        && let Ok(needle) = std::str::from_utf8(needle)
        && let Some(key) = key_holding(&value, needle, String::new())
    {
        return if key.is_empty() {
            "as the whole document".to_owned()
        } else {
            format!("at key `{key}`")
        };
    }
    let at = find(bytes, needle).unwrap_or_default();
    let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
    format!("on line {line}")
}

/// Parses YAML a module wrote, within the bounds of `yaml_limits` (a file that passes none is
/// located by line instead).
fn parse_bounded(text: &str) -> Option<Value> {
    let scan = yaml_limits::scan(text);
    if scan.too_deep.is_some() || (scan.aliases && yaml_limits::alias_expansion(text).is_err()) {
        return None;
    }
    serde_yaml::from_str(text).ok()
}

/// The path of the first key or value that holds `needle`: `a.b[2].c`; `""` for the root.
fn key_holding(value: &Value, needle: &str, at: String) -> Option<String> {
    match value {
        Value::String(text) if text.contains(needle) => Some(at),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| key_holding(item, needle, format!("{at}[{i}]"))),
        Value::Mapping(map) => map.iter().find_map(|(key, item)| {
            let name = match key {
                Value::String(name) => name.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            let here = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            if name.contains(needle) {
                // The key itself holds it: name where the key is, not the key.
                return Some(if at.is_empty() {
                    "(a top-level key)".to_owned()
                } else {
                    format!("{at} (one of its keys)")
                });
            }
            key_holding(item, needle, here)
        }),
        Value::Tagged(tagged) => key_holding(&tagged.value, needle, at),
        _ => None,
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `bytes` with every `needle` replaced by `with`.
fn replace(bytes: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, text) in files {
            tree.insert_file(path, text.as_bytes().to_vec(), 0o644);
        }
        tree
    }

    fn handed() -> Vec<Handed> {
        vec![
            Handed {
                source: Source::Secret("db".to_owned()),
                value: "hunter2".to_owned(),
            },
            Handed {
                source: Source::Env("TOKEN".to_owned()),
                value: "tok-123".to_owned(),
            },
        ]
    }

    fn policy<'a>(handed: &'a [Handed], keep: &'a [String]) -> Policy<'a> {
        Policy {
            module: "pg",
            method: "apply",
            handed,
            keep,
        }
    }

    #[test]
    fn a_secret_in_the_state_is_refused_naming_the_key_never_the_value() {
        let handed = handed();
        let mut result = tree(&[
            (
                "state.yml",
                "pg:\n  status: applied\n  users:\n    - {name: app, password: hunter2}\n",
            ),
            ("notes.txt", "first\nthe token is tok-123\n"),
        ]);
        let paths = vec!["state.yml".to_owned()];
        let refusal = guard(&mut result, &paths, &policy(&handed, &[])).unwrap_err();
        assert_eq!(refusal.path, "state.yml");
        assert!(
            refusal
                .reason
                .starts_with("holds, at key `pg.users[0].password`, the value of the secret `db` that e handed to `pg` apply"),
            "{refusal}"
        );
        assert!(!refusal.to_string().contains("hunter2"), "{refusal}");
        let paths = vec!["notes.txt".to_owned()];
        let refusal = guard(&mut result, &paths, &policy(&handed, &[])).unwrap_err();
        assert!(
            refusal
                .reason
                .starts_with("holds, on line 2, the value of the `${env:TOKEN}`"),
            "{refusal}"
        );
        // A file the run did not write is not looked at.
        assert_eq!(
            guard(&mut result, &[], &policy(&handed, &[])),
            Ok(Guarded::default())
        );
    }

    #[test]
    fn a_kept_secret_is_replaced_by_its_reference() {
        let handed = handed();
        let keep = vec!["db".to_owned()];
        let mut result = tree(&[(
            "pg-config.yml",
            "pg:\n  url: postgres://app:hunter2@db/app\n  again: hunter2\n",
        )]);
        let paths = vec!["pg-config.yml".to_owned()];
        let guarded = guard(&mut result, &paths, &policy(&handed, &keep)).unwrap();
        assert_eq!(guarded.kept, [("db".to_owned(), "hunter2".to_owned())]);
        assert_eq!(guarded.changed, ["pg-config.yml"]);
        assert_eq!(
            String::from_utf8_lossy(result.file("pg-config.yml").unwrap()),
            "pg:\n  url: postgres://app:${secret:db}@db/app\n  again: ${secret:db}\n"
        );
        // `${env:...}` values are never kept.
        let mut result = tree(&[("pg-config.yml", "t: tok-123\n")]);
        assert!(guard(&mut result, &paths, &policy(&handed, &keep)).is_err());
    }

    #[test]
    fn keys_and_unparsable_files_are_named_without_the_value() {
        let handed = handed();
        let paths = vec!["state.yml".to_owned()];
        let mut result = tree(&[("state.yml", "pg:\n  hunter2: x\n")]);
        let refusal = guard(&mut result, &paths, &policy(&handed, &[])).unwrap_err();
        assert!(
            refusal.reason.contains("at key `pg (one of its keys)`"),
            "{refusal}"
        );
        let mut result = tree(&[("state.yml", "pg: [\n# hunter2\n")]);
        let refusal = guard(&mut result, &paths, &policy(&handed, &[])).unwrap_err();
        assert!(refusal.reason.contains("on line 2"), "{refusal}");
    }
}
