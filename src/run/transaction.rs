//! A transaction: one or more runs on a working copy of the shared directory, committed
//! together or not at all. `e init` is a transaction of one run; `e upgrade` runs init, plan
//! and apply of the new version in one, so a failed upgrade leaves every file as it was.
//!
//! The rules (docs/modules.md, "What is kept"):
//! - a read-only method (metadata, plan, audit) never changes anything;
//! - a run that succeeds with a valid result moves the working copy forward;
//! - a result the checks refuse is dropped, and nothing of the transaction is committed;
//! - a mutating run that fails, times out or is interrupted may already have made
//!   infrastructure that its result records, so a valid result of it is kept aside in
//!   `.e/kept/<run>/` (not lost, not committed) and the user is told how to inspect, commit or
//!   drop it (`e recover`).

use crate::output;
use crate::repository::Entry;
use crate::runtime::Engine;
use crate::store::checked;
use crate::store::merge::{Conflict, Merge, merge};
use crate::store::{BACKUP_FILE, Change, Installed, Run, STATE_FILE, SharedDir};

use super::tree::Tree;
use super::{Call, Finished, Options, READ_ONLY_METHODS, Report, execute};

/// What a transaction does to e's record of installed modules when it commits.
#[derive(Debug, Clone)]
enum InstalledChange {
    Install(Installed),
    Uninstall(String),
}

/// Runs on a working copy, committed whole by [`Transaction::commit`].
pub struct Transaction<'s> {
    shared: &'s SharedDir,
    /// The content the transaction started from, and its serial.
    live: Tree,
    /// Whether the state it started from was parsed now, not known checked before
    /// (`store/checked.rs`): its commit notes it.
    unchecked: bool,
    serial: u64,
    work: Tree,
    records: Vec<Run>,
    installed: Vec<InstalledChange>,
    records_files: Vec<(String, Vec<u8>)>,
    cleanup: Vec<String>,
    /// The copies in memory of the runs in `cleanup`, removed once their records are.
    memory: Vec<std::path::PathBuf>,
}

