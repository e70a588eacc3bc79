//! Debian packages of the bills of materials: for each release, the union of every module's
//! package names, resolved with all their dependencies in one container of that release
//! (`e-kits/debian:<release>`, which `modules/kits/debian/base.sh` makes by debootstrap) and
//! kept in the cache as a flat apt repository:
//!
//! ```text
//! debian/<release>/<key>/          *.deb, Packages, Packages.gz, Release
//! debian/<release>/<key>.partial/  while the resolver works; removed when it fails
//! ```
//!
//! `<key>` names the set of names, so a second export of the same packages reuses the set.
//! The packages are resolved as if nothing were installed (apt-get with an empty dpkg status),
//! so any host of the release can install them from the repository machine with no mirror:
//! `deb [trusted=yes] http://REPOSITORY/debian/<release> ./`. apt itself checks every package
//! against the release's signed index while downloading.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{Job, cache_dir};
use crate::archive::sha256_hex;
use crate::repository::Entry;
use crate::repository::packages::Distribution;
use crate::runtime::Engine;

/// The resolver's script, run by the release's own shell.
const SCRIPT: &str = include_str!("debian.sh");
/// Where the cache appears in the resolver's container.
const MOUNT: &str = "/cache";
/// How long one resolution may take.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The packages every exported module wants on one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSet {
    /// The release (`bookworm`).
    pub release: String,
    /// The names, sorted, each once.
    pub names: Vec<String>,
    /// The module versions that list them.
    pub wanted_by: Vec<String>,
}

impl PackageSet {
    /// The name of the set's folder in the cache: a hash of the release and names.
    pub fn key(&self) -> String {
        let text = format!("{}\n{}\n", self.release, self.names.join("\n"));
        sha256_hex(text.as_bytes())[..16].to_owned()
    }

    /// The image the set is resolved in: `E_DEBIAN_IMAGE` (with `{release}`), else
    /// `e-kits/debian:<release>`.
    pub fn image(&self) -> String {
        let template = std::env::var("E_DEBIAN_IMAGE")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "e-kits/debian:{release}".to_owned());
        template.replace("{release}", &self.release)
    }
}

/// The package sets of these module versions: one per Debian release.
pub fn sets(entries: &[Entry<'_>]) -> Vec<PackageSet> {
    let mut by_release: BTreeMap<String, PackageSet> = BTreeMap::new();
    for entry in entries {
        for packages in &entry.version.requirements.packages {
            match packages.distribution {
                Distribution::Debian => {}
            }
            let set = by_release
                .entry(packages.release.clone())
                .or_insert_with(|| PackageSet {
                    release: packages.release.clone(),
                    names: Vec::new(),
                    wanted_by: Vec::new(),
                });
            set.names.extend(packages.names.iter().cloned());
            if !set.wanted_by.contains(&entry.id()) {
                set.wanted_by.push(entry.id());
            }
        }
    }
    by_release
        .into_values()
        .map(|mut set| {
            set.names.sort();
            set.names.dedup();
            set
        })
        .collect()
}

/// A resolved set: its folder and its files (name, size), sorted.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The folder: in the cache, or beside the repository where `e import` put it.
    pub dir: PathBuf,
    /// Its files: the packages and the index.
    pub files: Vec<(String, u64)>,
    /// Whether it is the copy `e import` put beside the repository (an air-gapped machine
    /// exporting again), not the cache's.
    pub imported: bool,
}

impl Resolved {
    /// How many `.deb` files the set holds.
    pub fn packages(&self) -> usize {
        self.files
            .iter()
            .filter(|(n, _)| n.ends_with(".deb"))
            .count()
    }
}

/// The set's folder in the cache, if it was resolved whole before.
pub fn cached(cache: &Path, set: &PackageSet) -> anyhow::Result<Option<Resolved>> {
    let dir = cache.join("debian").join(&set.release).join(set.key());
    listed(dir, false)
}

/// The packages `e import` put beside the repository (`packages/debian/<release>/` under
/// `base`), if their index holds every name of the set (and version, where one is pinned):
/// an air-gapped machine exports them again without a mirror.
pub fn imported(base: &Path, set: &PackageSet) -> anyhow::Result<Option<Resolved>> {
    let dir = base.join("packages").join("debian").join(&set.release);
    let index = match fs::read_to_string(dir.join("Packages")) {
        Ok(index) => index,
        Err(_) => return Ok(None),
    };
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for stanza in index.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        if let (Some(package), Some(version)) = (field("Package"), field("Version")) {
            versions.entry(package).or_default().push(version);
        }
    }
    let covered = set.names.iter().all(|spec| match spec.split_once('=') {
        Some((name, version)) => versions.get(name).is_some_and(|v| v.contains(&version)),
        None => versions.contains_key(spec.as_str()),
    });
    if !covered {
        return Ok(None);
    }
    listed(dir, true)
}

fn listed(dir: PathBuf, imported: bool) -> anyhow::Result<Option<Resolved>> {
    if !dir.join("Release").is_file() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for entry in
        fs::read_dir(&dir).with_context(|| format!("failed to read `{}`", dir.display()))?
    {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            files.push((name.to_owned(), meta.len()));
        }
    }
    files.sort();
    Ok(Some(Resolved {
        dir,
        files,
        imported,
    }))
}

/// The hint for a missing release image.
fn image_hint(set: &PackageSet) -> String {
    format!(
        "make it: `modules/kits/debian/base.sh {}` (debootstrap, as root), or name another with `E_DEBIAN_IMAGE`",
        set.image()
    )
}

