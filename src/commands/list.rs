//! `e list`: every module version of the repository.

use std::borrow::Cow;
use std::process::ExitCode;

use crate::Context;
use crate::cli::Format;
use crate::cli::ListArgs;
use crate::commands::{ENTRY_HEADER, entry_row};
use crate::output;

/// Lists the modules and versions.
pub fn run(args: ListArgs, context: &Context) -> anyhow::Result<ExitCode> {
    // A table row is made as each version is read (on every core, see `listing::list`), so
    // a large listing never holds every version's labels at once.
    let text = match args.output {
        Format::Table => context.listing(
            |entry| owned(entry_row(&entry)),
            |rows| (!rows.is_empty()).then(|| output::table(&ENTRY_HEADER, rows)),
        )?,
        format => context.listing(
            |entry| entry.into_owned(),
            |entries| output::serialized(format, &entries),
        )??,
    };
    match text {
        Some(text) => output::data(&text)?,
        None => output::note("the repository has no modules"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A row holding its own text.
fn owned(row: Vec<Cow<'_, str>>) -> Vec<Cow<'static, str>> {
    row.into_iter()
        .map(|cell| Cow::Owned(cell.into_owned()))
        .collect()
}
