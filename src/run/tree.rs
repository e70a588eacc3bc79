//! A directory tree as data (stand-in; the checked implementation lands from the `check` branch).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

/// Caps on what a run may leave.
pub struct Limits {
    /// Entries (files and directories).
    pub max_entries: usize,
    /// Bytes of one file.
    pub max_file_bytes: u64,
    /// Bytes of `state.yml`.
    pub max_state_bytes: u64,
    /// Bytes of all files.
    pub max_total_bytes: u64,
}

impl Limits {
    /// e's caps.
    pub const DEFAULT: Limits = Limits {
        max_entries: 10_000,
        max_file_bytes: 32 << 20,
        max_state_bytes: 16 << 20,
        max_total_bytes: 128 << 20,
    };
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Its content.
        bytes: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
}

/// A tree of regular files and directories, by relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// Entries by relative path.
    pub entries: BTreeMap<String, Node>,
}

/// Why a tree was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The path.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}", self.path, self.reason)
    }
}

impl std::error::Error for Refusal {}

fn refuse(path: &str, reason: impl Into<String>) -> Refusal {
    Refusal {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl Tree {
    /// Reads a directory, never following a link.
    pub fn read_dir(root: &Path, limits: &Limits) -> Result<Tree, Refusal> {
        Self::read_dir_except(root, &[], limits)
    }

    /// Reads a directory, leaving out the top-level entries named in `except`.
    pub fn read_dir_except(root: &Path, except: &[&str], limits: &Limits) -> Result<Tree, Refusal> {
        let mut tree = Tree::default();
        let mut total = 0u64;
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            let at = if dir.is_empty() {
                root.to_owned()
            } else {
                root.join(&dir)
            };
            let read =
                fs::read_dir(&at).map_err(|e| refuse(&dir, format!("cannot be read: {e}")))?;
            for item in read {
                let item = item.map_err(|e| refuse(&dir, format!("cannot be read: {e}")))?;
                let name = item.file_name().to_string_lossy().into_owned();
                if dir.is_empty() && except.contains(&name.as_str()) {
                    continue;
                }
                let path = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                let meta = fs::symlink_metadata(item.path())
                    .map_err(|e| refuse(&path, format!("cannot be inspected: {e}")))?;
                if tree.entries.len() >= limits.max_entries {
                    return Err(refuse(
                        &path,
                        format!("is past the cap of {} entries", limits.max_entries),
                    ));
                }
                let mode = meta.permissions().mode() & 0o777;
                if meta.is_dir() {
                    tree.entries.insert(path.clone(), Node::Dir { mode });
                    pending.push(path);
                } else if meta.is_file() {
                    if meta.nlink() > 1 {
                        return Err(refuse(&path, "is a hard link"));
                    }
                    if meta.len() > limits.max_file_bytes {
                        return Err(refuse(&path, "is too large: over the limit of one file"));
                    }
                    total += meta.len();
                    if total > limits.max_total_bytes {
                        return Err(refuse(&path, "is past the total cap"));
                    }
                    let mut file = fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                        .open(item.path())
                        .map_err(|e| refuse(&path, format!("cannot be opened: {e}")))?;
                    let mut bytes = Vec::new();
                    file.read_to_end(&mut bytes)
                        .map_err(|e| refuse(&path, format!("cannot be read: {e}")))?;
                    tree.entries.insert(path, Node::File { bytes, mode });
                } else if meta.file_type().is_symlink() {
                    return Err(refuse(&path, "is a symbolic link"));
                } else {
                    return Err(refuse(&path, "is a special file (FIFO, socket or device)"));
                }
            }
        }
        Ok(tree)
    }

    /// Reads a tar stream whose top folder is `strip`.
    pub fn read_tar(reader: impl Read, strip: &str, limits: &Limits) -> Result<Tree, Refusal> {
        let mut archive = tar::Archive::new(reader);
        let mut tree = Tree::default();
        let entries = archive
            .entries()
            .map_err(|e| refuse(strip, format!("is not a readable archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| refuse(strip, format!("is damaged: {e}")))?;
            let raw = entry
                .path()
                .map_err(|e| refuse(strip, format!("has a bad path: {e}")))?;
            let raw = raw.to_string_lossy().trim_end_matches('/').to_owned();
            let rest = match raw.strip_prefix(strip) {
                Some("") => continue,
                Some(rest) if rest.starts_with('/') => rest[1..].to_owned(),
                _ => return Err(refuse(&raw, "is outside the shared directory")),
            };
            if rest
                .split('/')
                .any(|p| p == ".." || p == "." || p.is_empty())
            {
                return Err(refuse(&rest, "leaves the shared directory"));
            }
            let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                tree.entries.insert(rest, Node::Dir { mode });
            } else if kind.is_file() {
                if entry.size() > limits.max_file_bytes {
                    return Err(refuse(&rest, "is too large"));
                }
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| refuse(&rest, format!("cannot be read: {e}")))?;
                tree.entries.insert(rest, Node::File { bytes, mode });
            } else {
                return Err(refuse(&rest, "is not a regular file or directory"));
            }
            if tree.entries.len() > limits.max_entries {
                return Err(refuse(strip, "has too many entries"));
            }
        }
        Ok(tree)
    }

    /// Writes the tree into an empty directory.
    pub fn write_dir(&self, root: &Path, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
        for (path, node) in &self.entries {
            let target = root.join(path);
            match node {
                Node::Dir { mode } => {
                    fs::create_dir(&target)
                        .with_context(|| format!("failed to create `{}`", target.display()))?;
                    fs::set_permissions(&target, fs::Permissions::from_mode(*mode))?;
                }
                Node::File { bytes, mode } => {
                    let mut file = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(*mode)
                        .open(&target)
                        .with_context(|| format!("failed to create `{}`", target.display()))?;
                    file.write_all(bytes)?;
                    fs::set_permissions(&target, fs::Permissions::from_mode(*mode))?;
                }
            }
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
            }
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(root, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// A tar of the tree for the archive API, owned by `owner`.
    pub fn to_tar(&self, owner: (u32, u32)) -> anyhow::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_uid(owner.0.into());
        header.set_gid(owner.1.into());
        header.set_size(0);
        builder.append_data(&mut header, "./", std::io::empty())?;
        for (path, node) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_uid(owner.0.into());
            header.set_gid(owner.1.into());
            match node {
                Node::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("./{path}/"), std::io::empty())?;
                }
                Node::File { bytes, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(bytes.len() as u64);
                    builder.append_data(&mut header, format!("./{path}"), bytes.as_slice())?;
                }
            }
        }
        Ok(builder.into_inner()?)
    }

    /// The bytes of a file.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.entries.get(path) {
            Some(Node::File { bytes, .. }) => Some(bytes),
            _ => None,
        }
    }

    /// Adds a file and its missing parents.
    pub fn insert_file(&mut self, path: &str, bytes: Vec<u8>, mode: u32) {
        let mut at = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            self.entries
                .entry(at.clone())
                .or_insert(Node::Dir { mode: 0o755 });
        }
        self.entries
            .insert(path.to_owned(), Node::File { bytes, mode });
    }

    /// Entries under `prefix`.
    pub fn subtree(&self, prefix: &str) -> Tree {
        let under = format!("{prefix}/");
        Tree {
            entries: self
                .entries
                .iter()
                .filter(|(k, _)| k.starts_with(&under))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Every entry but `prefix` and what is under it.
    pub fn without(&self, prefix: &str) -> Tree {
        let under = format!("{prefix}/");
        Tree {
            entries: self
                .entries
                .iter()
                .filter(|(k, _)| *k != prefix && !k.starts_with(&under))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// A digest of the content.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (path, node) in &self.entries {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            match node {
                Node::Dir { mode } => hasher.update(format!("d{mode}\0")),
                Node::File { bytes, mode } => {
                    hasher.update(format!("f{mode}:{}\0", bytes.len()));
                    hasher.update(bytes);
                }
            }
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Bytes of all files.
    pub fn total_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|n| match n {
                Node::File { bytes, .. } => bytes.len() as u64,
                Node::Dir { .. } => 0,
            })
            .sum()
    }
}
