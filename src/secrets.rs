//! Environment values that come from outside the repository, and keeping them out of sight.
//!
//! A command's `envs` value may reference `${env:NAME}` (e's own environment) or
//! `${secret:NAME}` (the secrets file, `--secrets FILE`, a YAML map of names to values).
//! Every value substituted this way is a secret: e passes it to the container but never writes
//! it to state, history or logs, and [`Masker`] replaces it in everything e prints.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context as _, bail};

/// Where `${secret:NAME}` values come from.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl Secrets {
    /// Reads a secrets file: a YAML map of names to values.
    pub fn load(path: &Path) -> anyhow::Result<Secrets> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the secrets file `{}`", path.display()))?;
        let values: BTreeMap<String, String> = serde_yaml::from_str(&text).with_context(|| {
            format!(
                "the secrets file `{}` must be a YAML map of names to string values",
                path.display()
            )
        })?;
        Ok(Secrets { values })
    }
}

/// Resolved environment of one command, with the values that must be masked.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Name and value of each variable, in name order.
    pub env: Vec<(String, String)>,
    /// Every substituted value.
    pub secrets: Vec<String>,
}

/// Substitutes `${env:NAME}` and `${secret:NAME}` in each value. `lookup_env` is the host
/// environment (a parameter so tests need not change the process environment).
pub fn resolve(
    envs: &BTreeMap<String, String>,
    secrets: &Secrets,
    lookup_env: impl Fn(&str) -> Option<String>,
    what: &str,
) -> anyhow::Result<Resolved> {
    let mut resolved = Resolved::default();
    for (name, template) in envs {
        let mut value = String::new();
        let mut rest = template.as_str();
        while let Some(start) = rest.find("${") {
            value.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                bail!(
                    "{what}: env `{name}` has an unclosed `${{`\nhint: write `${{env:NAME}}` or `${{secret:NAME}}`"
                );
            };
            let reference = &after[..end];
            let substituted = match reference.split_once(':') {
                Some(("env", key)) => lookup_env(key).with_context(|| {
                    format!("{what}: env `{name}` needs `{key}` from e's environment, which is not set\nhint: export {key}=... before running e")
                })?,
                Some(("secret", key)) => secrets.values.get(key).cloned().with_context(|| {
                    format!("{what}: env `{name}` needs secret `{key}`, which the secrets file does not have\nhint: add `{key}: ...` to the file given with `--secrets` (or E_SECRETS)")
                })?,
                _ => bail!("{what}: env `{name}` has an unknown reference `${{{reference}}}`\nhint: write `${{env:NAME}}` or `${{secret:NAME}}`"),
            };
            if !substituted.is_empty() {
                resolved.secrets.push(substituted.clone());
            }
            value.push_str(&substituted);
            rest = &after[end + 1..];
        }
        value.push_str(rest);
        resolved.env.push((name.clone(), value));
    }
    // Longest first, so a secret that contains another is masked whole.
    resolved.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    resolved.secrets.dedup();
    Ok(resolved)
}

/// Replaces secrets in text, line by line so a secret split across two reads is still caught.
#[derive(Debug, Default)]
pub struct Masker {
    secrets: Vec<String>,
    pending: Mutex<Vec<u8>>,
}

/// What a masked secret is shown as.
pub const MASK: &str = "***";

impl Masker {
    /// A masker for these secrets.
    pub fn new(secrets: Vec<String>) -> Masker {
        Masker {
            secrets,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Masks every secret in a complete piece of text.
    pub fn mask(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), MASK)
        })
    }

    /// Takes a chunk of a stream and returns the masked complete lines it finishes.
    pub fn feed(&self, bytes: &[u8]) -> String {
        let mut pending = self
            .pending
            .lock()
            .expect("the masker's buffer is never poisoned");
        pending.extend_from_slice(bytes);
        let Some(last_newline) = pending.iter().rposition(|b| *b == b'\n') else {
            return String::new();
        };
        let lines: Vec<u8> = pending.drain(..=last_newline).collect();
        self.mask(&String::from_utf8_lossy(&lines))
    }

    /// Returns the masked rest of the stream, after its last newline.
    pub fn finish(&self) -> String {
        let mut pending = self
            .pending
            .lock()
            .expect("the masker's buffer is never poisoned");
        let rest = std::mem::take(&mut *pending);
        self.mask(&String::from_utf8_lossy(&rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_are_substituted_and_remembered_as_secrets() {
        let secrets = Secrets {
            values: [("db".to_owned(), "s3cr3t".to_owned())].into(),
        };
        let resolved = resolve(
            &envs(&[
                ("TOKEN", "Bearer ${env:TOKEN}"),
                ("DB", "${secret:db}"),
                ("PLAIN", "info"),
            ]),
            &secrets,
            |k| (k == "TOKEN").then(|| "abc123".to_owned()),
            "module `x`",
        )
        .unwrap();
        assert_eq!(
            resolved.env,
            [
                ("DB".into(), "s3cr3t".into()),
                ("PLAIN".into(), "info".into()),
                ("TOKEN".into(), "Bearer abc123".into())
            ]
        );
        assert_eq!(resolved.secrets, ["s3cr3t", "abc123"]);
    }

    #[test]
    fn missing_references_are_clear_errors() {
        let err = resolve(
            &envs(&[("A", "${env:NOPE}")]),
            &Secrets::default(),
            |_| None,
            "module `x`",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`NOPE`") && err.contains("hint:"), "{err}");
        let err = resolve(
            &envs(&[("A", "${vault:x}")]),
            &Secrets::default(),
            |_| None,
            "m",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown reference"), "{err}");
    }

    #[test]
    fn masker_catches_secrets_split_across_chunks() {
        let masker = Masker::new(vec!["s3cr3t".into()]);
        assert_eq!(masker.feed(b"password is s3c"), "");
        assert_eq!(masker.feed(b"r3t\nnext "), "password is ***\n");
        assert_eq!(masker.finish(), "next ");
    }
}
