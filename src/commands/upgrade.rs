//! `e upgrade MODULE --to VERSION`: the new version's `audit` must first accept the current
//! state ("check if known configuration is still known"); then init and plan of the new
//! version, shown; after a `yes`, its apply. The installed record changes only when the apply
//! succeeds, and nothing of the upgrade is committed otherwise. An upgrade is refused when the
//! new version would no longer satisfy a module bound to it. Upgrading to the installed version
//! is how an installed version moves to a rebuilt image (audit first, as for any upgrade).

use std::process::ExitCode;

use anyhow::bail;

use crate::Context;
use crate::bindings;
use crate::cli::UpgradeArgs;
use crate::commands::{approval, ended};
use crate::exit::{self, Two};
use crate::output;
use crate::plan_file::short;
use crate::repository::ModuleSpec;
use crate::runtime::Engine;
use crate::store::SharedDir;
use crate::summary::Ended;

/// Runs `e upgrade`.
pub async fn run(
    args: UpgradeArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let target = format!("{}@{}", args.module, args.to);
    let result = upgrade(&args, context, engine).await;
    context.finish("upgrade", &target, args.run.output, result)
}

async fn upgrade(
    args: &UpgradeArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<Ended> {
    let approval = approval(args.auto_approve, args.run.output, "upgrade")?;
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let records = shared.installed()?;
    let Some(record) = records.get(&args.module).cloned() else {
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
    if target.version.version < current.version.version && !args.allow_downgrade {
        bail!(
            "`{}` is lower than the installed `{}`\nhint: pass `--allow-downgrade` if you mean to go back",
            target.id(),
            current.id()
        );
    }
    let broken = bindings::broken_by(target, &records);
    if !broken.is_empty() {
        let lines: Vec<String> = broken
            .iter()
            .map(|(owner, b)| bindings::describe(owner, b))
            .collect();
        bail!(
            "cannot upgrade `{}` to {}: the new version no longer satisfies modules bound to it:\n  {}\nhint: `e info {}` shows its labels; upgrade or destroy those modules first",
            args.module,
            target.version.version,
            lines.join("\n  "),
            target.id()
        );
    }
    let session = context.session(
        &repository,
        shared,
        engine,
        &format!("e upgrade {} --to {}", args.module, args.to),
        &args.run,
    )?;
    if target.version.version == current.version.version {
        let (now, pinned) = session.image_of(target).await?;
        let Some(pinned) = pinned else {
            output::note(&format!("e: `{}` is already installed", target.id()));
            return Ok(Ended::new(exit::SUCCESS, "no-changes"));
        };
        output::note(&format!(
            "e: `{}` is installed with image {}; its image is now {}: upgrading to it",
            target.id(),
            short(&pinned),
            short(&now)
        ));
    }
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
    output::note(&format!(
        "e: the audit of `{}` accepts the current state",
        target.id()
    ));
    // init, plan and apply of the new version commit together: a failed or declined upgrade
    // leaves every file of the shared directory as it was.
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
            return Ok(ended(&report, method, Two::Failure));
        }
    }
    let question = format!(
        "upgrade `{}` from {} to {}?",
        args.module, current.version.version, target.version.version
    );
    if !approval.confirm(&question, &format!("upgrade `{}`", args.module))? {
        transaction.abandon("the upgrade was declined")?;
        output::note(&format!(
            "e: upgrade cancelled; nothing was committed and `{}` stays installed",
            current.id()
        ));
        return Ok(Ended::new(exit::FAILURE, "cancelled"));
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
        return Ok(ended(&apply, "apply", Two::Failure));
    }
    transaction.commit()?;
    output::note(&format!("e: `{}` is installed", target.id()));
    if !args.no_influences {
        session.notify_influenced(target, &apply.run).await?;
    }
    Ok(Ended::new(exit::SUCCESS, "upgraded"))
}
