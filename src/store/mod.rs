//! The shared directory: the state file every module reads and writes, the modules' configs,
//! and e's own area `.e/`. Modules never see it: a run works on a private copy
//! (`run/`), and what it left reaches this directory only through a commit (`commit.rs`).
//!
//! This file owns the directory itself: opening it (refusing `/` and system directories),
//! its id, the exclusive lock (released by the kernel even when e is killed; taking it first
//! finishes any commit a crash cut short), reading what modules see as a tree, the run
//! history and e's record of installed modules. e never re-serializes what a module wrote:
//! it keeps and compares bytes.
//!
//! Layout:
//! ```text
//! shared/state.yml          written by modules (through commits); one section per module
//! shared/state.yml.backup   the previous state.yml, after every change to it
//! shared/<module>-config.yml
//! shared/.e/id              this directory's id, on the labels of its containers and volumes
//! shared/.e/serial.json     its lineage and serial (`serial.rs`)
//! shared/.e/lock            held while e works here; says who holds it
//! shared/.e/history/        one JSON record per run
//! shared/.e/installed.json  the module versions e applied successfully
//! shared/.e/volumes.json    for which uid each module volume was made (see `run/volumes.rs`)
//! shared/.e/requirements/   per module: which installed modules satisfy its requirements
//! shared/.e/runs/<run>/     a running method: its record and, for a bind, its private copy
//! shared/.e/kept/<run>/     a result kept aside (see `e recover`)
//! shared/.e/commit/<run>/   a commit being made: staged files and its journal
//! shared/.e/tmp/            temporary files, renamed into place
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::run::tree::{Limits, Refusal, Tree};

pub mod checked;
pub mod commit;
pub mod machine;
pub mod merge;
pub mod mirror;
pub mod postgres;
pub mod sections;
pub mod serial;
pub mod time;
pub use commit::Change;
pub use serial::Serial;

/// The largest state file e accepts from a module.
pub const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;

/// The state file's name in the shared directory.
pub const STATE_FILE: &str = "state.yml";
/// The previous state, kept after every successful change.
pub const BACKUP_FILE: &str = "state.yml.backup";
/// e's own area in the shared directory.
pub const E_DIR: &str = ".e";

/// An open shared directory.
#[derive(Debug, Clone)]
pub struct SharedDir {
    root: PathBuf,
}

impl SharedDir {
    /// Opens the shared directory, creating it and e's area if needed.
    pub fn open(path: &Path) -> anyhow::Result<SharedDir> {
        fs::create_dir_all(path).with_context(|| {
            format!("failed to create the shared directory `{}`", path.display())
        })?;
        let root = path.canonicalize().with_context(|| {
            format!(
                "failed to resolve the shared directory `{}`",
                path.display()
            )
        })?;
        refuse_system_directory(&root)?;
        let shared = SharedDir { root };
        for dir in ["", "history", "runs", "kept", "commit", "tmp"] {
            let dir = shared.e_dir().join(dir);
            let meta = fs::symlink_metadata(&dir);
            match meta {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => bail!(
                    "`{}` is not a directory\nhint: e keeps its records there; move it away and run again",
                    dir.display()
                ),
                Err(_) => fs::create_dir_all(&dir)
                    .with_context(|| format!("failed to create `{}`", dir.display()))?,
            }
        }
        shared.ensure_id()?;
        shared.ensure_serial()?;
        Ok(shared)
    }

