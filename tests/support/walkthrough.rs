//! The design's seed walkthrough (azi, a hand edit of node 1's IPs, bmk, audits, status,
//! history), written once for any place an environment lives: a local shared directory
//! (tests/e2e.rs) or a backend (tests/backend_walkthrough.rs), where the hand edit is a pull,
//! an edit and a push. [`Outcome`] is what two runs of it must agree on, byte for byte.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::{e_in, exited, root, stdout, text};

/// The example modules of the top-level repository, each built from `modules/<name>`.
pub const EXAMPLE_MODULES: [&str; 7] = ["azi", "bmk", "bmm", "k8s", "rook", "nfs", "pg"];

/// Builds the example modules' images with `e build`, once per test process.
pub fn example_images() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let docker = Command::new("docker").arg("version").output();
        assert!(
            docker.is_ok_and(|o| o.status.success()),
            "no Docker engine answers; run tests/engine.sh (or tests/all.sh) first"
        );
        let prepared = ["azi/azi", "bmk/bmk", "bmm/busybox", "pg/module.sh"]
            .iter()
            .all(|f| root().join("modules").join(f).exists());
        if !prepared {
            let status = Command::new(root().join("modules/build-contexts.sh"))
                .status()
                .expect("build-contexts.sh runs");
            assert!(status.success(), "modules/build-contexts.sh failed");
        }
        for module in EXAMPLE_MODULES {
            let out = e_in(
                root(),
                &root().join("repository.yaml"),
                &root().join("shared-unused"),
                &["build", &format!("modules/{module}")],
            );
            assert!(
                out.status.success(),
                "e build modules/{module} failed:\n{}",
                text(&out)
            );
        }
    });
}

/// Where the walkthrough's environment lives, and how a person edits its state by hand.
pub trait Environment {
    /// Runs `e ARGS` against the environment.
    fn e(&self, args: &[&str]) -> Output;

    /// A file of the environment's shared directory as it is now (`state.yml`, ...).
    fn read(&self, name: &str) -> String;

    /// Replaces `state.yml` by hand, as an operator would.
    fn edit_state(&self, text: &str);

    /// Whether `e plan` leaves a record in the history here: a backend's plans read a
    /// snapshot and never commit, not even their record.
    fn records_plans(&self) -> bool {
        true
    }

    /// Runs `e ARGS` and asserts its exit code, showing everything it said when it differs.
    fn expect(&self, code: i32, args: &[&str]) -> Output {
        exited(code, args, self.e(args))
    }
}

/// The whole walkthrough.
pub fn walkthrough(env: &impl Environment) {
    let state = azi(env);
    bmk(env, &state);
}

/// Its first half: azi initialized, planned and applied with 5 nodes. Returns the state.
pub fn azi(env: &impl Environment) -> String {
    env.expect(0, &["init", "azi"]);
    let config = env.read("azi-config.yml");
    assert!(config.contains("size: 5"), "{config}");
    env.expect(2, &["plan", "azi", "--detailed-exitcode"]);
    env.expect(0, &["apply", "--auto-approve", "azi"]);
    let state = env.read("state.yml");
    assert_eq!(state.matches("usedBy: unused").count(), 5, "{state}");
    assert!(
        state.contains("privateIP: 10.0.0.4") && state.contains("publicIP: 213.1.1.4"),
        "{state}"
    );
    state
}

