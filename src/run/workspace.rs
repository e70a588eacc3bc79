//! A run's own directory, `.e/runs/<run>/`: its record (`run.json`: who, what, from which
//! state) and, when the engine sees e's files, the private copy of the shared directory that
//! its container works on (`shared/`), or the name of that copy's directory when it is in
//! memory (`memory_copy.rs`). It exists from before the container starts until the
//! run is committed, kept aside or dropped, so a run whose e died is always found again
//! (see `recovery.rs`). A kept result lives in `.e/kept/<run>/`, with its copy always there.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::tree::Tree;
use crate::store::SharedDir;

/// The record of a run, written before its container starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run id (also the container's `e.run` label).
    pub run: String,
    /// Module name.
    pub module: String,
    /// Module version.
    pub version: String,
    /// The method.
    pub method: String,
    /// Whether the method may change the shared directory (not metadata, plan, audit).
    pub mutating: bool,
    /// `bind` or `archive`.
    pub transfer: String,
    /// The e command that ran it.
    pub command: String,
    /// `user@host`.
    pub owner: String,
    /// The process id of that e.
    pub pid: u32,
    /// When it started.
    #[serde(with = "crate::store::time")]
    pub started: SystemTime,
    /// The digest of the shared directory (what modules see) when the run's transaction
    /// began, set when the result is kept: it can be committed only onto that same content.
    /// (Computed then, not before the run: under the lock the directory cannot change.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_digest: Option<String>,
    /// Why the result was kept aside, once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
    /// The directory of the private copy when it is in memory (`memory_copy.rs`): the copy
    /// is its `shared/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<PathBuf>,
}

/// The directory of one run.
#[derive(Debug)]
pub struct Workspace {
    dir: PathBuf,
    /// Its record.
    pub info: RunInfo,
}

/// The record file's name in a run's directory.
const RECORD: &str = "run.json";
/// The copy's name in a run's directory.
const COPY: &str = "shared";

impl Workspace {
    /// Creates `.e/runs/<run>/` with its record.
    pub fn create(shared: &SharedDir, info: RunInfo) -> anyhow::Result<Workspace> {
        let dir = shared.e_dir().join("runs").join(&info.run);
        fs::create_dir(&dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
        let workspace = Workspace { dir, info };
        workspace.write_record(shared)?;
        Ok(workspace)
    }

    /// Opens the directory of a run found on disk (`.e/runs/<run>` or `.e/kept/<run>`).
    pub fn open(dir: &Path) -> anyhow::Result<Workspace> {
        let path = dir.join(RECORD);
        let text =
            fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let mut info: RunInfo = serde_json::from_slice(&text)
            .with_context(|| format!("`{}` is not the record of a run", path.display()))?;
        // A record names a directory e removes: only one of e's own copies is taken.
        info.memory = info.memory.filter(|dir| super::memory_copy::is_one(dir));
        Ok(Workspace {
            dir: dir.to_owned(),
            info,
        })
    }

    /// The record of a run in progress needs to outlive e, not the machine (with which its
    /// container stops); a kept result's record is flushed to disk.
    fn write_record(&self, shared: &SharedDir) -> anyhow::Result<()> {
        let path = self.dir.join(RECORD);
        let bytes = serde_json::to_string_pretty(&self.info)?;
        if self.info.kept.is_some() {
            shared.write_atomic(&path, bytes.as_bytes())
        } else {
            shared.write_replacing(&path, bytes.as_bytes())
        }
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the private copy is (for a bind-mode run, or a kept result).
    pub fn copy_dir(&self) -> PathBuf {
        match &self.info.memory {
            Some(memory) => memory.join(COPY),
            None => self.dir.join(COPY),
        }
    }

    /// The directory of the copy in memory, to remove once the run's record is gone (its
    /// commit removes it).
    pub fn memory(&self) -> Option<PathBuf> {
        self.info.memory.clone()
    }

    /// The directory's path relative to the shared directory, for a commit's cleanup.
    pub fn relative(&self, shared: &SharedDir) -> String {
        self.dir
            .strip_prefix(shared.root())
            .unwrap_or(&self.dir)
            .to_string_lossy()
            .into_owned()
    }

    /// Writes `tree` as the private copy, owned by `owner` (the container's user).
    pub fn fill(&self, tree: &Tree, owner: Option<(u32, u32)>) -> anyhow::Result<PathBuf> {
        let copy = self.copy_dir();
        fs::create_dir(&copy).with_context(|| format!("failed to create `{}`", copy.display()))?;
        tree.write_dir(&copy, owner)?;
        Ok(copy)
    }

    /// Moves the run to `.e/kept/<run>/` with `result` as its copy, and says why.
    pub fn keep(
        mut self,
        shared: &SharedDir,
        result: &Tree,
        why: &str,
        live_digest: String,
    ) -> anyhow::Result<()> {
        let target = shared.e_dir().join("kept").join(&self.info.run);
        fs::rename(&self.dir, &target)
            .with_context(|| format!("failed to move `{}` aside", self.dir.display()))?;
        self.dir = target;
        let copy = self.copy_dir();
        let memory = self.info.memory.take();
        if memory.is_some() {
            // Kept on the disk, to outlive the machine; until its record says so, the record
            // names the copy in memory, which stays as it is.
            self.fill(&result.without(".e"), None)?;
        } else if copy.is_dir() {
            // A bind-mode copy already holds the result, beside e's area that the run was
            // given: keeping it needs no space, even on a full disk.
            let area = copy.join(".e");
            if fs::symlink_metadata(&area).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&area)
                    .with_context(|| format!("failed to remove `{}`", area.display()))?;
            }
        } else {
            self.fill(result, None)?;
        }
        self.info.kept = Some(why.to_owned());
        self.info.live_digest = Some(live_digest);
        self.write_record(shared)?;
        memory.map_or(Ok(()), |dir| super::memory_copy::remove(&dir))
    }

