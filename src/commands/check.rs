//! `e check MODULE[@VERSION]`: the design's "check required methods implementation", for
//! module authors' CI. It opens a session on a throwaway shared directory, has `contract/`
//! walk the module's lifecycle in it, and prints one row per promise of the module contract
//! (a table, or `-o json`/`-o yaml`); it exits 1 when any row fails. The directory and the
//! engine volumes of its modules are removed afterwards.

use std::process::ExitCode;

use crate::Context;
use crate::cli::{CheckArgs, RunOptions};
use crate::contract::{self, Outcome, Row};
use crate::runtime::Engine;
use crate::store::SharedDir;
use crate::{exit, output};

/// Runs the checks.
pub async fn run(
    args: CheckArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let target = repository.find(&args.module)?;
    let scratch = tempfile::Builder::new().prefix("e-check-").tempdir()?;
    let shared = SharedDir::open(&scratch.path().join("shared"))?;
    let options = RunOptions {
        timeout: Some(args.timeout),
        lock_timeout: std::time::Duration::ZERO,
        output: crate::cli::Format::Table,
    };
    let mut session = context.session(
        &repository,
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
    let contract::Checked { rows, interrupted } = checked?;
    let failed = rows.iter().filter(|r| r.result == Outcome::Fail).count();
    if let Some(text) = output::serialized(args.output, &rows)? {
        output::data(&text)?;
    } else {
        output::data(&table(&rows))?;
        let skipped = rows.iter().filter(|r| r.result == Outcome::Skip).count();
        let skipped = match skipped {
            0 => String::new(),
            n => format!(" ({n} skipped)"),
        };
        output::note(&if failed == 0 {
            format!("e: `{}` follows the module contract{skipped}", target.id())
        } else {
            format!(
                "e: `{}` fails {failed} of {} checks{skipped}",
                target.id(),
                rows.len()
            )
        });
    }
    Ok(ExitCode::from(if interrupted {
        output::note("e: interrupted; the remaining checks were skipped");
        exit::INTERRUPTED
    } else if failed == 0 {
        exit::SUCCESS
    } else {
        exit::FAILURE
    }))
}

/// The rows as a table: CHECK, RESULT, DETAIL, with a failure's hint under its detail.
fn table(rows: &[Row]) -> String {
    let lines = rows
        .iter()
        .map(|row| {
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
            vec![row.check.clone(), result.to_owned(), detail]
        })
        .collect();
    output::table(&["CHECK", "RESULT", "DETAIL"], lines)
}
