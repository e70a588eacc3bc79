//! A directory tree as data: the shared directory a method run gets, and what it left.
//!
//! A [`Tree`] holds regular files and directories only, keyed by relative path, so whatever a
//! module did can be checked as plain data before any of it reaches the shared directory.
//! Reading one ([`Tree::read_dir`] from a host directory, [`Tree::read_tar`] from the engine's
//! archive stream) is where a hostile module is met first: links, devices, FIFOs, sockets,
//! hard links, paths that leave the directory and oversized content are refused there, as soon
//! as they are seen and before their bytes are read. Writing one ([`Tree::write_dir`],
//! [`Tree::to_tar`]) never follows a link. The host side lives in `tree/directory.rs`, the tar
//! side in `tree/tarball.rs`; this file holds the data and its limits. It does not decide what
//! a module may change: that is `check.rs`.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::bail;
use sha2::{Digest as _, Sha256};

mod directory;
mod tarball;

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

#[cfg(test)]
mod tests;
