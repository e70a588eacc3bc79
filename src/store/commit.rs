//! Where a run is committed: one change to the shared directory that happens whole or not at
//! all, whatever the fault (disk full, `kill -9`, power loss).
//!
//! A commit is staged first: every new file is written and fsynced under
//! `.e/commit/<id>/`, beside the live files, which are not touched. Then a journal naming every
//! step (rename this staged file over that target, remove that path, ...) is written, fsynced
//! and renamed into place: the journal's appearance is the commit point. Then the steps run
//! (renames need no space) and the staging directory goes. An error before the commit point
//! removes the staging directory and leaves the shared directory exactly as it was; a crash
//! after it is finished by [`SharedDir::finish_commits`], which runs under the lock before any
//! other access, so a reader never sees half a commit. Replaying a step twice is harmless.
//!
//! A change of one file into a directory that exists (most often a run's history record
//! alone: a method that changed nothing) needs no journal: the file is written and flushed in
//! `.e/tmp/`, renamed over its target (the rename is the commit point), and the target's
//! directory flushed, as git and sqlite replace a file. That is two flushes and one new inode
//! instead of seven and three.

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::SharedDir;
use crate::run::tree::{Node, Tree};

/// The journal's name in a staging directory.
const JOURNAL: &str = "journal.json";

/// A change to the shared directory, by path relative to its root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Directories to create (parents first), with their modes.
    pub dirs: Vec<(String, u32)>,
    /// Files to write: path, content, mode.
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Files and directories to remove (a directory only once empty).
    pub removes: Vec<String>,
    /// e's own directories to remove once the change is in (a run's private copy).
    pub cleanup: Vec<String>,
}

impl Change {
    /// What turns `base` into `result`: the module-visible part of a run's commit.
    pub fn between(base: &Tree, result: &Tree) -> Change {
        let mut change = Change::default();
        for (path, node) in &result.entries {
            if base.entries.get(path) == Some(node) {
                continue;
            }
            match node {
                Node::Dir { mode } => change.dirs.push((path.clone(), *mode)),
                Node::File { bytes, mode } => {
                    change.files.push((path.clone(), bytes.clone(), *mode));
                }
            }
        }
        // Deepest first, so that a directory is empty when its turn comes.
        let mut removes: Vec<String> = base
            .entries
            .iter()
            .filter(|(path, node)| match result.entries.get(*path) {
                None => true,
                // A file that became a directory (or the reverse) goes first.
                Some(other) => {
                    matches!(node, Node::Dir { .. }) != matches!(other, Node::Dir { .. })
                }
            })
            .map(|(path, _)| path.clone())
            .collect();
        removes.sort_by_key(|path| std::cmp::Reverse(path.matches('/').count()));
        change.removes = removes;
        change
    }

    /// Adds a file to write.
    pub fn write(&mut self, path: impl Into<String>, bytes: Vec<u8>) {
        self.files.push((path.into(), bytes, 0o644));
    }

    /// Whether the change does nothing.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
            && self.files.is_empty()
            && self.removes.is_empty()
            && self.cleanup.is_empty()
    }
}

/// One step of a journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Step {
    /// Remove a path (a file, or an empty directory, or a directory of a kind change).
    Remove { target: String },
    /// Create a directory if it is not there.
    Mkdir { target: String, mode: u32 },
    /// Rename a staged file over its target.
    Rename { staged: String, target: String },
    /// Remove one of e's directories with everything in it.
    Cleanup { target: String },
}

/// The journal: every step of a commit, in order.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    steps: Vec<Step>,
}

impl SharedDir {
    fn commit_dir(&self) -> PathBuf {
        self.e_dir().join("commit")
    }

    /// Commits `change` whole or not at all. The caller holds the lock; `id` names the commit
    /// (the run id).
    /// A commit that changes the directory's content raises its serial (`serial.rs`) in
    /// the same commit.
    pub fn commit(&self, mut change: Change, id: &str) -> anyhow::Result<()> {
        if change.is_empty() {
            return Ok(());
        }
        self.count(&mut change)?;
        if let Some(one) = self.single_file(&change)? {
            return self.commit_one(one, &change, id);
        }
        let staging = self.commit_dir().join(id);
        let staged = self.stage(&change, &staging);
        if let Err(err) = staged {
            // Nothing live was touched; the staging directory must not survive either.
            let _ = fs::remove_dir_all(&staging);
            return Err(err.context(format!(
                "nothing was committed: the shared directory `{}` is as it was",
                self.root().display()
            )));
        }
        self.replay(&staging)
    }

