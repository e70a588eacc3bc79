//! The design's seed walkthrough and its PostgreSQL -> persistence -> Kubernetes stack, run
//! against a PostgreSQL backend (`--backend`) with the real e binary and engine, and compared
//! with the same steps on a local shared directory: the same state, configs, requirements,
//! installed modules and history, byte for byte or field for field. The walkthrough's hand
//! edit is done as a team does it: `e state pull DIR`, an edit, `e state push DIR`. A local
//! environment migrated halfway (`e state migrate --to URL`) finishes with the same results.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use support::postgres::Postgres as Server;
use support::walkthrough::{self, Environment, Outcome, example_images};
use support::{Volumes, containers_of, e_in, exited, root, stderr, stdout, text};

fn repository() -> PathBuf {
    root().join("repository.yaml")
}

/// An environment in a local shared directory; its modules' volumes go with it.
struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    fn new() -> Local {
        example_images();
        Local {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        drop(Volumes(self.shared()));
    }
}

impl Environment for Local {
    fn e(&self, args: &[&str]) -> Output {
        e_in(root(), &repository(), &self.shared(), args)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.shared().join(name))
            .unwrap_or_else(|err| panic!("{name}: {err}"))
    }

    fn edit_state(&self, text: &str) {
        std::fs::write(self.shared().join("state.yml"), text).unwrap();
    }
}

/// An environment in the backend, used from a working directory of its own with no shared
/// directory; its modules' volumes are removed when it is dropped (before its server).
struct Team<'a> {
    dir: tempfile::TempDir,
    url: String,
    _server: &'a Server,
}

impl Team<'_> {
    fn new<'a>(server: &'a Server, env: &str) -> Team<'a> {
        example_images();
        Team {
            dir: tempfile::tempdir().unwrap(),
            url: server.url(true, &format!("?schema=team&env={env}")),
            _server: server,
        }
    }

    /// The environment's current snapshot, in a new directory (`DIR/shared`).
    fn pull(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        self.expect(0, &["state", "pull", shared.to_str().unwrap()]);
        dir
    }
}

impl Drop for Team<'_> {
    fn drop(&mut self) {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        let out = self.e(&["state", "pull", shared.to_str().unwrap()]);
        if out.status.success() {
            drop(Volumes(shared));
        }
    }
}

impl Environment for Team<'_> {
    fn records_plans(&self) -> bool {
        false
    }

    fn e(&self, args: &[&str]) -> Output {
        let out = support::postgres::e_on_backend(self.dir.path(), &repository(), &self.url, args)
            .output()
            .unwrap();
        assert!(
            !format!("{}{}", stdout(&out), stderr(&out)).contains(Server::PASSWORD),
            "never the password: {}",
            text(&out)
        );
        assert!(
            !self.dir.path().join("shared").exists(),
            "a local shared directory was made"
        );
        out
    }

    fn read(&self, name: &str) -> String {
        let pulled = self.pull();
        std::fs::read_to_string(pulled.path().join("shared").join(name))
            .unwrap_or_else(|err| panic!("{name}: {err}"))
    }

    /// As a team edits it: pull, edit, push (checked by lineage and serial).
    fn edit_state(&self, edited: &str) {
        let pulled = self.pull();
        let shared = pulled.path().join("shared");
        std::fs::write(shared.join("state.yml"), edited).unwrap();
        let out = self.expect(0, &["state", "push", shared.to_str().unwrap()]);
        assert!(stderr(&out).contains("pushed"), "{}", text(&out));
    }
}

/// The walkthrough's outcome on a local shared directory, made once for the tests that
/// compare with it (its volumes are removed as soon as it is read).
fn local_walkthrough() -> &'static Outcome {
    static OUTCOME: OnceLock<Outcome> = OnceLock::new();
    OUTCOME.get_or_init(|| {
        let local = Local::new();
        walkthrough::walkthrough(&local);
        Outcome::of(&local.shared())
    })
}

/// The outcome of the backend's environment now, read from a pulled snapshot; asserts that
/// no container of it is left.
fn outcome_of(team: &Team) -> Outcome {
    let pulled = team.pull();
    let shared = pulled.path().join("shared");
    let left = containers_of(&shared);
    assert!(left.is_empty(), "containers left behind: {left:?}");
    Outcome::of(&shared)
}

/// Who e says ran a command on this machine: `user@host`.
fn me() -> String {
    let user = Command::new("id").arg("-un").output().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("{}@{}", stdout(&user).trim(), host.trim())
}

