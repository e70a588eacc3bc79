//! `e completions SHELL`: the script that makes bash, zsh, fish, elvish or PowerShell complete
//! e's command lines by asking e itself (clap_complete's dynamic completion, answered in
//! `main.rs`; the candidates come from `completion.rs`), so that module names, versions and a
//! module's commands follow the repository.

use std::process::ExitCode;

use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use crate::cli::CompletionsArgs;
use crate::output;

/// The variable that makes e answer a shell's completion request.
const VARIABLE: &str = "COMPLETE";

/// Prints the completion script.
pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let shell: &dyn EnvCompleter = match args.shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Zsh => &Zsh,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::PowerShell => &Powershell,
        other => anyhow::bail!(
            "e cannot complete for `{other}` yet\nhint: e completes for bash, zsh, fish, elvish and powershell"
        ),
    };
    let mut script = Vec::new();
    // The script runs `e` from PATH, as the user does.
    shell.write_registration(VARIABLE, "e", "e", "e", &mut script)?;
    output::data(&String::from_utf8(script)?)?;
    Ok(ExitCode::SUCCESS)
}
