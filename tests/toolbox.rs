//! The commands and conventions people reach for on day one, through the binary: read-only
//! commands that leave the disk alone, a lock that says whom it waits for, `--no-color` and
//! `NO_COLOR`, `-o` as the output format everywhere, the graph checked by the real tools
//! (Graphviz's `dot`, Mermaid's own parser), `e validate`, `e new` and shell completion.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{root, stderr, stdout, text};

/// `e ARGS` in `cwd`, with nothing of the caller's E_ variables.
fn e(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("E_REPOSITORY")
        .env_remove("E_SHARED")
        .env_remove("E_SECRETS")
        .env_remove("E_PROGRESS")
        .env_remove("NO_COLOR");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the e binary runs")
}

/// The project's repository, as an argument.
fn repository() -> String {
    root().join("repository.yaml").display().to_string()
}

/// Asserts the exit code of a run, showing everything it said when it differs.
fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}:\n{}", text(out));
}

/// Pipes `input` through a program and returns its output.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("`{program}` runs: {err}"));
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input)
        .expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn read_only_commands_never_create_the_shared_directory() {
    let dir = tempfile::tempdir().unwrap();
    let repository = repository();
    for args in [
        vec!["status"],
        vec!["status", "-o", "json"],
        vec!["state"],
        vec!["state", "-o", "yaml"],
        vec!["history"],
        vec!["history", "-o", "json"],
        vec!["list"],
        vec!["graph"],
        vec!["validate"],
    ] {
        let mut full = vec!["--repository", repository.as_str()];
        full.extend(&args);
        let out = e(dir.path(), &full, &[]);
        assert_code(&out, 0, &args.join(" "));
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "e {} left {left:?}", args.join(" "));
    }
    let out = e(
        dir.path(),
        &["--repository", &repository, "history", "-o", "json"],
        &[],
    );
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn waiting_for_the_lock_says_for_whom_then_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    fs::create_dir_all(shared.join(".e")).unwrap();
    let lock = shared.join(".e/lock");
    fs::write(
        &lock,
        r#"{"pid": 4242, "command": "e apply bmk", "since": {"secs_since_epoch": 1767225600, "nanos_since_epoch": 0}}"#,
    )
    .unwrap();
    // Another process holds the lock (flock(2), as e takes it) for two seconds.
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .expect("flock runs (util-linux)");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out = e(
        dir.path(),
        &[
            "--repository",
            &repository(),
            "--shared",
            shared.to_str().unwrap(),
            "recover",
            "--lock-timeout",
            "30s",
        ],
        &[],
    );
    let _ = holder.wait();
    assert_code(&out, 0, "e recover --lock-timeout 30s");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{}",
        text(&out)
    );
    let said = stderr(&out);
    assert!(
        said.contains(&format!(
            "waiting up to 30s for the lock of `{}`, held by e (pid 4242) running `e apply bmk` since 2026-01-01T00:00:00Z",
            shared.canonicalize().unwrap().display()
        )),
        "{said}"
    );
    assert!(said.contains("got the lock of"), "{said}");

    // Without a timeout it says who holds it and stops at once.
    fs::write(
        &lock,
        r#"{"pid": 4343, "command": "e destroy azi", "since": {"secs_since_epoch": 1767225600, "nanos_since_epoch": 0}}"#,
    )
    .unwrap();
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .expect("flock runs");
    std::thread::sleep(Duration::from_millis(300));
    let out = e(
        dir.path(),
        &["--shared", shared.to_str().unwrap(), "recover"],
        &[],
    );
    let _ = holder.wait();
    assert_code(&out, 1, "e recover");
    assert!(
        stderr(&out).contains("is locked by e (pid 4343) running `e destroy azi`"),
        "{}",
        text(&out)
    );
}

