//! The serde types of `repository.yaml`, exactly as a user writes them.
//!
//! Every struct denies unknown fields, so a typo such as `mount:` is an error rather than a
//! silently ignored line. Checks that span several items (duplicates, two `latest`) live in
//! `load.rs`, which can point at the offending line.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

pub use super::limits::{Cpus, Limits, Memory, Pids, User};
pub use super::packages::PackageRequirement;
use crate::selector::{Labels, Scalar, Selector};

/// A whole module repository.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// Format version; only `v1` exists.
    pub version: ApiVersion,
    /// Always `Repository`.
    pub kind: RepositoryKind,
    /// An optional name for the repository, shown in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The modules ("components" in the format, for compatibility with the earlier `e`).
    #[serde(default)]
    pub components: Vec<Module>,
}

/// The format version of a repository file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum ApiVersion {
    /// The only version so far.
    #[serde(rename = "v1")]
    V1,
}

/// The document kind of a repository file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RepositoryKind {
    /// A module repository.
    Repository,
}

/// One module with all its versions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// The module's name: a key of the shared state and part of file names.
    #[serde(deserialize_with = "text")]
    pub name: String,
    /// How the module runs; only `docker` exists.
    #[serde(rename = "type")]
    pub kind: ModuleType,
    /// The versions, in the order written. Versions with equal commands share one list from
    /// the moment they are read (see `versions_sharing_commands`).
    #[serde(deserialize_with = "versions_sharing_commands")]
    pub versions: Vec<ModuleVersion>,
}

/// Reads a module's versions, each sharing the commands of the one before when they are
/// equal: the copy is freed at once, so a large repository never holds every version's copy
/// (they were a third of a cold load's peak memory).
fn versions_sharing_commands<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ModuleVersion>, D::Error> {
    struct Versions;
    impl<'de> de::Visitor<'de> for Versions {
        type Value = Vec<ModuleVersion>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut versions: Vec<ModuleVersion> =
                Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(mut version) = seq.next_element::<ModuleVersion>()? {
                if let Some(previous) = versions.last()
                    && *previous.commands == *version.commands
                {
                    version.commands = Arc::clone(&previous.commands);
                }
                versions.push(version);
            }
            Ok(versions)
        }
    }
    deserializer.deserialize_seq(Versions)
}

/// How a module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleType {
    /// In a container, through the Docker Engine API.
    Docker,
}

/// One version of a module: its image, commands, labels and relations to other modules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleVersion {
    /// The version, semver where possible.
    pub version: VersionId,
    /// Whether this is the version used when none is named.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub latest: bool,
    /// The container image reference.
    #[serde(deserialize_with = "text")]
    pub image: String,
    /// The working directory inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Container paths backed by a per-module, per-version directory of the shared area.
    #[serde(
        default,
        deserialize_with = "texts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<String>,
    /// Where the shared directory is mounted in the container (default `/shared`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<String>,
    /// Network mode beyond the default `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Linux capabilities the module needs (all are dropped by default).
    #[serde(
        default,
        deserialize_with = "texts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub capabilities: Vec<String>,
    /// Memory, CPU and process limits that replace e's defaults.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// The uid (and gid) the module runs as, instead of e's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// The methods this version answers. Shared between versions whose commands are equal,
    /// which most versions of a module are (see [`Module::versions`]).
    #[serde(default)]
    pub commands: Arc<Vec<Command>>,
    /// Labels other modules select this one by.
    #[serde(
        default,
        deserialize_with = "deserialize_labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: Labels,
    /// What must (strong) or may (weak) be installed for this version.
    #[serde(default, skip_serializing_if = "Requires::is_empty")]
    pub requires: Requires,
    /// Modules this one changes when applied; they are told to re-plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub influences: Vec<Selector>,
    /// The bill of materials: further images and files the module needs, for `e export`.
    #[serde(default, skip_serializing_if = "Requirements::is_empty")]
    pub requirements: Requirements,
}

impl ModuleVersion {
    /// The command with this name, if the version has it.
    pub fn command(&self, name: &str) -> Option<&Command> {
        self.commands.iter().find(|c| c.name == name)
    }

    /// The container path of the shared directory.
    pub fn shared_path(&self) -> &str {
        self.shared.as_deref().unwrap_or("/shared")
    }
}

/// The requirements of a module version: each entry is one selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Requirements that must be met before the module can be applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strong: Vec<Selector>,
    /// Requirements the module can do without but uses when present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weak: Vec<Selector>,
}

impl Requires {
    /// Whether there are no requirements at all.
    pub fn is_empty(&self) -> bool {
        self.strong.is_empty() && self.weak.is_empty()
    }
}

