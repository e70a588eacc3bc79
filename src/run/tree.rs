//! A directory tree as data: the shared directory a method run gets, and what it left.
//!
//! A [`Tree`] holds regular files and directories only, keyed by relative path, so whatever a
//! module did can be checked as plain data before any of it reaches the shared directory.
//! Reading one ([`Tree::read_dir`] from a host directory, [`Tree::read_tar`] from the engine's
//! archive stream) is where a hostile module is met first: links, devices, FIFOs, sockets,
//! hard links, paths that leave the directory and oversized content are refused there, as soon
//! as they are seen and before their bytes are read. Writing one ([`Tree::write_dir`],
//! [`Tree::to_tar`]) never follows a link. This file does not decide what a module may change:
//! that is `check.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context as _, bail, ensure};
use sha2::{Digest as _, Sha256};

/// The state file's path in a tree.
pub const STATE_FILE: &str = "state.yml";

/// The longest path accepted in a tree, in bytes (Linux's `PATH_MAX`): it bounds the memory
/// the names of a deep tree take, whatever its entry count.
pub const MAX_PATH_BYTES: usize = 4096;

/// How much a tree may hold; reading stops as soon as one is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files and directories, the root not counted.
    pub max_entries: usize,
    /// The largest file.
    pub max_file_bytes: u64,
    /// The largest `state.yml`.
    pub max_state_bytes: u64,
    /// All files together.
    pub max_total_bytes: u64,
}

impl Limits {
    /// 10,000 entries, 32 MiB per file, 16 MiB for `state.yml`, 128 MiB in total.
    pub const DEFAULT: Limits = Limits {
        max_entries: 10_000,
        max_file_bytes: 32 * MIB,
        max_state_bytes: 16 * MIB,
        max_total_bytes: 128 * MIB,
    };
}

const MIB: u64 = 1024 * 1024;

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory, with its permission bits.
    Dir {
        /// Permission bits (`0o755`).
        mode: u32,
    },
    /// A regular file, with its bytes and permission bits.
    File {
        /// The content.
        bytes: Vec<u8>,
        /// Permission bits (`0o644`).
        mode: u32,
    },
}

/// Regular files and directories by relative path.
///
/// Keys are relative paths joined with `/`: never empty, no leading `/`, no `.` or `..`
/// components. Every directory is an entry of its own; the root is not an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// The entries, sorted by path (so a directory comes before what it holds).
    pub entries: BTreeMap<String, Node>,
}

/// Why a tree was refused: the path, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The offending path, relative to the tree's root (`.` for the root itself).
    pub path: String,
    /// A lowercase fragment that follows the path: `is a symbolic link; ...`.
    pub reason: String,
}

impl Refusal {
    /// A refusal of `path` because it `reason`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Refusal {
        Refusal {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.path, self.reason)
    }
}

impl std::error::Error for Refusal {}

/// Permission bits only: no setuid, setgid or sticky bit survives a copy.
const MODE_BITS: u32 = 0o777;

