//! A bind-mode run's private copy in memory: a directory of e's own on a tmpfs of this
//! machine (`$XDG_RUNTIME_DIR` or `/dev/shm`, as for secret files), instead of under the
//! shared directory. On a disk every file of the copy costs an inode created and removed (on
//! this project's VM, a synchronous discard each): about 1 ms of CPU and several of wall per
//! run. Nothing is committed from the copy itself: e reads it back into memory, checks it, and
//! the commit writes its own flushed files (`store/commit.rs`), so a commit is as atomic and
//! crash-safe wherever the copy was. The run's record stays in `.e/runs/<run>/run.json` and
//! names the copy, so the next e finds a dead e's run and its result as before; a result kept
//! aside is written to `.e/kept/<run>/` on the disk. What is lost is only what a tmpfs loses:
//! the result of a run whose e was killed, if the machine restarts before the next command.
//! A module's writes into the copy are charged to its container's memory limit.
//!
//! `E_MEMORY_COPY=off` keeps the copy in the run's directory; so does a tmpfs with less than
//! [`MIN_FREE`] free.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::secret_files::{is_tmpfs, tmpfs_dir};

/// What a tmpfs must have free to hold a copy: twice the most a result may hold.
const MIN_FREE: u64 = 2 * super::tree::Limits::DEFAULT.max_total_bytes;

/// The prefix of a copy's directory name.
const PREFIX: &str = "e-run-";

/// What names the copies of one shared directory: its id and a hash of where it is on this
/// machine. A backend's environment has one id but a private mirror per command (with its own
/// runs): by the id alone, one command's sweep would take another's copy for an orphan.
pub fn key(shared: &crate::store::SharedDir) -> anyhow::Result<String> {
    use std::os::unix::ffi::OsStrExt as _;
    let root = fs::canonicalize(shared.root()).unwrap_or_else(|_| shared.root().to_owned());
    Ok(format!(
        "{}-{:08x}",
        shared.id()?,
        crc32fast::hash(root.as_os_str().as_bytes())
    ))
}

/// Creates the private directory (mode 0700) of run `run` of the shared directory named by
/// `shared_key` (see [`key`]) on a tmpfs; `None` when there is no tmpfs with room, or it is
/// turned off.
pub fn create(shared_key: &str, run: &str) -> anyhow::Result<Option<PathBuf>> {
    if std::env::var("E_MEMORY_COPY").is_ok_and(|value| value == "off") {
        return Ok(None);
    }
    let Some(base) = tmpfs_dir().filter(|base| free_bytes(base) >= MIN_FREE) else {
        return Ok(None);
    };
    let dir = base.join(format!("{PREFIX}{shared_key}-{run}"));
    fs::create_dir(&dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    // Whatever the umask made of it, no one else on this machine may enter it.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    Ok(Some(dir))
}

/// Whether `dir`, read from a run's record, is such a directory: named so, right on a tmpfs,
/// this user's own, closed to others, and no link. e removes only those.
pub fn is_one(dir: &Path) -> bool {
    let named = dir
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with(PREFIX) && !name.contains('/'));
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    named
        && dir.parent().is_some_and(is_tmpfs)
        && fs::symlink_metadata(dir)
            .is_ok_and(|meta| meta.is_dir() && meta.uid() == me && meta.mode() & 0o077 == 0)
}

/// Removes a copy's directory, if it is there.
pub fn remove(dir: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("failed to remove `{}`", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Removes the copies of runs of the shared directory named by `shared_key` that have no
/// record any more (`has_record` says which do): an e killed between its commit, which removed the
/// run's record, and the removal of the copy. The caller holds the lock.
pub fn sweep(shared_key: &str, has_record: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    let Some(base) = tmpfs_dir() else {
        return Ok(());
    };
    let Ok(entries) = fs::read_dir(&base) else {
        return Ok(());
    };
    let mine = format!("{PREFIX}{shared_key}-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(run) = name.to_str().and_then(|name| name.strip_prefix(&mine)) else {
            continue;
        };
        let dir = entry.path();
        if !has_record(run) && is_one(&dir) {
            remove(&dir)?;
        }
    }
    Ok(())
}

/// Removes every copy of the shared directory `shared`: for a directory where no run goes on
/// any more (a backend command's private one, once the command ended or died).
pub fn remove_all(shared: &crate::store::SharedDir) -> anyhow::Result<()> {
    sweep(&key(shared)?, |_| false)
}

/// The bytes free for this user on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(name) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: a zeroed statvfs is a valid value of the plain C struct; statvfs writes only
    // into the struct it is given, and the name is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(name.as_ptr(), &mut stat) } != 0 {
        return 0;
    }
    #[expect(
        clippy::useless_conversion,
        reason = "the fields are u64 on this target, not on every one"
    )]
    let free = u64::from(stat.f_bavail) * u64::from(stat.f_frsize);
    free
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_a_private_directory_on_a_tmpfs_and_only_such_is_one() {
        let dir = create("0123", "test-memory-copy")
            .unwrap()
            .expect("this machine has a tmpfs with room (/dev/shm)");
        assert!(is_tmpfs(dir.parent().unwrap()), "{}", dir.display());
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
        assert!(is_one(&dir));
        // Anything else a record could name is not e's to remove.
        let disk = tempfile::tempdir().unwrap();
        let named = disk.path().join("e-run-0123-x");
        fs::create_dir(&named).unwrap();
        fs::set_permissions(&named, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!is_one(&named), "not on a tmpfs");
        assert!(!is_one(dir.parent().unwrap()), "not named so");
        let link = dir.parent().unwrap().join("e-run-0123-link");
        std::os::unix::fs::symlink(disk.path(), &link).unwrap();
        assert!(!is_one(&link), "a link");
        fs::remove_file(&link).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!is_one(&dir), "open to others");
        remove(&dir).unwrap();
        assert!(!dir.exists());
        remove(&dir).unwrap();
    }

    #[test]
    fn two_mirrors_of_one_environment_name_their_copies_apart() {
        // A backend's mirrors share the environment's id, each in a directory of its own.
        let dir = tempfile::tempdir().unwrap();
        let one = crate::store::SharedDir::open(&dir.path().join("one")).unwrap();
        let two = crate::store::SharedDir::open(&dir.path().join("two")).unwrap();
        fs::copy(one.e_dir().join("id"), two.e_dir().join("id")).unwrap();
        assert_eq!(one.id().unwrap(), two.id().unwrap());
        assert_ne!(key(&one).unwrap(), key(&two).unwrap());
        let again = crate::store::SharedDir::open(&dir.path().join("one")).unwrap();
        assert_eq!(key(&one).unwrap(), key(&again).unwrap());
        // So the sweep of one never takes the other's copy for an orphan.
        let theirs = create(&key(&two).unwrap(), "running-elsewhere")
            .unwrap()
            .unwrap();
        sweep(&key(&one).unwrap(), |_| false).unwrap();
        assert!(theirs.exists());
        remove(&theirs).unwrap();
    }

    #[test]
    fn a_sweep_removes_the_copies_of_this_shared_directory_without_a_record() {
        let made = |shared: &str, run: &str| create(shared, run).unwrap().unwrap();
        let orphan = made("sweep-mine", "gone");
        let running = made("sweep-mine", "running");
        let other = made("sweep-other", "gone");
        sweep("sweep-mine", |run| run == "running").unwrap();
        assert!(!orphan.exists());
        assert!(running.exists());
        assert!(other.exists(), "another shared directory's copy stays");
        remove(&running).unwrap();
        remove(&other).unwrap();
    }
}
