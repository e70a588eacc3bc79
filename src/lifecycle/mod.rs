//! The dependency-aware lifecycle: one locked session on a shared directory in which methods
//! run with their requirements checked, successful applies make a module installed, and the
//! installed modules an apply influences are re-planned and the user told how to apply them.
//!
//! Every command that runs containers (`e init`, `e apply`, `e upgrade`, `e destroy`,
//! `e check`, stacks) goes through a [`Session`], so these rules live in one place.

pub mod approve;
pub mod schedule;
pub mod stack;

use std::time::{Duration, SystemTime};

use crate::bindings::{self, Binding};
use crate::graph::{Index, Relation};
use crate::output;
use crate::repository::{Entry, Repository};
use crate::requirements::{self, InstalledSet};
use crate::run::transaction::Transaction;
use crate::run::{Options, Report, recovery};
use crate::runtime::{Engine, Transfer};
use crate::secrets::Secrets;
use crate::store::merge::Conflict;
use crate::store::{Installed, Lock, SharedDir};

/// How many times a run whose result conflicts with a concurrent commit is run in all: the
/// second run has the shared directory to itself, so it cannot conflict again.
pub const ATTEMPTS: u32 = 2;

/// The methods whose strong requirements must be met before they run.
pub const GUARDED_METHODS: [&str; 3] = ["init", "plan", "apply"];

/// A locked shared directory with everything needed to run methods in it.
pub struct Session<'a> {
    /// The repository.
    pub repository: &'a Repository,
    /// Its label index.
    pub index: Index<'a>,
    /// The shared directory.
    pub shared: SharedDir,
    /// The engine.
    pub engine: &'a dyn Engine,
    /// Secrets for `${secret:NAME}`.
    pub secrets: Secrets,
    /// Per-method timeout.
    pub timeout: Option<Duration>,
    /// Print module output (false in `e check`, which reports in a table).
    pub quiet: bool,
    /// How runs hand their copy to the engine; `None` lets the engine choose.
    pub transfer: Option<Transfer>,
    /// Modules to bind to first when several installed ones satisfy a requirement
    /// (`--prefer`).
    pub prefer: Vec<String>,
    /// Where every run is logged for the command's `-o json` document.
    pub log: Option<&'a crate::summary::RunLog>,
    /// Prefix each line of module output with the module's name (modules run side by side).
    pub prefix_output: bool,
    /// The backend's mirror, synced after every commit (`store/mirror.rs`).
    pub mirror: Option<&'a crate::store::mirror::Mirror>,
    /// The e command, for run records.
    command: String,
    /// Set once the runs of dead e processes are settled (on first use of the engine).
    settled: tokio::sync::OnceCell<()>,
    /// Runs side by side share it; a run again after a conflict has it alone, so that nothing
    /// commits beside it.
    turns: tokio::sync::RwLock<()>,
    _lock: Lock,
}

/// What a committed run records about the module besides its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Records {
    Nothing,
    /// A successful apply makes it installed.
    Install,
    /// A successful destroy makes it no longer installed.
    Uninstall,
}

/// A run's share of the session (see `Session::turns`), held from its start to its commit.
struct Turn<'s> {
    _shared: Option<tokio::sync::RwLockReadGuard<'s, ()>>,
    _alone: Option<tokio::sync::RwLockWriteGuard<'s, ()>>,
}

