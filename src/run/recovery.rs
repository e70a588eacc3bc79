//! Runs whose e died, and results kept aside.
//!
//! A run's directory (`.e/runs/<run>/`) exists from before its container starts until its
//! result is settled. Under the lock no other e can be running in this shared directory, so
//! every run directory found then belongs to an e that died (`kill -9`, a crash, a lost
//! machine). [`settle_orphans`] removes their containers from the engine (found by the
//! `e.shared` label, so even one that still runs is stopped and can write nothing more), and
//! keeps a valid result of a mutating run aside, as a failed run's result is kept
//! (`transaction.rs`); for a while after, sessions look again for a container the dead e's last
//! request made late. `e recover` lists, shows, commits and drops kept results.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use crate::output;
use crate::runtime::Engine;
use crate::store::{BACKUP_FILE, Change, Run, STATE_FILE, SharedDir};

use super::check::{self, Rules, Verdict};
use super::tree::{Limits, Tree};
use super::workspace::Workspace;

/// The run directories in `.e/<area>/`, oldest first.
fn run_dirs(shared: &SharedDir, area: &str) -> anyhow::Result<Vec<PathBuf>> {
    let dir = shared.e_dir().join(area);
    let mut dirs: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err).with_context(|| format!("failed to read `{}`", dir.display())),
    };
    dirs.sort();
    Ok(dirs)
}

/// Finds the runs of e processes that died, removes their containers, and keeps aside what a
/// mutating one validly left. The caller holds the lock.
pub async fn settle_orphans(shared: &SharedDir, engine: &dyn Engine) -> anyhow::Result<()> {
    let dirs = run_dirs(shared, "runs")?;
    sweep_memory_copies(shared, &dirs)?;
    if dirs.is_empty() {
        return reap_late(shared, engine).await;
    }
    // The containers go first: one that still runs would otherwise keep writing its copy.
    let reaped = engine
        .reap(&shared.id()?)
        .await
        .context("cannot remove the containers of runs whose e stopped")?;
    let marker = shared.e_dir().join(REAP_AGAIN_FILE);
    fs::write(&marker, seconds_now().to_string())
        .with_context(|| format!("failed to write `{}`", marker.display()))?;
    let live = shared.load_tree()?;
    for dir in dirs {
        let workspace = match Workspace::open(&dir) {
            Ok(workspace) => workspace,
            Err(_) => {
                // Created but never written: its e died before the container was made.
                fs::remove_dir_all(&dir)
                    .with_context(|| format!("failed to remove `{}`", dir.display()))?;
                continue;
            }
        };
        let info = workspace.info.clone();
        let left = match reaped.iter().find(|r| r.run == info.run) {
            Some(reaped) if reaped.download.is_some() => match reaped.download.clone() {
                Some(Ok(bytes)) => {
                    Tree::read_tar(bytes.as_slice(), "shared", &Limits::DEFAULT).ok()
                }
                _ => None,
            },
            _ if workspace.copy_dir().is_dir() => {
                Tree::read_dir(&workspace.copy_dir(), &Limits::DEFAULT).ok()
            }
            _ => None,
        };
        let rules = Rules {
            module: &info.module,
            method: &info.method,
            read_only: false,
        };
        let changed = left.map(|left| left.without(".e")).filter(|left| {
            info.mutating && matches!(check::check(&live, left, &rules), Ok(Verdict::Changed(_)))
        });
        let what = format!(
            "e: run `{}` (`{}@{}` {}, by {} pid {}) was cut short: its e stopped before it finished; its container is removed",
            info.run, info.module, info.version, info.method, info.owner, info.pid
        );
        match changed {
            Some(result) => {
                // Nothing was committed since that run began: its commit would have removed
                // its directory. So the directory now is the one it started from.
                workspace.keep(
                    shared,
                    &result,
                    "its e stopped before the run finished",
                    live.digest(),
                )?;
                output::note(&format!(
                    "{what}\ne: it changed the shared directory; nothing of it was committed. It is kept aside:\n  \
                     e recover show {run}     # what it changed\n  \
                     e recover commit {run}   # make it the shared directory's content\n  \
                     e recover drop {run}     # forget it",
                    run = info.run
                ));
            }
            None => {
                workspace.remove()?;
                output::note(&format!("{what}; it left nothing to keep"));
            }
        }
    }
    Ok(())
}

/// Removes the copies in memory that outlived their run's record (`memory_copy.rs`).
fn sweep_memory_copies(shared: &SharedDir, runs: &[PathBuf]) -> anyhow::Result<()> {
    let kept = run_dirs(shared, "kept")?;
    let named = |dir: &PathBuf, run: &str| dir.file_name().is_some_and(|name| name == run);
    super::memory_copy::sweep(&super::memory_copy::key(shared)?, |run| {
        runs.iter().chain(&kept).any(|dir| named(dir, run))
    })
}

/// Notes when runs of a dead e were last settled (seconds since the epoch), for [`reap_late`].
const REAP_AGAIN_FILE: &str = "reap-again";