    /// Opens the shared directory for reading only, for commands that show what is there
    /// (`status`, `state`, `history`): nothing is created, and a directory that does not exist
    /// reads as empty (no state, no history, nothing installed).
    pub fn open_read_only(path: &Path) -> anyhow::Result<SharedDir> {
        let root = match path.canonicalize() {
            Ok(root) => root,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => std::path::absolute(path)
                .with_context(|| {
                    format!(
                        "failed to resolve the shared directory `{}`",
                        path.display()
                    )
                })?,
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "failed to resolve the shared directory `{}`",
                        path.display()
                    )
                });
            }
        };
        refuse_system_directory(&root)?;
        Ok(SharedDir { root })
    }

    /// This shared directory's id, fixed when e first opened it: containers and volumes e
    /// creates for it carry it, so that e finds them again from any machine.
    pub fn id(&self) -> anyhow::Result<String> {
        let path = self.e_dir().join("id");
        let text = fs::read_to_string(&path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        let id = text.trim();
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "`{}` is damaged: it must hold 32 hex digits\nhint: restore it from a backup of the shared directory",
                path.display()
            );
        }
        Ok(id.to_owned())
    }

    fn ensure_id(&self) -> anyhow::Result<()> {
        let path = self.e_dir().join("id");
        if fs::symlink_metadata(&path).is_err() {
            self.write_atomic(&path, format!("{}\n", random_id()?).as_bytes())?;
        }
        Ok(())
    }

    /// What modules see of the shared directory, as data: every file and directory but e's
    /// area and the backup. A link, FIFO, socket or device in it is refused: e never hands a
    /// module something it did not put there itself.
    pub fn load_tree(&self) -> anyhow::Result<Tree> {
        Tree::read_dir_except(&self.root, &[E_DIR, BACKUP_FILE], &Limits::DEFAULT).map_err(
            |refusal: Refusal| {
                anyhow::anyhow!(
                    "the shared directory `{}` holds `{}`, which e cannot hand to a module: {}\nhint: e hands modules regular files and directories only; move it out of the shared directory",
                    self.root.display(),
                    refusal.path,
                    refusal.reason
                )
            },
        )
    }

    /// The shared directory's absolute path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `state.yml`.
    pub fn state_path(&self) -> PathBuf {
        self.root.join(STATE_FILE)
    }

    /// e's area, `.e/`.
    pub fn e_dir(&self) -> PathBuf {
        self.root.join(E_DIR)
    }

    /// Reads `state.yml` without following a link; `None` when there is none.
    pub fn read_state(&self) -> anyhow::Result<Option<Vec<u8>>> {
        match read_regular(&self.state_path())? {
            FileCheck::Absent => Ok(None),
            FileCheck::Regular(bytes) => Ok(Some(bytes)),
            FileCheck::Bad(reason) => bail!(
                "`{}` {reason}\nhint: restore it from `{BACKUP_FILE}` or remove it",
                self.state_path().display()
            ),
        }
    }

    /// Takes the exclusive lock, waiting up to `timeout` for another e to release it.
    /// `command` describes this e for whoever waits on it.
    pub fn lock(&self, command: &str, timeout: Duration) -> anyhow::Result<Lock> {
        let path = self.e_dir().join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("failed to open the lock file `{}`", path.display()))?;
        let started = Instant::now();
        let mut waiting = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < timeout => {
                    if !waiting {
                        waiting = true;
                        crate::output::note(&format!(
                            "waiting up to {} for the lock of `{}`, held by {}",
                            humantime::format_duration(timeout),
                            self.root.display(),
                            holder_of(&mut file)
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let who = holder_of(&mut file);
                    bail!(
                        "the shared directory `{}` is locked by {who}\nhint: wait for it to finish, or pass `--lock-timeout 5m` to wait longer",
                        self.root.display()
                    );
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err)
                        .with_context(|| format!("failed to lock `{}`", path.display()));
                }
            }
        }
        if waiting {
            crate::output::note(&format!(
                "got the lock of `{}` after {:.1} s",
                self.root.display(),
                started.elapsed().as_secs_f64()
            ));
        }
        let holder = Holder {
            pid: std::process::id(),
            command: command.to_owned(),
            since: SystemTime::now(),
        };
        file.set_len(0)?;
        // Reading who held it moved the file's position; the new holder starts at 0.
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
        file.write_all(serde_json::to_string(&holder)?.as_bytes())?;
        file.flush()?;
        // A commit that a crash cut short is finished (or dropped) before anyone reads.
        self.finish_commits()?;
        Ok(Lock { _file: file })
    }

    /// Writes a file atomically: a temporary file in `.e/tmp`, fsync, rename over the target,
    /// fsync of its directory, so that it survives a power loss. A rename replaces a link
    /// rather than following it.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        self.write_whole(path, bytes, true)
    }

    /// Writes a file atomically for readers, as [`SharedDir::write_atomic`] does, without
    /// flushing it to disk: for records that must outlive e's process (`kill -9`) but mean
    /// nothing after the machine stops, such as the record of a run in progress, whose
    /// container stops with the machine.
    pub fn write_replacing(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        self.write_whole(path, bytes, false)
    }

    fn write_whole(&self, path: &Path, bytes: &[u8], durable: bool) -> anyhow::Result<()> {
        let mut temp = new_file_in(&self.e_dir().join("tmp"))
            .context("failed to create a temporary file in the shared directory")?;
        temp.write_all(bytes)?;
        if durable {
            temp.as_file().sync_all()?;
        }
        temp.persist(path)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        if durable
            && let Some(parent) = path.parent()
            && let Ok(dir) = File::open(parent)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Where a run's history record lives, relative to the shared directory.
    pub fn history_path(&self, record: &Run) -> String {
        let millis = record
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("{E_DIR}/history/{millis:013}-{}.json", record.run)
    }

    /// Appends a run to the history.
    pub fn record(&self, record: &Run) -> anyhow::Result<()> {
        let path = self.root.join(self.history_path(record));
        self.write_atomic(&path, serde_json::to_string_pretty(record)?.as_bytes())
    }

    /// Every recorded run, oldest first.
    pub fn history(&self) -> anyhow::Result<Vec<Run>> {
        let dir = self.e_dir().join("history");
        let entries = match fs::read_dir(&dir) {
            // A shared directory opened read-only may have none yet.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            entries => entries.with_context(|| format!("failed to read `{}`", dir.display()))?,
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                let text = fs::read(path)
                    .with_context(|| format!("failed to read `{}`", path.display()))?;
                serde_json::from_slice(&text)
                    .with_context(|| format!("`{}` is not a history record", path.display()))
            })
            .collect()
    }
}

