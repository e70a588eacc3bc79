//! What a backend command that died leaves on its machine: its private directory (a snapshot
//! of the environment, in the temporary directory) and the copies in memory of the run it was
//! in (`run/memory_copy.rs`). Neither can be settled by a later command, as a dead e's run of a
//! local shared directory is: nothing of it reached the backend, and no other command ever
//! works in that directory. So every backend command removes those of dead commands of its
//! user before it makes its own.
//!
//! A command is alive while it holds a lock on the `alive` file of its directory: the kernel
//! releases the lock when the process ends, however it ends. The file is locked before it gets
//! its name, so a directory that has one and whose lock can be taken is a dead command's.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::Context as _;

/// The prefix of a private directory's name, in the temporary directory.
pub const PREFIX: &str = "e-backend-";

/// The file a live command holds locked.
const ALIVE: &str = "alive";

/// Marks `dir` as the private directory of this process for as long as the returned file is
/// open.
pub fn mark_alive(dir: &Path) -> anyhow::Result<File> {
    let fresh = dir.join(format!("{ALIVE}.new"));
    let file =
        File::create(&fresh).with_context(|| format!("failed to create `{}`", fresh.display()))?;
    file.try_lock()
        .with_context(|| format!("failed to lock `{}`", fresh.display()))?;
    let alive = dir.join(ALIVE);
    std::fs::rename(&fresh, &alive)
        .with_context(|| format!("failed to create `{}`", alive.display()))?;
    Ok(file)
}

/// Removes, from `temp` (the temporary directory), the private directories of this user's
/// backend commands that died, with their copies in memory; says how many it removed.
/// Housekeeping: what cannot be read or removed is left for the next command.
pub fn sweep(temp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return 0;
    };
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        let named = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(PREFIX));
        let mine =
            std::fs::symlink_metadata(&dir).is_ok_and(|meta| meta.is_dir() && meta.uid() == me);
        if named && mine && is_dead(&dir) && remove(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether `dir` is the private directory of a command that ended without removing it.
fn is_dead(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(ALIVE)) else {
        // Being made, or not one of e's.
        return false;
    };
    file.try_lock().is_ok()
}

/// Removes a dead command's copies in memory, then its directory.
fn remove(dir: &Path) -> anyhow::Result<()> {
    remove_copies(dir)?;
    std::fs::remove_dir_all(dir).with_context(|| format!("failed to remove `{}`", dir.display()))
}

/// Removes the copies in memory of the runs in the private directory `dir`: for when no run
/// goes on there any more.
pub fn remove_copies(dir: &Path) -> anyhow::Result<()> {
    let shared = crate::store::SharedDir::open_read_only(&dir.join("shared"))?;
    if shared.e_dir().join("id").is_file() {
        crate::run::memory_copy::remove_all(&shared)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_directories_of_dead_commands_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let dir = temp.path().join(name);
            std::fs::create_dir_all(dir.join("shared")).unwrap();
            dir
        };
        let live = make("e-backend-live");
        let _held = mark_alive(&live).unwrap();
        let dead = make("e-backend-dead");
        drop(mark_alive(&dead).unwrap());
        let starting = make("e-backend-starting");
        let other = make("other-dead");
        drop(mark_alive(&other).unwrap());

        assert_eq!(sweep(temp.path()), 1);
        assert!(!dead.exists());
        assert!(live.exists(), "its command still holds it");
        assert!(starting.exists(), "not marked yet: being made");
        assert!(other.exists(), "not named as e names them");
        // Once its command ends, the next sweep takes it.
        drop(_held);
        assert_eq!(sweep(temp.path()), 1);
        assert!(!live.exists());
    }

    #[test]
    fn a_dead_commands_copies_in_memory_go_with_its_directory() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("e-backend-with-copy");
        let shared = crate::store::SharedDir::open(&dir.join("shared")).unwrap();
        drop(mark_alive(&dir).unwrap());
        let key = crate::run::memory_copy::key(&shared).unwrap();
        let copy = crate::run::memory_copy::create(&key, "killed-run")
            .unwrap()
            .expect("this machine has a tmpfs with room (/dev/shm)");
        assert_eq!(sweep(temp.path()), 1);
        assert!(!copy.exists(), "{}", copy.display());
        assert!(!dir.exists());
    }
}
