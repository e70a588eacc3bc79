//! A cache of large repositories that already loaded and validated, so that exploring a
//! repository of thousands of modules does not parse its YAML on every command.
//!
//! Parsing YAML runs at about 20 MB/s here and holds every event of the document at once; the
//! same repository as JSON reads ten times faster in a third of the memory. The cache holds the
//! validated [`Repository`] with its warnings, keyed by the file's identity (device, inode,
//! size, modification and change times) and e's version, so any change to the file, or a new
//! e, reads the YAML again. Small files are never cached: they parse in milliseconds.
//!
//! The cache lives in `$E_CACHE_DIR`, else `$XDG_CACHE_HOME/e`, else `~/.cache/e`. It is only
//! an accelerator: a cache that cannot be read or written is ignored, never an error.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::load::Loaded;
use super::{Command, Module, Repository};
use crate::selector::Selector;
use std::sync::Arc;

mod read;
mod relevant;
mod views;

pub use read::Mapped;
pub use relevant::{Found, related};
pub use views::view;

/// The layout of cache files: a header line, then two lines per module (see [`put`]). Raised
/// with the model too: 4 added a version's `limits` and `user`, which an older cache lacks; 5
/// keeps label values as written (`1.10`, not `1.1`) and adds commands' `timeout`, `secrets`
/// and `keep-secrets`; 6 adds the bills of materials' `packages`; 7 adds the first line (see
/// [`Seal`]) and the module count.
const FORMAT: u32 = 7;

/// Files smaller than this are parsed every time.
pub const MIN_CACHED_BYTES: u64 = 1024 * 1024;

/// What identifies one version of a repository file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Key {
    /// The layout of cache files, raised whenever it changes.
    format: u32,
    e_version: String,
    path: PathBuf,
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
    changed_ns: i128,
}

/// The first line of a cache file: the length and CRC-32 of every line after it, so that a
/// truncated or damaged cache is read again from the repository, never taken for a smaller
/// repository or one with other labels.
#[derive(Serialize, Deserialize)]
struct Seal {
    bytes: u64,
    checksum: u32,
}

/// The second line: what the cache is for, how many modules follow, and the repository without
/// its modules. Each further line is one module or its commands, so reading never holds the
/// whole text at once.
#[derive(Serialize, Deserialize)]
struct Header {
    key: Key,
    /// How many modules follow, two lines each.
    modules: usize,
    warnings: Vec<String>,
    repository: Repository,
}

/// What a read of the cache builds.
#[derive(Debug, Clone, Copy)]
pub enum Want<'s> {
    /// Every module with its commands.
    Everything,
    /// Every module, each version's commands left empty and not even parsed: listing and
    /// searching a large repository never look at them.
    WithoutCommands,
    /// Like `WithoutCommands`, but only the modules with a version the selector matches: the
    /// others' labels are looked at where they lie in the line, and the module is never built.
    Matching(&'s Selector),
}

/// The cache directory, if the environment names one (also the home of `e download`'s cache).
pub fn directory() -> Option<PathBuf> {
    let from = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("E_CACHE_DIR")
        .or_else(|| from("XDG_CACHE_HOME").map(|d| d.join("e")))
        .or_else(|| from("HOME").map(|d| d.join(".cache").join("e")))
}

fn key(path: &Path) -> Option<Key> {
    let path = path.canonicalize().ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.len() < MIN_CACHED_BYTES {
        return None;
    }
    Some(Key {
        format: FORMAT,
        e_version: env!("CARGO_PKG_VERSION").to_owned(),
        device: meta.dev(),
        inode: meta.ino(),
        size: meta.len(),
        modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        changed_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        path,
    })
}

/// The cache file for a repository path: one per path, named by a hash of it.
fn file_for(directory: &Path, key: &Key) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.path.hash(&mut hasher);
    directory
        .join("repositories")
        .join(format!("{:016x}.json", hasher.finish()))
}

/// The cached load of `path`, if there is one for exactly this file, built as `want` asks.
pub fn get(path: &Path, want: Want<'_>) -> Option<Loaded> {
    get_in(&directory()?, path, want)
}

/// Whether e is asked to load repositories as before its faster paths: then a search reads
/// every module of the cache.
fn whole() -> bool {
    super::load::whole()
}

fn get_in(directory: &Path, path: &Path, want: Want<'_>) -> Option<Loaded> {
    let want = match want {
        Want::Matching(_) if whole() => Want::WithoutCommands,
        want => want,
    };
    let mut components = Vec::new();
    let header = read_in(directory, path, |_, line, commands| {
        if let Want::Matching(selector) = want
            && !view(line)?.matches(selector)
        {
            return Some(());
        }
        let mut module: Module = serde_json::from_str(line).ok()?;
        if matches!(want, Want::Everything) {
            with_commands(&mut module, commands)?;
        }
        components.push(module);
        Some(())
    })?;
    Some(header.with(components))
}