/// A module version's bill of materials: what it needs besides its own image, so that
/// `e export` can carry everything to a machine without internet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Further container images (the module starts them, or hands them to what it installs).
    #[serde(
        default,
        deserialize_with = "deserialize_images",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub images: Vec<String>,
    /// Files, each pinned by its sha256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRequirement>,
    /// Operating-system packages the hosts need, per distribution and release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageRequirement>,
}

impl Requirements {
    /// Whether the bill of materials is empty.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.files.is_empty() && self.packages.is_empty()
    }
}

fn deserialize_images<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let images = texts(deserializer)?;
    if let Some(bad) = images
        .iter()
        .find(|image| image.is_empty() || image.contains(char::is_whitespace))
    {
        return Err(de::Error::custom(format!(
            "invalid image reference `{bad}`: it must be non-empty, without spaces"
        )));
    }
    Ok(images)
}

/// One file of a bill of materials: where it comes from (exactly one of `url` and `path`) and
/// the sha256 it must have.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "RawFileRequirement")]
pub struct FileRequirement {
    /// The file's name in archives; by default the last segment of `url` or `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A `file://`, `http://` or `https://` URL (e's downloader fetches the latter two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A path; a relative one is relative to the repository file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The sha256 of the file's bytes: 64 hexadecimal digits.
    pub sha256: String,
}

/// A file requirement as written, checked by `TryFrom` so that the error names the file entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileRequirement {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    path: Option<String>,
    sha256: String,
}

impl TryFrom<RawFileRequirement> for FileRequirement {
    type Error = String;

    fn try_from(raw: RawFileRequirement) -> Result<Self, String> {
        match (&raw.url, &raw.path) {
            (Some(_), Some(_)) => {
                return Err("a file has both `url` and `path`; give exactly one".to_owned());
            }
            (None, None) => return Err("a file needs `url` or `path` (exactly one)".to_owned()),
            (Some(url), None)
                if !["file://", "http://", "https://"]
                    .iter()
                    .any(|s| url.starts_with(s)) =>
            {
                return Err(format!(
                    "url `{url}` is not a `file://`, `http://` or `https://` URL"
                ));
            }
            (None, Some(path)) if path.is_empty() => {
                return Err("a file's `path` is empty".to_owned());
            }
            _ => {}
        }
        if raw.sha256.len() != 64 || !raw.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "sha256 `{}` is not 64 hexadecimal digits (compute it with `sha256sum FILE`)",
                raw.sha256
            ));
        }
        let file = FileRequirement {
            name: raw.name,
            url: raw.url,
            path: raw.path,
            sha256: raw.sha256.to_ascii_lowercase(),
        };
        check_file_name(file.file_name()).map_err(|err| format!("{err} (set `name`)"))?;
        Ok(file)
    }
}

impl FileRequirement {
    /// Where the file comes from, as written (`url` or `path`).
    pub fn source(&self) -> &str {
        self.url
            .as_deref()
            .or(self.path.as_deref())
            .unwrap_or_default()
    }

    /// The name the file has in archives and under `files/<sha256>/`.
    pub fn file_name(&self) -> &str {
        match &self.name {
            Some(name) => name,
            None => self
                .source()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default(),
        }
    }
}

/// Checks a file name of a bill of materials: one path segment that is safe on every system.
pub fn check_file_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid file name `{name}`: use letters, digits, `-`, `_`, `.` and `+`, without `/`"
        ))
    }
}

/// What a module's `metadata` method prints: it must equal the labels, requires and
/// influences of its version in the repository. Other fields it prints are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Metadata {
    /// Labels.
    #[serde(default, deserialize_with = "deserialize_labels")]
    pub labels: Labels,
    /// Requirements.
    #[serde(default)]
    pub requires: Requires,
    /// Influences.
    #[serde(default)]
    pub influences: Vec<Selector>,
}

impl ModuleVersion {
    /// The metadata this version's `metadata` method must print.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            labels: self.labels.clone(),
            requires: self.requires.clone(),
            influences: self.influences.clone(),
        }
    }
}

/// Network mode of a module's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// No network at all (the default).
    None,
    /// The host's network stack.
    Host,
}