    /// Where the change's only file goes, when it is one file and nothing else, into a
    /// directory that is already there.
    fn single_file(&self, change: &Change) -> anyhow::Result<Option<PathBuf>> {
        if !(change.dirs.is_empty()
            && change.removes.is_empty()
            && change.cleanup.is_empty()
            && change.files.len() == 1)
        {
            return Ok(None);
        }
        let at = self.live_path(&change.files[0].0)?;
        let parent_is_dir = at
            .parent()
            .and_then(|parent| fs::symlink_metadata(parent).ok())
            .is_some_and(|meta| meta.is_dir());
        let target_is_dir = fs::symlink_metadata(&at).is_ok_and(|meta| meta.is_dir());
        Ok((parent_is_dir && !target_is_dir).then_some(at))
    }

    /// Commits a change of one file to `at` by a flushed file renamed over it.
    fn commit_one(&self, at: PathBuf, change: &Change, id: &str) -> anyhow::Result<()> {
        let (_, bytes, mode) = &change.files[0];
        let temporary = self.e_dir().join("tmp").join(format!("commit-{id}"));
        let staged = write_synced(&temporary, bytes, *mode).and_then(|()| {
            fs::rename(&temporary, &at)
                .with_context(|| format!("failed to replace `{}`", at.display()))
        });
        if let Err(err) = staged {
            let _ = fs::remove_file(&temporary);
            return Err(err.context(format!(
                "nothing was committed: the shared directory `{}` is as it was",
                self.root().display()
            )));
        }
        sync_dir(at.parent().unwrap_or(self.root()))
    }

    /// Writes the staged files and the journal; returns once the commit point is passed.
    fn stage(&self, change: &Change, staging: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(staging)
            .with_context(|| format!("failed to create `{}`", staging.display()))?;
        let mut steps = Vec::new();
        for path in &change.removes {
            steps.push(Step::Remove {
                target: path.clone(),
            });
        }
        for (path, mode) in &change.dirs {
            steps.push(Step::Mkdir {
                target: path.clone(),
                mode: *mode,
            });
        }
        for (n, (path, bytes, mode)) in change.files.iter().enumerate() {
            let name = n.to_string();
            write_synced(&staging.join(&name), bytes, *mode)?;
            steps.push(Step::Rename {
                staged: name,
                target: path.clone(),
            });
        }
        for path in &change.cleanup {
            steps.push(Step::Cleanup {
                target: path.clone(),
            });
        }
        sync_dir(staging)?;
        let journal = serde_json::to_vec(&Journal { steps })?;
        let temporary = staging.join(format!("{JOURNAL}.tmp"));
        write_synced(&temporary, &journal, 0o644)?;
        fs::rename(&temporary, staging.join(JOURNAL))
            .with_context(|| format!("failed to write the journal in `{}`", staging.display()))?;
        sync_dir(staging)?;
        // The staging directory's own entry: without it, a power loss during the steps could
        // lose the journal and keep half of them.
        sync_dir(&self.commit_dir())
    }

