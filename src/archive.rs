//! The offline archive of `e export` and `e import`: its layout, its manifest, writing it, and
//! verifying every byte of it before anything is changed.
//!
//! An archive is a plain, uncompressed tar holding, in this order:
//!
//! ```text
//! files/<sha256>/<name>   the files of the modules' bills of materials
//! packages/debian/<release>/<file>
//!                         their Debian packages with every dependency, and the index of
//!                         that flat apt repository (Packages, Packages.gz, Release)
//! images.tar              one `docker save` stream of every image (each layer once)
//! bin/e                   the e binary that wrote the archive
//! environment/settings.json, environment/<module>-config.yml
//!                         the environment's configuration: e's settings, the modules' configs
//!                         (secret values as `***`)
//! repository.yaml         the exported module versions, as a repository
//! shared/...              with `--with-state`: the shared directory, secret values as `***`
//! manifest.json           last: format, e version, modules, images, and the size and sha256
//!                         of every other entry
//! ```
//!
//! The manifest comes last because it holds the sha256 of `images.tar`, which is known only
//! once the engine has streamed it. `images.tar` is never staged: its header is written with
//! size 0, the stream follows (hashed as it goes), and the header is rewritten in place.
//! An archive is written to `FILE.partial` and renamed at the end, so a failed export leaves
//! nothing half-written. This file neither prints nor talks to the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The archive format this e writes; it reads this one and the ones before. 2 added the
/// Debian packages, e's binary and the environment's configuration.
pub const FORMAT: u32 = 2;
/// The oldest format this e reads.
const OLDEST_FORMAT: u32 = 1;
/// The manifest's entry.
pub const MANIFEST: &str = "manifest.json";
/// The entry holding the `docker save` stream of every image.
pub const IMAGES: &str = "images.tar";
/// The entry holding the exported module versions.
pub const REPOSITORY: &str = "repository.yaml";
/// The folder of the bill-of-materials files, in archives and next to the repository file.
pub const FILES_DIR: &str = "files";
/// The folder of the shared directory's files in archives.
pub const SHARED_DIR: &str = "shared";
/// The entry holding the e binary that wrote the archive.
pub const E_BINARY: &str = "bin/e";
/// The folder of the environment's configuration in archives.
pub const ENVIRONMENT_DIR: &str = "environment";
/// The entry holding e's settings.
pub const SETTINGS: &str = "environment/settings.json";

/// The largest manifest or repository e reads into memory from an archive.
const MAX_TEXT_ENTRY: u64 = 64 * 1024 * 1024;
/// The buffer size for reading and writing archives.
const BUFFER: usize = 1 << 20;
/// The size of a tar block.
const BLOCK: u64 = 512;

/// The table of contents of an archive, and what makes each entry checkable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The archive format ([`FORMAT`]).
    pub format: u32,
    /// The version of e that wrote the archive.
    pub e_version: String,
    /// When it was written (RFC 3339, UTC).
    pub created: String,
    /// The module versions in `repository.yaml`, as `module@version`.
    pub modules: Vec<String>,
    /// The image references in `images.tar`.
    pub images: Vec<String>,
    /// Whether the archive holds a shared directory (`shared/`).
    #[serde(default)]
    pub state: bool,
    /// The `shared/` entries in which secret values were replaced by `***`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
    /// The package sets under `packages/`, as the bills of materials named them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageSetEntry>,
    /// The entry of the e binary that wrote the archive (format 2 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_binary: Option<String>,
    /// The entries of the environment's configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<String>,
    /// Every other entry, in archive order.
    pub entries: Vec<ManifestEntry>,
}

/// One package set of an archive: the names the bills of materials list for a release, which
/// its folder holds with their dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSetEntry {
    /// The distribution (`debian`).
    pub distribution: String,
    /// The release (`bookworm`).
    pub release: String,
    /// The names asked for.
    pub names: Vec<String>,
}

/// One entry of an archive: where it is, how big, and its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// The path inside the archive.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The sha256 of its bytes, in lowercase hexadecimal.
    pub sha256: String,
}

impl Manifest {
    /// Parses a manifest, refusing formats this e does not know with a hint to upgrade.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Manifest> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).context("`manifest.json` is not valid JSON")?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(format) if (u64::from(OLDEST_FORMAT)..=u64::from(FORMAT)).contains(&format) => {}
            Some(format) if format > u64::from(FORMAT) => bail!(
                "the archive has format {format}, newer than this e reads ({FORMAT})\n\
                 hint: import it with the version of e that wrote it, or a newer one"
            ),
            _ => bail!("`manifest.json` has no known `format`"),
        }
        serde_json::from_value(value).context("`manifest.json` does not describe an e archive")
    }
}

