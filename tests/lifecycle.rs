//! End-to-end tests of the lifecycle on the real engine: plan, then confirmation, then apply
//! (on a terminal, from a pipe, with `--auto-approve`); saved plans and what makes them stale;
//! bindings that keep a used module from being destroyed; image pins; the exit codes; the JSON
//! document of every run command; a broken state refused before any module runs.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use support::{e_in, misbehave_image, pty, root, stderr, stdout, text};

fn repository() -> PathBuf {
    root().join("tests/fixtures/lifecycle-repository.yaml")
}

/// A working directory with its own shared directory.
struct Scene {
    dir: tempfile::TempDir,
    repository: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        misbehave_image();
        Scene {
            dir: tempfile::tempdir().unwrap(),
            repository: repository(),
        }
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn e(&self, args: &[&str]) -> Output {
        e_in(self.dir.path(), &self.repository, &self.shared(), args)
    }

    fn expect(&self, code: i32, args: &[&str]) -> Output {
        support::exited(code, args, self.e(args))
    }

    /// `e ARGS` as a command, to run on a terminal or with a pipe.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("E_REPOSITORY", &self.repository)
            .env("E_SHARED", self.shared())
            .env_remove("E_SECRETS");
        command
    }

    /// Runs `e ARGS` with `input` on its standard input.
    fn piped(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn state(&self) -> String {
        fs::read_to_string(self.shared().join("state.yml")).unwrap_or_default()
    }

    /// `method module` of every recorded run, in order.
    fn history(&self) -> Vec<String> {
        let out = self.expect(0, &["history", "-o", "json"]);
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        runs.iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["command"].as_str().unwrap(),
                    r["module"].as_str().unwrap()
                )
            })
            .collect()
    }

    fn json(&self, code: i32, args: &[&str]) -> serde_json::Value {
        let out = self.expect(code, args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|err| panic!("{err}:\n{}", text(&out)))
    }
}

const PROMPT: &str = "Enter a value:";

#[test]
fn apply_plans_first_and_asks_on_a_terminal_and_only_yes_applies() {
    let scene = Scene::new();
    for answer in ["no", ""] {
        let screen = pty::run(scene.command(&["apply", "web"]), PROMPT, answer);
        assert_eq!(screen.code, Some(1), "{}", screen.text);
        assert!(
            screen.text.contains("+ web: status applied"),
            "the plan is shown: {}",
            screen.text
        );
        assert!(
            screen
                .text
                .contains("Do you want to apply these changes to `web@1.0.0`?"),
            "{}",
            screen.text
        );
        assert!(
            screen.text.contains("apply cancelled; nothing was changed"),
            "{}",
            screen.text
        );
        assert!(!scene.state().contains("web:"), "{}", scene.state());
    }
    let screen = pty::run(scene.command(&["apply", "web"]), PROMPT, "yes");
    assert_eq!(screen.code, Some(0), "{}", screen.text);
    assert!(
        scene.state().contains("web:\n  status: applied"),
        "{}",
        scene.state()
    );

    // Its plan has no changes now: e says so and neither asks nor applies.
    let screen = pty::run(scene.command(&["apply", "web"]), PROMPT, "yes");
    assert_eq!(screen.code, Some(0), "{}", screen.text);
    assert!(screen.text.contains("no changes"), "{}", screen.text);
    assert!(!screen.text.contains(PROMPT), "{}", screen.text);
    assert_eq!(
        scene.history(),
        ["plan web", "plan web", "plan web", "apply web", "plan web"]
    );
}