#[test]
fn no_color_is_accepted_everywhere_and_turns_color_off() {
    let dir = tempfile::tempdir().unwrap();
    let repository = repository();
    for args in [
        vec!["--no-color", "list"],
        vec!["list", "--no-color"],
        vec!["info", "bmk", "--no-color"],
        vec!["graph", "--format", "dot", "--no-color"],
        vec!["version", "--no-color", "-o", "json"],
    ] {
        let mut full = vec!["--repository", repository.as_str()];
        full.extend(&args);
        let out = e(dir.path(), &full, &[]);
        assert!(
            out.status.code() == Some(0) || args.contains(&"version"),
            "{}",
            text(&out)
        );
        assert!(
            !stderr(&out).contains("unexpected argument"),
            "{}",
            text(&out)
        );
    }
    // clap colors its errors when told to (CLICOLOR_FORCE); --no-color and NO_COLOR win.
    let colored = e(dir.path(), &["lsit"], &[("CLICOLOR_FORCE", "1")]);
    assert!(stderr(&colored).contains('\x1b'), "{}", text(&colored));
    for (args, env) in [
        (vec!["--no-color", "lsit"], vec![("CLICOLOR_FORCE", "1")]),
        (
            vec!["lsit"],
            vec![("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
        ),
    ] {
        let plain = e(dir.path(), &args, &env);
        // A usage error is 1, as every error (2 means changes: see src/exit.rs).
        assert_code(&plain, 1, "a typo");
        assert!(!stderr(&plain).contains('\x1b'), "{}", text(&plain));
        assert!(
            stderr(&plain).contains("unrecognized subcommand 'lsit'"),
            "{}",
            text(&plain)
        );
    }
}

#[test]
fn export_takes_o_for_the_format_and_names_the_old_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let out = e(
        dir.path(),
        &[
            "--repository",
            &repository(),
            "export",
            "bmk",
            "-o",
            "bmk.tar",
        ],
        &[],
    );
    assert_code(&out, 1, "e export -o bmk.tar");
    assert!(
        stderr(&out).contains(
            "`-o` is the output format (table, json, yaml); the archive is written with `--out bmk.tar`"
        ),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("bmk.tar").exists());
    assert!(!dir.path().join("json").exists());
}

/// A repository whose requirement nothing satisfies, with quotes, a backslash and a comma in
/// the selector, for the graph's escaping.
fn awkward_repository(dir: &Path) -> PathBuf {
    let path = dir.join("awkward.yaml");
    fs::write(
        &path,
        r#"version: v1
kind: Repository
components:
- name: app
  type: docker
  versions:
  - version: 0.1.0
    latest: true
    image: e-tests/app:0.1.0
    labels: {kind: application, name: "The \"App\""}
    requires:
      strong:
      - - {key: kind, operator: in, values: [database, store]}
        - {key: name, operator: eq, values: ['Big \ "Quoted" DB']}
      weak:
      - - {key: kind, operator: eq, values: [monitoring]}
    commands: []
- name: mon
  type: docker
  versions:
  - version: 0.1.0
    latest: true
    image: e-tests/mon:0.1.0
    labels: {kind: monitoring}
    influences:
    - - {key: kind, operator: eq, values: [application]}
    commands: []
"#,
    )
    .unwrap();
    path
}

#[test]
fn the_dot_graph_is_read_by_graphviz_with_its_line_breaks() {
    assert!(
        support::engines::available("dot", "graphviz"),
        "tests/engine.sh installs graphviz"
    );
    let dir = tempfile::tempdir().unwrap();
    for repository in [PathBuf::from(repository()), awkward_repository(dir.path())] {
        let out = e(
            dir.path(),
            &[
                "--repository",
                repository.to_str().unwrap(),
                "graph",
                "--format",
                "dot",
            ],
            &[],
        );
        assert_code(&out, 0, "e graph --format dot");
        let svg = pipe("dot", &["-Tsvg"], &out.stdout);
        assert!(
            svg.status.success(),
            "dot refused:\n{}\n{}",
            String::from_utf8_lossy(&svg.stderr),
            stdout(&out)
        );
        let svg = String::from_utf8_lossy(&svg.stdout);
        // A line break is two <text> lines; a literal `\n` would be one with a backslash.
        assert!(svg.contains(">nothing satisfies</text>"), "{svg}");
        assert!(!svg.contains("\\n"), "{svg}");
    }
    let awkward = awkward_repository(dir.path());
    let out = e(
        dir.path(),
        &[
            "--repository",
            awkward.to_str().unwrap(),
            "graph",
            "--format",
            "dot",
        ],
        &[],
    );
    let svg = pipe("dot", &["-Tsvg"], &out.stdout);
    let svg = String::from_utf8_lossy(&svg.stdout);
    // The selector's own quotes and backslash come through as text.
    assert!(svg.contains("Big \\\\ \\&quot;Quoted\\&quot; DB"), "{svg}");
}

#[test]
fn the_mermaid_graph_is_read_by_mermaids_own_parser() {
    let modules =
        std::env::var("E_TEST_MERMAID").unwrap_or_else(|_| "/var/cache/e-tests/mermaid".to_owned());
    assert!(
        Path::new(&modules).join("node_modules/mermaid").is_dir(),
        "Mermaid's parser is not in `{modules}`: run tests/engine.sh, which installs it from npm"
    );
    let script = root().join("tests/support/mermaid-parse.mjs");
    let dir = tempfile::tempdir().unwrap();
    for repository in [PathBuf::from(repository()), awkward_repository(dir.path())] {
        let out = e(
            dir.path(),
            &[
                "--repository",
                repository.to_str().unwrap(),
                "graph",
                "--format",
                "mermaid",
            ],
            &[],
        );
        assert_code(&out, 0, "e graph --format mermaid");
        let parsed = pipe("node", &[script.to_str().unwrap(), &modules], &out.stdout);
        assert!(
            parsed.status.success(),
            "Mermaid refused:\n{}\n{}",
            String::from_utf8_lossy(&parsed.stderr),
            stdout(&out)
        );
        assert_eq!(String::from_utf8_lossy(&parsed.stdout), "flowchart-v2\n");
    }
    // The parser does refuse what is not Mermaid: the check can fail.
    let refused = pipe(
        "node",
        &[script.to_str().unwrap(), &modules],
        b"flowchart LR\n  a -->|x|\n",
    );
    assert!(!refused.status.success());
}

/// A module version in a repository file, with the labels and strong requirement given.
fn version_yaml(name: &str, kind: &str, requires: Option<&str>) -> String {
    let requires = requires.map_or(String::new(), |kind| {
        format!(
            "    requires:\n      strong:\n      - - {{key: kind, operator: eq, values: [{kind}]}}\n"
        )
    });
    format!(
        "- name: {name}\n  type: docker\n  versions:\n  - version: 0.1.0\n    latest: true\n    image: e-tests/{name}:0.1.0\n    labels: {{kind: {kind}}}\n{requires}    commands: []\n"
    )
}

#[test]
fn validate_checks_repository_and_state_without_an_engine() {
    let dir = tempfile::tempdir().unwrap();
    // No engine answers there: validate must not need one.
    let no_engine = [("DOCKER_HOST", "tcp://127.0.0.1:1")];
    let out = e(
        dir.path(),
        &["--repository", &repository(), "validate"],
        &no_engine,
    );
    assert_code(&out, 0, "e validate");
    assert_eq!(
        stdout(&out),
        format!(
            "valid: the repository `{}` (7 module(s), 7 version(s))\n",
            repository()
        )
    );

    let broken = root().join("tests/fixtures/unknown-field.yaml");
    let out = e(
        dir.path(),
        &[
            "--repository",
            broken.to_str().unwrap(),
            "validate",
            "-o",
            "json",
        ],
        &no_engine,
    );
    assert_code(&out, 1, "e validate on a broken repository");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["error_count"], 1, "{report}");
    assert!(
        report["diagnostics"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:", broken.display())),
        "{report}"
    );

    // A cycle (an error), a requirement nothing satisfies (a warning), a damaged state (an
    // error) and an installed version the repository lacks (a warning).
    let repository = dir.path().join("repository.yaml");
    fs::write(
        &repository,
        format!(
            "version: v1\nkind: Repository\ncomponents:\n{}{}{}",
            version_yaml("a", "ka", Some("kb")),
            version_yaml("b", "kb", Some("ka")),
            version_yaml("c", "kc", Some("nothing-is-this")),
        ),
    )
    .unwrap();
    let shared = dir.path().join("shared");
    fs::create_dir_all(shared.join(".e")).unwrap();
    fs::write(shared.join("state.yml"), "a: [unclosed\n").unwrap();
    fs::write(
        shared.join(".e/installed.json"),
        r#"{"gone": {"module": "gone", "version": "9.9.9", "image": "x", "image_id": "sha256:00", "applied": {"secs_since_epoch": 0, "nanos_since_epoch": 0}, "command": "e apply gone"}}"#,
    )
    .unwrap();
    let out = e(
        dir.path(),
        &[
            "--repository",
            repository.to_str().unwrap(),
            "validate",
            "-o",
            "json",
        ],
        &no_engine,
    );
    assert_code(&out, 1, "e validate on a repository with a cycle");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(String, String)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["severity"].as_str().unwrap().to_owned(),
                d["summary"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let has = |severity: &str, needle: &str| {
        found
            .iter()
            .any(|(s, summary)| s == severity && summary.contains(needle))
    };
    assert!(
        has("error", "strong requirements form a cycle"),
        "{found:?}"
    );
    assert!(
        has(
            "warning",
            "`c@0.1.0` cannot be applied without `--skip-requirements`"
        ),
        "{found:?}"
    );
    assert!(has("error", "state.yml"), "{found:?}");
    assert!(
        has("warning", "module `gone@9.9.9` is installed"),
        "{found:?}"
    );
    assert_eq!(report["error_count"], 2, "{report}");
    assert_eq!(report["warning_count"], 2, "{report}");
    // The table format says the same on stderr, and nothing was written.
    let out = e(
        dir.path(),
        &["--repository", repository.to_str().unwrap(), "validate"],
        &no_engine,
    );
    assert_code(&out, 1, "e validate");
    assert!(
        stderr(&out).contains("invalid: 2 error(s), 2 warning(s)"),
        "{}",
        text(&out)
    );
    assert!(!shared.join(".e/id").exists());
}

/// Removes what a test made in the local engine for a module when dropped: its image and the
/// volumes of its mounts (`e check` leaves those of its throwaway shared directory).
struct ModuleLeftovers {
    module: String,
    image: String,
}

impl Drop for ModuleLeftovers {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            Command::new("docker")
                .env_remove("DOCKER_HOST")
                .env_remove("DOCKER_CONTEXT")
                .args(args)
                .output()
        };
        let label = format!("label=e.module={}", self.module);
        if let Ok(out) = docker(&["volume", "ls", "-q", "--filter", &label]) {
            for volume in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = docker(&["volume", "rm", volume]);
            }
        }
        let _ = docker(&["rmi", &self.image]);
    }
}

