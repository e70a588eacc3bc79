//! `e destroy MODULE`: runs the module's `destroy`, refused while an installed module strongly
//! requires it (unless `--force`, which is recorded); weak dependents are warned about.

use std::process::ExitCode;

use anyhow::bail;

use crate::Context;
use crate::cli::DestroyArgs;
use crate::commands::method::{exit_code, pick};
use crate::output;
use crate::repository::Entry;
use crate::requirements::dependents;
use crate::runtime::Engine;
use crate::store::SharedDir;

/// Runs `e destroy`.
pub async fn run(
    args: DestroyArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let entry = pick(&repository, &shared, &args.module)?;
    let session = context.session(
        &repository,
        shared,
        engine,
        &format!("e destroy {}", entry.id()),
        &args.run,
    )?;
    let installed = session.installed()?;
    let (strong, weak) = dependents(&entry.module.name, &installed);
    let ids = |list: &[Entry<'_>]| list.iter().map(Entry::id).collect::<Vec<_>>().join(", ");
    let mut notes = Vec::new();
    if !strong.is_empty() {
        if !args.force {
            bail!(
                "cannot destroy `{}`: installed {} strongly require{} it: {}\nhint: destroy {} first, or pass `--force` to destroy it anyway (recorded in the history)",
                entry.id(),
                if strong.len() == 1 {
                    "module"
                } else {
                    "modules"
                },
                if strong.len() == 1 { "s" } else { "" },
                ids(&strong),
                if strong.len() == 1 { "it" } else { "them" }
            );
        }
        output::warn(&format!(
            "--force: destroying `{}` although {} strongly require it",
            entry.id(),
            ids(&strong)
        ));
        notes.push(format!("--force: required by {}", ids(&strong)));
    }
    if !weak.is_empty() {
        output::warn(&format!(
            "{} use `{}` when present; they will do without it",
            ids(&weak),
            entry.id()
        ));
    }
    let mut transaction = session.begin().await?;
    let report = session
        .run_in(
            &mut transaction,
            entry,
            "destroy",
            &args.extra,
            false,
            notes,
        )
        .await?;
    if report.kept.is_none() {
        if report.succeeded() {
            transaction.uninstall(&entry.module.name);
        }
        transaction.commit()?;
    }
    if report.succeeded() {
        output::note(&format!("e: `{}` is no longer installed", entry.id()));
        for mount in &entry.version.mounts {
            output::note(&format!(
                "e: its private data at `{mount}` stays in the engine volume `{}`; remove it with `docker volume rm {}` once you no longer need it",
                crate::run::volumes::volume_name(&session.shared.id()?, &entry.module.name, mount),
                crate::run::volumes::volume_name(&session.shared.id()?, &entry.module.name, mount)
            ));
        }
    }
    Ok(exit_code(&report))
}