/// The sha256 of some bytes, in lowercase hexadecimal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(digest.len() * 2);
    for byte in digest {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// Whether a text is a sha256 in lowercase hexadecimal.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a path inside an archive: relative, `/`-separated, without `.`, `..`, empty parts,
/// backslashes or control characters, so that it can never point outside where it is put.
pub fn check_entry_path(path: &str) -> anyhow::Result<()> {
    let problem = if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') {
        Some("is absolute")
    } else if path.contains('\\') || path.chars().any(char::is_control) {
        Some("holds a backslash or a control character")
    } else if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        Some("holds an empty, `.` or `..` part")
    } else {
        None
    };
    match problem {
        Some(problem) => bail!("entry `{}` {problem}", path.escape_debug()),
        None => Ok(()),
    }
}

/// The shared directory's files an archive may hold, relative to the directory: the state, its
/// backup, module configs, and e's records (installed modules, lineage and serial, history,
/// mount directories).
/// Never the lock, the snapshot or temporary files.
pub fn is_shared_file(relative: &str) -> bool {
    match relative.split_once('/') {
        None => {
            relative == crate::store::STATE_FILE
                || relative == crate::store::BACKUP_FILE
                || relative.ends_with("-config.yml")
        }
        Some((".e", rest)) => {
            rest == "installed.json"
                || rest == "serial.json"
                || rest.starts_with("history/")
                || rest.starts_with("mounts/")
        }
        Some(_) => false,
    }
}

/// Which entries an archive may hold; anything else is refused.
fn check_entry_kind(path: &str) -> anyhow::Result<()> {
    let known = match path.split_once('/') {
        None => [MANIFEST, IMAGES, REPOSITORY].contains(&path),
        Some(("bin", "e")) => true,
        Some((ENVIRONMENT_DIR, rest)) => {
            rest == "settings.json"
                || (rest.ends_with("-config.yml")
                    && crate::repository::model::check_file_name(rest).is_ok())
        }
        Some(("packages", rest)) => match rest.split('/').collect::<Vec<_>>()[..] {
            ["debian", release, file] => {
                crate::repository::packages::check_release(release).is_ok() && is_package_file(file)
            }
            _ => false,
        },
        Some((FILES_DIR, rest)) => match rest.split_once('/') {
            Some((sha256, name)) => {
                is_sha256(sha256) && crate::repository::model::check_file_name(name).is_ok()
            }
            None => false,
        },
        Some((SHARED_DIR, rest)) => is_shared_file(rest),
        Some(_) => false,
    };
    if !known {
        bail!("entry `{path}` is not one an e archive holds");
    }
    Ok(())
}

/// Whether a name is one apt gives a downloaded package or the index of a flat repository:
/// letters, digits and `-_.+~%` (apt writes an epoch's `:` as `%3a`).
fn is_package_file(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'~' | b'%')
        })
}

/// The file being written: a buffered file that knows its position.
struct Sink {
    file: BufWriter<File>,
    position: u64,
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.position += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes an archive to `FILE.partial`, renamed to `FILE` by [`ArchiveWriter::finish`]; the
/// partial file is removed if the writer is dropped before.
pub struct ArchiveWriter {
    builder: Option<tar::Builder<Sink>>,
    partial: PathBuf,
    target: PathBuf,
    entries: Vec<ManifestEntry>,
    mtime: u64,
}

/// What [`ArchiveWriter::finish`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The archive's size in bytes.
    pub size: u64,
    /// The sha256 of the manifest, which pins every entry: one hash names the whole archive.
    pub manifest_sha256: String,
}

