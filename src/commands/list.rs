//! `e list`: every module version of the repository.

use std::process::ExitCode;

use crate::Context;
use crate::cli::ListArgs;
use crate::commands::{ENTRY_HEADER, EntryView, entry_rows};
use crate::output;
use crate::repository::Entry;

/// Lists the modules and versions.
pub fn run(args: ListArgs, context: &Context) -> anyhow::Result<ExitCode> {
    // Never freed: e exits after the command, and freeing a large repository one allocation at
    // a time was a tenth of the command's time (`docs/benchmarks.md`).
    let repository = std::mem::ManuallyDrop::new(context.catalog()?);
    let entries: Vec<Entry<'_>> = repository.entries().collect();
    let views: Vec<EntryView<'_>> = entries.iter().copied().map(EntryView::from).collect();
    let text = match output::serialized(args.output, &views)? {
        Some(text) => text,
        None if entries.is_empty() => {
            output::note("the repository has no modules");
            return Ok(ExitCode::SUCCESS);
        }
        None => output::table(&ENTRY_HEADER, entry_rows(&entries)),
    };
    output::data(&text)?;
    Ok(ExitCode::SUCCESS)
}