impl<'a> Session<'a> {
    /// Locks the shared directory for `command` (waiting up to `lock_timeout`).
    pub fn open(
        repository: &'a Repository,
        shared: SharedDir,
        engine: &'a dyn Engine,
        secrets: Secrets,
        command: &str,
        lock_timeout: Duration,
    ) -> anyhow::Result<Session<'a>> {
        let lock = shared.lock(command, lock_timeout)?;
        Ok(Session {
            index: Index::new(repository),
            repository,
            shared,
            engine,
            secrets,
            timeout: None,
            quiet: false,
            transfer: None,
            prefer: Vec::new(),
            log: None,
            prefix_output: false,
            mirror: None,
            command: command.to_owned(),
            settled: tokio::sync::OnceCell::new(),
            turns: tokio::sync::RwLock::new(()),
            _lock: lock,
        })
    }

    /// Settles the runs of e processes that died (once per session, before the first run).
    async fn settle_orphans(&self) -> anyhow::Result<()> {
        self.settled
            .get_or_try_init(|| recovery::settle_orphans(&self.shared, self.engine))
            .await
            .map(drop)
    }

    /// Begins a transaction: runs on a working copy, committed together.
    pub async fn begin(&self) -> anyhow::Result<Transaction<'_>> {
        self.settle_orphans().await?;
        Transaction::begin(&self.shared)
    }

    /// The installed module versions, warning about records the repository no longer knows.
    pub fn installed(&self) -> anyhow::Result<InstalledSet<'a>> {
        let records = self.shared.installed()?;
        let set = InstalledSet::new(self.repository, &records);
        for unknown in &set.unknown {
            output::warn(&format!(
                "installed `{unknown}` is not in the repository; its labels cannot satisfy requirements"
            ));
        }
        Ok(set)
    }

    /// Checks the requirements of `entry` for `method`, says how weak ones stand, and builds
    /// the requirements file for the module. Unmet strong requirements stop guarded methods
    /// unless `skip` (`--skip-requirements`).
    pub fn requirements(
        &self,
        entry: Entry<'_>,
        method: &str,
        skip: bool,
    ) -> anyhow::Result<requirements::File> {
        let installed = self.installed()?;
        let statuses = requirements::statuses(entry, &installed);
        if GUARDED_METHODS.contains(&method) {
            if let Some(err) =
                requirements::unmet_error(entry, method, &statuses, &self.index, &installed)
            {
                if !skip {
                    return Err(err);
                }
                output::warn(&format!("--skip-requirements: running anyway; {err:#}"));
            }
            let tell = !self.quiet && method != "plan";
            for status in statuses
                .iter()
                .filter(|s| tell && s.relation == Relation::Weak)
            {
                let ids: Vec<String> = status.satisfied_by.iter().map(Entry::id).collect();
                let how = if ids.is_empty() {
                    "absent".to_owned()
                } else {
                    format!("present: {}", ids.join(", "))
                };
                output::note(&format!(
                    "e: weak requirement `{}` of `{}`: {how}",
                    status.selector,
                    entry.id()
                ));
            }
        }
        let bindings = self.bindings_of(entry, &statuses)?;
        Ok(requirements::File::new(entry, &statuses, &bindings))
    }

    /// The bindings `entry` gets (see `bindings.rs`): those of its installed record that
    /// still hold, the others chosen now.
    fn bindings_of(
        &self,
        entry: Entry<'_>,
        statuses: &[requirements::Status<'_>],
    ) -> anyhow::Result<Vec<Binding>> {
        let installed = self.shared.installed()?;
        let previous = installed
            .get(&entry.module.name)
            .and_then(|record| record.bindings.clone())
            .unwrap_or_default();
        Ok(bindings::choose(statuses, &previous, &self.prefer))
    }

    /// Runs one method in its own transaction: requirements checked (see
    /// [`Session::requirements`]), the module told which installed modules satisfy them, the
    /// result checked and committed whole (or kept aside, see `run/transaction.rs`).
    pub async fn run(
        &self,
        entry: Entry<'_>,
        method: &str,
        extra: &[String],
        skip_requirements: bool,
        notes: Vec<String>,
    ) -> anyhow::Result<Report> {
        self.committed(
            entry,
            method,
            extra,
            skip_requirements,
            notes,
            Records::Nothing,
        )
        .await
    }

    /// Runs `destroy` of `entry` in its own transaction, which forgets the module as
    /// installed if it succeeds; committed as [`Session::run`] commits.
    pub async fn destroy(
        &self,
        entry: Entry<'_>,
        extra: &[String],
        notes: Vec<String>,
    ) -> anyhow::Result<Report> {
        self.committed(entry, "destroy", extra, false, notes, Records::Uninstall)
            .await
    }

    /// Runs `method` in a transaction of its own and commits it with what `records` says,
    /// syncing a backend; a result that conflicts with runs beside it is run again (see
    /// [`Session::again`]). A result kept aside is returned uncommitted.
    async fn committed(
        &self,
        entry: Entry<'_>,
        method: &str,
        extra: &[String],
        skip_requirements: bool,
        notes: Vec<String>,
        records: Records,
    ) -> anyhow::Result<Report> {
        let mut attempt = 1;
        loop {
            let _turn = self.turn(attempt).await;
            let mut transaction = self.begin().await?;
            let notes = notes.clone();
            let report = match records {
                Records::Install => {
                    self.apply_in(&mut transaction, entry, extra, skip_requirements, notes)
                        .await?
                }
                Records::Nothing | Records::Uninstall => {
                    self.run_in(
                        &mut transaction,
                        entry,
                        method,
                        extra,
                        skip_requirements,
                        notes,
                    )
                    .await?
                }
            };
            if records == Records::Uninstall && report.succeeded() {
                transaction.uninstall(&entry.module.name);
            }
            if report.kept.is_some() {
                return Ok(report);
            }
            match transaction.commit() {
                Ok(()) => {
                    self.sync().await?;
                    return Ok(report);
                }
                Err(err) => self.again(err, entry, method, &mut attempt)?,
            }
        }
    }

    /// Commits what the last commit changed to the backend, when the environment lives in one.
    pub async fn sync(&self) -> anyhow::Result<()> {
        match self.mirror {
            Some(mirror) => mirror.sync().await,
            None => Ok(()),
        }
    }

    /// The right to run: shared on a first attempt, alone on a run again.
    async fn turn(&self, attempt: u32) -> Turn<'_> {
        if attempt == 1 {
            Turn {
                _shared: Some(self.turns.read().await),
                _alone: None,
            }
        } else {
            Turn {
                _shared: None,
                _alone: Some(self.turns.write().await),
            }
        }
    }

    /// Whether a run whose commit failed with `err` is run again: when another run of this
    /// e changed the same part of the shared directory meanwhile (`store/merge.rs`), the
    /// module runs again on the new content, up to [`ATTEMPTS`] times; its earlier result
    /// was not committed. Any other error is returned.
    fn again(
        &self,
        err: anyhow::Error,
        entry: Entry<'_>,
        method: &str,
        attempt: &mut u32,
    ) -> anyhow::Result<()> {
        let Some(conflict) = err.downcast_ref::<Conflict>() else {
            return Err(err);
        };
        if *attempt >= ATTEMPTS {
            return Err(err.context(format!(
                "`{}` {method} conflicted again, although it ran alone\nhint: run the stack with `--parallelism 1`",
                entry.id()
            )));
        }
        *attempt += 1;
        output::note(&format!(
            "e: `{}` {method}: {conflict}; running it again on the new content, alone",
            entry.id()
        ));
        Ok(())
    }

    /// Runs one method inside `transaction`; nothing is committed.
    pub async fn run_in(
        &self,
        transaction: &mut Transaction<'_>,
        entry: Entry<'_>,
        method: &str,
        extra: &[String],
        skip_requirements: bool,
        notes: Vec<String>,
    ) -> anyhow::Result<Report> {
        let file = self.requirements(entry, method, skip_requirements)?;
        let mut notes = notes;
        if skip_requirements {
            notes.push("--skip-requirements".to_owned());
        }
        let options = Options {
            timeout: self.timeout,
            secrets: self.secrets.clone(),
            quiet: self.quiet,
            notes,
            requirements: Some(file),
            transfer: self.transfer,
            command: self.command.clone(),
            prefix: self.prefix_output.then(|| entry.module.name.clone()),
        };
        let report = transaction
            .run(self.engine, entry, method, extra, &options)
            .await?;
        if let Some(log) = self.log {
            log.push(&report);
        }
        Ok(report)
    }

    /// Applies `entry`; on success records it installed in the same commit, then (unless
    /// `no_influences`) plans the installed modules it influences and says how to apply them.
    pub async fn apply(
        &self,
        entry: Entry<'_>,
        extra: &[String],
        skip_requirements: bool,
        no_influences: bool,
        notes: Vec<String>,
    ) -> anyhow::Result<Report> {
        let report = self
            .committed(
                entry,
                "apply",
                extra,
                skip_requirements,
                notes,
                Records::Install,
            )
            .await?;
        if !report.succeeded() {
            return Ok(report);
        }
        if !self.quiet {
            output::note(&format!("e: `{}` is installed", entry.id()));
        }
        if !no_influences {
            self.notify_influenced(entry, &report.run).await?;
        }
        Ok(report)
    }

    /// Runs apply of `entry` inside `transaction`, which records it installed if it succeeds.
    pub async fn apply_in(
        &self,
        transaction: &mut Transaction<'_>,
        entry: Entry<'_>,
        extra: &[String],
        skip_requirements: bool,
        notes: Vec<String>,
    ) -> anyhow::Result<Report> {
        let installed = self.installed()?;
        let bindings = self.bindings_of(entry, &requirements::statuses(entry, &installed))?;
        let report = self
            .run_in(transaction, entry, "apply", extra, skip_requirements, notes)
            .await?;
        if report.succeeded() {
            transaction.install(Installed {
                module: entry.module.name.clone(),
                version: entry.version.version.to_string(),
                image: entry.version.image.clone(),
                image_id: report.image_id.clone(),
                applied: SystemTime::now(),
                command: format!("e apply {}", entry.id()),
                bindings: Some(bindings),
            });
        }
        Ok(report)
    }

    /// The engine's id of the image `entry` runs now, and, when `entry` is the installed
    /// version and was applied with another image, the id it was applied with: e pins the
    /// image of an installed version, so that a retagged image is not applied unnoticed.
    pub async fn image_of(&self, entry: Entry<'_>) -> anyhow::Result<(String, Option<String>)> {
        let image = self
            .engine
            .ensure_image(&entry.version.image)
            .await
            .map_err(|err| err.context(format!("cannot run `{}`", entry.id())))?;
        let pinned = self
            .shared
            .installed()?
            .get(&entry.module.name)
            .filter(|record| {
                record.version == entry.version.version.as_str()
                    && !record.image_id.is_empty()
                    && record.image_id != image.id
            })
            .map(|record| record.image_id.clone());
        Ok((image.id, pinned))
    }

    /// Runs `plan` of every installed module that `entry` influences, shows what would
    /// change, and tells the user the command that applies it. Never applies anything.
    pub async fn notify_influenced(&self, entry: Entry<'_>, run: &str) -> anyhow::Result<()> {
        let installed = self.installed()?;
        for influenced in requirements::influenced(entry, &installed) {
            output::note(&format!(
                "\ne: `{}` influences `{}`; running its plan to show what changed:",
                entry.id(),
                influenced.id()
            ));
            let note = format!("influence notification from {} (run {run})", entry.id());
            let report = match self.run(influenced, "plan", &[], false, vec![note]).await {
                Ok(report) => report,
                Err(err) => {
                    output::warn(&format!(
                        "could not plan influenced `{}`: {err:#}",
                        influenced.id()
                    ));
                    continue;
                }
            };
            match report.exit_code {
                0 if report.succeeded() => {
                    output::note(&format!("e: `{}` needs no change", influenced.module.name))
                }
                2 => output::note(&format!(
                    "e: to apply these changes run `e apply {}`; e never applies an influenced module by itself",
                    influenced.module.name
                )),
                code => output::warn(&format!(
                    "the plan of influenced `{}` failed (exit {code}); run `e plan {}` to see why",
                    influenced.id(),
                    influenced.module.name
                )),
            }
        }
        Ok(())
    }
}