impl Tree {
    /// Reads a host directory, never following a link, refusing anything but regular files
    /// and directories, and stopping at the first limit passed without reading further.
    pub fn read_dir(root: &Path, limits: &Limits) -> Result<Tree, Refusal> {
        let meta = fs::symlink_metadata(root)
            .map_err(|err| Refusal::new(".", format!("cannot be inspected: {err}")))?;
        if !meta.is_dir() {
            return Err(Refusal::new(".", "is not a directory"));
        }
        let mut tree = Tree::default();
        let mut budget = Budget::new(limits);
        // Directories still to list, by relative path ("" is the root).
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            let shown = if dir.is_empty() { "." } else { dir.as_str() };
            let listing = fs::read_dir(root.join(&dir))
                .map_err(|err| Refusal::new(shown, format!("cannot be listed: {err}")))?;
            let mut names = Vec::new();
            for entry in listing {
                let entry =
                    entry.map_err(|err| Refusal::new(shown, format!("cannot be listed: {err}")))?;
                let name = entry.file_name().into_string().map_err(|name| {
                    Refusal::new(join(&dir, &name.to_string_lossy()), "is not named in UTF-8")
                })?;
                let path = join(&dir, &name);
                // Count while listing, so a directory of a million entries is not listed whole.
                budget.entry(&path)?;
                names.push(path);
            }
            names.sort();
            for path in names {
                check_path_length(&path)?;
                let full = root.join(&path);
                let meta = fs::symlink_metadata(&full)
                    .map_err(|err| Refusal::new(&path, format!("cannot be inspected: {err}")))?;
                let kind = meta.file_type();
                let mode = meta.mode() & MODE_BITS;
                if kind.is_dir() {
                    tree.entries.insert(path.clone(), Node::Dir { mode });
                    pending.push(path);
                } else if kind.is_file() {
                    if meta.nlink() > 1 {
                        return Err(Refusal::new(
                            path,
                            format!(
                                "has {} hard links; a file linked from elsewhere is refused",
                                meta.nlink()
                            ),
                        ));
                    }
                    budget.file(&path, meta.len())?;
                    let bytes = read_regular(&full, &meta).map_err(|reason| Refusal {
                        path: path.clone(),
                        reason,
                    })?;
                    tree.entries.insert(path, Node::File { bytes, mode });
                } else {
                    return Err(Refusal::new(path, not_regular(kind)));
                }
            }
        }
        Ok(tree)
    }

    /// Reads a tar stream, such as the engine's archive of `/shared` (which wraps the folder
    /// as `shared/...`): `strip` is that top folder, whose own entry gives nothing, and every
    /// other entry must lie under it. Sizes are checked from the headers before any data is
    /// read, and the whole stream is bounded, so long names cannot grow without end either.
    pub fn read_tar(reader: impl Read, strip: &str, limits: &Limits) -> Result<Tree, Refusal> {
        let over = std::cell::Cell::new(false);
        let stream_limit = limits.max_total_bytes
            + (limits.max_entries as u64 + 2) * (MAX_PATH_BYTES as u64 + 4 * 512)
            + MIB;
        let capped = Capped {
            inner: reader,
            left: stream_limit,
            over: &over,
        };
        let broken = |err: io::Error| {
            if over.get() {
                Refusal::new(
                    ".",
                    format!("is an archive of more than {stream_limit} bytes"),
                )
            } else {
                Refusal::new(".", format!("is not a readable tar archive: {err}"))
            }
        };
        let strip: Vec<&str> = components(strip).collect();
        let mut archive = tar::Archive::new(capped);
        let mut tree = Tree::default();
        let mut budget = Budget::new(limits);
        for entry in archive.entries().map_err(broken)? {
            let mut entry = entry.map_err(broken)?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            let raw = entry.path_bytes().into_owned();
            let Some(path) = relative(&raw, &strip)? else {
                if !kind.is_dir() {
                    return Err(Refusal::new(
                        String::from_utf8_lossy(&raw),
                        "is not a directory",
                    ));
                }
                continue;
            };
            let mode = entry.header().mode().unwrap_or(0o644) & MODE_BITS;
            let node = match kind {
                tar::EntryType::Directory => Node::Dir { mode },
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    budget.file(&path, size)?;
                    let mut bytes = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut bytes).map_err(broken)?;
                    if bytes.len() as u64 != size {
                        return Err(Refusal::new(
                            path,
                            format!(
                                "holds {} bytes, not the {size} its header says",
                                bytes.len()
                            ),
                        ));
                    }
                    Node::File { bytes, mode }
                }
                tar::EntryType::Symlink => return Err(Refusal::new(path, LINK)),
                tar::EntryType::Link => return Err(Refusal::new(path, HARD_LINK)),
                tar::EntryType::Char | tar::EntryType::Block => {
                    return Err(Refusal::new(path, DEVICE));
                }
                tar::EntryType::Fifo => return Err(Refusal::new(path, FIFO)),
                other => {
                    return Err(Refusal::new(
                        path,
                        format!(
                            "is a tar entry of type `{}`, not a regular file or directory",
                            char::from(other.as_byte())
                        ),
                    ));
                }
            };
            tree.put(path, node, &mut budget)?;
        }
        Ok(tree)
    }

    /// Adds an entry read from an archive: parents it lacks are added as `0o755` directories,
    /// a second entry for a path replaces the first only if it is of the same kind.
    fn put(&mut self, path: String, node: Node, budget: &mut Budget<'_>) -> Result<(), Refusal> {
        for (at, _) in path.match_indices('/') {
            let parent = &path[..at];
            match self.entries.get(parent) {
                Some(Node::Dir { .. }) => {}
                Some(Node::File { .. }) => {
                    return Err(Refusal::new(
                        path.clone(),
                        format!("lies under `{parent}`, which is a file"),
                    ));
                }
                None => {
                    budget.entry(parent)?;
                    self.entries
                        .insert(parent.to_owned(), Node::Dir { mode: 0o755 });
                }
            }
        }
        match self.entries.get(&path) {
            Some(old) if std::mem::discriminant(old) != std::mem::discriminant(&node) => {
                Err(Refusal::new(
                    path,
                    "appears twice in the archive, as a file and as a directory",
                ))
            }
            Some(_) => {
                self.entries.insert(path, node);
                Ok(())
            }
            None => {
                budget.entry(&path)?;
                self.entries.insert(path, node);
                Ok(())
            }
        }
    }

    /// Writes the tree into `root`, which must exist and be empty, with each entry's mode,
    /// owned by `owner` (uid, gid) when given, the root included. Nothing is followed: files
    /// are created exclusively with `O_NOFOLLOW`, and directories get their modes last, so a
    /// read-only directory can still be filled. Files are not fsynced: this is a run's copy.
    pub fn write_dir(&self, root: &Path, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
        let meta = fs::symlink_metadata(root)
            .with_context(|| format!("failed to inspect `{}`", root.display()))?;
        ensure!(
            meta.is_dir(),
            "`{}` is not a directory\nhint: e writes a run's copy into a new empty directory",
            root.display()
        );
        let mut listing =
            fs::read_dir(root).with_context(|| format!("failed to list `{}`", root.display()))?;
        ensure!(
            listing.next().is_none(),
            "`{}` is not empty\nhint: e writes a run's copy into a new empty directory",
            root.display()
        );
        for (path, node) in &self.entries {
            check_key(path)?;
            let full = root.join(path);
            let failed = || format!("failed to write `{}`", full.display());
            match node {
                Node::Dir { .. } => DirBuilder::new()
                    .mode(0o700)
                    .create(&full)
                    .with_context(failed)?,
                Node::File { bytes, mode } => {
                    let mut file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&full)
                        .with_context(failed)?;
                    file.write_all(bytes).with_context(failed)?;
                    file.set_permissions(fs::Permissions::from_mode(mode & MODE_BITS))
                        .with_context(failed)?;
                    if let Some((uid, gid)) = owner {
                        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                            .with_context(failed)?;
                    }
                }
            }
        }
        for (path, node) in self.entries.iter().rev() {
            if let Node::Dir { mode } = node {
                set_dir_owner_and_mode(&root.join(path), owner, Some(*mode))?;
            }
        }
        set_dir_owner_and_mode(root, owner, None)
    }

    /// The tree as a tar archive for the engine's `PUT /containers/{id}/archive?path=/shared`:
    /// paths relative, led by a `./` entry for the root (mode `0o755`), every entry owned by
    /// `owner` (uid, gid), so the container's user owns `/shared` and what it holds.
    pub fn to_tar(&self, owner: (u32, u32)) -> anyhow::Result<Vec<u8>> {
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(mode & MODE_BITS);
            header.set_uid(u64::from(owner.0));
            header.set_gid(u64::from(owner.1));
            header.set_mtime(mtime);
            header.set_size(size);
            header
        };
        let mut builder = tar::Builder::new(Vec::new());
        let failed = |path: &str| format!("failed to add `{path}` to the archive");
        builder
            .append_data(
                &mut header(tar::EntryType::Directory, 0o755, 0),
                "./",
                io::empty(),
            )
            .with_context(|| failed("."))?;
        for (path, node) in &self.entries {
            check_key(path)?;
            match node {
                Node::Dir { mode } => builder.append_data(
                    &mut header(tar::EntryType::Directory, *mode, 0),
                    format!("{path}/"),
                    io::empty(),
                ),
                Node::File { bytes, mode } => builder.append_data(
                    &mut header(tar::EntryType::Regular, *mode, bytes.len() as u64),
                    path,
                    bytes.as_slice(),
                ),
            }
            .with_context(|| failed(path))?;
        }
        builder.into_inner().context("failed to finish the archive")
    }

    /// The bytes of the regular file at `path`, if there is one.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.entries.get(path) {
            Some(Node::File { bytes, .. }) => Some(bytes),
            _ => None,
        }
    }

    /// Puts a file at `path`, adding the directories it needs (`0o755`); whatever was at a
    /// parent or at `path` (a file, or a directory and all it held) is replaced.
    pub fn insert_file(&mut self, path: &str, bytes: Vec<u8>, mode: u32) {
        assert!(
            check_key(path).is_ok(),
            "e inserts only relative paths without `.` or `..`: `{path}`"
        );
        for (at, _) in path.match_indices('/') {
            let parent = &path[..at];
            if !matches!(self.entries.get(parent), Some(Node::Dir { .. })) {
                self.entries
                    .insert(parent.to_owned(), Node::Dir { mode: 0o755 });
            }
        }
        let under: Vec<String> = self.subtree(path).entries.into_keys().collect();
        for key in under {
            self.entries.remove(&key);
        }
        self.entries.insert(
            path.to_owned(),
            Node::File {
                bytes,
                mode: mode & MODE_BITS,
            },
        );
    }

    /// The entries under `prefix/`, keys kept whole (`prefix` itself is not included); the
    /// whole tree for an empty prefix.
    pub fn subtree(&self, prefix: &str) -> Tree {
        if prefix.is_empty() {
            return self.clone();
        }
        // Keys under `prefix/` sort between `prefix/` and `prefix0` ('0' follows '/').
        let entries = self
            .entries
            .range(format!("{prefix}/")..format!("{prefix}0"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Tree { entries }
    }

    /// Every entry except `prefix` and what lies under it.
    pub fn without(&self, prefix: &str) -> Tree {
        let entries = self
            .entries
            .iter()
            .filter(|(key, _)| !is_under_or_at(key, prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Tree { entries }
    }

    /// A sha256, in lowercase hexadecimal, of every entry's path, kind, mode and bytes: two
    /// trees have the same digest when they have the same content.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (path, node) in &self.entries {
            hasher.update((path.len() as u64).to_be_bytes());
            hasher.update(path.as_bytes());
            let (kind, mode, bytes): (u8, u32, &[u8]) = match node {
                Node::Dir { mode } => (b'd', *mode, &[]),
                Node::File { bytes, mode } => (b'f', *mode, bytes),
            };
            hasher.update([kind]);
            hasher.update(mode.to_be_bytes());
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The size of all files together.
    pub fn total_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|node| match node {
                Node::File { bytes, .. } => bytes.len() as u64,
                Node::Dir { .. } => 0,
            })
            .sum()
    }
}

/// Whether `key` is `prefix` or lies under it.
pub(crate) fn is_under_or_at(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

const LINK: &str = "is a symbolic link; a module may leave only regular files and directories";
const HARD_LINK: &str = "is a hard link; a module may leave only regular files and directories";
const DEVICE: &str = "is a device; a module may leave only regular files and directories";
const FIFO: &str = "is a FIFO; a module may leave only regular files and directories";

fn not_regular(kind: fs::FileType) -> &'static str {
    if kind.is_symlink() {
        LINK
    } else if kind.is_fifo() {
        FIFO
    } else if kind.is_socket() {
        "is a socket; a module may leave only regular files and directories"
    } else if kind.is_block_device() || kind.is_char_device() {
        DEVICE
    } else {
        "is neither a regular file nor a directory"
    }
}

/// Counts what a tree holds while it is read, and refuses the first entry past a limit.
struct Budget<'a> {
    limits: &'a Limits,
    entries: usize,
    bytes: u64,
}

