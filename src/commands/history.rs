//! `e history [MODULE]`: the recorded runs of module methods, oldest first.

use std::process::ExitCode;

use crate::Context;
use crate::cli::HistoryArgs;
use crate::output;
use crate::store::SharedDir;

/// Shows the history.
pub fn run(args: HistoryArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let shared = SharedDir::open_read_only(&context.shared_path)?;
    let mut runs = shared.history()?;
    if let Some(module) = &args.module {
        runs.retain(|r| &r.module == module);
    }
    if let Some(text) = output::serialized(args.output, &runs)? {
        output::data(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        match &args.module {
            Some(module) => output::note(&format!(
                "no runs of `{module}` recorded in `{}`\nhint: `e history` lists every run; `e status` shows the modules of this state",
                shared.root().display()
            )),
            None => output::note(&format!(
                "no runs recorded in `{}` yet\nhint: runs appear here after `e init`, `e plan`, `e apply` and the other methods",
                shared.root().display()
            )),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows = runs
        .iter()
        .map(|r| {
            vec![
                crate::store::time::format(r.started),
                format!("{}@{}", r.module, r.version),
                r.command.clone(),
                r.exit_code
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                r.outcome.clone(),
                format!("{:.1}s", r.duration_ms as f64 / 1000.0),
                r.changed_keys.join(","),
                r.by.clone().unwrap_or_else(|| "-".to_owned()),
                r.notes.join("; "),
            ]
        })
        .collect();
    output::data(&output::table(
        &[
            "STARTED", "MODULE", "COMMAND", "EXIT", "OUTCOME", "TIME", "CHANGED", "BY", "NOTES",
        ],
        rows,
    ))?;
    Ok(ExitCode::SUCCESS)
}
