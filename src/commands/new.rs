//! `e new`: placeholder.
use std::process::ExitCode;

use crate::Context;
use crate::cli::NewArgs;

/// Runs `e new`.
pub fn run(_args: NewArgs, _context: &Context) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