impl ArchiveWriter {
    /// Starts writing `target` (through `target.partial`); refuses an existing `target` unless
    /// `force`.
    pub fn create(target: &Path, force: bool) -> anyhow::Result<ArchiveWriter> {
        if !force && fs::symlink_metadata(target).is_ok() {
            bail!(
                "`{}` already exists\nhint: choose another file, or pass `--force` to overwrite it",
                target.display()
            );
        }
        let mut partial = target.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial)
            .with_context(|| format!("failed to create `{}`", partial.display()))?;
        let sink = Sink {
            file: BufWriter::with_capacity(BUFFER, file),
            position: 0,
        };
        let mut builder = tar::Builder::new(sink);
        builder.mode(tar::HeaderMode::Deterministic);
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(ArchiveWriter {
            builder: Some(builder),
            partial,
            target: target.to_owned(),
            entries: Vec::new(),
            mtime,
        })
    }

    fn builder(&mut self) -> &mut tar::Builder<Sink> {
        self.builder
            .as_mut()
            .expect("the builder is only taken by finish, which consumes the writer")
    }

    fn header(&self, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header
    }

    /// Appends an entry held in memory.
    pub fn append_bytes(&mut self, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.append_reader(path, bytes.len() as u64, bytes)
            .map(drop)
    }

    /// Appends an entry of `size` bytes read from `reader`, and returns its sha256; fails if
    /// the reader gives a different number of bytes.
    pub fn append_reader(
        &mut self,
        path: &str,
        size: u64,
        reader: impl Read,
    ) -> anyhow::Result<String> {
        check_entry_path(path)?;
        let mut header = self.header(size);
        let mut hashing = HashingReader::new(reader.take(size));
        self.builder()
            .append_data(&mut header, path, &mut hashing)
            .with_context(|| format!("failed to write `{path}` into the archive"))?;
        if hashing.count != size {
            bail!(
                "`{path}` changed while it was archived: {} bytes instead of {size}",
                hashing.count
            );
        }
        let sha256 = hashing.finish();
        self.entries.push(ManifestEntry {
            path: path.to_owned(),
            size,
            sha256: sha256.clone(),
        });
        Ok(sha256)
    }

    /// Starts an entry whose size is not known in advance; write its bytes to the returned
    /// [`EntryStream`] and call [`EntryStream::finish`].
    pub fn begin_stream(&mut self, path: &str) -> anyhow::Result<EntryStream<'_>> {
        check_entry_path(path)?;
        if path.len() > 100 {
            bail!("a streamed entry needs a path of at most 100 bytes, not `{path}`");
        }
        let mut header = self.header(0);
        header
            .set_path(path)
            .with_context(|| format!("invalid entry path `{path}`"))?;
        header.set_cksum();
        let sink = self.builder().get_mut();
        let header_at = sink.position;
        sink.write_all(header.as_bytes())
            .with_context(|| format!("failed to write `{path}` into the archive"))?;
        Ok(EntryStream {
            writer: self,
            path: path.to_owned(),
            header,
            header_at,
            hasher: Sha256::new(),
            count: 0,
        })
    }

    /// Writes the manifest (with the entries written so far), ends the archive, syncs it to
    /// disk and renames it into place.
    pub fn finish(mut self, mut manifest: Manifest) -> anyhow::Result<Written> {
        manifest.entries = std::mem::take(&mut self.entries);
        let bytes = serde_json::to_vec_pretty(&manifest)?;
        let mut header = self.header(bytes.len() as u64);
        self.builder()
            .append_data(&mut header, MANIFEST, bytes.as_slice())
            .context("failed to write the manifest into the archive")?;
        let builder = self.builder.take().expect("finish takes the builder once");
        let sink = builder.into_inner().context("failed to end the archive")?;
        let size = sink.position;
        let file = sink
            .file
            .into_inner()
            .map_err(|err| err.into_error())
            .context("failed to write the archive")?;
        file.sync_all()
            .context("failed to sync the archive to disk")?;
        fs::rename(&self.partial, &self.target).with_context(|| {
            format!(
                "failed to rename `{}` to `{}`",
                self.partial.display(),
                self.target.display()
            )
        })?;
        Ok(Written {
            size,
            manifest_sha256: sha256_hex(&bytes),
        })
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        // Not finished: an error or an interrupt came first. Leave nothing half-written.
        if self.builder.is_some() {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// An entry being streamed into an archive; its header is rewritten with the real size by
/// [`EntryStream::finish`].
pub struct EntryStream<'a> {
    writer: &'a mut ArchiveWriter,
    path: String,
    header: tar::Header,
    header_at: u64,
    hasher: Sha256,
    count: u64,
}

impl Write for EntryStream<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.writer.builder().get_mut().write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.builder().get_mut().flush()
    }
}

