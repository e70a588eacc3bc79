//! One file per subcommand, each with a `run` function that takes its parsed arguments.

pub mod apply;
pub mod audit;
pub mod build;
pub mod check;
pub mod completions;
pub mod destroy;
pub mod download;
pub mod export;
pub mod graph;
pub mod graph_installed;
pub mod history;
pub mod import;
pub mod info;
pub mod list;
pub mod method;
pub mod new;
pub mod push;
pub mod recover;
pub mod search;
pub mod serve;
pub mod show;
pub mod state;
pub mod state_backend;
pub mod status;
pub mod upgrade;
pub mod validate;
pub mod version;

use std::borrow::Cow;

use crate::cli::Format;
use crate::exit::Two;
use crate::lifecycle::approve::Approval;
use crate::output;
use crate::repository::{EntryView, LabelPairs};
use crate::run::Report;
use crate::summary::Ended;

/// How a command that changes things asks: `--auto-approve` does not; `-o json|yaml` cannot
/// ask while it writes a document, so it needs `--auto-approve` (as Terraform's `-json`).
pub fn approval(auto_approve: bool, format: Format, command: &str) -> anyhow::Result<Approval> {
    if !auto_approve && format != Format::Table {
        anyhow::bail!(
            "`e {command} -o {}` cannot ask for confirmation while it writes a document\nhint: review the plan first (`e plan ... -o json`), then pass `--auto-approve`",
            match format {
                Format::Json => "json",
                _ => "yaml",
            }
        );
    }
    Ok(Approval::from_flag(auto_approve))
}

/// How one method run ends the command (see `exit.rs`), saying why when the module failed
/// (a timeout, an interrupt, a refused or kept result say so themselves).
pub fn ended(report: &Report, method: &str, two: Two) -> Ended {
    let ended = Ended::of(report, two);
    let failed = !report.answered() || (report.exit_code == 2 && two == Two::Failure);
    if failed && report.stopped.is_none() && !report.refused && report.kept.is_none() {
        output::note(&format!(
            "e: `{}@{}` {method} failed (exit {})",
            report.record.module, report.record.version, report.exit_code
        ));
    }
    ended
}

/// A one-line summary of every label, `kind` first, for tables. Each `key=value` reads back as
/// a selector: a value with spaces or other special characters is quoted as a selector quotes
/// it (`name="Bare Metal Kafka"`), so it can be pasted into `e search`.
pub fn label_summary(labels: &LabelPairs<'_>) -> String {
    let kind = labels.get("kind").map(|value| ("kind", value));
    // Sized for the labels with no quote: growing it was a third of the summaries' time.
    let mut summary =
        String::with_capacity(labels.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (key, value) in kind
        .into_iter()
        .chain(labels.iter().filter(|(k, _)| *k != "kind"))
    {
        if !summary.is_empty() {
            summary.push(' ');
        }
        summary.push_str(key);
        summary.push('=');
        summary.push_str(&crate::selector::quote_if_needed(value));
    }
    summary
}

/// Table rows for module versions: MODULE, VERSION, LATEST, LABELS.
pub fn entry_rows<'r>(entries: &'r [EntryView<'_>]) -> Vec<Vec<Cow<'r, str>>> {
    entries.iter().map(entry_row).collect()
}

/// One row of [`entry_rows`].
pub fn entry_row<'r>(e: &'r EntryView<'_>) -> Vec<Cow<'r, str>> {
    vec![
        Cow::Borrowed(e.module.as_ref()),
        Cow::Borrowed(e.version.as_ref()),
        Cow::Borrowed(if e.latest { "*" } else { "" }),
        Cow::Owned(label_summary(&e.labels)),
    ]
}

/// The header matching [`entry_rows`].
pub const ENTRY_HEADER: [&str; 4] = ["MODULE", "VERSION", "LATEST", "LABELS"];