impl<'a> Budget<'a> {
    fn new(limits: &'a Limits) -> Budget<'a> {
        Budget {
            limits,
            entries: 0,
            bytes: 0,
        }
    }

    fn entry(&mut self, path: &str) -> Result<(), Refusal> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Refusal::new(
                path,
                format!(
                    "is one entry too many: the limit is {} files and directories",
                    self.limits.max_entries
                ),
            ));
        }
        Ok(())
    }

    fn file(&mut self, path: &str, len: u64) -> Result<(), Refusal> {
        let (cap, what) = if path == STATE_FILE {
            (self.limits.max_state_bytes, "for the state")
        } else {
            (self.limits.max_file_bytes, "per file")
        };
        if len > cap {
            return Err(Refusal::new(
                path,
                format!("is {len} bytes, over the limit of {} {what}", size(cap)),
            ));
        }
        self.bytes = self.bytes.saturating_add(len);
        if self.bytes > self.limits.max_total_bytes {
            return Err(Refusal::new(
                path,
                format!(
                    "brings the files to {} bytes, over the limit of {} in total",
                    self.bytes,
                    size(self.limits.max_total_bytes)
                ),
            ));
        }
        Ok(())
    }
}

/// A size for messages: `32 MiB` when it is a whole number of MiB, else bytes.
fn size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn check_path_length(path: &str) -> Result<(), Refusal> {
    if path.len() > MAX_PATH_BYTES {
        let shown: String = path.chars().take(60).collect();
        return Err(Refusal::new(
            format!("{shown}..."),
            format!(
                "is a path of {} bytes, over the limit of {MAX_PATH_BYTES}",
                path.len()
            ),
        ));
    }
    Ok(())
}