/// Resolves and downloads a set, unless the cache holds it.
pub async fn fetch(engine: &dyn Engine, set: &PackageSet) -> anyhow::Result<Resolved> {
    let cache = cache_dir()?;
    let _lock = super::download::lock(&cache)?;
    if let Some(resolved) = cached(&cache, set)? {
        return Ok(resolved);
    }
    let release_dir = cache.join("debian").join(&set.release);
    let key = set.key();
    let partial = release_dir.join(format!("{key}.partial"));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)
        .with_context(|| format!("failed to create `{}`", partial.display()))?;
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let owner = unsafe { format!("{}:{}", libc::getuid(), libc::getgid()) };
    let mut args = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        SCRIPT.to_owned(),
        "debian.sh".to_owned(),
        "fetch".to_owned(),
        format!("{MOUNT}/debian/{}/{key}.partial", set.release),
        owner,
    ];
    args.extend(set.names.iter().cloned());
    let ran = super::run(
        engine,
        Job {
            image: &set.image(),
            args,
            cache: &cache,
            mount: MOUNT,
            as_root: true,
            timeout: TIMEOUT,
            prefix: "packages",
        },
        &image_hint(set),
    )
    .await;
    let ran = match ran {
        Ok(ran) if ran.exit_code == 0 => ran,
        Ok(ran) => {
            let _ = fs::remove_dir_all(&partial);
            bail!(
                "the packages `{}` for {} could not be resolved (exit code {}); wanted by {}\nhint: apt-get's messages are above; check the names and versions in the repository",
                set.names.join(" "),
                set.release,
                ran.exit_code,
                set.wanted_by.join(", ")
            );
        }
        Err(err) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(err);
        }
    };
    drop(ran);
    let target = release_dir.join(&key);
    let _ = fs::remove_dir_all(&target);
    fs::rename(&partial, &target)
        .with_context(|| format!("failed to put `{}` in the cache", target.display()))?;
    cached(&cache, set)?.context("the resolved packages are not in the cache")
}

/// What a set would download, without downloading: each package's file name and size.
pub async fn probe(engine: &dyn Engine, set: &PackageSet) -> anyhow::Result<Vec<(String, u64)>> {
    let cache = cache_dir()?;
    let mut args = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        SCRIPT.to_owned(),
        "debian.sh".to_owned(),
        "probe".to_owned(),
    ];
    args.extend(set.names.iter().cloned());
    let ran = super::run(
        engine,
        Job {
            image: &set.image(),
            args,
            cache: &cache,
            mount: MOUNT,
            as_root: true,
            timeout: TIMEOUT,
            prefix: "packages",
        },
        &image_hint(set),
    )
    .await?;
    if ran.exit_code != 0 {
        bail!(
            "the packages `{}` for {} could not be resolved (exit code {})\nhint: apt-get's messages are above; check the names and versions in the repository",
            set.names.join(" "),
            set.release,
            ran.exit_code
        );
    }
    Ok(parse_uris(&ran.stdout))
}

/// Reads apt-get's `--print-uris` lines: `'URI' FILE SIZE HASH`.
fn parse_uris(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .filter(|line| line.starts_with('\''))
        .filter_map(|line| {
            let mut parts = line.split_whitespace().skip(1);
            let file = parts.next()?.to_owned();
            let size = parts.next()?.parse().ok()?;
            Some((file, size))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_uris_lines_give_files_and_sizes() {
        let out = "'http://deb.debian.org/debian/pool/main/j/jq/jq_1.6-2.1+deb12u2_amd64.deb' jq_1.6-2.1+deb12u2_amd64.deb 64000 SHA256:abc\nnoise\n";
        assert_eq!(
            parse_uris(out),
            [("jq_1.6-2.1+deb12u2_amd64.deb".to_owned(), 64000)]
        );
    }

    #[test]
    fn imported_packages_serve_a_set_their_index_covers() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("packages/debian/bookworm");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("Packages"),
            "Package: jq\nVersion: 1.6-2.1+deb12u2\nFilename: ./jq.deb\n\nPackage: libjq1\nVersion: 1.6-2.1+deb12u2\n",
        )
        .unwrap();
        fs::write(dir.join("Release"), "").unwrap();
        let set = |names: &[&str]| PackageSet {
            release: "bookworm".to_owned(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            wanted_by: Vec::new(),
        };
        let found = imported(base.path(), &set(&["jq", "libjq1=1.6-2.1+deb12u2"]))
            .unwrap()
            .unwrap();
        assert!(found.imported);
        assert_eq!(found.files.len(), 2);
        assert!(imported(base.path(), &set(&["jq=1.7"])).unwrap().is_none());
        assert!(imported(base.path(), &set(&["curl"])).unwrap().is_none());
        let mut other = set(&["jq"]);
        other.release = "trixie".to_owned();
        assert!(imported(base.path(), &other).unwrap().is_none());
    }

    #[test]
    fn a_set_is_named_by_its_release_and_names() {
        let set = |names: &[&str]| PackageSet {
            release: "bookworm".to_owned(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            wanted_by: Vec::new(),
        };
        assert_eq!(set(&["jq"]).key(), set(&["jq"]).key());
        assert_ne!(set(&["jq"]).key(), set(&["jq", "curl"]).key());
        assert_eq!(set(&["jq"]).image(), "e-kits/debian:bookworm");
    }
}
