//! The environment in a PostgreSQL backend, end to end with the real e binary and engine
//! (`--backend`, `store/mirror.rs`): two "machines" (working directories with no shared
//! directory of their own) apply to one environment at the same moment and both updates are
//! there; a holder killed with SIGKILL frees the lock at once and never commits; a holder whose
//! connection the server terminates, or whose server restarts, fails clearly and commits
//! nothing; reads take no lock.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::postgres::Postgres as Server;
use support::{misbehave_image, root, stderr, stdout, text};

fn repository() -> PathBuf {
    root().join("tests/fixtures/stack-repository.yaml")
}

/// One machine: a working directory of its own, no shared directory, the backend's URL, and
/// the temporary directory its commands use (the system's unless told).
struct Machine {
    dir: tempfile::TempDir,
    url: String,
    temp: Option<PathBuf>,
}

impl Machine {
    fn new(server: &Server) -> Machine {
        misbehave_image();
        Machine {
            dir: tempfile::tempdir().unwrap(),
            url: server.url(true, "?schema=team&env=prod"),
            temp: None,
        }
    }

    /// A machine whose commands keep their temporary files in `temp`.
    fn with_temp(server: &Server, temp: &Path) -> Machine {
        Machine {
            temp: Some(temp.to_owned()),
            ..Machine::new(server)
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command =
            support::postgres::e_on_backend(self.dir.path(), &repository(), &self.url, args);
        if let Some(temp) = &self.temp {
            command.env("TMPDIR", temp);
        }
        command
    }

    fn expect(&self, code: i32, args: &[&str]) -> Output {
        support::exited(code, args, self.command(args).output().unwrap())
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn state(&self) -> serde_yaml::Mapping {
        let out = self.expect(0, &["state", "-o", "yaml"]);
        serde_yaml::from_str(&stdout(&out)).unwrap_or_else(|err| panic!("{err}: {}", text(&out)))
    }
}

/// Nothing of the machine's own: the environment lives in the backend only.
fn assert_no_shared_directory(dir: &Path) {
    assert!(
        !dir.join("shared").exists(),
        "a local shared directory was made"
    );
}

#[test]
fn two_machines_apply_to_one_environment_at_once_and_both_updates_are_there() {
    let server = Server::start();
    let (a, b) = (Machine::new(&server), Machine::new(&server));
    a.expect(0, &["apply", "par-base", "--auto-approve"]);
    let args = |module| ["apply", module, "--auto-approve", "--lock-timeout", "2m"];
    let first = a.spawn(&args("par-kafka"));
    let second = b.spawn(&args("par-k8s"));
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert!(first.status.success(), "{}", text(&first));
    assert!(second.status.success(), "{}", text(&second));
    let waited = format!("{}{}", stderr(&first), stderr(&second));
    assert!(
        waited.contains("waiting for the lock"),
        "one waited: {waited}"
    );
    let state = b.state();
    for module in ["par-base", "par-kafka", "par-k8s"] {
        assert!(state.contains_key(module), "{module}: {state:?}");
    }
    let marked = state["par-base"]["marked_by"].as_sequence().unwrap().len();
    assert_eq!(marked, 2, "both marked the base: {state:?}");
    let status = stdout(&a.expect(0, &["status", "-o", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["serial"], 3, "one serial per apply: {status}");
    let history = stdout(&b.expect(0, &["history", "-o", "json"]));
    assert!(
        history.contains("\"by\": \""),
        "history says who ran what: {history}"
    );
    let table = stdout(&b.expect(0, &["history"]));
    assert!(
        table.lines().next().is_some_and(|l| l.contains(" BY ")),
        "{table}"
    );
    assert!(table.contains('@'), "user@host in the table: {table}");
    assert_no_shared_directory(a.dir.path());
    assert_no_shared_directory(b.dir.path());
}

/// The private directories of backend commands in `temp` (`store/mirror/leftovers.rs`).
fn private_dirs(temp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(temp)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("e-backend-"))
        })
        .collect()
}

/// The copies in memory that the records of runs in the private directory `dir` name.
fn memory_copies(dir: &Path) -> Vec<PathBuf> {
    let runs = dir.join("shared/.e/runs");
    std::fs::read_dir(runs)
        .unwrap()
        .filter_map(|run| {
            let record = std::fs::read(run.unwrap().path().join("run.json")).ok()?;
            let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
            record["memory"].as_str().map(PathBuf::from)
        })
        .collect()
}

#[test]
fn a_killed_holder_frees_the_lock_at_once_and_its_run_never_commits() {
    let server = Server::start();
    // One host: both machines' commands share a temporary directory, as on one machine.
    let temp = tempfile::tempdir().unwrap();
    let (a, b) = (
        Machine::with_temp(&server, temp.path()),
        Machine::with_temp(&server, temp.path()),
    );
    let mut slow = a.spawn(&["apply", "par-slow", "--auto-approve"]);
    server.wait_for_holder("team");
    // Until its container runs, the slow apply could not have committed anyway: give it time.
    std::thread::sleep(Duration::from_secs(2));
    slow.kill().unwrap();
    slow.wait().unwrap();
    // The dead e left its private directory and its run's copy in memory...
    let left = private_dirs(temp.path());
    assert_eq!(left.len(), 1, "{left:?}");
    let copies = memory_copies(&left[0]);
    assert_eq!(copies.len(), 1, "one run was under way: {copies:?}");
    assert!(copies[0].is_dir(), "{}", copies[0].display());
    // The server frees the lock when its session notices the closed connection: at once on a
    // quiet machine (7 ms measured), later when the server's process waits for a core. A
    // lock that outlived its holder (a lease) would keep b waiting the whole timeout.
    let started = Instant::now();
    b.expect(
        0,
        &[
            "apply",
            "par-base",
            "--auto-approve",
            "--lock-timeout",
            "10s",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // ...which the next command on the machine removed; its own went when it ended.
    assert_eq!(private_dirs(temp.path()), Vec::<PathBuf>::new());
    assert!(!copies[0].exists(), "{}", copies[0].display());
    // The killed run's container outlives it and finishes its apply: in a private directory
    // of the dead e, which never reaches the backend.
    std::thread::sleep(Duration::from_secs(8));
    let state = b.state();
    assert!(state.contains_key("par-base"), "{state:?}");
    assert!(
        !state.contains_key("par-slow"),
        "the killed run committed: {state:?}"
    );
}

#[test]
fn a_holder_cut_off_by_the_server_fails_clearly_and_commits_nothing() {
    let server = Server::start();
    let (a, b) = (Machine::new(&server), Machine::new(&server));
    let slow = a.spawn(&["apply", "par-slow", "--auto-approve"]);
    let pid = server.wait_for_holder("team");
    server.sql(&format!("SELECT pg_terminate_backend({pid})"));
    let out = slow.wait_with_output().unwrap();
    eprintln!("{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("backend"),
        "the error names the backend: {}",
        text(&out)
    );
    assert!(
        !stderr(&out).contains(Server::PASSWORD),
        "never the password: {}",
        text(&out)
    );
    b.expect(0, &["apply", "par-base", "--auto-approve"]);
    let state = b.state();
    assert!(!state.contains_key("par-slow"), "{state:?}");
    assert!(state.contains_key("par-base"), "{state:?}");
}

#[test]
fn reads_take_no_lock_and_a_plan_commits_nothing() {
    let server = Server::start();
    let (a, b) = (Machine::new(&server), Machine::new(&server));
    a.expect(0, &["apply", "par-base", "--auto-approve"]);
    let slow = a.spawn(&["apply", "par-slow", "--auto-approve"]);
    server.wait_for_holder("team");
    // While a holds the lock, b reads and plans without waiting.
    let started = Instant::now();
    b.expect(0, &["status"]);
    b.expect(2, &["plan", "par-kafka", "--detailed-exitcode"]);
    b.expect(0, &["history"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    let out = slow.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let state = b.state();
    assert!(
        state.contains_key("par-slow") && !state.contains_key("par-kafka"),
        "{state:?}"
    );
    let history = stdout(&b.expect(0, &["history", "-o", "json"]));
    assert!(
        !history.contains("par-kafka"),
        "a plan commits nothing, not even history: {history}"
    );
}

#[test]
fn a_local_environment_migrates_into_the_backend_and_back_checked_by_lineage() {
    let server = Server::start();
    let url = server.url(true, "?schema=team&env=prod");
    let local = tempfile::tempdir().unwrap();
    let local_e = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
        command
            .args(args)
            .current_dir(local.path())
            .env("E_REPOSITORY", repository())
            .env_remove("E_BACKEND")
            .env_remove("E_SHARED");
        command.output().unwrap()
    };
    misbehave_image();
    let out = local_e(&["apply", "par-base", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = local_e(&["state", "migrate", "--to", &url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("checked"), "{}", text(&out));
    assert!(!stderr(&out).contains(Server::PASSWORD), "{}", text(&out));

    // The migrated environment works from another machine, with the same lineage.
    let machine = Machine::new(&server);
    let status = stdout(&machine.expect(0, &["status", "-o", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let lineage = std::fs::read_to_string(local.path().join("shared/.e/serial.json")).unwrap();
    assert!(
        lineage.contains(status["lineage"].as_str().unwrap()),
        "{status} against {lineage}"
    );
    assert_eq!(status["modules"][0]["module"], "par-base", "{status}");
    machine.expect(0, &["apply", "par-kafka", "--auto-approve"]);

    // Another environment cannot be migrated over it.
    let other = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
    let out = command
        .args(["apply", "par-slow", "--auto-approve"])
        .current_dir(other.path())
        .env("E_REPOSITORY", repository())
        .env_remove("E_BACKEND")
        .env_remove("E_SHARED")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
    let out = command
        .args(["state", "migrate", "--to", &url])
        .current_dir(other.path())
        .env_remove("E_BACKEND")
        .env_remove("E_SHARED")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("different environments"),
        "{}",
        text(&out)
    );

    // And back: the backend's environment into a new directory, both modules in it.
    let back = local.path().join("back");
    machine.expect(0, &["state", "migrate", "--to", back.to_str().unwrap()]);
    let state = std::fs::read_to_string(back.join("state.yml")).unwrap();
    assert!(
        state.contains("par-base:") && state.contains("par-kafka:"),
        "{state}"
    );
    let installed = std::fs::read_to_string(back.join(".e/installed.json")).unwrap();
    assert!(installed.contains("par-kafka"), "{installed}");
}

/// A repository of `n` independent modules `m01`, `m02`, ... that write their own sections.
fn wide_repository(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::from("version: v1\nkind: Repository\ncomponents:\n");
    for i in 1..=n {
        text.push_str(&format!(
            "  - name: m{i:02}\n    type: docker\n    versions:\n      - version: 1.0.0\n        image: e-tests/misbehave:0.1.0\n        commands:\n          - {{name: init, command: noop}}\n          - {{name: plan, command: plan-own}}\n          - {{name: apply, command: own}}\n"
        ));
    }
    let path = dir.join("wide.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Applies `m01..` of `repository` to the backend `url`, all at once or one after the other;
/// returns the wall time.
fn apply_all(url: &str, repository: &Path, n: usize, at_once: bool) -> Duration {
    let started = Instant::now();
    let command = |i: usize| {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
        command
            .args([
                "apply",
                &format!("m{i:02}"),
                "--auto-approve",
                "--lock-timeout",
                "10m",
            ])
            .current_dir(dir.path())
            .env("E_REPOSITORY", repository)
            .env("E_BACKEND", url)
            .env_remove("E_SHARED")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        (dir, command)
    };
    let check = |out: Output| assert!(out.status.success(), "{}", text(&out));
    if at_once {
        let children: Vec<_> = (1..=n)
            .map(|i| {
                let (dir, mut command) = command(i);
                (dir, command.spawn().unwrap())
            })
            .collect();
        for (_dir, child) in children {
            check(child.wait_with_output().unwrap());
        }
    } else {
        for i in 1..=n {
            let (_dir, mut command) = command(i);
            check(command.output().unwrap());
        }
    }
    started.elapsed()
}

#[test]
fn twenty_concurrent_applies_of_twenty_modules_lose_no_run() {
    let server = Server::start();
    misbehave_image();
    let work = tempfile::tempdir().unwrap();
    let repository = wide_repository(work.path(), 20);
    let url = server.url(true, "?schema=team&env=wide");
    let took = apply_all(&url, &repository, 20, true);
    let reader = Machine {
        dir: tempfile::tempdir().unwrap(),
        url,
        temp: None,
    };
    let mut command = reader.command(&["status", "-o", "json"]);
    let out = command.env("E_REPOSITORY", &repository).output().unwrap();
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let installed = status["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["installed"] == true)
        .count();
    assert_eq!(installed, 20, "{status}");
    assert_eq!(status["serial"], 20, "one serial per apply: {status}");
    let mut command = reader.command(&["state", "list"]);
    let out = command.env("E_REPOSITORY", &repository).output().unwrap();
    assert_eq!(
        stdout(&out).matches("applied").count(),
        20,
        "{}",
        text(&out)
    );
    eprintln!("20 concurrent applies took {:.1} s", took.as_secs_f64());
}

/// Not a test: figures for docs/benchmarks.md, side by side in one run
/// (`cargo test --release --test backend figures -- --ignored --nocapture`).
#[test]
#[ignore]
fn figures() {
    let server = Server::start();
    misbehave_image();
    let work = tempfile::tempdir().unwrap();
    let repository = wide_repository(work.path(), 20);
    // Per method: `e init m01` (a no-op) on a local shared directory and against the backend.
    let local = tempfile::tempdir().unwrap();
    let url = server.url(true, "?schema=team&env=figures");
    let run = |backend: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
        command
            .args(["init", "m01"])
            .current_dir(local.path())
            .env("E_REPOSITORY", &repository)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if backend {
            command.env("E_BACKEND", &url);
        } else {
            command.env_remove("E_BACKEND");
        }
        let started = Instant::now();
        assert!(command.status().unwrap().success());
        started.elapsed()
    };
    run(false);
    run(true);
    let (mut locals, mut backends) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        locals.push(run(false));
        backends.push(run(true));
    }
    locals.sort();
    backends.sort();
    let (l, b) = (locals[7], backends[7]);
    println!("per method (e init, a no-op), median of 15, in turn:");
    println!(
        "  local shared directory   {:>7.1} ms",
        l.as_secs_f64() * 1e3
    );
    println!(
        "  PostgreSQL backend       {:>7.1} ms",
        b.as_secs_f64() * 1e3
    );
    println!(
        "  backend overhead         {:>7.1} ms   target < 20 ms: {}",
        (b.as_secs_f64() - l.as_secs_f64()) * 1e3,
        if b.saturating_sub(l) < Duration::from_millis(20) {
            "met"
        } else {
            "MISSED"
        }
    );
    let sequential = apply_all(
        &server.url(true, "?schema=team&env=seq"),
        &repository,
        20,
        false,
    );
    let concurrent = apply_all(
        &server.url(true, "?schema=team&env=par"),
        &repository,
        20,
        true,
    );
    println!("20 applies of 20 modules to one environment:");
    println!(
        "  one after the other      {:>7.1} s",
        sequential.as_secs_f64()
    );
    println!(
        "  all at once              {:>7.1} s",
        concurrent.as_secs_f64()
    );
    println!(
        "  ratio at once / sequence {:>7.2}",
        concurrent.as_secs_f64() / sequential.as_secs_f64()
    );
}

#[test]
fn a_server_restart_in_the_middle_of_a_run_fails_it_and_commits_nothing() {
    let mut server = Server::start();
    let (a, b) = (Machine::new(&server), Machine::new(&server));
    let slow = a.spawn(&["apply", "par-slow", "--auto-approve"]);
    server.wait_for_holder("team");
    server.restart();
    let out = slow.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("nothing was committed"),
        "{}",
        text(&out)
    );
    b.expect(0, &["apply", "par-base", "--auto-approve"]);
    let state = b.state();
    assert!(!state.contains_key("par-slow"), "{state:?}");
    assert!(state.contains_key("par-base"), "{state:?}");
}
