//! The `e` binary: parse the arguments, run, and turn the result into an exit code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match e::cli::Cli::try_parse_from(e::cli::normalize(std::env::args_os())) {
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

// mimalloc: loading a large repository is mostly small allocations, which it makes much cheaper.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
