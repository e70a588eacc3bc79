//! `e apply MODULE`: plan the module, show the plan, ask, then apply it and plan the installed
//! modules it influences; `e apply PLAN` applies a saved plan (`plan_file.rs`) without asking,
//! while nothing it was made from changed; `--with-requirements` first installs the chain of
//! modules its strong requirements need (`lifecycle/stack.rs`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use crate::Context;
use crate::cli::ApplyArgs;
use crate::commands::method::pick;
use crate::commands::{approval, ended};
use crate::exit::{self, Two};
use crate::lifecycle::stack::{self, StackArgs};
use crate::output;
use crate::plan_file::{ApplyTarget, Basis, SavedPlan, short};
use crate::repository::{Entry, ModuleSpec};
use crate::runtime::Engine;
use crate::store::SharedDir;
use crate::summary::Ended;

/// Runs `e apply`.
pub async fn run(
    args: ApplyArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let target = args.target.to_string();
    let result = match &args.target {
        ApplyTarget::Module(spec) => module(spec, &args, context, engine).await,
        ApplyTarget::Plan(path) => saved(path, &args, context, engine).await,
    };
    context.finish("apply", &target, args.run.output, result)
}

/// Plans, asks and applies one module (or a stack).
async fn module(
    spec: &ModuleSpec,
    args: &ApplyArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<Ended> {
    let approval = approval(args.auto_approve, args.run.output, "apply")?;
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let entry = pick(&repository, &shared, spec)?;
    refuse_version_change(&shared, entry)?;
    let command = format!(
        "e apply {}{}",
        entry.id(),
        if args.with_requirements {
            " --with-requirements"
        } else {
            ""
        }
    );
    let mut session = context.session(&repository, shared, engine, &command, &args.run)?;
    session.prefer = args.prefer.clone();
    if args.with_requirements {
        let stack_args = StackArgs {
            prefer: &args.prefer,
            extra: &args.extra,
            no_influences: args.no_influences,
            parallelism: usize::from(args.parallelism),
        };
        return stack::apply(&mut session, entry, &stack_args, approval).await;
    }
    let mut notes = Vec::new();
    let (now, pinned) = session.image_of(entry).await?;
    if let Some(pinned) = check_image(entry, &now, pinned, args.allow_image_change)? {
        notes.push(format!("--allow-image-change: was {}", short(&pinned)));
    }
    let plan = session
        .run(
            entry,
            "plan",
            &args.extra,
            args.skip_requirements,
            notes.clone(),
        )
        .await?;
    if !plan.answered() {
        output::note(&format!(
            "e: the plan of `{}` did not answer; nothing was applied",
            entry.id()
        ));
        return Ok(ended(&plan, "plan", Two::Failure));
    }
    if plan.exit_code == 0 {
        output::note(&format!(
            "e: no changes: `{}` is as its plan wants it; apply was not run",
            entry.id()
        ));
        return Ok(Ended::new(exit::SUCCESS, "no-changes"));
    }
    let question = format!("apply these changes to `{}`?", entry.id());
    if !approval.confirm(&question, &format!("apply `{}`", entry.id()))? {
        output::note("e: apply cancelled; nothing was changed");
        return Ok(Ended::new(exit::FAILURE, "cancelled"));
    }
    let report = session
        .apply(
            entry,
            &args.extra,
            args.skip_requirements,
            args.no_influences,
            notes,
        )
        .await?;
    Ok(applied(ended(&report, "apply", Two::Failure)))
}

/// Applies a saved plan, refusing a stale one.
async fn saved(
    path: &Path,
    args: &ApplyArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<Ended> {
    if args.with_requirements || args.skip_requirements || !args.extra.is_empty() {
        bail!(
            "a saved plan is applied as it was made: `--with-requirements`, `--skip-requirements` and arguments after `--` cannot change it\nhint: make the plan with them: `e plan MODULE --out {}`",
            path.display()
        );
    }
    let plan = SavedPlan::read(path)?;
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let entry = repository.find(&ModuleSpec {
        module: plan.module.clone(),
        version: Some(plan.version.clone()),
    })?;
    refuse_version_change(&shared, entry)?;
    let session = context.session(
        &repository,
        shared,
        engine,
        &format!("e apply {}", path.display()),
        &args.run,
    )?;
    let (image_id, pinned) = session.image_of(entry).await?;
    let stale = plan.stale(&Basis::now(&session.shared, entry, &image_id)?);
    if !stale.is_empty() {
        bail!(
            "the saved plan `{}` for `{}` is stale, nothing was applied:\n  - {}\nhint: make a new plan with `e plan {} --out {}`, review it, and apply that",
            path.display(),
            entry.id(),
            stale.join("\n  - "),
            entry.id(),
            path.display()
        );
    }
    let mut notes = vec![format!("saved plan {}", path.display())];
    if let Some(pinned) = check_image(entry, &image_id, pinned, args.allow_image_change)? {
        notes.push(format!("--allow-image-change: was {}", short(&pinned)));
    }
    if !plan.changes {
        output::note(&format!(
            "e: the saved plan of `{}` has no changes; apply was not run",
            entry.id()
        ));
        return Ok(Ended::new(exit::SUCCESS, "no-changes"));
    }
    output::note(&format!(
        "e: applying the saved plan `{}` of `{}` (made {}, serial {})",
        path.display(),
        entry.id(),
        crate::store::time::format(plan.created),
        plan.serial
    ));
    let report = session
        .apply(entry, &plan.extra, false, args.no_influences, notes)
        .await?;
    Ok(applied(ended(&report, "apply", Two::Failure)))
}

/// `applied` for a successful apply.
fn applied(ended: Ended) -> Ended {
    if ended.code == exit::SUCCESS {
        Ended::new(exit::SUCCESS, "applied")
    } else {
        ended
    }
}

/// Applying another version of an installed module is an upgrade (or a downgrade): it goes
/// through `e upgrade`, which first has the new version audit the state.
fn refuse_version_change(shared: &SharedDir, entry: Entry<'_>) -> anyhow::Result<()> {
    if let Some(installed) = shared.installed()?.get(&entry.module.name)
        && installed.version != entry.version.version.as_str()
    {
        bail!(
            "`{}@{}` is installed; applying `{}` would change its version without an audit\nhint: run `e upgrade {} --to {}`",
            installed.module,
            installed.version,
            entry.id(),
            entry.module.name,
            entry.version.version
        );
    }
    Ok(())
}

/// Refuses an installed version whose image changed since it was applied, unless `allowed`;
/// returns the pinned image id when it changed and is allowed.
/// `now` and `pinned` are what `Session::image_of` says.
fn check_image(
    entry: Entry<'_>,
    now: &str,
    pinned: Option<String>,
    allowed: bool,
) -> anyhow::Result<Option<String>> {
    match pinned {
        Some(pinned) if !allowed => bail!(
            "the image behind installed `{}` changed since it was applied ({} then, {} now: `{}` was retagged or rebuilt); nothing was run\nhint: `e upgrade {} --to {}` audits the state with the new image first; `--allow-image-change` applies it as it is",
            entry.id(),
            short(&pinned),
            short(now),
            entry.version.image,
            entry.module.name,
            entry.version.version
        ),
        Some(pinned) => {
            output::warn(&format!(
                "--allow-image-change: applying `{}` with image {} (applied with {})",
                entry.id(),
                short(now),
                short(&pinned)
            ));
            Ok(Some(pinned))
        }
        None => Ok(None),
    }
}
