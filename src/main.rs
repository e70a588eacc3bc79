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
    let cli =
        e::cli::Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|err| err.exit());
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

// mimalloc: loading a large repository is mostly small allocations, which it makes much cheaper.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
