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
fn usage_errors_exit_1_never_2_which_means_changes() {
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
        "null-image",
        "tag",
        "bad-env-key",
        "bad-shared",
        "bad-timeout",
        "bad-keep-secrets",
        "bad-package",
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

#[test]
fn label_values_are_kept_as_written() {
    let repository = fixture("as-written");
    snapshot!("list_as_written", &["--repository", &repository, "list"]);
    snapshot!(
        "info_as_written",
        &["--repository", &repository, "info", "spelled"]
    );
    // Selectors compare the text: `1.10` is not `1.1`, `0x1F` is not `31`.
    for (selector, matches) in [
        ("version=1.10", true),
        ("version=1.1", false),
        ("hex=0x1F", true),
        ("hex=31", false),
        ("exponent=1e3", true),
        ("plus=+1", true),
        ("plus=1", false),
        ("answer=no", true),
        ("time=12:30", true),
        (&format!("{}/tier=gold", "a".repeat(100)), true),
    ] {
        let out = e(&["--repository", &repository, "search", selector]);
        assert_eq!(
            out.contains("spelled "),
            matches,
            "e search '{selector}':\n{out}"
        );
    }
}

#[test]
fn semver_comparisons_ignore_build_metadata() {
    let repository = fixture("as-written");
    snapshot!(
        "search_build_metadata_le",
        &[
            "--repository",
            &repository,
            "search",
            "provides-thing<=1.0.0"
        ]
    );
    snapshot!(
        "search_build_metadata_gt",
        &[
            "--repository",
            &repository,
            "search",
            "provides-thing>1.0.0"
        ]
    );
}

#[test]
fn a_byte_order_mark_is_no_content() {
    snapshot!("list_bom", &["--repository", &fixture("bom"), "list"]);
}

#[test]
fn a_secrets_file_with_a_name_twice_or_a_tag_is_refused() {
    let shared = tempfile::tempdir().unwrap();
    let shared = shared.path().to_str().unwrap();
    for name in ["secrets-twice", "secrets-tag"] {
        let secrets = fixture(name);
        snapshot!(
            format!("error_{name}"),
            &[
                "--repository",
                "tests/fixtures/e2e-repository.yaml",
                "--shared",
                shared,
                "--secrets",
                &secrets,
                "run",
                "misbehave",
                "apply",
            ]
        );
    }
}

/// Splits a LABELS cell into its `key=value` items: spaces separate them, except inside a
/// double-quoted value.
fn label_items(cell: &str) -> Vec<String> {
    let (mut items, mut item, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in cell.chars() {
        match c {
            ' ' if !quoted => items.extend((!item.is_empty()).then(|| std::mem::take(&mut item))),
            '"' if !escaped => {
                quoted = !quoted;
                item.push(c);
            }
            _ => item.push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    items.extend((!item.is_empty()).then_some(item));
    items
}

#[test]
fn every_label_in_a_table_pastes_back_into_a_selector() {
    for repository in ["repository.yaml".to_owned(), fixture("as-written")] {
        let listed = e(&["--repository", &repository, "list"]);
        let header = listed.lines().nth(2).expect("a header line");
        let column = header.find("LABELS").expect("a LABELS column");
        let rows: Vec<&str> = listed
            .lines()
            .skip(3)
            .take_while(|line| !line.starts_with("--- stderr"))
            .collect();
        assert!(!rows.is_empty(), "{listed}");
        for row in rows {
            let id: Vec<&str> = row.split_whitespace().take(2).collect();
            let items = label_items(&row[column..]);
            assert!(!items.is_empty(), "{row}");
            for item in items {
                let found = e(&["--repository", &repository, "search", &item]);
                let listed_again = found
                    .lines()
                    .any(|line| line.split_whitespace().take(2).eq(id.iter().copied()));
                assert!(
                    listed_again,
                    "`e search '{item}'` does not find {id:?}:\n{found}"
                );
            }
        }
    }
    // The one label that used to be left out, with a value that has spaces.
    let listed = e(&["list"]);
    assert!(listed.contains("name=\"Bare Metal Kafka\""), "{listed}");
}

/// Reads YAML with PyYAML, a YAML 1.1 reader, and returns it as JSON (values of other types
/// than JSON's, like dates, as `<type value>`, so that they show in the comparison).
fn pyyaml(text: &str) -> serde_json::Value {
    use std::io::Write as _;
    let script = "import sys, json, yaml\n\
        json.dump(yaml.safe_load(sys.stdin), sys.stdout, default=lambda o: '<%s %s>' % (type(o).__name__, o))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs: this test needs python3 and PyYAML (tests/engine.sh installs python3-yaml)");
    child
        .stdin
        .take()
        .expect("a pipe")
        .write_all(text.as_bytes())
        .expect("python3 reads");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "PyYAML could not read e's YAML (is python3-yaml installed? tests/engine.sh installs it):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python3")
}

/// Runs e and returns its stdout, asserting that it succeeded.
fn stdout_of(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_e"))
        .args(args)
        .current_dir(root)
        .env_remove("E_REPOSITORY")
        .output()
        .expect("the e binary runs");
    assert!(
        out.status.success(),
        "e {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn yaml_output_reads_back_the_same_in_a_yaml_1_1_reader() {
    let repository = fixture("as-written");
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(
        shared.path().join("state.yml"),
        "spelled:\n  answer: 'no'\n  at: '12:30'\n  day: '2024-01-01'\n  count: '1_000'\n  version: '0.1.0'\n  really: true\n  size: 5\n  off: 'off'\n",
    )
    .unwrap();
    let shared = shared.path().to_str().unwrap();
    for args in [
        vec!["list"],
        vec!["info", "spelled"],
        vec!["search", "kind in (spelling, build)"],
        vec!["search", "--for", "spelled"],
        vec!["state"],
    ] {
        let mut args: Vec<&str> = [
            &["--repository", &repository, "--shared", shared][..],
            &args,
        ]
        .concat();
        args.extend(["-o", "json"]);
        let json: serde_json::Value = serde_json::from_str(&stdout_of(&args)).unwrap();
        *args.last_mut().unwrap() = "yaml";
        let yaml = stdout_of(&args);
        assert_eq!(pyyaml(&yaml), json, "e {args:?} as read by PyYAML:\n{yaml}");
    }
}

/// Runs `e` on `repository` with the cache in `cache`; `whole` reads as e did before its
/// faster paths (every module built). Gives exit code, stdout and stderr.
fn e_cached(repository: &Path, cache: &Path, whole: bool, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
    command
        .arg("--repository")
        .arg(repository)
        .args(args)
        .env("E_CACHE_DIR", cache)
        .env("NO_COLOR", "1");
    if whole {
        command.env("E_REPOSITORY_PARSER", "whole");
    }
    let output = command.output().expect("the e binary runs");
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_large_repository_answers_the_same_from_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.yaml");
    let mut text = String::from("version: v1\nkind: Repository\ncomponents:\n");
    let mut i = 0;
    while text.len() < 1_200_000 {
        let version = if i == 5 { "v1" } else { "1.0.0" };
        text.push_str(&format!(
            "- name: m{i}\n  type: docker\n  versions:\n  - version: {version}\n    image: img/m{i}:1\n    labels: {{kind: k{}, zone: z{}, title: \"Module {i}\"}}\n    requires:\n      strong:\n      - [{{key: kind, operator: eq, values: [k{}]}}, {{key: zone, operator: in, values: [z1, z2]}}]\n      weak:\n      - [{{key: title, operator: eq, values: [\"Module {}\"]}}]\n",
            i % 7,
            i % 5,
            (i + 1) % 7,
            i + 3
        ));
        i += 1;
    }
    std::fs::write(&path, text).unwrap();
    let cache = dir.path().join("cache");
    let commands: [&[&str]; 7] = [
        &["list"],
        &["list", "-o", "json"],
        &["list", "-o", "yaml"],
        &["search", "--for", "m10"],
        &["search", "--for", "m5@v1", "-o", "json"],
        &["search", "--for", "m1@9"],
        &["search", "--for", "m99999"],
    ];
    for args in commands {
        // The first fills the cache, the second reads it; the third builds every module.
        let cold = e_cached(&path, &cache, false, args);
        let warm = e_cached(&path, &cache, false, args);
        let whole = e_cached(&path, &cache, true, args);
        assert_eq!(warm, cold, "`e {}` from the cache", args.join(" "));
        assert_eq!(
            whole,
            cold,
            "`e {}` with every module built",
            args.join(" ")
        );
        assert!(
            cold.contains("--- stderr\nwarning: ")
                && cold.contains("module `m5` version `v1` is not a semver version"),
            "the load's warning, from the cache too: {cold}"
        );
    }
    assert_eq!(
        std::fs::read_dir(cache.join("repositories"))
            .unwrap()
            .count(),
        1,
        "the repository is cached"
    );
    let report = e_cached(&path, &cache, false, &["search", "--for", "m10"]);
    assert!(
        report.contains("satisfied by: m") && report.contains("close, but not:"),
        "{report}"
    );
}
