//! `e validate`: placeholder.
use std::process::ExitCode;

use crate::Context;
use crate::cli::ValidateArgs;

/// Runs `e validate`.
pub fn run(_args: ValidateArgs, _context: &Context) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