#[test]
fn without_a_terminal_the_answer_comes_from_standard_input_or_the_flag() {
    let scene = Scene::new();
    // No terminal, nothing to read: refused, saying which flag to pass.
    let out = scene.command(&["apply", "web"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("pass `--auto-approve`"),
        "{}",
        text(&out)
    );
    assert!(!scene.state().contains("web:"));

    let out = scene.piped(&["apply", "web"], "no\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!scene.state().contains("web:"));
    let out = scene.piped(&["apply", "web"], "yes\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(scene.state().contains("web:"), "{}", text(&out));

    // destroy asks too, shows what it destroys, and takes --auto-approve.
    let out = scene.piped(&["destroy", "web"], "no\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("e will destroy `web@1.0.0`"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("used by:      nothing"),
        "{}",
        text(&out)
    );
    assert!(scene.state().contains("web:"));
    scene.expect(0, &["destroy", "--auto-approve", "web"]);
    assert!(!scene.state().contains("web:"), "{}", scene.state());
}

#[test]
fn upgrade_shows_the_audit_and_the_new_plan_and_asks() {
    let scene = Scene::new();
    scene.expect(0, &["apply", "--auto-approve", "app@1.0.0"]);
    let before = scene.state();
    let out = scene.piped(&["upgrade", "app", "--to", "1.1.0"], "no\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = stderr(&out);
    assert!(
        said.contains("the audit of `app@1.1.0` accepts the current state"),
        "{said}"
    );
    assert!(
        said.contains("Do you want to upgrade `app` from 1.0.0 to 1.1.0?"),
        "{said}"
    );
    assert!(
        said.contains("upgrade cancelled; nothing was committed"),
        "{said}"
    );
    assert_eq!(scene.state(), before);
    let status = scene.json(0, &["status", "-o", "json"]);
    assert_eq!(status["modules"][0]["version"], "1.0.0", "{status}");
    scene.expect(0, &["upgrade", "--auto-approve", "app", "--to", "1.1.0"]);
    let status = scene.json(0, &["status", "-o", "json"]);
    assert_eq!(status["modules"][0]["version"], "1.1.0", "{status}");
}

#[test]
fn a_saved_plan_is_applied_as_made_and_refused_when_anything_it_was_made_from_changed() {
    let scene = Scene::new();
    scene.expect(0, &["init", "web"]);
    // Terraform's spelling works.
    let out = scene.expect(0, &["plan", "web", "-out", "web.plan"]);
    assert!(
        stderr(&out).contains("saved the plan to `web.plan`"),
        "{}",
        text(&out)
    );
    let shown = stdout(&scene.expect(0, &["show", "web.plan"]));
    assert!(
        shown.contains("web@1.0.0") && shown.contains("+ web: status applied"),
        "{shown}"
    );
    let saved = scene.json(0, &["show", "web.plan", "-o", "json"]);
    assert_eq!(saved["format"], "e-plan");
    assert_eq!(saved["changes"], true);

    // Applied without a question, though there is no terminal and no --auto-approve.
    let out = scene.command(&["apply", "web.plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(scene.state().contains("web:"));
    // It changed the state, so it is stale now.
    let out = scene.expect(1, &["apply", "web.plan"]);
    assert!(
        stderr(&out).contains("the shared state changed since it was made"),
        "{}",
        text(&out)
    );

    // The state changed by another module's apply.
    scene.expect(0, &["plan", "store-a", "--out", "a.plan"]);
    scene.expect(0, &["apply", "--auto-approve", "store-b"]);
    let out = scene.expect(1, &["apply", "a.plan"]);
    assert!(stderr(&out).contains("serial"), "{}", text(&out));
    assert!(!scene.state().contains("store-a:"));

    // The config changed (by hand: no commit, so only the config's digest tells).
    scene.expect(0, &["init", "store-a"]);
    scene.expect(0, &["plan", "store-a", "--out", "a.plan"]);
    fs::write(
        scene.shared().join("store-a-config.yml"),
        "version: by hand\n",
    )
    .unwrap();
    let out = scene.expect(1, &["apply", "a.plan"]);
    assert!(
        stderr(&out).contains("the config `store-a-config.yml` changed"),
        "{}",
        text(&out)
    );

    // The repository's definition of the version changed.
    scene.expect(0, &["init", "store-a"]);
    scene.expect(0, &["plan", "store-a", "--out", "a.plan"]);
    let edited = scene.path("edited.yaml");
    let definition = fs::read_to_string(repository()).unwrap();
    fs::write(
        &edited,
        definition.replace(
            "labels: {kind: storage}",
            "labels: {kind: storage, tier: gold}",
        ),
    )
    .unwrap();
    let out = e_in(
        scene.dir.path(),
        &edited,
        &scene.shared(),
        &["apply", "a.plan"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("definition of `store-a@1.0.0` changed"),
        "{}",
        text(&out)
    );
    // Nothing stale ever ran an apply of store-a.
    assert!(
        !scene.history().contains(&"apply store-a".to_owned()),
        "{:?}",
        scene.history()
    );
    scene.expect(0, &["apply", "a.plan"]);
    assert!(scene.state().contains("store-a:"));
}

#[test]
fn destroy_is_refused_by_a_binding_although_another_module_satisfies_the_label() {
    let scene = Scene::new();
    scene.expect(0, &["apply", "--auto-approve", "store-a"]);
    scene.expect(0, &["apply", "--auto-approve", "db"]);
    scene.expect(0, &["apply", "--auto-approve", "store-b"]);

    // The module is told which one it is bound to, first among those that satisfy it.
    let out = scene.expect(0, &["run", "db", "show-requirements"]);
    let file: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(file["strong"][0]["bound"]["module"], "store-a", "{file}");
    assert_eq!(
        file["strong"][0]["satisfied_by"][0]["module"], "store-a",
        "{file}"
    );
    assert_eq!(
        file["strong"][0]["satisfied_by"][1]["module"], "store-b",
        "{file}"
    );
    let status = scene.json(0, &["status", "-o", "json"]);
    let db = status["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == "db")
        .unwrap()
        .clone();
    assert_eq!(db["bindings"][0]["module"], "store-a", "{status}");
    let table = stdout(&scene.expect(0, &["status"]));
    assert!(table.contains("store-a@1.0.0"), "{table}");
    let graph = stdout(&scene.expect(0, &["graph", "--installed"]));
    assert!(
        graph.contains("db@1.0.0\n└── strong kind=storage -> store-a@1.0.0"),
        "{graph}"
    );
    let dot = stdout(&scene.expect(0, &["graph", "--installed", "--format", "dot"]));
    assert!(
        dot.contains("\"db@1.0.0\" -> \"store-a@1.0.0\" [style=solid, label=\"kind=storage\"]"),
        "{dot}"
    );

    let out = scene.expect(1, &["destroy", "--auto-approve", "store-a"]);
    assert!(
        stderr(&out).contains("db@1.0.0 (bound for `kind=storage`)"),
        "{}",
        text(&out)
    );
    assert!(scene.state().contains("store-a:"));
    // store-b satisfies the same label, but nobody is bound to it.
    scene.expect(0, &["destroy", "--auto-approve", "store-b"]);
    let out = scene.expect(0, &["destroy", "--auto-approve", "--force", "store-a"]);
    assert!(stderr(&out).contains("--force"), "{}", text(&out));
    let history = stdout(&scene.expect(0, &["history", "store-a", "-o", "json"]));
    assert!(history.contains("--force: used by db@1.0.0"), "{history}");
}

/// Builds `e-tests/lifecycle-pinned:1.0.0` from the misbehave image with a label that makes
/// it another image each round; returns its id and what e build said.
fn build_pinned(scene: &Scene, round: u32) -> (String, String) {
    let context = scene.path(&format!("pinned-{round}"));
    fs::create_dir_all(&context).unwrap();
    fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM e-tests/misbehave:0.1.0\nLABEL e-tests.round={round}-{}\n",
            std::process::id()
        ),
    )
    .unwrap();
    let built = scene.expect(
        0,
        &[
            "build",
            context.to_str().unwrap(),
            "--tag",
            "e-tests/lifecycle-pinned:1.0.0",
        ],
    );
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            "e-tests/lifecycle-pinned:1.0.0",
        ])
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        stderr(&built),
    )
}

/// Removes the images the pin test built, even when it fails.
struct PinnedImages(Vec<String>);

impl Drop for PinnedImages {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f"])
            .args(&self.0)
            .output();
    }
}

#[test]
fn an_installed_versions_image_is_pinned_and_a_retagged_image_is_refused() {
    let scene = Scene::new();
    let mut images = PinnedImages(Vec::new());
    let (first, _) = build_pinned(&scene, 1);
    images.0.push(first.clone());
    scene.expect(0, &["apply", "--auto-approve", "pinned"]);
    let installed = fs::read_to_string(scene.shared().join(".e/installed.json")).unwrap();
    assert!(installed.contains(&first), "{installed}");
    scene.expect(0, &["plan", "pinned", "--out", "p.plan"]);

    let (second, said) = build_pinned(&scene, 2);
    assert!(
        said.contains(
            "`pinned@1.0.0` is installed with the image `e-tests/lifecycle-pinned:1.0.0`"
        ),
        "{said}"
    );
    images.0.push(second.clone());
    assert_ne!(first, second);
    let out = scene.expect(0, &["plan", "pinned"]);
    assert!(
        stderr(&out).contains("another image than the one it was applied with"),
        "{}",
        text(&out)
    );
    let applies = |scene: &Scene| {
        scene
            .history()
            .iter()
            .filter(|r| *r == "apply pinned")
            .count()
    };
    let out = scene.expect(1, &["apply", "--auto-approve", "pinned"]);
    assert!(
        stderr(&out).contains("changed since it was applied"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("e upgrade pinned --to 1.0.0"),
        "{}",
        text(&out)
    );
    let out = scene.expect(1, &["apply", "p.plan"]);
    assert!(stderr(&out).contains("is another image"), "{}", text(&out));
    assert_eq!(applies(&scene), 1);

    // An upgrade to the same version audits with the new image, then moves the pin.
    let out = scene.expect(0, &["upgrade", "--auto-approve", "pinned", "--to", "1.0.0"]);
    assert!(stderr(&out).contains("upgrading to it"), "{}", text(&out));
    let installed = fs::read_to_string(scene.shared().join(".e/installed.json")).unwrap();
    assert!(installed.contains(&second), "{installed}");
    let out = scene.expect(0, &["plan", "pinned"]);
    assert!(!stderr(&out).contains("another image"), "{}", text(&out));
}

#[test]
fn exit_codes_keep_usage_errors_apart_from_changes() {
    let scene = Scene::new();
    scene.expect(0, &["plan", "web"]);
    scene.expect(2, &["plan", "web", "--detailed-exitcode"]);
    scene.expect(1, &["plan", "web", "--bogus"]);
    scene.expect(1, &["plan"]);
    scene.expect(1, &["plan", "web", "-o", "xml"]);
    let out = scene.expect(1, &["plan", "nothing-like-it", "--detailed-exitcode"]);
    assert!(stderr(&out).contains("nothing-like-it"), "{}", text(&out));
    scene.expect(0, &["apply", "--auto-approve", "web"]);
    scene.expect(0, &["plan", "web", "--detailed-exitcode"]);
    scene.expect(0, &["--help"]);
}

/// The JSON of a run document with what changes from run to run replaced.
fn normalized(mut value: serde_json::Value) -> String {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    match key.as_str() {
                        "run" | "started" | "duration_ms" | "lineage" => {
                            *item = serde_json::Value::String(format!("[{key}]"))
                        }
                        _ => walk(item),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    serde_json::to_string_pretty(&value).unwrap()
}

#[test]
fn every_run_command_writes_one_json_document_of_one_schema() {
    let scene = Scene::new();
    let plan = scene.json(0, &["plan", "web", "-o", "json"]);
    insta::assert_snapshot!("json_plan", normalized(plan));
    let apply = scene.json(0, &["apply", "web", "-o", "json", "--auto-approve"]);
    insta::assert_snapshot!("json_apply", normalized(apply.clone()));
    assert_eq!(apply["serial"], 1);

    for (code, args, command, result) in [
        (0, &["init", "web", "-o", "json"][..], "init", "ok"),
        (0, &["audit", "web", "-o", "json"], "audit", "ok"),
        (
            0,
            &["run", "web", "show-requirements", "-o", "json"],
            "run",
            "ok",
        ),
        (
            0,
            &[
                "upgrade",
                "web",
                "--to",
                "1.0.0",
                "-o",
                "json",
                "--auto-approve",
            ],
            "upgrade",
            "no-changes",
        ),
        (
            0,
            &["destroy", "web", "-o", "json", "--auto-approve"],
            "destroy",
            "destroyed",
        ),
    ] {
        let document = scene.json(code, args);
        assert_eq!(document["format_version"], 1, "{document}");
        assert_eq!(document["command"], command, "{document}");
        assert_eq!(document["result"], result, "{document}");
        assert_eq!(document["ok"], true, "{document}");
        for run in document["runs"].as_array().unwrap() {
            for key in [
                "run",
                "module",
                "version",
                "method",
                "started",
                "duration_ms",
                "exit_code",
                "outcome",
                "changed_keys",
                "stdout",
                "stderr",
            ] {
                assert!(run.get(key).is_some(), "{key} missing in {run}");
            }
            let started = run["started"].as_str().unwrap();
            assert!(
                started.ends_with('Z') && started.contains('T'),
                "RFC 3339: {started}"
            );
        }
    }
    // An error is a document too, and asking is impossible while writing one.
    let error = scene.json(1, &["apply", "web", "-o", "json"]);
    insta::assert_snapshot!("json_error", normalized(error));
    // Timestamps of e's records are RFC 3339 too.
    let installed = fs::read_to_string(scene.shared().join(".e/history")).unwrap_or_default();
    assert!(!installed.contains("secs_since_epoch"));
}

#[test]
fn the_serial_counts_changes_and_the_lineage_stays() {
    let scene = Scene::new();
    scene.expect(0, &["plan", "web"]);
    let first = scene.json(0, &["status", "-o", "json"]);
    assert_eq!(first["serial"], 0, "{first}");
    scene.expect(0, &["apply", "--auto-approve", "web"]);
    scene.expect(0, &["plan", "web"]);
    let second = scene.json(0, &["status", "-o", "json"]);
    assert_eq!(second["serial"], 1, "{second}");
    assert_eq!(second["lineage"], first["lineage"]);
    let out = scene.expect(0, &["state"]);
    assert!(stderr(&out).contains("serial 1"), "{}", text(&out));
}

#[test]
fn a_broken_state_is_refused_before_any_module_runs() {
    let scene = Scene::new();
    scene.expect(0, &["apply", "--auto-approve", "web"]);
    // The commit noted the state it checked, so the next run need not parse it again; the
    // hand edit below is what makes e parse (and refuse) it.
    let note = fs::read_to_string(scene.shared().join(".e/checked-state")).unwrap();
    assert!(note.starts_with("sha256:"), "{note}");
    let runs = scene.history().len();
    fs::write(
        scene.shared().join("state.yml"),
        "web:\n  status: [applied\n",
    )
    .unwrap();
    let out = scene.expect(1, &["plan", "web"]);
    let said = stderr(&out);
    assert!(said.contains("state.yml"), "{said}");
    assert!(said.contains("line") && said.contains("column"), "{said}");
    assert!(said.contains("no module was run"), "{said}");
    assert_eq!(scene.history().len(), runs);
}

#[test]
fn history_of_a_module_without_runs_says_so() {
    let scene = Scene::new();
    let out = scene.expect(0, &["history", "web"]);
    assert!(
        stderr(&out).contains("no runs of `web` recorded"),
        "{}",
        text(&out)
    );
    assert!(stderr(&out).contains("hint:"), "{}", text(&out));
}

#[test]
fn state_list_show_and_rm_repair_the_state_without_opening_the_yaml() {
    let scene = Scene::new();
    scene.expect(0, &["apply", "--auto-approve", "store-a"]);
    scene.expect(0, &["apply", "--auto-approve", "db"]);
    let listed = stdout(&scene.expect(0, &["state", "list"]));
    assert!(
        listed.contains("store-a") && listed.contains("db@1.0.0"),
        "{listed}"
    );
    let shown = stdout(&scene.expect(0, &["state", "show", "db"]));
    assert_eq!(shown, "db:\n  status: applied\n");
    let out = scene.expect(1, &["state", "show", "nothing"]);
    assert!(
        stderr(&out).contains("no section `nothing`"),
        "{}",
        text(&out)
    );

    // Bound to by db: refused.
    let out = scene.expect(1, &["state", "rm", "store-a", "--auto-approve"]);
    assert!(
        stderr(&out).contains("db@1.0.0 (bound for `kind=storage`)"),
        "{}",
        text(&out)
    );
    // Asks; only yes removes.
    let out = scene.piped(&["state", "rm", "db"], "no\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(scene.state().contains("db:"));
    let before = scene.state();
    scene.expect(0, &["state", "rm", "db", "--auto-approve"]);
    assert_eq!(
        scene.state(),
        before.replace("db:\n  status: applied\n", "")
    );
    let backup = fs::read_to_string(scene.shared().join("state.yml.backup")).unwrap();
    assert_eq!(backup, before);
    let installed = fs::read_to_string(scene.shared().join(".e/installed.json")).unwrap();
    assert!(!installed.contains("\"db\""), "{installed}");
    assert!(scene.history().contains(&"state rm db".to_owned()));
    // Nobody is bound to store-a now.
    scene.expect(0, &["state", "rm", "store-a", "--auto-approve"]);
    assert!(!scene.state().contains("store-a:"));
}