/// Gives each version its commands from the module's second line.
fn with_commands(module: &mut Module, line: &str) -> Option<()> {
    let lists: Vec<Option<Arc<Vec<Command>>>> = serde_json::from_str(line).ok()?;
    if lists.len() != module.versions.len() {
        return None;
    }
    let mut previous = Arc::default();
    for (version, list) in module.versions.iter_mut().zip(lists) {
        version.commands = list.unwrap_or_else(|| Arc::clone(&previous));
        previous = Arc::clone(&version.commands);
    }
    Some(())
}

impl Header {
    /// The load these modules make, with the repository's head and warnings.
    fn with(self, components: Vec<Module>) -> Loaded {
        let mut repository = self.repository;
        repository.components = components;
        Loaded {
            repository,
            warnings: self.warnings,
        }
    }
}

/// Reads the cache of `path` if there is one for exactly this file, giving `each` every
/// module's place, line and commands line in turn (see [`put`]), and returns the header once
/// the whole file proved to be what was written; `None` if there is no such cache, it does
/// not check out (see [`Mapped::read`]), or `each` gives up. What `each` built is only good
/// after that.
fn read_in(
    directory: &Path,
    path: &Path,
    each: impl FnMut(usize, &str, &str) -> Option<()>,
) -> Option<Header> {
    let mapped = read::mapped(directory, path)?;
    mapped.read(each)?;
    Some(mapped.header)
}

/// The cache of `path`, mapped (see [`read::mapped`]), if there is one for exactly this file.
pub fn open(path: &Path) -> Option<Mapped> {
    read::mapped(&directory()?, path)
}

/// Remembers a successful load of `path` (if it is large enough to be worth it).
///
/// After the seal and the header, each module takes two lines: the module without its
/// commands, then the commands of each version (`null` for "the same as the version before").
pub fn put(path: &Path, loaded: &mut Loaded) {
    if let Some(directory) = directory() {
        put_in(&directory, path, loaded);
    }
}

/// `loaded` is borrowed mutably only to take each version's commands out while the module is
/// written without them, and put them back: cloning every module instead cost a third of
/// writing the cache.
fn put_in(directory: &Path, path: &Path, loaded: &mut Loaded) {
    let Some(key) = key(path) else { return };
    let file = file_for(directory, &key);
    let Some(parent) = file.parent() else { return };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    let repository = &mut loaded.repository;
    let header = Header {
        key,
        modules: repository.components.len(),
        warnings: loaded.warnings.clone(),
        repository: Repository {
            version: repository.version,
            kind: repository.kind,
            name: repository.name.clone(),
            components: Vec::new(),
        },
    };
    // Streamed to the file as it is serialized, on one thread: writing it to memory first (on
    // every core) held 20 MB more for 10,000 modules and copied it as the buffers grew. The
    // seal is written last, over the blank line kept for it.
    let mut write = |file: &mut std::fs::File| -> std::io::Result<()> {
        let mut blank = vec![b' '; SEAL_WIDTH];
        blank.push(b'\n');
        file.write_all(&blank)?;
        let mut out = std::io::BufWriter::with_capacity(
            1 << 16,
            Sealing {
                out: &mut *file,
                hasher: crc32fast::Hasher::new(),
                bytes: 0,
            },
        );
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        module_lines(&mut repository.components, &mut out)?;
        let sealed = out.into_inner().map_err(|err| err.into_error())?;
        let seal = Seal {
            bytes: sealed.bytes,
            checksum: sealed.hasher.finalize(),
        };
        let mut line = serde_json::to_vec(&seal)?;
        if line.len() > SEAL_WIDTH {
            return Err(std::io::Error::other("the seal is too long"));
        }
        line.resize(SEAL_WIDTH, b' ');
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(&line)
    };
    // Written to a temporary file and renamed, so a reader never sees half a cache.
    let written = tempfile::NamedTempFile::new_in(parent)
        .ok()
        .and_then(|mut temp| {
            write(temp.as_file_mut()).ok()?;
            temp.persist(&file).ok()
        });
    drop(written);
}

/// The width of the seal's line, padded with spaces (JSON allows them after the value).
const SEAL_WIDTH: usize = 64;

/// A writer that counts and hashes what passes through it, for the seal.
struct Sealing<W> {
    out: W,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Sealing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The two lines of each module, each ending in a line break: the module without its
/// commands, then the commands of each version (`null` for "the same as the version before").
fn module_lines(modules: &mut [Module], mut out: impl Write) -> std::io::Result<()> {
    for module in modules {
        let taken: Vec<Arc<Vec<Command>>> = module
            .versions
            .iter_mut()
            .map(|version| std::mem::take(&mut version.commands))
            .collect();
        let lists: Vec<Option<&Arc<Vec<Command>>>> = taken
            .iter()
            .enumerate()
            .map(|(i, commands)| {
                (i == 0 || !Arc::ptr_eq(&taken[i - 1], commands)).then_some(commands)
            })
            .collect();
        let mut write = || -> std::io::Result<()> {
            serde_json::to_writer(&mut out, &*module)?;
            out.write_all(b"\n")?;
            serde_json::to_writer(&mut out, &lists)?;
            out.write_all(b"\n")
        };
        let written = write();
        drop(lists);
        for (version, commands) in module.versions.iter_mut().zip(taken) {
            version.commands = commands;
        }
        written?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
