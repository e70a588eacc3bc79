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

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::load::Loaded;
use super::{Command, Module, Repository};
use crate::selector::Selector;
use std::sync::Arc;

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
    let key = key(path)?;
    let file = file_for(directory, &key);
    let mut reader = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&file).ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let seal: Seal = serde_json::from_str(&line).ok()?;
    let mut lines = Lines {
        reader,
        hasher: crc32fast::Hasher::new(),
        bytes: 0,
    };
    lines.next(&mut line)?;
    let header: Header = serde_json::from_str(&line).ok()?;
    if header.key != key {
        return None;
    }
    let want = match want {
        Want::Matching(_) if whole() => Want::WithoutCommands,
        want => want,
    };
    // One thread: reading stretches of the file on two threads measured no faster here, and
    // slower under load (`docs/benchmarks.md`).
    let mut repository = header.repository;
    repository.components = read_modules(&mut lines, header.modules, want)?;
    // Nothing may follow, and what was read must be what was written.
    line.clear();
    let rest = lines.reader.read_line(&mut line).ok()?;
    let sealed = rest == 0 && lines.bytes == seal.bytes && lines.hasher.finalize() == seal.checksum;
    sealed.then_some(Loaded {
        repository,
        warnings: header.warnings,
    })
}

/// The lines after the seal, counted and hashed as they are read.
struct Lines<R> {
    reader: R,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<R: BufRead> Lines<R> {
    /// Reads the next whole line into `line`; `None` at the end or on a line cut short.
    fn next(&mut self, line: &mut String) -> Option<()> {
        line.clear();
        let read = self.reader.read_line(line).ok()?;
        if read == 0 || !line.ends_with('\n') {
            return None;
        }
        self.hasher.update(line.as_bytes());
        self.bytes += read as u64;
        Some(())
    }
}

/// Reads `modules` modules, two lines each (see [`put`]), building those `want` asks for.
fn read_modules(
    lines: &mut Lines<impl BufRead>,
    modules: usize,
    want: Want<'_>,
) -> Option<Vec<Module>> {
    let mut read = Vec::with_capacity(if matches!(want, Want::Matching(_)) {
        0
    } else {
        modules
    });
    let mut line = String::new();
    let mut commands_line = String::new();
    for _ in 0..modules {
        lines.next(&mut line)?;
        lines.next(&mut commands_line)?;
        let mut module: Module = match want {
            Want::Matching(selector) => {
                let probe: Probe<'_> = serde_json::from_str(&line).ok()?;
                if !probe.matches(selector) {
                    continue;
                }
                serde_json::from_str(&line).ok()?
            }
            _ => serde_json::from_str(&line).ok()?,
        };
        if matches!(want, Want::Everything) {
            let lists: Vec<Option<Arc<Vec<Command>>>> =
                serde_json::from_str(&commands_line).ok()?;
            if lists.len() != module.versions.len() {
                return None;
            }
            let mut previous = Arc::default();
            for (version, list) in module.versions.iter_mut().zip(lists) {
                version.commands = list.unwrap_or_else(|| Arc::clone(&previous));
                previous = Arc::clone(&version.commands);
            }
        }
        read.push(module);
    }
    Some(read)
}

/// What the matching read parses of a module's line first: each version's labels, borrowed
/// from the line where they need no unescaping. Every other field is skipped unread.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    versions: Vec<ProbeVersion<'a>>,
}

#[derive(Deserialize)]
struct ProbeVersion<'a> {
    #[serde(default, borrow)]
    labels: LabelPairs<'a>,
}

impl Probe<'_> {
    /// Whether a version of the module has labels the selector matches.
    fn matches(&self, selector: &Selector) -> bool {
        self.versions.iter().any(|version| {
            selector.matches_with(|key| {
                version
                    .labels
                    .0
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_ref())
            })
        })
    }
}

/// A version's labels as pairs of text, in the order of the line.
#[derive(Default)]
struct LabelPairs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for LabelPairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> serde::de::Visitor<'de> for PairsVisitor {
            type Value = LabelPairs<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry::<Text<'de>, Text<'de>>()? {
                    pairs.push((key.0, value.0));
                }
                Ok(LabelPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

/// A string borrowed from the line when it holds no escape, else unescaped into its own.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
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
#[path = "cache_tests.rs"]
mod tests;