impl<'s> Transaction<'s> {
    /// Starts from the shared directory as it is now. The caller holds the lock.
    /// A state that is not a valid state (edited by hand) is refused here, before any module
    /// runs on it and would be blamed for it.
    pub fn begin(shared: &'s SharedDir) -> anyhow::Result<Transaction<'s>> {
        let live = shared.load_tree()?;
        let state = live.file(STATE_FILE);
        let unchecked = state.is_some_and(|bytes| !shared.state_was_checked(bytes));
        if unchecked
            && let Some(bytes) = state
            && let Err(reason) = crate::store::parse_mapping(bytes)
        {
            anyhow::bail!(
                "`{}` {reason}; no module was run\nhint: fix the file by hand, or put back the previous state with `cp {} {}`",
                shared.state_path().display(),
                shared.root().join(BACKUP_FILE).display(),
                shared.state_path().display()
            );
        }
        Ok(Transaction {
            shared,
            unchecked,
            serial: shared.serial()?.serial,
            work: live.clone(),
            live,
            records: Vec::new(),
            installed: Vec::new(),
            records_files: Vec::new(),
            cleanup: Vec::new(),
            memory: Vec::new(),
        })
    }

    /// The working copy: what the next run will see.
    pub fn work(&self) -> &Tree {
        &self.work
    }

    /// Runs `method` of `entry` on the working copy and settles its result (see the rules
    /// above). Nothing reaches the shared directory until [`Transaction::commit`].
    pub async fn run(
        &mut self,
        engine: &dyn Engine,
        entry: Entry<'_>,
        method: &str,
        extra: &[String],
        options: &Options,
    ) -> anyhow::Result<Report> {
        let call = Call {
            entry,
            method,
            extra,
        };
        let finished = execute(engine, self.shared, &self.work, call, options).await?;
        self.settle(entry, method, finished)
    }

    fn settle(
        &mut self,
        entry: Entry<'_>,
        method: &str,
        finished: Finished,
    ) -> anyhow::Result<Report> {
        let Finished {
            mut report,
            mut record,
            result,
            workspace,
            requirements,
        } = finished;
        // The requirements file the module was given is e's record of whom it used.
        if let Some((path, bytes)) = requirements
            && !READ_ONLY_METHODS.contains(&method)
        {
            self.records_files.push((path, bytes));
        }
        let id = entry.id();
        if let Some(stopped) = report.stopped {
            let why = match stopped {
                crate::runtime::Stopped::Timeout => {
                    format!("ran longer than {}", report.deadline.describe())
                }
                crate::runtime::Stopped::Interrupted => "was interrupted".to_owned(),
            };
            let hint = match stopped {
                crate::runtime::Stopped::Timeout => {
                    "\nhint: if it needs longer, give the command a longer `timeout:` in the repository, or pass `--timeout`"
                }
                crate::runtime::Stopped::Interrupted => "",
            };
            output::note(&format!(
                "e: `{id}` {method} {why}; its container was stopped and removed{hint}"
            ));
        }
        if let super::Check::Invalid(reason) = &report.check {
            let failed = if report.exit_code != 0 && report.stopped.is_none() {
                format!(" failed (exit {}) and", report.exit_code)
            } else {
                String::new()
            };
            output::note(&format!(
                "e: `{id}` {method}{failed} left a shared directory e refuses: {reason}; nothing was committed, the shared directory is as it was"
            ));
            record.notes.push(format!("refused: {reason}"));
            self.shared.record(&record)?;
            workspace.remove()?;
            return Ok(report);
        }
        match result {
            Some(result) if report.succeeded() => {
                self.work = result;
                self.cleanup.push(workspace.relative(self.shared));
                self.memory.extend(workspace.memory());
                self.records.push(record);
            }
            Some(result) => {
                let why = match report.stopped {
                    Some(crate::runtime::Stopped::Timeout) => "it ran past its timeout".to_owned(),
                    Some(crate::runtime::Stopped::Interrupted) => "it was interrupted".to_owned(),
                    None => format!("it failed (exit {})", report.exit_code),
                };
                let run = report.run.clone();
                // What the transaction did before this run is part of what is kept. It can
                // be committed only onto the content the transaction started from.
                workspace.keep(self.shared, &result, &why, self.live.digest())?;
                record.notes.push(format!("result kept aside as run {run}"));
                self.shared.record(&record)?;
                self.abandon(&format!("`{id}` {method} failed"))?;
                output::note(&format!(
                    "e: `{id}` {method} changed the shared directory, but {why}: nothing was committed.\n\
                     e: what it left is kept aside as run `{run}`, since it may record infrastructure that now exists:\n  \
                     e recover show {run}     # what it changed\n  \
                     e recover commit {run}   # make it the shared directory's content\n  \
                     e recover drop {run}     # forget it"
                ));
                report.kept = Some(run);
            }
            None => {
                self.records.push(record);
                workspace.remove()?;
            }
        }
        Ok(report)
    }

    /// Records `entry` as installed when the transaction commits.
    pub fn install(&mut self, record: Installed) {
        self.installed.push(InstalledChange::Install(record));
    }

    /// Forgets an installed module when the transaction commits.
    pub fn uninstall(&mut self, module: &str) {
        self.installed
            .push(InstalledChange::Uninstall(module.to_owned()));
    }

    /// Commits the working copy, e's records and the history of its runs, whole. When other
    /// runs of this e committed since the transaction began (the modules of a stack run side
    /// by side), the working copy is merged onto what they left (`store/merge.rs`); a
    /// [`Conflict`] commits nothing, and its runs stay in the history marked so.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let unmerged = self.shared.serial()?.serial == self.serial;
        let (before, after) = if unmerged {
            (
                std::mem::take(&mut self.live),
                std::mem::take(&mut self.work),
            )
        } else {
            let now = self.shared.load_tree()?;
            match merge(&self.live, &self.work, &now) {
                Merge::Merged(merged) => (now, merged),
                Merge::Conflict(units) => {
                    let conflict = Conflict { units };
                    self.abandon(&conflict.to_string())?;
                    return Err(conflict.into());
                }
            }
        };
        let mut change = Change::between(&before, &after);
        let state_changed = before.file(STATE_FILE) != after.file(STATE_FILE);
        if state_changed && let Some(previous) = before.file(STATE_FILE) {
            change.write(BACKUP_FILE, previous.to_vec());
        }
        // A state the transaction changed was checked (a module's result by `check.rs`, a
        // merge of one by `merge.rs`), and so was the one it began from.
        if (state_changed || (self.unchecked && unmerged))
            && let Some(state) = after.file(STATE_FILE)
        {
            checked::note_checked(&mut change, state);
        }
        if !self.installed.is_empty() {
            let mut all = self.shared.installed()?;
            for item in &self.installed {
                match item {
                    InstalledChange::Install(record) => {
                        all.insert(record.module.clone(), record.clone());
                    }
                    InstalledChange::Uninstall(module) => {
                        all.remove(module);
                    }
                }
            }
            change.write(
                ".e/installed.json",
                serde_json::to_string_pretty(&all)?.into_bytes(),
            );
        }
        // The last file given to each module counts; one as it already is is not written
        // again (a module run again with the same requirements).
        let records_files: std::collections::BTreeMap<&String, &Vec<u8>> =
            self.records_files.iter().map(|(p, b)| (p, b)).collect();
        for (path, bytes) in records_files {
            let current = std::fs::read(self.shared.root().join(path)).ok();
            if current.as_ref() != Some(bytes) {
                change.write(path.clone(), bytes.clone());
            }
        }
        for record in &self.records {
            change.write(
                self.shared.history_path(record),
                serde_json::to_string_pretty(record)?.into_bytes(),
            );
        }
        change.cleanup = self.cleanup.clone();
        let id = self
            .records
            .last()
            .map(|r| r.run.clone())
            .unwrap_or_else(super::new_run_id);
        self.shared.commit(change, &id)?;
        // The commit removed the runs' records; a commit that failed leaves both, for the
        // next e to keep aside.
        for dir in &self.memory {
            super::memory_copy::remove(dir)?;
        }
        Ok(())
    }

    /// Drops the transaction: its runs stay in the history, marked as not committed.
    pub fn abandon(&mut self, why: &str) -> anyhow::Result<()> {
        for mut record in std::mem::take(&mut self.records) {
            record.notes.push(format!("not committed: {why}"));
            self.shared.record(&record)?;
        }
        for dir in std::mem::take(&mut self.cleanup) {
            let path = self.shared.root().join(dir);
            if path.exists() {
                std::fs::remove_dir_all(&path)?;
            }
        }
        for dir in std::mem::take(&mut self.memory) {
            super::memory_copy::remove(&dir)?;
        }
        self.work = self.live.clone();
        self.installed.clear();
        self.records_files.clear();
        Ok(())
    }
}
