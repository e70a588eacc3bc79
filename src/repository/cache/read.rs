//! Reading a cache file: mapped whole, each module's two lines borrowed from the map where
//! they lie, and every byte checked against the seal as it is read.
//!
//! A map costs neither a copy nor fresh memory: the file's pages are the kernel's page cache,
//! already in memory after the first read, where reading them line by line copied 19 MB into
//! buffers for 10,000 modules and made every view of a line a copy too. Each line is checked
//! (CRC-32, UTF-8) and parsed in one pass while it is in the processor's cache: checking the
//! whole file first cost three more passes over memory, slower than the copies saved.
//!
//! The cache is only ever replaced by a rename, never written in place (see `put`), so the
//! mapped file does not change under e; a file cut by something else while mapped would stop e
//! with `SIGBUS`.

use std::path::Path;

use super::{Header, Seal, file_for, key};

/// A cache file for exactly the repository asked for, its header read; its module lines are
/// only known to be what was written once [`Mapped::read`] has read them all.
pub struct Mapped {
    map: memmap2::Mmap,
    seal: Seal,
    /// Where the second line (the header) starts, and where the first module's line starts.
    header_at: usize,
    modules_at: usize,
    /// The second line: the key, the warnings, the repository without its modules.
    pub(super) header: Header,
}

/// The cache of `path` in `directory`, mapped, if there is one and its header is for exactly
/// this file (the same key: see `Key`).
pub fn mapped(directory: &Path, path: &Path) -> Option<Mapped> {
    let key = key(path)?;
    let file = std::fs::File::open(file_for(directory, &key)).ok()?;
    // SAFETY: the file is never changed in place (see the file's paragraph), and every byte
    // is checked before what was read from it is used.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.ok()?;
    let header_at = memchr::memchr(b'\n', &map)? + 1;
    let seal: Seal = serde_json::from_slice(&map[..header_at]).ok()?;
    let modules_at = header_at + memchr::memchr(b'\n', &map[header_at..])? + 1;
    let header: Header = serde_json::from_slice(&map[header_at..modules_at]).ok()?;
    (header.key == key).then_some(Mapped {
        map,
        seal,
        header_at,
        modules_at,
        header,
    })
}

impl Mapped {
    /// Gives `each` every module in file order: its place, its line and its commands line,
    /// without line breaks, borrowed from the map. `Some` once every module was given and the
    /// whole file proved to be what was written (two whole lines per module, nothing after,
    /// the seal's length and CRC-32, UTF-8); `None` as soon as a line is not, or `each` gives
    /// up. What `each` took is only good after `Some`.
    pub fn read<'m>(
        &'m self,
        mut each: impl FnMut(usize, &'m str, &'m str) -> Option<()>,
    ) -> Option<()> {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&self.map[self.header_at..self.modules_at]);
        let mut rest = &self.map[self.modules_at..];
        let mut line = || -> Option<&'m str> {
            let end = memchr::memchr(b'\n', rest)? + 1;
            let (text, after) = rest.split_at(end);
            rest = after;
            hasher.update(text);
            std::str::from_utf8(&text[..end - 1]).ok()
        };
        for at in 0..self.header.modules {
            let module = line()?;
            let commands = line()?;
            each(at, module, commands)?;
        }
        let sealed = rest.is_empty()
            && (self.map.len() - self.header_at) as u64 == self.seal.bytes
            && hasher.finalize() == self.seal.checksum;
        sealed.then_some(())
    }

    /// Every module's line, without its commands line (see [`Mapped::read`]).
    pub fn lines(&self) -> Option<Vec<&str>> {
        // The count is only trusted once the seal checks out: a damaged one must not size this.
        let mut lines = Vec::with_capacity(self.header.modules.min(self.map.len() / 2));
        self.read(|_, line, _| {
            lines.push(line);
            Some(())
        })?;
        Some(lines)
    }

    /// The load's warnings.
    pub fn warnings(&self) -> &[String] {
        &self.header.warnings
    }
}
