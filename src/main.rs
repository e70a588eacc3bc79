//! The `e` binary: parse the arguments, run, and turn the result into an exit code.

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

fn main() -> ExitCode {
    // A shell asking what to complete (`COMPLETE=bash e -- e run ...`) is answered here.
    clap_complete::CompleteEnv::with_factory(e::cli::Cli::command).complete();
    let mut command = e::cli::Cli::command();
    if e::output::no_color_requested() {
        command = command.color(clap::ColorChoice::Never);
    }
    let parsed = command
        .try_get_matches_from(e::cli::normalize(std::env::args_os()))
        .and_then(|matches| e::cli::Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        // `--help` and `--version` print and succeed; a usage error is an error like any
        // other (exit 1, as Terraform), never 2, which means "changes" (see `exit.rs`).
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(e::exit::FAILURE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // One thread: e waits on the engine, it does not compute; worker threads cost more to
    // start than they save (CPU-heavy steps, such as parsing a large state, use threads of
    // their own).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            e::output::error(&anyhow::Error::new(err).context("failed to start the async runtime"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(e::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            e::output::error(&err);
            ExitCode::FAILURE
        }
    }
}

// The system's allocator for small data, mimalloc for a large repository (`allocator.rs`).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: allocator::Chosen = allocator::Chosen;

#[cfg(not(target_os = "linux"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(target_os = "linux")]
mod allocator;
