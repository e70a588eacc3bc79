//! `e audit MODULE` and `e audit --all`: ask modules whether the state still holds what they
//! know; report drift (changes made by hand) with exit code 2.

use std::process::ExitCode;

use crate::Context;
use crate::cli::{AuditArgs, Format};
use crate::commands::ended;
use crate::commands::method::pick;
use crate::exit::{self, Two};
use crate::output;
use crate::runtime::Engine;
use crate::store::SharedDir;
use crate::summary::Ended;

/// Runs `e audit`.
pub async fn run(
    args: AuditArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let target = args
        .module
        .as_ref()
        .map_or_else(|| "--all".to_owned(), ToString::to_string);
    let result = audit(&args, context, engine).await;
    context.finish("audit", &target, args.run.output, result)
}

async fn audit(args: &AuditArgs, context: &Context, engine: &dyn Engine) -> anyhow::Result<Ended> {
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    if let Some(spec) = &args.module {
        let entry = pick(&repository, &shared, spec)?;
        let session = context.session(
            &repository,
            shared,
            engine,
            &format!("e audit {}", entry.id()),
            &args.run,
        )?;
        let report = session
            .run(entry, "audit", &args.extra, false, Vec::new())
            .await?;
        return Ok(ended(&report, "audit", Two::Reported));
    }
    let session = context.session(&repository, shared, engine, "e audit --all", &args.run)?;
    let installed = session.installed()?;
    if installed.entries().is_empty() {
        output::note("e: no module is installed; nothing to audit");
        return Ok(Ended::new(exit::SUCCESS, "clean"));
    }
    let mut rows = Vec::new();
    let (mut drift, mut failed) = (false, false);
    for entry in installed.entries() {
        output::note(&format!("\ne: auditing `{}`", entry.id()));
        let result = match session
            .run(*entry, "audit", &args.extra, false, Vec::new())
            .await
        {
            Ok(report) if report.succeeded() => "clean".to_owned(),
            Ok(report) if report.exit_code == 2 && !report.refused && report.stopped.is_none() => {
                drift = true;
                "drift".to_owned()
            }
            Ok(report) => {
                failed = true;
                format!("failed (exit {})", report.exit_code)
            }
            Err(err) => {
                failed = true;
                format!(
                    "error: {}",
                    format!("{err:#}").lines().next().unwrap_or_default()
                )
            }
        };
        rows.push(vec![
            entry.module.name.clone(),
            entry.version.version.to_string(),
            result,
        ]);
    }
    if args.run.output == Format::Table {
        output::note("");
        output::data(&output::table(&["MODULE", "VERSION", "AUDIT"], rows))?;
    }
    Ok(match (failed, drift) {
        (true, _) => Ended::new(exit::FAILURE, "failed"),
        (false, true) => Ended::new(exit::CHANGES, "drift"),
        (false, false) => Ended::new(exit::SUCCESS, "clean"),
    })
}
