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

use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::load::Loaded;
use super::{Command, Module, Repository};
use std::sync::Arc;

/// The layout of cache files: a header line, then two lines per module (see [`put`]). Raised
/// with the model too: 4 added a version's `limits` and `user`, which an older cache lacks; 5
/// keeps label values as written (`1.10`, not `1.1`) and adds commands' `timeout`, `secrets`
/// and `keep-secrets`; 6 adds the bills of materials' `packages`.
const FORMAT: u32 = 6;

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

/// The first line of a cache file: what it is for, and the repository without its modules.
/// Each further line is one module, so reading never holds the whole text at once.
#[derive(Serialize, Deserialize)]
struct Header {
    key: Key,
    warnings: Vec<String>,
    repository: Repository,
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

/// The cached load of `path`, if there is one for exactly this file. Without `commands`,
/// every version's commands are left empty and not even parsed: listing and searching a large
/// repository never look at them.
pub fn get(path: &Path, commands: bool) -> Option<Loaded> {
    get_in(&directory()?, path, commands)
}

/// From this many bytes on, the cache is written on several threads.
const PARALLEL_MIN_BYTES: u64 = 4 * 1024 * 1024;

/// Whether e is asked to load repositories as before its faster paths: then the cache is
/// written on one thread.
fn whole() -> bool {
    super::load::whole()
}

fn get_in(directory: &Path, path: &Path, commands: bool) -> Option<Loaded> {
    let key = key(path)?;
    let file = file_for(directory, &key);
    let mut reader = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&file).ok()?);
    let mut line = String::new();
    let start = reader.read_line(&mut line).ok()? as u64;
    let header: Header = serde_json::from_str(&line).ok()?;
    if header.key != key {
        return None;
    }
    // One thread: reading stretches of the file on two threads measured no faster here, and
    // slower under load (`docs/benchmarks.md`).
    let length = reader.get_ref().metadata().ok()?.len();
    let mut repository = header.repository;
    repository.components = read_modules(reader, length - start, commands)?;
    Some(Loaded {
        repository,
        warnings: header.warnings,
    })
}

/// Reads `bytes` bytes of module lines, two lines per module (see [`put`]).
fn read_modules(mut reader: impl BufRead, bytes: u64, commands: bool) -> Option<Vec<Module>> {
    let mut modules = Vec::new();
    let mut line = String::new();
    let mut read = 0u64;
    while read < bytes {
        line.clear();
        let length = reader.read_line(&mut line).ok()?;
        if length == 0 {
            break;
        }
        read += length as u64;
        let mut module: Module = serde_json::from_str(&line).ok()?;
        line.clear();
        read += reader.read_line(&mut line).ok()? as u64;
        if commands {
            let lists: Vec<Option<Arc<Vec<Command>>>> = serde_json::from_str(&line).ok()?;
            if lists.len() != module.versions.len() {
                return None;
            }
            let mut previous = Arc::default();
            for (version, list) in module.versions.iter_mut().zip(lists) {
                version.commands = list.unwrap_or_else(|| Arc::clone(&previous));
                previous = Arc::clone(&version.commands);
            }
        }
        modules.push(module);
    }
    Some(modules)
}

/// Remembers a successful load of `path` (if it is large enough to be worth it).
///
/// After the header line, each module takes two lines: the module without its commands, then
/// the commands of each version (`null` for "the same as the version before").
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
        warnings: loaded.warnings.clone(),
        repository: Repository {
            version: repository.version,
            kind: repository.kind,
            name: repository.name.clone(),
            components: Vec::new(),
        },
    };
    // The modules are written to memory on every core, then to the file in order.
    let threads = if whole() || header.key.size < PARALLEL_MIN_BYTES {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    };
    let chunk = repository.components.len().div_ceil(threads).max(1);
    let parts: Vec<std::io::Result<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = repository
            .components
            .chunks_mut(chunk)
            .map(|modules| scope.spawn(move || module_lines(modules)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a writer panicked")))
            })
            .collect()
    });
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, &header)?;
        for part in parts {
            out.write_all(&part?)?;
        }
        out.write_all(b"\n")?;
        out.flush()
    };
    // Written to a temporary file and renamed, so a reader never sees half a cache.
    let written = tempfile::NamedTempFile::new_in(parent)
        .ok()
        .and_then(|mut temp| {
            write(&mut std::io::BufWriter::new(&mut temp)).ok()?;
            temp.persist(&file).ok()
        });
    drop(written);
}

/// The two lines of each module, each after a line break: the module without its commands,
/// then the commands of each version (`null` for "the same as the version before").
fn module_lines(modules: &mut [Module]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
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
        out.push(b'\n');
        let written = serde_json::to_writer(&mut out, &*module).and_then(|()| {
            out.push(b'\n');
            serde_json::to_writer(&mut out, &lists)
        });
        drop(lists);
        for (version, commands) in module.versions.iter_mut().zip(taken) {
            version.commands = commands;
        }
        written?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_misses_and_an_unchanged_one_hits() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let path = dir.path().join("repository.yaml");
        let mut text = String::from("version: v1\nkind: Repository\ncomponents:\n");
        let mut i = 0;
        while (text.len() as u64) < MIN_CACHED_BYTES {
            text.push_str(&format!("- name: m{i}\n  type: docker\n  versions:\n  - version: 1.0.0\n    image: img/m{i}:1\n    labels: {{kind: k{i}}}\n    commands: [{{name: apply, command: apply}}]\n  - version: 1.1.0\n    image: img/m{i}:1\n    limits: {{memory: 512Mi, cpus: 0.5, pids: 64}}\n    user: \"0\"\n    commands: [{{name: apply, command: apply}}]\n"));
            i += 1;
        }
        std::fs::write(&path, &text).unwrap();
        assert!(get_in(&cache, &path, true).is_none());
        let mut loaded = super::super::load::load(&path).unwrap();
        put_in(&cache, &path, &mut loaded);
        let cached = get_in(&cache, &path, true).expect("a cached load");
        assert_eq!(cached.repository.components.len(), i);
        assert_eq!(
            serde_json::to_string(&cached.repository).unwrap(),
            serde_json::to_string(&loaded.repository).unwrap(),
            "the cache gives back what was loaded"
        );
        let limited = &cached.repository.components[0].versions[1];
        assert_eq!(
            limited.limits.memory.as_ref().map(|m| m.bytes()),
            Some(512 << 20)
        );
        assert_eq!(limited.user.map(|u| u.uid), Some(0));
        let bare = get_in(&cache, &path, false).expect("a cached load without commands");
        assert!(
            bare.repository
                .entries()
                .all(|e| e.version.commands.is_empty())
        );
        std::fs::write(&path, text.replace("kind: k0}", "kind: k9}")).unwrap();
        assert!(
            get_in(&cache, &path, true).is_none(),
            "a changed file is read again"
        );
    }
}