/// `e new NAME [--template TEMPLATE]` in a fresh folder, the entry pasted into a repository,
/// then (for Rust) the program built, `e build` and `e check`, which must pass.
fn new_module_passes_check(name: &str, template: &str) {
    let dir = tempfile::tempdir().unwrap();
    let _leftovers = ModuleLeftovers {
        module: name.to_owned(),
        image: format!("e-modules/{name}:0.1.0"),
    };
    let out = e(dir.path(), &["new", name, "--template", template], &[]);
    assert_code(&out, 0, "e new");
    assert!(
        stdout(&out).contains(&format!("e check {name}")),
        "{}",
        text(&out)
    );
    let entry = fs::read_to_string(dir.path().join(name).join("repository-entry.yaml")).unwrap();
    fs::write(
        dir.path().join("repository.yaml"),
        format!("version: v1\nkind: Repository\ncomponents:\n{entry}"),
    )
    .unwrap();
    if template == "rust" {
        let built = Command::new(dir.path().join(name).join("build.sh"))
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .output()
            .expect("build.sh runs");
        assert!(built.status.success(), "build.sh:\n{}", text(&built));
    }
    let out = e(dir.path(), &["build", name], &[]);
    assert_code(&out, 0, "e build");
    let out = e(dir.path(), &["check", name], &[]);
    assert_code(&out, 0, "e check");
    assert!(
        stderr(&out).contains(&format!("e: `{name}@0.1.0` follows the module contract")),
        "{}",
        text(&out)
    );
    // The whole life of the module works too, audit finding a hand change.
    for (args, code) in [
        (vec!["init", name], 0),
        (vec!["plan", name, "--detailed-exitcode"], 2),
        (vec!["apply", name, "--auto-approve"], 0),
        (vec!["plan", name, "--detailed-exitcode"], 0),
        (vec!["audit", name], 0),
    ] {
        let out = e(dir.path(), &args, &[]);
        assert_code(&out, code, &args.join(" "));
    }
    let state = dir.path().join("shared/state.yml");
    let text_of_state = fs::read_to_string(&state).unwrap();
    assert_eq!(
        text_of_state,
        format!("{name}:\n  status: applied\n  replicas: 1\n")
    );
    fs::write(&state, text_of_state.replace("replicas: 1", "replicas: 4")).unwrap();
    let out = e(dir.path(), &["audit", name], &[]);
    assert_code(&out, 2, "audit after a hand change");
    assert!(
        stdout(&out).contains("replicas: 1 -> 4 (changed by hand)"),
        "{}",
        text(&out)
    );
    let out = e(dir.path(), &["destroy", name, "--auto-approve"], &[]);
    assert_code(&out, 0, "destroy");
    // Refused into a folder that has files.
    let out = e(dir.path(), &["new", name], &[]);
    assert_code(&out, 1, "e new into a folder with files");
}

