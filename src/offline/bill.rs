//! The bills of materials of some module versions, gathered for an export: every file (by
//! `path`, `file://` URL, or `http(s)` URL through the downloader's cache) and every Debian
//! package set, found on this machine or fetched when missing, or, for `--dry-run`, only sized.
//!
//! `commands/export.rs` decides what goes into an archive and writes it; this file finds where
//! each item's bytes are.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};

use super::debian::{self, PackageSet, Resolved};
use super::download::{self, Wanted};
use crate::archive::{self, FILES_DIR};
use crate::output;
use crate::repository::Entry;
use crate::runtime::Engine;

/// Where the Debian packages are in archives and stores: `packages/debian/<release>/`.
pub const PACKAGES_DIR: &str = "packages";

/// One file of a bill of materials, found on this machine (or to download into the cache).
#[derive(Debug)]
pub struct FileSource {
    /// ``module `bmk@0.1.0` file `tool.tgz` ``, for messages.
    pub what: String,
    /// Its name under `files/<sha256>/`.
    pub name: String,
    /// The sha256 the repository pins.
    pub sha256: String,
    /// Where its bytes are (in the download cache for a URL).
    pub source: PathBuf,
    /// Its size; for a file still to download, what the server says (or 0).
    pub size: u64,
    /// For a file by `http(s)` URL that the cache does not hold yet: the URL.
    pub download: Option<String>,
    /// Whether it comes by `http(s)` URL (through the cache).
    pub remote: bool,
}

impl FileSource {
    /// Its path in archives: `files/<sha256>/<name>`.
    pub fn entry_path(&self) -> String {
        format!("{FILES_DIR}/{}/{}", self.sha256, self.name)
    }

    fn wanted(&self, url: &str) -> Wanted {
        Wanted {
            what: self.what.clone(),
            name: self.name.clone(),
            url: url.to_owned(),
            sha256: self.sha256.clone(),
        }
    }
}

/// Finds every file of the bills of materials: `path` (relative to the repository file's
/// directory), a `file://` URL, or an `http(s)://` URL, looked up in the download cache.
pub fn files(entries: &[Entry<'_>], repository_path: &Path) -> anyhow::Result<Vec<FileSource>> {
    let base = repository_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut files: Vec<FileSource> = Vec::new();
    let mut cache = None;
    for entry in entries {
        for file in &entry.version.requirements.files {
            let name = file.file_name().to_owned();
            if files
                .iter()
                .any(|f| f.sha256 == file.sha256 && f.name == name)
            {
                continue;
            }
            let what = format!("module `{}` file `{name}`", entry.id());
            let source = match (&file.path, &file.url) {
                (Some(path), _) => base.join(path),
                (None, Some(url)) if is_remote(url) => {
                    // The URL goes to the downloader as one line of its list.
                    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        bail!(
                            "{what}: the URL `{}` holds a space or a control character\nhint: write it percent-encoded (`%20`)",
                            url.escape_debug()
                        );
                    }
                    let cache = match &cache {
                        Some(cache) => cache,
                        None => cache.insert(super::cache_dir()?),
                    };
                    let path = download::cached_path(cache, &file.sha256, &name);
                    let size = fs::metadata(&path).ok().filter(|m| m.is_file());
                    files.push(FileSource {
                        what,
                        name,
                        sha256: file.sha256.clone(),
                        size: size.as_ref().map_or(0, fs::Metadata::len),
                        download: size.is_none().then(|| url.clone()),
                        remote: true,
                        source: path,
                    });
                    continue;
                }
                (None, Some(url)) => local_url(url).map_err(|err| anyhow!("{what}: {err}"))?,
                (None, None) => bail!("{what}: it has neither `path` nor `url`"),
            };
            let meta = fs::metadata(&source).with_context(|| {
                format!(
                    "{what}: cannot read `{}`\nhint: put the file there, or correct its `path` in the repository",
                    source.display()
                )
            })?;
            if !meta.is_file() {
                bail!("{what}: `{}` is not a regular file", source.display());
            }
            files.push(FileSource {
                what,
                name,
                sha256: file.sha256.clone(),
                source,
                size: meta.len(),
                download: None,
                remote: false,
            });
        }
    }
    Ok(files)
}