/// e's record of a module version it applied successfully: what makes a module "installed".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// Module name.
    pub module: String,
    /// The version applied.
    pub version: String,
    /// The image it ran.
    pub image: String,
    /// The engine's id of that image (`sha256:...`).
    pub image_id: String,
    /// When it was applied.
    #[serde(with = "time")]
    pub applied: SystemTime,
    /// The command that applied it (`e apply bmk`).
    pub command: String,
    /// Which installed module it uses for each requirement (`bindings.rs`); `None` in
    /// records of e before bindings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindings: Option<Vec<crate::bindings::Binding>>,
}

impl SharedDir {
    fn installed_path(&self) -> PathBuf {
        self.e_dir().join("installed.json")
    }

    /// Every installed module, by name.
    pub fn installed(&self) -> anyhow::Result<std::collections::BTreeMap<String, Installed>> {
        let path = self.installed_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "`{}` is damaged\nhint: restore it from a backup of the shared directory",
                    path.display()
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(err) => Err(err).with_context(|| format!("failed to read `{}`", path.display())),
        }
    }
}

/// Who holds the lock, as its lock file says: `e (pid N) running `COMMAND` since TIME`.
fn holder_of(file: &mut File) -> String {
    use std::io::Seek as _;
    let mut holder = String::new();
    let _ = file
        .seek(std::io::SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut holder));
    match serde_json::from_str::<Holder>(&holder) {
        Ok(h) => format!(
            "e (pid {}) running `{}` since {}",
            h.pid,
            h.command,
            humantime::format_rfc3339_seconds(h.since)
        ),
        Err(_) => "another e".to_owned(),
    }
}

/// Who holds the lock, written into the lock file.
#[derive(Serialize, Deserialize)]
struct Holder {
    pid: u32,
    command: String,
    #[serde(with = "time")]
    since: SystemTime,
}

/// The exclusive lock on a shared directory; released when dropped, or by the kernel when e
/// dies, so a killed e never blocks the next one.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// One recorded run of a module method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The run's id, also on its container's `e.run` label.
    pub run: String,
    /// Module name.
    pub module: String,
    /// Module version.
    pub version: String,
    /// The method or command.
    pub command: String,
    /// When it started.
    #[serde(with = "time")]
    pub started: SystemTime,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The container's exit code; `None` when no container ran.
    pub exit_code: Option<i64>,
    /// `ok`, `changes` (plan exit 2), `drift` (audit exit 2), `failed`, `restored`, `timeout`,
    /// `interrupted` or `error`.
    pub outcome: String,
    /// Top-level state keys the run changed (empty when restored).
    #[serde(default)]
    pub changed_keys: Vec<String>,
    /// Anything worth knowing later (why a state was restored, flags like `--force`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// How the run's copy reached its container: `bind` or `archive` (absent in records of
    /// e before runs worked on copies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
    /// Who ran it, where: `user@host` (absent in records of e before shared backends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

enum FileCheck {
    Absent,
    Regular(Vec<u8>),
    Bad(String),
}