    /// Removes the run's directory, then its copy in memory.
    pub fn remove(self) -> anyhow::Result<()> {
        fs::remove_dir_all(&self.dir)
            .with_context(|| format!("failed to remove `{}`", self.dir.display()))?;
        self.info
            .memory
            .map_or(Ok(()), |dir| super::memory_copy::remove(&dir))
    }
}

/// `user@host`, for records and labels.
pub fn owner() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            // SAFETY: getuid cannot fail and touches no memory.
            format!("uid{}", unsafe { libc::getuid() })
        });
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::memory_copy;

    fn info(run: &str, memory: Option<PathBuf>) -> RunInfo {
        RunInfo {
            run: run.to_owned(),
            module: "m".to_owned(),
            version: "0.1.0".to_owned(),
            method: "apply".to_owned(),
            mutating: true,
            transfer: "bind".to_owned(),
            command: "e apply m".to_owned(),
            owner: owner(),
            pid: std::process::id(),
            started: SystemTime::now(),
            live_digest: None,
            kept: None,
            memory,
        }
    }

    fn state(text: &str) -> Tree {
        let mut tree = Tree::default();
        tree.insert_file("state.yml", text.as_bytes().to_vec(), 0o644);
        tree
    }

    #[test]
    fn a_result_kept_from_a_copy_in_memory_is_on_the_disk_and_the_copy_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedDir::open(&dir.path().join("shared")).unwrap();
        let memory = memory_copy::create(&shared.id().unwrap(), "keep-test")
            .unwrap()
            .expect("this machine has a tmpfs with room (/dev/shm)");
        let workspace =
            Workspace::create(&shared, info("keep-test", Some(memory.clone()))).unwrap();
        workspace.fill(&state("a: 1\n"), None).unwrap();
        assert!(memory.join("shared/state.yml").is_file());
        assert!(!workspace.dir().join(COPY).exists(), "nothing on the disk");
        // The record names the copy: an e that finds the run finds its copy.
        let found = Workspace::open(workspace.dir()).unwrap();
        assert_eq!(found.copy_dir(), memory.join(COPY));
        workspace
            .keep(&shared, &state("a: 2\n"), "it failed", "digest".to_owned())
            .unwrap();
        let kept = Workspace::open(&shared.e_dir().join("kept/keep-test")).unwrap();
        assert_eq!(kept.info.memory, None);
        assert_eq!(kept.copy_dir(), kept.dir().join(COPY));
        assert_eq!(
            fs::read(kept.copy_dir().join("state.yml")).unwrap(),
            b"a: 2\n"
        );
        assert!(!memory.exists());
        kept.remove().unwrap();
    }

    #[test]
    fn removing_a_run_removes_its_copy_in_memory_and_nothing_a_record_names_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedDir::open(&dir.path().join("shared")).unwrap();
        let memory = memory_copy::create(&shared.id().unwrap(), "remove-test")
            .unwrap()
            .unwrap();
        let workspace =
            Workspace::create(&shared, info("remove-test", Some(memory.clone()))).unwrap();
        workspace.fill(&state("a: 1\n"), None).unwrap();
        Workspace::open(workspace.dir()).unwrap().remove().unwrap();
        assert!(!memory.exists());
        assert!(!workspace.dir().exists());
        // A record naming a directory that is not one of e's copies (edited by hand) is
        // read as a run without one: that directory is never removed.
        let precious = dir.path().join("precious");
        fs::create_dir(&precious).unwrap();
        let workspace = Workspace::create(&shared, info("edited", Some(precious.clone()))).unwrap();
        let found = Workspace::open(workspace.dir()).unwrap();
        assert_eq!(found.info.memory, None);
        found.remove().unwrap();
        assert!(precious.is_dir());
    }
}