    /// Runs the steps of the journal in `staging`, then removes it. Idempotent.
    fn replay(&self, staging: &Path) -> anyhow::Result<()> {
        let path = staging.join(JOURNAL);
        let text =
            fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let journal: Journal = serde_json::from_slice(&text)
            .with_context(|| format!("`{}` is not a commit journal", path.display()))?;
        let mut touched: Vec<PathBuf> = Vec::new();
        for step in &journal.steps {
            match step {
                Step::Remove { target } => {
                    let at = self.live_path(target)?;
                    match fs::symlink_metadata(&at) {
                        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&at),
                        Ok(_) => fs::remove_file(&at),
                        Err(_) => Ok(()),
                    }
                    .with_context(|| format!("failed to remove `{}`", at.display()))?;
                    touched.extend(at.parent().map(Path::to_owned));
                }
                Step::Mkdir { target, mode } => {
                    let at = self.live_path(target)?;
                    match fs::symlink_metadata(&at) {
                        Ok(meta) if meta.is_dir() => {}
                        Ok(_) => bail!("`{}` is in the way of a directory", at.display()),
                        Err(_) => fs::create_dir(&at)
                            .with_context(|| format!("failed to create `{}`", at.display()))?,
                    }
                    fs::set_permissions(&at, fs::Permissions::from_mode(*mode))?;
                    touched.extend(at.parent().map(Path::to_owned));
                }
                Step::Rename { staged, target } => {
                    let from = staging.join(staged);
                    let at = self.live_path(target)?;
                    if fs::symlink_metadata(&from).is_ok() {
                        if let Some(parent) = at.parent() {
                            fs::create_dir_all(parent).with_context(|| {
                                format!("failed to create `{}`", parent.display())
                            })?;
                        }
                        fs::rename(&from, &at)
                            .with_context(|| format!("failed to replace `{}`", at.display()))?;
                    }
                    touched.extend(at.parent().map(Path::to_owned));
                }
                Step::Cleanup { target } => {
                    let at = self.live_path(target)?;
                    if fs::symlink_metadata(&at).is_ok() {
                        fs::remove_dir_all(&at)
                            .with_context(|| format!("failed to remove `{}`", at.display()))?;
                    }
                }
            }
        }
        touched.sort();
        touched.dedup();
        // A directory a later step removed has nothing left to flush.
        for dir in touched.iter().filter(|dir| dir.is_dir()) {
            sync_dir(dir)?;
        }
        fs::remove_dir_all(staging)
            .with_context(|| format!("failed to remove `{}`", staging.display()))?;
        sync_dir(&self.commit_dir())
    }

    /// Finishes the commits a crash interrupted after their commit point and drops the ones
    /// it interrupted before. Runs under the lock, before anything reads the directory.
    pub(super) fn finish_commits(&self) -> anyhow::Result<()> {
        let dir = self.commit_dir();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut stagings: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        // Commits are made one at a time under the lock; their ids sort by time.
        stagings.sort();
        for staging in stagings {
            if staging.join(JOURNAL).is_file() {
                self.replay(&staging)?;
            } else {
                fs::remove_dir_all(&staging)
                    .with_context(|| format!("failed to remove `{}`", staging.display()))?;
            }
        }
        Ok(())
    }

    /// The live path of `relative`, refusing `..`, absolute paths and links on the way.
    fn live_path(&self, relative: &str) -> anyhow::Result<PathBuf> {
        let mut at = self.root().to_owned();
        let parts: Vec<&str> = relative.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() || *part == "." || *part == ".." {
                bail!("`{relative}` is not a path inside the shared directory");
            }
            at.push(part);
            if i + 1 < parts.len()
                && let Ok(meta) = fs::symlink_metadata(&at)
                && meta.file_type().is_symlink()
            {
                bail!(
                    "`{}` is a symbolic link; e never writes through one\nhint: remove the link",
                    at.display()
                );
            }
        }
        Ok(at)
    }
}