/// Reads a file only if it is a regular file under the size cap, never following a link and
/// never blocking on a FIFO.
fn read_regular(path: &Path) -> anyhow::Result<FileCheck> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(FileCheck::Absent),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to inspect `{}`", path.display()));
        }
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Ok(FileCheck::Bad(
            "is a symbolic link, not a regular file".to_owned(),
        ));
    }
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else {
            "a special file (FIFO, socket or device)"
        };
        return Ok(FileCheck::Bad(format!("is {what}, not a regular file")));
    }
    if meta.len() > MAX_STATE_BYTES {
        return Ok(FileCheck::Bad(format!(
            "is {} bytes, over the {} MiB limit",
            meta.len(),
            MAX_STATE_BYTES / 1024 / 1024
        )));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    if !file.metadata()?.is_file() {
        return Ok(FileCheck::Bad(
            "changed into something that is not a regular file".to_owned(),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Ok(FileCheck::Bad(format!(
            "is over the {} MiB limit",
            MAX_STATE_BYTES / 1024 / 1024
        )));
    }
    Ok(FileCheck::Regular(bytes))
}

/// Directories of the system that must never be a shared directory: a module's result is
/// committed into it, and a module once saw it whole.
const SYSTEM_DIRECTORIES: [&str; 17] = [
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/proc", "/root", "/run",
    "/sbin", "/sys", "/tmp", "/usr", "/var", "/var/run",
];

/// Refuses `/`, a system directory, or a directory under `/proc`, `/sys`, `/dev` or `/run`.
fn refuse_system_directory(root: &Path) -> anyhow::Result<()> {
    let text = root.to_string_lossy();
    let system = SYSTEM_DIRECTORIES.contains(&text.as_ref())
        || [
            "/proc/",
            "/sys/",
            "/dev/",
            "/run/",
            "/var/run/",
            "/etc/",
            "/usr/",
            "/boot/",
        ]
        .iter()
        .any(|prefix| text.starts_with(prefix));
    if system {
        bail!(
            "`{text}` cannot be a shared directory: it is a system directory\nhint: pass `--shared DIR` with a directory of its own, such as `./shared`"
        );
    }
    Ok(())
}

/// A temporary file in `dir` with the mode of a file the user writes (0644 under the usual
/// umask), to be renamed into place: tempfile's own default (0600) would make files e writes
/// unreadable to the user's group and to the tools they share the directory with.
pub fn new_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt as _;
    tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
}

/// A new random id in hex, from the kernel's generator.
pub(crate) fn random_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("failed to read `/dev/urandom`")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Parses a state as a YAML mapping; an empty file is an empty mapping.
pub fn parse_mapping(bytes: &[u8]) -> Result<serde_yaml::Mapping, String> {
    // The same bounded parser as the checks before commit: a state edited by hand is no
    // safer to parse than one a module wrote.
    crate::run::check::parse_state(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> (tempfile::TempDir, SharedDir) {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedDir::open(&dir.path().join("shared")).unwrap();
        (dir, shared)
    }

    #[test]
    fn lock_names_its_holder_and_is_released_on_drop() {
        let (_dir, shared) = shared();
        let lock = shared.lock("e apply bmk", Duration::ZERO).unwrap();
        let err = shared
            .lock("e apply azi", Duration::from_millis(100))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("`e apply bmk`"), "{err}");
        drop(lock);
        shared.lock("e apply azi", Duration::ZERO).unwrap();
    }

    #[test]
    fn files_e_writes_have_normal_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_dir, shared) = shared();
        let path = shared.root().join("written.yml");
        shared.write_atomic(&path, b"a: 1\n").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // SAFETY: umask only swaps the process's mask; it is put back at once.
        let umask = unsafe {
            let mask = libc::umask(0o022);
            libc::umask(mask);
            mask
        };
        assert_eq!(mode, 0o644 & !(umask as u32), "{mode:o}");
    }

    #[test]
    fn history_round_trips_in_order() {
        let (_dir, shared) = shared();
        for (i, command) in ["init", "apply"].iter().enumerate() {
            let run = Run {
                run: format!("r{i}"),
                module: "azi".into(),
                version: "0.1.0".into(),
                command: (*command).into(),
                started: SystemTime::UNIX_EPOCH + Duration::from_secs(i as u64 + 1),
                duration_ms: 5,
                exit_code: Some(0),
                outcome: "ok".into(),
                changed_keys: vec!["azi".into()],
                notes: vec![],
                transfer: None,
                by: None,
            };
            shared.record(&run).unwrap();
        }
        let commands: Vec<String> = shared
            .history()
            .unwrap()
            .into_iter()
            .map(|r| r.command)
            .collect();
        assert_eq!(commands, ["init", "apply"]);
    }
}
