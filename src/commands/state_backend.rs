//! `e state pull DIR`, `e state push DIR` and `e state migrate --to URL|DIR`: moving a whole
//! environment between a backend (`store/postgres.rs`) and a shared directory, checked by
//! lineage and serial as Terraform's `state pull` and `state push` are. (Commands that run
//! methods against a backend mirror it: `store/mirror.rs`.)

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::output;
use crate::run::tree::{Limits, Tree};
use crate::store::postgres::{Postgres, Settings, Snapshot, portable};
use crate::store::serial::SERIAL_FILE;
use crate::store::{E_DIR, SharedDir};

async fn connect(backend: &str) -> anyhow::Result<Postgres> {
    Postgres::connect(Settings::from_url(backend)?).await
}

/// Writes the backend's snapshot into `dir`, with its lineage and serial.
pub async fn pull(dir: &Path, backend: &str) -> anyhow::Result<ExitCode> {
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        bail!(
            "`{}` is not empty; nothing was written\nhint: pull into a new directory",
            dir.display()
        );
    }
    let mut postgres = connect(backend).await?;
    let snapshot = postgres.load().await?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut tree = portable(&snapshot.tree);
    tree.insert_file(
        SERIAL_FILE,
        serde_json::to_vec_pretty(&snapshot.serial)?,
        0o644,
    );
    tree.write_dir(dir, None)?;
    output::note(&format!(
        "e: pulled `{}` into `{}`: {}",
        postgres.display(),
        dir.display(),
        snapshot.serial
    ));
    Ok(ExitCode::SUCCESS)
}

/// Moves the environment of the shared directory `from` into the backend `to`: allowed into
/// an environment that is still empty (it takes the directory's lineage) or one of the same
/// lineage at an older serial, or with `force`; then read back and compared, so that it is
/// complete or reported. The directory is left as it was.
pub async fn migrate_in(
    from: &Path,
    to: &str,
    force: bool,
    lock_timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let snapshot = snapshot_of(from)?;
    let mut postgres = connect(to).await?;
    postgres
        .lock(
            &format!("e state migrate --to {}", postgres.display()),
            lock_timeout,
            |refusal| output::note(&format!("e: waiting for the lock: {refusal}")),
        )
        .await?;
    let result = async {
        let current = postgres.load().await?;
        let empty = current.serial.serial == 0 && current.tree.entries.is_empty();
        let after = postgres.push(&snapshot, force || empty).await?;
        let stored = postgres.load().await?;
        if stored.tree != snapshot.tree {
            bail!(
                "the backend `{}` does not hold what was migrated (read back, it differs)\nhint: run `e state migrate` again; `{}` is as it was",
                postgres.display(),
                from.display()
            );
        }
        Ok(after)
    }
    .await;
    postgres.unlock().await?;
    let after = result?;
    output::note(&format!(
        "e: migrated `{}` into `{}`: {after}, {} entries, checked\nhint: from now on pass `--backend {}` (or set `E_BACKEND`); move `{}` aside so that nobody works on it by mistake",
        from.display(),
        postgres.display(),
        snapshot.tree.entries.len(),
        postgres.display(),
        from.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// The shared directory `dir` as a backend would store it, with its lineage and serial.
fn snapshot_of(dir: &Path) -> anyhow::Result<Snapshot> {
    let shared = SharedDir::open_read_only(dir)?;
    if !shared.e_dir().is_dir() {
        bail!(
            "`{}` is not a shared directory of e (it has no `{E_DIR}/`)\nhint: push a directory that e has worked in, or one made by `e state pull`",
            dir.display()
        );
    }
    let serial = shared.serial()?;
    let tree = Tree::read_dir(shared.root(), &Limits::DEFAULT).map_err(|refusal| {
        anyhow::anyhow!(
            "`{}` holds `{}`, which e cannot store: {}",
            dir.display(),
            refusal.path,
            refusal.reason
        )
    })?;
    Ok(Snapshot {
        serial,
        tree: portable(&tree),
    })
}

/// Makes the shared directory `dir` the backend's content, under its lock.
pub async fn push(
    dir: &Path,
    backend: &str,
    force: bool,
    lock_timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let snapshot = snapshot_of(dir)?;
    let mut postgres = connect(backend).await?;
    postgres
        .lock(
            &format!("e state push {}", dir.display()),
            lock_timeout,
            |refusal| output::note(&format!("e: waiting for the lock: {refusal}")),
        )
        .await?;
    let pushed = postgres.push(&snapshot, force).await;
    postgres.unlock().await?;
    let after = pushed?;
    output::note(&format!(
        "e: pushed `{}` to `{}`: {after}{}",
        dir.display(),
        postgres.display(),
        if force { " (--force)" } else { "" }
    ));
    Ok(ExitCode::SUCCESS)
}