/// Its second half, from azi's `state`: node 1's IPs edited by hand, bmk initialized from
/// the state (the edited node among its 3), planned and applied, both audited, then status
/// and history.
pub fn bmk(env: &impl Environment, state: &str) {
    let edited = state
        .replacen("privateIP: 10.0.0.1\n", "privateIP: 10.0.0.100\n", 1)
        .replacen("publicIP: 213.1.1.1\n", "publicIP: 213.1.1.100\n", 1);
    assert_ne!(edited, state, "the walkthrough edits node 1");
    env.edit_state(&edited);

    // init bmk takes 3 nodes from the state, including the edited one.
    env.expect(0, &["init", "bmk"]);
    let config = env.read("bmk-config.yml");
    for ip in ["10.0.0.0", "10.0.0.100", "10.0.0.2", "213.1.1.100"] {
        assert!(config.contains(ip), "bmk-config.yml lacks {ip}:\n{config}");
    }
    assert!(!config.contains("10.0.0.3"), "{config}");

    // plan shows the changes (exit 2) and changes nothing.
    let plan = env.expect(2, &["plan", "bmk", "--detailed-exitcode"]);
    assert!(stdout(&plan).contains("10.0.0.100"), "{}", text(&plan));
    assert_eq!(
        env.read("state.yml"),
        edited,
        "plan must not change the state"
    );

    // apply marks those azi nodes used by bmk and writes the bmk section.
    env.expect(0, &["apply", "--auto-approve", "bmk"]);
    let state = env.read("state.yml");
    assert_eq!(state.matches("usedBy: bmk").count(), 3, "{state}");
    assert_eq!(state.matches("usedBy: unused").count(), 2, "{state}");
    assert_eq!(state.matches("state: created").count(), 3, "{state}");
    assert_eq!(
        env.read("state.yml.backup"),
        edited,
        "the backup holds the state before the apply"
    );

    // audit of azi reports the hand change it does not know, with a non-zero exit.
    let audit = env.e(&["audit", "azi"]);
    assert_ne!(audit.status.code(), Some(0), "{}", text(&audit));
    assert!(stdout(&audit).contains("10.0.0.100"), "{}", text(&audit));
    env.expect(0, &["audit", "bmk"]);

    // status and history tell what happened.
    let status = stdout(&env.expect(0, &["status"]));
    assert!(
        status.contains("azi") && status.contains("bmk") && status.contains("applied"),
        "{status}"
    );
    let history = stdout(&env.expect(0, &["history", "-o", "json"]));
    let runs: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    let runs = if env.records_plans() {
        runs
    } else {
        without_lone_plans(runs)
    };
    let commands: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["command"].as_str().unwrap(),
                r["module"].as_str().unwrap()
            )
        })
        .collect();
    // `e plan` (where plans are recorded), then `e apply`, which plans again before it
    // applies.
    let expected = [
        "init azi",
        "plan azi",
        "plan azi",
        "apply azi",
        "init bmk",
        "plan bmk",
        "plan bmk",
        "apply bmk",
        "audit azi",
        "audit bmk",
    ];
    let expected: Vec<&str> = if env.records_plans() {
        expected.to_vec()
    } else {
        [0, 2, 3, 4, 6, 7, 8, 9].map(|i| expected[i]).to_vec()
    };
    assert_eq!(commands, expected);
    let apply_bmk = runs
        .iter()
        .position(|r| r["command"] == "apply" && r["module"] == "bmk")
        .unwrap();
    assert_eq!(
        runs[apply_bmk]["changed_keys"],
        serde_json::json!(["azi", "bmk"])
    );
}

/// The runs without the plans that no apply followed at once (those of `e plan` alone; an
/// apply plans again just before it applies).
pub fn without_lone_plans(runs: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let kept: Vec<bool> = (0..runs.len())
        .map(|i| {
            runs[i]["command"] != "plan"
                || runs.get(i + 1).is_some_and(|next| {
                    next["command"] == "apply" && next["module"] == runs[i]["module"]
                })
        })
        .collect();
    runs.into_iter()
        .zip(kept)
        .filter_map(|(run, kept)| kept.then_some(run))
        .collect()
}

/// What two runs of the same steps must agree on, read from a shared directory: every file
/// outside e's area byte for byte (the state, its backup, every config), the requirements e
/// gave each module byte for byte, the installed modules without their times, and each
/// history record without its id, time, duration and machine.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Every file outside `.e/` and under `.e/requirements/`: path, then content.
    pub files: BTreeMap<String, String>,
    /// `.e/installed.json` without `applied`.
    pub installed: serde_json::Value,
    /// Each run: module, version, command, exit code, outcome, changed keys and notes.
    pub history: Vec<serde_json::Value>,
}

impl Outcome {
    /// Reads the outcome of the shared directory `shared` (with `e history` on it).
    pub fn of(shared: &Path) -> Outcome {
        let mut files = BTreeMap::new();
        collect(shared, shared, &mut files);
        let installed = std::fs::read_to_string(shared.join(".e/installed.json"))
            .map(|text| serde_json::from_str(&text).unwrap())
            .unwrap_or(serde_json::Value::Null);
        let installed = match installed {
            serde_json::Value::Object(modules) => modules
                .into_iter()
                .map(|(name, mut record)| {
                    record.as_object_mut().unwrap().remove("applied");
                    (name, record)
                })
                .collect(),
            other => other,
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
        let out = command
            .args([
                "--shared",
                shared.to_str().unwrap(),
                "history",
                "-o",
                "json",
            ])
            .env_remove("E_BACKEND")
            .env_remove("E_SHARED")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let runs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
        let history = runs
            .iter()
            .map(|run| {
                let keep = [
                    "module",
                    "version",
                    "command",
                    "exit_code",
                    "outcome",
                    "changed_keys",
                    "notes",
                ];
                keep.iter()
                    .map(|key| (key.to_string(), run.get(*key).cloned().unwrap_or_default()))
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            })
            .collect();
        Outcome {
            files,
            installed,
            history,
        }
    }

    /// The same outcome without the records of plans no apply followed at once (a
    /// backend's `e plan` records none).
    pub fn without_lone_plans(&self) -> Outcome {
        Outcome {
            files: self.files.clone(),
            installed: self.installed.clone(),
            history: without_lone_plans(self.history.clone()),
        }
    }
}

/// The files under `dir` that an [`Outcome`] compares, by path relative to `shared`.
fn collect(shared: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let relative = path
            .strip_prefix(shared)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if path.is_dir() {
            collect(shared, &path, files);
            continue;
        }
        let in_e = relative.starts_with(".e/");
        if !in_e || relative.starts_with(".e/requirements/") {
            files.insert(relative, std::fs::read_to_string(&path).unwrap());
        }
    }
}
