//! `e state pull DIR` and `e state push DIR`: moving a whole environment between a backend
//! (`store/postgres.rs`) and a shared directory, checked by lineage and serial as Terraform's
//! `state pull` and `state push` are. Method runs do not use a backend yet (docs/backends.md).

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

/// Makes the shared directory `dir` the backend's content, under its lock.
pub async fn push(
    dir: &Path,
    backend: &str,
    force: bool,
    lock_timeout: Duration,
) -> anyhow::Result<ExitCode> {
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
    let snapshot = Snapshot {
        serial,
        tree: portable(&tree),
    };
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
