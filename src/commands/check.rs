//! `e check MODULE[@VERSION]...`: the design's "check required methods implementation", for
//! module authors' CI. Each module gets a session on a throwaway shared directory of its own,
//! in which `contract/` walks its lifecycle; several are checked side by side
//! (`--parallelism`). It prints one row per promise of the module contract (a table, or
//! `-o json`/`-o yaml`, each row naming its module) and exits 1 when any row fails. The
//! directories and the engine volumes of their modules are removed afterwards.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::{CheckArgs, RunOptions};
use crate::contract::{self, Outcome, Row};
use crate::lifecycle::schedule;
use crate::repository::{Entry, Repository};
use crate::runtime::Engine;
use crate::store::SharedDir;
use crate::{exit, output};

/// A row of the report, with the module it is about.
#[derive(Serialize)]
struct ModuleRow<'a> {
    module: String,
    #[serde(flatten)]
    row: &'a Row,
}

/// Runs the checks.
pub async fn run(
    args: CheckArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let mut targets: Vec<Entry<'_>> = Vec::new();
    for spec in &args.modules {
        let target = repository.find(spec)?;
        if !targets.iter().any(|t| t.id() == target.id()) {
            targets.push(target);
        }
    }
    let checked: std::cell::RefCell<Vec<Option<contract::Checked>>> =
        std::cell::RefCell::new(targets.iter().map(|_| None).collect());
    // A stop signal stops the running checks (each notices it) and starts no other.
    let stop = crate::interrupt::Watch::start();
    let independent = vec![Vec::new(); targets.len()];
    let (repository, args_ref) = (&repository, &args);
    let ran = schedule::run(&independent, args.parallelism.into(), stop.stopped(), |i| {
        let (target, checked) = (targets[i], &checked);
        async move {
            let result = check_one(repository, target, args_ref, context, engine).await?;
            checked.borrow_mut()[i] = Some(result);
            // A failing check stops no other.
            Ok(true)
        }
    })
    .await;
    drop(stop);
    let ran = ran?;
    let never_started: Vec<String> = targets
        .iter()
        .zip(&ran)
        .filter(|(_, outcome)| **outcome == schedule::Outcome::NotStarted)
        .map(|(target, _)| format!("`{}`", target.id()))
        .collect();
    let (targets, checked): (Vec<Entry<'_>>, Vec<contract::Checked>) = targets
        .into_iter()
        .zip(checked.into_inner())
        .filter_map(|(target, checked)| Some((target, checked?)))
        .unzip();
    let interrupted = !never_started.is_empty() || checked.iter().any(|c| c.interrupted);
    let failed =
        |c: &contract::Checked| c.rows.iter().filter(|r| r.result == Outcome::Fail).count();
    let any_failed = checked.iter().any(|c| failed(c) > 0);
    let rows: Vec<ModuleRow<'_>> = targets
        .iter()
        .zip(&checked)
        .flat_map(|(target, c)| {
            c.rows.iter().map(|row| ModuleRow {
                module: target.id(),
                row,
            })
        })
        .collect();
    if let Some(text) = output::serialized(args.output, &rows)? {
        output::data(&text)?;
    } else {
        output::data(&table(&rows, targets.len() > 1))?;
        for (target, c) in targets.iter().zip(&checked) {
            output::note(&summary(*target, c, failed(c)));
        }
    }
    Ok(ExitCode::from(if interrupted {
        output::note("e: interrupted; the remaining checks were skipped");
        if !never_started.is_empty() {
            output::note(&format!("e: never started: {}", never_started.join(", ")));
        }
        exit::INTERRUPTED
    } else if any_failed {
        exit::FAILURE
    } else {
        exit::SUCCESS
    }))
}

/// Checks one module in a throwaway shared directory and removes its modules' volumes.
async fn check_one(
    repository: &Repository,
    target: Entry<'_>,
    args: &CheckArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<contract::Checked> {
    let scratch = tempfile::Builder::new().prefix("e-check-").tempdir()?;
    let shared = SharedDir::open(&scratch.path().join("shared"))?;
    let options = RunOptions {
        timeout: Some(args.timeout),
        lock_timeout: std::time::Duration::ZERO,
        output: crate::cli::Format::Table,
    };
    let mut session = context.session(
        repository,
        shared,
        engine,
        &format!("e check {}", target.id()),
        &options,
    )?;
    session.quiet = true;
    let checked = contract::check(&session, target).await;
    // The modules' private volumes go with the throwaway directory, whatever the checks found.
    match session.shared.id() {
        Ok(id) => {
            if let Err(err) = engine.remove_volumes(&id).await {
                output::warn(&format!(
                    "{err:#}\nhint: remove them with `docker volume rm $(docker volume ls -q --filter label=e.shared={id})`"
                ));
            }
        }
        Err(err) => output::warn(&format!("{err:#}; the volumes of the check are left")),
    }
    checked
}

/// `e: `m@1.0.0` follows the module contract`, or how many checks it fails.
fn summary(target: Entry<'_>, checked: &contract::Checked, failed: usize) -> String {
    let skipped = match checked
        .rows
        .iter()
        .filter(|r| r.result == Outcome::Skip)
        .count()
    {
        0 => String::new(),
        n => format!(" ({n} skipped)"),
    };
    if failed == 0 {
        format!("e: `{}` follows the module contract{skipped}", target.id())
    } else {
        format!(
            "e: `{}` fails {failed} of {} checks{skipped}",
            target.id(),
            checked.rows.len()
        )
    }
}

/// The rows as a table: CHECK, RESULT, DETAIL (after MODULE when several are checked), with
/// a failure's hint under its detail.
fn table(rows: &[ModuleRow<'_>], several: bool) -> String {
    let lines = rows
        .iter()
        .map(|ModuleRow { module, row }| {
            let result = match row.result {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            let detail = match (row.detail.as_str(), row.hint.as_str()) {
                (detail, "") => detail.to_owned(),
                ("", hint) => format!("hint: {hint}"),
                (detail, hint) => format!("{detail}\nhint: {hint}"),
            };
            let mut line = vec![row.check.clone(), result.to_owned(), detail];
            if several {
                line.insert(0, module.clone());
            }
            line
        })
        .collect();
    if several {
        output::table(&["MODULE", "CHECK", "RESULT", "DETAIL"], lines)
    } else {
        output::table(&["CHECK", "RESULT", "DETAIL"], lines)
    }
}