#[test]
fn a_new_shell_module_builds_and_passes_check_as_it_is() {
    new_module_passes_check("scaffold-shell", "shell");
}

#[test]
fn a_new_rust_module_builds_and_passes_check_as_it_is() {
    new_module_passes_check("scaffold-rust", "rust");
}

/// What bash completes for `line` (the cursor at its end), with e's completion script loaded
/// the way `e completions --help` says, and the e under test first on PATH.
fn bash_completes(cwd: &Path, line: &str) -> Vec<String> {
    let bin = Path::new(env!("CARGO_BIN_EXE_e")).parent().unwrap();
    let script = r#"
source <(e completions bash)
COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"
if [[ "$COMP_LINE" == *" " ]]; then COMP_WORDS+=(""); fi
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_TYPE=9
_clap_complete_e e "${COMP_WORDS[$COMP_CWORD]}" "${COMP_WORDS[$COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("bash")
        .arg(line)
        .current_dir(cwd)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("E_REPOSITORY")
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", text(&out));
    stdout(&out)
        .lines()
        .filter(|line| !line.starts_with('-'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_shell_completes_modules_versions_and_a_modules_commands() {
    let out = e(root(), &["completions", "--help"], &[]);
    assert_code(&out, 0, "e completions --help");
    for line in [
        "echo 'source <(e completions bash)' >> ~/.bashrc",
        "echo 'source <(e completions zsh)' >> ~/.zshrc",
        "e completions fish | source",
    ] {
        assert!(stdout(&out).contains(line), "{}", text(&out));
    }
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = e(root(), &["completions", shell], &[]);
        assert_code(&out, 0, shell);
        assert!(stdout(&out).contains("COMPLETE"), "{shell}: {}", text(&out));
    }

    let modules = ["azi", "bmk", "bmm", "k8s", "rook", "nfs", "pg"];
    assert_eq!(bash_completes(root(), "e run "), modules);
    assert_eq!(bash_completes(root(), "e apply b"), ["bmk", "bmm"]);
    assert_eq!(bash_completes(root(), "e info azi@"), ["azi@0.1.0"]);
    assert_eq!(
        bash_completes(root(), "e run bmk "),
        ["metadata", "init", "plan", "apply", "audit", "destroy"]
    );
    assert_eq!(
        bash_completes(root(), "e run --timeout 5m bmk pl"),
        ["plan"]
    );
    // The repository named on the line is the one completed from.
    let compat = root().join("tests/fixtures/compat-e-cli-v1.yaml");
    let line = format!("e --repository {} info ", compat.display());
    let from_compat = bash_completes(root(), &line);
    assert!(
        !from_compat.is_empty() && from_compat != modules,
        "{from_compat:?}"
    );
    // Without a repository, nothing is offered, and nothing is printed into the prompt.
    let empty = tempfile::tempdir().unwrap();
    assert!(bash_completes(empty.path(), "e run ").is_empty());
}