/// Fails unless `path` is a valid key: relative, no empty, `.` or `..` component.
fn check_key(path: &str) -> anyhow::Result<()> {
    if path.is_empty()
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        bail!("`{path}` is not a relative path without `.` or `..`");
    }
    Ok(())
}

/// The non-empty components of a path other than `.`.
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
}

/// An archive path made relative to `strip`; `None` for `strip` itself.
fn relative(raw: &[u8], strip: &[&str]) -> Result<Option<String>, Refusal> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| Refusal::new(String::from_utf8_lossy(raw), "is not named in UTF-8"))?;
    if text.starts_with('/') {
        return Err(Refusal::new(
            text,
            "is an absolute path; an archive entry must lie inside the directory",
        ));
    }
    let parts: Vec<&str> = components(text).collect();
    if parts.contains(&"..") {
        return Err(Refusal::new(text, "leaves the directory through `..`"));
    }
    let Some(rest) = parts.strip_prefix(strip) else {
        return Err(Refusal::new(
            text,
            format!("lies outside `{}/`", strip.join("/")),
        ));
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let path = rest.join("/");
    check_path_length(&path)?;
    Ok(Some(path))
}

/// Reads a regular file already inspected as `listed`, without following a link or blocking
/// on a FIFO swapped in, and refuses it if it is no longer the same file of the same size.
fn read_regular(path: &Path, listed: &fs::Metadata) -> Result<Vec<u8>, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| format!("cannot be opened: {err}"))?;
    let opened = file
        .metadata()
        .map_err(|err| format!("cannot be inspected: {err}"))?;
    if !opened.is_file() || opened.ino() != listed.ino() || opened.dev() != listed.dev() {
        return Err("changed while it was read".to_owned());
    }
    let len = listed.len();
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot be read: {err}"))?;
    if bytes.len() as u64 != len {
        return Err("changed size while it was read".to_owned());
    }
    Ok(bytes)
}

/// Sets a directory's owner and mode through a descriptor opened without following a link.
fn set_dir_owner_and_mode(
    path: &Path,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
) -> anyhow::Result<()> {
    if owner.is_none() && mode.is_none() {
        return Ok(());
    }
    let failed = || format!("failed to set the owner and mode of `{}`", path.display());
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(path)
        .with_context(failed)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&dir, Some(uid), Some(gid)).with_context(failed)?;
    }
    if let Some(mode) = mode {
        dir.set_permissions(fs::Permissions::from_mode(mode & MODE_BITS))
            .with_context(failed)?;
    }
    Ok(())
}

/// A reader that fails, rather than ending, once more than `left` bytes were asked of it: a
/// tar reader that met an early end at a header boundary would take the stream as complete.
struct Capped<'a, R> {
    inner: R,
    left: u64,
    over: &'a std::cell::Cell<bool>,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.over.set(true);
                    Err(io::Error::other("the archive is over its size limit"))
                }
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..max])?;
        self.left -= read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests;
