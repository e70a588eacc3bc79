//! `e upgrade MODULE --to VERSION`: the new version's `audit` must first accept the current
//! state ("check if known configuration is still known"); then init, plan and apply with the
//! new version. The installed record changes only when the apply succeeds.

use std::process::ExitCode;

use anyhow::bail;

use crate::Context;
use crate::cli::UpgradeArgs;
use crate::commands::method::exit_code;
use crate::output;
use crate::repository::ModuleSpec;
use crate::runtime::Engine;
use crate::store::SharedDir;

/// Runs `e upgrade`.
pub async fn run(
    args: UpgradeArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let Some(record) = shared.installed()?.get(&args.module).cloned() else {
        bail!(
            "`{}` is not installed, so there is nothing to upgrade\nhint: install it with `e apply {}@{}`",
            args.module,
            args.module,
            args.to
        );
    };
    let current = repository.find(&ModuleSpec {
        module: args.module.clone(),
        version: Some(record.version.clone()),
    })?;
    let target = repository.find(&ModuleSpec {
        module: args.module.clone(),
        version: Some(args.to.clone()),
    })?;
    if target.version.version == current.version.version {
        output::note(&format!("e: `{}` is already installed", target.id()));
        return Ok(ExitCode::SUCCESS);
    }
    if target.version.version < current.version.version && !args.allow_downgrade {
        bail!(
            "`{}` is lower than the installed `{}`\nhint: pass `--allow-downgrade` if you mean to go back",
            target.id(),
            current.id()
        );
    }
    let session = context.session(
        &repository,
        shared,
        engine,
        &format!("e upgrade {} --to {}", args.module, args.to),
        &args.run,
    )?;
    let note = vec![format!(
        "upgrade {} -> {}",
        current.version.version, target.version.version
    )];

    output::note(&format!(
        "e: auditing the current state with `{}` before upgrading from {}",
        target.id(),
        current.version.version
    ));
    let audit = session
        .run(target, "audit", &[], false, note.clone())
        .await?;
    if !audit.succeeded() {
        let why = if audit.exit_code == 2 {
            "reports changes it does not know"
        } else {
            "failed"
        };
        bail!(
            "upgrade of `{}` to {} blocked: the audit of `{}` {why} (exit {}); its output is above\nhint: reconcile the state (or the infrastructure) with what the module knows, then run the upgrade again; `{}` stays installed",
            args.module,
            target.version.version,
            target.id(),
            audit.exit_code,
            current.id()
        );
    }
    // init, plan and apply of the new version commit together: a failed upgrade leaves every
    // file of the shared directory as it was.
    let mut transaction = session.begin().await?;
    for method in ["init", "plan"] {
        let report = session
            .run_in(&mut transaction, target, method, &[], false, note.clone())
            .await?;
        let ok = report.succeeded() || (method == "plan" && report.answered());
        if !ok {
            transaction.abandon(&format!("the upgrade stopped at `{method}`"))?;
            output::note(&format!(
                "e: upgrade stopped at `{method}`; nothing was committed and `{}` stays installed",
                current.id()
            ));
            return Ok(exit_code(&report));
        }
    }
    let apply = session
        .apply_in(&mut transaction, target, &[], false, note)
        .await?;
    if !apply.succeeded() {
        if apply.kept.is_none() {
            transaction.abandon("the upgrade failed at `apply`")?;
        }
        output::note(&format!(
            "e: upgrade failed at `apply`; nothing was committed and `{}` stays installed",
            current.id()
        ));
        return Ok(exit_code(&apply));
    }
    transaction.commit()?;
    output::note(&format!("e: `{}` is installed", target.id()));
    if !args.no_influences {
        session.notify_influenced(target, &apply.run).await?;
    }
    Ok(exit_code(&apply))
}
