//! `e metadata|init|plan MODULE` and `e run MODULE COMMAND`: one method of one module version,
//! in its container, with requirements checked and the shared state kept safe. `e plan
//! --out FILE` also saves the plan for `e apply FILE` (`plan_file.rs`).

use std::process::ExitCode;

use crate::Context;
use crate::cli::{MethodArgs, PlanArgs, RunArgs};
use crate::commands::ended;
use crate::exit::two_for;
use crate::output;
use crate::plan_file::{Basis, SavedPlan, short};
use crate::repository::{Entry, ModuleSpec, Repository};
use crate::runtime::Engine;
use crate::store::SharedDir;
use crate::summary::Ended;

/// Finds the version to run: the one named, else the installed one, else the default.
pub fn pick<'r>(
    repository: &'r Repository,
    shared: &SharedDir,
    spec: &ModuleSpec,
) -> anyhow::Result<Entry<'r>> {
    if spec.version.is_none()
        && let Some(installed) = shared.installed()?.get(&spec.module)
    {
        let pinned = ModuleSpec {
            module: spec.module.clone(),
            version: Some(installed.version.clone()),
        };
        return repository.find(&pinned);
    }
    repository.find(spec)
}

/// Runs `metadata` or `init`.
pub async fn run(
    method: &str,
    args: MethodArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let target = args.module.to_string();
    let format = args.run.output;
    let result = one(
        method,
        &args.module,
        &args.extra,
        args.skip_requirements,
        &args.run,
        context,
        engine,
    )
    .await;
    context.finish(method, &target, format, result)
}

/// Runs one method of one module version.
async fn one(
    method: &str,
    spec: &ModuleSpec,
    extra: &[String],
    skip_requirements: bool,
    options: &crate::cli::RunOptions,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<Ended> {
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let entry = pick(&repository, &shared, spec)?;
    let session = context.session(
        &repository,
        shared,
        engine,
        &format!("e {method} {}", entry.id()),
        options,
    )?;
    let report = session
        .run(entry, method, extra, skip_requirements, Vec::new())
        .await?;
    Ok(ended(&report, method, two_for(method, false)))
}

/// Runs `plan`, saving it with `--out`.
pub async fn plan(
    args: PlanArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let target = args.module.to_string();
    let format = args.run.output;
    let result = plan_and_save(&args, context, engine).await;
    context.finish("plan", &target, format, result)
}

async fn plan_and_save(
    args: &PlanArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<Ended> {
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let entry = pick(&repository, &shared, &args.module)?;
    let session = context.session(
        &repository,
        shared,
        engine,
        &format!("e plan {}", entry.id()),
        &args.run,
    )?;
    let (image_id, pinned) = session.image_of(entry).await?;
    if let Some(pinned) = &pinned {
        output::note(&format!(
            "e: the image behind `{}` is another image than the one it was applied with ({} then, {} now); `e apply` refuses it until you run `e upgrade {} --to {}` or pass `--allow-image-change`",
            entry.id(),
            short(pinned),
            short(&image_id),
            entry.module.name,
            entry.version.version
        ));
    }
    let report = session
        .run(
            entry,
            "plan",
            &args.extra,
            args.skip_requirements,
            Vec::new(),
        )
        .await?;
    let ended = ended(&report, "plan", two_for("plan", args.detailed_exitcode));
    if !report.answered() {
        return Ok(ended);
    }
    output::note(&format!(
        "e: `{}`: {}",
        entry.id(),
        if report.exit_code == 2 {
            "the plan has changes"
        } else {
            "no changes"
        }
    ));
    if let Some(path) = &args.out {
        let basis = Basis::now(&session.shared, entry, &report.image_id)?;
        SavedPlan::new(entry, basis, &args.extra, &report).write(path)?;
        output::note(&format!(
            "e: saved the plan to `{}`; `e show {}` prints it, `e apply {}` applies exactly it",
            path.display(),
            path.display(),
            path.display()
        ));
    }
    Ok(ended)
}

/// Runs any command the repository lists; `destroy` goes through `e destroy`'s checks.
pub async fn run_command(
    args: RunArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    if args.command == "destroy" {
        let destroy = crate::cli::DestroyArgs {
            modules: vec![args.module],
            force: false,
            parallelism: 1,
            auto_approve: false,
            run: args.run,
            extra: args.extra,
        };
        return super::destroy::run(destroy, context, engine).await;
    }
    let target = format!("{} {}", args.module, args.command);
    let format = args.run.output;
    let result = one(
        &args.command,
        &args.module,
        &args.extra,
        false,
        &args.run,
        context,
        engine,
    )
    .await;
    context.finish("run", &target, format, result)
}