impl EntryStream<'_> {
    /// Rewrites the header with the size streamed, pads the entry, and records it; returns its
    /// size and sha256.
    pub fn finish(self) -> anyhow::Result<(u64, String)> {
        let EntryStream {
            writer,
            path,
            mut header,
            header_at,
            hasher,
            count,
        } = self;
        let failed = || format!("failed to write `{path}` into the archive");
        header.set_size(count);
        header.set_cksum();
        let sink = writer.builder().get_mut();
        let end = sink.position;
        sink.file
            .seek(SeekFrom::Start(header_at))
            .with_context(failed)?;
        sink.file
            .write_all(header.as_bytes())
            .with_context(failed)?;
        sink.file.seek(SeekFrom::Start(end)).with_context(failed)?;
        let padding = (BLOCK - count % BLOCK) % BLOCK;
        sink.write_all(&vec![0; padding as usize])
            .with_context(failed)?;
        let sha256 = hex(&hasher.finalize());
        writer.entries.push(ManifestEntry {
            path,
            size: count,
            sha256: sha256.clone(),
        });
        Ok((count, sha256))
    }
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sha256 of what was read.
    pub fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.count += read as u64;
        Ok(read)
    }
}

/// Where an entry's bytes are in the archive file, and what they must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The offset of its first byte in the archive file.
    pub offset: u64,
    /// Its size.
    pub size: u64,
    /// Its sha256.
    pub sha256: String,
}

/// An archive whose every entry was read and matched its manifest.
#[derive(Debug)]
pub struct Verified {
    /// The archive file.
    pub path: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// The sha256 of the manifest, which names the archive.
    pub manifest_sha256: String,
    /// The text of `repository.yaml`.
    pub repository: String,
    /// The image references `images.tar` tags, as the engine will name them.
    pub image_tags: Vec<String>,
    /// Every entry but the manifest, by path.
    pub entries: BTreeMap<String, Located>,
}