fn is_remote(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// Downloads, in one downloader container, every file still to download; afterwards each
/// one's `source` is whole in the cache.
pub async fn fetch_files(engine: &dyn Engine, files: &mut [FileSource]) -> anyhow::Result<()> {
    let wanted: Vec<Wanted> = files
        .iter()
        .filter_map(|f| f.download.as_deref().map(|url| f.wanted(url)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    output::note(&format!(
        "e: downloading {} file(s) of the bills of materials",
        wanted.len()
    ));
    download::fetch(engine, &wanted).await?;
    for file in files.iter_mut().filter(|f| f.download.is_some()) {
        file.size = fs::metadata(&file.source)
            .with_context(|| format!("{}: not in the cache after its download", file.what))?
            .len();
        file.download = None;
    }
    Ok(())
}

/// Asks for the size of every file still to download, without downloading; a file that cannot
/// be had is an error, as it would be for the export.
pub async fn probe_files(engine: &dyn Engine, files: &mut [FileSource]) -> anyhow::Result<()> {
    let pending: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].download.is_some())
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let wanted: Vec<Wanted> = pending
        .iter()
        .map(|&i| files[i].wanted(files[i].download.as_deref().unwrap_or_default()))
        .collect();
    let sizes = download::probe(engine, &wanted).await?;
    let mut problems = Vec::new();
    for (&i, size) in pending.iter().zip(sizes) {
        match size {
            Ok(size) => files[i].size = size.unwrap_or(0),
            Err(reason) => problems.push(format!(
                "{} (`{}`): {reason}",
                files[i].what,
                files[i].download.as_deref().unwrap_or_default()
            )),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} file(s) to download cannot be had:\n  {}\nhint: check the URLs in the repository, and that this machine reaches them",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// A Debian package set of the export: resolved in the cache, or (for `--dry-run`) what it
/// would download.
#[derive(Debug)]
pub struct Packages {
    /// The set.
    pub set: PackageSet,
    /// Its folder in the cache, once resolved.
    pub resolved: Option<Resolved>,
    /// For a set not in the cache, what the resolver would download (file, size).
    pub to_download: Vec<(String, u64)>,
}

impl Packages {
    /// Its folder in archives: `packages/debian/<release>`.
    pub fn entry_dir(&self) -> String {
        format!("{PACKAGES_DIR}/debian/{}", self.set.release)
    }

    /// The bytes it holds (or would download).
    pub fn size(&self) -> u64 {
        match &self.resolved {
            Some(resolved) => resolved.files.iter().map(|(_, size)| size).sum(),
            None => self.to_download.iter().map(|(_, size)| size).sum(),
        }
    }
}

/// The package sets of these versions, each found beside the repository (`e import` put it
/// there), in the cache, or resolved by the resolver; with `dry_run`, a set found nowhere is
/// only sized.
pub async fn packages(
    engine: &dyn Engine,
    entries: &[Entry<'_>],
    repository_path: &Path,
    dry_run: bool,
) -> anyhow::Result<Vec<Packages>> {
    let sets = debian::sets(entries);
    if sets.is_empty() {
        return Ok(Vec::new());
    }
    let base = repository_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let cache = super::cache_dir()?;
    let mut all = Vec::new();
    for set in sets {
        let found = match debian::imported(base, &set)? {
            Some(resolved) => Some(resolved),
            None => debian::cached(&cache, &set)?,
        };
        let resolved = match found {
            Some(resolved) => Some(resolved),
            None if dry_run => None,
            None => {
                output::note(&format!(
                    "e: resolving {} Debian package(s) for {} with their dependencies",
                    set.names.len(),
                    set.release
                ));
                Some(debian::fetch(engine, &set).await?)
            }
        };
        let to_download = match resolved {
            Some(_) => Vec::new(),
            None => debian::probe(engine, &set).await?,
        };
        all.push(Packages {
            set,
            resolved,
            to_download,
        });
    }
    Ok(all)
}

/// The local path of a `file://` URL.
pub fn local_url(url: &str) -> anyhow::Result<PathBuf> {
    let Some(rest) = url.strip_prefix("file://") else {
        bail!("`{url}` is not a `file://`, `http://` or `https://` URL");
    };
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        bail!("`{url}` names another host; a `file://` URL must be `file:///absolute/path`");
    }
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    use std::os::unix::ffi::OsStringExt as _;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(decoded)))
}

/// The sha256 of a file.
pub fn hash_file(path: &Path) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut hashing = archive::HashingReader::new(io::BufReader::new(file));
    io::copy(&mut hashing, &mut io::sink())
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(hashing.finish())
}

/// Refuses a file whose bytes are not the ones the repository pins.
pub fn check_hash(file: &FileSource, actual: &str) -> anyhow::Result<()> {
    if actual != file.sha256 {
        bail!(
            "{} (`{}`): its sha256 is {actual}, but the repository says {}\n\
             hint: the file is not the one the module was written for; fetch the right one, or correct `sha256` if the file is right",
            file.what,
            file.source.display(),
            file.sha256
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_are_decoded() {
        assert_eq!(
            local_url("file:///srv/a%20b.tgz").unwrap(),
            PathBuf::from("/srv/a b.tgz")
        );
        assert_eq!(
            local_url("file://localhost/srv/x").unwrap(),
            PathBuf::from("/srv/x")
        );
        assert!(local_url("file://host/srv/x").is_err());
        assert!(local_url("ftp://example.com/x.tgz").is_err());
    }
}
