//! Values that come from outside the repository, and keeping them out of sight.
//!
//! A command's `envs` value may reference `${env:NAME}` (e's own environment) or
//! `${secret:NAME}` (the secrets file, `--secrets FILE`, a YAML map of names to values, or the
//! shared directory's secret store, [`Store`]); its `secrets:` are secrets handed as files.
//! Every value handed this way is a secret: e passes it to the container but never writes it to
//! state, history or logs, [`Masker`] replaces it in everything e prints, and `run/leaks.rs`
//! refuses a result that holds it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::repository::Command;

/// Where `${secret:NAME}` values come from: the secrets file, then the secret store.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    kept: BTreeMap<String, String>,
}

impl Secrets {
    /// Reads a secrets file: a YAML map of names to values.
    pub fn load(path: &Path) -> anyhow::Result<Secrets> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the secrets file `{}`", path.display()))?;
        let values = parse(&text).map_err(|message| {
            anyhow::anyhow!(
                "{}{message}\nhint: the secrets file (`--secrets`, `E_SECRETS`) is a YAML map of names to values, each name once, like `db-password: s3cr3t`",
                path.display()
            )
        })?;
        Ok(Secrets {
            values,
            kept: BTreeMap::new(),
        })
    }

    /// These secrets, with the secret store's values for names the file does not have.
    pub fn with_kept(mut self, kept: BTreeMap<String, String>) -> Secrets {
        self.kept = kept;
        self
    }

    /// The value of secret `name`: from the file, else from the store.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .or_else(|| self.kept.get(name))
            .map(String::as_str)
    }

    /// Every value of the secrets file.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.values().map(String::as_str)
    }
}

/// Parses the text of a secrets file (or store). The error is a fragment that follows the
/// file's name: `:3:1: secret `db` is written twice`.
fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let scan = crate::yaml_limits::scan(text);
    if let Some(deep) = scan.too_deep {
        return Err(format!(":{}:{}: {deep}", deep.line, deep.column));
    }
    if scan.aliases {
        crate::yaml_limits::alias_expansion(text).map_err(|err| format!(": {err}"))?;
    }
    if scan.tags
        && let Some(tag) = crate::yaml_limits::first_tag(text)
    {
        return Err(format!(":{}:{}: {tag}", tag.line, tag.column));
    }
    if text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        return Ok(BTreeMap::new());
    }
    let map: SecretMap = serde_yaml::from_str(text).map_err(|err| {
        let mut message = err.to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        let position = match message
            .strip_prefix("secret `")
            .and_then(|m| m.split_once('`'))
        {
            // serde_yaml points at the map; the name written again is where to look.
            Some((name, rest)) if rest.contains("written twice") => second_key(text, name),
            _ => None,
        }
        .or_else(|| err.location().map(|at| (at.line(), at.column())));
        match position {
            Some((line, column)) => format!(":{line}:{column}: {message}"),
            None => format!(": {message}"),
        }
    })?;
    Ok(map.0)
}

/// The line and column where the top-level key `name` is written the second time.
fn second_key(text: &str, name: &str) -> Option<(usize, usize)> {
    use yaml_rust2::scanner::{Scanner, Token, TokenType};
    let mut after_key = false;
    let mut seen = 0;
    for Token(mark, token) in Scanner::new(text.chars()) {
        match token {
            TokenType::Key => after_key = true,
            TokenType::Scalar(_, key) if after_key && key == name => {
                seen += 1;
                if seen == 2 {
                    return Some((mark.line(), mark.col() + 1));
                }
                after_key = false;
            }
            _ => after_key = false,
        }
    }
    None
}

/// A map of secret names to values, each name once and each value as written.
struct SecretMap(BTreeMap<String, String>);

impl<'de> serde::Deserialize<'de> for SecretMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = SecretMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of secret names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretMap, A::Error> {
                let mut values = BTreeMap::new();
                while let Some(name) = map.next_key::<crate::selector::Scalar>()? {
                    let name = name.0;
                    let Nullable(value) = map.next_value()?;
                    let Some(value) = value else {
                        return Err(de::Error::custom(format!(
                            "secret `{name}` has no value (`~`, `null` or nothing); quote it if it is the text, like `\"null\"`"
                        )));
                    };
                    if values.insert(name.clone(), value).is_some() {
                        return Err(de::Error::custom(format!(
                            "secret `{name}` is written twice; e would not know which value to use"
                        )));
                    }
                }
                Ok(SecretMap(values))
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

/// A scalar as written, or `None` for a null.
struct Nullable(Option<String>);

impl<'de> serde::Deserialize<'de> for Nullable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::selector::Scalar::deserialize_nullable(deserializer).map(Nullable)
    }
}

/// The secret store of a shared directory, `.e/secrets.json` (mode 0600): the secrets that a
/// command's `keep-secrets:` lets a module keep in what it writes. The state holds
/// `${secret:NAME}` in their place; the store holds the values, outside everything modules
/// see, every snapshot and every backup.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    tmp: PathBuf,
}

