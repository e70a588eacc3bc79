//! A tree read from a host directory, or written into one: the bind mode of a run.
//!
//! Nothing here follows a link: entries are inspected with `symlink_metadata`, files opened
//! with `O_NOFOLLOW | O_NONBLOCK` (a FIFO swapped in cannot block e) and checked again with
//! `fstat`, directories set up through descriptors opened with `O_NOFOLLOW`.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context as _, ensure};

use super::{
    Budget, DEVICE, FIFO, LINK, Limits, MODE_BITS, Node, Refusal, Tree, check_key,
    check_path_length,
};

impl Tree {
    /// Reads a host directory, never following a link, refusing anything but regular files
    /// and directories, and stopping at the first limit passed without reading further.
    pub fn read_dir(root: &Path, limits: &Limits) -> Result<Tree, Refusal> {
        Tree::read_dir_except(root, &[], limits)
    }

    /// [`Tree::read_dir`], leaving out the top-level entries named in `except` (e's own area
    /// of a live shared directory), which are neither read nor counted.
    pub fn read_dir_except(root: &Path, except: &[&str], limits: &Limits) -> Result<Tree, Refusal> {
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
                if dir.is_empty() && except.contains(&name.as_str()) {
                    continue;
                }
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
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
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
