//! What the end-to-end test files share: where the project is, how to run the `e` binary, and
//! how to show everything it said when an assertion fails.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub mod engines;

/// The project's root directory.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `e ARGS` in `cwd` with this repository and shared directory, never with a secrets file
/// or progress output from the test runner's environment.
pub fn e_in(cwd: &Path, repository: &Path, shared: &Path, args: &[&str]) -> Output {
    e_in_with(cwd, repository, shared, args, &[])
}

/// Like [`e_in`], with extra environment variables.
pub fn e_in_with(
    cwd: &Path,
    repository: &Path,
    shared: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
    command
        .args(args)
        .current_dir(cwd)
        .env("E_REPOSITORY", repository)
        .env("E_SHARED", shared)
        .env_remove("E_SECRETS")
        .env_remove("E_PROGRESS");
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().expect("the e binary runs")
}

/// Everything a run said, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a run printed on stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a run printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