/// How long after settling runs of a dead e every session still looks for their containers.
const REAP_AGAIN_FOR: Duration = Duration::from_secs(10 * 60);

fn seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Removes containers that a dead e's last request made after its runs were settled: the
/// engine finishes a create it was sent even when the sender is gone, so such a container can
/// appear a moment after the reap. For [`REAP_AGAIN_FOR`] after settling, each session looks
/// again (one engine call); the other sessions make none. Such a container never started.
async fn reap_late(shared: &SharedDir, engine: &dyn Engine) -> anyhow::Result<()> {
    let marker = shared.e_dir().join(REAP_AGAIN_FILE);
    let Ok(text) = fs::read_to_string(&marker) else {
        return Ok(());
    };
    let reaped = engine
        .reap(&shared.id()?)
        .await
        .context("cannot remove the containers of runs whose e stopped")?;
    for late in &reaped {
        output::note(&format!(
            "e: removed a container of run `{}` (`{}`) that the engine made after its e had stopped; it never ran",
            late.run, late.module
        ));
    }
    let settled = text.trim().parse::<u64>().unwrap_or(0);
    if seconds_now().saturating_sub(settled) > REAP_AGAIN_FOR.as_secs() {
        fs::remove_file(&marker)
            .with_context(|| format!("failed to remove `{}`", marker.display()))?;
    }
    Ok(())
}

/// A kept result.
pub struct Kept {
    /// Its directory.
    pub workspace: Workspace,
    /// What it holds (module-visible).
    pub result: Tree,
}

/// Every kept result, oldest first.
pub fn kept(shared: &SharedDir) -> anyhow::Result<Vec<Workspace>> {
    run_dirs(shared, "kept")?
        .iter()
        .map(|dir| Workspace::open(dir))
        .collect()
}

/// Opens the kept result of `run`.
pub fn open_kept(shared: &SharedDir, run: &str) -> anyhow::Result<Kept> {
    let dir = shared.e_dir().join("kept").join(run);
    if run.contains('/') || !dir.is_dir() {
        bail!("no result of run `{run}` is kept\nhint: `e recover list` shows the kept results");
    }
    let workspace = Workspace::open(&dir)?;
    let result = Tree::read_dir(&workspace.copy_dir(), &Limits::DEFAULT).map_err(|refusal| {
        anyhow::anyhow!("the kept result of run `{run}` is damaged: {refusal}")
    })?;
    Ok(Kept { workspace, result })
}

/// What committing a kept result would change, checked against the shared directory now.
pub fn pending_change(shared: &SharedDir, kept: &Kept) -> anyhow::Result<(Tree, Verdict)> {
    let live = shared.load_tree()?;
    let info = &kept.workspace.info;
    let rules = Rules {
        module: &info.module,
        method: &info.method,
        read_only: false,
    };
    let verdict = check::check(&live, &kept.result, &rules).map_err(|refusal| {
        anyhow::anyhow!(
            "the kept result of run `{}` is refused: {refusal}",
            info.run
        )
    })?;
    Ok((live, verdict))
}

/// Commits a kept result, whole, if the shared directory is still what the run started from.
/// The caller holds the lock.
pub fn commit_kept(shared: &SharedDir, kept: Kept, command: &str) -> anyhow::Result<()> {
    let (live, _) = pending_change(shared, &kept)?;
    let info = kept.workspace.info.clone();
    if info.live_digest.as_deref() != Some(live.digest().as_str()) {
        bail!(
            "the shared directory changed since run `{}` started, so committing its result would undo those changes\nhint: see what it holds with `e recover show {}`; run `e plan {}` to compare with the infrastructure, then drop it with `e recover drop {}`",
            info.run,
            info.run,
            info.module,
            info.run
        );
    }
    let mut change = Change::between(&live, &kept.result);
    if let Some(before) = live.file(STATE_FILE)
        && live.file(STATE_FILE) != kept.result.file(STATE_FILE)
    {
        change.write(BACKUP_FILE, before.to_vec());
    }
    let record = Run {
        run: super::new_run_id(),
        module: info.module.clone(),
        version: info.version.clone(),
        command: "recover".to_owned(),
        started: std::time::SystemTime::now(),
        duration_ms: 0,
        exit_code: None,
        outcome: "ok".to_owned(),
        changed_keys: Vec::new(),
        notes: vec![format!(
            "`{command}`: committed the kept result of run {} ({} {})",
            info.run, info.module, info.method
        )],
        transfer: None,
        by: Some(crate::store::machine::who()),
    };
    change.write(
        shared.history_path(&record),
        serde_json::to_string_pretty(&record)?.into_bytes(),
    );
    change.cleanup.push(kept.workspace.relative(shared));
    shared.commit(change, &record.run)?;
    // A result whose keeping was cut short may still be in memory.
    kept.workspace
        .memory()
        .map_or(Ok(()), |dir| super::memory_copy::remove(&dir))
}