/// The refusal of an archive that does not match its manifest.
fn damaged(path: &Path, what: String) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` is damaged or was changed: {what}; nothing was imported\n\
         hint: copy the archive again (compare `sha256sum` on both machines), or export it again",
        path.display()
    )
}

/// Reads the whole archive once: checks every entry's path, kind, size and sha256 against the
/// manifest, that none is missing or extra, and that `images.tar` tags the images the manifest
/// lists. `read` is told of every byte read, for progress.
pub fn verify(path: &Path, read: &mut dyn FnMut(u64)) -> anyhow::Result<Verified> {
    let file = File::open(path)
        .with_context(|| format!("failed to open the archive `{}`", path.display()))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(BUFFER, file));
    let mut found: BTreeMap<String, Located> = BTreeMap::new();
    let mut manifest_bytes = None;
    let mut repository = None;
    let mut image_tags = Vec::new();
    let entries = archive
        .entries()
        .map_err(|err| damaged(path, format!("it is not a tar archive ({err})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|err| {
            damaged(
                path,
                format!("it is truncated or not a tar archive ({err})"),
            )
        })?;
        let name = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| damaged(path, "an entry's path is not UTF-8".to_owned()))?;
        check_entry_path(&name).map_err(|err| damaged(path, format!("{err:#}")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(damaged(
                path,
                format!("entry `{name}` is not a regular file"),
            ));
        }
        check_entry_kind(&name).map_err(|err| damaged(path, format!("{err:#}")))?;
        if found.contains_key(&name) || (name == MANIFEST && manifest_bytes.is_some()) {
            return Err(damaged(path, format!("entry `{name}` appears twice")));
        }
        let size = entry.size();
        let offset = entry.raw_file_position();
        let mut hashing = HashingReader::new(Progressing {
            inner: &mut entry,
            read: &mut *read,
        });
        let mut text = None;
        if name == MANIFEST || name == REPOSITORY {
            if size > MAX_TEXT_ENTRY {
                return Err(damaged(
                    path,
                    format!("`{name}` is {size} bytes, more than e accepts"),
                ));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            hashing
                .read_to_end(&mut bytes)
                .map_err(|err| damaged(path, format!("`{name}` cannot be read ({err})")))?;
            text = Some(bytes);
        } else if name == IMAGES {
            image_tags = saved_tags(&mut hashing);
            io::copy(&mut hashing, &mut io::sink())
                .map_err(|err| damaged(path, format!("`{name}` cannot be read ({err})")))?;
        } else {
            io::copy(&mut hashing, &mut io::sink())
                .map_err(|err| damaged(path, format!("`{name}` cannot be read ({err})")))?;
        }
        if hashing.count() != size {
            return Err(damaged(
                path,
                format!(
                    "it is truncated: `{name}` has {} of its {size} bytes",
                    hashing.count()
                ),
            ));
        }
        let sha256 = hashing.finish();
        if name == MANIFEST {
            manifest_bytes = text;
            continue;
        }
        if name == REPOSITORY {
            let text = String::from_utf8(text.unwrap_or_default())
                .map_err(|_| damaged(path, "`repository.yaml` is not UTF-8".to_owned()))?;
            repository = Some(text);
        }
        found.insert(
            name,
            Located {
                offset,
                size,
                sha256,
            },
        );
    }
    let Some(manifest_bytes) = manifest_bytes else {
        return Err(damaged(
            path,
            "it has no `manifest.json`: it is truncated, or not an e archive".to_owned(),
        ));
    };
    let manifest =
        Manifest::parse(&manifest_bytes).map_err(|err| damaged(path, format!("{err:#}")))?;
    check_against_manifest(&manifest, &found).map_err(|what| damaged(path, what))?;
    let repository =
        repository.ok_or_else(|| damaged(path, "it has no `repository.yaml`".to_owned()))?;
    check_images(&manifest, &image_tags, found.contains_key(IMAGES))
        .map_err(|what| damaged(path, what))?;
    Ok(Verified {
        path: path.to_owned(),
        manifest_sha256: sha256_hex(&manifest_bytes),
        manifest,
        repository,
        image_tags,
        entries: found,
    })
}

/// Compares the entries found with those the manifest lists: same set, sizes and hashes.
fn check_against_manifest(
    manifest: &Manifest,
    found: &BTreeMap<String, Located>,
) -> Result<(), String> {
    let mut listed = BTreeSet::new();
    for entry in &manifest.entries {
        if !listed.insert(entry.path.as_str()) {
            return Err(format!("the manifest lists `{}` twice", entry.path));
        }
        let Some(located) = found.get(&entry.path) else {
            return Err(format!(
                "`{}` is in the manifest but not in the archive",
                entry.path
            ));
        };
        if located.size != entry.size {
            return Err(format!(
                "`{}` has {} bytes but the manifest says {}",
                entry.path, located.size, entry.size
            ));
        }
        if located.sha256 != entry.sha256 {
            return Err(format!(
                "`{}` has sha256 {} but the manifest says {}",
                entry.path, located.sha256, entry.sha256
            ));
        }
    }
    if let Some(extra) = found.keys().find(|path| !listed.contains(path.as_str())) {
        return Err(format!(
            "`{extra}` is in the archive but not in the manifest"
        ));
    }
    let shared = found.keys().any(|path| path.starts_with("shared/"));
    if shared != manifest.state {
        return Err("the manifest and the `shared/` entries disagree about the state".to_owned());
    }
    if let Some(missing) = manifest
        .redacted
        .iter()
        .find(|path| !found.contains_key(*path))
    {
        return Err(format!(
            "the manifest says `{missing}` was redacted, but it is not in the archive"
        ));
    }
    Ok(())
}

/// Checks that `images.tar` tags every image the manifest lists (and is there if any is).
fn check_images(manifest: &Manifest, tags: &[String], present: bool) -> Result<(), String> {
    if !present {
        return match manifest.images.first() {
            Some(image) => Err(format!(
                "it has no `{IMAGES}`, but the manifest lists image `{image}`"
            )),
            None => Ok(()),
        };
    }
    let tags: BTreeSet<String> = tags.iter().map(|tag| local_name(tag)).collect();
    match manifest
        .images
        .iter()
        .find(|image| !tags.contains(&local_name(image)))
    {
        Some(image) => Err(format!(
            "`{IMAGES}` does not hold image `{image}` the manifest lists"
        )),
        None => Ok(()),
    }
}

/// An image reference with a tag, as `docker save` names it (`busybox` is `busybox:latest`).
pub fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let reference = image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

/// An image's name as engines compare local images: with its tag, and without the
/// `localhost/` that Podman gives every image that came from no registry (Podman saves and
/// loads `e-modules/azi:0.1.0` as `localhost/e-modules/azi:0.1.0`).
fn local_name(image: &str) -> String {
    let tagged = with_tag(image);
    match tagged.strip_prefix("localhost/") {
        Some(rest) => rest.to_owned(),
        None => tagged,
    }
}

/// Whether two references name the same local image, in Docker's or Podman's spelling.
pub fn same_image(a: &str, b: &str) -> bool {
    local_name(a) == local_name(b)
}

/// The tags in the `manifest.json` of a `docker save` stream; empty if there is none. Reads
/// the stream up to its end-of-archive blocks; the caller reads what remains.
fn saved_tags(stream: &mut impl Read) -> Vec<String> {
    #[derive(Deserialize)]
    struct Saved {
        #[serde(rename = "RepoTags", default)]
        repo_tags: Option<Vec<String>>,
    }
    let mut tags = Vec::new();
    let mut inner = tar::Archive::new(stream);
    let Ok(entries) = inner.entries() else {
        return tags;
    };
    for entry in entries {
        let Ok(mut entry) = entry else {
            break;
        };
        if entry.path_bytes().as_ref() == b"manifest.json" && entry.size() <= MAX_TEXT_ENTRY {
            let mut bytes = Vec::new();
            if entry.read_to_end(&mut bytes).is_ok()
                && let Ok(saved) = serde_json::from_slice::<Vec<Saved>>(&bytes)
            {
                tags.extend(
                    saved
                        .into_iter()
                        .flat_map(|s| s.repo_tags.unwrap_or_default()),
                );
            }
        }
    }
    tags
}

/// Tells a callback how many bytes pass through a reader.
struct Progressing<'a, R> {
    inner: R,
    read: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Progressing<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        (self.read)(read as u64);
        Ok(read)
    }
}

impl Verified {
    /// Opens an entry for reading from the archive file; at its end the reader checks the
    /// bytes again against the verified sha256 and fails if they differ (the file changed
    /// since it was verified), so a consumer never takes changed bytes as complete.
    pub fn open(&self, path: &str) -> anyhow::Result<CheckedEntry> {
        let located = self
            .entries
            .get(path)
            .with_context(|| format!("the archive has no `{path}`"))?;
        let mut file = File::open(&self.path)
            .with_context(|| format!("failed to open the archive `{}`", self.path.display()))?;
        file.seek(SeekFrom::Start(located.offset))
            .with_context(|| format!("failed to read `{path}` from the archive"))?;
        Ok(CheckedEntry {
            path: path.to_owned(),
            expected: located.sha256.clone(),
            size: located.size,
            hashing: HashingReader::new(BufReader::with_capacity(BUFFER, file).take(located.size)),
        })
    }
}

/// An entry's bytes, checked against their sha256 when the end is reached.
pub struct CheckedEntry {
    path: String,
    expected: String,
    size: u64,
    hashing: HashingReader<io::Take<BufReader<File>>>,
}

impl Read for CheckedEntry {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.hashing.read(buffer)?;
        if read == 0 && !buffer.is_empty() {
            let count = self.hashing.count;
            let actual = hex(&self.hashing.hasher.clone().finalize());
            if count != self.size || actual != self.expected {
                return Err(io::Error::other(format!(
                    "`{}` changed in the archive since it was verified",
                    self.path
                )));
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            e_version: "0.1.0".to_owned(),
            created: "2025-01-01T00:00:00Z".to_owned(),
            modules: vec!["azi@0.1.0".to_owned()],
            images: vec![],
            state: false,
            redacted: vec![],
            packages: vec![],
            e_binary: None,
            environment: vec![],
            entries: vec![],
        }
    }

    #[test]
    fn podman_names_are_the_same_images() {
        assert!(same_image(
            "e-modules/azi:0.1.0",
            "localhost/e-modules/azi:0.1.0"
        ));
        assert!(same_image("busybox", "docker.io/library/busybox:latest"));
        assert!(!same_image("e-modules/azi:0.1.0", "e-modules/azi:0.2.0"));
        assert!(!same_image(
            "e-modules/azi:0.1.0",
            "127.0.0.1:5000/e-modules/azi:0.1.0"
        ));
    }

    #[test]
    fn entry_paths_cannot_escape() {
        for good in [
            "manifest.json",
            "files/ab/c.tgz",
            "shared/.e/history/1.json",
        ] {
            check_entry_path(good).unwrap_or_else(|err| panic!("{good}: {err:#}"));
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "files/../../x",
            "a//b",
            "./a",
            "a/.",
            "a\\b",
            "a\nb",
        ] {
            assert!(check_entry_path(bad).is_err(), "{bad:?} must be refused");
        }
        let sha = "a".repeat(64);
        assert!(check_entry_kind(&format!("files/{sha}/tool.tgz")).is_ok());
        assert!(check_entry_kind("files/abc/tool.tgz").is_err());
        assert!(check_entry_kind("shared/state.yml").is_ok());
        assert!(check_entry_kind("shared/.e/lock").is_err());
        assert!(check_entry_kind("shared/.e/tmp/x").is_err());
        assert!(check_entry_kind("other.txt").is_err());
        assert!(check_entry_kind("bin/e").is_ok());
        assert!(check_entry_kind("bin/sh").is_err());
        assert!(check_entry_kind("environment/settings.json").is_ok());
        assert!(check_entry_kind("environment/pg-config.yml").is_ok());
        assert!(check_entry_kind("environment/state.yml").is_err());
        assert!(check_entry_kind("packages/debian/bookworm/libfoo_1%3a2.0-1_amd64.deb").is_ok());
        assert!(check_entry_kind("packages/debian/bookworm/Packages.gz").is_ok());
        assert!(check_entry_kind("packages/debian/Bookworm/x.deb").is_err());
        assert!(check_entry_kind("packages/debian/bookworm/sub/x.deb").is_err());
        assert!(check_entry_kind("packages/fedora/f40/x.rpm").is_err());
    }

    #[test]
    fn manifest_round_trips_and_refuses_newer_formats() {
        let mut written = manifest();
        written.entries.push(ManifestEntry {
            path: REPOSITORY.to_owned(),
            size: 3,
            sha256: sha256_hex(b"abc"),
        });
        let bytes = serde_json::to_vec_pretty(&written).unwrap();
        assert_eq!(Manifest::parse(&bytes).unwrap(), written);
        let newer = String::from_utf8(bytes)
            .unwrap()
            .replace("\"format\": 2", "\"format\": 3");
        let err = Manifest::parse(newer.as_bytes()).unwrap_err();
        assert!(
            format!("{err:#}").contains("newer than this e reads"),
            "{err:#}"
        );
        let unknown = serde_json::json!({"format": 1, "e_version": "0.1.0", "created": "", "modules": [], "images": [], "entries": [], "signed": true});
        assert!(Manifest::parse(unknown.to_string().as_bytes()).is_err());
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256(&sha256_hex(b"")));
        assert!(!is_sha256(&"A".repeat(64)));
    }

    #[test]
    fn written_archives_verify_and_streamed_entries_get_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut writer = ArchiveWriter::create(&path, false).unwrap();
        let long = format!("files/{}/{}", sha256_hex(b"tool"), "t".repeat(150));
        writer.append_bytes(&long, b"tool").unwrap();
        let mut stream = writer.begin_stream(IMAGES).unwrap();
        stream.write_all(&vec![7u8; 1000]).unwrap();
        let (size, _) = stream.finish().unwrap();
        assert_eq!(size, 1000);
        writer.append_bytes(REPOSITORY, b"version: v1\n").unwrap();
        writer.finish(manifest()).unwrap();
        assert!(!dir.path().join("a.tar.partial").exists());

        let verified = verify(&path, &mut |_| {}).unwrap();
        assert_eq!(verified.entries[IMAGES].size, 1000);
        assert_eq!(verified.repository, "version: v1\n");
        let mut bytes = Vec::new();
        verified
            .open(&long)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes, b"tool");

        // An existing file is kept unless forced; a dropped writer leaves nothing behind.
        assert!(ArchiveWriter::create(&path, false).is_err());
        let other = dir.path().join("b.tar");
        drop(ArchiveWriter::create(&other, false).unwrap());
        assert!(!other.exists() && !dir.path().join("b.tar.partial").exists());
    }

    #[test]
    fn changed_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut writer = ArchiveWriter::create(&path, false).unwrap();
        writer.append_bytes(REPOSITORY, b"version: v1\n").unwrap();
        writer.finish(manifest()).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.windows(11).position(|w| w == b"version: v1").unwrap();
        bytes[at] = b'V';
        fs::write(&path, &bytes).unwrap();
        let err = verify(&path, &mut |_| {}).unwrap_err();
        assert!(
            format!("{err:#}").contains("`repository.yaml` has sha256"),
            "{err:#}"
        );

        fs::write(&path, &bytes[..700]).unwrap();
        let err = verify(&path, &mut |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
    }
}