/// Writes a new file and flushes it to disk.
fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Flushes a directory's entries (renames, creations) to disk.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("failed to flush `{}`", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> (tempfile::TempDir, SharedDir) {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedDir::open(&dir.path().join("shared")).unwrap();
        (dir, shared)
    }

    fn tree(files: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, text) in files {
            tree.insert_file(path, text.as_bytes().to_vec(), 0o644);
        }
        tree
    }

    #[test]
    fn a_change_turns_the_base_into_the_result() {
        let (_dir, shared) = shared();
        let base = tree(&[("state.yml", "a: 1\n"), ("old/x", "x"), ("keep", "k")]);
        let change = Change::between(&Tree::default(), &base);
        shared.commit(change.clone(), "1").unwrap();
        assert_eq!(shared.load_tree().unwrap(), base);
        let result = tree(&[("state.yml", "a: 2\n"), ("new/y", "y"), ("keep", "k")]);
        shared.commit(Change::between(&base, &result), "2").unwrap();
        assert_eq!(shared.load_tree().unwrap(), result);
        assert!(!shared.commit_dir().join("2").exists());
    }

    #[test]
    fn a_commit_that_fails_before_its_journal_changes_nothing() {
        let (_dir, shared) = shared();
        let base = tree(&[("state.yml", "a: 1\n")]);
        shared
            .commit(Change::between(&Tree::default(), &base), "1")
            .unwrap();
        // A staging directory that cannot be created stands for a full disk.
        fs::write(shared.commit_dir().join("2"), "in the way").unwrap();
        let result = tree(&[("state.yml", "a: 2\n")]);
        let err = shared
            .commit(Change::between(&base, &result), "2")
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("nothing was committed"),
            "{err:#}"
        );
        assert_eq!(shared.load_tree().unwrap(), base);
    }

    #[test]
    fn a_crash_after_the_journal_is_finished_and_one_before_is_dropped() {
        let (_dir, shared) = shared();
        let base = tree(&[("state.yml", "a: 1\n"), ("gone", "g")]);
        shared
            .commit(Change::between(&Tree::default(), &base), "1")
            .unwrap();
        let result = tree(&[("state.yml", "a: 2\n"), ("cfg.yml", "c")]);
        // Staged with its journal, but never replayed: as if e died at the commit point.
        shared
            .stage(
                &Change::between(&base, &result),
                &shared.commit_dir().join("2"),
            )
            .unwrap();
        // Staged without a journal: as if e died while staging.
        let other = tree(&[("state.yml", "a: 3\n")]);
        let staging = shared.commit_dir().join("3");
        shared
            .stage(&Change::between(&result, &other), &staging)
            .unwrap();
        fs::remove_file(staging.join(JOURNAL)).unwrap();
        assert_eq!(shared.load_tree().unwrap(), base);
        shared.finish_commits().unwrap();
        assert_eq!(shared.load_tree().unwrap(), result);
        assert_eq!(fs::read_dir(shared.commit_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_change_of_one_file_is_renamed_into_place_without_a_journal() {
        let (_dir, shared) = shared();
        let base = tree(&[("state.yml", "a: 1\n")]);
        shared
            .commit(Change::between(&Tree::default(), &base), "1")
            .unwrap();
        let mut change = Change::default();
        change.write(".e/history/2.json", b"{}".to_vec());
        assert!(shared.single_file(&change).unwrap().is_some());
        shared.commit(change, "2").unwrap();
        let record = shared.e_dir().join("history/2.json");
        assert_eq!(fs::read(&record).unwrap(), b"{}");
        let mode = fs::metadata(&record).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{mode:o}");
        assert_eq!(shared.load_tree().unwrap(), base);
        assert_eq!(fs::read_dir(shared.commit_dir()).unwrap().count(), 0);
        assert_eq!(fs::read_dir(shared.e_dir().join("tmp")).unwrap().count(), 0);
        // A file into a directory that is not there yet, or with anything else beside it,
        // goes through the journal.
        let mut change = Change::default();
        change.write("new/x", b"x".to_vec());
        assert!(shared.single_file(&change).unwrap().is_none());
        let mut change = Change::default();
        change.write("a", b"a".to_vec());
        change.write("b", b"b".to_vec());
        assert!(shared.single_file(&change).unwrap().is_none());
    }

    #[test]
    fn a_change_of_one_file_that_fails_before_its_rename_changes_nothing() {
        let (_dir, shared) = shared();
        let base = tree(&[("state.yml", "a: 1\n")]);
        shared
            .commit(Change::between(&Tree::default(), &base), "1")
            .unwrap();
        // A staged file that cannot be created stands for a full disk.
        fs::create_dir(shared.e_dir().join("tmp/commit-2")).unwrap();
        let mut change = Change::default();
        change.write(".e/history/2.json", b"{}".to_vec());
        let err = shared.commit(change, "2").unwrap_err();
        assert!(
            format!("{err:#}").contains("nothing was committed"),
            "{err:#}"
        );
        assert!(!shared.e_dir().join("history/2.json").exists());
        assert_eq!(shared.load_tree().unwrap(), base);
    }

    #[test]
    fn replaying_a_half_done_journal_completes_it() {
        let (_dir, shared) = shared();
        let base = tree(&[("state.yml", "a: 1\n"), ("b", "1")]);
        shared
            .commit(Change::between(&Tree::default(), &base), "1")
            .unwrap();
        let result = tree(&[("state.yml", "a: 2\n"), ("b", "2")]);
        let staging = shared.commit_dir().join("2");
        shared
            .stage(&Change::between(&base, &result), &staging)
            .unwrap();
        // The first rename happened before the crash.
        fs::rename(staging.join("0"), shared.root().join("b")).unwrap();
        shared.finish_commits().unwrap();
        assert_eq!(shared.load_tree().unwrap(), result);
    }
}
