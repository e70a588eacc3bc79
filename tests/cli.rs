//! CLI tests of the read-only commands: the whole answer (exit code, stdout, stderr) of the
//! binary, snapshotted, against the top-level repository, the compat file and broken fixtures.

use std::path::Path;
use std::process::Command;

/// Runs `e` with these arguments from the project root and renders the whole answer.
fn e(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_e"))
        .args(args)
        .current_dir(root)
        .env_remove("E_REPOSITORY")
        .env("NO_COLOR", "1")
        .output()
        .expect("the e binary runs");
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output
            .status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/{name}.yaml")
}

macro_rules! snapshot {
    ($name:expr, $args:expr) => {
        insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!($name, e($args));
        })
    };
}

#[test]
fn list_shows_every_module_version() {
    snapshot!("list", &["list"]);
    snapshot!("list_json", &["list", "-o", "json"]);
    snapshot!("list_yaml", &["list", "-o", "yaml"]);
}

#[test]
fn compat_repository_loads_unchanged() {
    snapshot!(
        "list_compat",
        &[
            "--repository",
            "tests/fixtures/compat-e-cli-v1.yaml",
            "list"
        ]
    );
    snapshot!(
        "info_compat",
        &[
            "--repository",
            "tests/fixtures/compat-e-cli-v1.yaml",
            "info",
            "c1"
        ]
    );
}

#[test]
fn search_by_selector() {
    snapshot!(
        "search_monitoring",
        &["search", "kind=monitoring,core-technology in (prometheus)"]
    );
    snapshot!(
        "search_semver",
        &["search", "provides-kafka semver (>=2.5, <3)", "-o", "json"]
    );
    snapshot!("search_none", &["search", "kind=logs-storage"]);
    snapshot!("search_bad_selector", &["search", "kind in monitoring"]);
}

#[test]
fn search_for_a_module_explains_candidates_and_misses() {
    snapshot!("search_for_bmk", &["search", "--for", "bmk"]);
    snapshot!(
        "search_for_bmk_json",
        &["search", "--for", "bmk@0.1.0", "-o", "json"]
    );
    snapshot!("search_for_unknown", &["search", "--for", "bkm"]);
}

#[test]
fn info_shows_requirements_and_influences() {
    snapshot!("info_bmk", &["info", "bmk"]);
    snapshot!("info_bmm", &["info", "bmm@0.1.0"]);
    snapshot!("info_unknown_version", &["info", "bmm@9.9.9"]);
}

#[test]
fn info_shows_the_limits_and_user_a_module_runs_with() {
    let repository = fixture("limits");
    snapshot!("info_limits", &["--repository", &repository, "info", "big"]);
    snapshot!(
        "info_limits_json",
        &["--repository", &repository, "info", "big", "-o", "json"]
    );
    snapshot!(
        "info_limits_tmp_mount",
        &["--repository", &repository, "info", "big@0.1.0"]
    );
}

#[test]
fn graph_in_three_formats() {
    snapshot!("graph_tree", &["graph"]);
    snapshot!("graph_tree_bmk", &["graph", "bmk"]);
    snapshot!("graph_dot_bmk", &["graph", "bmk", "--format", "dot"]);
    snapshot!("graph_mermaid", &["graph", "--format", "mermaid"]);
}

#[test]
fn usage_errors_exit_2() {
    snapshot!("usage_no_selector", &["search"]);
    snapshot!("usage_bad_format", &["list", "-o", "xml"]);
}

#[test]
fn completions_are_generated() {
    let out = e(&["completions", "bash"]);
    assert!(out.starts_with("exit: 0\n"), "{out}");
    // The script asks e what to complete (tests/toolbox.rs completes real lines with it).
    assert!(out.contains("-F _clap_complete_e e"), "{out}");
}

#[test]
fn missing_repository_file() {
    snapshot!(
        "error_missing_file",
        &["--repository", "tests/fixtures/absent.yaml", "list"]
    );
}

#[test]
fn every_broken_fixture_is_an_error_that_points_at_it() {
    for name in [
        "unknown-field",
        "seed-key",
        "two-latest",
        "duplicate-module",
        "duplicate-version",
        "duplicate-key",
        "empty-image",
        "bad-operator",
        "bad-semver",
        "bad-memory",
        "bad-cpus",
        "bad-pids",
        "bad-user",
        "alias-bomb",
        "deep",
        "not-utf8",
    ] {
        snapshot!(
            format!("error_{name}"),
            &["--repository", &fixture(name), "list"]
        );
    }
}

#[test]
fn non_semver_version_loads_with_a_warning() {
    snapshot!(
        "warning_dev_version",
        &["--repository", &fixture("dev-version"), "list"]
    );
}
