//! What the end-to-end test files share: where the project is, how to run the `e` binary, and
//! how to show everything it said when an assertion fails.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod engines;
pub mod hosts;
pub mod postgres;
pub mod pty;
pub mod registry;
pub mod walkthrough;

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

/// Asserts that `e ARGS` exited with `code`, showing everything it said when it did not.
pub fn exited(code: i32, args: &[&str], out: Output) -> Output {
    assert_eq!(
        out.status.code(),
        Some(code),
        "e {}:\n{}",
        args.join(" "),
        text(&out)
    );
    out
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

/// The repository of the end-to-end tests: the example modules and `misbehave`.
pub fn test_repository() -> PathBuf {
    root().join("tests/fixtures/e2e-repository.yaml")
}

/// Builds `e-tests/misbehave:0.1.0` from `tests/modules/misbehave` (once per test binary).
pub fn misbehave_image() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| build_test_module("misbehave"));
}

/// Builds `e-tests/noncompliant:0.1.0` from `tests/modules/noncompliant`, the subjects of the
/// `e check` tests (once per test binary).
pub fn noncompliant_image() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| build_test_module("noncompliant"));
}

/// Builds `e-tests/NAME:0.1.0` from `tests/modules/NAME` (a Dockerfile and a busybox shell
/// script `NAME.sh`), with the static busybox beside them.
fn build_test_module(name: &str) {
    let context = tempfile::tempdir().unwrap();
    let folder = root().join("tests/modules").join(name);
    for file in ["Dockerfile".to_owned(), format!("{name}.sh")] {
        std::fs::copy(folder.join(&file), context.path().join(&file))
            .unwrap_or_else(|err| panic!("{}: {err}", folder.join(&file).display()));
    }
    std::fs::copy("/bin/busybox", context.path().join("busybox"))
        .expect("busybox-static is installed");
    let dir = context.path().to_str().unwrap();
    let out = e_in(
        root(),
        &test_repository(),
        &root().join("shared-unused"),
        &["build", dir, "--tag", &format!("e-tests/{name}:0.1.0")],
    );
    assert!(
        out.status.success(),
        "building the {name} image failed:\n{}",
        text(&out)
    );
}

/// The engine volumes of the shared directory `shared` (label `e.shared`).
pub fn volumes_of(shared: &Path) -> Vec<String> {
    let Ok(id) = std::fs::read_to_string(shared.join(".e/id")) else {
        return Vec::new();
    };
    let out = Command::new("docker")
        .args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=e.shared={}", id.trim()),
        ])
        .output()
        .expect("docker volume ls");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Removes the engine volumes of a test's shared directory when dropped: modules' private
/// volumes outlive their runs by design, a test's go with it.
pub struct Volumes(pub PathBuf);

impl Drop for Volumes {
    fn drop(&mut self) {
        let volumes = volumes_of(&self.0);
        if !volumes.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&volumes)
                .output();
        }
    }
}

/// The containers of the shared directory `shared` still in the engine: every container e
/// creates carries the directory's id (label `e.shared`), so other tests' are left out.
pub fn containers_of(shared: &Path) -> Vec<String> {
    let Ok(id) = std::fs::read_to_string(shared.join(".e/id")) else {
        return Vec::new();
    };
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=e.shared={}", id.trim()),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
