//! `e metadata|init|plan MODULE` and `e run MODULE COMMAND`: one method of one module version,
//! in its container, with requirements checked and the shared state kept safe.

use std::process::ExitCode;

use crate::Context;
use crate::cli::{MethodArgs, RunArgs};
use crate::repository::{Entry, ModuleSpec, Repository};
use crate::run::Report;
use crate::runtime::{Engine, Stopped};
use crate::store::SharedDir;

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

/// The exit code e gives for a report: the container's, or 124 for a timeout and 130 for an
/// interrupt (as `timeout` and shells do), or 1 when its result was refused.
pub fn exit_code(report: &Report) -> ExitCode {
    match report.stopped {
        Some(Stopped::Timeout) => return ExitCode::from(124),
        Some(Stopped::Interrupted) => return ExitCode::from(130),
        None => {}
    }
    match report.exit_code {
        0 if report.refused => ExitCode::FAILURE,
        code => ExitCode::from(u8::try_from(code).unwrap_or(1)),
    }
}

/// Runs `metadata`, `init` or `plan`.
pub async fn run(
    method: &str,
    args: MethodArgs,
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
        &format!("e {method} {}", entry.id()),
        &args.run,
    )?;
    let report = session
        .run(
            entry,
            method,
            &args.extra,
            args.skip_requirements,
            Vec::new(),
        )
        .await?;
    Ok(exit_code(&report))
}

/// Runs any command the repository lists; `destroy` goes through `e destroy`'s checks.
pub async fn run_command(
    args: RunArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    if args.command == "destroy" {
        let destroy = crate::cli::DestroyArgs {
            module: args.module,
            force: false,
            run: args.run,
            extra: args.extra,
        };
        return super::destroy::run(destroy, context, engine).await;
    }
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let entry = pick(&repository, &shared, &args.module)?;
    let session = context.session(
        &repository,
        shared,
        engine,
        &format!("e {} {}", args.command, entry.id()),
        &args.run,
    )?;
    let report = session
        .run(entry, &args.command, &args.extra, false, Vec::new())
        .await?;
    Ok(exit_code(&report))
}