impl Store {
    /// The store of the shared directory whose e area is `e_dir`.
    pub fn at(e_dir: &Path) -> Store {
        Store {
            path: e_dir.join("secrets.json"),
            tmp: e_dir.join("tmp"),
        }
    }

    /// The kept secrets; none when there is no store yet.
    pub fn read(&self) -> anyhow::Result<BTreeMap<String, String>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "the secret store `{}` is damaged\nhint: restore it from a backup, or remove it and give e the secrets again",
                    self.path.display()
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(err)
                .with_context(|| format!("failed to read the secret store `{}`", self.path.display())),
        }
    }

    /// Adds these secrets (name and value) to the store, replacing older values: written to a
    /// temporary file of mode 0600, flushed, and renamed into place.
    pub fn keep(&self, secrets: &[(String, String)]) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut all = self.read()?;
        for (name, value) in secrets {
            all.insert(name.clone(), value.clone());
        }
        // tempfile creates its files with mode 0600.
        let mut file = tempfile::NamedTempFile::new_in(&self.tmp)
            .with_context(|| format!("failed to write in `{}`", self.tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(&all)?)?;
        file.as_file().sync_all()?;
        file.persist(&self.path).with_context(|| {
            format!("failed to write the secret store `{}`", self.path.display())
        })?;
        Ok(())
    }

    /// The store's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where a value handed to a run came from; shown in place of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `${secret:NAME}` or a secret file: a secret of the secrets file or store.
    Secret(String),
    /// `${env:NAME}`: a variable of e's environment.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Secret(name) => write!(f, "secret `{name}`"),
            Source::Env(name) => write!(f, "`${{env:{name}}}`"),
        }
    }
}

/// A value e handed to a run, which must never be kept in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    /// Where it came from.
    pub source: Source,
    /// The value.
    pub value: String,
}

/// Resolved environment and secret files of one command, with the values that must be masked.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Name and value of each variable, in name order.
    pub env: Vec<(String, String)>,
    /// The secret files: name (the file under `/run/secrets/`) and content.
    pub files: Vec<(String, String)>,
    /// Every non-empty value handed, each once, longest first (so a secret that contains
    /// another is masked whole).
    pub handed: Vec<Handed>,
}

impl Resolved {
    /// The values handed, longest first.
    pub fn values(&self) -> Vec<String> {
        self.handed.iter().map(|h| h.value.clone()).collect()
    }
}

/// Substitutes `${env:NAME}` and `${secret:NAME}` in each value of the command's `envs`, and
/// reads its secret files. `lookup_env` is the host environment (a parameter so tests need not
/// change the process environment).
pub fn resolve(
    command: &Command,
    secrets: &Secrets,
    lookup_env: impl Fn(&str) -> Option<String>,
    what: &str,
) -> anyhow::Result<Resolved> {
    let mut resolved = Resolved::default();
    let missing = |key: &str, needs: String| {
        format!(
            "{what}: {needs} needs secret `{key}`, which the secrets file does not have\nhint: add `{key}: ...` to the file given with `--secrets` (or E_SECRETS)"
        )
    };
    for (name, template) in &command.envs {
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
            let (source, substituted) = match reference.split_once(':') {
                Some(("env", key)) => (Source::Env(key.to_owned()), lookup_env(key).with_context(|| {
                    format!("{what}: env `{name}` needs `{key}` from e's environment, which is not set\nhint: export {key}=... before running e")
                })?),
                Some(("secret", key)) => (
                    Source::Secret(key.to_owned()),
                    secrets
                        .get(key)
                        .map(str::to_owned)
                        .with_context(|| missing(key, format!("env `{name}`")))?,
                ),
                _ => bail!("{what}: env `{name}` has an unknown reference `${{{reference}}}`\nhint: write `${{env:NAME}}` or `${{secret:NAME}}`"),
            };
            resolved.hand(source, &substituted);
            value.push_str(&substituted);
            rest = &after[end + 1..];
        }
        value.push_str(rest);
        resolved.env.push((name.clone(), value));
    }
    for name in &command.secrets {
        let value = secrets
            .get(name)
            .with_context(|| missing(name, format!("the file `/run/secrets/{name}`")))?;
        resolved.hand(Source::Secret(name.clone()), value);
        resolved.files.push((name.clone(), value.to_owned()));
    }
    resolved
        .handed
        .sort_by_key(|h| std::cmp::Reverse(h.value.len()));
    Ok(resolved)
}

impl Resolved {
    fn hand(&mut self, source: Source, value: &str) {
        if !value.is_empty() && !self.handed.iter().any(|h| h.value == value) {
            self.handed.push(Handed {
                source,
                value: value.to_owned(),
            });
        }
    }
}