/// One method of a module version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The method name (`init`, `apply`, ...).
    #[serde(deserialize_with = "text")]
    pub name: String,
    /// What it does, for `e info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The first argument given to the container's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Environment variables; values may reference `${env:NAME}`.
    #[serde(
        default,
        deserialize_with = "deserialize_envs",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub envs: BTreeMap<String, String>,
    /// Further arguments after `command`.
    #[serde(
        default,
        deserialize_with = "texts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<String>,
    /// Secrets of the secrets file the container gets as files, `/run/secrets/NAME`, in a
    /// tmpfs: unlike environment variables, they do not show in `docker inspect`.
    #[serde(
        default,
        deserialize_with = "texts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<String>,
    /// Secrets the method may leave in what it writes: e keeps each in its secret store
    /// (`.e/secrets.yml`, mode 0600) and writes `${secret:NAME}` in its place. Any other
    /// secret e handed the run, found in what it left, makes e refuse the result.
    #[serde(
        default,
        rename = "keep-secrets",
        deserialize_with = "texts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub keep_secrets: Vec<String>,
    /// How long the method may run before e stops it; `--timeout` replaces it, and without
    /// either e stops it after [`DEFAULT_TIMEOUT`](crate::run::DEFAULT_TIMEOUT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
}

impl Command {
    /// The names of the secrets this command is handed: its `secrets:` files and the
    /// `${secret:NAME}` references of its `envs`, each once, in that order.
    pub fn secret_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        for template in self.envs.values() {
            let mut rest = template.as_str();
            while let Some(start) = rest.find("${secret:") {
                let after = &rest[start + "${secret:".len()..];
                let Some(end) = after.find('}') else { break };
                names.push(&after[..end]);
                rest = &after[end + 1..];
            }
        }
        let mut seen = std::collections::HashSet::new();
        names.retain(|name| seen.insert(*name));
        names
    }
}

/// How long a method may run, written as a duration: `90s`, `10m`, `2h`, `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub std::time::Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Scalar::deserialize(deserializer)?.0;
        // The error starts with the field's name, for `load.rs` to point at the value.
        let invalid = |why: &str| {
            de::Error::custom(format!("field `timeout`: invalid timeout `{text}`: {why}"))
        };
        match humantime::parse_duration(text.trim()) {
            Ok(duration) if duration.is_zero() => Err(invalid("it must be longer than zero")),
            Ok(duration) => Ok(Timeout(duration)),
            Err(_) => Err(invalid(
                "write a number and a unit, like `90s`, `10m` or `2h`",
            )),
        }
    }
}

impl Serialize for Timeout {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A required string as written; a null (`~`, `null`, or nothing) is the empty string, so that
/// `image: ~` is "`image` is empty", like `image:`, and never the image `~`.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Scalar::deserialize_nullable(deserializer)?.unwrap_or_default())
}

/// A list of strings as written, each read like [`text`].
fn texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Text(String);
    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            text(deserializer).map(Text)
        }
    }
    Ok(Vec::<Text>::deserialize(deserializer)?
        .into_iter()
        .map(|text| text.0)
        .collect())
}

fn deserialize_labels<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Labels, D::Error> {
    deserializer.deserialize_map(UniqueMap {
        what: "label",
        check_key: crate::selector::validate_key,
    })
}

fn deserialize_envs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    deserializer.deserialize_map(UniqueMap {
        what: "environment variable",
        check_key: |_| Ok(()),
    })
}

/// A map of scalars whose keys must be unique: serde's own maps keep the last of two equal
/// keys, which would silently drop a line the user wrote.
struct UniqueMap {
    what: &'static str,
    check_key: fn(&str) -> Result<(), String>,
}

impl<'de> de::Visitor<'de> for UniqueMap {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map of {} names to values", self.what)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            (self.check_key)(&key).map_err(de::Error::custom)?;
            let value: Scalar = map.next_value()?;
            if out.insert(key.clone(), value.0).is_some() {
                return Err(de::Error::custom(format!(
                    "duplicate {} `{key}`",
                    self.what
                )));
            }
        }
        Ok(out)
    }
}

/// A module version's identifier: semver where it parses, any other text otherwise.
///
/// Older repositories use names like `dev`; such versions load with a warning and never
/// satisfy a semver comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionId {
    raw: String,
    semver: Option<semver::Version>,
}

impl VersionId {
    /// Wraps a version string, parsing it as semver if it is one.
    pub fn new(raw: impl Into<String>) -> VersionId {
        let raw = raw.into();
        let semver = semver::Version::parse(&raw).ok();
        VersionId { raw, semver }
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The semver version, if it is one.
    pub fn semver(&self) -> Option<&semver::Version> {
        self.semver.as_ref()
    }
}

impl Ord for VersionId {
    /// Semver versions order by precedence and above any non-semver version.
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.semver, &other.semver) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => self.raw.cmp(&other.raw),
        }
    }
}

impl PartialOrd for VersionId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for VersionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Scalar::deserialize_nullable(deserializer)?.unwrap_or_default();
        if raw.trim().is_empty() {
            return Err(de::Error::custom("a version must not be empty"));
        }
        Ok(VersionId::new(raw))
    }
}

impl Serialize for VersionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}