#[test]
fn the_seed_walkthrough_against_a_backend_gives_the_local_results() {
    let server = Server::start();
    let team = Team::new(&server, "walk");
    walkthrough::walkthrough(&team);
    let outcome = outcome_of(&team);
    // The local history has the two `e plan` runs besides; a backend's plans commit nothing.
    assert_eq!(outcome.history.len(), 8, "{outcome:#?}");
    assert_eq!(local_walkthrough().history.len(), 10);
    for file in [
        "state.yml",
        "state.yml.backup",
        "azi-config.yml",
        "bmk-config.yml",
        ".e/requirements/bmk.json",
    ] {
        assert!(outcome.files.contains_key(file), "{file}: {outcome:#?}");
    }
    assert!(
        outcome.installed["bmk"]["image_id"].is_string(),
        "{outcome:#?}"
    );
    assert_eq!(outcome, local_walkthrough().without_lone_plans());
}

#[test]
fn a_local_environment_migrated_halfway_finishes_the_walkthrough_with_the_same_results() {
    let server = Server::start();
    let local = Local::new();
    let state = walkthrough::azi(&local);
    let team = Team::new(&server, "migrated");
    let args = ["state", "migrate", "--to", &team.url];
    let out = exited(0, &args, local.e(&args));
    assert!(stderr(&out).contains("checked"), "{}", text(&out));
    assert!(!stderr(&out).contains(Server::PASSWORD), "{}", text(&out));
    walkthrough::bmk(&team, &state);
    let outcome = outcome_of(&team);
    // azi's `e plan` ran locally and migrated with the rest; bmk's ran against the backend.
    assert_eq!(outcome.history.len(), 9, "{outcome:#?}");
    assert_eq!(
        outcome.without_lone_plans(),
        local_walkthrough().without_lone_plans()
    );
    // The local directory was left as it was, at azi's apply.
    assert_eq!(local.read("state.yml"), state);
}

/// `e apply pg --with-requirements --auto-approve` (the design's stack: pg needs persistence,
/// which needs k8s, which needs an infrastructure) on `env`, after the refusal without
/// `--with-requirements`; returns what the stack's apply printed on stderr.
fn apply_the_stack(env: &impl Environment) -> String {
    let out = env.expect(1, &["apply", "--auto-approve", "pg"]);
    assert!(
        stderr(&out).contains("requirement `kind=persistence`"),
        "{}",
        text(&out)
    );
    let out = env.expect(0, &["apply", "pg", "--with-requirements", "--auto-approve"]);
    stderr(&out)
}

#[test]
fn the_design_stack_applied_against_a_backend_installs_every_module_as_locally() {
    let server = Server::start();
    let team = Team::new(&server, "stack");
    // The refusal commits nothing: the environment stays at serial 0.
    let out = team.expect(1, &["apply", "--auto-approve", "pg"]);
    assert!(stderr(&out).contains("kind=persistence"), "{}", text(&out));
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&team.expect(0, &["status", "-o", "json"]))).unwrap();
    assert_eq!(status["serial"], 0, "{status}");

    let said = apply_the_stack(&team);
    let order: Vec<usize> = [
        "1. azi@0.1.0",
        "2. k8s@0.1.0",
        "3. nfs@0.1.0",
        "4. pg@0.1.0",
    ]
    .iter()
    .map(|step| {
        said.find(step)
            .unwrap_or_else(|| panic!("no `{step}` in the plan:\n{said}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{said}");

    let status: serde_json::Value =
        serde_json::from_str(&stdout(&team.expect(0, &["status", "-o", "json"]))).unwrap();
    let installed: Vec<&str> = status["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["installed"] == true)
        .map(|m| m["module"].as_str().unwrap())
        .collect();
    assert_eq!(installed, ["azi", "k8s", "nfs", "pg"], "{status}");
    let table = stdout(&team.expect(0, &["status"]));
    for module in ["azi", "k8s", "nfs", "pg"] {
        assert!(table.contains(module), "{table}");
    }

    // Every run of the stack is in the history, and says who ran it on which machine.
    let history: Vec<serde_json::Value> =
        serde_json::from_str(&stdout(&team.expect(0, &["history", "-o", "json"]))).unwrap();
    let applies: Vec<&str> = history
        .iter()
        .filter(|run| run["command"] == "apply")
        .map(|run| run["module"].as_str().unwrap())
        .collect();
    assert_eq!(applies, ["azi", "k8s", "nfs", "pg"], "{history:#?}");
    let me = me();
    assert!(
        history.iter().all(|run| run["by"] == me.as_str()),
        "every run by {me}: {history:#?}"
    );
    let table = stdout(&team.expect(0, &["history"]));
    let header = table.lines().next().unwrap_or_default();
    let by = header.find(" BY ").expect("a BY column") + 1;
    for row in table.lines().skip(1) {
        assert_eq!(row.get(by..by + me.len()), Some(me.as_str()), "{table}");
    }

    let local = Local::new();
    apply_the_stack(&local);
    assert_eq!(outcome_of(&team), Outcome::of(&local.shared()));
}