/// Replaces secrets in text, line by line so a secret split across two reads is still caught.
#[derive(Debug, Default)]
pub struct Masker {
    secrets: Vec<String>,
    pending: Mutex<Vec<u8>>,
    masked: AtomicBool,
}

/// What a masked secret is shown as.
pub const MASK: &str = "***";

impl Masker {
    /// A masker for these secrets.
    pub fn new(secrets: Vec<String>) -> Masker {
        Masker {
            secrets,
            pending: Mutex::new(Vec::new()),
            masked: AtomicBool::new(false),
        }
    }

    /// Masks every secret in a complete piece of text.
    pub fn mask(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |text, secret| {
            if text.contains(secret.as_str()) {
                self.masked.store(true, Ordering::Relaxed);
                text.replace(secret.as_str(), MASK)
            } else {
                text
            }
        })
    }

    /// Whether it has masked anything yet.
    pub fn masked(&self) -> bool {
        self.masked.load(Ordering::Relaxed)
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

    fn command(envs: &[(&str, &str)], files: &[&str]) -> Command {
        serde_yaml::from_str(&format!(
            "name: apply\nenvs: {{{}}}\nsecrets: [{}]\n",
            envs.iter()
                .map(|(k, v)| format!("{k}: \"{v}\""))
                .collect::<Vec<_>>()
                .join(", "),
            files.join(", ")
        ))
        .unwrap()
    }

    fn secrets(text: &str) -> Secrets {
        Secrets {
            values: parse(text).unwrap(),
            kept: BTreeMap::new(),
        }
    }

    #[test]
    fn references_are_substituted_and_remembered_as_secrets() {
        let resolved = resolve(
            &command(
                &[
                    ("TOKEN", "Bearer ${env:TOKEN}"),
                    ("DB", "${secret:db}"),
                    ("PLAIN", "info"),
                ],
                &["cert"],
            ),
            &secrets("db: s3cr3t\ncert: BEGIN-CERT\n"),
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
        assert_eq!(resolved.files, [("cert".into(), "BEGIN-CERT".into())]);
        assert_eq!(resolved.values(), ["BEGIN-CERT", "s3cr3t", "abc123"]);
        assert_eq!(
            resolved.handed[1].source,
            Source::Secret("db".to_owned()),
            "{:?}",
            resolved.handed
        );
    }

    #[test]
    fn missing_references_are_clear_errors() {
        let err = resolve(
            &command(&[("A", "${env:NOPE}")], &[]),
            &Secrets::default(),
            |_| None,
            "module `x`",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`NOPE`") && err.contains("hint:"), "{err}");
        let err = resolve(
            &command(&[("A", "${vault:x}")], &[]),
            &Secrets::default(),
            |_| None,
            "m",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown reference"), "{err}");
        let err = resolve(&command(&[], &["cert"]), &Secrets::default(), |_| None, "m")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`/run/secrets/cert` needs secret `cert`"),
            "{err}"
        );
    }

    #[test]
    fn the_secrets_file_keeps_values_as_written_and_refuses_what_it_cannot_mean() {
        let values = parse("\u{feff}pin: 0123\nratio: 1.10\nquoted: \"~\"\n").unwrap();
        assert_eq!(values["pin"], "0123");
        assert_eq!(values["ratio"], "1.10");
        assert_eq!(values["quoted"], "~");
        assert!(parse("# nothing yet\n").unwrap().is_empty());
        let err = parse("db: one\napi: x\ndb: two\n").unwrap_err();
        assert!(
            err.starts_with(":3:1: secret `db` is written twice"),
            "{err}"
        );
        let err = parse("a: 1\ndb: !Secret x\n").unwrap_err();
        assert!(err.starts_with(":2:5: the YAML tag `!Secret`"), "{err}");
        let err = parse("db: ~\n").unwrap_err();
        assert!(err.contains("secret `db` has no value"), "{err}");
        let err = parse("- a\n").unwrap_err();
        assert!(err.contains("a map of secret names"), "{err}");
    }

    #[test]
    fn the_store_is_private_and_its_values_come_after_the_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let store = Store::at(dir.path());
        assert!(store.read().unwrap().is_empty());
        store
            .keep(&[
                ("db".to_owned(), "kept".to_owned()),
                ("api".to_owned(), "k2".to_owned()),
            ])
            .unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        let all = secrets("db: from-file\n").with_kept(store.read().unwrap());
        assert_eq!(all.get("db"), Some("from-file"));
        assert_eq!(all.get("api"), Some("k2"));
        assert_eq!(all.get("nope"), None);
    }

    #[test]
    fn masker_catches_secrets_split_across_chunks() {
        let masker = Masker::new(vec!["s3cr3t".into()]);
        assert_eq!(masker.feed(b"password is s3c"), "");
        assert!(!masker.masked());
        assert_eq!(masker.feed(b"r3t\nnext "), "password is ***\n");
        assert_eq!(masker.finish(), "next ");
        assert!(masker.masked());
    }
}
