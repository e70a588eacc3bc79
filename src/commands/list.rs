//! `e list`: every module version of the repository.

use std::process::ExitCode;

use crate::Context;
use crate::cli::ListArgs;
use crate::commands::{ENTRY_HEADER, entry_rows};
use crate::output;

/// Lists the modules and versions.
pub fn run(args: ListArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let text = context.listing(|entries| -> anyhow::Result<Option<String>> {
        Ok(match output::serialized(args.output, &entries)? {
            Some(text) => Some(text),
            None if entries.is_empty() => None,
            None => Some(output::table(&ENTRY_HEADER, entry_rows(entries))),
        })
    })??;
    match text {
        Some(text) => output::data(&text)?,
        None => output::note("the repository has no modules"),
    }
    Ok(ExitCode::SUCCESS)
}
