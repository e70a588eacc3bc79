//! `e audit MODULE` and `e audit --all`: ask modules whether the state still holds what they
//! know; report drift (changes made by hand) with exit code 2. `--all` audits the installed
//! modules side by side, up to `--parallelism`.

use std::cell::{Cell, RefCell};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use crate::Context;
use crate::cli::{AuditArgs, Format};
use crate::commands::ended;
use crate::commands::method::pick;
use crate::exit::{self, Two};
use crate::lifecycle::schedule;
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
    let mut session = context.session(&repository, shared, engine, "e audit --all", &args.run)?;
    let installed = session.installed()?;
    let entries = installed.entries();
    if entries.is_empty() {
        output::note("e: no module is installed; nothing to audit");
        return Ok(Ended::new(exit::SUCCESS, "clean"));
    }
    let parallelism = usize::from(args.parallelism);
    session.prefix_output = parallelism > 1 && entries.len() > 1;
    let session = &session;
    let results = RefCell::new(vec![String::new(); entries.len()]);
    let (drift, failed) = (Cell::new(false), Cell::new(false));
    // Audits only read: none waits for another, and a failure stops nothing.
    let independent = vec![Vec::new(); entries.len()];
    let never = AtomicBool::new(false);
    schedule::run(&independent, parallelism, &never, |i| {
        let entry = entries[i];
        output::note(&format!("\ne: auditing `{}`", entry.id()));
        let (results, drift, failed) = (&results, &drift, &failed);
        async move {
            let result = match session
                .run(entry, "audit", &args.extra, false, Vec::new())
                .await
            {
                Ok(report) if report.succeeded() => "clean".to_owned(),
                Ok(report)
                    if report.exit_code == 2 && !report.refused && report.stopped.is_none() =>
                {
                    drift.set(true);
                    "drift".to_owned()
                }
                Ok(report) => {
                    failed.set(true);
                    format!("failed (exit {})", report.exit_code)
                }
                Err(err) => {
                    failed.set(true);
                    format!(
                        "error: {}",
                        format!("{err:#}").lines().next().unwrap_or_default()
                    )
                }
            };
            results.borrow_mut()[i] = result;
            Ok(true)
        }
    })
    .await?;
    let rows: Vec<Vec<String>> = entries
        .iter()
        .zip(results.into_inner())
        .map(|(entry, result)| {
            vec![
                entry.module.name.clone(),
                entry.version.version.to_string(),
                result,
            ]
        })
        .collect();
    let (failed, drift) = (failed.get(), drift.get());
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
