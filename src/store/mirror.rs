//! A command's shared directory when the environment lives in a backend (`--backend URL`,
//! `store/postgres.rs`): e takes the environment's lock (for commands that change it), writes
//! the current snapshot into a private directory, and the command works there as on a local
//! shared directory. After every commit a method run makes, and when the command ends, what
//! changed since the last sync is committed to the backend by compare-and-swap on the serial:
//! refused when the environment moved or the lock was lost, so no update is ever lost. Commands
//! that only read (plans, status, history) take no lock and never commit.

mod leftovers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::Change;
use super::postgres::{Postgres, Settings, portable};
use super::serial::{SERIAL_FILE, Serial};
use crate::cli::Command;
use crate::output;
use crate::run::tree::{Limits, Tree};

/// How a command uses the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// It never reads the shared directory (list, search, build, ...), or it talks to the
    /// backend itself (`e state pull|push`).
    None,
    /// It reads a snapshot and commits nothing (plan, status, history, ...).
    Read,
    /// It changes the environment: under the lock, waiting up to this long for it.
    Write(Duration),
}

/// How `command` uses the backend.
pub fn access(command: &Command) -> Access {
    use crate::cli::StateAction;
    match command {
        Command::Plan(_) | Command::Status(_) | Command::History(_) | Command::Validate(_) => {
            Access::Read
        }
        Command::Graph(args) if args.installed => Access::Read,
        Command::Export(_) => Access::Read,
        Command::State(args) => match &args.action {
            None | Some(StateAction::List) | Some(StateAction::Show { .. }) => Access::Read,
            Some(StateAction::Rm { lock_timeout, .. }) => Access::Write(*lock_timeout),
            Some(StateAction::Pull { .. })
            | Some(StateAction::Push { .. })
            | Some(StateAction::Migrate { .. }) => Access::None,
        },
        Command::Metadata(args) | Command::Init(args) => Access::Write(args.run.lock_timeout),
        Command::Apply(args) => Access::Write(args.run.lock_timeout),
        Command::Audit(args) => Access::Write(args.run.lock_timeout),
        Command::Run(args) => Access::Write(args.run.lock_timeout),
        Command::Upgrade(args) => Access::Write(args.run.lock_timeout),
        Command::Destroy(args) => Access::Write(args.run.lock_timeout),
        Command::Recover(args) => Access::Write(args.lock_timeout),
        Command::Import(_) => Access::Write(Duration::ZERO),
        _ => Access::None,
    }
}

/// The private shared directory of one command, mirrored from a backend.
#[derive(Debug)]
pub struct Mirror {
    dir: Private,
    state: tokio::sync::Mutex<Synced>,
    writes: bool,
}

/// What the backend holds, as far as this command knows.
#[derive(Debug)]
struct Synced {
    postgres: Postgres,
    /// The portable tree last loaded from, or committed to, the backend.
    base: Tree,
    serial: Serial,
}

impl Mirror {
    /// Connects to `url`, takes the lock when `access` writes, and writes the environment's
    /// snapshot into a new private shared directory.
    pub async fn open(url: &str, access: Access, command: &str) -> anyhow::Result<Mirror> {
        let mut postgres = Postgres::connect(Settings::from_url(url)?).await?;
        if let Access::Write(timeout) = access {
            postgres
                .lock(command, timeout, |refusal| {
                    output::note(&format!("e: waiting for the lock: {refusal}"))
                })
                .await?;
        }
        let snapshot = postgres.load().await?;
        let dir = Private::create()?;
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared)
            .with_context(|| format!("failed to create `{}`", shared.display()))?;
        let base = portable(&snapshot.tree);
        let mut tree = base.clone();
        tree.insert_file(
            SERIAL_FILE,
            serde_json::to_vec_pretty(&snapshot.serial)?,
            0o644,
        );
        tree.write_dir(&shared, None)?;
        Ok(Mirror {
            dir,
            state: tokio::sync::Mutex::new(Synced {
                postgres,
                base,
                serial: snapshot.serial,
            }),
            writes: matches!(access, Access::Write(_)),
        })
    }

    /// The private shared directory the command works in.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// Commits to the backend what changed in the private directory since the last sync
    /// (nothing for a command that only reads).
    pub async fn sync(&self) -> anyhow::Result<()> {
        if !self.writes {
            return Ok(());
        }
        let mut synced = self.state.lock().await;
        let now = portable(&read(&self.path())?);
        let change = Change::between(&synced.base, &now);
        if change.is_empty() {
            return Ok(());
        }
        let expected = synced.serial.clone();
        let after = synced.postgres.commit(&expected, &change).await?;
        // The private directory counts as the backend does from here on.
        let serial_path = self.path().join(SERIAL_FILE);
        std::fs::write(&serial_path, serde_json::to_vec_pretty(&after)?)
            .with_context(|| format!("failed to write `{}`", serial_path.display()))?;
        synced.base = now;
        synced.serial = after;
        Ok(())
    }

    /// Syncs a last time and releases the lock. A lock that cannot be released went with its
    /// connection, on the server's side: nothing to report.
    pub async fn finish(self) -> anyhow::Result<()> {
        let synced = self.sync().await;
        let mut state = self.state.into_inner();
        if self.writes {
            let _ = state.postgres.unlock().await;
        }
        synced
    }
}

/// The command's private directory, marked as a live command's (`mirror/leftovers.rs`), and
/// removed with the copies in memory of its runs when dropped.
#[derive(Debug)]
struct Private {
    dir: tempfile::TempDir,
    _alive: std::fs::File,
}

impl Private {
    /// Removes those of dead commands, then makes this command's.
    fn create() -> anyhow::Result<Private> {
        leftovers::sweep(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(leftovers::PREFIX)
            .tempdir()
            .context("failed to create a directory for the backend's snapshot")?;
        let alive = leftovers::mark_alive(dir.path())?;
        Ok(Private { dir, _alive: alive })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        // No run goes on here any more; a copy a failed run left is nobody's.
        let _ = leftovers::remove_copies(self.path());
    }
}

/// The whole private directory (e's area included), as the backend stores it.
fn read(path: &Path) -> anyhow::Result<Tree> {
    Tree::read_dir(path, &Limits::DEFAULT).map_err(|refusal| {
        anyhow::anyhow!(
            "`{}` holds `{}`, which the backend cannot store: {}; nothing of it was committed",
            path.display(),
            refusal.path,
            refusal.reason
        )
    })
}
