//! End-to-end tests of stacks run side by side on the real engine: independent modules overlap,
//! their commits to one shared section never lose an update (a conflict runs the module again),
//! a failure lets the running modules finish and starts nothing new, `--parallelism 1`
//! runs one module after the other, and the runs of one shared directory join one network
//! holder, confined and loopback-only, unless `E_NETWORK_HOLDER=off`.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::{e_in_with, misbehave_image, root, stderr, stdout, text};

fn repository() -> PathBuf {
    root().join("tests/fixtures/stack-repository.yaml")
}

struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        misbehave_image();
        Scene {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn expect(&self, code: i32, args: &[&str]) -> Output {
        self.expect_with(code, args, &[])
    }

    fn expect_with(&self, code: i32, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let shared = self.dir.path().join("shared");
        let out = e_in_with(self.dir.path(), &repository(), &shared, args, envs);
        support::exited(code, args, out)
    }

    fn state(&self) -> serde_yaml::Mapping {
        let text = std::fs::read_to_string(self.dir.path().join("shared/state.yml")).unwrap();
        serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"))
    }

    /// The shared directory's id, which its containers carry.
    fn id(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("shared/.e/id"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The running network holders of this shared directory.
    fn holders(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-q", "--filter"])
            .arg(format!("label=e.holder={}", self.id()))
            .output()
            .unwrap();
        stdout(&out).lines().map(str::to_owned).collect()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if self.dir.path().join("shared/.e/id").exists() {
            for holder in self.holders() {
                let _ = Command::new("docker").args(["rm", "-f", &holder]).output();
            }
        }
    }
}

const MIDDLEWARE: [&str; 4] = ["par-k8s", "par-kafka", "par-logging", "par-monitoring"];

#[test]
fn independent_modules_run_side_by_side_and_no_update_to_a_shared_section_is_lost() {
    let scene = Scene::new();
    let out = scene.expect(
        0,
        &["apply", "par-top", "--with-requirements", "--auto-approve"],
    );
    let said = stderr(&out);
    let state = scene.state();
    for module in MIDDLEWARE.iter().chain(&["par-base", "par-top"]) {
        assert!(
            state.contains_key(*module),
            "`{module}` has its section: {state:?}\n{said}"
        );
    }
    // Every middleware module marked the base: four writes to one section, none lost.
    let mut marked: Vec<String> = state["par-base"]["marked_by"]
        .as_sequence()
        .unwrap_or_else(|| panic!("a list: {state:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    marked.sort();
    assert_eq!(marked, MIDDLEWARE, "{said}");
    // They overlapped (each apply sleeps 1 s), so their commits met and were run again.
    assert!(
        said.contains("running it again on the new content, alone"),
        "{said}"
    );
    assert!(said.contains("state.yml: par-base"), "{said}");
    // Output of modules side by side is prefixed with their names.
    assert!(
        stdout(&out).contains("[par-kafka] + par-kafka: status applied\n"),
        "{}",
        text(&out)
    );
    let history = stdout(&scene.expect(0, &["history", "-o", "json"]));
    assert!(
        history.contains("not committed: another run changed"),
        "{history}"
    );
    let status = stdout(&scene.expect(0, &["status", "-o", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["serial"], 6, "one commit per apply: {status}");

    // `e audit --all` audits them side by side; every one that knows sees a hand edit.
    let text_of = std::fs::read_to_string(scene.dir.path().join("shared/state.yml")).unwrap();
    std::fs::write(
        scene.dir.path().join("shared/state.yml"),
        format!("{text_of}hand-edit: true\n"),
    )
    .unwrap();
    let out = scene.expect(2, &["audit", "--all"]);
    assert!(
        stdout(&out).contains("[par-kafka] drift: a hand-edit I do not know\n"),
        "{}",
        text(&out)
    );
    let table = stdout(&out);
    for module in MIDDLEWARE {
        assert!(
            table
                .lines()
                .any(|l| l.contains(module) && l.contains("drift")),
            "{table}"
        );
    }
}

#[test]
fn a_failure_lets_the_modules_beside_it_finish_and_starts_nothing_new() {
    let scene = Scene::new();
    let out = scene.expect(
        1,
        &[
            "apply",
            "par-doomed",
            "--with-requirements",
            "--auto-approve",
        ],
    );
    let said = stderr(&out);
    assert!(said.contains("failed:    par-broken@1.0.0"), "{said}");
    assert!(said.contains("not run:   par-doomed@1.0.0"), "{said}");
    // par-kafka ran beside par-broken and was let finish.
    assert!(
        said.contains("installed: par-base@1.0.0, par-kafka@1.0.0"),
        "{said}"
    );
    let state = scene.state();
    assert!(state.contains_key("par-kafka") && !state.contains_key("par-doomed"));
    assert!(!state.contains_key("par-broken"), "{state:?}");
}

#[test]
fn parallelism_one_runs_one_module_after_the_other_without_conflicts() {
    let scene = Scene::new();
    let out = scene.expect(
        0,
        &[
            "apply",
            "par-top",
            "--with-requirements",
            "--auto-approve",
            "--parallelism",
            "1",
        ],
    );
    let said = stderr(&out);
    assert!(!said.contains("running it again"), "{said}");
    assert!(
        !stdout(&out).contains("[par-kafka]"),
        "no prefix when nothing overlaps: {}",
        text(&out)
    );
    let marked = scene.state()["par-base"]["marked_by"]
        .as_sequence()
        .unwrap()
        .len();
    assert_eq!(marked, 4, "{said}");
    let out = scene.expect(
        1,
        &[
            "apply",
            "par-top",
            "--with-requirements",
            "--parallelism",
            "0",
        ],
    );
    assert!(stderr(&out).contains("--parallelism"), "{}", text(&out));
}

#[test]
fn the_runs_of_a_shared_directory_join_one_confined_loopback_only_holder() {
    let scene = Scene::new();
    let out = scene.expect(0, &["init", "par-net"]);
    assert_eq!(stdout(&out), "lo\n", "loopback only: {}", text(&out));
    scene.expect(0, &["init", "par-net"]);
    let holders = scene.holders();
    assert_eq!(
        holders.len(),
        1,
        "one holder for both commands: {holders:?}"
    );
    let inspect = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{.HostConfig.NetworkMode}} {{.HostConfig.CapDrop}} {{.HostConfig.ReadonlyRootfs}} \
             {{.HostConfig.PidsLimit}} {{len .Mounts}} {{.Config.User}} {{.HostConfig.AutoRemove}} \
             {{index .Config.Labels \"e.managed-by\"}}",
            &holders[0],
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&inspect).trim(),
        "none [ALL] true 1 0 65534:65534 true e",
        "{}",
        text(&inspect)
    );

    // Turned off, a new shared directory gets no holder.
    let other = Scene::new();
    let out = other.expect_with(0, &["init", "par-net"], &[("E_NETWORK_HOLDER", "off")]);
    assert_eq!(stdout(&out), "lo\n", "{}", text(&out));
    assert_eq!(other.holders(), Vec::<String>::new());
}

/// When a run of `module`'s `destroy` began and ended, from the history.
fn destroy_span(
    runs: &[serde_json::Value],
    module: &str,
) -> (std::time::SystemTime, std::time::SystemTime) {
    let run = runs
        .iter()
        .find(|r| r["command"] == "destroy" && r["module"] == module)
        .unwrap_or_else(|| panic!("a destroy of `{module}` in {runs:?}"));
    let started = humantime::parse_rfc3339_weak(run["started"].as_str().unwrap()).unwrap();
    let took = std::time::Duration::from_millis(run["duration_ms"].as_u64().unwrap());
    (started, started + took)
}

#[test]
fn several_destroys_go_users_first_side_by_side_and_not_while_others_use_them() {
    let scene = Scene::new();
    scene.expect(
        0,
        &["apply", "par-top", "--with-requirements", "--auto-approve"],
    );
    let before = std::fs::read_to_string(scene.dir.path().join("shared/state.yml")).unwrap();
    // The middleware modules use par-base and are not going with it.
    let out = scene.expect(1, &["destroy", "par-base", "par-top", "--auto-approve"]);
    let said = stderr(&out);
    assert!(
        said.contains("cannot destroy `par-base@1.0.0`") && said.contains("par-kafka@1.0.0"),
        "{said}"
    );
    assert!(!said.contains("par-top@1.0.0 is no longer"), "{said}");
    let after = std::fs::read_to_string(scene.dir.path().join("shared/state.yml")).unwrap();
    assert_eq!(after, before, "a refused destroy changes nothing");

    let out = scene.expect(
        0,
        &[
            "destroy",
            "par-base",
            "par-kafka",
            "par-k8s",
            "par-logging",
            "par-monitoring",
            "par-top",
            "--auto-approve",
        ],
    );
    let said = stderr(&out);
    assert!(
        said.contains("e: destroyed par-top@1.0.0, par-kafka@1.0.0, par-k8s@1.0.0, par-logging@1.0.0, par-monitoring@1.0.0, par-base@1.0.0"),
        "{said}"
    );
    assert!(
        said.contains(
            "after:        par-k8s, par-kafka, par-logging, par-monitoring (destroyed first)"
        ),
        "{said}"
    );
    let state = std::fs::read_to_string(scene.dir.path().join("shared/state.yml")).unwrap();
    assert!(
        !state.contains("par-"),
        "every section is gone: {state}\n{said}"
    );
    let status = stdout(&scene.expect(0, &["status", "-o", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["modules"], serde_json::json!([]), "{status}");

    let history = stdout(&scene.expect(0, &["history", "-o", "json"]));
    let runs: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    let (_, top_ended) = destroy_span(&runs, "par-top");
    let (base_started, _) = destroy_span(&runs, "par-base");
    let spans: Vec<_> = MIDDLEWARE.iter().map(|m| destroy_span(&runs, m)).collect();
    for (module, (started, ended)) in MIDDLEWARE.iter().zip(&spans) {
        assert!(
            *started >= top_ended,
            "`{module}` went after its user: {history}"
        );
        assert!(
            *ended <= base_started,
            "`{module}` went before what it uses: {history}"
        );
    }
    // Each takes a second; side by side, they were all running at one moment.
    let last_start = spans.iter().map(|s| s.0).max().unwrap();
    let first_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(last_start < first_end, "the four overlapped: {history}");
}
