//! A tree read from a tar stream, or written as one: the archive mode of a run, for engines
//! that cannot see e's files (`GET` and `PUT /containers/{id}/archive?path=/shared`).
//!
//! Sizes are checked from the headers before any data is read, and the whole stream is
//! bounded, so that neither a file nor a long name can grow without end.

use std::io::{self, Read};

use anyhow::Context as _;

use super::{
    Budget, DEVICE, FIFO, HARD_LINK, LINK, Limits, MAX_PATH_BYTES, MIB, MODE_BITS, Node, Refusal,
    Tree, check_key, check_path_length,
};

impl Tree {
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
